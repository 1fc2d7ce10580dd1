/*
 * scsi_io: the commands that read and write the medium (SBC-3 §5): READ,
 * WRITE, WRITE AND VERIFY, VERIFY, COMPARE AND WRITE, ORWRITE, and the
 * range locks that make the read-modify-write ones atomic.
 *
 * Media I/O goes through the LUN's ioq; its completions come back on the
 * scheduler, so a command is a chain of stages, each started by the
 * completion of the one before.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_priv.h"

#define cmd_of(r) ((struct scsi_cmd *)((char *)(r)-offsetof(struct scsi_cmd, req)))

enum lk_state {
	LK_NONE,
	LK_HELD,
	LK_WAITING,
};

/* ---- range locks ---- */

static bool conflicts(const struct scsi_cmd *a, const struct scsi_cmd *b)
{
	return (a->lk_excl || b->lk_excl) && a->lk_lba < b->lk_end && b->lk_lba < a->lk_end;
}

/* Whether @cmd conflicts with a held lock or with a waiter queued before
 * @stop (so that overlapping commands start in the order they came). */
static bool blocked(const struct lun *l, const struct scsi_cmd *cmd, const struct scsi_cmd *stop)
{
	for (const struct scsi_cmd *o = l->locked; o; o = o->lk_next)
		if (conflicts(cmd, o))
			return true;
	for (const struct scsi_cmd *o = l->wait_head; o && o != stop; o = o->lk_next)
		if (conflicts(cmd, o))
			return true;
	return false;
}

static void hold(struct lun *l, struct scsi_cmd *cmd)
{
	cmd->lk_state = LK_HELD;
	cmd->lk_next = l->locked;
	l->locked = cmd;
}

/*
 * Lock [@lba, @lba + @n) of the LUN for @cmd, then run @start. @excl: the
 * command reads and writes the range as one (COMPARE AND WRITE, ORWRITE,
 * SBC-3 §5.2): it excludes every overlapping command; the others only
 * exclude those.
 */
static void lock_range(struct scsi_cmd *cmd, uint64_t lba, uint64_t n, bool excl,
		       void (*start)(struct scsi_cmd *cmd))
{
	struct lun *l = cmd->lun;

	cmd->lk_lba = lba;
	cmd->lk_end = lba + n;
	cmd->lk_excl = excl;
	cmd->lk_start = start;
	if (n == 0)
		return start(cmd);
	if (!blocked(l, cmd, NULL)) {
		hold(l, cmd);
		return start(cmd);
	}
	cmd->lk_state = LK_WAITING;
	cmd->lk_next = NULL;
	if (l->wait_tail)
		l->wait_tail->lk_next = cmd;
	else
		l->wait_head = cmd;
	l->wait_tail = cmd;
}

static void unlink_held(struct lun *l, struct scsi_cmd *cmd)
{
	for (struct scsi_cmd **pp = &l->locked; *pp; pp = &(*pp)->lk_next) {
		if (*pp == cmd) {
			*pp = cmd->lk_next;
			break;
		}
	}
	cmd->lk_state = LK_NONE;
}

/* The first waiter that may start now, unlinked from the wait queue. */
static struct scsi_cmd *next_runnable(struct lun *l)
{
	struct scsi_cmd *prev = NULL;

	for (struct scsi_cmd *w = l->wait_head; w; prev = w, w = w->lk_next) {
		if (blocked(l, w, w))
			continue;
		if (prev)
			prev->lk_next = w->lk_next;
		else
			l->wait_head = w->lk_next;
		if (l->wait_tail == w)
			l->wait_tail = prev;
		return w;
	}
	return NULL;
}

void scsi_unlock(struct scsi_cmd *cmd)
{
	struct lun *l = cmd->lun;
	struct scsi_cmd *w;

	if (cmd->lk_state != LK_HELD)
		return;
	unlink_held(l, cmd);
	/* Each start may complete and unlock in turn: rescan from the head. */
	while ((w = next_runnable(l))) {
		hold(l, w);
		w->lk_start(w);
	}
}

/* ---- whole transfers through the ioq ---- */

static void io_next(struct scsi_cmd *cmd);

static void io_done(struct ioq_req *req, int res)
{
	struct scsi_cmd *cmd = cmd_of(req);

	if (res < 0)
		return cmd->io_cb(cmd, res);
	if (res == 0) {
		if (cmd->io_write)
			return cmd->io_cb(cmd, -EIO);
		/* Past the end of a file that shrank under us: zeros. */
		memset(cmd->io_buf + cmd->io_pos, 0, cmd->io_len - cmd->io_pos);
		res = cmd->io_len - cmd->io_pos;
	}
	cmd->io_pos += res;
	if (cmd->io_pos < cmd->io_len)
		return io_next(cmd);
	cmd->io_cb(cmd, 0);
}

