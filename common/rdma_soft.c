/*
 * rdma_soft: the soft RDMA provider (DESIGN §5). iWARP in user space over
 * non-blocking TCP sockets on the scheduler: MPA (RFC 5044, Rev 2 with RFC
 * 6581's IRD/ORD), DDP (RFC 5041) and RDMAP (RFC 5040), every frame built
 * and parsed by common/iwarp.
 *
 * Transmit: work requests are cut into FPDUs of at most max_ulpdu bytes,
 * each an iovec of its header, the payload straight from registered memory
 * and its PAD and CRC; a ring of such frames is written with sendmsg.
 * Read Responses are served from the same ring, between two messages.
 * Receive: FPDUs are framed in a receive buffer; once a segment's headers
 * are there and it carries a large payload, the rest of it is read
 * straight into the memory it is placed in (its CRC checked afterwards).
 *
 * Completion semantics, as siw's: a Send or an RDMA Write completes when
 * its last byte went to TCP, an RDMA Read when the last Read Response
 * segment was placed. iWARP acknowledges nothing, so a Send or a Write the
 * peer refuses has completed already when the peer's Terminate comes back;
 * the Terminate then puts the connection in error and flushes what
 * remains. An RDMA Read the peer refuses is still outstanding: it
 * completes with the Terminate's error (RDMA_WC_REM_ACCESS_ERR...).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/be.h"
#include "common/iwarp.h"
#include "common/rdma.h"
#include "common/sched.h"

#define SOFT_MAX_SGE 8
#define SOFT_ORD_MAX 128 /* our RDMA Reads in flight, at most */
#define SOFT_IRD_MAX 128 /* the peer's RDMA Reads we queue, at most */
#define SOFT_PDATA_MAX (IWARP_MPA_PD_MAX - IWARP_MPA_V2_LEN)
#define SOFT_MULPDU_DEFAULT 16384 /* unless the TCP MSS is smaller */
#define SOFT_ULPDU_MIN 64	  /* room for every header and some payload */
#define SOFT_TX_FRAMES 32
#define SOFT_TX_CTRL 2 /* ring slots kept for a Terminate, an RTR, an MPA frame */
#define SOFT_TX_ROUNDS 32
#define SOFT_IOV_BATCH 64
#define SOFT_RX_CAP (2 * (IWARP_ULPDU_MAX + 16))
#define SOFT_RX_ROUNDS 16
#define SOFT_DIRECT_MIN 2048 /* payload worth reading straight into place */
#define SOFT_AHEAD_MAX 64    /* Read Response FPDUs laid out per read ahead */
#define SOFT_AHEAD_MISS 8    /* read-ahead misses in a row before giving up */
#define SOFT_MPA_TIMEOUT_NS (10ull * 1000000000)
#define SOFT_LINGER_NS (2ull * 1000000000)
#define SOFT_ACCEPT_BATCH 16

/* The largest headers of a frame: ULPDU_Length, an untagged DDP header and
 * a Terminate header with the DDP and Read Request headers it echoes. */
#define SOFT_TERM_MAX \
	(IWARP_TERM_CTRL_LEN + IWARP_TERM_SEGLEN_LEN + IWARP_UNTAGGED_HDR_LEN + IWARP_READ_REQ_LEN)
#define SOFT_HDR_MAX (IWARP_FPDU_HDR_LEN + IWARP_UNTAGGED_HDR_LEN + SOFT_TERM_MAX)
#define SOFT_FRAME_IOV (SOFT_MAX_SGE + 2)

/* Raw fields of a DDP header a Terminate echoes (iwarp.h keeps its own
 * private): RFC 5041 §4.1 T bit, RFC 5040 §4.1 opcode, §4.3 MSN offset. */
#define DDP_T 0x80
#define RDMAP_OPCODE 0x0f
#define DDP_OFF_MSN 10

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct soft_dev {
	struct rdma_dev base;
	struct sched *sched;
	struct rdma_dev_opts opts;
	struct soft_evq *ev_head, *ev_tail;
	struct soft_mr **mrs; /* by STag index; index 0 never used */
	uint32_t n_mrs;
	uint8_t key;
};

struct soft_pd {
	struct rdma_pd base;
};

/* STag = index << 8 | key, as siw cuts them: lkey == rkey. */
struct soft_mr {
	struct rdma_mr base;
	struct soft_pd *pd;
	uint64_t addr, len;
	unsigned int access;
	bool valid; /* false once a Send with Invalidate named it */
};

struct soft_cq {
	struct rdma_cq base;
	struct rdma_wc *ring;
	uint32_t cap, head, count;
	/* Ring entries plus posted requests that may still complete: a post
	 * that would let the ring overflow fails with -ENOMEM instead. */
	uint32_t reserved;
	bool armed;
	void (*notify)(void *arg); /* rdma_cq_set_notify(): instead of the fd */
	void *notify_arg;
};

/* A queued event, embedded in its connection. */
struct soft_evq {
	struct soft_evq *next, *prev;
	bool queued;
	struct soft_conn *conn;
	struct rdma_event ev;
};

struct soft_swqe {
	uint64_t wr_id;
	enum rdma_wr_opcode opcode;
	enum rdma_wc_status status;
	bool signaled;
	bool done; /* finished: completes when it reaches the head */
	int num_sge;
	struct rdma_sge sge[SOFT_MAX_SGE];
	uint64_t len;
	uint64_t remote_addr;
	uint32_t rkey, inv_rkey;
	uint32_t msn; /* RDMA Read: its Read Request's MSN on queue 1 */
	uint64_t got; /* RDMA Read: bytes of the response placed */
};

struct soft_seg {
	uint8_t *p;
	uint32_t len;
};

struct soft_rwqe {
	uint64_t wr_id;
	enum rdma_wc_status status;
	bool done;
	int num_sge;
	struct soft_seg seg[SOFT_MAX_SGE];
	uint64_t len;
};

/* An RDMA Read Request the peer made, being answered (RFC 5040 §5.2). */
struct soft_irqe {
	const uint8_t *src;
	uint32_t size, sent;
	uint32_t sink_stag;
	uint64_t sink_to;
};

enum frame_kind {
	FRAME_FPDU,
	FRAME_RAW, /* an MPA frame, or the detached rest of a frame */
	FRAME_TERM,
};

struct soft_frame {
	struct iovec iov[SOFT_FRAME_IOV];
	int iovcnt;
	size_t len;
	enum frame_kind kind;
	void *owned;
	struct soft_swqe *wqe; /* a Send or Write whose last byte this is */
	uint8_t hdr[SOFT_HDR_MAX];
	uint8_t trailer[IWARP_FPDU_TRAILER_MAX];
};

enum soft_state {
	S_CONNECTING, /* active: TCP connect in progress */
	S_REP_WAIT,   /* active: MPA Request sent, waiting for the Reply */
	S_REQ_WAIT,   /* passive: reading the MPA Request */
	S_REQ_RCVD,   /* passive: CONNECT_REQUEST given, accept or reject next */
	S_RTS,
	S_ERROR,  /* queue pair in error; the stream is closing */
	S_CLOSED, /* socket closed */
};

/* What the peer's MPA Request asked for. */
struct soft_peer_req {
	bool crc, enhanced, p2p;
	uint8_t rev, rtr;
	uint16_t ird, ord;
};

/* A payload being read straight into its place, past the receive buffer. */
struct soft_direct {
	bool on;
	struct iovec iov[SOFT_MAX_SGE + 1]; /* the rest of the payload, then the trailer */
	int iovcnt;
	uint8_t trailer[IWARP_FPDU_TRAILER_MAX];
	struct digest_ctx crc;
	struct iwarp_hdr h;
	uint8_t seg[IWARP_UNTAGGED_HDR_LEN + IWARP_READ_REQ_LEN]; /* for a Terminate */
	uint32_t plen;
	size_t tlen; /* PAD and CRC */
	size_t left; /* bytes still to read: payload rest and trailer */
};

/*
 * Read Response FPDUs read ahead (rx_ahead_read()): the rest of the oldest
 * RDMA Read's response, laid out as the peer segments it, each payload in
 * the sink buffer, each header and trailer here.
 */
struct soft_ahead {
	bool never;    /* the peer's segments did not match, SOFT_AHEAD_MISS times */
	uint32_t seg;  /* payload of the peer's last Read Response segment but one */
	uint32_t miss; /* read-aheads in a row that did not match */
	size_t have;   /* bytes of FPDU 0 read */
	int n;	       /* FPDUs laid out */
	struct {
		uint64_t pos; /* in the Read's sink */
		uint32_t plen, tlen;
	} f[SOFT_AHEAD_MAX];
	uint8_t hdr[SOFT_AHEAD_MAX][IWARP_FPDU_HDR_LEN + IWARP_TAGGED_HDR_LEN];
	uint8_t trl[SOFT_AHEAD_MAX][IWARP_FPDU_TRAILER_MAX];
	struct iovec iov[3 * SOFT_AHEAD_MAX];
};

struct soft_listener;

struct soft_conn {
	struct rdma_conn base;
	struct soft_dev *dev;
	enum soft_state state;
	int fd;
	bool watched;
	uint32_t fd_events;
	struct sched_fd sfd;
	struct sched_event tx_ev;
	struct sched_event reap_ev;
	struct sched_timer timer;
	struct soft_evq ev_setup, ev_end;

	/* Passive, until the CONNECT_REQUEST is taken: the listener owns it. */
	struct soft_listener *listener;
	struct soft_conn *l_next, *l_prev;
	struct soft_peer_req peer;

	bool crc;
	uint16_t ird, ord, want_ird, want_ord;
	uint32_t max_ulpdu;
	bool tx_hold;	       /* responder: nothing before the first FPDU */
	bool rtr_send_pending; /* responder: a zero-length Send RTR is due */
	bool want_fin, fin_sent, eof;

	/* The queue pair */
	bool has_qp;
	struct soft_pd *pd;
	struct soft_cq *scq, *rcq;
	uint32_t max_send_sge, max_recv_sge;
	struct soft_swqe *sq;
	uint32_t sq_size;
	uint64_t sq_head, sq_tx, sq_tail; /* counters, mod sq_size: never wrap */
	uint64_t tx_off;		  /* of the message at sq_tx */
	int tx_sge;
	uint32_t tx_sge_off;
	uint64_t orq[SOFT_ORD_MAX]; /* sq counters of Reads awaiting a response */
	uint32_t orq_head, orq_count;
	struct soft_rwqe *rq;
	uint32_t rq_size;
	uint64_t rq_head, rq_tail;
	bool rx_in_msg;
	uint64_t rx_msg_off;
	uint32_t tx_msn[3], rx_msn[3]; /* per untagged queue, RFC 5041 §5.1 */
	struct soft_irqe *irq;
	uint32_t irq_head, irq_count;

	struct soft_frame frames[SOFT_TX_FRAMES];
	uint32_t f_head, f_count;
	size_t f_off; /* bytes of the head frame already written */

	uint8_t *rx;
	size_t rx_len, rx_off;
	struct soft_direct direct;
	struct soft_ahead *ahead; /* once a Read Response came in segments */

	struct rdma_conn_stats st;
};

struct soft_listener {
	struct rdma_listener base;
	struct soft_dev *dev;
	int fd;
	struct sched_fd sfd;
	struct soft_conn *pending;
};

static struct soft_dev *to_dev(struct rdma_dev *d)
{
	return container_of(d, struct soft_dev, base);
}

static struct soft_conn *to_conn(struct rdma_conn *c)
{
	return container_of(c, struct soft_conn, base);
}

static const struct soft_conn *to_cconn(const struct rdma_conn *c)
{
	return container_of(c, const struct soft_conn, base);
}

static struct soft_cq *to_cq(struct rdma_cq *cq)
{
	return container_of(cq, struct soft_cq, base);
}

static struct soft_pd *to_pd(struct rdma_pd *pd)
{
	return container_of(pd, struct soft_pd, base);
}

static struct soft_mr *to_mr(struct rdma_mr *mr)
{
	return container_of(mr, struct soft_mr, base);
}

static struct soft_listener *to_listener(struct rdma_listener *l)
{
	return container_of(l, struct soft_listener, base);
}

static void *ptr_of(uint64_t addr)
{
	return (void *)(uintptr_t)addr;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void efd_signal(int fd)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: it is readable then. */
	if (write(fd, &one, sizeof(one)) < 0)
		return;
}

static uint64_t efd_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* Completion queues */

static bool cq_reserve(struct soft_cq *cq)
{
	if (cq->reserved >= cq->cap)
		return false;
	cq->reserved++;
	return true;
}

static void cq_release(struct soft_cq *cq, uint32_t n)
{
	cq->reserved -= n;
}

/* Add a completion whose slot was reserved; notify once if armed. */
static void cq_push(struct soft_cq *cq, const struct rdma_wc *wc)
{
	cq->ring[(cq->head + cq->count) % cq->cap] = *wc;
	cq->count++;
	/* ibv_req_notify_cq(3): one-shot, and only for entries added after
	 * the arm; the poller's drain finds those added before it. */
	if (cq->armed) {
		cq->armed = false;
		if (cq->notify)
			cq->notify(cq->notify_arg);
		else
			efd_signal(cq->base.fd);
	}
}

