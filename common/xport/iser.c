/*
 * iser: one iSER connection on common/rdma (see iser.h). A send queue
 * slot ring and a send buffer ring, both freed in posting order (the
 * completions of a queue come in that order, flushes included), a fixed
 * array of receive buffers reposted as soon as their PDU is handled, and
 * a backlog for what finds no room.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/rbuf.h"
#include "common/rdma.h"
#include "common/xport/iser.h"

#define ISER_RX_WR (1ull << 63) /* wr_id of a receive: this bit | index */
#define ISER_WC_BATCH 32
#define ISER_ORD_MAX 16 /* our RDMA READs in flight, at most */
#define ISER_IRD 16	/* the peer's we serve (the initiator serves the target's) */
#define ISER_HDRS (ISER_HDR_LEN + PDU_BHS_LEN)
#define ISER_SIGNAL_EVERY 16 /* a Send with no ref: signaled one in this many */

enum iser_op_kind { OP_SEND, OP_WRITE, OP_READ };

/* A request waiting in the backlog, or the record of a posted one. */
struct iser_op {
	struct iser_op *next;
	enum iser_op_kind kind;
	void *ref;
	uint8_t *bytes; /* OP_SEND in the backlog: the encoded message */
	uint32_t len;
	uint64_t laddr;
	uint32_t lkey, stag;
	uint64_t va;
	bool done;		    /* posted: its own completion came */
	enum rdma_wc_status status; /* of that completion */
};

struct iser_conn {
	struct sched *s;
	struct rdma_dev *dev;
	struct rdma_pd *pd;
	struct rdma_cq *cq;
	struct rdma_conn *rc;
	struct poller poller;
	const struct iser_conn_cb *cb;
	void *ctx;
	struct iser_conn_attr a;
	bool posted_rx, established, down;
	bool flushed;	       /* a flush came: DISCONNECTED follows, with why */
	unsigned int refs_out; /* posted requests with a ref, not completed */
	unsigned int ord, reads_out;

	uint8_t *rx_mem;
	struct rdma_mr *rx_mr;
	uint32_t rx_stride;
	int rx_cur;	  /* the receive recv() is handling, or -1 */
	bool rx_cur_kept; /* ...and iser_conn_rx_hold() kept it */

	uint8_t *tx_mem;
	struct rdma_mr *tx_mr;
	uint32_t tx_stride;
	unsigned int tx_head, tx_tail; /* send buffers: free ones are tail..head+n */

	struct iser_op *sq; /* slots of posted requests, in order */
	unsigned int sq_n, sq_head, sq_tail;
	unsigned int sq_upto;	 /* requests before it, READs aside, completed */
	unsigned int unsignaled; /* posted in a row with no completion asked */

	struct iser_op *bl_head, *bl_tail; /* the backlog */
	struct iser_conn_stats st;
	struct rdma_wc wc[ISER_WC_BATCH];
};

#define ic_of(ptr) ((struct iser_conn *)((char *)(ptr)-offsetof(struct iser_conn, poller)))

static void iser_fail(struct iser_conn *ic, int err, const char *why)
{
	if (ic->down)
		return;
	ic->down = true;
	if (ic->rc)
		rdma_conn_disconnect(ic->rc);
	ic->cb->down(ic, err, why);
}

/* Receive */

static int post_recv(struct iser_conn *ic, unsigned int i)
{
	struct rdma_sge sge = {
		.addr = (uintptr_t)(ic->rx_mem + (size_t)i * ic->rx_stride),
		.length = ic->rx_stride,
		.lkey = rdma_mr_lkey(ic->rx_mr),
	};
	struct rdma_recv_wr wr = {.wr_id = ISER_RX_WR | i, .sg_list = &sge, .num_sge = 1};
	struct rdma_recv_wr *bad;

	return rdma_conn_post_recv(ic->rc, &wr, &bad);
}