static void io_next(struct scsi_cmd *cmd)
{
	struct lun *l = cmd->lun;

	cmd->iov.iov_base = cmd->io_buf + cmd->io_pos;
	cmd->iov.iov_len = cmd->io_len - cmd->io_pos;
	cmd->req.done = io_done;
	if (cmd->io_write)
		ioq_writev(l->q, &cmd->req, l->fd, l->ioq_class, &cmd->iov, 1,
			   cmd->io_off + cmd->io_pos);
	else
		ioq_readv(l->q, &cmd->req, l->fd, l->ioq_class, &cmd->iov, 1,
			  cmd->io_off + cmd->io_pos);
}

/* Move @len bytes between @buf and byte @off of the medium, short
 * transfers resumed, then call @cb with 0 or -errno. */
static void io_start(struct scsi_cmd *cmd, bool write, uint8_t *buf, uint64_t off, uint32_t len,
		     void (*cb)(struct scsi_cmd *cmd, int err))
{
	cmd->io_write = write;
	cmd->io_buf = buf;
	cmd->io_off = off;
	cmd->io_len = len;
	cmd->io_pos = 0;
	cmd->io_cb = cb;
	if (len == 0)
		return cb(cmd, 0);
	io_next(cmd);
}

/* SBC-3 §4.18: thin provisioning out of space is a DATA PROTECT error. */
static struct sense media_sense(int err, bool write)
{
	if (err == -ENOSPC || err == -EDQUOT)
		return sense_make(SENSE_KEY_DATA_PROTECT, SENSE_SPACE_ALLOC_FAILED_WRITE_PROTECT);
	return sense_make(SENSE_KEY_MEDIUM_ERROR,
			  write ? SENSE_WRITE_ERROR : SENSE_UNRECOVERED_READ_ERROR);
}

/* ---- field checks shared by the commands ---- */

/* The CDB byte of the TRANSFER LENGTH (or NUMBER OF LOGICAL BLOCKS). */
static uint16_t length_byte(const struct scsi_cmd *cmd)
{
	switch (cmd->c.desc->len) {
	case 6:
		return 4;
	case 10:
		return 7;
	case 12:
		return 6;
	default:
		return cmd->c.opcode == 0x89 ? 13 : 10;
	}
}

/* The range is on the medium and the transfer within MAXIMUM TRANSFER
 * LENGTH (SBC-3 §6.5.3); else @cmd is completed and false returned. */
static bool check_xfer(struct scsi_cmd *cmd, uint64_t max_blocks)
{
	if (!scsi_check_range(cmd, cmd->c.lba, cmd->c.length))
		return false;
	if (cmd->c.length > max_blocks) {
		scsi_fail(cmd, sense_invalid_cdb_field(length_byte(cmd), 7));
		return false;
	}
	return true;
}

static uint64_t max_xfer_blocks(const struct lun *l)
{
	return SCSI_MAX_XFER_BYTES / l->block_size;
}

static uint64_t lba_off(const struct scsi_cmd *cmd)
{
	return cmd->c.lba * cmd->lun->block_size;
}

static uint32_t min32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* ---- READ ---- */

static void read_done(struct scsi_cmd *cmd, int err)
{
	if (err)
		return scsi_fail(cmd, media_sense(err, false));
	cmd->data_len = cmd->io_len;
	scsi_good(cmd);
}

static void read_start(struct scsi_cmd *cmd)
{
	uint32_t n = min32(cmd->xfer, scsi_data_in_cap(cmd));

	io_start(cmd, false, cmd->buf, lba_off(cmd), n, read_done);
}

/* SBC-3 §5.10-5.13 READ(6/10/12/16). DPO and FUA need nothing: reads are
 * served from the page cache, which is coherent with the medium. */
void scsi_read(struct scsi_cmd *cmd)
{
	if (!check_xfer(cmd, max_xfer_blocks(cmd->lun)))
		return;
	cmd->xfer = cmd->c.length * cmd->lun->block_size;
	lock_range(cmd, cmd->c.lba, cmd->c.length, false, read_start);
}

/* ---- WRITE, WRITE AND VERIFY ---- */

static void sync_done(struct ioq_req *req, int res)
{
	struct scsi_cmd *cmd = cmd_of(req);

	if (res < 0)
		return scsi_fail(cmd, media_sense(res, true));
	scsi_good(cmd);
}