static int soft_cq_create(struct rdma_dev *d, int cqe, struct rdma_cq **ret)
{
	struct soft_cq *cq;
	int err;

	cq = calloc(1, sizeof(*cq));
	if (!cq)
		return -ENOMEM;
	cq->cap = (uint32_t)cqe;
	cq->ring = calloc(cq->cap, sizeof(*cq->ring));
	if (!cq->ring) {
		err = -ENOMEM;
		goto err_free_cq;
	}
	cq->base.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (cq->base.fd < 0) {
		err = -errno;
		goto err_free_ring;
	}
	cq->base.dev = d;
	*ret = &cq->base;
	return 0;

err_free_ring:
	free(cq->ring);
err_free_cq:
	free(cq);
	return err;
}

static void soft_cq_destroy(struct rdma_cq *rcq)
{
	struct soft_cq *cq = to_cq(rcq);

	close(cq->base.fd);
	free(cq->ring);
	free(cq);
}

static int soft_cq_poll(struct rdma_cq *rcq, struct rdma_wc *wc, int n)
{
	struct soft_cq *cq = to_cq(rcq);
	int i;

	if (n < 0)
		return -EINVAL;
	for (i = 0; i < n && cq->count; i++) {
		wc[i] = cq->ring[cq->head];
		cq->head = (cq->head + 1) % cq->cap;
		cq->count--;
		cq->reserved--;
	}
	return i;
}

static int soft_cq_arm(struct rdma_cq *rcq)
{
	to_cq(rcq)->armed = true;
	return 0;
}

static int soft_cq_set_notify(struct rdma_cq *rcq, void (*fn)(void *arg), void *arg)
{
	struct soft_cq *cq = to_cq(rcq);

	cq->notify = fn;
	cq->notify_arg = arg;
	return 0;
}

static int soft_cq_ack(struct rdma_cq *rcq)
{
	uint64_t v = efd_drain(rcq->fd);

	if (!v)
		return -EAGAIN;
	return v > INT32_MAX ? INT32_MAX : (int)v;
}

/* Events: a queue whose eventfd is readable exactly while it is not empty */

static void ev_unlink(struct soft_dev *d, struct soft_evq *q)
{
	if (!q->queued)
		return;
	if (q->prev)
		q->prev->next = q->next;
	else
		d->ev_head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		d->ev_tail = q->prev;
	q->queued = false;
	q->next = q->prev = NULL;
	if (!d->ev_head)
		efd_drain(d->base.event_fd);
}

static void ev_queue(struct soft_conn *c, struct soft_evq *q, enum rdma_event_type type, int status,
		     const void *pdata, size_t len)
{
	struct soft_dev *d = c->dev;
	socklen_t plen;

	ev_unlink(d, q);
	q->conn = c;
	q->ev.type = type;
	q->ev.conn = &c->base;
	q->ev.listener = c->listener ? &c->listener->base : NULL;
	q->ev.status = status;
	q->ev.initiator_depth = c->ord;
	q->ev.responder_resources = c->ird;
	plen = sizeof(q->ev.peer);
	if (c->fd < 0 || getpeername(c->fd, (struct sockaddr *)&q->ev.peer, &plen))
		q->ev.peer.ss_family = AF_UNSPEC;
	q->ev.pdata_len = (uint16_t)min_u64(len, RDMA_PDATA_MAX);
	if (q->ev.pdata_len)
		memcpy(q->ev.pdata, pdata, q->ev.pdata_len);
	q->next = NULL;
	q->prev = d->ev_tail;
	if (d->ev_tail)
		d->ev_tail->next = q;
	else
		d->ev_head = q;
	d->ev_tail = q;
	q->queued = true;
	if (!q->prev)
		efd_signal(d->base.event_fd);
}

static void listener_unlink(struct soft_conn *c)
{
	struct soft_listener *l = c->listener;

	if (!l)
		return;
	if (c->l_prev)
		c->l_prev->l_next = c->l_next;
	else
		l->pending = c->l_next;
	if (c->l_next)
		c->l_next->l_prev = c->l_prev;
	c->listener = NULL;
	c->l_next = c->l_prev = NULL;
}

static int soft_get_event(struct rdma_dev *rd, struct rdma_event *ev)
{
	struct soft_dev *d = to_dev(rd);
	struct soft_evq *q = d->ev_head;

	if (!q)
		return -EAGAIN;
	*ev = q->ev;
	ev_unlink(d, q);
	/* Taken: from now on the caller owns the connection. */
	if (ev->type == RDMA_EV_CONNECT_REQUEST)
		listener_unlink(q->conn);
	return 0;
}

/* Protection domains and memory regions */

static int soft_pd_create(struct rdma_dev *d, struct rdma_pd **ret)
{
	struct soft_pd *pd = calloc(1, sizeof(*pd));

	if (!pd)
		return -ENOMEM;
	pd->base.dev = d;
	*ret = &pd->base;
	return 0;
}

static void soft_pd_destroy(struct rdma_pd *pd)
{
	free(to_pd(pd));
}

static struct soft_mr *mr_find(struct soft_dev *d, uint32_t stag)
{
	uint32_t idx = stag >> 8;
	struct soft_mr *mr;

	if (idx >= d->n_mrs)
		return NULL;
	mr = d->mrs[idx];
	return mr && mr->base.lkey == stag ? mr : NULL;
}

static int mr_slot(struct soft_dev *d, uint32_t *idx)
{
	struct soft_mr **mrs;
	uint32_t i, n;

	for (i = 1; i < d->n_mrs; i++) {
		if (!d->mrs[i]) {
			*idx = i;
			return 0;
		}
	}
	n = d->n_mrs ? d->n_mrs * 2 : 64;
	if (n > (1u << 24))
		return -ENOSPC;
	mrs = realloc(d->mrs, n * sizeof(*mrs));
	if (!mrs)
		return -ENOMEM;
	memset(mrs + d->n_mrs, 0, (n - d->n_mrs) * sizeof(*mrs));
	*idx = d->n_mrs ? d->n_mrs : 1;
	d->mrs = mrs;
	d->n_mrs = n;
	return 0;
}

static int soft_mr_create(struct rdma_pd *rpd, void *addr, size_t len, unsigned int access,
			  struct rdma_mr **ret)
{
	struct soft_dev *d = to_dev(rpd->dev);
	struct soft_mr *mr;
	uint32_t idx;
	int err;

	if ((uint64_t)(uintptr_t)addr > UINT64_MAX - len)
		return -EINVAL;
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return -ENOMEM;
	err = mr_slot(d, &idx);
	if (err) {
		free(mr);
		return err;
	}
	/* A new key for a reused index: an old rkey does not match. */
	d->key++;
	mr->base.pd = rpd;
	mr->base.lkey = mr->base.rkey = idx << 8 | d->key;
	mr->pd = to_pd(rpd);
	mr->addr = (uint64_t)(uintptr_t)addr;
	mr->len = len;
	mr->access = access;
	mr->valid = true;
	d->mrs[idx] = mr;
	*ret = &mr->base;
	return 0;
}

static void soft_mr_destroy(struct rdma_mr *rmr)
{
	struct soft_mr *mr = to_mr(rmr);
	struct soft_dev *d = to_dev(rmr->pd->dev);

	d->mrs[mr->base.lkey >> 8] = NULL;
	free(mr);
}

enum mem_err {
	MEM_OK,
	MEM_STAG,   /* no such STag, or invalidated */
	MEM_PD,	    /* not of this stream's protection domain */
	MEM_ACCESS, /* without the access right */
	MEM_WRAP,   /* the Tagged Offset wraps */
	MEM_BOUNDS, /* outside the region */
};

/* The checks of an STag before anything is placed, in siw's order. */
static enum mem_err mem_check(struct soft_conn *c, uint32_t stag, uint64_t addr, uint64_t len,
			      unsigned int access)
{
	struct soft_mr *mr = mr_find(c->dev, stag);

	if (!mr || !mr->valid)
		return MEM_STAG;
	if (mr->pd != c->pd)
		return MEM_PD;
	if ((mr->access & access) != access)
		return MEM_ACCESS;
	if (addr > UINT64_MAX - len)
		return MEM_WRAP;
	if (addr < mr->addr || len > mr->len || addr - mr->addr > mr->len - len)
		return MEM_BOUNDS;
	return MEM_OK;
}

/* Socket watching */

static void fd_set_events(struct soft_conn *c, uint32_t events)
{
	if (c->fd < 0 || !c->watched || c->fd_events == events)
		return;
	if (sched_fd_mod(c->dev->sched, &c->sfd, events) == 0)
		c->fd_events = events;
}

static void fd_unwatch(struct soft_conn *c)
{
	if (c->watched)
		sched_fd_del(c->dev->sched, &c->sfd);
	c->watched = false;
}

static void frame_drop(struct soft_frame *f)
{
	free(f->owned);
	f->owned = NULL;
	f->wqe = NULL;
}

static struct soft_frame *frame_at(struct soft_conn *c, uint32_t k)
{
	return &c->frames[(c->f_head + k) % SOFT_TX_FRAMES];
}

static void close_fd(struct soft_conn *c)
{
	if (c->fd < 0)
		return;
	fd_unwatch(c);
	close(c->fd);
	c->fd = -1;
	while (c->f_count) {
		frame_drop(frame_at(c, 0));
		c->f_head = (c->f_head + 1) % SOFT_TX_FRAMES;
		c->f_count--;
	}
	c->f_off = 0;
	sched_cancel(c->dev->sched, &c->tx_ev);
	sched_timer_cancel(c->dev->sched, &c->timer);
	c->state = S_CLOSED;
	/* A connection no caller ever saw is the listener's to free. */
	if (c->listener)
		sched_schedule(c->dev->sched, &c->reap_ev);
}

static void tx_kick(struct soft_conn *c)
{
	if (c->fd >= 0)
		sched_schedule(c->dev->sched, &c->tx_ev);
}

/* Work queues */

static struct soft_swqe *sq_at(struct soft_conn *c, uint64_t n)
{
	return &c->sq[n % c->sq_size];
}

static struct soft_rwqe *rq_at(struct soft_conn *c, uint64_t n)
{
	return &c->rq[n % c->rq_size];
}

static enum rdma_wc_opcode wc_opcode(enum rdma_wr_opcode op)
{
	switch (op) {
	case RDMA_WR_RDMA_WRITE:
		return RDMA_WC_RDMA_WRITE;
	case RDMA_WR_RDMA_READ:
		return RDMA_WC_RDMA_READ;
	default:
		return RDMA_WC_SEND;
	}
}

static void sq_complete(struct soft_conn *c, struct soft_swqe *w, enum rdma_wc_status status)
{
	struct rdma_wc wc = {
		.wr_id = w->wr_id,
		.status = status,
		.opcode = wc_opcode(w->opcode),
		.byte_len = (uint32_t)w->len,
	};

	/* Verbs: an error completes even an unsignaled request. */
	if (w->signaled || status != RDMA_WC_SUCCESS)
		cq_push(c->scq, &wc);
	else
		cq_release(c->scq, 1);
}

/* Complete, in posting order, the finished requests at the head. */
static void sq_retire(struct soft_conn *c)
{
	struct soft_swqe *w;

	while (c->sq_head != c->sq_tx) {
		w = sq_at(c, c->sq_head);
		if (!w->done)
			break;
		sq_complete(c, w, w->status);
		c->sq_head++;
	}
}

static void rq_complete(struct soft_conn *c, struct soft_rwqe *r, enum rdma_wc_status status,
			unsigned int flags, uint32_t inv)
{
	struct rdma_wc wc = {
		.wr_id = r->wr_id,
		.status = status,
		.opcode = RDMA_WC_RECV,
		.byte_len = (uint32_t)c->rx_msg_off,
		.flags = flags,
		.invalidated_rkey = inv,
	};

	cq_push(c->rcq, &wc);
}

/* Error: everything outstanding completes, the finished with their own
 * status, the rest flushed (verbs: a QP in the Error state). */
static void qp_flush(struct soft_conn *c)
{
	struct soft_swqe *w;
	struct soft_rwqe *r;

	if (!c->has_qp)
		return;
	for (; c->sq_head != c->sq_tail; c->sq_head++) {
		w = sq_at(c, c->sq_head);
		sq_complete(c, w, w->done ? w->status : RDMA_WC_WR_FLUSH_ERR);
	}
	c->sq_tx = c->sq_tail;
	c->tx_off = 0;
	c->tx_sge = 0;
	c->tx_sge_off = 0;
	c->orq_count = 0;
	for (; c->rq_head != c->rq_tail; c->rq_head++) {
		r = rq_at(c, c->rq_head);
		rq_complete(c, r, r->done ? r->status : RDMA_WC_WR_FLUSH_ERR, 0, 0);
		c->rx_msg_off = 0;
	}
	c->rx_in_msg = false;
	c->irq_count = 0;
}

/* Transmit ring */

/* The frame being written is kept whole, so the stream stays in step for a
 * Terminate after it; those not started are dropped with their requests. */
