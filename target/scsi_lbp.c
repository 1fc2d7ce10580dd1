/*
 * scsi_lbp: logical block provisioning and the cache (SBC-3 §4.7, §5):
 * WRITE SAME, UNMAP, GET LBA STATUS, SYNCHRONIZE CACHE.
 *
 * A sparse file is a thin-provisioned LUN: an unmapped block is a hole,
 * punched with fallocate(PUNCH_HOLE|KEEP_SIZE), and reads back as zeros
 * (LBPRZ). A block device discards with BLKDISCARD and promises nothing
 * about what reads back.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "scsi_priv.h"

#define cmd_of(r) ((struct scsi_cmd *)((char *)(r)-offsetof(struct scsi_cmd, req)))

#define WS_CHUNK_BYTES (1u << 20) /* WRITE SAME writes its pattern this much at a time */
#define UNMAP_HEADER_LEN 8
#define UNMAP_DESC_LEN 16
#define LBA_STATUS_HEADER_LEN 8
#define LBA_STATUS_DESC_LEN 16
#define LBA_STATUS_MAX_DESCS 64
#define PROVISIONING_MAPPED 0x0
#define PROVISIONING_DEALLOCATED 0x1

static void discard_done(struct ioq_req *req, int res)
{
	struct scsi_cmd *cmd = cmd_of(req);

	cmd->io_cb(cmd, res < 0 ? res : 0);
}

/* Deallocate blocks [@lba, @lba + @n), then call @cb with 0 or -errno. */
static void discard(struct scsi_cmd *cmd, uint64_t lba, uint64_t n,
		    void (*cb)(struct scsi_cmd *cmd, int err))
{
	struct lun *l = cmd->lun;
	uint64_t range[2] = {lba * l->block_size, n * l->block_size};
	int err = 0;

	cmd->io_cb = cb;
	if (l->blockdev) {
		/* Discard is advisory (SBC-3 §4.7.3.4): a device without it is fine. */
		if (ioctl(l->fd, BLKDISCARD, range) && errno != EOPNOTSUPP)
			err = -errno;
		return cb(cmd, err);
	}
	cmd->req.done = discard_done;
	ioq_fallocate(l->q, &cmd->req, l->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, range[0],
		      range[1]);
}

static void punched(struct scsi_cmd *cmd, int err)
{
	if (err)
		return scsi_fail(cmd, scsi_media_sense(err, true));
	scsi_good(cmd);
}

/* ---- WRITE SAME ---- */

static uint32_t ws_chunk_blocks(const struct scsi_cmd *cmd)
{
	uint32_t max = WS_CHUNK_BYTES / cmd->lun->block_size;
	uint64_t left = cmd->c.length - cmd->io_idx;

	return left < max ? (uint32_t)left : max;
}

static void ws_next(struct scsi_cmd *cmd);

static void ws_written(struct scsi_cmd *cmd, int err)
{
	if (err)
		return scsi_fail(cmd, scsi_media_sense(err, true));
	cmd->io_idx += cmd->io_len / cmd->lun->block_size;
	if (cmd->io_idx < cmd->c.length)
		return ws_next(cmd);
	scsi_write_done(cmd, 0);
}

