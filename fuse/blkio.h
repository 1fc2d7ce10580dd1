/*
 * blkio: a LUN as a byte-addressed file of fixed size, over SCSI block
 * commands (READ (16), WRITE (16), UNMAP, SYNCHRONIZE CACHE (16)).
 *
 * - Any offset and length: a request is widened to whole blocks, split
 *   into commands of at most max_io bytes that run in parallel, and
 *   completed once they all have.
 * - A write that covers part of a block is a read-modify-write of that
 *   block. While it runs, no other write may touch the block: between its
 *   read and its write, another write would be lost. So every write holds
 *   its block range: RMW writes (and hole punches) exclusively, whole-block
 *   writes shared with each other but not with an RMW. A write that
 *   conflicts with a held range, or with an earlier waiting write, waits in
 *   FIFO order. Reads take no range: a read concurrent with a write may see
 *   either, as on a disk.
 * - A read at or past the end returns 0 bytes, a read across it is short;
 *   a write at or past the end fails with -ENOSPC, across it is short.
 *
 * Everything runs on the scheduler's thread. @cb runs exactly once per
 * request; it may run before the call returns when nothing needs the
 * target (a read at the end, a bad argument, no memory).
 */
#ifndef ISERKIT_BLKIO_H
#define ISERKIT_BLKIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ini.h"

struct blkio_stats {
	uint64_t cmds;	       /* SCSI commands completed */
	uint64_t cmd_errors;   /* ...that failed */
	uint64_t read_bytes;   /* moved by READ (16), RMW reads included */
	uint64_t write_bytes;  /* moved by WRITE (16) */
	uint64_t rmw;	       /* writes done as read-modify-write */
	uint64_t waits;	       /* writes that waited for an overlapping one */
	uint64_t unmaps;       /* UNMAP commands */
	uint64_t syncs;	       /* SYNCHRONIZE CACHE commands */
	unsigned int inflight; /* commands submitted, not completed */
};

/* List links for the range locks; private to blkio. */
struct blkio_link {
	struct blkio_link *next, *prev;
};

/* One LUN. Set up with blkio_init(); embedded in its owner. */
struct blkio_dev {
	void (*submit)(void *ctx, struct ini_cmd *cmd); /* never completes inline */
	void *ctx;
	/* Optional (blkio_set_bufs()): where request buffers come from. */
	struct rbuf *(*buf_get)(void *ctx, size_t len);
	void (*buf_put)(struct rbuf *b);
	uint64_t lun;
	uint32_t block_size;
	uint64_t nblocks;
	uint32_t max_io;    /* bytes per READ/WRITE, a multiple of block_size */
	uint32_t max_unmap; /* blocks per UNMAP; 0: punching holes unsupported */
	struct blkio_link held, waiting;
	struct blkio_stats st;
};

/*
 * Set up @d for LUN @lun of @nblocks blocks of @block_size bytes; commands
 * go to @submit(@ctx, cmd) (ini_submit in the program, a fake in tests).
 * @max_io is rounded down to whole blocks (at least one).
 */
void blkio_init(struct blkio_dev *d, void (*submit)(void *ctx, struct ini_cmd *cmd), void *ctx,
		uint64_t lun, uint32_t block_size, uint64_t nblocks, uint32_t max_io,
		uint32_t max_unmap);

/*
 * Take request buffers from @get(@ctx, len) (NULL: fall back to malloc)
 * and give them back with @put: ini_buf_get() and ini_buf_put(), so that
 * over iSER the target reads and writes them with no copy.
 */
void blkio_set_bufs(struct blkio_dev *d, struct rbuf *(*get)(void *ctx, size_t len),
		    void (*put)(struct rbuf *b));

uint64_t blkio_size(const struct blkio_dev *d);

/*
 * The requests. @cb(@arg, res, data) gets the bytes read or written (a
 * read's @data holds them, valid during the call only), 0 for punch and
 * sync, or -errno: the first failed command's, -ENOSPC, -EOPNOTSUPP,
 * -ENOMEM.
 */

/* Read @len bytes at @off. */
void blkio_read(struct blkio_dev *d, uint64_t off, size_t len,
		void (*cb)(void *arg, ssize_t res, const void *data), void *arg);

/* The same into @dst (@cap bytes, valid until @cb runs, inside @reg when
 * that is not NULL: an ini_buf_wrap() or ini_buf_get() buffer, which over
 * iSER the target writes into) when the read is of whole blocks that fit:
 * no buffer of ours, @cb's data is @dst. Other reads (and @dst NULL) go
 * through a buffer of ours: blkio_read() is this with no @dst. */
void blkio_read_into(struct blkio_dev *d, uint64_t off, size_t len, void *dst, size_t cap,
		     struct rbuf *reg, void (*cb)(void *arg, ssize_t res, const void *data),
		     void *arg);

/* Write @len bytes of @buf at @off; @buf must stay valid until @cb runs. */
void blkio_write(struct blkio_dev *d, uint64_t off, const void *buf, size_t len,
		 void (*cb)(void *arg, ssize_t res, const void *data), void *arg);

/* The same, @buf inside @reg (an ini_buf_get() buffer, or NULL): over
 * iSER the target reads the data from there, with no copy. */
void blkio_write_reg(struct blkio_dev *d, uint64_t off, const void *buf, size_t len,
		     struct rbuf *reg, void (*cb)(void *arg, ssize_t res, const void *data),
		     void *arg);

/*
 * fallocate(PUNCH_HOLE): UNMAP the whole blocks of [@off, @off + @len)
 * (clamped to the size) and write zeros over the parts of blocks at its
 * edges. -EOPNOTSUPP when the LUN cannot unmap.
 */
void blkio_punch(struct blkio_dev *d, uint64_t off, uint64_t len,
		 void (*cb)(void *arg, ssize_t res, const void *data), void *arg);

/* SYNCHRONIZE CACHE (16) of the whole LUN. */
void blkio_sync(struct blkio_dev *d, void (*cb)(void *arg, ssize_t res, const void *data),
		void *arg);

#endif
