/*
 * ioq: file I/O through io_uring, drained by the budgeted poller, or
 * synchronously from a deferred event where io_uring is unavailable.
 *
 * The ring's notification is an eventfd registered with it, armed by
 * toggling (uring_evfd.h). A submission made while the poller is idle
 * disables it and kicks the poller, which finds what completed inline and
 * re-arms (async_run()).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/magic.h>
#include <liburing.h>

#include "ioq.h"
#include "poller.h"
#include "sched.h"
#include "uring_evfd.h"

enum ioq_op {
	IOQ_READ,
	IOQ_WRITE,
	IOQ_FSYNC,
	IOQ_FALLOCATE,
};

#define IOQ_DATASYNC 0x1u
#define IOQ_SYNC_BUDGET 16   /* sync requests run per pass */
#define IOQ_INLINE_BUDGET 32 /* inline (NOWAIT, memory) requests per pass */

struct ioq {
	struct sched *sched;
	bool async;
	struct io_uring ring;
	struct uring_evfd evfd;
	struct poller poller;
	unsigned int depth, inflight;
	/* Requests waiting for a free submission slot (async), or to run
	 * (sync, and fallocate in both modes). */
	struct ioq_req *head, *tail;
	struct sched_event run_ev; /* submit (async) or run (sync) the backlog */
	bool submit_pending;
	struct ioq_stats stats;
};

#define ioq_of(ptr, member) ((struct ioq *)((char *)(ptr)-offsetof(struct ioq, member)))

static void backlog_push(struct ioq *q, struct ioq_req *req)
{
	req->next = NULL;
	if (q->tail)
		q->tail->next = req;
	else
		q->head = req;
	q->tail = req;
}

static struct ioq_req *backlog_pop(struct ioq *q)
{
	struct ioq_req *req = q->head;

	if (req) {
		q->head = req->next;
		if (!q->head)
			q->tail = NULL;
	}
	return req;
}

static void complete(struct ioq *q, struct ioq_req *req, int res)
{
	q->stats.completed++;
	req->done(req, res);
}

/* The synchronous path: also fallocate in async mode. */
static int run_sync(struct ioq_req *req)
{
	ssize_t n;

	switch (req->op) {
	case IOQ_READ:
		n = preadv(req->fd, req->iov, req->iovcnt, (off_t)req->off);
		break;
	case IOQ_WRITE:
		n = pwritev(req->fd, req->iov, req->iovcnt, (off_t)req->off);
		break;
	case IOQ_FSYNC:
		n = req->flags & IOQ_DATASYNC ? fdatasync(req->fd) : fsync(req->fd);
		break;
	case IOQ_FALLOCATE:
		n = fallocate(req->fd, req->mode, (off_t)req->off, (off_t)req->len);
		break;
	default:
		errno = EINVAL;
		n = -1;
	}
	if (n < 0)
		return -errno;
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

static bool prep_sqe(struct ioq *q, struct ioq_req *req)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe)
		return false;
	switch (req->op) {
	case IOQ_READ:
		io_uring_prep_readv(sqe, req->fd, req->iov, (unsigned int)req->iovcnt, req->off);
		break;
	case IOQ_WRITE:
		io_uring_prep_writev(sqe, req->fd, req->iov, (unsigned int)req->iovcnt, req->off);
		break;
	case IOQ_FSYNC:
		io_uring_prep_fsync(sqe, req->fd,
				    req->flags & IOQ_DATASYNC ? IORING_FSYNC_DATASYNC : 0);
		break;
	}
	io_uring_sqe_set_data(sqe, req);
	q->inflight++;
	if (q->inflight > q->stats.inflight_max)
		q->stats.inflight_max = q->inflight;
	return true;
}

static uint64_t iov_total(const struct iovec *iov, int iovcnt)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* Whether @req may be run from the deferred event rather than the ring. */
static bool inline_kind(const struct ioq_req *req)
{
	return req->op == IOQ_FALLOCATE ||
	       ((req->cls & IOQ_FD_MEMORY) && (req->op == IOQ_READ || req->op == IOQ_WRITE)) ||
	       ((req->cls & IOQ_FD_NOWAIT) && req->op == IOQ_READ);
}

/* Run an inline_kind() request here (without completing it) and return
 * true with its result in @res; false for the ring. A NOWAIT read that
 * gets less than everything (a page not cached, or the end of the file:
 * the ring tells which) goes there whole. */