static void tx_abort(struct soft_conn *c)
{
	struct soft_frame *f;
	size_t rest, off = 0;
	uint8_t *copy;
	int i;

	while (c->f_count > (c->f_off ? 1u : 0u)) {
		frame_drop(frame_at(c, c->f_count - 1));
		c->f_count--;
	}
	if (!c->f_count)
		return;
	f = frame_at(c, 0);
	rest = f->len - c->f_off;
	copy = malloc(rest);
	if (!copy) {
		/* Cannot finish it: the stream breaks, as a reset would. */
		c->want_fin = false;
		close_fd(c);
		return;
	}
	for (i = 0; i < f->iovcnt; i++) {
		size_t l = f->iov[i].iov_len,
		       skip = min_u64(c->f_off > off ? c->f_off - off : 0, l);

		if (skip < l)
			memcpy(copy + (off + skip - c->f_off), (uint8_t *)f->iov[i].iov_base + skip,
			       l - skip);
		off += l;
	}
	frame_drop(f);
	f->owned = copy;
	f->kind = FRAME_RAW;
	f->iov[0] = (struct iovec){copy, rest};
	f->iovcnt = 1;
	f->len = rest;
	c->f_off = 0;
}

static struct soft_frame *frame_new(struct soft_conn *c, uint32_t limit)
{
	struct soft_frame *f;

	if (c->f_count >= limit)
		return NULL;
	f = frame_at(c, c->f_count);
	f->owned = NULL;
	f->wqe = NULL;
	f->kind = FRAME_FPDU;
	return f;
}

static void frame_commit(struct soft_conn *c, struct soft_frame *f)
{
	size_t i;

	f->len = 0;
	for (i = 0; i < (size_t)f->iovcnt; i++)
		f->len += f->iov[i].iov_len;
	c->f_count++;
	if (f->kind != FRAME_RAW)
		c->st.tx_fpdus++;
}

/*
 * Finish an FPDU whose payload is in f->iov[1..k]: ULPDU_Length and @h in
 * f->hdr (followed by @extra bytes already there), PAD and CRC in
 * f->trailer (RFC 5044 §4.1).
 */
static int frame_fpdu(struct soft_conn *c, struct soft_frame *f, const struct iwarp_hdr *h,
		      size_t extra, int k, size_t plen)
{
	struct digest_ctx ctx;
	size_t ulpdu;
	int hl, i;

	hl = iwarp_hdr_encode(h, f->hdr + IWARP_FPDU_HDR_LEN, sizeof(f->hdr) - IWARP_FPDU_HDR_LEN);
	if (hl < 0)
		return hl;
	ulpdu = (size_t)hl + extra + plen;
	if (iwarp_fpdu_hdr_encode(f->hdr, sizeof(f->hdr), ulpdu) < 0)
		return -EMSGSIZE;
	f->iov[0] = (struct iovec){f->hdr, IWARP_FPDU_HDR_LEN + (size_t)hl + extra};
	if (c->crc) {
		digest_begin(&ctx);
		for (i = 0; i <= k; i++)
			digest_update(&ctx, f->iov[i].iov_base, f->iov[i].iov_len);
	}
	f->iov[k + 1].iov_base = f->trailer;
	f->iov[k + 1].iov_len = iwarp_fpdu_trailer(c->crc ? &ctx : NULL, ulpdu, f->trailer);
	f->iovcnt = k + 2;
	frame_commit(c, f);
	return 0;
}

/* An MPA Request or Reply: sent as is, before any FPDU. */
static int tx_push_raw(struct soft_conn *c, void *buf, size_t len)
{
	struct soft_frame *f = frame_new(c, SOFT_TX_FRAMES);

	if (!f) {
		free(buf);
		return -ENOBUFS;
	}
	f->kind = FRAME_RAW;
	f->owned = buf;
	f->iov[0] = (struct iovec){buf, len};
	f->iovcnt = 1;
	frame_commit(c, f);
	tx_kick(c);
	return 0;
}

/* Payload of the next segment of @w, up to @room bytes, from its SGEs. */
static int sge_gather(struct soft_conn *c, const struct soft_swqe *w, size_t room,
		      struct iovec *iov, size_t *plen)
{
	const struct rdma_sge *s;
	size_t take;
	int k = 0;

	*plen = 0;
	while (room && c->tx_sge < w->num_sge) {
		s = &w->sge[c->tx_sge];
		take = min_u64(s->length - c->tx_sge_off, room);
		if (take) {
			iov[k].iov_base = ptr_of(s->addr + c->tx_sge_off);
			iov[k++].iov_len = take;
			c->tx_sge_off += (uint32_t)take;
			room -= take;
			*plen += take;
		}
		if (c->tx_sge_off == s->length) {
			c->tx_sge++;
			c->tx_sge_off = 0;
		}
	}
	return k;
}

/* One DDP segment of a Send or an RDMA Write (RFC 5041 §5.1, §5.2). */
static void tx_build_seg(struct soft_conn *c, struct soft_frame *f, struct soft_swqe *w)
{
	struct iwarp_hdr h = {.last = false};
	size_t plen;
	int k;

	switch (w->opcode) {
	case RDMA_WR_RDMA_WRITE:
		h.tagged = true;
		h.opcode = IWARP_OP_WRITE;
		h.stag = w->rkey;
		h.to = w->remote_addr + c->tx_off;
		break;
	case RDMA_WR_SEND_WITH_INV:
		h.opcode = IWARP_OP_SEND_INV;
		h.inv_stag = w->inv_rkey;
		break;
	default:
		h.opcode = IWARP_OP_SEND;
		break;
	}
	if (!h.tagged) {
		/* One MSN per message, counted from 1 (RFC 5041 §5.1). */
		if (!c->tx_off && !c->tx_sge && !c->tx_sge_off)
			w->msn = c->tx_msn[IWARP_QN_SEND]++;
		h.qn = IWARP_QN_SEND;
		h.msn = w->msn;
		h.mo = (uint32_t)c->tx_off;
	}
	k = sge_gather(c, w, c->max_ulpdu - (size_t)iwarp_hdr_len(h.opcode), f->iov + 1, &plen);
	c->tx_off += plen;
	h.last = c->tx_off == w->len;
	frame_fpdu(c, f, &h, 0, k, plen);
	if (h.last) {
		f->wqe = w;
		c->sq_tx++;
		c->tx_off = 0;
		c->tx_sge = 0;
		c->tx_sge_off = 0;
	}
}

/* An RDMA Read Request on queue 1 (RFC 5040 §4.4): one segment. */
static void tx_build_read(struct soft_conn *c, struct soft_frame *f, struct soft_swqe *w)
{
	struct iwarp_hdr h = {
		.last = true,
		.opcode = IWARP_OP_READ_REQ,
		.qn = IWARP_QN_READ_REQ,
		.msn = c->tx_msn[IWARP_QN_READ_REQ]++,
		.rreq =
			{
				.sink_stag = w->sge[0].lkey,
				.sink_to = w->sge[0].addr,
				.size = (uint32_t)w->len,
				.src_stag = w->rkey,
				.src_to = w->remote_addr,
			},
	};

	w->msn = h.msn;
	w->got = 0;
	c->orq[(c->orq_head + c->orq_count) % SOFT_ORD_MAX] = c->sq_tx;
	c->orq_count++;
	frame_fpdu(c, f, &h, 0, 0, 0);
	c->sq_tx++;
}

/* One segment of the Read Response at the head of the IRQ (RFC 5040 §4.5). */
static void tx_build_rresp(struct soft_conn *c, struct soft_frame *f)
{
	struct soft_irqe *e = &c->irq[c->irq_head];
	struct iwarp_hdr h = {.tagged = true, .opcode = IWARP_OP_READ_RESP};
	size_t take = min_u64(e->size - e->sent, c->max_ulpdu - IWARP_TAGGED_HDR_LEN);
	int k = 0;

	h.stag = e->sink_stag;
	h.to = e->sink_to + e->sent;
	if (take) {
		f->iov[1] = (struct iovec){(void *)(e->src + e->sent), take};
		k = 1;
	}
	e->sent += (uint32_t)take;
	h.last = e->sent == e->size;
	frame_fpdu(c, f, &h, 0, k, take);
	if (h.last) {
		c->irq_head = (c->irq_head + 1) % SOFT_IRD_MAX;
		c->irq_count--;
	}
}

static void term_send(struct soft_conn *c, uint8_t layer, uint8_t etype, uint8_t ecode,
		      const uint8_t *seg, size_t seg_len, int status);

/* A request that failed before it left: the queue pair goes to error and
 * the peer is told (RFC 5040 §7: Terminate, local catastrophic). */
static void tx_local_error(struct soft_conn *c, struct soft_swqe *w, enum rdma_wc_status status)
{
	w->status = status;
	w->done = true;
	c->sq_tx++;
	term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_CATASTROPHIC, IWARP_TERM_RDMAP_UNSPECIFIED,
		  NULL, 0, -EIO);
}

/* The next frame of the send queue, or false if none can be built now. */
static bool tx_build_sq(struct soft_conn *c, struct soft_frame *f)
{
	struct soft_swqe *w;

	if (c->sq_tx == c->sq_tail)
		return false;
	w = sq_at(c, c->sq_tx);
	if (w->status != RDMA_WC_SUCCESS || (w->opcode == RDMA_WR_RDMA_READ && !c->ord)) {
		/* Once the requests before it left, so that they complete. */
		if (!c->f_count)
			tx_local_error(c, w,
				       w->status != RDMA_WC_SUCCESS ? w->status
								    : RDMA_WC_GENERAL_ERR);
		return false;
	}
	if (w->opcode != RDMA_WR_RDMA_READ) {
		tx_build_seg(c, f, w);
		return true;
	}
	/* ORD reached: the send queue waits for a response (RFC 6581). */
	if (c->orq_count >= c->ord)
		return false;
	tx_build_read(c, f, w);
	return true;
}

static bool tx_mid_message(const struct soft_conn *c)
{
	return c->tx_off || c->tx_sge || c->tx_sge_off;
}

/* Cut frames into the ring while there is room and something to send. */
static void tx_fill(struct soft_conn *c)
{
	struct soft_frame *f;

	while (c->state == S_RTS && !c->tx_hold) {
		f = frame_new(c, SOFT_TX_FRAMES - SOFT_TX_CTRL);
		if (!f)
			return;
		/* A message is sent whole; Read Responses go between two. */
		if (c->irq_count && !tx_mid_message(c))
			tx_build_rresp(c, f);
		else if (!tx_build_sq(c, f))
			return;
	}
}

static void frame_sent(struct soft_conn *c, struct soft_frame *f)
{
	if (f->wqe) {
		/* A Send or Write completes once it left: nothing acknowledges
		 * it (siw does the same). */
		f->wqe->done = true;
		f->wqe->status = RDMA_WC_SUCCESS;
	}
	frame_drop(f);
}

static void tx_retire(struct soft_conn *c, size_t n)
{
	struct soft_frame *f;
	size_t rest;

	while (n && c->f_count) {
		f = frame_at(c, 0);
		rest = f->len - c->f_off;
		if (n < rest) {
			c->f_off += n;
			return;
		}
		n -= rest;
		frame_sent(c, f);
		c->f_head = (c->f_head + 1) % SOFT_TX_FRAMES;
		c->f_count--;
		c->f_off = 0;
	}
}

/* Write as much of the ring as the socket takes. Returns bytes or -errno. */
static ssize_t tx_write(struct soft_conn *c)
{
	struct iovec v[SOFT_IOV_BATCH];
	struct msghdr msg = {.msg_iov = v};
	size_t skip = c->f_off, n = 0;
	struct soft_frame *f;
	uint32_t k;
	ssize_t w;
	int i;

	for (k = 0; k < c->f_count && n < SOFT_IOV_BATCH; k++) {
		f = frame_at(c, k);
		for (i = 0; i < f->iovcnt && n < SOFT_IOV_BATCH; i++) {
			struct iovec io = f->iov[i];

			if (skip >= io.iov_len) {
				skip -= io.iov_len;
				continue;
			}
			io.iov_base = (uint8_t *)io.iov_base + skip;
			io.iov_len -= skip;
			skip = 0;
			v[n++] = io;
		}
	}
	msg.msg_iovlen = n;
	/* sendmsg, not writev: MSG_NOSIGNAL, a dead peer is -EPIPE. */
	w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w < 0)
		return -errno;
	c->st.tx_bytes += (uint64_t)w;
	return w;
}

static void conn_error(struct soft_conn *c, int status);

static void tx_maybe_close(struct soft_conn *c)
{
	if (c->fin_sent && c->eof)
		close_fd(c);
}