static void ws_next(struct scsi_cmd *cmd)
{
	uint32_t bs = cmd->lun->block_size;

	scsi_io_start(cmd, true, cmd->bounce, (cmd->c.lba + cmd->io_idx) * bs,
		      ws_chunk_blocks(cmd) * bs, ws_written);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

static void ws_start(struct scsi_cmd *cmd)
{
	if (cmd->io_stage)
		return discard(cmd, cmd->c.lba, cmd->c.length, punched);
	ws_next(cmd);
}

/* Fill the chunk buffer with the pattern block; mark an unmap. */
static int ws_prepare(struct scsi_cmd *cmd)
{
	uint32_t bs = cmd->lun->block_size;
	const uint8_t *pattern = cmd->c.ndob ? NULL : cmd->buf;
	bool zero = !pattern || all_zero(pattern, bs);
	uint32_t chunk = ws_chunk_blocks(cmd);

	/* SBC-3 §5.43: UNMAP=1 may deallocate when reads then return the
	 * pattern: only a zero pattern on a sparse file (LBPRZ). */
	cmd->io_stage = cmd->c.unmap && zero && !cmd->lun->blockdev;
	if (cmd->io_stage)
		return 0;
	cmd->bounce = pattern ? malloc((size_t)chunk * bs) : calloc(chunk, bs);
	if (!cmd->bounce)
		return -ENOMEM;
	for (uint32_t i = 0; pattern && i < chunk; i++)
		memcpy(cmd->bounce + (size_t)i * bs, pattern, bs);
	return 0;
}

/* SBC-3 §5.42-5.43 WRITE SAME(10/16), with UNMAP and (SBC-4) NDOB. */
void scsi_write_same(struct scsi_cmd *cmd)
{
	uint16_t nblocks_byte = cmd->c.desc->len == 10 ? 7 : 10;
	uint32_t bs = cmd->lun->block_size;

	/* ANC_SUP is zero in the Logical Block Provisioning VPD page. */
	if (cmd->c.anchor)
		return scsi_fail(cmd, sense_invalid_cdb_field(1, 4));
	/* WSNZ is one, and MAXIMUM WRITE SAME LENGTH bounds it (SBC-3 §6.5.3). */
	if (cmd->c.length == 0 || cmd->c.length > SCSI_MAX_XFER_BYTES / bs)
		return scsi_fail(cmd, sense_invalid_cdb_field(nblocks_byte, 7));
	if (!scsi_check_range(cmd, cmd->c.lba, cmd->c.length))
		return;
	cmd->xfer = cmd->c.ndob ? 0 : bs;
	/* One logical block of data-out, exactly. */
	if (!cmd->c.ndob && (cmd->edtl != bs || scsi_data_out_len(cmd) != bs))
		return scsi_fail(cmd,
				 sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB));
	if (ws_prepare(cmd))
		return scsi_status(cmd, SCSI_STATUS_TASK_SET_FULL);
	scsi_io_lock(cmd, cmd->c.lba, cmd->c.length, ws_start);
}

/* ---- UNMAP ---- */

static const uint8_t *unmap_desc(const struct scsi_cmd *cmd, uint32_t i)
{
	return cmd->buf + UNMAP_HEADER_LEN + (size_t)i * UNMAP_DESC_LEN;
}

static void unmap_next(struct scsi_cmd *cmd, int err)
{
	if (err)
		return scsi_fail(cmd, scsi_media_sense(err, true));
	while (cmd->io_idx < cmd->io_len) {
		const uint8_t *d = unmap_desc(cmd, cmd->io_idx++);
		uint32_t n = be_get32(d + 8);

		if (n)
			return discard(cmd, be_get64(d), n, unmap_next);
	}
	scsi_good(cmd);
}

static void unmap_start(struct scsi_cmd *cmd)
{
	cmd->io_idx = 0;
	unmap_next(cmd, 0);
}

/* Check every descriptor before unmapping any (SBC-3 §5.28). Returns the
 * sense to fail with, or key NO SENSE; sets the range the list covers. */
static struct sense unmap_check(struct scsi_cmd *cmd, uint32_t ndesc, uint64_t *lo, uint64_t *hi)
{
	uint64_t blocks = cmd->lun->blocks, total = 0;

	if (ndesc > SCSI_MAX_UNMAP_DESCS)
		return sense_invalid_param_field(2, -1);
	*lo = UINT64_MAX;
	*hi = 0;
	for (uint32_t i = 0; i < ndesc; i++) {
		const uint8_t *d = unmap_desc(cmd, i);
		uint64_t lba = be_get64(d);
		uint32_t n = be_get32(d + 8);

		if (lba > blocks || n > blocks - lba)
			return sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_LBA_OUT_OF_RANGE);
		total += n;
		if (total > SCSI_MAX_UNMAP_BLOCKS)
			return sense_invalid_param_field(UNMAP_HEADER_LEN + i * UNMAP_DESC_LEN + 8,
							 -1);
		if (n && lba < *lo)
			*lo = lba;
		if (n && lba + n > *hi)
			*hi = lba + n;
	}
	return (struct sense){0};
}

