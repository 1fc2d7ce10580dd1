/*
 * iser: one iSER connection (RFC 7145) on common/rdma, for the target and
 * the initiator alike (DESIGN §5).
 *
 * - Every iSCSI PDU travels in one RDMA Send: the 28-byte iSER header
 *   (iser_hdr.h), the BHS, the AHS, the data segment padded to 4 bytes
 *   (RFC 7145 §7.2; Linux's iser pads too). No digests, no Data-In, no R2T.
 * - The connection's private data carries the iSER CM header: the
 *   initiator says it uses absolute virtual addresses and no Send with
 *   Invalidate (ZBVA_NOT_SUP, SEND_W_INV_NOT_SUP), the target answers that
 *   it uses neither, as Linux's ib_iser and isert do. No iSER Hello is
 *   exchanged: neither Linux side sends one.
 * - The target moves data with RDMA READ (write data, from the
 *   initiator's Write STag) and RDMA WRITE (read data, to its Read STag)
 *   posted before the SCSI Response's Send, so the response completes
 *   after the data is placed (RFC 7145 §7.3.5: the Send orders behind the
 *   Write on the same queue pair).
 * - Receive buffers are posted before the peer may send: by the target
 *   before it accepts, by the initiator when the connection is
 *   established, before its first Login Request.
 * - Send buffers are one registered ring: a PDU is copied into it (a
 *   header and at most a few KiB of data), so no registration happens per
 *   PDU. Bulk data moves only by RDMA READ and WRITE from registered
 *   buffers (common/rbuf).
 * - Requests beyond the send queue's room, or RDMA READs beyond the
 *   negotiated ORD, wait in a backlog, in order, and are posted as
 *   completions free room.
 *
 * Rules: everything runs on the thread of the scheduler the device is on.
 * Callbacks are called from the completion poller or from
 * iser_conn_event(); they must not destroy the connection (schedule it).
 * Nothing here prints; errors are -errno with a reason string.
 */
#ifndef ISERKIT_ISER_H
#define ISERKIT_ISER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/poller.h"
#include "common/rdma.h"
#include "iser_hdr.h"
#include "pdu.h"

struct sched;
struct rdma_dev;
struct rdma_pd;
struct rdma_conn;
struct rdma_event;
struct rbuf;
struct iser_conn;

/* The data segment limit while logging in (RFC 7143 §13.12), and the
 * default of Initiator/TargetRecvDataSegmentLength (RFC 7145 §6.5, §6.6). */
#define ISER_DEFAULT_DSL 8192

struct iser_conn_cb {
	/*
	 * A PDU arrived; @p->data is valid during the call only, unless
	 * iser_conn_rx_hold() keeps it. @ctrl holds the iSER header's Write
	 * and Read STags (RFC 7145 §9.2).
	 */
	void (*recv)(struct iser_conn *ic, const struct pdu *p, const struct iser_hdr_ctrl *ctrl);
	/*
	 * A request posted with a non-NULL @ref finished: a Send has left, an
	 * RDMA READ's data is in place, an RDMA WRITE has left. @err is 0,
	 * or -ECONNRESET when it was flushed, failed, or never left the
	 * backlog (the connection is then down). Not called for requests
	 * dropped by iser_conn_destroy().
	 */
	void (*done)(struct iser_conn *ic, void *ref, int err);
	/* Established: the initiator may send its first Login Request. */
	void (*up)(struct iser_conn *ic);
	/*
	 * The connection ended, once: @err 0 (a disconnect), or -errno with
	 * @why, a short reason (a rejected connect, an error completion, a bad
	 * iSER header...). Only iser_conn_destroy() is useful afterwards.
	 */
	void (*down)(struct iser_conn *ic, int err, const char *why);
};

struct iser_conn_attr {
	unsigned int rx_depth;	/* receives posted: what the peer may send at once */
	unsigned int tx_depth;	/* Sends in flight; the send queue holds 2x */
	uint32_t recv_dsl;	/* the largest data segment we receive */
	uint32_t send_dsl;	/* the largest data segment we send */
	unsigned int arm_delay; /* empty CQ polls before re-arming (poller.h) */
};

/* tgt's iSER "delayed arm": a few more empty polls of the completion
 * queue before its notification is re-armed (DESIGN §4, step 4). */
#define ISER_ARM_DELAY_DEFAULT 2

struct iser_conn_stats {
	uint64_t sends, recvs, rdma_reads, rdma_writes;
	uint64_t read_bytes, write_bytes;
	uint64_t backlogged;		 /* requests that waited for room */
	uint64_t imm_not_sent;		 /* writes whose immediate data was not sent */
	uint64_t rx_holds;		 /* receive buffers kept by iser_conn_rx_hold() */
	unsigned int rx_held;		 /* now: kept, not yet released */
	unsigned int ord;		 /* RDMA READs allowed in flight (negotiated) */
	unsigned int reads_out, waiting; /* now: READs in flight, backlog */
	bool has_rdma;			 /* @rdma filled: the provider counts */
	struct rdma_conn_stats rdma;
};

