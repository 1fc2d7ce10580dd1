/*
 * Unit tests for the SCSI layer (target/scsi*.c, target/lun.c): commands
 * executed through scsi_exec() on LUNs backed by temporary sparse files,
 * the scheduler run until each completes, in both ioq modes (io_uring and
 * the synchronous fallback). Data layouts are checked byte by byte against
 * SPC-4 and SBC-3.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ioq.h"
#include "common/sched.h"
#include "config.h"
#include "lun.h"
#include "scsi.h"

#define BS 512u
#define BLOCKS 2048u
#define BUF_MAX (1u << 20)

static struct sched *s;
static struct ioq *q;
static struct lun *lun;
static char path[64];
static unsigned int ioq_flags;
static struct scsi_target tgt;
static struct lun *luns[1];
static struct scsi_cmd cmd;
static uint8_t *buf;
static bool done;

static const struct scsi_nexus nx1 = {
	.id = 1, .initiator = "iqn.2024-01.test:one", .isid = {0x80, 0, 0, 0, 0, 1}};
static const struct scsi_nexus nx2 = {
	.id = 2, .initiator = "iqn.2024-01.test:two", .isid = {0x80, 0, 0, 0, 0, 2}};

static int open_lun(unsigned int number, bool ro, struct lun **ret)
{
	struct config_lun cl = {
		.lun = number,
		.path = path,
		.size = (uint64_t)BLOCKS * BS,
		.read_only = ro,
		.block_size = BS,
		.serial = "SER0123",
		.naa = 0x6001405abcdef012ull,
	};

	return lun_open(&cl, q, ret);
}

static void setup_common(void)
{
	int fd;

	ck_assert_int_eq(sched_create(&s), 0);
	ck_assert_int_eq(ioq_create(s, 64, ioq_flags, &q), 0);
	snprintf(path, sizeof(path), "/tmp/test_scsi.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	unlink(path); /* lun_open creates it sparse */
	ck_assert_int_eq(open_lun(0, false, &lun), 0);
	luns[0] = lun;
	tgt = (struct scsi_target){
		.luns = luns, .nluns = 1, .name = "iqn.2024-01.test:tgt", .tpgt = 1};
	buf = calloc(1, BUF_MAX);
	ck_assert_ptr_nonnull(buf);
}

static void setup_async(void)
{
	ioq_flags = 0;
	setup_common();
}

static void setup_sync(void)
{
	ioq_flags = IOQ_FORCE_SYNC;
	setup_common();
}

static void teardown(void)
{
	lun_close(lun);
	ioq_destroy(q);
	sched_destroy(s);
	unlink(path);
	free(buf);
}

static void cmd_done(struct scsi_cmd *c)
{
	ck_assert(!done);
	ck_assert_ptr_eq(c, &cmd);
	done = true;
}

static struct sched_event tick;

static void tick_fn(struct sched_event *ev)
{
	sched_schedule(s, ev);
}

/* Run the scheduler until *@flag. A tick that requeues itself keeps
 * epoll_wait from blocking after the completion ran in a pass
 * (CK_DEFAULT_TIMEOUT bounds the loop). */
static void wait_done(bool *flag)
{
	sched_event_init(&tick, tick_fn);
	sched_schedule(s, &tick);
	while (!*flag)
		ck_assert_int_eq(sched_run_once(s), 0);
	sched_cancel(s, &tick);
}

/* Fill @c for @cdb; data-out, if any, is @out (@out_len bytes). */
static void prep(struct scsi_cmd *c, const struct scsi_nexus *n, struct lun *l, const uint8_t *cdb,
		 size_t len, enum scsi_dir dir, uint32_t edtl, uint8_t *data, uint32_t out_len)
{
	memset(c, 0, sizeof(*c));
	c->lun = l;
	c->target = &tgt;
	c->nexus = n;
	memcpy(c->cdb, cdb, len);
	c->cdb_len = 16;
	c->dir = dir;
	c->edtl = edtl;
	c->buf = data;
	c->buf_len = out_len;
}

static struct scsi_cmd *run_on(const struct scsi_nexus *n, struct lun *l, const uint8_t *cdb,
			       size_t len, enum scsi_dir dir, uint32_t edtl, const void *out,
			       uint32_t out_len)
{
	if (out)
		memcpy(buf, out, out_len);
	prep(&cmd, n, l, cdb, len, dir, edtl, buf, out_len);
	cmd.done = cmd_done;
	done = false;
	scsi_exec(&cmd);
	wait_done(&done);
	return &cmd;
}

#define RUN_IN(n, edtl, ...)                                                          \
	({                                                                            \
		static const uint8_t cdb_[] = {__VA_ARGS__};                          \
		run_on((n), lun, cdb_, sizeof(cdb_), SCSI_DIR_READ, (edtl), NULL, 0); \
	})
#define RUN_NONE(n, ...)                                                         \
	({                                                                       \
		static const uint8_t cdb_[] = {__VA_ARGS__};                     \
		run_on((n), lun, cdb_, sizeof(cdb_), SCSI_DIR_NONE, 0, NULL, 0); \
	})
#define RUN_OUT(n, data, len, ...)                                                          \
	({                                                                                  \
		static const uint8_t cdb_[] = {__VA_ARGS__};                                \
		run_on((n), lun, cdb_, sizeof(cdb_), SCSI_DIR_WRITE, (len), (data), (len)); \
	})

/* Sense key, ASC, ASCQ of either format. */
static void sense_of(const struct scsi_cmd *c, uint8_t *key, uint8_t *asc, uint8_t *ascq)
{
	ck_assert_int_ge(c->sense_len, 8);
	if ((c->sense[0] & 0x7f) >= 0x72) {
		*key = c->sense[1] & 0xf;
		*asc = c->sense[2];
		*ascq = c->sense[3];
	} else {
		*key = c->sense[2] & 0xf;
		*asc = c->sense[12];
		*ascq = c->sense[13];
	}
}

static void expect_sense(const struct scsi_cmd *c, uint8_t key, uint16_t code)
{
	uint8_t k, a, aq;

	ck_assert_uint_eq(c->status, SCSI_STATUS_CHECK_CONDITION);
	sense_of(c, &k, &a, &aq);
	ck_assert_uint_eq(k, key);
	ck_assert_uint_eq(a, SENSE_ASC(code));
	ck_assert_uint_eq(aq, SENSE_ASCQ(code));
}

