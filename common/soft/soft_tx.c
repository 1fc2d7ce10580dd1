/*
 * soft_tx: the soft provider's transmit side (see soft_priv.h): the watch
 * on the socket, the ring of frames cut from the send queue and the Read
 * Responses, written with sendmsg; errors, and the Terminates we send.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/soft/soft_priv.h"

/* Socket watching */

void soft_fd_set_events(struct soft_conn *c, uint32_t events)
{
	if (c->fd < 0 || !c->watched || c->fd_events == events)
		return;
	if (sched_fd_mod(c->dev->sched, &c->sfd, events) == 0)
		c->fd_events = events;
}

void soft_fd_unwatch(struct soft_conn *c)
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

void soft_close_fd(struct soft_conn *c)
{
	if (c->fd < 0)
		return;
	soft_fd_unwatch(c);
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

void soft_tx_kick(struct soft_conn *c)
{
	if (c->fd >= 0)
		sched_schedule(c->dev->sched, &c->tx_ev);
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
		soft_close_fd(c);
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

struct soft_frame *soft_frame_new(struct soft_conn *c, uint32_t limit)
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
int soft_frame_fpdu(struct soft_conn *c, struct soft_frame *f, const struct iwarp_hdr *h,
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
int soft_tx_push_raw(struct soft_conn *c, void *buf, size_t len)
{
	struct soft_frame *f = soft_frame_new(c, SOFT_TX_FRAMES);

	if (!f) {
		free(buf);
		return -ENOBUFS;
	}
	f->kind = FRAME_RAW;
	f->owned = buf;
	f->iov[0] = (struct iovec){buf, len};
	f->iovcnt = 1;
	frame_commit(c, f);
	soft_tx_kick(c);
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
	soft_frame_fpdu(c, f, &h, 0, k, plen);
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
	soft_frame_fpdu(c, f, &h, 0, 0, 0);
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
	soft_frame_fpdu(c, f, &h, 0, k, take);
	if (h.last) {
		c->irq_head = (c->irq_head + 1) % SOFT_IRD_MAX;
		c->irq_count--;
	}
}

/* A request that failed before it left: the queue pair goes to error and
 * the peer is told (RFC 5040 §7: Terminate, local catastrophic). */
static void tx_local_error(struct soft_conn *c, struct soft_swqe *w, enum rdma_wc_status status)
{
	w->status = status;
	w->done = true;
	c->sq_tx++;
	soft_term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_CATASTROPHIC,
		       IWARP_TERM_RDMAP_UNSPECIFIED, NULL, 0, -EIO);
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
		f = soft_frame_new(c, SOFT_TX_FRAMES - SOFT_TX_CTRL);
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

void soft_tx_maybe_close(struct soft_conn *c)
{
	if (c->fin_sent && c->eof)
		soft_close_fd(c);
}

void soft_tx_run(struct soft_conn *c)
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
			soft_fd_set_events(c, c->fd_events | EPOLLOUT);
			return;
		}
		if (n == -EINTR)
			continue;
		if (n < 0) {
			c->want_fin = false;
			soft_conn_error(c, -ECONNRESET);
			soft_close_fd(c);
			return;
		}
		tx_retire(c, (size_t)n);
		soft_sq_retire(c);
	}
	if (c->fd < 0)
		return;
	if (c->f_count) {
		/* Budget used: let the other events of the loop run first. */
		soft_tx_kick(c);
		return;
	}
	soft_fd_set_events(c, c->fd_events & ~(uint32_t)EPOLLOUT);
	if (c->want_fin && !c->fin_sent) {
		/* RFC 5040 §6.2, §7: after a Terminate, or on teardown, the
		 * stream is closed; the peer's FIN (or the linger timer) ends it. */
		shutdown(c->fd, SHUT_WR);
		c->fin_sent = true;
		soft_tx_maybe_close(c);
	}
}

void soft_tx_event(struct sched_event *ev)
{
	soft_tx_run(container_of(ev, struct soft_conn, tx_ev));
}

/* Errors and Terminate */

/*
 * The queue pair goes to error: outstanding work is flushed, unsent frames
 * dropped, DISCONNECTED given if the connection was up, and the stream
 * closed after what is still queued (a Terminate) has left.
 */
void soft_conn_error(struct soft_conn *c, int status)
{
	bool was_up = c->state == S_RTS;

	if (c->state == S_ERROR || c->state == S_CLOSED)
		return;
	c->state = S_ERROR;
	c->direct.on = false;
	tx_abort(c);
	soft_qp_flush(c);
	if (was_up)
		soft_ev_queue(c, &c->ev_end, RDMA_EV_DISCONNECTED, status, NULL, 0);
	if (c->fd < 0)
		return;
	if (!c->eof)
		soft_fd_set_events(c, EPOLLIN | (c->fd_events & EPOLLOUT));
	c->want_fin = true;
	sched_timer_arm(c->dev->sched, &c->timer, sched_now(c->dev->sched) + SOFT_LINGER_NS);
	soft_tx_kick(c);
}

/*
 * Send a Terminate (RFC 5040 §4.8, on queue 2) for the segment @seg
 * (@seg_len bytes, NULL when the error is not one segment's), echoing its
 * DDP header and, for a Read Request, its RDMAP header; then error.
 */
void soft_term_send(struct soft_conn *c, uint8_t layer, uint8_t etype, uint8_t ecode,
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
	soft_conn_error(c, status);
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
	f = soft_frame_new(c, SOFT_TX_FRAMES);
	if (!f)
		return;
	f->kind = FRAME_TERM;
	h.msn = c->tx_msn[IWARP_QN_TERMINATE]++;
	n = iwarp_term_encode(&t, f->hdr + IWARP_FPDU_HDR_LEN + IWARP_UNTAGGED_HDR_LEN,
			      SOFT_TERM_MAX);
	if (n < 0 || soft_frame_fpdu(c, f, &h, (size_t)n, 0, 0) < 0)
		return;
	c->st.terminates_sent++;
	c->st.term_sent = (struct rdma_term_info){layer, etype, ecode};
	soft_tx_kick(c);
}
