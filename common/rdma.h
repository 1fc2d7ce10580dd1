/*
 * rdma: the RDMA provider interface the iser transport runs on (DESIGN §5).
 * A small subset of libibverbs and librdmacm with their semantics, so that
 * the verbs provider maps each call onto one verbs call, and the soft
 * provider (soft/: iWARP over TCP in user space) behaves the same:
 *
 *   rdma_dev_create           a provider on a scheduler: "verbs", "soft"
 *                             or "auto" (verbs if an RDMA device exists)
 *   rdma_event_fd/get         rdma_cm's event channel: connection events
 *   rdma_listener_create      rdma_create_id + rdma_bind_addr + rdma_listen
 *   rdma_conn_create          rdma_resolve_addr/route, rdma_create_qp,
 *                             rdma_connect
 *   rdma_qp_create            rdma_create_qp on a connect request
 *   rdma_conn_accept/reject   rdma_accept / rdma_reject, with private data
 *   rdma_conn_disconnect      rdma_disconnect
 *   rdma_pd_create            ibv_alloc_pd
 *   rdma_mr_create            ibv_reg_mr: lkey and rkey
 *   rdma_cq_create            ibv_create_comp_channel + ibv_create_cq
 *   rdma_cq_poll/arm/ack      ibv_poll_cq / ibv_req_notify_cq(cq, 0) /
 *                             ibv_get_cq_event + ibv_ack_cq_events
 *   rdma_conn_post_send/recv  ibv_post_send / ibv_post_recv
 *
 * No name here is one of librdmacm's (rdma_connect, rdma_accept... are
 * its), so that the verbs provider links both.
 *
 * A completion queue is a completion source for common/poller: its fd is
 * the notification, rdma_cq_arm() the one-shot arm (it reports only
 * completions added after it), rdma_cq_ack() consumes notifications. The
 * owner's poller_ops call rdma_cq_poll(), rdma_cq_arm() and rdma_cq_ack().
 *
 * Semantics callers rely on, in both providers:
 * - Addresses are absolute virtual addresses (no zero-based VA), as the
 *   Linux iSER initiator advertises them; a remote address and an rkey
 *   come from the peer's rdma_mr_create().
 * - A Send needs a receive posted at the peer; an iWARP responder never
 *   sends before the initiator's first message (RFC 5044 §7.1.2), so the
 *   initiator may post its receives when ESTABLISHED arrives.
 * - Completions of one queue pair come in the order the work requests were
 *   posted, per queue (send, receive). A send-queue completion is
 *   generated for a signaled request, and for every request that ends in
 *   error (flushes included).
 * - A work completion error puts the connection in error: every request
 *   outstanding or posted later completes with RDMA_WC_WR_FLUSH_ERR, and
 *   RDMA_EV_DISCONNECTED follows. rdma_conn_disconnect() does the same on both
 *   sides.
 * - An RDMA READ outside the peer's region, with a wrong rkey or without
 *   RDMA_ACCESS_REMOTE_READ ends in RDMA_WC_REM_ACCESS_ERR. An RDMA WRITE
 *   or a Send the peer refuses puts the connection in error; on iWARP
 *   (soft, siw) the request itself has completed already when it left,
 *   since nothing acknowledges it: see soft/soft_priv.h.
 *
 * Rules:
 * - Everything runs on the thread of the scheduler the device was created
 *   on; nothing blocks (the verbs provider's calls into the kernel aside).
 *   No callback is ever called: events and completions are read by the
 *   caller, so any call may be made from any handler of that scheduler.
 * - Errors are -errno. Objects are created with *_create(..., **ret),
 *   which leaves *ret untouched on failure, and destroyed with a function
 *   that accepts NULL. A destroyed object must no longer be used by any
 *   other: destroy connections, then MRs and CQs, then PDs, then the
 *   device.
 * - The structs in the last section are the providers' common heads:
 *   callers use the functions, never the fields.
 */