static bool run_inline(struct ioq *q, struct ioq_req *req, int *res)
{
	ssize_t n;

	if (req->op == IOQ_FALLOCATE || (req->cls & IOQ_FD_MEMORY)) {
		q->stats.memory_ops += req->op != IOQ_FALLOCATE;
		*res = run_sync(req);
		return true;
	}
	n = preadv2(req->fd, req->iov, req->iovcnt, (off_t)req->off, RWF_NOWAIT);
	if (n >= 0 && (uint64_t)n == iov_total(req->iov, req->iovcnt)) {
		q->stats.inline_reads++;
		*res = n > INT32_MAX ? INT32_MAX : (int)n;
		return true;
	}
	q->stats.inline_misses++;
	return false;
}

/* Deferred: run what needs no ring (a bounded number per pass), move the
 * rest of the backlog into the ring while there is room, and submit once
 * for everything queued during the pass. Reads run here may pass writes
 * still in the ring, as the ring's own inline reads could pass its
 * punted writes: SIMPLE task attributes allow it, and the target holds
 * exclusive range locks where an order matters. */
static void async_run(struct ioq *q)
{
	struct ioq_req *req;
	int ret, res, inl = 0;

	while ((req = q->head) && q->inflight < q->depth) {
		if (inline_kind(req)) {
			if (inl++ == IOQ_INLINE_BUDGET) {
				sched_schedule(q->sched, &q->run_ev);
				break;
			}
			if (run_inline(q, req, &res)) {
				backlog_pop(q);
				q->stats.submitted++;
				complete(q, req, res);
				continue;
			}
		}
		if (!prep_sqe(q, req))
			break;
		backlog_pop(q);
	}
	if (!io_uring_sq_ready(&q->ring))
		return;
	/* A read from the page cache completes inside io_uring_enter(). Poll
	 * for it in the next pass instead of waiting for the eventfd, which
	 * is kept quiet meanwhile: that saves a wait and a read() per I/O.
	 * The poller re-arms and drains after, so a completion that comes
	 * later, asynchronously, is found as usual. */
	if (q->evfd.can_toggle && q->poller.state == POLLER_ARMED) {
		io_uring_cq_eventfd_toggle(&q->ring, false);
		poller_kick(&q->poller);
	}
	/* Entries the kernel did not take (-EAGAIN, -EBUSY: out of resources
	 * until some complete) stay in the ring and are submitted again next
	 * pass. */
	ret = io_uring_submit(&q->ring);
	if (ret > 0)
		q->stats.submitted += (unsigned int)ret;
	if (io_uring_sq_ready(&q->ring))
		sched_schedule(q->sched, &q->run_ev);
}

static void sync_run(struct ioq *q)
{
	struct ioq_req *req;
	int n = 0;

	while (n++ < IOQ_SYNC_BUDGET && (req = backlog_pop(q))) {
		q->stats.submitted++;
		complete(q, req, run_sync(req));
	}
	if (q->head)
		sched_schedule(q->sched, &q->run_ev);
}

static void ioq_run(struct sched_event *ev)
{
	struct ioq *q = ioq_of(ev, run_ev);

	if (q->async)
		async_run(q);
	else
		sync_run(q);
}

static void queue_req(struct ioq *q, struct ioq_req *req)
{
	backlog_push(q, req);
	sched_schedule(q->sched, &q->run_ev);
}

/* The poller's operations over the completion ring. */

static int ring_poll(struct poller *p, int budget)
{
	struct ioq *q = ioq_of(p, poller);
	struct io_uring_cqe *cqe;
	struct ioq_req *req;
	int n = 0, res;

	while (n < budget && io_uring_peek_cqe(&q->ring, &cqe) == 0) {
		req = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&q->ring, cqe);
		q->inflight--;
		n++;
		complete(q, req, res);
	}
	if (n && q->head)
		sched_schedule(q->sched, &q->run_ev);
	return n;
}

static int ring_arm(struct poller *p)
{
	struct ioq *q = ioq_of(p, poller);

	return uring_evfd_arm(&q->evfd, &q->ring);
}

static int ring_ack(struct poller *p)
{
	struct ioq *q = ioq_of(p, poller);

	return uring_evfd_ack(&q->evfd, &q->ring);
}

static const struct poller_ops ring_ops = {
	.poll = ring_poll,
	.arm = ring_arm,
	.ack = ring_ack,
};

