/*
 * fs_io: the FUSE requests that move data, answered when their SCSI
 * commands complete: read, write, fsync, fallocate. libfuse's rule for
 * fuse_reply_err() is a positive errno; blkio gives -errno: converted
 * here, in one place (reply_err).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/rbuf.h"
#include "common/sched.h"
#include "fs_priv.h"

/* A write that fills this much of libfuse's receive buffer keeps the
 * buffer (libfuse allocates a new one) instead of copying the data;
 * smaller writes are copied, so that many small writes in flight do not
 * each pin a 1 MiB buffer. */
#define STEAL_MIN (64 * 1024)

enum io_kind {
	IO_READ,
	IO_WRITE,
	IO_FSYNC,
	IO_PUNCH,
};

static const char *const io_names[] = {
	[IO_READ] = "read",
	[IO_WRITE] = "write",
	[IO_FSYNC] = "fsync",
	[IO_PUNCH] = "fallocate",
};

/* One FUSE request waiting for its SCSI commands. */
struct fs_io {
	fuse_req_t req;
	struct fs *fs;
	struct fs_lun *l;
	enum io_kind kind;
	uint64_t start_ns;
	void *owned;	  /* write data */
	struct rbuf *reg; /* holds the write data when it is registered */
};

static void reply_err(fuse_req_t req, int err)
{
	fuse_reply_err(req, err < 0 ? -err : err);
}

static struct fs_io *io_new(fuse_req_t req, struct fs_lun *l, enum io_kind kind)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_io *io = malloc(sizeof(*io));

	if (!io)
		return NULL;
	io->req = req;
	io->fs = fs;
	io->l = l;
	io->kind = kind;
	io->start_ns = sched_now(fs->sched);
	io->owned = NULL;
	io->reg = NULL;
	fs->pending++;
	if (++l->st.inflight > l->st.inflight_max)
		l->st.inflight_max = l->st.inflight;
	return io;
}

/* Account for @io's answer, then free it. */
static void io_end(struct fs_io *io, ssize_t res)
{
	struct fs_lun_stats *st = &io->l->st;
	uint64_t lat = sched_now(io->fs->sched) - io->start_ns;

	st->lat_ns_sum += lat;
	if (lat > st->lat_ns_max)
		st->lat_ns_max = lat;
	if (res < 0) {
		st->errors++;
		log_debug("%s: %s failed: %s", io->l->name, io_names[io->kind],
			  strerror((int)-res));
	} else if (io->kind == IO_READ) {
		st->read_bytes += (uint64_t)res;
	} else if (io->kind == IO_WRITE) {
		st->write_bytes += (uint64_t)res;
	}
	st->inflight--;
	io->fs->pending--;
	if (io->reg)
		ini_buf_put(io->reg);
	else
		free(io->owned);
	free(io);
}

static void read_done(void *arg, ssize_t res, const void *data)
{
	struct fs_io *io = arg;

	if (res < 0)
		reply_err(io->req, (int)res);
	else
		fuse_reply_buf(io->req, data, (size_t)res);
	io_end(io, res);
}

static void stats_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
	const struct fs_text *t = (const struct fs_text *)(uintptr_t)fi->fh;

	if (!t || off < 0 || (size_t)off >= t->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > t->len - (size_t)off)
		size = t->len - (size_t)off;
	fuse_reply_buf(req, t->text + off, size);
}

void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_lun *l = fs_lun_of(fs, ino);
	struct rbuf *reg;
	struct fs_io *io;
	size_t cap;
	void *dst;

	if (ino == FS_INO_STATS) {
		stats_read(req, size, off, fi);
		return;
	}
	if (!l || off < 0) {
		reply_err(req, l ? -EINVAL : -EISDIR);
		return;
	}
	io = io_new(req, l, IO_READ);
	if (!io) {
		reply_err(req, -ENOMEM);
		return;
	}
	l->st.reads++;
	/* From a ring entry: read into the entry, where the reply goes. */
	dst = fs_uring_payload(fs, &cap, &reg);
	blkio_read_into(&l->dev, (uint64_t)off, size, dst, cap, reg, read_done, io);
}