#ifndef ISERKIT_RDMA_H
#define ISERKIT_RDMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct sched;
struct rdma_dev;
struct rdma_pd;
struct rdma_mr;
struct rdma_cq;
struct rdma_listener;
struct rdma_conn;

/* Private data an event carries, at most (MPA's limit, RFC 5044 §7.1).
 * What a provider sends may be less: soft sends 508 bytes at most, 512
 * less RFC 6581's IRD/ORD header. */
#define RDMA_PDATA_MAX 512

/* Access flags of a memory region: the values of enum ibv_access_flags. */
#define RDMA_ACCESS_LOCAL_WRITE 0x1u
#define RDMA_ACCESS_REMOTE_WRITE 0x2u /* needs RDMA_ACCESS_LOCAL_WRITE */
#define RDMA_ACCESS_REMOTE_READ 0x4u

/* Provider options; a provider ignores those it does not have. */
struct rdma_dev_opts {
	/* soft: do not ask for MPA CRC32C when connecting. Accepting, soft
	 * follows the initiator either way (RFC 5044 §7.1). */
	bool no_crc;
	uint32_t max_ulpdu; /* soft: the largest ULPDU sent, 0 for the default */
	/* verbs: make protection domains and completion queues on the RDMA
	 * device that reaches this address (a peer's, or one of our own:
	 * then its netdev's device); NULL: the first device. */
	const struct sockaddr *route_to;
};

/*
 * Open provider @name ("verbs", "soft", or "auto"/NULL: verbs when an RDMA
 * device exists, soft otherwise) on @s, with @opts (NULL for defaults).
 * rdma_dev_provider() says which one was chosen. Returns 0, -ENOENT (no
 * such provider, or verbs not built), -ENODEV (verbs without a device),
 * -ENOMEM, or the provider's -errno.
 */
int rdma_dev_create(struct sched *s, const char *name, const struct rdma_dev_opts *opts,
		    struct rdma_dev **ret);

/* Destroy @dev (NULL allowed) once everything created on it is gone. */
void rdma_dev_destroy(struct rdma_dev *dev);

/* "verbs" or "soft": the provider behind @dev, for the log of "auto". */
const char *rdma_dev_provider(const struct rdma_dev *dev);

/* Whether provider @name is built and has a device to run on. */
bool rdma_provider_available(const char *name);

/* Connection management */

enum rdma_event_type {
	RDMA_EV_CONNECT_REQUEST, /* passive: @conn is new; accept or reject it */
	RDMA_EV_ESTABLISHED,	 /* both sides; active: the peer's private data */
	RDMA_EV_REJECTED,	 /* active: the peer's private data */
	RDMA_EV_CONNECT_ERROR,	 /* active: @status says why */
	RDMA_EV_DISCONNECTED,	 /* @status: 0, or why the connection broke */
};

struct rdma_event {
	enum rdma_event_type type;
	struct rdma_conn *conn;
	struct rdma_listener *listener; /* RDMA_EV_CONNECT_REQUEST only */
	/*
	 * CONNECT_ERROR: -ECONNREFUSED, -ETIMEDOUT, -EPROTO (a bad MPA
	 * Reply)... DISCONNECTED: 0 (rdma_conn_disconnect() on either side),
	 * -ECONNRESET (the stream broke), -EREMOTEIO (the peer sent a
	 * Terminate), -EPROTO (we did, for an error of the peer's), -EIO (a
	 * request of ours failed locally: RDMA_WC_LOC_*).
	 */
	int status;
	/* CONNECT_REQUEST: the peer's ORD and IRD; ESTABLISHED: ours as
	 * negotiated (RFC 6581). As in struct rdma_conn_attr. */
	uint16_t initiator_depth, responder_resources;
	/* The peer's address, for logs; ss_family AF_UNSPEC when unknown. */
	struct sockaddr_storage peer;
	uint16_t pdata_len;
	uint8_t pdata[RDMA_PDATA_MAX];
};

/* The fd that is readable while events are pending (level-triggered). */
int rdma_event_fd(const struct rdma_dev *dev);