/* SBC-3 §5.28 UNMAP */
void scsi_unmap(struct scsi_cmd *cmd)
{
	uint32_t len = scsi_data_out_len(cmd), ndesc;
	uint64_t lo = 0, hi = 0;
	struct sense s;

	if (cmd->c.anchor)
		return scsi_fail(cmd, sense_invalid_cdb_field(1, 0));
	cmd->xfer = cmd->c.param_len;
	if (cmd->c.param_len == 0)
		return scsi_good(cmd);
	if (len > cmd->c.param_len)
		len = cmd->c.param_len;
	if (len < UNMAP_HEADER_LEN)
		return scsi_fail(cmd, sense_make(SENSE_KEY_ILLEGAL_REQUEST,
						 SENSE_PARAMETER_LIST_LENGTH_ERROR));
	/* A partial descriptor at the end is ignored. */
	ndesc = be_get16(cmd->buf + 2);
	if (ndesc > len - UNMAP_HEADER_LEN)
		ndesc = len - UNMAP_HEADER_LEN;
	ndesc /= UNMAP_DESC_LEN;
	s = unmap_check(cmd, ndesc, &lo, &hi);
	if (s.key)
		return scsi_fail(cmd, s);
	cmd->io_len = ndesc;
	if (hi == 0)
		return scsi_good(cmd);
	scsi_io_lock(cmd, lo, hi - lo, unmap_start);
}

/* ---- GET LBA STATUS ---- */

/*
 * The extent of blocks starting at @lba with one provisioning status, from
 * SEEK_DATA/SEEK_HOLE. A block partly holding data is mapped. Returns the
 * number of blocks and sets @status.
 */
static uint64_t extent(const struct lun *l, uint64_t lba, uint8_t *status)
{
	uint64_t bs = l->block_size, off = lba * bs;
	off_t data, hole;

	*status = PROVISIONING_MAPPED;
	if (l->blockdev)
		return l->blocks - lba;
	data = lseek(l->fd, (off_t)off, SEEK_DATA);
	if (data < 0 && errno == ENXIO) {
		*status = PROVISIONING_DEALLOCATED;
		return l->blocks - lba;
	}
	if (data < 0)
		return l->blocks - lba; /* SEEK_DATA unsupported: all mapped */
	if ((uint64_t)data / bs > lba) {
		*status = PROVISIONING_DEALLOCATED;
		return (uint64_t)data / bs - lba;
	}
	hole = lseek(l->fd, (off_t)off, SEEK_HOLE);
	if (hole < 0 || (uint64_t)hole >= l->blocks * bs)
		return l->blocks - lba;
	return ((uint64_t)hole + bs - 1) / bs - lba;
}

/* SBC-3 §5.7 GET LBA STATUS */
void scsi_get_lba_status(struct scsi_cmd *cmd)
{
	uint8_t data[LBA_STATUS_HEADER_LEN + LBA_STATUS_MAX_DESCS * LBA_STATUS_DESC_LEN] = {0};
	uint32_t max = cmd->c.alloc_len > LBA_STATUS_HEADER_LEN
			       ? (cmd->c.alloc_len - LBA_STATUS_HEADER_LEN) / LBA_STATUS_DESC_LEN
			       : 0;
	uint64_t lba = cmd->c.lba;
	uint32_t n = 0;

	if (lba >= cmd->lun->blocks)
		return scsi_fail(cmd,
				 sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_LBA_OUT_OF_RANGE));
	if (max == 0)
		max = 1;
	if (max > LBA_STATUS_MAX_DESCS)
		max = LBA_STATUS_MAX_DESCS;
	while (n < max && lba < cmd->lun->blocks) {
		uint8_t *d = data + LBA_STATUS_HEADER_LEN + n++ * LBA_STATUS_DESC_LEN;
		uint8_t status;
		uint64_t len = extent(cmd->lun, lba, &status);

		if (len > UINT32_MAX)
			len = UINT32_MAX;
		be_put64(d, lba);
		be_put32(d + 8, (uint32_t)len);
		d[12] = status;
		lba += len;
	}
	be_put32(data, 4 + n * LBA_STATUS_DESC_LEN);
	scsi_data_in(cmd, data, LBA_STATUS_HEADER_LEN + n * LBA_STATUS_DESC_LEN, cmd->c.alloc_len);
}

/* ---- SYNCHRONIZE CACHE ---- */

static void synced(struct ioq_req *req, int res)
{
	struct scsi_cmd *cmd = cmd_of(req);

	if (res < 0)
		return scsi_fail(cmd, scsi_media_sense(res, true));
	scsi_good(cmd);
}

/* SBC-3 §5.22-5.23: NUMBER OF LOGICAL BLOCKS zero means to the end. The
 * page cache is flushed as a whole; IMMED is honoured by finishing late. */
void scsi_sync_cache(struct scsi_cmd *cmd)
{
	struct lun *l = cmd->lun;

	if (!scsi_check_range(cmd, cmd->c.lba, cmd->c.length))
		return;
	cmd->req.done = synced;
	ioq_fsync(l->q, &cmd->req, l->fd, true);
}