/* FUA, or a disabled write cache (WCE=0), writes through (SBC-3 §5.31). */
static void write_done(struct scsi_cmd *cmd, int err)
{
	struct lun *l = cmd->lun;

	if (err)
		return scsi_fail(cmd, media_sense(err, true));
	if (cmd->io_len && (cmd->c.fua || !l->wce)) {
		cmd->req.done = sync_done;
		return ioq_fsync(l->q, &cmd->req, l->fd, true);
	}
	scsi_good(cmd);
}

/*
 * A write whose EDTL is shorter than its transfer writes only EDTL bytes
 * (RFC 7143 §11.4.5.1 and FCP-4 §9.4.2 a), as libiscsi's residual tests
 * check byte by byte).
 */
static void write_start(struct scsi_cmd *cmd)
{
	uint32_t n = min32(cmd->xfer, scsi_data_out_len(cmd));

	io_start(cmd, true, cmd->buf, lba_off(cmd), n, write_done);
}

/* SBC-3 §5.32-5.35 WRITE, §5.36-5.38 WRITE AND VERIFY: the data written is
 * the data received, so BYTCHK=1 compares equal by construction. */
void scsi_write(struct scsi_cmd *cmd)
{
	bool wav = cmd->c.opcode == 0x2e || cmd->c.opcode == 0x8e || cmd->c.opcode == 0xae;

	/* SBC-3 r36 table 66: BYTCHK 10b and 11b are reserved for WRITE AND VERIFY. */
	if (wav && cmd->c.bytchk > 1)
		return scsi_fail(cmd, sense_invalid_cdb_field(1, 2));
	if (!check_xfer(cmd, max_xfer_blocks(cmd->lun)))
		return;
	cmd->xfer = cmd->c.length * cmd->lun->block_size;
	lock_range(cmd, cmd->c.lba, cmd->c.length, false, write_start);
}

/* ---- VERIFY ---- */

/* SBC-3 §5.29: MISCOMPARE with the byte offset of the first difference. */
static void miscompare(struct scsi_cmd *cmd, uint64_t offset)
{
	scsi_fail(cmd,
		  sense_make_info(SENSE_KEY_MISCOMPARE, SENSE_MISCOMPARE_DURING_VERIFY, offset));
}

/* The offset of the first byte where @a and @b differ, or -1. */
static int64_t first_diff(const uint8_t *a, const uint8_t *b, uint32_t len)
{
	if (!memcmp(a, b, len))
		return -1;
	for (uint32_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return i;
	return -1;
}

static void verify_done(struct scsi_cmd *cmd, int err)
{
	uint32_t bs = cmd->lun->block_size;
	int64_t d = -1;

	if (err)
		return scsi_fail(cmd, media_sense(err, false));
	if (cmd->c.bytchk == 1) {
		d = first_diff(cmd->bounce, cmd->buf, cmd->io_len);
	} else {
		/* BYTCHK 11b: one block of data-out against every block. */
		for (uint32_t i = 0; i < cmd->c.length && d < 0; i++) {
			d = first_diff(cmd->bounce + (size_t)i * bs, cmd->buf, bs);
			if (d >= 0)
				d += (int64_t)i * bs;
		}
	}
	if (d >= 0)
		return miscompare(cmd, (uint64_t)d);
	scsi_good(cmd);
}

static void verify_start(struct scsi_cmd *cmd)
{
	io_start(cmd, false, cmd->bounce, lba_off(cmd), cmd->io_len, verify_done);
}

/* SBC-3 r36 §5.26-5.28 VERIFY(10/12/16): BYTCHK 00b checks the medium
 * only (nothing to do on a file), 01b compares the data-out, 11b compares
 * one block of data-out with each block. */
void scsi_verify(struct scsi_cmd *cmd)
{
	uint32_t bs = cmd->lun->block_size;
	uint32_t dout = scsi_data_out_len(cmd);
	uint32_t n;

	if (cmd->c.bytchk == 2)
		return scsi_fail(cmd, sense_invalid_cdb_field(1, 2));
	if (!check_xfer(cmd, max_xfer_blocks(cmd->lun)))
		return;
	if (cmd->c.bytchk == 0 || cmd->c.length == 0)
		return scsi_good(cmd);
	cmd->xfer = cmd->c.bytchk == 1 ? cmd->c.length * bs : bs;
	if (dout < cmd->xfer && cmd->c.bytchk == 3)
		return scsi_fail(cmd,
				 sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB));
	n = cmd->c.bytchk == 1 ? min32(cmd->xfer, dout) : cmd->c.length * bs;
	cmd->bounce = malloc(n ? n : 1);
	if (!cmd->bounce)
		return scsi_status(cmd, SCSI_STATUS_TASK_SET_FULL);
	cmd->io_len = n;
	lock_range(cmd, cmd->c.lba, cmd->c.length, false, verify_start);
}