/*
 * Take the next event into @ev. Returns 0, or -EAGAIN when none is
 * pending. A connection an event names stays valid until the caller
 * destroys it; events still queued for it then are dropped. The
 * connection of a CONNECT_REQUEST is the caller's from then on, to accept
 * or reject, and to destroy in any case.
 */
int rdma_get_event(struct rdma_dev *dev, struct rdma_event *ev);

/* A queue pair's resources; send_cq and recv_cq may be the same CQ. */
struct rdma_qp_attr {
	struct rdma_pd *pd;
	struct rdma_cq *send_cq, *recv_cq;
	uint32_t max_send_wr, max_recv_wr;   /* > 0 */
	uint32_t max_send_sge, max_recv_sge; /* > 0; soft: at most 8 */
};

/* As librdmacm's struct rdma_conn_param (private data, IRD, ORD). */
struct rdma_conn_attr {
	const void *pdata; /* private data, copied */
	size_t pdata_len;
	uint16_t initiator_depth;     /* ORD: our RDMA READs in flight, at most */
	uint16_t responder_resources; /* IRD: the peer's we serve at once */
};

/*
 * Listen on @sa (port 0: any; rdma_listener_addr() tells). @sa NULL makes
 * a listener with no socket, fed only by rdma_listener_adopt(). Connect
 * requests come as RDMA_EV_CONNECT_REQUEST. Returns 0, -ENOMEM, or the
 * -errno of socket/bind/listen (-EADDRINUSE...).
 */
int rdma_listener_create(struct rdma_dev *dev, const struct sockaddr *sa, socklen_t salen,
			 int backlog, void *context, struct rdma_listener **ret);

/* Stop listening; NULL allowed. Connections it produced live on. */
void rdma_listener_destroy(struct rdma_listener *l);

void *rdma_listener_context(const struct rdma_listener *l);

/* The bound address. Returns 0, -ENOTCONN (no socket) or -errno. */
int rdma_listener_addr(const struct rdma_listener *l, struct sockaddr_storage *ss);

/*
 * DESIGN §5, one port: hand @l the accepted, connected socket @fd (owned
 * from now on, closed on failure too) whose first @len bytes @buf were
 * already read from it, e.g. by the iSCSI portal to see that they start an
 * MPA Request (iwarp_mpa_is_request()). @buf is copied. Returns 0,
 * -EOPNOTSUPP (verbs), -ENOMEM or -errno.
 */
int rdma_listener_adopt(struct rdma_listener *l, int fd, const void *buf, size_t len);

/*
 * Connect to @sa with @param, creating the queue pair from @attr; the
 * result comes as ESTABLISHED, REJECTED or CONNECT_ERROR. Work may be
 * posted once ESTABLISHED arrived (soft: at once). Returns 0, -EINVAL,
 * -EMSGSIZE (private data over what the provider carries), -ENOMEM, or
 * -errno of socket(2); a peer that refuses or cannot be reached is a
 * CONNECT_ERROR event, as with rdma_cm.
 */
int rdma_conn_create(struct rdma_dev *dev, const struct sockaddr *sa, socklen_t salen,
		     const struct rdma_qp_attr *attr, const struct rdma_conn_attr *param,
		     void *context, struct rdma_conn **ret);

/*
 * Passive side, after RDMA_EV_CONNECT_REQUEST: create @conn's queue pair,
 * so that receives can be posted before rdma_conn_accept(). Returns 0, -EINVAL,
 * -EALREADY, -ENOMEM.
 */
int rdma_qp_create(struct rdma_conn *conn, const struct rdma_qp_attr *attr);

/*
 * Accept @conn (its queue pair created) with @param (NULL: defaults); an
 * ESTABLISHED event follows. Returns 0, -EINVAL (no queue pair, or not a
 * pending request), -EMSGSIZE, -ENOMEM, or -errno.
 */
int rdma_conn_accept(struct rdma_conn *conn, const struct rdma_conn_attr *param);