static int post_all_recv(struct iser_conn *ic)
{
	unsigned int i;
	int err;

	for (i = 0; i < ic->a.rx_depth; i++) {
		err = post_recv(ic, i);
		if (err)
			return err;
	}
	ic->posted_rx = true;
	return 0;
}

int iser_msg_parse(const void *buf, size_t len, size_t cap, uint32_t max_dsl, struct pdu *p,
		   struct iser_hdr_ctrl *ctrl)
{
	const uint8_t *b = buf;
	struct iser_hdr h;
	int total;

	if (len > cap || iser_hdr_decode(b, len, &h))
		return -EPROTO;
	if (h.opcode != ISER_HDR_CTRL)
		return -EOPNOTSUPP;
	len -= ISER_HDR_LEN;
	cap -= ISER_HDR_LEN;
	/* A sender that does not pad the data segment still fits, when the
	 * buffer has room for the padding (its bytes are not looked at). */
	total = pdu_total_len(b + ISER_HDR_LEN, len, 0, max_dsl);
	if (total > (int)len && (size_t)total - len <= 3 && (size_t)total <= cap)
		len = (size_t)total;
	total = pdu_parse(b + ISER_HDR_LEN, len, 0, max_dsl, p);
	if (total < 0)
		return total;
	*ctrl = h.ctrl;
	return 0;
}

/*
 * libiscsi 1.19's iSER (Debian 12; lib/iser.c, iser_prepare_write_cmd())
 * sets DataSegmentLength for immediate data in a write's SCSI Command but
 * sends no data with it, and advertises its whole buffer, from the first
 * byte, for the target to RDMA READ. RFC 7145 §7.3.1 wants the immediate
 * data in the Send; a Send of the headers alone cannot be anything else
 * than that bug, so take it for what it means: no immediate data, all of
 * it to be read. Returns whether @b was such a message (DSL set to 0).
 */
static bool imm_not_sent(uint8_t *b, uint32_t len)
{
	uint8_t *bhs = b + ISER_HDR_LEN;

	if (len != ISER_HDR_LEN + PDU_BHS_LEN || !(b[0] & ISER_HDR_WSV) ||
	    (bhs[0] & 0x3f) != PDU_OP_SCSI_CMD || !(bhs[1] & 0x20 /* W */) ||
	    !(bhs[5] | bhs[6] | bhs[7]))
		return false;
	bhs[5] = bhs[6] = bhs[7] = 0;
	return true;
}

/* One received Send: the iSER header, then an iSCSI PDU (RFC 7145 §9.2). */
static void rx_one(struct iser_conn *ic, unsigned int i, uint32_t len)
{
	struct iser_hdr_ctrl ctrl;
	struct pdu p;
	int err;

	if (i >= ic->a.rx_depth) {
		iser_fail(ic, -EPROTO, "bad receive completion");
		return;
	}
	if (imm_not_sent(ic->rx_mem + (size_t)i * ic->rx_stride, len) && !ic->st.imm_not_sent++)
		log_info("the initiator sends no immediate data with its writes, but says it does "
			 "(libiscsi 1.19's iSER): reading all of their data with RDMA READ");
	err = iser_msg_parse(ic->rx_mem + (size_t)i * ic->rx_stride, len, ic->rx_stride,
			     ic->a.recv_dsl, &p, &ctrl);
	if (err) {
		const uint8_t *b = ic->rx_mem + (size_t)i * ic->rx_stride;

		log_debug("iSER receive of %u bytes refused (%s): header %02x, BHS opcode 0x%02x "
			  "flags 0x%02x AHS %u DSL %u",
			  len, strerror(-err), b[0], len > ISER_HDR_LEN ? b[ISER_HDR_LEN] : 0,
			  len > ISER_HDR_LEN + 1 ? b[ISER_HDR_LEN + 1] : 0,
			  len > ISER_HDR_LEN + 4 ? b[ISER_HDR_LEN + 4] : 0,
			  len >= ISER_HDR_LEN + 8
				  ? (unsigned int)(b[ISER_HDR_LEN + 5] << 16 |
						   b[ISER_HDR_LEN + 6] << 8 | b[ISER_HDR_LEN + 7])
				  : 0);
		iser_fail(ic, -EPROTO,
			  err == -EOPNOTSUPP ? "iSER Hello messages are not supported"
			  : err == -EPROTO   ? "bad iSER header"
					     : "bad iSCSI PDU in an iSER message");
		return;
	}
	ic->st.recvs++;
	ic->rx_cur = (int)i;
	ic->rx_cur_kept = false;
	ic->cb->recv(ic, &p, &ctrl);
	ic->rx_cur = -1;
	if (!ic->rx_cur_kept && !ic->down && post_recv(ic, i))
		iser_fail(ic, -ENOMEM, "cannot post a receive");
}