static void expect_good(const struct scsi_cmd *c)
{
	ck_assert_msg(c->status == SCSI_STATUS_GOOD,
		      "status %02x sense %02x %02x %02x %02x %02x %02x", c->status, c->sense[2],
		      c->sense[12], c->sense[13], c->sense[15], c->sense[16], c->sense[17]);
	ck_assert_uint_eq(c->sense_len, 0);
}

/* Clear the POWER ON unit attention of both nexuses. */
static void clear_ua(void)
{
	for (int i = 0; i < LUN_UA_MAX && RUN_NONE(&nx1, 0x00, 0, 0, 0, 0, 0)->status; i++)
		;
	for (int i = 0; i < LUN_UA_MAX && RUN_NONE(&nx2, 0x00, 0, 0, 0, 0, 0)->status; i++)
		;
	expect_good(RUN_NONE(&nx1, 0x00, 0, 0, 0, 0, 0));
	expect_good(RUN_NONE(&nx2, 0x00, 0, 0, 0, 0, 0));
}

static void write_blocks(const struct scsi_nexus *n, uint32_t lba, uint32_t nblk, uint8_t fill)
{
	uint8_t cdb[10] = {0x2a};
	uint8_t *data = malloc((size_t)nblk * BS);

	memset(data, fill, (size_t)nblk * BS);
	cdb[2] = lba >> 24;
	cdb[3] = lba >> 16;
	cdb[4] = lba >> 8;
	cdb[5] = lba;
	cdb[7] = nblk >> 8;
	cdb[8] = nblk;
	expect_good(run_on(n, lun, cdb, 10, SCSI_DIR_WRITE, nblk * BS, data, nblk * BS));
	free(data);
}