/* Reject @conn with @len bytes of private data; destroy it afterwards.
 * Returns 0, -EINVAL, -EMSGSIZE, -ENOMEM, or -errno. */
int rdma_conn_reject(struct rdma_conn *conn, const void *pdata, size_t len);

/*
 * Disconnect: the queue pair goes to error at once (outstanding work is
 * flushed, here and at the peer), then DISCONNECTED comes on both sides.
 * Idempotent. Returns 0 or -EINVAL (never connected).
 */
int rdma_conn_disconnect(struct rdma_conn *conn);

/* Destroy @conn and its queue pair (NULL allowed): the socket is closed,
 * outstanding work dropped with no completion, queued events dropped. */
void rdma_conn_destroy(struct rdma_conn *conn);

void *rdma_conn_context(const struct rdma_conn *conn);
void rdma_conn_set_context(struct rdma_conn *conn, void *context);

/* A Terminate's Layer, EType and Error Code (RFC 5040 §4.8, iwarp.h). */
struct rdma_term_info {
	uint8_t layer, etype, ecode;
};

/* Counters and negotiated values of one connection (soft provider). */
struct rdma_conn_stats {
	uint64_t tx_bytes, rx_bytes; /* on the TCP stream, MPA frames included */
	uint64_t tx_fpdus, rx_fpdus;
	uint64_t terminates_sent, terminates_received;
	struct rdma_term_info term_sent, term_received; /* the last ones */
	bool crc;					/* MPA CRC32C in use */
	uint16_t ird, ord;				/* negotiated, RFC 6581 */
	uint32_t max_ulpdu;				/* the largest ULPDU we send */
	uint64_t direct_bytes;		    /* payload received straight into its buffer */
	uint64_t ahead_fpdus, ahead_misses; /* Read Response read-ahead (soft) */
};

/* Returns 0, or -EOPNOTSUPP (verbs). */
int rdma_conn_get_stats(const struct rdma_conn *conn, struct rdma_conn_stats *st);

/* Protection domains and memory regions */

/* Returns 0, -ENOMEM or -errno. */
int rdma_pd_create(struct rdma_dev *dev, struct rdma_pd **ret);

void rdma_pd_destroy(struct rdma_pd *pd);

/*
 * Register @len (> 0) bytes at @addr with RDMA_ACCESS_* @access. The
 * memory stays the caller's and must outlive the MR and any work using
 * it. Returns 0, -EINVAL (bad flags, REMOTE_WRITE without LOCAL_WRITE,
 * @len 0), -ENOSPC (no STag left), -ENOMEM or -errno.
 */
int rdma_mr_create(struct rdma_pd *pd, void *addr, size_t len, unsigned int access,
		   struct rdma_mr **ret);

void rdma_mr_destroy(struct rdma_mr *mr);

/* The local key, for struct rdma_sge, and the remote key, for the peer. */
uint32_t rdma_mr_lkey(const struct rdma_mr *mr);
uint32_t rdma_mr_rkey(const struct rdma_mr *mr);

/* Completion queues */

enum rdma_wc_status {
	RDMA_WC_SUCCESS,
	RDMA_WC_LOC_LEN_ERR,	   /* a received message over the receive buffer */
	RDMA_WC_LOC_PROT_ERR,	   /* an SGE outside its MR, wrong lkey or access */
	RDMA_WC_WR_FLUSH_ERR,	   /* the connection was in error */
	RDMA_WC_REM_ACCESS_ERR,	   /* the peer refused the STag, bounds or access */
	RDMA_WC_REM_OP_ERR,	   /* the peer could not complete the operation */
	RDMA_WC_RNR_RETRY_EXC_ERR, /* no receive posted at the peer */
	RDMA_WC_GENERAL_ERR,
};

enum rdma_wc_opcode {
	RDMA_WC_SEND,
	RDMA_WC_RDMA_WRITE,
	RDMA_WC_RDMA_READ,
	RDMA_WC_RECV,
};