int iser_conn_rx_hold(struct iser_conn *ic, const void *data)
{
	const uint8_t *b, *d = data;

	if (ic->rx_cur < 0 || ic->rx_cur_kept || !d)
		return -1;
	b = ic->rx_mem + (size_t)ic->rx_cur * ic->rx_stride;
	if (d < b || d >= b + ic->rx_stride)
		return -1;
	ic->rx_cur_kept = true;
	ic->st.rx_holds++;
	ic->st.rx_held++;
	return ic->rx_cur;
}

void iser_conn_rx_release(struct iser_conn *ic, int handle)
{
	if (handle < 0 || (unsigned int)handle >= ic->a.rx_depth)
		return;
	ic->st.rx_held--;
	if (!ic->down && post_recv(ic, (unsigned int)handle))
		iser_fail(ic, -ENOMEM, "cannot post a receive");
}

/* Send */

static bool op_fits(const struct iser_conn *ic, enum iser_op_kind kind)
{
	if (ic->sq_tail - ic->sq_head >= ic->sq_n)
		return false;
	if (kind == OP_SEND && ic->tx_tail - ic->tx_head >= ic->a.tx_depth)
		return false;
	if (kind == OP_READ && ic->reads_out >= ic->ord)
		return false;
	return true;
}

/*
 * Whether @op asks for a completion. One with a ref must; the others only
 * now and then, as Linux's ib_iser does, so that a command costs the
 * initiator one completion (its response) instead of two. A signaled
 * completion retires every request posted before it but the RDMA READs
 * (tx_retire()), and the one that takes the last free send buffer
 * or half the send queue is signaled, so that room always comes back.
 */
static bool op_signaled(struct iser_conn *ic, const struct iser_op *op)
{
	if (op->ref || op->kind == OP_READ || ++ic->unsignaled >= ISER_SIGNAL_EVERY ||
	    ic->sq_tail + 1 - ic->sq_head >= ic->sq_n / 2 ||
	    (op->kind == OP_SEND && ic->tx_tail + 1 - ic->tx_head >= ic->a.tx_depth)) {
		ic->unsignaled = 0;
		return true;
	}
	return false;
}