static const uint8_t *read_blocks(const struct scsi_nexus *n, uint32_t lba, uint32_t nblk)
{
	uint8_t cdb[16] = {0x88};

	cdb[6] = lba >> 24;
	cdb[7] = lba >> 16;
	cdb[8] = lba >> 8;
	cdb[9] = lba;
	cdb[12] = nblk >> 8;
	cdb[13] = nblk;
	expect_good(run_on(n, lun, cdb, 16, SCSI_DIR_READ, nblk * BS, NULL, 0));
	ck_assert_uint_eq(cmd.data_len, nblk * BS);
	return cmd.buf;
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* ---- unit attentions, dispatch errors ---- */

START_TEST(test_power_on_ua)
{
	/* INQUIRY does not report or clear it (SAM-5 §5.14). */
	expect_good(RUN_IN(&nx1, 36, 0x12, 0, 0, 0, 36, 0));
	expect_sense(RUN_NONE(&nx1, 0x00, 0, 0, 0, 0, 0), SENSE_KEY_UNIT_ATTENTION,
		     SENSE_POWER_ON_RESET);
	expect_good(RUN_NONE(&nx1, 0x00, 0, 0, 0, 0, 0));
	/* The other nexus has its own. */
	expect_sense(RUN_NONE(&nx2, 0x00, 0, 0, 0, 0, 0), SENSE_KEY_UNIT_ATTENTION,
		     SENSE_POWER_ON_RESET);
	/* A LUN reset queues one for everyone but the sender. */
	lun_reset(lun, nx1.id, SENSE_BUS_DEVICE_RESET);
	expect_good(RUN_NONE(&nx1, 0x00, 0, 0, 0, 0, 0));
	expect_sense(RUN_NONE(&nx2, 0x00, 0, 0, 0, 0, 0), SENSE_KEY_UNIT_ATTENTION,
		     SENSE_BUS_DEVICE_RESET);
}
END_TEST

START_TEST(test_bad_cdbs)
{
	struct scsi_cmd *c;

	clear_ua();
	expect_sense(RUN_NONE(&nx1, 0xff, 0, 0, 0, 0, 0), SENSE_KEY_ILLEGAL_REQUEST,
		     SENSE_INVALID_COMMAND_OPCODE);
	/* READ(10) with RDPROTECT: field pointer at byte 1 bit 7, SKSV, C/D. */
	c = RUN_IN(&nx1, 512, 0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0);
	expect_sense(c, SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
	ck_assert_uint_eq(c->sense[15], 0x80 | 0x40 | 0x08 | 7);
	ck_assert_uint_eq(c->sense[16], 0);
	ck_assert_uint_eq(c->sense[17], 1);
	ck_assert_uint_eq(c->data_len, 0);
}
END_TEST

START_TEST(test_no_such_lun)
{
	static const uint8_t inq[6] = {0x12, 0, 0, 0, 36, 0};
	static const uint8_t tur[6] = {0};
	struct scsi_cmd *c = run_on(&nx1, NULL, inq, 6, SCSI_DIR_READ, 36, NULL, 0);

	expect_good(c);
	ck_assert_uint_eq(c->data_len, 36);
	ck_assert_uint_eq(buf[0], 0x7f); /* qualifier 011b, type 1Fh */
	c = run_on(&nx1, NULL, tur, 6, SCSI_DIR_NONE, 0, NULL, 0);
	expect_sense(c, SENSE_KEY_ILLEGAL_REQUEST, SENSE_LU_NOT_SUPPORTED);
}
END_TEST

/* ---- INQUIRY ---- */

START_TEST(test_inquiry_standard)
{
	static const uint8_t vd[] = {0x00, 0xa0, 0x09, 0x60, 0x04, 0x60, 0x04, 0xc0};
	struct scsi_cmd *c = RUN_IN(&nx1, 260, 0x12, 0, 0, 0x01, 0x04, 0);

	expect_good(c);
	ck_assert_uint_eq(c->data_len, 74);
	ck_assert(c->underflow);
	ck_assert_uint_eq(c->residual, 260 - 74);
	ck_assert_uint_eq(buf[0], 0x00);
	ck_assert_uint_eq(buf[1], 0x00); /* not removable */
	ck_assert_uint_eq(buf[2], 0x06); /* SPC-4 */
	ck_assert_uint_eq(buf[3], 0x12); /* HISUP, format 2 */
	ck_assert_uint_eq(buf[4], 69);
	ck_assert_uint_eq(buf[7], 0x02); /* CMDQUE */
	ck_assert_mem_eq(buf + 8, "ISERKIT ", 8);
	ck_assert_mem_eq(buf + 58, vd, sizeof(vd));
	/* Allocation length truncates, no residual against a matching EDTL. */
	c = RUN_IN(&nx1, 10, 0x12, 0, 0, 0, 10, 0);
	expect_good(c);
	ck_assert_uint_eq(c->data_len, 10);
	ck_assert(!c->overflow && !c->underflow);
	/* A page code without EVPD. */
	c = RUN_IN(&nx1, 255, 0x12, 0, 0x80, 0, 255, 0);
	expect_sense(c, SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
	ck_assert_uint_eq(c->sense[17], 2);
}
END_TEST

START_TEST(test_inquiry_vpd)
{
	static const uint8_t sup[] = {0x00, 0x00, 0x00, 0x06, 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};
	static const uint8_t naa[] = {0x01, 0x03, 0x00, 0x08, 0x60, 0x01,
				      0x40, 0x5a, 0xbc, 0xde, 0xf0, 0x12};
	struct scsi_cmd *c;

	c = RUN_IN(&nx1, 255, 0x12, 1, 0x00, 0, 255, 0);
	expect_good(c);
	ck_assert_uint_eq(c->data_len, sizeof(sup));
	ck_assert_mem_eq(buf, sup, sizeof(sup));
	c = RUN_IN(&nx1, 255, 0x12, 1, 0x80, 0, 255, 0);
	ck_assert_uint_eq(c->data_len, 4 + 7);
	ck_assert_mem_eq(buf, "\x00\x80\x00\x07SER0123", 11);
	c = RUN_IN(&nx1, 1024, 0x12, 1, 0x83, 0x04, 0x00, 0);
	expect_good(c);
	ck_assert_uint_eq(buf[1], 0x83);
	ck_assert_uint_eq((buf[2] << 8 | buf[3]) + 4u, c->data_len);
	ck_assert_mem_eq(buf + 4, naa, sizeof(naa));
	/* T10 vendor ID: ASCII, LU, type 1: vendor then serial. */
	ck_assert_mem_eq(buf + 16, "\x02\x01\x00\x0fISERKIT SER0123", 19);
	/* Relative target port: iSCSI, PIV, target port, type 4, port 1. */
	ck_assert_mem_eq(buf + 35, "\x51\x94\x00\x04\x00\x00\x00\x01", 8);
	/* SCSI name string of the target port, UTF-8, padded to 4. */
	ck_assert_mem_eq(buf + 43, "\x53\x98\x00\x20iqn.2024-01.test:tgt,t,0x0001", 32);
	c = RUN_IN(&nx1, 255, 0x12, 1, 0xb0, 0, 255, 0);
	ck_assert_uint_eq(c->data_len, 64);
	ck_assert_uint_eq(buf[3], 0x3c);
	ck_assert_uint_eq(buf[4], 0x01);		   /* WSNZ */
	ck_assert_uint_eq(buf[5], 255);			   /* MAXIMUM COMPARE AND WRITE LENGTH */
	ck_assert_mem_eq(buf + 8, "\x00\x00\x80\x00", 4);  /* 16 MiB of 512 */
	ck_assert_mem_eq(buf + 20, "\xff\xff\xff\xff", 4); /* MAXIMUM UNMAP LBA COUNT */
	ck_assert_mem_eq(buf + 24, "\x00\x00\x01\x00", 4); /* ... DESCRIPTOR COUNT */
	ck_assert_mem_eq(buf + 28, "\x00\x00\x00\x08", 4); /* OPTIMAL UNMAP GRANULARITY */
	c = RUN_IN(&nx1, 255, 0x12, 1, 0xb1, 0, 255, 0);
	ck_assert_mem_eq(buf, "\x00\xb1\x00\x3c\x00\x01", 6);
	c = RUN_IN(&nx1, 255, 0x12, 1, 0xb2, 0, 255, 0);
	ck_assert_uint_eq(c->data_len, 8);
	ck_assert_mem_eq(buf, "\x00\xb2\x00\x04\x00\xe4\x02\x00", 8);
	c = RUN_IN(&nx1, 255, 0x12, 1, 0xb3, 0, 255, 0);
	expect_sense(c, SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
}
END_TEST

/* ---- REPORT LUNS, READ CAPACITY ---- */

START_TEST(test_report_luns)
{
	struct lun *l2;
	struct lun *two[2];
	char first[sizeof(path)];
	struct scsi_cmd *c;

	memcpy(first, path, sizeof(first));
	ck_assert_uint_lt(strlen(first) + 2, sizeof(path));
	memcpy(path + strlen(first), ".b", 3);
	ck_assert_int_eq(open_lun(300, false, &l2), 0);
	two[0] = lun;
	two[1] = l2;
	tgt.luns = two;
	tgt.nluns = 2;
	c = RUN_IN(&nx1, 64, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0);
	expect_good(c);
	ck_assert_uint_eq(c->data_len, 24);
	ck_assert_mem_eq(buf, "\x00\x00\x00\x10\x00\x00\x00\x00", 8);
	ck_assert_mem_eq(buf + 8, "\x00\x00\x00\x00\x00\x00\x00\x00", 8);
	ck_assert_mem_eq(buf + 16, "\x41\x2c\x00\x00\x00\x00\x00\x00", 8); /* flat */
	/* Well-known LUs only: none. */
	c = RUN_IN(&nx1, 64, 0xa0, 0, 1, 0, 0, 0, 0, 0, 0, 64, 0, 0);
	ck_assert_uint_eq(c->data_len, 8);
	c = RUN_IN(&nx1, 64, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0);
	expect_sense(c, SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
	lun_close(l2);
	unlink(path);
	memcpy(path, first, sizeof(first));
	tgt.luns = luns;
	tgt.nluns = 1;
}
END_TEST

START_TEST(test_read_capacity)
{
	struct scsi_cmd *c;

	clear_ua();
	c = RUN_IN(&nx1, 8, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	expect_good(c);
	ck_assert_mem_eq(buf, "\x00\x00\x07\xff\x00\x00\x02\x00", 8);
	c = RUN_IN(&nx1, 32, 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0);
	expect_good(c);
	ck_assert_uint_eq(c->data_len, 32);
	ck_assert_mem_eq(buf, "\x00\x00\x00\x00\x00\x00\x07\xff\x00\x00\x02\x00\x00\x00\xc0\x00",
			 16);
	/* LBA without PMI is invalid (SBC-3 §5.15). */
	c = RUN_IN(&nx1, 8, 0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0);
	expect_sense(c, SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
}
END_TEST

/* ---- READ, WRITE ---- */

START_TEST(test_write_read_back)
{
	const uint8_t *p;
	struct scsi_cmd *c;

	clear_ua();
	write_blocks(&nx1, 10, 8, 0x5a);
	p = read_blocks(&nx2, 9, 10);
	ck_assert(all_bytes(p, BS, 0));
	ck_assert(all_bytes(p + BS, 8 * BS, 0x5a));
	ck_assert(all_bytes(p + 9 * BS, BS, 0));
	/* WRITE(16) with FUA, READ(6). */
	memset(buf, 0x33, BS);
	c = RUN_OUT(&nx1, buf, BS, 0x8a, 0x08, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0);
	expect_good(c);
	c = RUN_IN(&nx1, BS, 0x08, 0, 0, 20, 1, 0);
	expect_good(c);
	ck_assert(all_bytes(buf, BS, 0x33));
	/* READ(6) with length 0 means 256 blocks. */
	c = RUN_IN(&nx1, 256 * BS, 0x08, 0, 0, 0, 0, 0);
	expect_good(c);
	ck_assert_uint_eq(c->data_len, 256 * BS);
}
END_TEST

START_TEST(test_lba_out_of_range)
{
	clear_ua();
	expect_sense(RUN_IN(&nx1, 2 * BS, 0x28, 0, 0, 0, 0x07, 0xff, 0, 0, 2, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_LBA_OUT_OF_RANGE);
	expect_good(RUN_IN(&nx1, 0, 0x28, 0, 0, 0, 0x08, 0x00, 0, 0, 0, 0));
	expect_sense(RUN_IN(&nx1, 0, 0x28, 0, 0, 0, 0x08, 0x01, 0, 0, 0, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_LBA_OUT_OF_RANGE);
	expect_sense(RUN_IN(&nx1, BS, 0x88, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0,
			    0, 1, 0, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_LBA_OUT_OF_RANGE);
	expect_sense(RUN_NONE(&nx1, 0x35, 0, 0, 0, 0x08, 0x00, 0, 0, 1, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_LBA_OUT_OF_RANGE);
	expect_good(RUN_NONE(&nx1, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	expect_good(RUN_NONE(&nx1, 0x34, 0, 0, 0, 0x07, 0xff, 0, 0, 1, 0));
}
END_TEST

/* RFC 7143 §11.4.5.1 residuals, as libiscsi's residual tests expect. */
START_TEST(test_residuals)
{
	struct scsi_cmd *c;
	uint8_t data[BS];

	clear_ua();
	write_blocks(&nx1, 0, 2, 'a');
	c = RUN_IN(&nx1, 200, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0);
	expect_good(c);
	ck_assert_uint_eq(c->data_len, 200);
	ck_assert(c->overflow && !c->underflow);
	ck_assert_uint_eq(c->residual, BS - 200);
	c = RUN_IN(&nx1, 10000, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0);
	ck_assert_uint_eq(c->data_len, BS);
	ck_assert(c->underflow && !c->overflow);
	ck_assert_uint_eq(c->residual, 10000 - BS);
	c = RUN_IN(&nx1, 0, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0);
	expect_good(c);
	ck_assert(c->overflow);
	ck_assert_uint_eq(c->residual, BS);
	/* A write with EDTL 200 writes 200 bytes and no more. */
	memset(data, 'b', sizeof(data));
	c = RUN_OUT(&nx1, data, 200, 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0);
	expect_good(c);
	ck_assert(c->overflow);
	ck_assert_uint_eq(c->residual, BS - 200);
	c = RUN_IN(&nx1, BS, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0);
	ck_assert(all_bytes(buf, 200, 'b'));
	ck_assert(all_bytes(buf + 200, BS - 200, 'a'));
	/* Two blocks asked, one block of EDTL: one written, block 1 intact. */
	memset(data, 'c', sizeof(data));
	c = RUN_OUT(&nx1, data, BS, 0x2a, 0, 0, 0, 0, 0, 0, 0, 2, 0);
	ck_assert(c->overflow);
	ck_assert_uint_eq(c->residual, BS);
	c = RUN_IN(&nx1, 2 * BS, 0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0);
	ck_assert(all_bytes(buf, BS, 'c'));
	ck_assert(all_bytes(buf + BS, BS, 'a'));
}
END_TEST

START_TEST(test_read_only)
{
	struct lun *ro;
	static const uint8_t wr[10] = {0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0};
	static const uint8_t ms[6] = {0x1a, 0x08, 0x3f, 0, 255, 0};
	struct scsi_cmd *c;

	lun_close(lun);
	ck_assert_int_eq(open_lun(0, true, &ro), 0);
	lun = ro;
	luns[0] = ro;
	clear_ua();
	memset(buf, 1, BS);
	c = run_on(&nx1, ro, wr, 10, SCSI_DIR_WRITE, BS, buf, BS);
	expect_sense(c, SENSE_KEY_DATA_PROTECT, SENSE_WRITE_PROTECTED);
	c = run_on(&nx1, ro, ms, 6, SCSI_DIR_READ, 255, NULL, 0);
	expect_good(c);
	ck_assert_uint_eq(buf[2], 0x90); /* WP, DPOFUA */
	read_blocks(&nx1, 0, 1);
}
END_TEST

/* ---- MODE SENSE, MODE SELECT, REQUEST SENSE ---- */

START_TEST(test_mode_sense)
{
	struct scsi_cmd *c;

	clear_ua();
	c = RUN_IN(&nx1, 255, 0x1a, 0, 0x3f, 0, 255, 0);
	expect_good(c);
	/* header 4 + block descriptor 8 + caching 20 + control 12 + IEC 12 */
	ck_assert_uint_eq(c->data_len, 56);
	ck_assert_mem_eq(buf, "\x37\x00\x10\x08", 4);
	ck_assert_mem_eq(buf + 4, "\x00\x00\x08\x00\x00\x00\x02\x00", 8);
	ck_assert_mem_eq(buf + 12, "\x08\x12\x04", 3); /* WCE */
	ck_assert_mem_eq(buf + 32, "\x0a\x0a\x00\x10\x00", 5);
	ck_assert_mem_eq(buf + 44, "\x1c\x0a\x08", 3);
	/* MODE SENSE(10), LLBAA, control page only, changeable values. */
	c = RUN_IN(&nx1, 255, 0x5a, 0x10, 0x40 | 0x0a, 0, 0, 0, 0, 0, 255, 0);
	expect_good(c);
	ck_assert_uint_eq(c->data_len, 8 + 16 + 12);
	ck_assert_mem_eq(buf, "\x00\x22\x00\x10\x01\x00\x00\x10", 8);
	ck_assert_mem_eq(buf + 24, "\x0a\x0a\x04\x00\x08", 5); /* D_SENSE, SWP */
	expect_sense(RUN_IN(&nx1, 255, 0x1a, 0, 0xc0 | 0x08, 0, 255, 0), SENSE_KEY_ILLEGAL_REQUEST,
		     SENSE_SAVING_PARAMS_NOT_SUPPORTED);
	c = RUN_IN(&nx1, 255, 0x1a, 0, 0x19, 0, 255, 0);
	expect_sense(c, SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
	ck_assert_uint_eq(c->sense[15], 0x80 | 0x40 | 0x08 | 5);
	ck_assert_uint_eq(c->sense[17], 2);
	/* Truncated to 4 bytes with no residual (libiscsi modesense6_residuals). */
	c = RUN_IN(&nx1, 4, 0x1a, 0, 0x3f, 0, 4, 0);
	ck_assert_uint_eq(c->data_len, 4);
	ck_assert(!c->overflow && !c->underflow);
}
END_TEST

START_TEST(test_mode_select)
{
	uint8_t p[16] = {0, 0, 0, 0, 0x0a, 0x0a, 0x04, 0x10, 0, 0, 0, 0, 0, 0, 0, 0};
	struct scsi_cmd *c;

	clear_ua();
	/* D_SENSE on from nexus 1. */
	c = RUN_OUT(&nx1, p, 16, 0x15, 0x10, 0, 0, 16, 0);
	expect_good(c);
	/* Nexus 2 hears of it; the unit attention stays fixed format. */
	c = RUN_NONE(&nx2, 0x00, 0, 0, 0, 0, 0);
	expect_sense(c, SENSE_KEY_UNIT_ATTENTION, SENSE_MODE_PARAMETERS_CHANGED);
	ck_assert_uint_eq(c->sense[0], 0x70);
	/* Errors now come in descriptor format. */
	c = RUN_NONE(&nx1, 0xff, 0, 0, 0, 0, 0);
	ck_assert_uint_eq(c->sense[0], 0x72);
	expect_sense(c, SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_COMMAND_OPCODE);
	/* A bit that is not changeable: QUEUE ALGORITHM MODIFIER. */
	p[7] = 0x20;
	c = RUN_OUT(&nx1, p, 16, 0x15, 0x10, 0, 0, 16, 0);
	expect_sense(c, SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_PARAM_LIST);
	/* SP is not supported; PF=0 neither. */
	expect_sense(RUN_OUT(&nx1, p, 16, 0x15, 0x11, 0, 0, 16, 0), SENSE_KEY_ILLEGAL_REQUEST,
		     SENSE_INVALID_FIELD_IN_CDB);
	/* SWP on: writes fail WRITE PROTECTED, MODE SENSE shows WP. */
	p[6] = 0;
	p[7] = 0x10;
	p[8] = 0x08;
	expect_good(RUN_OUT(&nx1, p, 16, 0x15, 0x10, 0, 0, 16, 0));
	memset(buf, 0, BS);
	c = RUN_OUT(&nx1, buf, BS, 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0);
	expect_sense(c, SENSE_KEY_DATA_PROTECT, SENSE_WRITE_PROTECTED);
	c = RUN_IN(&nx1, 255, 0x1a, 0x08, 0x0a, 0, 255, 0);
	ck_assert_uint_eq(buf[2], 0x90);
	/* A LUN reset restores the defaults. */
	lun_reset(lun, 0, SENSE_BUS_DEVICE_RESET);
	clear_ua();
	write_blocks(&nx1, 0, 1, 0);
}
END_TEST

START_TEST(test_request_sense)
{
	struct scsi_cmd *c;

	c = RUN_IN(&nx1, 252, 0x03, 0, 0, 0, 252, 0);
	expect_good(c);
	ck_assert_uint_eq(c->data_len, 18);
	ck_assert_uint_eq(buf[0], 0x70);
	ck_assert_uint_eq(buf[2], SENSE_KEY_UNIT_ATTENTION);
	ck_assert_uint_eq(buf[12], 0x29);
	c = RUN_IN(&nx1, 252, 0x03, 1, 0, 0, 252, 0);
	expect_good(c);
	ck_assert_uint_eq(c->data_len, 8);
	ck_assert_mem_eq(buf, "\x72\x00\x00\x00\x00\x00\x00\x00", 8);
}
END_TEST

/* ---- VERIFY, COMPARE AND WRITE, ORWRITE ---- */

START_TEST(test_verify)
{
	uint8_t data[4 * BS];
	struct scsi_cmd *c;

	clear_ua();
	write_blocks(&nx1, 4, 4, 'v');
	memset(data, 'v', sizeof(data));
	expect_good(RUN_OUT(&nx1, data, 4 * BS, 0x2f, 0x02, 0, 0, 0, 4, 0, 0, 4, 0));
	data[BS + 77] = 'x';
	c = RUN_OUT(&nx1, data, 4 * BS, 0x2f, 0x02, 0, 0, 0, 4, 0, 0, 4, 0);
	expect_sense(c, SENSE_KEY_MISCOMPARE, SENSE_MISCOMPARE_DURING_VERIFY);
	ck_assert_uint_eq(c->sense[0], 0xf0); /* VALID */
	ck_assert_mem_eq(c->sense + 3, "\x00\x00\x02\x4d", 4);
	/* BYTCHK 11b: one block against each of four. */
	expect_good(RUN_OUT(&nx1, data, BS, 0x2f, 0x06, 0, 0, 0, 4, 0, 0, 4, 0));
	/* BYTCHK 0: the medium only. */
	expect_good(RUN_NONE(&nx1, 0x2f, 0x00, 0, 0, 0, 4, 0, 0, 4, 0));
	expect_sense(RUN_OUT(&nx1, data, BS, 0x2f, 0x04, 0, 0, 0, 4, 0, 0, 1, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
}
END_TEST

START_TEST(test_compare_and_write)
{
	uint8_t data[4 * BS];
	const uint8_t *p;
	struct scsi_cmd *c;

	clear_ua();
	write_blocks(&nx1, 100, 2, 'A');
	memset(data, 'A', 2 * BS);
	memset(data + 2 * BS, 'B', 2 * BS);
	c = RUN_OUT(&nx1, data, 4 * BS, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 2, 0, 0);
	expect_good(c);
	p = read_blocks(&nx1, 100, 2);
	ck_assert(all_bytes(p, 2 * BS, 'B'));
	/* Miscompare at byte 600: nothing written, INFORMATION = 600. */
	memset(data, 'B', 2 * BS);
	data[600] = 'Z';
	memset(data + 2 * BS, 'C', 2 * BS);
	c = RUN_OUT(&nx1, data, 4 * BS, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 2, 0, 0);
	expect_sense(c, SENSE_KEY_MISCOMPARE, SENSE_MISCOMPARE_DURING_VERIFY);
	ck_assert_mem_eq(c->sense + 3, "\x00\x00\x02\x58", 4);
	p = read_blocks(&nx1, 100, 2);
	ck_assert(all_bytes(p, 2 * BS, 'B'));
	/* The data-out must be twice NUMBER OF LOGICAL BLOCKS. */
	c = RUN_OUT(&nx1, data, 4 * BS, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 1, 0, 0);
	ck_assert_uint_eq(c->status, SCSI_STATUS_CHECK_CONDITION);
}
END_TEST

static bool w_done, w_after_caw;

static void w_fn(struct scsi_cmd *c)
{
	w_done = true;
	w_after_caw = done; /* the COMPARE AND WRITE completed first */
	(void)c;
}

/* A write overlapping a COMPARE AND WRITE waits for it (SBC-3 §5.2). */
START_TEST(test_caw_blocks_overlapping_write)
{
	static const uint8_t caw_cdb[16] = {0x89, 0, 0, 0, 0, 0, 0, 0, 0, 50, 0, 0, 0, 1, 0, 0};
	static const uint8_t wr_cdb[10] = {0x2a, 0, 0, 0, 0, 50, 0, 0, 1, 0};
	static struct scsi_cmd w;
	static uint8_t caw_data[2 * BS], wr_data[BS];
	const uint8_t *p;

	clear_ua();
	write_blocks(&nx1, 50, 1, 'A');
	memset(caw_data, 'A', BS);
	memset(caw_data + BS, 'B', BS);
	memset(wr_data, 'W', BS);
	prep(&cmd, &nx1, lun, caw_cdb, 16, SCSI_DIR_WRITE, 2 * BS, caw_data, 2 * BS);
	cmd.done = cmd_done;
	done = false;
	w_done = w_after_caw = false;
	scsi_exec(&cmd);
	prep(&w, &nx2, lun, wr_cdb, 10, SCSI_DIR_WRITE, BS, wr_data, BS);
	w.done = w_fn;
	scsi_exec(&w);
	ck_assert(!done && !w_done);
	wait_done(&w_done);
	ck_assert(done);
	ck_assert(w_after_caw);
	expect_good(&cmd);
	expect_good(&w);
	/* The write came second: its data is what stays. */
	p = read_blocks(&nx1, 50, 1);
	ck_assert(all_bytes(p, BS, 'W'));
}
END_TEST

START_TEST(test_orwrite)
{
	uint8_t data[2 * BS];
	const uint8_t *p;

	clear_ua();
	write_blocks(&nx1, 30, 2, 0x0f);
	memset(data, 0xf0, sizeof(data));
	expect_good(
		RUN_OUT(&nx1, data, 2 * BS, 0x8b, 0, 0, 0, 0, 0, 0, 0, 0, 30, 0, 0, 0, 2, 0, 0));
	p = read_blocks(&nx1, 30, 2);
	ck_assert(all_bytes(p, 2 * BS, 0xff));
}
END_TEST

/* ---- UNMAP, WRITE SAME, GET LBA STATUS ---- */

static void expect_lba_status(uint32_t lba, uint32_t want_lba, uint8_t status, uint32_t min_len)
{
	uint8_t cdb[16] = {0x9e, 0x12};
	struct scsi_cmd *c;

	cdb[6] = lba >> 24;
	cdb[7] = lba >> 16;
	cdb[8] = lba >> 8;
	cdb[9] = lba;
	cdb[13] = 24;
	c = run_on(&nx1, lun, cdb, 16, SCSI_DIR_READ, 24, NULL, 0);
	expect_good(c);
	ck_assert_uint_eq(c->data_len, 24);
	ck_assert_uint_eq(buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3], 20);
	ck_assert_uint_eq(buf[12] << 24 | buf[13] << 16 | buf[14] << 8 | buf[15], want_lba);
	ck_assert_uint_ge((uint32_t)(buf[16] << 24 | buf[17] << 16 | buf[18] << 8 | buf[19]),
			  min_len);
	ck_assert_uint_eq(buf[20] & 0xf, status);
}

START_TEST(test_unmap_punches_hole)
{
	uint8_t list[24] = {0, 22, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 64};
	int fd;
	off_t data;
	const uint8_t *p;

	clear_ua();
	write_blocks(&nx1, 0, 256, 'u');
	expect_lba_status(64, 64, 0, 1);
	expect_good(RUN_OUT(&nx1, list, 24, 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0));
	p = read_blocks(&nx1, 64, 64);
	ck_assert(all_bytes(p, 64 * BS, 0));
	p = read_blocks(&nx1, 0, 1);
	ck_assert(all_bytes(p, BS, 'u'));
	/* The file really has a hole there. */
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	data = lseek(fd, 64 * BS, SEEK_DATA);
	ck_assert_int_eq(data, 128 * BS);
	ck_assert_int_eq(lseek(fd, 0, SEEK_HOLE), 64 * BS);
	close(fd);
	expect_lba_status(64, 64, 1, 64);
	expect_lba_status(128, 128, 0, 128);
	/* Out of range descriptor, short list, too many descriptors. */
	list[8] = 0xff;
	expect_sense(RUN_OUT(&nx1, list, 24, 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_LBA_OUT_OF_RANGE);
	expect_sense(RUN_OUT(&nx1, list, 4, 0x42, 0, 0, 0, 0, 0, 0, 0, 4, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_PARAMETER_LIST_LENGTH_ERROR);
	expect_good(RUN_NONE(&nx1, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	expect_sense(RUN_IN(&nx1, 24, 0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 24, 0, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_LBA_OUT_OF_RANGE);
}
END_TEST

START_TEST(test_write_same)
{
	uint8_t pattern[BS];
	const uint8_t *p;

	clear_ua();
	memset(pattern, 0xab, BS);
	expect_good(RUN_OUT(&nx1, pattern, BS, 0x93, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 10, 0, 0));
	p = read_blocks(&nx1, 256, 10);
	ck_assert(all_bytes(p, 10 * BS, 0xab));
	/* UNMAP with a zero pattern deallocates; reads return zeros. */
	memset(pattern, 0, BS);
	expect_good(RUN_OUT(&nx1, pattern, BS, 0x41, 0x08, 0, 0, 1, 0, 0, 0, 10, 0));
	p = read_blocks(&nx1, 256, 10);
	ck_assert(all_bytes(p, 10 * BS, 0));
	/* NDOB: zeros with no data-out. */
	write_blocks(&nx1, 300, 2, 1);
	expect_good(RUN_NONE(&nx1, 0x93, 0x01, 0, 0, 0, 0, 0, 0, 0x01, 0x2c, 0, 0, 0, 2, 0, 0));
	p = read_blocks(&nx1, 300, 2);
	ck_assert(all_bytes(p, 2 * BS, 0));
	/* WSNZ: zero blocks is invalid; so is ANCHOR; and a wrong data size. */
	expect_sense(RUN_OUT(&nx1, pattern, BS, 0x41, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
	expect_sense(RUN_OUT(&nx1, pattern, BS, 0x41, 0x18, 0, 0, 0, 0, 0, 0, 1, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
	expect_sense(RUN_OUT(&nx1, pattern, BS / 2, 0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
	expect_sense(RUN_OUT(&nx1, pattern, BS, 0x41, 0, 0, 0, 0x07, 0xff, 0, 0, 2, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_LBA_OUT_OF_RANGE);
}
END_TEST

/* ---- reservations ---- */

static struct scsi_cmd *pr_out(const struct scsi_nexus *n, uint8_t sa, uint8_t type, uint64_t rk,
			       uint64_t sark)
{
	uint8_t cdb[10] = {0x5f, sa, type, 0, 0, 0, 0, 0, 24, 0};
	uint8_t p[24] = {0};

	for (int i = 0; i < 8; i++) {
		p[i] = rk >> (56 - 8 * i);
		p[8 + i] = sark >> (56 - 8 * i);
	}
	return run_on(n, lun, cdb, 10, SCSI_DIR_WRITE, 24, p, 24);
}

static struct scsi_cmd *pr_in(const struct scsi_nexus *n, uint8_t sa)
{
	uint8_t cdb[10] = {0x5e, sa, 0, 0, 0, 0, 0, 0x10, 0, 0};

	return run_on(n, lun, cdb, 10, SCSI_DIR_READ, 4096, NULL, 0);
}

static uint8_t try_write(const struct scsi_nexus *n)
{
	static const uint8_t cdb[10] = {0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0};

	memset(buf, 0, BS);
	return run_on(n, lun, cdb, 10, SCSI_DIR_WRITE, BS, buf, BS)->status;
}

static uint8_t try_read(const struct scsi_nexus *n)
{
	static const uint8_t cdb[10] = {0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0};

	return run_on(n, lun, cdb, 10, SCSI_DIR_READ, BS, NULL, 0)->status;
}

START_TEST(test_pr_write_exclusive)
{
	struct scsi_cmd *c;

	clear_ua();
	expect_good(pr_out(&nx1, 0x06, 0, 0, 0x1111));
	expect_good(pr_out(&nx2, 0x00, 0, 0, 0x2222));
	/* REGISTER with a wrong key conflicts. */
	ck_assert_uint_eq(pr_out(&nx2, 0x00, 0, 0x9999, 0x3333)->status,
			  SCSI_STATUS_RESERVATION_CONFLICT);
	c = pr_in(&nx1, 0x00);
	expect_good(c);
	ck_assert_mem_eq(buf, "\x00\x00\x00\x02\x00\x00\x00\x10", 8);
	expect_good(pr_out(&nx1, 0x01, 0x01, 0x1111, 0));
	c = pr_in(&nx2, 0x01);
	ck_assert_uint_eq(c->data_len, 24);
	ck_assert_mem_eq(buf + 8, "\x00\x00\x00\x00\x00\x00\x11\x11", 8);
	ck_assert_uint_eq(buf[21], 0x01);
	ck_assert_uint_eq(try_read(&nx2), SCSI_STATUS_GOOD);
	ck_assert_uint_eq(try_write(&nx2), SCSI_STATUS_RESERVATION_CONFLICT);
	ck_assert_uint_eq(try_write(&nx1), SCSI_STATUS_GOOD);
	ck_assert_uint_eq(pr_out(&nx2, 0x01, 0x01, 0x2222, 0)->status,
			  SCSI_STATUS_RESERVATION_CONFLICT);
	/* RELEASE with the wrong type. */
	expect_sense(pr_out(&nx1, 0x02, 0x03, 0x1111, 0), SENSE_KEY_ILLEGAL_REQUEST, 0x2604);
	/* Nexus 2 preempts nexus 1 and takes an exclusive access reservation. */
	expect_good(pr_out(&nx2, 0x04, 0x03, 0x2222, 0x1111));
	c = pr_in(&nx2, 0x00);
	ck_assert_mem_eq(buf, "\x00\x00\x00\x03\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x22\x22",
			 16);
	expect_sense(RUN_NONE(&nx1, 0x00, 0, 0, 0, 0, 0), SENSE_KEY_UNIT_ATTENTION,
		     SENSE_REGISTRATIONS_PREEMPTED);
	ck_assert_uint_eq(try_read(&nx1), SCSI_STATUS_RESERVATION_CONFLICT);
	expect_good(RUN_IN(&nx1, 36, 0x12, 0, 0, 0, 36, 0));
	expect_good(pr_out(&nx2, 0x03, 0, 0x2222, 0)); /* CLEAR */
	ck_assert_uint_eq(try_read(&nx1), SCSI_STATUS_GOOD);
}
END_TEST

START_TEST(test_pr_registrants_only)
{
	struct scsi_cmd *c;

	clear_ua();
	expect_good(pr_out(&nx1, 0x06, 0, 0, 0xa));
	expect_good(pr_out(&nx2, 0x06, 0, 0, 0xb));
	expect_good(pr_out(&nx1, 0x01, 0x06, 0xa, 0)); /* EX_AC_RO */
	ck_assert_uint_eq(try_write(&nx2), SCSI_STATUS_GOOD);
	expect_good(pr_out(&nx2, 0x00, 0, 0xb, 0)); /* unregister */
	ck_assert_uint_eq(try_read(&nx2), SCSI_STATUS_RESERVATION_CONFLICT);
	/* READ FULL STATUS: one registrant, the holder, with its TransportID. */
	c = pr_in(&nx2, 0x03);
	expect_good(c);
	ck_assert_uint_eq(buf[8 + 12], 0x01);
	ck_assert_uint_eq(buf[8 + 13], 0x06);
	ck_assert_uint_eq(buf[8 + 24], 0x45);
	ck_assert_str_eq((const char *)buf + 8 + 28, "iqn.2024-01.test:one,i,0x800000000001");
	/* REPORT CAPABILITIES */
	c = pr_in(&nx2, 0x02);
	ck_assert_uint_eq(c->data_len, 8);
	ck_assert_mem_eq(buf, "\x00\x08\x10\x80\xea\x01\x00\x00", 8);
	/* Unregistering the holder releases the reservation. */
	expect_good(pr_out(&nx1, 0x00, 0, 0xa, 0));
	ck_assert_uint_eq(try_read(&nx2), SCSI_STATUS_GOOD);
	/* APTPL is refused. */
	c = run_on(&nx1, lun, (const uint8_t[]){0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0}, 10,
		   SCSI_DIR_WRITE, 24,
		   (const uint8_t[24]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, [20] = 1},
		   24);
	expect_sense(c, SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_PARAM_LIST);
}
END_TEST

START_TEST(test_reserve6)
{
	clear_ua();
	expect_good(RUN_NONE(&nx1, 0x16, 0, 0, 0, 0, 0));
	expect_good(RUN_NONE(&nx1, 0x16, 0, 0, 0, 0, 0));
	ck_assert_uint_eq(RUN_NONE(&nx2, 0x16, 0, 0, 0, 0, 0)->status,
			  SCSI_STATUS_RESERVATION_CONFLICT);
	ck_assert_uint_eq(RUN_IN(&nx2, 255, 0x1a, 0, 0x3f, 0, 255, 0)->status,
			  SCSI_STATUS_RESERVATION_CONFLICT);
	expect_good(RUN_IN(&nx2, 36, 0x12, 0, 0, 0, 36, 0));
	/* RELEASE from the other nexus is GOOD and releases nothing. */
	expect_good(RUN_NONE(&nx2, 0x17, 0, 0, 0, 0, 0));
	ck_assert_uint_eq(try_read(&nx2), SCSI_STATUS_RESERVATION_CONFLICT);
	/* The holder's nexus ends: released (SPC-2 §5.5.1). */
	lun_nexus_gone(lun, nx1.id);
	ck_assert_uint_eq(try_read(&nx2), SCSI_STATUS_GOOD);
}
END_TEST

/* ---- REPORT SUPPORTED OPERATION CODES ---- */

START_TEST(test_report_opcodes)
{
	struct scsi_cmd *c;
	uint32_t len, n = 0;

	clear_ua();
	for (const struct cdb_desc *d = cdb_next(NULL); d; d = cdb_next(d))
		n++;
	c = RUN_IN(&nx1, 8192, 0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0);
	expect_good(c);
	len = buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3];
	ck_assert_uint_eq(len, 8 * n);
	/* The first descriptor: TEST UNIT READY, 6 bytes. */
	ck_assert_mem_eq(buf + 4, "\x00\x00\x00\x00\x00\x00\x00\x06", 8);
	/* With timeouts: 20 bytes each, CTDP set. */
	c = RUN_IN(&nx1, 8192, 0xa3, 0x0c, 0x80, 0, 0, 0, 0, 0, 0x20, 0, 0, 0);
	len = buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3];
	ck_assert_uint_eq(len, 20 * n);
	ck_assert_uint_eq(buf[4 + 5], 0x02);
	ck_assert_mem_eq(buf + 12, "\x00\x0a", 2);
	/* One command: READ(10). */
	c = RUN_IN(&nx1, 64, 0xa3, 0x0c, 0x01, 0x28, 0, 0, 0, 0, 0, 64, 0, 0);
	expect_good(c);
	ck_assert_uint_eq(c->data_len, 14);
	ck_assert_mem_eq(buf, "\x00\x03\x00\x0a\x28\x18\xff\xff\xff\xff\x3f\xff\xff\x00", 14);
	/* An operation code with service actions needs option 2. */
	expect_sense(RUN_IN(&nx1, 64, 0xa3, 0x0c, 0x01, 0x9e, 0, 0, 0, 0, 0, 64, 0, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
	c = RUN_IN(&nx1, 64, 0xa3, 0x0c, 0x02, 0x9e, 0, 0x10, 0, 0, 0, 64, 0, 0);
	expect_good(c);
	ck_assert_mem_eq(buf, "\x00\x03\x00\x10\x9e\x10", 6);
	expect_sense(RUN_IN(&nx1, 64, 0xa3, 0x0c, 0x02, 0x28, 0, 0, 0, 0, 0, 64, 0, 0),
		     SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
	/* Not supported: SUPPORT 001b. */
	c = RUN_IN(&nx1, 64, 0xa3, 0x0c, 0x01, 0xff, 0, 0, 0, 0, 0, 64, 0, 0);
	expect_good(c);
	ck_assert_mem_eq(buf, "\x00\x01\x00\x00", 4);
	c = RUN_IN(&nx1, 4, 0xa3, 0x0d, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0);
	expect_good(c);
	ck_assert_uint_eq(buf[0], 0xda);
}
END_TEST

static Suite *scsi_suite(void)
{
	Suite *su = suite_create("scsi");
	struct {
		const char *name;
		void (*setup)(void);
	} modes[] = {{"async", setup_async}, {"sync", setup_sync}};

	for (size_t i = 0; i < 2; i++) {
		TCase *tc = tcase_create(modes[i].name);

		tcase_add_checked_fixture(tc, modes[i].setup, teardown);
		tcase_add_test(tc, test_power_on_ua);
		tcase_add_test(tc, test_bad_cdbs);
		tcase_add_test(tc, test_no_such_lun);
		tcase_add_test(tc, test_inquiry_standard);
		tcase_add_test(tc, test_inquiry_vpd);
		tcase_add_test(tc, test_report_luns);
		tcase_add_test(tc, test_read_capacity);
		tcase_add_test(tc, test_write_read_back);
		tcase_add_test(tc, test_lba_out_of_range);
		tcase_add_test(tc, test_residuals);
		tcase_add_test(tc, test_read_only);
		tcase_add_test(tc, test_mode_sense);
		tcase_add_test(tc, test_mode_select);
		tcase_add_test(tc, test_request_sense);
		tcase_add_test(tc, test_verify);
		tcase_add_test(tc, test_compare_and_write);
		tcase_add_test(tc, test_caw_blocks_overlapping_write);
		tcase_add_test(tc, test_orwrite);
		tcase_add_test(tc, test_unmap_punches_hole);
		tcase_add_test(tc, test_write_same);
		tcase_add_test(tc, test_pr_write_exclusive);
		tcase_add_test(tc, test_pr_registrants_only);
		tcase_add_test(tc, test_reserve6);
		tcase_add_test(tc, test_report_opcodes);
		suite_add_tcase(su, tc);
	}
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(scsi_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