static void tx_run(struct soft_conn *c)
{
	ssize_t n;
	int i;

	if (c->fd < 0 || c->state == S_CONNECTING)
		return;
	for (i = 0; i < SOFT_TX_ROUNDS; i++) {
		tx_fill(c);
		if (!c->f_count)
			break;
		n = tx_write(c);
		if (n == -EAGAIN || n == -EWOULDBLOCK) {
			fd_set_events(c, c->fd_events | EPOLLOUT);
			return;
		}
		if (n == -EINTR)
			continue;
		if (n < 0) {
			c->want_fin = false;
			conn_error(c, -ECONNRESET);
			close_fd(c);
			return;
		}
		tx_retire(c, (size_t)n);
		sq_retire(c);
	}
	if (c->fd < 0)
		return;
	if (c->f_count) {
		/* Budget used: let the other events of the loop run first. */
		tx_kick(c);
		return;
	}
	fd_set_events(c, c->fd_events & ~(uint32_t)EPOLLOUT);
	if (c->want_fin && !c->fin_sent) {
		/* RFC 5040 §6.2, §7: after a Terminate, or on teardown, the
		 * stream is closed; the peer's FIN (or the linger timer) ends it. */
		shutdown(c->fd, SHUT_WR);
		c->fin_sent = true;
		tx_maybe_close(c);
	}
}

static void tx_event(struct sched_event *ev)
{
	tx_run(container_of(ev, struct soft_conn, tx_ev));
}

/* Errors and Terminate */

/*
 * The queue pair goes to error: outstanding work is flushed, unsent frames
 * dropped, DISCONNECTED given if the connection was up, and the stream
 * closed after what is still queued (a Terminate) has left.
 */
static void conn_error(struct soft_conn *c, int status)
{
	bool was_up = c->state == S_RTS;

	if (c->state == S_ERROR || c->state == S_CLOSED)
		return;
	c->state = S_ERROR;
	c->direct.on = false;
	tx_abort(c);
	qp_flush(c);
	if (was_up)
		ev_queue(c, &c->ev_end, RDMA_EV_DISCONNECTED, status, NULL, 0);
	if (c->fd < 0)
		return;
	if (!c->eof)
		fd_set_events(c, EPOLLIN | (c->fd_events & EPOLLOUT));
	c->want_fin = true;
	sched_timer_arm(c->dev->sched, &c->timer, sched_now(c->dev->sched) + SOFT_LINGER_NS);
	tx_kick(c);
}

/*
 * Send a Terminate (RFC 5040 §4.8, on queue 2) for the segment @seg
 * (@seg_len bytes, NULL when the error is not one segment's), echoing its
 * DDP header and, for a Read Request, its RDMAP header; then error.
 */
static void term_send(struct soft_conn *c, uint8_t layer, uint8_t etype, uint8_t ecode,
		      const uint8_t *seg, size_t seg_len, int status)
{
	struct iwarp_term t = {.layer = layer, .etype = etype, .ecode = ecode};
	struct iwarp_hdr h = {
		.last = true,
		.opcode = IWARP_OP_TERMINATE,
		.qn = IWARP_QN_TERMINATE,
	};
	struct soft_frame *f;
	size_t dlen;
	int n;

	if (c->state == S_ERROR || c->state == S_CLOSED)
		return;
	conn_error(c, status);
	if (c->fd < 0)
		return;
	if (seg && seg_len >= 2) {
		t.m = true;
		t.seg_len = (uint16_t)seg_len;
		dlen = (seg[0] & DDP_T) ? IWARP_TAGGED_HDR_LEN : IWARP_UNTAGGED_HDR_LEN;
		if (seg_len >= dlen) {
			t.d = true;
			t.hdrs = seg;
			t.hdrs_len = (uint16_t)dlen;
			if (!(seg[0] & DDP_T) && (seg[1] & RDMAP_OPCODE) == IWARP_OP_READ_REQ &&
			    seg_len >= dlen + IWARP_READ_REQ_LEN) {
				t.r = true;
				t.hdrs_len += IWARP_READ_REQ_LEN;
			}
		}
	}
	f = frame_new(c, SOFT_TX_FRAMES);
	if (!f)
		return;
	f->kind = FRAME_TERM;
	h.msn = c->tx_msn[IWARP_QN_TERMINATE]++;
	n = iwarp_term_encode(&t, f->hdr + IWARP_FPDU_HDR_LEN + IWARP_UNTAGGED_HDR_LEN,
			      SOFT_TERM_MAX);
	if (n < 0 || frame_fpdu(c, f, &h, (size_t)n, 0, 0) < 0)
		return;
	c->st.terminates_sent++;
	c->st.term_sent = (struct rdma_term_info){layer, etype, ecode};
	tx_kick(c);
}

/* A tagged segment's STag failed (RFC 5041 §7.2; access is RDMAP's). */
static void term_tagged(struct soft_conn *c, enum mem_err e, const uint8_t *seg, size_t len)
{
	static const uint8_t code[] = {
		[MEM_STAG] = IWARP_TERM_DDP_T_INVALID_STAG,
		[MEM_PD] = IWARP_TERM_DDP_T_STAG_NOT_ASSOC,
		[MEM_WRAP] = IWARP_TERM_DDP_T_TO_WRAP,
		[MEM_BOUNDS] = IWARP_TERM_DDP_T_BASE_BOUNDS,
	};

	if (e == MEM_ACCESS)
		term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_PROTECTION, IWARP_TERM_RDMAP_ACCESS,
			  seg, len, -EPROTO);
	else
		term_send(c, IWARP_TERM_DDP, IWARP_TERM_DDP_TAGGED, code[e], seg, len, -EPROTO);
}

/* A Read Request's Data Source STag failed: RDMAP's (RFC 5040 §4.8). */
static void term_rreq(struct soft_conn *c, enum mem_err e, const uint8_t *seg, size_t len)
{
	static const uint8_t code[] = {
		[MEM_STAG] = IWARP_TERM_RDMAP_INVALID_STAG,
		[MEM_PD] = IWARP_TERM_RDMAP_STAG_NOT_ASSOC,
		[MEM_ACCESS] = IWARP_TERM_RDMAP_ACCESS,
		[MEM_WRAP] = IWARP_TERM_RDMAP_TO_WRAP,
		[MEM_BOUNDS] = IWARP_TERM_RDMAP_BASE_BOUNDS,
	};

	term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_PROTECTION, code[e], seg, len, -EPROTO);
}

static void term_untagged(struct soft_conn *c, uint8_t ecode, const uint8_t *seg, size_t len)
{
	term_send(c, IWARP_TERM_DDP, IWARP_TERM_DDP_UNTAGGED, ecode, seg, len, -EPROTO);
}

/* Receive: placement of one DDP segment */

/* An RDMA Write segment (RFC 5040 §5.3): placed, nothing completes. */
static int rx_write(struct soft_conn *c, const struct iwarp_hdr *h, const uint8_t *seg, size_t len,
		    const uint8_t *p, size_t plen)
{
	enum mem_err e;

	/* A zero-length Write is not checked (it is also RFC 6581's RTR). */
	if (!plen)
		return 0;
	e = mem_check(c, h->stag, h->to, plen, RDMA_ACCESS_REMOTE_WRITE);
	if (e != MEM_OK) {
		term_tagged(c, e, seg, len);
		return -1;
	}
	if (p)
		memcpy(ptr_of(h->to), p, plen);
	return 0;
}

static struct soft_swqe *orq_head(struct soft_conn *c)
{
	if (!c->orq_count)
		return NULL;
	return sq_at(c, c->orq[c->orq_head]);
}

/* A Read Response segment must continue the oldest Read outstanding
 * (RFC 5040 §5.2: responses come in the order of the requests). */
static int rx_read_resp_check(struct soft_conn *c, const struct iwarp_hdr *h, const uint8_t *seg,
			      size_t len, size_t plen)
{
	struct soft_swqe *w = orq_head(c);

	if (!w) {
		term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_OPERATION,
			  IWARP_TERM_RDMAP_BAD_OPCODE, seg, len, -EPROTO);
		return -1;
	}
	if (h->stag != w->sge[0].lkey) {
		term_tagged(c, MEM_STAG, seg, len);
		return -1;
	}
	if (h->to != w->sge[0].addr + w->got || plen > w->len - w->got ||
	    (h->last && w->got + plen != w->len)) {
		term_tagged(c, MEM_BOUNDS, seg, len);
		return -1;
	}
	/* How the peer segments: what a read-ahead expects next. */
	if (!h->last && plen >= SOFT_DIRECT_MIN) {
		if (!c->ahead)
			c->ahead = calloc(1, sizeof(*c->ahead));
		if (c->ahead)
			c->ahead->seg = (uint32_t)plen;
	}
	return 0;
}

static void rx_read_resp_done(struct soft_conn *c, const struct iwarp_hdr *h, size_t plen)
{
	struct soft_swqe *w = orq_head(c);

	w->got += plen;
	if (!h->last)
		return;
	w->done = true;
	w->status = RDMA_WC_SUCCESS;
	c->orq_head = (c->orq_head + 1) % SOFT_ORD_MAX;
	c->orq_count--;
	sq_retire(c);
	/* A Read waiting for ORD may go now. */
	tx_kick(c);
}

/* The receive buffer for the next @plen bytes of a Send, checked (RFC
 * 5041 §5.3, §7.2). Returns it, or NULL after a Terminate. */
static struct soft_rwqe *rx_send_check(struct soft_conn *c, const struct iwarp_hdr *h,
				       const uint8_t *seg, size_t len, size_t plen)
{
	struct soft_rwqe *r;

	if (h->qn != IWARP_QN_SEND) {
		term_untagged(c, IWARP_TERM_DDP_U_INVALID_QN, seg, len);
		return NULL;
	}
	if (h->msn != c->rx_msn[IWARP_QN_SEND]) {
		term_untagged(c, IWARP_TERM_DDP_U_MSN_RANGE, seg, len);
		return NULL;
	}
	if (h->mo != (c->rx_in_msg ? c->rx_msg_off : 0)) {
		term_untagged(c, IWARP_TERM_DDP_U_INVALID_MO, seg, len);
		return NULL;
	}
	if (c->rq_head == c->rq_tail) {
		/* RFC 5041 §7.2: no buffer available, the untagged error. */
		term_untagged(c, IWARP_TERM_DDP_U_NO_BUFFER, seg, len);
		return NULL;
	}
	r = rq_at(c, c->rq_head);
	if (r->status != RDMA_WC_SUCCESS) {
		r->done = true;
		term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_CATASTROPHIC,
			  IWARP_TERM_RDMAP_UNSPECIFIED, seg, len, -EIO);
		return NULL;
	}
	c->rx_msg_off = h->mo;
	c->rx_in_msg = true;
	if (plen > r->len - c->rx_msg_off) {
		r->status = RDMA_WC_LOC_LEN_ERR;
		r->done = true;
		term_untagged(c, IWARP_TERM_DDP_U_TOO_LONG, seg, len);
		return NULL;
	}
	return r;
}

/* Scatter @plen bytes at message offset @off of @r: as iovecs, so that a
 * caller may copy into them or read the socket into them. */
static int rwqe_iov(const struct soft_rwqe *r, uint64_t off, size_t plen, struct iovec *iov)
{
	int i, k = 0;
	size_t take;

	for (i = 0; i < r->num_sge && plen; i++) {
		if (off >= r->seg[i].len) {
			off -= r->seg[i].len;
			continue;
		}
		take = min_u64(r->seg[i].len - off, plen);
		iov[k].iov_base = r->seg[i].p + off;
		iov[k++].iov_len = take;
		plen -= take;
		off = 0;
	}
	return k;
}

/* The last segment of a Send placed: invalidate, complete (RFC 5040 §5.3). */
static int rx_send_done(struct soft_conn *c, const struct iwarp_hdr *h, const uint8_t *seg,
			size_t len)
{
	struct soft_rwqe *r = rq_at(c, c->rq_head);
	unsigned int flags = 0;
	struct soft_mr *mr;

	if (!h->last)
		return 0;
	if (h->opcode == IWARP_OP_SEND_INV || h->opcode == IWARP_OP_SEND_SE_INV) {
		mr = mr_find(c->dev, h->inv_stag);
		if (!mr || !mr->valid || mr->pd != c->pd) {
			term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_PROTECTION,
				  IWARP_TERM_RDMAP_INVALID_STAG, seg, len, -EPROTO);
			return -1;
		}
		mr->valid = false;
		flags = RDMA_WC_WITH_INV;
	}
	rq_complete(c, r, RDMA_WC_SUCCESS, flags, flags ? h->inv_stag : 0);
	c->rq_head++;
	c->rx_msn[IWARP_QN_SEND]++;
	c->rx_in_msg = false;
	c->rx_msg_off = 0;
	return 0;
}