/* Post @op, which fits; a Send's bytes are in the send buffer at tx_tail. */
static int op_post(struct iser_conn *ic, const struct iser_op *op)
{
	struct rdma_send_wr wr = {.wr_id = ic->sq_tail, .num_sge = 1};
	struct rdma_send_wr *bad;
	struct rdma_sge sge;
	int err;

	if (op->kind == OP_SEND) {
		sge.addr = (uintptr_t)(ic->tx_mem +
				       (size_t)(ic->tx_tail % ic->a.tx_depth) * ic->tx_stride);
		sge.lkey = rdma_mr_lkey(ic->tx_mr);
		wr.opcode = RDMA_WR_SEND;
	} else {
		sge.addr = op->laddr;
		sge.lkey = op->lkey;
		wr.opcode = op->kind == OP_READ ? RDMA_WR_RDMA_READ : RDMA_WR_RDMA_WRITE;
		wr.remote_addr = op->va;
		wr.rkey = op->stag;
	}
	sge.length = op->len;
	wr.sg_list = &sge;
	wr.flags = op_signaled(ic, op) ? RDMA_SEND_SIGNALED : 0;
	err = rdma_conn_post_send(ic->rc, &wr, &bad);
	if (err)
		return err;
	ic->sq[ic->sq_tail % ic->sq_n] = *op;
	ic->sq[ic->sq_tail % ic->sq_n].bytes = NULL;
	ic->sq[ic->sq_tail % ic->sq_n].done = false;
	ic->sq_tail++;
	if (op->ref)
		ic->refs_out++;
	if (op->kind == OP_SEND) {
		ic->tx_tail++;
		ic->st.sends++;
	} else if (op->kind == OP_READ) {
		ic->reads_out++;
		ic->st.rdma_reads++;
		ic->st.read_bytes += op->len;
	} else {
		ic->st.rdma_writes++;
		ic->st.write_bytes += op->len;
	}
	return 0;
}

static void backlog_add(struct iser_conn *ic, struct iser_op *op)
{
	op->next = NULL;
	if (ic->bl_tail)
		ic->bl_tail->next = op;
	else
		ic->bl_head = op;
	ic->bl_tail = op;
	ic->st.backlogged++;
}

/* Post what waits, in order, while it fits. */
static void backlog_run(struct iser_conn *ic)
{
	struct iser_op *op;

	while ((op = ic->bl_head) && !ic->down && !ic->flushed && op_fits(ic, op->kind)) {
		if (op->kind == OP_SEND)
			memcpy(ic->tx_mem + (size_t)(ic->tx_tail % ic->a.tx_depth) * ic->tx_stride,
			       op->bytes, op->len);
		if (op_post(ic, op)) {
			iser_fail(ic, -EIO, "cannot post to the send queue");
			return;
		}
		ic->bl_head = op->next;
		if (!ic->bl_head)
			ic->bl_tail = NULL;
		free(op->bytes);
		free(op);
	}
}

/* Down: what never left ends with done(ref, -ECONNRESET), in order. */
static void backlog_fail(struct iser_conn *ic)
{
	struct iser_op *op;

	while ((op = ic->bl_head)) {
		ic->bl_head = op->next;
		if (!ic->bl_head)
			ic->bl_tail = NULL;
		if (op->ref)
			ic->cb->done(ic, op->ref, -ECONNRESET);
		free(op->bytes);
		free(op);
	}
}

static void backlog_free(struct iser_conn *ic)
{
	struct iser_op *op;

	while ((op = ic->bl_head)) {
		ic->bl_head = op->next;
		free(op->bytes);
		free(op);
	}
	ic->bl_tail = NULL;
}

/* Post @op now, or queue a copy of it behind what already waits. */
static int op_submit(struct iser_conn *ic, const struct iser_op *op, const uint8_t *bytes)
{
	struct iser_op *q;

	if (ic->down || ic->flushed || !ic->rc)
		return -ENOTCONN;
	if (!ic->bl_head && op_fits(ic, op->kind)) {
		if (op->kind == OP_SEND && bytes)
			memcpy(ic->tx_mem + (size_t)(ic->tx_tail % ic->a.tx_depth) * ic->tx_stride,
			       bytes, op->len);
		if (!op_post(ic, op))
			return 0;
		iser_fail(ic, -EIO, "cannot post to the send queue");
		return -ENOTCONN;
	}
	q = malloc(sizeof(*q));
	if (!q)
		return -ENOMEM;
	*q = *op;
	q->bytes = NULL;
	if (op->kind == OP_SEND) {
		q->bytes = malloc(op->len);
		if (!q->bytes) {
			free(q);
			return -ENOMEM;
		}
		memcpy(q->bytes, bytes, op->len);
	}
	backlog_add(ic, q);
	return 0;
}