static int ring_setup(struct ioq *q)
{
	int err;

	err = io_uring_queue_init(q->depth, &q->ring, 0);
	if (err)
		return err;
	err = uring_evfd_open(&q->evfd, &q->ring);
	if (err)
		goto err_exit_ring;
	poller_init(&q->poller, q->sched, &ring_ops, q->evfd.fd, POLLER_DEFAULT_WEIGHT);
	err = poller_enable(&q->poller);
	if (err)
		goto err_close_efd;
	return 0;

err_close_efd:
	uring_evfd_close(&q->evfd);
err_exit_ring:
	io_uring_queue_exit(&q->ring);
	return err;
}

int ioq_create(struct sched *s, unsigned int depth, unsigned int flags, struct ioq **ret)
{
	const char *env = getenv("ISERKIT_IOQ");
	struct ioq *q;

	if (!depth)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->sched = s;
	q->depth = depth;
	q->evfd.fd = -1;
	sched_event_init(&q->run_ev, ioq_run);
	if (env && !strcmp(env, "sync"))
		flags |= IOQ_FORCE_SYNC;
	/* io_uring refused (old kernel, seccomp, memlock): run synchronously. */
	q->async = !(flags & IOQ_FORCE_SYNC) && ring_setup(q) == 0;
	*ret = q;
	return 0;
}

void ioq_destroy(struct ioq *q)
{
	struct io_uring_cqe *cqe;

	if (!q)
		return;
	sched_cancel(q->sched, &q->run_ev);
	if (q->async) {
		poller_disable(&q->poller);
		while (q->inflight && io_uring_wait_cqe(&q->ring, &cqe) == 0) {
			io_uring_cqe_seen(&q->ring, cqe);
			q->inflight--;
		}
		io_uring_queue_exit(&q->ring);
		uring_evfd_close(&q->evfd);
	}
	free(q);
}

bool ioq_is_async(const struct ioq *q)
{
	return q->async;
}

static void req_set(struct ioq_req *req, int op, int fd, unsigned int cls, const struct iovec *iov,
		    int iovcnt, uint64_t off, unsigned int flags)
{
	req->cls = cls;
	req->len = 0;
	req->mode = 0;
	req->op = op;
	req->fd = fd;
	req->iov = iov;
	req->iovcnt = iovcnt;
	req->off = off;
	req->flags = flags;
}

void ioq_readv(struct ioq *q, struct ioq_req *req, int fd, unsigned int cls,
	       const struct iovec *iov, int iovcnt, uint64_t off)
{
	req_set(req, IOQ_READ, fd, cls, iov, iovcnt, off, 0);
	queue_req(q, req);
}

void ioq_writev(struct ioq *q, struct ioq_req *req, int fd, unsigned int cls,
		const struct iovec *iov, int iovcnt, uint64_t off)
{
	req_set(req, IOQ_WRITE, fd, cls, iov, iovcnt, off, 0);
	queue_req(q, req);
}

void ioq_fsync(struct ioq *q, struct ioq_req *req, int fd, bool datasync)
{
	req_set(req, IOQ_FSYNC, fd, 0, NULL, 0, 0, datasync ? IOQ_DATASYNC : 0);
	queue_req(q, req);
}

void ioq_fallocate(struct ioq *q, struct ioq_req *req, int fd, int mode, uint64_t off, uint64_t len)
{
	req_set(req, IOQ_FALLOCATE, fd, 0, NULL, 0, off, 0);
	req->mode = mode;
	req->len = len;
	queue_req(q, req);
}

unsigned int ioq_fd_class(int fd)
{
	struct statfs sf;
	struct stat st;
	char b;
	ssize_t n;

	/* A device node's file system is the one it lives on (devtmpfs for
	 * /dev, which says TMPFS_MAGIC): memory only for regular files. */
	if (fstat(fd, &st) || fstatfs(fd, &sf))
		return 0;
	if (S_ISREG(st.st_mode) && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC))
		return IOQ_FD_MEMORY;
	/* One byte, to learn whether the file takes RWF_NOWAIT: EAGAIN (not
	 * cached) says yes too. An empty file or a write-only one: no. */
	n = preadv2(fd, &(struct iovec){.iov_base = &b, .iov_len = 1}, 1, 0, RWF_NOWAIT);
	return n == 1 || (n < 0 && errno == EAGAIN) ? IOQ_FD_NOWAIT : 0;
}

void ioq_get_stats(const struct ioq *q, struct ioq_stats *st)
{
	*st = q->stats;
}

struct poller *ioq_poller(struct ioq *q)
{
	return q->async ? &q->poller : NULL;
}