/* A Send segment whose payload is at @p (@plen bytes). */
static int rx_send(struct soft_conn *c, const struct iwarp_hdr *h, const uint8_t *seg, size_t len,
		   const uint8_t *p, size_t plen)
{
	struct iovec iov[SOFT_MAX_SGE];
	struct soft_rwqe *r;
	int i, k;

	r = rx_send_check(c, h, seg, len, plen);
	if (!r)
		return -1;
	k = rwqe_iov(r, c->rx_msg_off, plen, iov);
	for (i = 0; i < k; i++) {
		memcpy(iov[i].iov_base, p, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	c->rx_msg_off += plen;
	return rx_send_done(c, h, seg, len);
}

/* An RDMA Read Request (RFC 5040 §5.2): checked, queued for the answer. */
static int rx_read_req(struct soft_conn *c, const struct iwarp_hdr *h, const uint8_t *seg,
		       size_t len)
{
	const struct iwarp_read_req *q = &h->rreq;
	struct soft_irqe *e;
	enum mem_err err;

	if (h->qn != IWARP_QN_READ_REQ) {
		term_untagged(c, IWARP_TERM_DDP_U_INVALID_QN, seg, len);
		return -1;
	}
	/* More than IRD outstanding is out of the queue's MSN range. */
	if (h->msn != c->rx_msn[IWARP_QN_READ_REQ] || c->irq_count >= c->ird) {
		term_untagged(c, IWARP_TERM_DDP_U_MSN_RANGE, seg, len);
		return -1;
	}
	if (h->mo) {
		term_untagged(c, IWARP_TERM_DDP_U_INVALID_MO, seg, len);
		return -1;
	}
	if (q->size) {
		err = mem_check(c, q->src_stag, q->src_to, q->size, RDMA_ACCESS_REMOTE_READ);
		if (err != MEM_OK) {
			term_rreq(c, err, seg, len);
			return -1;
		}
	}
	c->rx_msn[IWARP_QN_READ_REQ]++;
	e = &c->irq[(c->irq_head + c->irq_count) % SOFT_IRD_MAX];
	c->irq_count++;
	*e = (struct soft_irqe){
		.src = q->size ? ptr_of(q->src_to) : NULL,
		.size = q->size,
		.sink_stag = q->sink_stag,
		.sink_to = q->sink_to,
	};
	tx_kick(c);
	return 0;
}

/* The status a Terminate gives the Read it names (RFC 5040 §4.8). */
static enum rdma_wc_status term_status(const struct iwarp_term *t)
{
	if ((t->layer == IWARP_TERM_RDMAP && t->etype == IWARP_TERM_RDMAP_PROTECTION) ||
	    (t->layer == IWARP_TERM_DDP && t->etype == IWARP_TERM_DDP_TAGGED))
		return RDMA_WC_REM_ACCESS_ERR;
	if (t->layer == IWARP_TERM_DDP && t->etype == IWARP_TERM_DDP_UNTAGGED &&
	    t->ecode == IWARP_TERM_DDP_U_NO_BUFFER)
		return RDMA_WC_RNR_RETRY_EXC_ERR;
	return RDMA_WC_REM_OP_ERR;
}

/* The outstanding Read whose Read Request the Terminate echoes, by MSN. */
static struct soft_swqe *term_named_read(struct soft_conn *c, const struct iwarp_term *t)
{
	struct soft_swqe *w;
	uint32_t i, msn;

	if (!t->d || t->hdrs_len < IWARP_UNTAGGED_HDR_LEN || (t->hdrs[0] & DDP_T) ||
	    (t->hdrs[1] & RDMAP_OPCODE) != IWARP_OP_READ_REQ)
		return NULL;
	msn = be_get32(t->hdrs + DDP_OFF_MSN);
	for (i = 0; i < c->orq_count; i++) {
		w = sq_at(c, c->orq[(c->orq_head + i) % SOFT_ORD_MAX]);
		if (w->msn == msn)
			return w;
	}
	return NULL;
}

/* A Terminate from the peer: no Terminate answers it (RFC 5040 §7). */
static int rx_terminate(struct soft_conn *c, const uint8_t *p, size_t plen)
{
	struct iwarp_term t;
	struct soft_swqe *w;

	c->st.terminates_received++;
	if (iwarp_term_decode(p, plen, &t) == 0) {
		c->st.term_received = (struct rdma_term_info){t.layer, t.etype, t.ecode};
		w = term_named_read(c, &t);
		if (w) {
			w->done = true;
			w->status = term_status(&t);
		}
	}
	conn_error(c, -EREMOTEIO);
	return -1;
}

/* A segment's headers did not decode (RFC 5041 §7.2, RFC 5040 §4.8). */
static void rx_bad_hdr(struct soft_conn *c, int err, const struct iwarp_hdr *h, const uint8_t *seg,
		       size_t len)
{
	if (err == -EMSGSIZE)
		term_send(c, IWARP_TERM_DDP, IWARP_TERM_DDP_CATASTROPHIC, 0, seg, len, -EPROTO);
	else if (h->ddp_version != IWARP_DDP_VERSION)
		term_send(c, IWARP_TERM_DDP,
			  h->tagged ? IWARP_TERM_DDP_TAGGED : IWARP_TERM_DDP_UNTAGGED,
			  h->tagged ? IWARP_TERM_DDP_T_BAD_VERSION : IWARP_TERM_DDP_U_BAD_VERSION,
			  seg, len, -EPROTO);
	else if (h->rdmap_version != IWARP_RDMAP_VERSION)
		term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_OPERATION,
			  IWARP_TERM_RDMAP_BAD_VERSION, seg, len, -EPROTO);
	else
		term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_OPERATION,
			  IWARP_TERM_RDMAP_BAD_OPCODE, seg, len, -EPROTO);
}

/* The first FPDU of the initiator (RFC 5044 §7.1.2, RFC 6581 RTR). */
static bool rx_first(struct soft_conn *c, const struct iwarp_hdr *h, size_t plen)
{
	bool rtr = c->rtr_send_pending && h->opcode == IWARP_OP_SEND && h->last && !plen;

	if (c->tx_hold) {
		c->tx_hold = false;
		tx_kick(c);
	}
	c->rtr_send_pending = false;
	if (rtr)
		c->rx_msn[IWARP_QN_SEND]++;
	return rtr;
}

/*
 * One DDP segment, @seg of @len bytes, whose payload @p (@plen bytes) is
 * in the buffer, or not yet (@p NULL: checks only, the caller places it).
 * Returns 0, or -1 after the connection went to error.
 */
static int rx_segment(struct soft_conn *c, const struct iwarp_hdr *h, const uint8_t *seg,
		      size_t len, const uint8_t *p, size_t plen)
{
	switch (h->opcode) {
	case IWARP_OP_WRITE:
		return rx_write(c, h, seg, len, p, plen);
	case IWARP_OP_READ_RESP:
		if (rx_read_resp_check(c, h, seg, len, plen))
			return -1;
		if (p) {
			memcpy(ptr_of(h->to), p, plen);
			rx_read_resp_done(c, h, plen);
		}
		return 0;
	case IWARP_OP_SEND:
	case IWARP_OP_SEND_INV:
	case IWARP_OP_SEND_SE:
	case IWARP_OP_SEND_SE_INV:
		if (p)
			return rx_send(c, h, seg, len, p, plen);
		return rx_send_check(c, h, seg, len, plen) ? 0 : -1;
	case IWARP_OP_READ_REQ:
		return rx_read_req(c, h, seg, len);
	default:
		return rx_terminate(c, p, plen);
	}
}

/* Receive: FPDU framing, and direct placement */

/*
 * Decode the headers of the segment at @seg (@avail bytes of its @len are
 * in the buffer). Returns the headers' length, 0 if they are not all
 * there yet, or -1 after a Terminate.
 */
static int rx_hdr(struct soft_conn *c, const uint8_t *seg, size_t avail, size_t len,
		  struct iwarp_hdr *h)
{
	int hl = iwarp_hdr_decode(seg, min_u64(avail, len), h);

	if (hl == -EMSGSIZE && avail < len)
		return 0;
	if (hl < 0) {
		rx_bad_hdr(c, hl, h, seg, min_u64(avail, len));
		return -1;
	}
	return hl;
}

/*
 * The iovecs a payload of @plen bytes at offset @from is placed through:
 * in the target memory itself. Returns their count, or 0 if the segment
 * is not placed in one (a Terminate, zero length).
 */
static int rx_target(struct soft_conn *c, const struct iwarp_hdr *h, size_t from, size_t plen,
		     struct iovec *iov)
{
	switch (h->opcode) {
	case IWARP_OP_WRITE:
	case IWARP_OP_READ_RESP:
		iov[0] = (struct iovec){ptr_of(h->to + from), plen - from};
		return 1;
	case IWARP_OP_SEND:
	case IWARP_OP_SEND_INV:
	case IWARP_OP_SEND_SE:
	case IWARP_OP_SEND_SE_INV:
		return rwqe_iov(rq_at(c, c->rq_head), c->rx_msg_off + from, plen - from, iov);
	default:
		return 0;
	}
}

/*
 * Start direct placement of the FPDU at @b (@avail bytes of it in the
 * buffer, whole headers): check the segment as its receiver would, copy
 * the payload already here into place, and let the socket fill the rest.
 */
static int rx_direct_start(struct soft_conn *c, const uint8_t *b, size_t avail, uint16_t ulpdu,
			   const struct iwarp_hdr *h, int hl)
{
	struct soft_direct *d = &c->direct;
	const uint8_t *seg = b + IWARP_FPDU_HDR_LEN;
	size_t plen = ulpdu - (size_t)hl, have = avail - IWARP_FPDU_HDR_LEN - (size_t)hl;
	struct iovec iov[SOFT_MAX_SGE];
	size_t i, n, off = 0;
	int k;

	if (rx_segment(c, h, seg, (size_t)hl, NULL, plen))
		return -1;
	d->h = *h;
	memcpy(d->seg, seg, min_u64((size_t)hl, sizeof(d->seg)));
	d->plen = (uint32_t)plen;
	d->tlen = iwarp_fpdu_size(ulpdu) - IWARP_FPDU_HDR_LEN - ulpdu;
	if (c->crc) {
		/* The payload is digested in place once it is all there. */
		digest_begin(&d->crc);
		digest_update(&d->crc, b, IWARP_FPDU_HDR_LEN + (size_t)hl);
	}
	k = rx_target(c, h, 0, plen, iov);
	for (i = 0; i < (size_t)k && off < have; i++) {
		n = min_u64(iov[i].iov_len, have - off);
		memcpy(iov[i].iov_base, seg + hl + off, n);
		off += n;
	}
	d->iovcnt = rx_target(c, h, have, plen, d->iov);
	d->iov[d->iovcnt].iov_base = d->trailer;
	d->iov[d->iovcnt++].iov_len = d->tlen;
	d->left = plen - have + d->tlen;
	d->on = true;
	c->st.direct_bytes += plen - have;
	return 0;
}

/* The FPDU read straight into place is whole: check its CRC, finish. */
static void rx_direct_end(struct soft_conn *c)
{
	struct soft_direct *d = &c->direct;
	size_t tlen = d->tlen;
	struct iovec iov[SOFT_MAX_SGE];
	int i, k;

	d->on = false;
	c->st.rx_fpdus++;
	if (c->crc) {
		/* The whole payload, in place now, then PAD as received. */
		k = rx_target(c, &d->h, 0, d->plen, iov);
		for (i = 0; i < k; i++)
			digest_update(&d->crc, iov[i].iov_base, iov[i].iov_len);
		digest_update(&d->crc, d->trailer, tlen - IWARP_FPDU_CRC_LEN);
		if (digest_final(&d->crc) != digest_load(d->trailer + tlen - IWARP_FPDU_CRC_LEN)) {
			term_send(c, IWARP_TERM_LLP, IWARP_TERM_LLP_MPA, IWARP_TERM_MPA_CRC, NULL,
				  0, -EPROTO);
			return;
		}
	}
	switch (d->h.opcode) {
	case IWARP_OP_READ_RESP:
		rx_read_resp_done(c, &d->h, d->plen);
		break;
	case IWARP_OP_WRITE:
		break;
	default:
		c->rx_msg_off += d->plen;
		rx_send_done(c, &d->h, d->seg, sizeof(d->seg));
		break;
	}
}

/* Read into the placement iovecs. Returns 1 (progress), 0 (EAGAIN) or -1. */
static int rx_direct_read(struct soft_conn *c)
{
	struct soft_direct *d = &c->direct;
	ssize_t n;
	size_t done;
	int i = 0;

	n = readv(c->fd, d->iov, d->iovcnt);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	c->st.rx_bytes += (uint64_t)n;
	done = (size_t)n;
	d->left -= done;
	while (done) {
		size_t l = min_u64(done, d->iov[i].iov_len);

		d->iov[i].iov_base = (uint8_t *)d->iov[i].iov_base + l;
		d->iov[i].iov_len -= l;
		done -= l;
		if (!d->iov[i].iov_len)
			i++;
	}
	if (!d->left) {
		rx_direct_end(c);
		return 1;
	}
	memmove(d->iov, d->iov + i, (size_t)(d->iovcnt - i) * sizeof(d->iov[0]));
	d->iovcnt -= i;
	return 1;
}

/*
 * The FPDU at the front of the buffer: processed whole, or placed
 * directly when only part of a large payload is here. Returns the bytes
 * consumed, 0 to wait for more, -1 after an error.
 */