int iser_conn_send(struct iser_conn *ic, struct pdu_bhs *bhs, const struct iser_hdr_ctrl *ctrl,
		   const void *data, uint32_t len, void *ref)
{
	struct iser_hdr h = {.opcode = ISER_HDR_CTRL};
	struct iser_op op = {.kind = OP_SEND, .ref = ref};
	uint8_t stack[ISER_HDRS + 256], *buf = stack;
	uint32_t padded = PDU_PAD4(len);
	bool direct;
	int err;

	if (len > ic->a.send_dsl)
		return -EMSGSIZE;
	if (ic->down || ic->flushed || !ic->rc)
		return -ENOTCONN;
	if (ctrl)
		h.ctrl = *ctrl;
	bhs->data_len = len;
	op.len = ISER_HDRS + padded;
	/* Encode in place when it can be posted now; else aside. */
	direct = !ic->bl_head && op_fits(ic, OP_SEND);
	if (direct)
		buf = ic->tx_mem + (size_t)(ic->tx_tail % ic->a.tx_depth) * ic->tx_stride;
	else if (op.len > sizeof(stack) && !(buf = malloc(op.len)))
		return -ENOMEM;
	iser_hdr_encode(&h, buf, ISER_HDR_LEN);
	err = pdu_bhs_encode(bhs, buf + ISER_HDR_LEN, PDU_BHS_LEN);
	if (!err) {
		if (len)
			memcpy(buf + ISER_HDRS, data, len);
		memset(buf + ISER_HDRS + len, 0, padded - len);
		err = op_submit(ic, &op, direct ? NULL : buf);
	}
	if (buf != stack && !direct)
		free(buf);
	return err ? err : 0;
}

static int rdma_op(struct iser_conn *ic, enum iser_op_kind kind, const struct rbuf *b, uint32_t off,
		   uint32_t len, uint32_t stag, uint64_t va, void *ref)
{
	struct iser_op op = {.kind = kind, .ref = ref, .len = len, .stag = stag, .va = va};

	if (off > b->cap || len > b->cap - off || !len)
		return -EINVAL;
	op.laddr = (uintptr_t)(b->addr + off);
	op.lkey = b->lkey;
	return op_submit(ic, &op, NULL);
}

int iser_conn_rdma_write(struct iser_conn *ic, const struct rbuf *b, uint32_t off, uint32_t len,
			 uint32_t stag, uint64_t va, void *ref)
{
	return rdma_op(ic, OP_WRITE, b, off, len, stag, va, ref);
}

int iser_conn_rdma_read(struct iser_conn *ic, struct rbuf *b, uint32_t off, uint32_t len,
			uint32_t stag, uint64_t va, void *ref)
{
	return rdma_op(ic, OP_READ, b, off, len, stag, va, ref);
}

/* Completions */

/*
 * Retire the send queue from its head, in posting order, as far as the
 * requests are complete: one whose own completion came, or one that is
 * not an RDMA READ and was posted before a completed request. Sends and
 * RDMA WRITEs complete in order; an RDMA READ completes when its response
 * is in, and on iWARP that can be after Sends posted later (siw signals a
 * Send once it is on the wire): a later completion says nothing of it.
 */
static void tx_retire(struct iser_conn *ic)
{
	struct iser_op *op;
	bool own, failed;

	while (ic->sq_head != ic->sq_tail) {
		op = &ic->sq[ic->sq_head % ic->sq_n];
		own = op->done;
		if (!own && (op->kind == OP_READ || ic->sq_upto == ic->sq_head))
			break;
		if (ic->sq_upto == ic->sq_head)
			ic->sq_upto++;
		ic->sq_head++;
		op->done = false;
		if (op->kind == OP_SEND)
			ic->tx_head++;
		else if (op->kind == OP_READ)
			ic->reads_out--;
		/* A flush says the connection is in error, not why: the
		 * DISCONNECTED event that follows does (rdma.h). */
		failed = own && op->status != RDMA_WC_SUCCESS;
		if (own && op->status == RDMA_WC_WR_FLUSH_ERR)
			ic->flushed = true;
		else if (failed)
			iser_fail(ic, -ECONNRESET,
				  op->kind == OP_READ	 ? "RDMA READ failed"
				  : op->kind == OP_WRITE ? "RDMA WRITE failed"
							 : "Send failed");
		if (op->ref) {
			ic->refs_out--;
			ic->cb->done(ic, op->ref, failed ? -ECONNRESET : 0);
		}
	}
}

