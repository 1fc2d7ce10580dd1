/*
 * soft: the soft RDMA provider (DESIGN §5). iWARP in user space over
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
 * The response to an RDMA Read of ours is read ahead: laid out as it
 * should come, payloads in the sink, and checked once in.
 *
 * Completion semantics, as siw's: a Send or an RDMA Write completes when
 * its last byte went to TCP, an RDMA Read when the last Read Response
 * segment was placed. iWARP acknowledges nothing, so a Send or a Write the
 * peer refuses has completed already when the peer's Terminate comes back;
 * the Terminate then puts the connection in error and flushes what
 * remains. An RDMA Read the peer refuses is still outstanding: it
 * completes with the Terminate's error (RDMA_WC_REM_ACCESS_ERR...).
 *
 * soft_priv: what the provider's files share (soft_verbs.c: the device,
 * completion queues, events, memory regions, work queues, posting and the
 * ops table; soft_tx.c: the transmit ring, errors and sending a Terminate;
 * soft_rx.c: receive, direct placement and read-ahead; soft_cm.c: MPA,
 * connections and listeners). Nothing outside common/soft/ sees it.
 */
#ifndef ISERKIT_SOFT_PRIV_H
#define ISERKIT_SOFT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

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

/* What soft_mem_check() found. */
enum mem_err {
	MEM_OK,
	MEM_STAG,   /* no such STag, or invalidated */
	MEM_PD,	    /* not of this stream's protection domain */
	MEM_ACCESS, /* without the access right */
	MEM_WRAP,   /* the Tagged Offset wraps */
	MEM_BOUNDS, /* outside the region */
};

static inline struct soft_dev *to_dev(struct rdma_dev *d)
{
	return container_of(d, struct soft_dev, base);
}

static inline struct soft_conn *to_conn(struct rdma_conn *c)
{
	return container_of(c, struct soft_conn, base);
}

static inline const struct soft_conn *to_cconn(const struct rdma_conn *c)
{
	return container_of(c, const struct soft_conn, base);
}

static inline struct soft_cq *to_cq(struct rdma_cq *cq)
{
	return container_of(cq, struct soft_cq, base);
}

static inline struct soft_pd *to_pd(struct rdma_pd *pd)
{
	return container_of(pd, struct soft_pd, base);
}

static inline struct soft_mr *to_mr(struct rdma_mr *mr)
{
	return container_of(mr, struct soft_mr, base);
}

static inline struct soft_listener *to_listener(struct rdma_listener *l)
{
	return container_of(l, struct soft_listener, base);
}