static int rx_fpdu(struct soft_conn *c, const uint8_t *b, size_t n)
{
	struct iwarp_fpdu fp;
	struct iwarp_hdr h;
	int total, hl;
	size_t have;

	total = iwarp_fpdu_parse(b, n, c->crc, IWARP_ULPDU_MAX, &fp);
	if (total == -EBADMSG) {
		term_send(c, IWARP_TERM_LLP, IWARP_TERM_LLP_MPA, IWARP_TERM_MPA_CRC, NULL, 0,
			  -EPROTO);
		return -1;
	}
	if (total == -ENODATA) {
		if (n < IWARP_FPDU_HDR_LEN)
			return 0;
		fp.ulpdu_len = be_get16(b);
		hl = rx_hdr(c, b + IWARP_FPDU_HDR_LEN, n - IWARP_FPDU_HDR_LEN, fp.ulpdu_len, &h);
		if (hl <= 0)
			return hl;
		/* Worth it only for a large rest of payload still to come. */
		have = n - IWARP_FPDU_HDR_LEN - (size_t)hl;
		if (c->tx_hold || c->rtr_send_pending || h.opcode == IWARP_OP_TERMINATE ||
		    h.opcode == IWARP_OP_READ_REQ || have >= fp.ulpdu_len - (size_t)hl ||
		    fp.ulpdu_len - (size_t)hl - have < SOFT_DIRECT_MIN)
			return 0;
		if (rx_direct_start(c, b, n, fp.ulpdu_len, &h, hl))
			return -1;
		return (int)n;
	}
	if (total < 0) {
		conn_error(c, -EPROTO);
		return -1;
	}
	c->st.rx_fpdus++;
	hl = rx_hdr(c, fp.ulpdu, fp.ulpdu_len, fp.ulpdu_len, &h);
	if (hl < 0)
		return -1;
	if (rx_first(c, &h, fp.ulpdu_len - (size_t)hl))
		return total;
	if (rx_segment(c, &h, fp.ulpdu, fp.ulpdu_len, fp.ulpdu + hl, fp.ulpdu_len - (size_t)hl))
		return -1;
	return total;
}

static int rx_mpa_request(struct soft_conn *c, const uint8_t *b, size_t n);
static int rx_mpa_reply(struct soft_conn *c, const uint8_t *b, size_t n);

static void rx_process(struct soft_conn *c)
{
	int r;

	while (c->rx_off < c->rx_len && !c->direct.on) {
		const uint8_t *b = c->rx + c->rx_off;
		size_t n = c->rx_len - c->rx_off;

		switch (c->state) {
		case S_REQ_WAIT:
			r = rx_mpa_request(c, b, n);
			break;
		case S_REP_WAIT:
			r = rx_mpa_reply(c, b, n);
			break;
		case S_RTS:
			r = rx_fpdu(c, b, n);
			break;
		case S_ERROR:
			/* After a Terminate, what comes is read and dropped. */
			c->rx_off = c->rx_len;
			return;
		default:
			return;
		}
		if (r <= 0)
			return;
		c->rx_off += (size_t)r;
	}
}

/*
 * Read-ahead of Read Responses. FPDUs that arrive whole are read into the
 * receive buffer and their payload copied into place (rx_fpdu()); but the
 * response to an RDMA Read of ours is known before it comes: the rest of
 * the Read's sink, in segments of the size the peer used so far. So lay it
 * out as it should come, each payload in the sink, each header and trailer
 * in struct soft_ahead, read it there with one readv, and check each
 * FPDU's header once it is in. When one does not match (another message
 * came first, the peer segments otherwise), the bytes from that FPDU on
 * are gathered back into the receive buffer and framed as usual. Nothing
 * else was overwritten meanwhile: the sink past what the response placed
 * is the Read's own until it completes.
 */

/* The Read whose response is read ahead now, or NULL. */
static struct soft_swqe *rx_ahead_read_of(struct soft_conn *c)
{
	struct soft_ahead *a = c->ahead;
	struct soft_swqe *w;

	if (!a || a->never || c->state != S_RTS || c->direct.on || c->rx_off != c->rx_len ||
	    c->tx_hold || c->rtr_send_pending)
		return NULL;
	w = orq_head(c);
	/* Mid-FPDU, or more than one segment still to come. */
	if (!w || (!a->have && w->len - w->got <= a->seg))
		return NULL;
	return w;
}

/* Lay out the FPDUs of @w's response from what it placed; their bytes. */
static size_t rx_ahead_layout(struct soft_conn *c, const struct soft_swqe *w)
{
	struct soft_ahead *a = c->ahead;
	uint64_t pos = w->got;
	size_t bytes = 0, ulpdu, fl;
	uint32_t plen;
	int i;

	for (i = 0; i < SOFT_AHEAD_MAX && pos < w->len; i++) {
		plen = (uint32_t)min_u64(a->seg, w->len - pos);
		ulpdu = IWARP_TAGGED_HDR_LEN + plen;
		fl = iwarp_fpdu_size(ulpdu);
		/* A miss is gathered back into the receive buffer: it fits. */
		if (bytes + fl > SOFT_RX_CAP)
			break;
		a->f[i].pos = pos;
		a->f[i].plen = plen;
		a->f[i].tlen = (uint32_t)(fl - IWARP_FPDU_HDR_LEN - ulpdu);
		bytes += fl;
		pos += plen;
	}
	a->n = i;
	return bytes;
}

/* Piece @k of laid-out FPDU @i: 0 its headers, 1 its payload, 2 PAD and CRC. */
static struct iovec rx_ahead_piece(struct soft_conn *c, const struct soft_swqe *w, int i, int k)
{
	struct soft_ahead *a = c->ahead;

	if (k == 0)
		return (struct iovec){a->hdr[i], sizeof(a->hdr[i])};
	if (k == 1)
		return (struct iovec){ptr_of(w->sge[0].addr + a->f[i].pos), a->f[i].plen};
	return (struct iovec){a->trl[i], a->f[i].tlen};
}

/* Whether FPDU @i's headers, all read, are the ones laid out. */
static bool rx_ahead_match(struct soft_conn *c, const struct soft_swqe *w, int i)
{
	struct soft_ahead *a = c->ahead;
	struct iwarp_hdr h;

	return be_get16(a->hdr[i]) == IWARP_TAGGED_HDR_LEN + a->f[i].plen &&
	       iwarp_hdr_decode(a->hdr[i] + IWARP_FPDU_HDR_LEN, IWARP_TAGGED_HDR_LEN, &h) ==
		       IWARP_TAGGED_HDR_LEN &&
	       h.opcode == IWARP_OP_READ_RESP && h.stag == w->sge[0].lkey &&
	       h.to == w->sge[0].addr + a->f[i].pos &&
	       h.last == (a->f[i].pos + a->f[i].plen == w->len);
}

/* FPDU @i is in, its headers matched: check its CRC, place it. */
static bool rx_ahead_end(struct soft_conn *c, const struct soft_swqe *w, int i)
{
	struct soft_ahead *a = c->ahead;
	struct iwarp_hdr h = {.last = a->f[i].pos + a->f[i].plen == w->len};
	size_t tl = a->f[i].tlen;
	struct digest_ctx crc;
	int k;

	if (c->crc) {
		digest_begin(&crc);
		for (k = 0; k < 2; k++) {
			struct iovec v = rx_ahead_piece(c, w, i, k);

			digest_update(&crc, v.iov_base, v.iov_len);
		}
		digest_update(&crc, a->trl[i], tl - IWARP_FPDU_CRC_LEN);
		if (digest_final(&crc) != digest_load(a->trl[i] + tl - IWARP_FPDU_CRC_LEN)) {
			term_send(c, IWARP_TERM_LLP, IWARP_TERM_LLP_MPA, IWARP_TERM_MPA_CRC, NULL,
				  0, -EPROTO);
			return false;
		}
	}
	c->st.rx_fpdus++;
	c->st.ahead_fpdus++;
	c->st.direct_bytes += a->f[i].plen;
	rx_read_resp_done(c, &h, a->f[i].plen);
	return true;
}

/* From FPDU @i on, the @len bytes read: back into the receive buffer. */
static void rx_ahead_miss(struct soft_conn *c, const struct soft_swqe *w, int i, size_t len)
{
	struct soft_ahead *a = c->ahead;
	struct iovec v;
	size_t n;
	int k;

	c->rx_off = 0;
	c->rx_len = 0;
	for (; len; i++)
		for (k = 0; k < 3 && len; k++) {
			v = rx_ahead_piece(c, w, i, k);
			n = min_u64(v.iov_len, len);
			memcpy(c->rx + c->rx_len, v.iov_base, n);
			c->rx_len += n;
			len -= n;
		}
	a->have = 0;
	c->st.ahead_misses++;
	if (++a->miss >= SOFT_AHEAD_MISS)
		a->never = true;
	rx_process(c);
}

/*
 * One read ahead of @w's response. Returns 1 (read all it asked for), 0
 * (EAGAIN, or the socket is empty now), or -errno.
 */
static int rx_ahead_read(struct soft_conn *c, const struct soft_swqe *w)
{
	struct soft_ahead *a = c->ahead;
	size_t want = rx_ahead_layout(c, w) - a->have, skip = a->have, end, pos = 0, fl, in;
	struct iovec v;
	int i, k, cnt = 0;
	ssize_t n;

	for (i = 0; i < a->n; i++)
		for (k = 0; k < 3; k++) {
			v = rx_ahead_piece(c, w, i, k);
			if (skip >= v.iov_len) {
				skip -= v.iov_len;
				continue;
			}
			a->iov[cnt].iov_base = (uint8_t *)v.iov_base + skip;
			a->iov[cnt++].iov_len = v.iov_len - skip;
			skip = 0;
		}
	n = readv(c->fd, a->iov, cnt);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	c->st.rx_bytes += (uint64_t)n;
	end = a->have + (size_t)n;
	for (i = 0; i < a->n && pos < end; i++, pos += fl) {
		fl = IWARP_FPDU_HDR_LEN + IWARP_TAGGED_HDR_LEN + a->f[i].plen + a->f[i].tlen;
		in = min_u64(end - pos, fl);
		if ((i || a->have < sizeof(a->hdr[0])) && in >= sizeof(a->hdr[0]) &&
		    !rx_ahead_match(c, w, i)) {
			rx_ahead_miss(c, w, i, end - pos);
			return (size_t)n == want;
		}
		if (in < fl) {
			/* Read in part: the next read goes on with it. */
			if (i) {
				memcpy(a->hdr[0], a->hdr[i], sizeof(a->hdr[0]));
				memcpy(a->trl[0], a->trl[i], sizeof(a->trl[0]));
			}
			a->have = in;
			return 0;
		}
		a->have = 0;
		a->miss = 0;
		if (!rx_ahead_end(c, w, i))
			return 1;
	}
	return (size_t)n == want;
}

static void connect_end(struct soft_conn *c, enum rdma_event_type type, int status,
			const void *pdata, size_t len);

/* End of stream, or a broken one. */
static void rx_end(struct soft_conn *c, int err)
{
	switch (c->state) {
	case S_REQ_WAIT:
		close_fd(c);
		break;
	case S_CONNECTING:
	case S_REP_WAIT:
		connect_end(c, RDMA_EV_CONNECT_ERROR, err ? err : -ECONNRESET, NULL, 0);
		break;
	case S_RTS:
		/* A FIN between two FPDUs is the peer's disconnect. */
		conn_error(c, err || c->rx_off != c->rx_len || c->direct.on ||
					      (c->ahead && c->ahead->have)
				      ? -ECONNRESET
				      : 0);
		break;
	default:
		break;
	}
	c->eof = true;
	if (err)
		close_fd(c);
	else if (c->fd >= 0) {
		fd_set_events(c, c->fd_events & ~(uint32_t)EPOLLIN);
		tx_maybe_close(c);
	}
}

static void rx_run(struct soft_conn *c)
{
	const struct soft_swqe *w;
	size_t room;
	ssize_t n;
	int i, r;

	for (i = 0; i < SOFT_RX_ROUNDS && c->fd >= 0 && !c->eof; i++) {
		if (c->state == S_REQ_RCVD)
			return;
		if (c->direct.on) {
			r = rx_direct_read(c);
			if (r < 0)
				rx_end(c, r == -ECONNRESET ? 0 : r);
			if (r <= 0)
				return;
			rx_process(c);
			continue;
		}
		w = rx_ahead_read_of(c);
		if (w) {
			r = rx_ahead_read(c, w);
			if (r < 0)
				rx_end(c, r == -ECONNRESET ? 0 : r);
			if (r <= 0)
				return;
			continue;
		}
		if (c->rx_off) {
			memmove(c->rx, c->rx + c->rx_off, c->rx_len - c->rx_off);
			c->rx_len -= c->rx_off;
			c->rx_off = 0;
		}
		room = SOFT_RX_CAP - c->rx_len;
		n = recv(c->fd, c->rx + c->rx_len, room, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0) {
			rx_end(c, n < 0 ? -errno : 0);
			return;
		}
		c->rx_len += (size_t)n;
		c->st.rx_bytes += (uint64_t)n;
		rx_process(c);
		/* A short read emptied the socket: the fd is level-triggered,
		 * so what comes next raises it again; asking now would only
		 * return EAGAIN (one syscall per wake-up, measured). */
		if ((size_t)n < room && !c->direct.on)
			return;
	}
}

/* Connection management: MPA (RFC 5044 §7.1, RFC 6581) */

static uint16_t clamp16(uint32_t v, uint32_t max)
{
	return (uint16_t)(v < max ? v : max);
}

/* Our MULPDU (RFC 5044): an FPDU fits one TCP segment, up to 16 KiB, or the
 * configured size. */