static void tx_done(struct iser_conn *ic, const struct rdma_wc *wc)
{
	unsigned int k = (unsigned int)wc->wr_id;
	struct iser_op *op;

	if (wc->wr_id > UINT32_MAX || k - ic->sq_head >= ic->sq_tail - ic->sq_head ||
	    ic->sq[k % ic->sq_n].done) {
		iser_fail(ic, -EPROTO, "a send completion for no request in flight");
		return;
	}
	op = &ic->sq[k % ic->sq_n];
	op->done = true;
	op->status = wc->status;
	if (k + 1 - ic->sq_head > ic->sq_upto - ic->sq_head)
		ic->sq_upto = k + 1;
	tx_retire(ic);
}

static void wc_one(struct iser_conn *ic, const struct rdma_wc *wc)
{
	if (!(wc->wr_id & ISER_RX_WR)) {
		tx_done(ic, wc);
		return;
	}
	if (wc->status == RDMA_WC_WR_FLUSH_ERR) {
		ic->flushed = true;
		return;
	}
	if (wc->status != RDMA_WC_SUCCESS) {
		iser_fail(ic, -ECONNRESET, "receive failed");
		return;
	}
	if (!ic->down)
		rx_one(ic, (unsigned int)(wc->wr_id & ~ISER_RX_WR), wc->byte_len);
}

static int iser_poll(struct poller *p, int budget)
{
	struct iser_conn *ic = ic_of(p);
	int done = 0, n, i;

	while (done < budget) {
		n = budget - done < ISER_WC_BATCH ? budget - done : ISER_WC_BATCH;
		n = rdma_cq_poll(ic->cq, ic->wc, n);
		if (n <= 0)
			break;
		for (i = 0; i < n; i++)
			wc_one(ic, &ic->wc[i]);
		done += n;
		if (n < ISER_WC_BATCH)
			break;
	}
	if (ic->bl_head)
		backlog_run(ic);
	return done;
}

static int iser_arm(struct poller *p)
{
	return rdma_cq_arm(ic_of(p)->cq);
}

static int iser_ack(struct poller *p)
{
	return rdma_cq_ack(ic_of(p)->cq);
}

static void iser_cq_notify(void *arg)
{
	poller_notify(&((struct iser_conn *)arg)->poller);
}

static const struct poller_ops iser_poller_ops = {
	.poll = iser_poll,
	.arm = iser_arm,
	.ack = iser_ack,
};

/* Set-up */

static int ring_alloc(struct rdma_pd *pd, size_t len, uint8_t **mem, struct rdma_mr **mr)
{
	int err;

	if (posix_memalign((void **)mem, 4096, len))
		return -ENOMEM;
	memset(*mem, 0, len);
	err = rdma_mr_create(pd, *mem, len, RDMA_ACCESS_LOCAL_WRITE, mr);
	if (err) {
		free(*mem);
		*mem = NULL;
	}
	return err;
}

int iser_conn_create(struct sched *s, struct rdma_dev *dev, struct rdma_pd *pd,
		     const struct iser_conn_attr *attr, const struct iser_conn_cb *cb, void *ctx,
		     struct iser_conn **ret)
{
	struct iser_conn *ic;
	int err = -ENOMEM;