/* ---- COMPARE AND WRITE, ORWRITE ---- */

static void caw_compared(struct scsi_cmd *cmd, int err)
{
	uint32_t half = cmd->c.length * cmd->lun->block_size;
	int64_t d;

	if (err)
		return scsi_fail(cmd, media_sense(err, false));
	d = first_diff(cmd->bounce, cmd->buf, half);
	if (d >= 0)
		return miscompare(cmd, (uint64_t)d);
	io_start(cmd, true, cmd->buf + half, lba_off(cmd), half, write_done);
}

static void caw_start(struct scsi_cmd *cmd)
{
	uint32_t half = cmd->c.length * cmd->lun->block_size;

	io_start(cmd, false, cmd->bounce, lba_off(cmd), half, caw_compared);
}

/*
 * SBC-3 §5.2 COMPARE AND WRITE: the data-out is the verify data then the
 * write data, NUMBER OF LOGICAL BLOCKS of each; the read, the compare and
 * the write run under an exclusive range lock.
 */
void scsi_compare_and_write(struct scsi_cmd *cmd)
{
	uint32_t half;

	if (!check_xfer(cmd, SCSI_MAX_CAW_BLOCKS))
		return;
	half = cmd->c.length * cmd->lun->block_size;
	cmd->xfer = 2 * half;
	/* SBC-3 §5.2: zero blocks is no error, but data-out sent with it
	 * contradicts the CDB: an initiator that meant 256 blocks wrote 0 in
	 * the one-byte field (libiscsi's CompareAndWrite tests expect this
	 * to fail as a length beyond the Block Limits maximum). */
	if (cmd->c.length == 0 && cmd->edtl)
		return scsi_fail(cmd, sense_invalid_cdb_field(13, 7));
	if (cmd->c.length == 0)
		return scsi_good(cmd);
	/* The data-out must hold both halves exactly. */
	if (cmd->edtl != cmd->xfer || scsi_data_out_len(cmd) != cmd->xfer)
		return scsi_fail(cmd, sense_invalid_cdb_field(13, 7));
	cmd->bounce = malloc(half);
	if (!cmd->bounce)
		return scsi_status(cmd, SCSI_STATUS_TASK_SET_FULL);
	lock_range(cmd, cmd->c.lba, cmd->c.length, true, caw_start);
}

static void orwrite_read(struct scsi_cmd *cmd, int err)
{
	if (err)
		return scsi_fail(cmd, media_sense(err, false));
	for (uint32_t i = 0; i < cmd->io_len; i++)
		cmd->bounce[i] |= cmd->buf[i];
	io_start(cmd, true, cmd->bounce, lba_off(cmd), cmd->io_len, write_done);
}

static void orwrite_start(struct scsi_cmd *cmd)
{
	io_start(cmd, false, cmd->bounce, lba_off(cmd), cmd->io_len, orwrite_read);
}

/* SBC-3 §5.8 ORWRITE(16): OR the data-out into the medium, atomically. */
void scsi_orwrite(struct scsi_cmd *cmd)
{
	uint32_t n;

	if (!check_xfer(cmd, max_xfer_blocks(cmd->lun)))
		return;
	cmd->xfer = cmd->c.length * cmd->lun->block_size;
	n = min32(cmd->xfer, scsi_data_out_len(cmd));
	if (n == 0)
		return scsi_good(cmd);
	cmd->bounce = malloc(n);
	if (!cmd->bounce)
		return scsi_status(cmd, SCSI_STATUS_TASK_SET_FULL);
	cmd->io_len = n;
	lock_range(cmd, cmd->c.lba, cmd->c.length, true, orwrite_start);
}

/* ---- helpers for scsi_lbp.c ---- */

void scsi_io_start(struct scsi_cmd *cmd, bool write, uint8_t *buf, uint64_t off, uint32_t len,
		   void (*cb)(struct scsi_cmd *cmd, int err))
{
	io_start(cmd, write, buf, off, len, cb);
}

void scsi_io_lock(struct scsi_cmd *cmd, uint64_t lba, uint64_t n,
		  void (*start)(struct scsi_cmd *cmd))
{
	lock_range(cmd, lba, n, false, start);
}

struct sense scsi_media_sense(int err, bool write)
{
	return media_sense(err, write);
}

void scsi_write_done(struct scsi_cmd *cmd, int err)
{
	write_done(cmd, err);
}