static void write_done(void *arg, ssize_t res, const void *data)
{
	struct fs_io *io = arg;

	(void)data;
	if (res < 0)
		reply_err(io->req, (int)res);
	else
		fuse_reply_write(io->req, (size_t)res);
	io_end(io, res);
}

/* The write's data outlives this handler: libfuse reuses its buffer for
 * the next request. From a ring entry, use it where it is (over iSER the
 * entry is registered: *@reg). Else keep libfuse's buffer itself when the
 * write fills much of it, or copy. NULL: out of memory. */
static const void *write_keep(struct fs *fs, struct fs_io *io, const char *buf, size_t size,
			      struct rbuf **reg)
{
	uintptr_t p = (uintptr_t)buf, mem = (uintptr_t)fs->rx.mem, ent;
	size_t cap;

	/* A ring entry keeps its request until it is answered. */
	ent = (uintptr_t)fs_uring_payload(fs, &cap, reg);
	if (ent && p >= ent && p + size >= p && p + size <= ent + cap)
		return buf;
	if (size >= STEAL_MIN && fs->rx.mem && p >= mem && p + size <= mem + fs->rx.size) {
		io->owned = fs->rx.mem;
		io->reg = *reg = fs->rx_reg;
		fs->rx.mem = NULL; /* the next receive takes a new one */
		fs->rx_reg = NULL;
		return buf;
	}
	/* Over iSER a registered copy, so that it is the only one. */
	fs->write_copies++;
	io->reg = *reg = size ? ini_buf_get(fs->sess, size) : NULL;
	if (io->reg) {
		io->owned = io->reg->addr;
		memcpy(io->owned, buf, size);
		return io->owned;
	}
	io->owned = malloc(size ? size : 1);
	if (io->owned)
		memcpy(io->owned, buf, size);
	return io->owned;
}

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_lun *l = fs_lun_of(fs, ino);
	struct rbuf *reg = NULL;
	const void *data;
	struct fs_io *io;

	(void)fi;
	if (!l || l->ro || off < 0) {
		reply_err(req, !l ? -EBADF : l->ro ? -EROFS : -EINVAL);
		return;
	}
	io = io_new(req, l, IO_WRITE);
	if (!io) {
		reply_err(req, -ENOMEM);
		return;
	}
	l->st.writes++;
	data = write_keep(fs, io, buf, size, &reg);
	if (!data) {
		write_done(io, -ENOMEM, NULL);
		return;
	}
	blkio_write_reg(&l->dev, (uint64_t)off, data, size, reg, write_done, io);
}

static void status_done(void *arg, ssize_t res, const void *data)
{
	struct fs_io *io = arg;

	(void)data;
	reply_err(io->req, (int)res);
	io_end(io, res);
}

void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs_lun *l = fs_lun_of(fuse_req_userdata(req), ino);
	struct fs_io *io;

	(void)datasync;
	(void)fi;
	/* Nothing to make durable: the .stats file, a read-only LUN. */
	if (!l || l->ro) {
		reply_err(req, 0);
		return;
	}
	io = io_new(req, l, IO_FSYNC);
	if (!io) {
		reply_err(req, -ENOMEM);
		return;
	}
	l->st.fsyncs++;
	blkio_sync(&l->dev, status_done, io);
}

void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		     struct fuse_file_info *fi)
{
	struct fs_lun *l = fs_lun_of(fuse_req_userdata(req), ino);
	struct fs_io *io;

	(void)fi;
	/* As a block device: a hole, nothing else (the size is fixed). */
	if (!l || mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		reply_err(req, -EOPNOTSUPP);
		return;
	}
	if (l->ro || off < 0 || len <= 0) {
		reply_err(req, l->ro ? -EROFS : -EINVAL);
		return;
	}
	io = io_new(req, l, IO_PUNCH);
	if (!io) {
		reply_err(req, -ENOMEM);
		return;
	}
	l->st.punches++;
	blkio_punch(&l->dev, (uint64_t)off, (uint64_t)len, status_done, io);
}