	if (!attr->rx_depth || !attr->tx_depth || attr->recv_dsl > PDU_DSL_MAX ||
	    attr->send_dsl > PDU_DSL_MAX)
		return -EINVAL;
	ic = calloc(1, sizeof(*ic));
	if (!ic)
		return -ENOMEM;
	ic->s = s;
	ic->dev = dev;
	ic->pd = pd;
	ic->cb = cb;
	ic->ctx = ctx;
	ic->a = *attr;
	ic->rx_cur = -1;
	ic->sq_n = 2 * attr->tx_depth;
	/* Room for an AHS and the padding behind the largest data segment. */
	ic->rx_stride = PDU_PAD4(ISER_HDRS + PDU_AHS_MAX + attr->recv_dsl + 4);
	ic->tx_stride = PDU_PAD4(ISER_HDRS + attr->send_dsl + 4);
	ic->sq = calloc(ic->sq_n, sizeof(*ic->sq));
	if (!ic->sq)
		goto err_free;
	err = ring_alloc(pd, (size_t)ic->rx_stride * attr->rx_depth, &ic->rx_mem, &ic->rx_mr);
	if (err)
		goto err_free;
	err = ring_alloc(pd, (size_t)ic->tx_stride * attr->tx_depth, &ic->tx_mem, &ic->tx_mr);
	if (err)
		goto err_rx;
	err = rdma_cq_create(dev, (int)(attr->rx_depth + ic->sq_n), &ic->cq);
	if (err)
		goto err_tx;
	poller_init(&ic->poller, s, &iser_poller_ops, rdma_cq_fd(ic->cq), POLLER_DEFAULT_WEIGHT);
	poller_set_arm_delay(&ic->poller, attr->arm_delay);
	/* Soft: notified by a call, not through the fd (rdma.h). */
	rdma_cq_set_notify(ic->cq, iser_cq_notify, ic);
	err = poller_enable(&ic->poller);
	if (err)
		goto err_cq;
	*ret = ic;
	return 0;

err_cq:
	rdma_cq_destroy(ic->cq);
err_tx:
	rdma_mr_destroy(ic->tx_mr);
	free(ic->tx_mem);
err_rx:
	rdma_mr_destroy(ic->rx_mr);
	free(ic->rx_mem);
err_free:
	free(ic->sq);
	free(ic);
	return err;
}

void iser_conn_destroy(struct iser_conn *ic)
{
	if (!ic)
		return;
	poller_disable(&ic->poller);
	rdma_conn_destroy(ic->rc);
	backlog_free(ic);
	rdma_cq_destroy(ic->cq);
	rdma_mr_destroy(ic->tx_mr);
	rdma_mr_destroy(ic->rx_mr);
	free(ic->tx_mem);
	free(ic->rx_mem);
	free(ic->sq);
	free(ic);
}

void *iser_conn_ctx(const struct iser_conn *ic)
{
	return ic->ctx;
}

static struct rdma_qp_attr qp_attr(const struct iser_conn *ic)
{
	struct rdma_qp_attr qa = {
		.pd = ic->pd,
		.send_cq = ic->cq,
		.recv_cq = ic->cq,
		.max_send_wr = ic->sq_n,
		.max_recv_wr = ic->a.rx_depth,
		.max_send_sge = 1,
		.max_recv_sge = 1,
	};

	return qa;
}

int iser_conn_connect(struct iser_conn *ic, const struct sockaddr *sa, socklen_t salen)
{
	/* Linux's ib_iser: absolute addresses, and we never invalidate. */
	struct iser_hdr_cm cm = {.zbva_not_sup = true, .send_w_inv_not_sup = true};
	struct rdma_qp_attr qa = qp_attr(ic);
	uint8_t pdata[ISER_HDR_CM_LEN];
	struct rdma_conn_attr param = {
		.pdata = pdata,
		.pdata_len = sizeof(pdata),
		.initiator_depth = 0,
		.responder_resources = ISER_IRD,
	};

	iser_hdr_cm_encode(&cm, pdata, sizeof(pdata));
	return rdma_conn_create(ic->dev, sa, salen, &qa, &param, ic, &ic->rc);
}