#define RDMA_WC_WITH_INV 0x1u /* a Send with Invalidate: see invalidated_rkey */

/* One completion. As with verbs, only wr_id and status are meaningful when
 * status is not RDMA_WC_SUCCESS. */
struct rdma_wc {
	uint64_t wr_id;
	enum rdma_wc_status status;
	enum rdma_wc_opcode opcode;
	uint32_t byte_len; /* RECV: bytes received; RDMA_READ: bytes read */
	unsigned int flags;
	uint32_t invalidated_rkey;
};

/* A CQ with room for @cqe (> 0) completions. Returns 0, -EINVAL, -ENOMEM
 * or -errno. */
int rdma_cq_create(struct rdma_dev *dev, int cqe, struct rdma_cq **ret);

void rdma_cq_destroy(struct rdma_cq *cq);

/* The notification fd: readable after an armed CQ got a completion. */
int rdma_cq_fd(const struct rdma_cq *cq);

/* Take up to @n (> 0) completions into @wc. Returns how many (0: none),
 * or -errno. */
int rdma_cq_poll(struct rdma_cq *cq, struct rdma_wc *wc, int n);

/* One-shot arm: the next completion added to @cq makes the fd readable,
 * once; completions already queued do not. Returns 0 or -errno. */
int rdma_cq_arm(struct rdma_cq *cq);

/* Consume pending notifications. Returns how many, or -EAGAIN (none). */
int rdma_cq_ack(struct rdma_cq *cq);

/*
 * Soft: the notification of an armed @cq calls @fn(@arg) instead of making
 * the fd readable. The provider runs on the caller's scheduler thread, so
 * a wake-up through the fd would cost a write, an epoll wake and a read
 * per notification for nothing. @fn runs from inside the provider: it may
 * only note the notification or schedule work, not call the provider.
 * Returns 0, or -EOPNOTSUPP (verbs: its notifications come from the
 * kernel, through the fd).
 */
int rdma_cq_set_notify(struct rdma_cq *cq, void (*fn)(void *arg), void *arg);

/* Work requests */

/* Same layout as struct ibv_sge. @addr: absolute virtual address. */
struct rdma_sge {
	uint64_t addr;
	uint32_t length;
	uint32_t lkey;
};

enum rdma_wr_opcode {
	RDMA_WR_SEND,
	RDMA_WR_SEND_WITH_INV, /* invalidates @invalidate_rkey at the peer */
	RDMA_WR_RDMA_WRITE,    /* to @remote_addr with @rkey */
	RDMA_WR_RDMA_READ,     /* from @remote_addr with @rkey; soft: one SGE */
};

#define RDMA_SEND_SIGNALED 0x1u /* a completion even on success */

struct rdma_send_wr {
	struct rdma_send_wr *next; /* a chain, posted in order */
	uint64_t wr_id;
	struct rdma_sge *sg_list;
	int num_sge;
	enum rdma_wr_opcode opcode;
	unsigned int flags;
	uint64_t remote_addr;
	uint32_t rkey;
	uint32_t invalidate_rkey;
};

struct rdma_recv_wr {
	struct rdma_recv_wr *next;
	uint64_t wr_id;
	struct rdma_sge *sg_list;
	int num_sge;
};

/*
 * Post the chain @wr to @conn's send queue. The SGEs are read now; the
 * memory they name must stay valid until the completion (or, unsignaled,
 * until a later signaled request's). Returns 0, or -EINVAL (bad opcode,
 * flags or SGE count, no queue pair), -ENOMEM (send queue or CQ full),
 * with *@bad_wr the first request not posted (those before it are).
 * Posting to a connection in error completes with RDMA_WC_WR_FLUSH_ERR.
 */
int rdma_conn_post_send(struct rdma_conn *conn, struct rdma_send_wr *wr,
			struct rdma_send_wr **bad_wr);

/* The same for receives; each takes one incoming Send, in posting order. */
int rdma_conn_post_recv(struct rdma_conn *conn, struct rdma_recv_wr *wr,
			struct rdma_recv_wr **bad_wr);