static inline void *ptr_of(uint64_t addr)
{
	return (void *)(uintptr_t)addr;
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline struct soft_swqe *sq_at(struct soft_conn *c, uint64_t n)
{
	return &c->sq[n % c->sq_size];
}

static inline struct soft_rwqe *rq_at(struct soft_conn *c, uint64_t n)
{
	return &c->rq[n % c->rq_size];
}

/* soft_verbs.c */

/* Give back @n completion slots reserved for requests that will not complete. */
void soft_cq_release(struct soft_cq *cq, uint32_t n);

/* Take @q off the device's event queue, if it is on it. */
void soft_ev_unlink(struct soft_dev *d, struct soft_evq *q);

/* Queue event @type of @c in @q (moved to the tail if it was queued). */
void soft_ev_queue(struct soft_conn *c, struct soft_evq *q, enum rdma_event_type type, int status,
		   const void *pdata, size_t len);

/* Take a passive connection off its listener's list of those not taken. */
void soft_listener_unlink(struct soft_conn *c);

/* The MR of STag @stag (invalidated or not), or NULL. */
struct soft_mr *soft_mr_find(struct soft_dev *d, uint32_t stag);

/* Check @len bytes at @addr through STag @stag for @access, as siw does. */
enum mem_err soft_mem_check(struct soft_conn *c, uint32_t stag, uint64_t addr, uint64_t len,
			    unsigned int access);

/* Complete, in posting order, the finished send requests at the head. */
void soft_sq_retire(struct soft_conn *c);

/* Complete receive @r, with the bytes of the message placed so far. */
void soft_rq_complete(struct soft_conn *c, struct soft_rwqe *r, enum rdma_wc_status status,
		      unsigned int flags, uint32_t inv);

/* Complete everything outstanding, flushing what did not finish (error). */
void soft_qp_flush(struct soft_conn *c);

/* soft_tx.c */

/* Watch the socket for @events, if it is watched. */
void soft_fd_set_events(struct soft_conn *c, uint32_t events);

/* Stop watching the socket. */
void soft_fd_unwatch(struct soft_conn *c);

/* Close the socket, drop unsent frames, stop the timers: S_CLOSED. */
void soft_close_fd(struct soft_conn *c);

/* Have soft_tx_run() called from the scheduler, while the socket is open. */
void soft_tx_kick(struct soft_conn *c);

/* The next free frame of the ring, NULL if @limit frames are in use. */
struct soft_frame *soft_frame_new(struct soft_conn *c, uint32_t limit);

/* Finish the FPDU of @h in @f and put it in the ring. Returns 0 or -errno. */
int soft_frame_fpdu(struct soft_conn *c, struct soft_frame *f, const struct iwarp_hdr *h,
		    size_t extra, int k, size_t plen);

/* Queue an MPA frame @buf (owned, freed on failure). Returns 0 or -ENOBUFS. */
int soft_tx_push_raw(struct soft_conn *c, void *buf, size_t len);

/* Close the socket once our FIN is sent and the peer's came. */
void soft_tx_maybe_close(struct soft_conn *c);

/* Fill the ring and write it to the socket, a budget of rounds at most. */
void soft_tx_run(struct soft_conn *c);

/* The transmit event's handler: soft_tx_run(). */
void soft_tx_event(struct sched_event *ev);

/* Put the queue pair in error: flush, DISCONNECTED, close the stream. */
void soft_conn_error(struct soft_conn *c, int status);

/* Send a Terminate for segment @seg (or NULL), then error (RFC 5040 §4.8). */
void soft_term_send(struct soft_conn *c, uint8_t layer, uint8_t etype, uint8_t ecode,
		    const uint8_t *seg, size_t seg_len, int status);

/* soft_rx.c */

/* Handle what the receive buffer holds, as the connection's state asks. */
void soft_rx_process(struct soft_conn *c);

/* Read the socket and handle what came, a budget of rounds at most. */
void soft_rx_run(struct soft_conn *c);

/* soft_cm.c */

/* End an active connect with event @type: flush, close the socket. */
void soft_connect_end(struct soft_conn *c, enum rdma_event_type type, int status, const void *pdata,
		      size_t len);

/* Read the MPA Request at @b (passive). Returns bytes taken, 0 or -1. */
int soft_rx_mpa_request(struct soft_conn *c, const uint8_t *b, size_t n);

/* Read the MPA Reply at @b (active). Returns bytes taken, 0 or -1. */
int soft_rx_mpa_reply(struct soft_conn *c, const uint8_t *b, size_t n);

/* The slots of rdma_soft_ops for connections and listeners (rdma.h). */
int soft_qp_create(struct rdma_conn *rc, const struct rdma_qp_attr *a);
int soft_connect(struct rdma_dev *rd, const struct sockaddr *sa, socklen_t salen,
		 const struct rdma_qp_attr *attr, const struct rdma_conn_attr *p,
		 struct rdma_conn **ret);
int soft_accept(struct rdma_conn *rc, const struct rdma_conn_attr *p);
int soft_reject(struct rdma_conn *rc, const void *pdata, size_t len);
int soft_disconnect(struct rdma_conn *rc);
void soft_conn_destroy(struct rdma_conn *rc);
int soft_conn_get_stats(const struct rdma_conn *rc, struct rdma_conn_stats *st);
int soft_listen(struct rdma_dev *rd, const struct sockaddr *sa, socklen_t salen, int backlog,
		struct rdma_listener **ret);
void soft_listener_destroy(struct rdma_listener *rl);
int soft_listener_addr(const struct rdma_listener *rl, struct sockaddr_storage *ss);
int soft_listener_adopt(struct rdma_listener *rl, int fd, const void *buf, size_t len);

#endif