/*
 * Set up a connection on @dev and @pd with its own completion queue,
 * drained by a poller on @s. Nothing is connected yet: see
 * iser_conn_connect() and iser_conn_accept(). Returns 0, -EINVAL or
 * -ENOMEM, or the -errno of rdma_cq_create()/rdma_mr_create().
 */
int iser_conn_create(struct sched *s, struct rdma_dev *dev, struct rdma_pd *pd,
		     const struct iser_conn_attr *attr, const struct iser_conn_cb *cb, void *ctx,
		     struct iser_conn **ret);

/* Disconnect if needed and free everything; NULL allowed. Requests
 * outstanding are dropped with no callback. */
void iser_conn_destroy(struct iser_conn *ic);

void *iser_conn_ctx(const struct iser_conn *ic);

/* Initiator: connect to @sa; up() or down() follows. Returns 0 or -errno
 * of rdma_conn_create(). */
int iser_conn_connect(struct iser_conn *ic, const struct sockaddr *sa, socklen_t salen);

/*
 * Target: take @rc, the connection of an RDMA_EV_CONNECT_REQUEST @ev,
 * post the receives and accept it (owned from now on, whatever the
 * result). Returns 0, -EPROTO (no iSER CM header, or zero-based virtual
 * addresses asked for, which this transport does not do), or -errno.
 */
int iser_conn_accept(struct iser_conn *ic, struct rdma_conn *rc, const struct rdma_event *ev);

/* Feed the connection event @ev (whose conn is ours) to @ic. */
void iser_conn_event(struct iser_conn *ic, const struct rdma_event *ev);

/* The iser_conn an event names: the context of its rdma_conn. */
struct iser_conn *iser_conn_of(const struct rdma_event *ev);

/*
 * Send a PDU: @bhs (its data_len set to @len), then @len bytes of @data,
 * copied. @ctrl (NULL: none) fills the iSER header's STags. @ref, if not
 * NULL, comes back through done(). Returns 0, -EMSGSIZE (@len over
 * send_dsl), -EINVAL (a field @bhs cannot encode), -ENOTCONN (down), or
 * -ENOMEM.
 */
int iser_conn_send(struct iser_conn *ic, struct pdu_bhs *bhs, const struct iser_hdr_ctrl *ctrl,
		   const void *data, uint32_t len, void *ref);

/*
 * Target: RDMA WRITE @len bytes of @b at @off to the peer's @va with
 * @stag, or RDMA READ them from there into @b at @off. Returns 0,
 * -EINVAL (outside @b), -ENOTCONN or -ENOMEM.
 */
int iser_conn_rdma_write(struct iser_conn *ic, const struct rbuf *b, uint32_t off, uint32_t len,
			 uint32_t stag, uint64_t va, void *ref);
int iser_conn_rdma_read(struct iser_conn *ic, struct rbuf *b, uint32_t off, uint32_t len,
			uint32_t stag, uint64_t va, void *ref);

/*
 * During recv(): keep the receive buffer that @data (p->data) is in from
 * being posted again when recv() returns, so that the data can be used
 * in place, for a disk write. Returns a handle for iser_conn_rx_release(),
 * or -1 when @data is not in the receive being handled (a PDU held back
 * and copied). The peer may send as many messages at once as there are
 * receives posted: the caller bounds what it keeps (the target keeps one
 * per command, within its CmdSN window, far below rx_depth).
 */
int iser_conn_rx_hold(struct iser_conn *ic, const void *data);

/* Post a kept receive buffer again (not when the connection is down). */
void iser_conn_rx_release(struct iser_conn *ic, int handle);

/* Requests with a ref posted and not completed, or any waiting in the
 * backlog. Requests with no ref may complete unreported (unsignaled). */
bool iser_conn_tx_pending(const struct iser_conn *ic);

/*
 * Parse one received Send message, @len bytes at @buf, @cap bytes
 * readable there (>= @len): the iSER header (iser_hdr.h) and the iSCSI
 * PDU after it, whose data segment may lack its padding when @cap has
 * room for it. @p points into @buf. Returns 0, -EPROTO (a bad iSER
 * header, or @len > @cap), -EOPNOTSUPP (a Hello or HelloReply), or
 * pdu_parse()'s error (-ENODATA, -E2BIG over @max_dsl...). The wire
 * parser of this transport, fuzzed by tests/fuzz/fuzz_iser_msg.c.
 */
int iser_msg_parse(const void *buf, size_t len, size_t cap, uint32_t max_dsl, struct pdu *p,
		   struct iser_hdr_ctrl *ctrl);

/* Start a disconnect; down() follows. */
void iser_conn_disconnect(struct iser_conn *ic);

void iser_conn_get_stats(const struct iser_conn *ic, struct iser_conn_stats *st);
const struct poller *iser_conn_poller(const struct iser_conn *ic);

#endif