static uint32_t mulpdu(struct soft_conn *c)
{
	uint32_t v = c->dev->opts.max_ulpdu;
	int mss = 0;
	socklen_t sl = sizeof(mss);

	if (!v) {
		v = SOFT_MULPDU_DEFAULT;
		/* Header, ULPDU and CRC in one segment, with no PAD. */
		if (!getsockopt(c->fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &sl) && mss > 512 &&
		    (((uint32_t)mss - 8) & ~3u) + 2 < v)
			v = (((uint32_t)mss - 8) & ~3u) + 2;
	}
	if (v > IWARP_ULPDU_MAX)
		v = IWARP_ULPDU_MAX;
	return v < SOFT_ULPDU_MIN ? SOFT_ULPDU_MIN : v;
}

static int mpa_push(struct soft_conn *c, const struct iwarp_mpa *m)
{
	uint8_t *buf = malloc(IWARP_MPA_FRAME_MAX);
	int n;

	if (!buf)
		return -ENOMEM;
	n = iwarp_mpa_encode(m, buf, IWARP_MPA_FRAME_MAX);
	if (n < 0) {
		free(buf);
		return n;
	}
	return tx_push_raw(c, buf, (size_t)n);
}

static void connect_end(struct soft_conn *c, enum rdma_event_type type, int status,
			const void *pdata, size_t len)
{
	c->state = S_ERROR;
	qp_flush(c);
	close_fd(c);
	ev_queue(c, &c->ev_end, type, status, pdata, len);
}

/* The Request is being read (passive). Returns as rx_fpdu(). */
static int rx_mpa_request(struct soft_conn *c, const uint8_t *b, size_t n)
{
	struct iwarp_mpa m;
	int r;

	/* DESIGN §5: a listener takes only MPA; anything else is dropped. */
	r = iwarp_mpa_is_request(b, n);
	if (r == -ENODATA)
		return 0;
	r = r ? iwarp_mpa_decode(b, n, &m) : -EPROTO;
	if (r == -ENODATA)
		return 0;
	/* RFC 5044 §7.1: a frame we cannot use closes the connection; markers
	 * are declined with a rejecting Reply. */
	if (r < 0 || m.markers) {
		if (r > 0) {
			struct iwarp_mpa rep = {.reply = true, .reject = true, .rev = m.rev};

			conn_error(c, -EPROTO);
			mpa_push(c, &rep);
			return -1;
		}
		close_fd(c);
		return -1;
	}
	c->peer = (struct soft_peer_req){
		.crc = m.crc,
		.enhanced = m.enhanced,
		.p2p = m.p2p,
		.rev = m.rev,
		.rtr = m.rtr,
		.ird = m.ird,
		.ord = m.ord,
	};
	c->state = S_REQ_RCVD;
	fd_set_events(c, 0);
	sched_timer_cancel(c->dev->sched, &c->timer);
	c->ord = m.ord;
	c->ird = m.ird;
	ev_queue(c, &c->ev_setup, RDMA_EV_CONNECT_REQUEST, 0, m.pdata, m.pdata_len);
	c->ord = c->ird = 0;
	return r;
}

/* RFC 6581: the RTR a responder picks among those offered. */
static uint8_t rtr_pick(uint8_t offered)
{
	if (offered & IWARP_MPA_RTR_WRITE)
		return IWARP_MPA_RTR_WRITE;
	if (offered & IWARP_MPA_RTR_READ)
		return IWARP_MPA_RTR_READ;
	return offered & IWARP_MPA_RTR_SEND;
}

/* Initiator, p2p: the zero-length RDMA Write RTR, before anything else. */
static void rtr_push(struct soft_conn *c)
{
	struct iwarp_hdr h = {.tagged = true, .last = true, .opcode = IWARP_OP_WRITE};
	struct soft_frame *f = frame_new(c, SOFT_TX_FRAMES);

	if (f)
		frame_fpdu(c, f, &h, 0, 0, 0);
}

static void establish(struct soft_conn *c)
{
	c->state = S_RTS;
	c->max_ulpdu = mulpdu(c);
	c->st.crc = c->crc;
	c->st.ird = c->ird;
	c->st.ord = c->ord;
	c->st.max_ulpdu = c->max_ulpdu;
	fd_set_events(c, EPOLLIN);
	tx_kick(c);
}

/* The Reply is being read (active). Returns as rx_fpdu(). */
static int rx_mpa_reply(struct soft_conn *c, const uint8_t *b, size_t n)
{
	struct iwarp_mpa m;
	int r = iwarp_mpa_decode(b, n, &m);

	if (r == -ENODATA)
		return 0;
	if (r < 0 || !m.reply || m.markers ||
	    (m.enhanced && m.p2p && m.rtr && m.rtr != IWARP_MPA_RTR_WRITE)) {
		connect_end(c, RDMA_EV_CONNECT_ERROR, -EPROTO, NULL, 0);
		return -1;
	}
	if (m.reject) {
		connect_end(c, RDMA_EV_REJECTED, 0, m.pdata, m.pdata_len);
		return -1;
	}
	sched_timer_cancel(c->dev->sched, &c->timer);
	/* RFC 5044 §7.1: CRC is used if either side asked for it. */
	c->crc = c->crc || m.crc;
	c->ord = c->want_ord;
	c->ird = c->want_ird;
	if (m.enhanced) {
		/* RFC 6581: our ORD no more than the responder's IRD; we
		 * serve as many Reads as the responder's ORD. */
		c->ord = clamp16(c->ord < m.ird ? c->ord : m.ird, SOFT_ORD_MAX);
		c->ird = clamp16(c->ird > m.ord ? c->ird : m.ord, SOFT_IRD_MAX);
	}
	establish(c);
	if (m.enhanced && m.p2p && m.rtr)
		rtr_push(c);
	ev_queue(c, &c->ev_setup, RDMA_EV_ESTABLISHED, 0, m.pdata, m.pdata_len);
	return r;
}

static void conn_timer(struct sched_timer *t)
{
	struct soft_conn *c = container_of(t, struct soft_conn, timer);

	switch (c->state) {
	case S_CONNECTING:
	case S_REP_WAIT:
		connect_end(c, RDMA_EV_CONNECT_ERROR, -ETIMEDOUT, NULL, 0);
		break;
	default:
		/* A Request that never came, or a peer that never closed. */
		close_fd(c);
		break;
	}
}

static void connect_done(struct soft_conn *c)
{
	int err = 0;
	socklen_t sl = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
		err = errno;
	if (err) {
		connect_end(c, RDMA_EV_CONNECT_ERROR, -err, NULL, 0);
		return;
	}
	c->state = S_REP_WAIT;
	fd_set_events(c, EPOLLIN);
	tx_run(c);
}

static void conn_fd_cb(struct sched_fd *sfd, uint32_t events)
{
	struct soft_conn *c = container_of(sfd, struct soft_conn, sfd);

	switch (c->state) {
	case S_CONNECTING:
		connect_done(c);
		return;
	case S_REQ_RCVD:
		/* Not reading until accepted; the reply will find the error. */
		if (events & (EPOLLERR | EPOLLHUP))
			fd_unwatch(c);
		return;
	case S_ERROR:
		if (events & (EPOLLERR | EPOLLHUP)) {
			close_fd(c);
			return;
		}
		break;
	default:
		break;
	}
	if (events & EPOLLOUT)
		tx_run(c);
	if (c->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		rx_run(c);
}

static void conn_free(struct soft_conn *c)
{
	struct soft_dev *d = c->dev;

	ev_unlink(d, &c->ev_setup);
	ev_unlink(d, &c->ev_end);
	listener_unlink(c);
	close_fd(c);
	sched_cancel(d->sched, &c->reap_ev);
	sched_cancel(d->sched, &c->tx_ev);
	sched_timer_cancel(d->sched, &c->timer);
	if (c->has_qp) {
		/* Dropped with no completion: give their CQ slots back. */
		cq_release(c->scq, (uint32_t)(c->sq_tail - c->sq_head));
		cq_release(c->rcq, (uint32_t)(c->rq_tail - c->rq_head));
	}
	free(c->sq);
	free(c->rq);
	free(c->irq);
	free(c->rx);
	free(c->ahead);
	free(c);
}

static void conn_reap(struct sched_event *ev)
{
	conn_free(container_of(ev, struct soft_conn, reap_ev));
}

/* A connection on socket @fd (owned: closed on failure). */
static int conn_new(struct soft_dev *d, int fd, enum soft_state state, uint32_t events,
		    struct soft_conn **ret)
{
	struct soft_conn *c = calloc(1, sizeof(*c));
	int one = 1, err;

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->base.dev = &d->base;
	c->dev = d;
	c->fd = fd;
	c->state = state;
	c->max_ulpdu = SOFT_ULPDU_MIN;
	c->tx_msn[0] = c->tx_msn[1] = c->tx_msn[2] = 1;
	c->rx_msn[0] = c->rx_msn[1] = c->rx_msn[2] = 1;
	sched_event_init(&c->tx_ev, tx_event);
	sched_event_init(&c->reap_ev, conn_reap);
	sched_timer_init(&c->timer, conn_timer);
	c->rx = malloc(SOFT_RX_CAP);
	c->irq = calloc(SOFT_IRD_MAX, sizeof(*c->irq));
	if (!c->rx || !c->irq) {
		err = -ENOMEM;
		goto err_free;
	}
	/* Latency over batching: every FPDU goes out at once. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	err = sched_fd_add(d->sched, &c->sfd, fd, events, conn_fd_cb);
	if (err)
		goto err_free;
	c->watched = true;
	c->fd_events = events;
	sched_timer_arm(d->sched, &c->timer, sched_now(d->sched) + SOFT_MPA_TIMEOUT_NS);
	*ret = c;
	return 0;

err_free:
	close(fd);
	free(c->irq);
	free(c->rx);
	free(c);
	return err;
}

static int soft_qp_create(struct rdma_conn *rc, const struct rdma_qp_attr *a)
{
	struct soft_conn *c = to_conn(rc);

	if (c->has_qp)
		return -EALREADY;
	if (!a || !a->pd || !a->send_cq || !a->recv_cq || !a->max_send_wr || !a->max_recv_wr ||
	    !a->max_send_sge || !a->max_recv_sge || a->max_send_sge > SOFT_MAX_SGE ||
	    a->max_recv_sge > SOFT_MAX_SGE || a->max_send_wr > (1u << 20) ||
	    a->max_recv_wr > (1u << 20))
		return -EINVAL;
	c->sq = calloc(a->max_send_wr, sizeof(*c->sq));
	c->rq = calloc(a->max_recv_wr, sizeof(*c->rq));
	if (!c->sq || !c->rq) {
		free(c->sq);
		free(c->rq);
		c->sq = NULL;
		c->rq = NULL;
		return -ENOMEM;
	}
	c->pd = to_pd(a->pd);
	c->scq = to_cq(a->send_cq);
	c->rcq = to_cq(a->recv_cq);
	c->sq_size = a->max_send_wr;
	c->rq_size = a->max_recv_wr;
	c->max_send_sge = a->max_send_sge;
	c->max_recv_sge = a->max_recv_sge;
	c->has_qp = true;
	return 0;
}

static int pdata_check(const struct rdma_conn_attr *p)
{
	if (p->pdata_len > SOFT_PDATA_MAX)
		return -EMSGSIZE;
	if (p->pdata_len && !p->pdata)
		return -EINVAL;
	return 0;
}

static int soft_connect(struct rdma_dev *rd, const struct sockaddr *sa, socklen_t salen,
			const struct rdma_qp_attr *attr, const struct rdma_conn_attr *p,
			struct rdma_conn **ret)
{
	struct soft_dev *d = to_dev(rd);
	struct iwarp_mpa m = {.rev = IWARP_MPA_REV2, .enhanced = true, .p2p = true};
	struct soft_conn *c;
	int fd, err, cerr;

	err = pdata_check(p);
	if (err)
		return err;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	cerr = connect(fd, sa, salen) < 0 && errno != EINPROGRESS ? -errno : 0;
	if (cerr == -EINVAL || cerr == -EAFNOSUPPORT) {
		close(fd);
		return cerr;
	}
	err = conn_new(d, fd, S_CONNECTING, EPOLLOUT, &c);
	if (err)
		return err;
	err = soft_qp_create(&c->base, attr);
	if (err)
		goto err_free;
	c->want_ord = clamp16(p->initiator_depth, SOFT_ORD_MAX);
	c->want_ird = clamp16(p->responder_resources, SOFT_IRD_MAX);
	c->crc = !d->opts.no_crc;
	/* RFC 6581: IRD/ORD, and the zero-length Write as the RTR we send. */
	m.crc = c->crc;
	m.rtr = IWARP_MPA_RTR_WRITE;
	m.ird = c->want_ird;
	m.ord = c->want_ord;
	m.pdata = p->pdata;
	m.pdata_len = (uint16_t)p->pdata_len;
	err = mpa_push(c, &m);
	if (err)
		goto err_free;
	/* As rdma_cm: a peer that refuses is an event, not a return. */
	if (cerr)
		connect_end(c, RDMA_EV_CONNECT_ERROR, cerr, NULL, 0);
	*ret = &c->base;
	return 0;

err_free:
	conn_free(c);
	return err;
}

static int soft_accept(struct rdma_conn *rc, const struct rdma_conn_attr *p)
{
	struct soft_conn *c = to_conn(rc);
	struct iwarp_mpa m = {.reply = true, .rev = c->peer.rev, .enhanced = c->peer.enhanced};
	uint16_t ord = p->initiator_depth, ird = p->responder_resources;
	int err;

	if (c->state != S_REQ_RCVD || !c->has_qp)
		return -EINVAL;
	err = pdata_check(p);
	if (err)
		return err;
	if (c->peer.enhanced) {
		/* RFC 6581: our ORD within the initiator's IRD; our IRD up to
		 * its ORD, so that its Reads are not refused. */
		ord = ord < c->peer.ird ? ord : c->peer.ird;
		ird = ird > c->peer.ord ? ird : c->peer.ord;
		m.p2p = c->peer.p2p && rtr_pick(c->peer.rtr);
		m.rtr = m.p2p ? rtr_pick(c->peer.rtr) : 0;
	}
	c->ord = clamp16(ord, SOFT_ORD_MAX);
	c->ird = clamp16(ird, SOFT_IRD_MAX);
	m.ird = c->ird;
	m.ord = c->ord;
	/* Follow the initiator: CRC if it asked (RFC 5044 §7.1). */
	c->crc = c->peer.crc;
	m.crc = c->crc;
	m.pdata = p->pdata;
	m.pdata_len = (uint16_t)p->pdata_len;
	err = mpa_push(c, &m);
	if (err)
		return err;
	/* RFC 5044 §7.1.2: the responder sends nothing before the
	 * initiator's first FPDU (with p2p: its RTR). */
	c->tx_hold = true;
	c->rtr_send_pending = m.rtr == IWARP_MPA_RTR_SEND;
	establish(c);
	ev_queue(c, &c->ev_setup, RDMA_EV_ESTABLISHED, 0, NULL, 0);
	if (!c->watched)
		/* The socket broke while the request waited. */
		conn_error(c, -ECONNRESET);
	else
		/* FPDUs that came with the Request raise no more readiness. */
		rx_process(c);
	return 0;
}

static int soft_reject(struct rdma_conn *rc, const void *pdata, size_t len)
{
	struct soft_conn *c = to_conn(rc);
	struct iwarp_mpa m = {
		.reply = true,
		.reject = true,
		.rev = c->peer.rev,
		.enhanced = c->peer.enhanced,
		.pdata = pdata,
		.pdata_len = (uint16_t)len,
	};
	int err;

	if (c->state != S_REQ_RCVD)
		return -EINVAL;
	if (len > SOFT_PDATA_MAX)
		return -EMSGSIZE;
	conn_error(c, 0);
	err = mpa_push(c, &m);
	/* Out now: the caller destroys the connection next. */
	tx_run(c);
	return err;
}

static int soft_disconnect(struct rdma_conn *rc)
{
	struct soft_conn *c = to_conn(rc);

	switch (c->state) {
	case S_CONNECTING:
	case S_REP_WAIT:
		connect_end(c, RDMA_EV_CONNECT_ERROR, -ECONNABORTED, NULL, 0);
		return 0;
	case S_REQ_WAIT:
	case S_REQ_RCVD:
		return -EINVAL;
	default:
		conn_error(c, 0);
		return 0;
	}
}

static void soft_conn_destroy(struct rdma_conn *rc)
{
	conn_free(to_conn(rc));
}

static int soft_conn_get_stats(const struct rdma_conn *rc, struct rdma_conn_stats *st)
{
	*st = to_cconn(rc)->st;
	return 0;
}

/* Listeners */

static int listener_take(struct soft_listener *l, int fd, const void *buf, size_t len)
{
	struct soft_conn *c;
	int err;

	if (len > SOFT_RX_CAP) {
		close(fd);
		return -EMSGSIZE;
	}
	err = conn_new(l->dev, fd, S_REQ_WAIT, EPOLLIN, &c);
	if (err)
		return err;
	c->listener = l;
	c->l_next = l->pending;
	if (l->pending)
		l->pending->l_prev = c;
	l->pending = c;
	if (len) {
		memcpy(c->rx, buf, len);
		c->rx_len = len;
		rx_process(c);
	}
	return 0;
}

static void listener_cb(struct sched_fd *sfd, uint32_t events)
{
	struct soft_listener *l = container_of(sfd, struct soft_listener, sfd);
	int i, fd;

	(void)events;
	for (i = 0; i < SOFT_ACCEPT_BATCH; i++) {
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		listener_take(l, fd, NULL, 0);
	}
}

static int soft_listen(struct rdma_dev *rd, const struct sockaddr *sa, socklen_t salen, int backlog,
		       struct rdma_listener **ret)
{
	struct soft_listener *l = calloc(1, sizeof(*l));
	int one = 1, err;

	if (!l)
		return -ENOMEM;
	l->base.dev = rd;
	l->dev = to_dev(rd);
	l->fd = -1;
	if (!sa) {
		*ret = &l->base;
		return 0;
	}
	l->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		err = -errno;
		goto err_free;
	}
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, sa, salen) < 0 || listen(l->fd, backlog > 0 ? backlog : 128) < 0) {
		err = -errno;
		goto err_close;
	}
	err = sched_fd_add(l->dev->sched, &l->sfd, l->fd, EPOLLIN, listener_cb);
	if (err)
		goto err_close;
	*ret = &l->base;
	return 0;