int iser_conn_accept(struct iser_conn *ic, struct rdma_conn *rc, const struct rdma_event *ev)
{
	struct iser_hdr_cm cm;
	struct rdma_qp_attr qa = qp_attr(ic);
	uint8_t pdata[ISER_HDR_CM_LEN];
	struct rdma_conn_attr param = {.pdata = pdata, .pdata_len = sizeof(pdata)};
	int err;

	ic->rc = rc;
	rdma_conn_set_context(rc, ic);
	if (iser_hdr_cm_decode(ev->pdata, ev->pdata_len, &cm) || !cm.zbva_not_sup)
		return -EPROTO;
	/* Our RDMA READs: no more than the initiator serves (RFC 6581). */
	param.initiator_depth =
		ev->responder_resources < ISER_ORD_MAX ? ev->responder_resources : ISER_ORD_MAX;
	param.responder_resources = ev->initiator_depth < ISER_IRD ? ev->initiator_depth : ISER_IRD;
	cm = (struct iser_hdr_cm){.zbva_not_sup = true, .send_w_inv_not_sup = true};
	iser_hdr_cm_encode(&cm, pdata, sizeof(pdata));
	err = rdma_qp_create(rc, &qa);
	if (!err)
		err = post_all_recv(ic);
	if (!err)
		err = rdma_conn_accept(rc, &param);
	return err;
}

struct iser_conn *iser_conn_of(const struct rdma_event *ev)
{
	return ev->conn ? rdma_conn_context(ev->conn) : NULL;
}

void iser_conn_event(struct iser_conn *ic, const struct rdma_event *ev)
{
	log_debug("iSER connection event %d (status %d, ORD %u, IRD %u, %u bytes of private data)",
		  (int)ev->type, ev->status, ev->initiator_depth, ev->responder_resources,
		  ev->pdata_len);
	switch (ev->type) {
	case RDMA_EV_ESTABLISHED:
		ic->established = true;
		ic->ord = ev->initiator_depth;
		if (!ic->posted_rx && post_all_recv(ic)) {
			iser_fail(ic, -ENOMEM, "cannot post the receives");
			return;
		}
		ic->cb->up(ic);
		break;
	case RDMA_EV_REJECTED:
		iser_fail(ic, -ECONNREFUSED, "the connection was rejected");
		break;
	case RDMA_EV_CONNECT_ERROR:
		iser_fail(ic, ev->status ? ev->status : -ECONNREFUSED, "cannot connect");
		break;
	case RDMA_EV_DISCONNECTED:
		/* The event and the completions come through different fds:
		 * what the peer sent before it left (a Login Reject, a last
		 * response) is handled before the connection is down. */
		while (!ic->down && iser_poll(&ic->poller, ISER_WC_BATCH) == ISER_WC_BATCH)
			;
		iser_fail(ic, ev->status, ev->status ? "connection lost" : "disconnected");
		backlog_fail(ic);
		break;
	default:
		break;
	}
}

bool iser_conn_tx_pending(const struct iser_conn *ic)
{
	return ic->refs_out || ic->bl_head;
}

void iser_conn_disconnect(struct iser_conn *ic)
{
	if (ic->rc && !ic->down)
		rdma_conn_disconnect(ic->rc);
}

void iser_conn_get_stats(const struct iser_conn *ic, struct iser_conn_stats *st)
{
	const struct iser_op *op;

	*st = ic->st;
	st->ord = ic->ord;
	st->reads_out = ic->reads_out;
	st->waiting = 0;
	for (op = ic->bl_head; op; op = op->next)
		st->waiting++;
	st->has_rdma = ic->rc && !rdma_conn_get_stats(ic->rc, &st->rdma);
}

const struct poller *iser_conn_poller(const struct iser_conn *ic)
{
	return &ic->poller;
}
