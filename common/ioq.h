/*
 * ioq: asynchronous file I/O for one scheduler thread, through io_uring
 * (liburing), with a synchronous fallback where io_uring is missing or
 * refused (old kernels, seccomp, containers) or when forced.
 *
 * The completion ring is one more source drained by the budgeted poller
 * (poller.h): its notification fd is an eventfd registered with the ring.
 * Completions are always delivered from the scheduler, never from inside
 * the submitting call, in both modes, so callers have one code path.
 */
#ifndef ISERKIT_IOQ_H
#define ISERKIT_IOQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct sched;
struct ioq;

/* One request, embedded in its owner; valid until @done runs. */
struct ioq_req {
	void (*done)(struct ioq_req *req, int res); /* res: bytes, or -errno */
	/* Private to ioq. */
	struct ioq_req *next;
	const struct iovec *iov;
	uint64_t off, len;
	int op, fd, iovcnt, mode;
	unsigned int flags, cls;
};

#define IOQ_FORCE_SYNC 0x1u /* do not try io_uring */

/*
 * How the reads and writes of a file are best run, from what its file
 * system offers (ioq_fd_class(), once per open file):
 * IOQ_FD_NOWAIT  reads try preadv2(RWF_NOWAIT) first, from the deferred
 *                event: a page-cache hit is copied there and then, without
 *                a trip through the ring and its eventfd; a miss goes to
 *                io_uring as before.
 * IOQ_FD_MEMORY  a regular file on tmpfs or ramfs (not a device node in
 *                /dev, which is devtmpfs): nothing waits for a disk, and
 *                io_uring hands every request to a worker thread (no
 *                FMODE_NOWAIT): reads and writes run synchronously, as in
 *                sync mode.
 */
#define IOQ_FD_NOWAIT 0x1u
#define IOQ_FD_MEMORY 0x2u

unsigned int ioq_fd_class(int fd);

/*
 * Create a queue of @depth (> 0) entries on @s. Tries io_uring unless
 * @flags has IOQ_FORCE_SYNC or the environment has ISERKIT_IOQ=sync.
 * Returns 0 or -errno (-ENOMEM...); io_uring being unavailable is not an
 * error (see ioq_is_async()).
 */
int ioq_create(struct sched *s, unsigned int depth, unsigned int flags, struct ioq **ret);

/* Destroy; NULL allowed. Waits for requests in flight and drops their
 * callbacks. */
void ioq_destroy(struct ioq *q);

bool ioq_is_async(const struct ioq *q);

/* Queue a read, write (vectored) or fsync of @fd, of class @cls (0 or
 * ioq_fd_class()'s); completion via @req->done. A short read or write is
 * completed as is: the caller decides. Never fails: a request that cannot
 * be queued completes with -errno. */
void ioq_readv(struct ioq *q, struct ioq_req *req, int fd, unsigned int cls,
	       const struct iovec *iov, int iovcnt, uint64_t off);
void ioq_writev(struct ioq *q, struct ioq_req *req, int fd, unsigned int cls,
		const struct iovec *iov, int iovcnt, uint64_t off);
void ioq_fsync(struct ioq *q, struct ioq_req *req, int fd, bool datasync);

/* fallocate(2) (PUNCH_HOLE|KEEP_SIZE for UNMAP), run synchronously in both
 * modes (io_uring's fallocate needs kernel 5.6), completed like the rest. */
void ioq_fallocate(struct ioq *q, struct ioq_req *req, int fd, int mode, uint64_t off,
		   uint64_t len);

struct ioq_stats {
	uint64_t submitted, completed, inflight_max;
	uint64_t inline_reads;	/* IOQ_FD_NOWAIT reads served by preadv2 */
	uint64_t inline_misses; /* ... that went to io_uring after all */
	uint64_t memory_ops;	/* IOQ_FD_MEMORY reads and writes */
};

void ioq_get_stats(const struct ioq *q, struct ioq_stats *st);

/* The poller that drains the ring, for its counters. NULL in sync mode. */
struct poller *ioq_poller(struct ioq *q);

#endif
