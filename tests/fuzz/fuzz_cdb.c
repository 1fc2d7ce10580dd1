/*
 * Fuzz harness for the SCSI layer: a random CDB with random data-out,
 * executed by scsi_exec() on a small sparse LUN (synchronous ioq), with
 * the reply checked for consistency: done exactly once, GOOD without
 * sense, CHECK CONDITION with well-formed sense, data-in within EDTL.
 *
 * Input: byte 0 selects the nexus and direction, bytes 1-2 the EDTL
 * (in 16-byte units), bytes 3-18 the CDB, the rest the data-out.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ioq.h"
#include "common/sched.h"
#include "config.h"
#include "scsi.h"

#define FUZZ_BLOCKS 64
#define FUZZ_BUF (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sched *s;
static struct ioq *q;
static struct lun *lun;
static struct lun *luns[1];
static struct scsi_target tgt;
static struct sched_event tick;
static uint8_t *buf;
static int ndone;

static const struct scsi_nexus nexus[2] = {
	{.id = 1, .initiator = "iqn.2024-01.fuzz:a", .isid = {0x80, 0, 0, 0, 0, 1}},
	{.id = 2, .initiator = "iqn.2024-01.fuzz:b", .isid = {0x80, 0, 0, 0, 0, 2}},
};

static void tick_fn(struct sched_event *ev)
{
	sched_schedule(s, ev);
}

static void init(void)
{
	static char path[] = "/tmp/fuzz_cdb.XXXXXX";
	struct config_lun cl = {.path = path,
				.size = FUZZ_BLOCKS * 512,
				.block_size = 512,
				.serial = "FUZZ",
				.naa = 0x6001405000000001ull};
	int fd = mkstemp(path);

	if (fd < 0)
		abort();
	close(fd);
	unlink(path);
	if (sched_create(&s) || ioq_create(s, 16, IOQ_FORCE_SYNC, &q) || lun_open(&cl, q, &lun))
		abort();
	unlink(path); /* the open fd keeps it */
	luns[0] = lun;
	tgt = (struct scsi_target){.luns = luns, .nluns = 1, .name = "iqn.2024-01.fuzz:t"};
	buf = malloc(FUZZ_BUF);
	if (!buf)
		abort();
	sched_event_init(&tick, tick_fn);
}

static void done_fn(struct scsi_cmd *cmd)
{
	(void)cmd;
	ndone++;
}

static void check_reply(const struct scsi_cmd *c)
{
	if (ndone != 1)
		abort();
	if (c->status == SCSI_STATUS_GOOD && c->sense_len)
		abort();
	if (c->status == SCSI_STATUS_CHECK_CONDITION &&
	    (c->sense_len < 8 || ((c->sense[0] & 0x7f) != 0x70 && (c->sense[0] & 0x7f) != 0x72)))
		abort();
	if (c->status != SCSI_STATUS_GOOD && c->data_len)
		abort();
	if (c->data_len > c->edtl || (c->overflow && c->underflow))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct scsi_cmd cmd;
	size_t out;

	if (!s)
		init();
	if (size < 19)
		return 0;
	memset(&cmd, 0, sizeof(cmd));
	cmd.lun = data[0] & 0x40 ? NULL : lun;
	cmd.target = &tgt;
	cmd.nexus = &nexus[data[0] & 1];
	cmd.dir = (data[0] >> 1) % 3;
	cmd.edtl = (uint32_t)(data[1] << 8 | data[2]) * 16 % FUZZ_BUF;
	memcpy(cmd.cdb, data + 3, 16);
	cmd.cdb_len = 16;
	out = size - 19;
	if (out > FUZZ_BUF)
		out = FUZZ_BUF;
	memset(buf, 0, FUZZ_BUF);
	memcpy(buf, data + 19, out);
	cmd.buf = buf;
	cmd.buf_len = cmd.dir == SCSI_DIR_WRITE ? (uint32_t)out : 0;
	cmd.done = done_fn;
	ndone = 0;
	sched_schedule(s, &tick);
	scsi_exec(&cmd);
	while (!ndone)
		if (sched_run_once(s))
			abort();
	sched_cancel(s, &tick);
	check_reply(&cmd);
	return 0;
}