/*
 * For providers only (rdma.c, soft/, rdma_verbs.c): the ops table
 * and the heads every provider object starts with. A provider fills every
 * slot; what it cannot do points to an rdma_nosup_* stub.
 */

struct rdma_ops {
	const char *name;
	bool (*probe)(void); /* a device to run on exists */
	int (*dev_create)(struct sched *s, const struct rdma_dev_opts *opts, struct rdma_dev **ret);
	void (*dev_destroy)(struct rdma_dev *dev);
	int (*get_event)(struct rdma_dev *dev, struct rdma_event *ev);
	int (*pd_create)(struct rdma_dev *dev, struct rdma_pd **ret);
	void (*pd_destroy)(struct rdma_pd *pd);
	int (*mr_create)(struct rdma_pd *pd, void *addr, size_t len, unsigned int access,
			 struct rdma_mr **ret);
	void (*mr_destroy)(struct rdma_mr *mr);
	int (*cq_create)(struct rdma_dev *dev, int cqe, struct rdma_cq **ret);
	void (*cq_destroy)(struct rdma_cq *cq);
	int (*cq_poll)(struct rdma_cq *cq, struct rdma_wc *wc, int n);
	int (*cq_arm)(struct rdma_cq *cq);
	int (*cq_ack)(struct rdma_cq *cq);
	int (*cq_set_notify)(struct rdma_cq *cq, void (*fn)(void *arg), void *arg);
	int (*listen)(struct rdma_dev *dev, const struct sockaddr *sa, socklen_t salen, int backlog,
		      struct rdma_listener **ret);
	void (*listener_destroy)(struct rdma_listener *l);
	int (*listener_addr)(const struct rdma_listener *l, struct sockaddr_storage *ss);
	int (*listener_adopt)(struct rdma_listener *l, int fd, const void *buf, size_t len);
	int (*connect)(struct rdma_dev *dev, const struct sockaddr *sa, socklen_t salen,
		       const struct rdma_qp_attr *attr, const struct rdma_conn_attr *param,
		       struct rdma_conn **ret);
	int (*qp_create)(struct rdma_conn *conn, const struct rdma_qp_attr *attr);
	int (*accept)(struct rdma_conn *conn, const struct rdma_conn_attr *param);
	int (*reject)(struct rdma_conn *conn, const void *pdata, size_t len);
	int (*disconnect)(struct rdma_conn *conn);
	void (*conn_destroy)(struct rdma_conn *conn);
	int (*conn_get_stats)(const struct rdma_conn *conn, struct rdma_conn_stats *st);
	int (*post_send)(struct rdma_conn *conn, struct rdma_send_wr *wr,
			 struct rdma_send_wr **bad_wr);
	int (*post_recv)(struct rdma_conn *conn, struct rdma_recv_wr *wr,
			 struct rdma_recv_wr **bad_wr);
};

struct rdma_dev {
	const struct rdma_ops *ops;
	int event_fd;
};

struct rdma_pd {
	struct rdma_dev *dev;
};

struct rdma_mr {
	struct rdma_pd *pd;
	uint32_t lkey, rkey;
};

struct rdma_cq {
	struct rdma_dev *dev;
	int fd;
};

struct rdma_listener {
	struct rdma_dev *dev;
	void *context;
};

struct rdma_conn {
	struct rdma_dev *dev;
	void *context;
};

extern const struct rdma_ops rdma_soft_ops;
extern const struct rdma_ops rdma_verbs_ops; /* only when built with rdma-core */

/* Stubs for the slots a provider does not fill: -EOPNOTSUPP. */
int rdma_nosup_listener_adopt(struct rdma_listener *l, int fd, const void *buf, size_t len);
int rdma_nosup_conn_get_stats(const struct rdma_conn *conn, struct rdma_conn_stats *st);
int rdma_nosup_cq_set_notify(struct rdma_cq *cq, void (*fn)(void *arg), void *arg);

#endif /* ISERKIT_RDMA_H */