err_close:
	close(l->fd);
err_free:
	free(l);
	return err;
}

static void soft_listener_destroy(struct rdma_listener *rl)
{
	struct soft_listener *l = to_listener(rl);

	/* Connections no caller has seen yet go with it. */
	while (l->pending)
		conn_free(l->pending);
	if (l->fd >= 0) {
		sched_fd_del(l->dev->sched, &l->sfd);
		close(l->fd);
	}
	free(l);
}

static int soft_listener_addr(const struct rdma_listener *rl, struct sockaddr_storage *ss)
{
	const struct soft_listener *l = container_of(rl, const struct soft_listener, base);
	socklen_t sl = sizeof(*ss);

	if (l->fd < 0)
		return -ENOTCONN;
	if (getsockname(l->fd, (struct sockaddr *)ss, &sl) < 0)
		return -errno;
	return 0;
}

static int soft_listener_adopt(struct rdma_listener *rl, int fd, const void *buf, size_t len)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		return -EBADF;
	}
	return listener_take(to_listener(rl), fd, buf, len);
}

/* Posting work */

static bool conn_dead(const struct soft_conn *c)
{
	return c->state == S_ERROR || c->state == S_CLOSED;
}

/* Check SGEs against their MRs, as the peer checks STags. */
static enum rdma_wc_status sge_check(struct soft_conn *c, const struct rdma_sge *sg, int n,
				     unsigned int access, uint64_t *len)
{
	int i;

	*len = 0;
	for (i = 0; i < n; i++) {
		*len += sg[i].length;
		if (sg[i].length &&
		    mem_check(c, sg[i].lkey, sg[i].addr, sg[i].length, access) != MEM_OK)
			return RDMA_WC_LOC_PROT_ERR;
	}
	return *len > UINT32_MAX ? RDMA_WC_LOC_LEN_ERR : RDMA_WC_SUCCESS;
}

static int send_wr_valid(const struct soft_conn *c, const struct rdma_send_wr *wr)
{
	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > c->max_send_sge ||
	    (wr->num_sge && !wr->sg_list) || (wr->flags & ~RDMA_SEND_SIGNALED))
		return -EINVAL;
	switch (wr->opcode) {
	case RDMA_WR_SEND:
	case RDMA_WR_SEND_WITH_INV:
	case RDMA_WR_RDMA_WRITE:
		return 0;
	case RDMA_WR_RDMA_READ:
		/* iWARP: one Data Sink STag per Read Request (RFC 5040 §4.4). */
		return wr->num_sge == 1 ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

static int post_one_send(struct soft_conn *c, const struct rdma_send_wr *wr)
{
	struct soft_swqe *w;
	int err = send_wr_valid(c, wr);

	if (err)
		return err;
	if (c->sq_tail - c->sq_head >= c->sq_size || !cq_reserve(c->scq))
		return -ENOMEM;
	w = sq_at(c, c->sq_tail);
	memset(w, 0, offsetof(struct soft_swqe, sge));
	w->wr_id = wr->wr_id;
	w->opcode = wr->opcode;
	w->signaled = wr->flags & RDMA_SEND_SIGNALED;
	w->num_sge = wr->num_sge;
	memcpy(w->sge, wr->sg_list, (size_t)wr->num_sge * sizeof(w->sge[0]));
	w->remote_addr = wr->remote_addr;
	w->rkey = wr->rkey;
	w->inv_rkey = wr->invalidate_rkey;
	w->status =
		sge_check(c, w->sge, w->num_sge,
			  wr->opcode == RDMA_WR_RDMA_READ ? RDMA_ACCESS_LOCAL_WRITE : 0, &w->len);
	if (conn_dead(c)) {
		sq_complete(c, w, RDMA_WC_WR_FLUSH_ERR);
		return 0;
	}
	c->sq_tail++;
	return 0;
}

static int soft_post_send(struct rdma_conn *rc, struct rdma_send_wr *wr,
			  struct rdma_send_wr **bad_wr)
{
	struct soft_conn *c = to_conn(rc);
	int err = 0;

	if (!c->has_qp) {
		*bad_wr = wr;
		return -EINVAL;
	}
	for (; wr; wr = wr->next) {
		err = post_one_send(c, wr);
		if (err) {
			*bad_wr = wr;
			break;
		}
	}
	/* The doorbell: one write for all that was posted this pass. */
	tx_kick(c);
	return err;
}

static int post_one_recv(struct soft_conn *c, const struct rdma_recv_wr *wr)
{
	struct soft_rwqe *r;
	int i;

	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > c->max_recv_sge ||
	    (wr->num_sge && !wr->sg_list))
		return -EINVAL;
	if (c->rq_tail - c->rq_head >= c->rq_size || !cq_reserve(c->rcq))
		return -ENOMEM;
	r = rq_at(c, c->rq_tail);
	r->wr_id = wr->wr_id;
	r->done = false;
	r->num_sge = wr->num_sge;
	for (i = 0; i < wr->num_sge; i++)
		r->seg[i] = (struct soft_seg){ptr_of(wr->sg_list[i].addr), wr->sg_list[i].length};
	r->status = sge_check(c, wr->sg_list, wr->num_sge, RDMA_ACCESS_LOCAL_WRITE, &r->len);
	if (conn_dead(c)) {
		rq_complete(c, r, RDMA_WC_WR_FLUSH_ERR, 0, 0);
		return 0;
	}
	c->rq_tail++;
	return 0;
}

static int soft_post_recv(struct rdma_conn *rc, struct rdma_recv_wr *wr,
			  struct rdma_recv_wr **bad_wr)
{
	struct soft_conn *c = to_conn(rc);
	int err;

	if (!c->has_qp) {
		*bad_wr = wr;
		return -EINVAL;
	}
	for (; wr; wr = wr->next) {
		err = post_one_recv(c, wr);
		if (err) {
			*bad_wr = wr;
			return err;
		}
	}
	return 0;
}

/* The device */

static bool soft_probe(void)
{
	return true;
}

static int soft_dev_create(struct sched *s, const struct rdma_dev_opts *opts, struct rdma_dev **ret)
{
	struct soft_dev *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->base.event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->base.event_fd < 0) {
		free(d);
		return -errno;
	}
	d->base.ops = &rdma_soft_ops;
	d->sched = s;
	d->opts = *opts;
	*ret = &d->base;
	return 0;
}

static void soft_dev_destroy(struct rdma_dev *rd)
{
	struct soft_dev *d = to_dev(rd);

	close(d->base.event_fd);
	free(d->mrs);
	free(d);
}

const struct rdma_ops rdma_soft_ops = {
	.name = "soft",
	.probe = soft_probe,
	.dev_create = soft_dev_create,
	.dev_destroy = soft_dev_destroy,
	.get_event = soft_get_event,
	.pd_create = soft_pd_create,
	.pd_destroy = soft_pd_destroy,
	.mr_create = soft_mr_create,
	.mr_destroy = soft_mr_destroy,
	.cq_create = soft_cq_create,
	.cq_destroy = soft_cq_destroy,
	.cq_poll = soft_cq_poll,
	.cq_arm = soft_cq_arm,
	.cq_ack = soft_cq_ack,
	.cq_set_notify = soft_cq_set_notify,
	.listen = soft_listen,
	.listener_destroy = soft_listener_destroy,
	.listener_addr = soft_listener_addr,
	.listener_adopt = soft_listener_adopt,
	.connect = soft_connect,
	.qp_create = soft_qp_create,
	.accept = soft_accept,
	.reject = soft_reject,
	.disconnect = soft_disconnect,
	.conn_destroy = soft_conn_destroy,
	.conn_get_stats = soft_conn_get_stats,
	.post_send = soft_post_send,
	.post_recv = soft_post_recv,
};
