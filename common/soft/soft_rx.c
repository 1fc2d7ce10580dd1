/*
 * soft_rx: the soft provider's receive side (see soft_priv.h): FPDUs framed
 * in the receive buffer and each DDP segment placed, large payloads read
 * straight into place, Read Responses read ahead into their sink.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/be.h"
#include "common/soft/soft_priv.h"

/* Terminates for what a segment failed */

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
		soft_term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_PROTECTION,
			       IWARP_TERM_RDMAP_ACCESS, seg, len, -EPROTO);
	else
		soft_term_send(c, IWARP_TERM_DDP, IWARP_TERM_DDP_TAGGED, code[e], seg, len,
			       -EPROTO);
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

	soft_term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_PROTECTION, code[e], seg, len,
		       -EPROTO);
}

/* An untagged segment failed DDP's checks (RFC 5041 §7.2). */
static void term_untagged(struct soft_conn *c, uint8_t ecode, const uint8_t *seg, size_t len)
{
	soft_term_send(c, IWARP_TERM_DDP, IWARP_TERM_DDP_UNTAGGED, ecode, seg, len, -EPROTO);
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
	e = soft_mem_check(c, h->stag, h->to, plen, RDMA_ACCESS_REMOTE_WRITE);
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
		soft_term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_OPERATION,
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
	soft_sq_retire(c);
	/* A Read waiting for ORD may go now. */
	soft_tx_kick(c);
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
		soft_term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_CATASTROPHIC,
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
		mr = soft_mr_find(c->dev, h->inv_stag);
		if (!mr || !mr->valid || mr->pd != c->pd) {
			soft_term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_PROTECTION,
				       IWARP_TERM_RDMAP_INVALID_STAG, seg, len, -EPROTO);
			return -1;
		}
		mr->valid = false;
		flags = RDMA_WC_WITH_INV;
	}
	soft_rq_complete(c, r, RDMA_WC_SUCCESS, flags, flags ? h->inv_stag : 0);
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
		err = soft_mem_check(c, q->src_stag, q->src_to, q->size, RDMA_ACCESS_REMOTE_READ);
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
	soft_tx_kick(c);
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
	soft_conn_error(c, -EREMOTEIO);
	return -1;
}

/* A segment's headers did not decode (RFC 5041 §7.2, RFC 5040 §4.8). */
static void rx_bad_hdr(struct soft_conn *c, int err, const struct iwarp_hdr *h, const uint8_t *seg,
		       size_t len)
{
	if (err == -EMSGSIZE)
		soft_term_send(c, IWARP_TERM_DDP, IWARP_TERM_DDP_CATASTROPHIC, 0, seg, len,
			       -EPROTO);
	else if (h->ddp_version != IWARP_DDP_VERSION)
		soft_term_send(c, IWARP_TERM_DDP,
			       h->tagged ? IWARP_TERM_DDP_TAGGED : IWARP_TERM_DDP_UNTAGGED,
			       h->tagged ? IWARP_TERM_DDP_T_BAD_VERSION
					 : IWARP_TERM_DDP_U_BAD_VERSION,
			       seg, len, -EPROTO);
	else if (h->rdmap_version != IWARP_RDMAP_VERSION)
		soft_term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_OPERATION,
			       IWARP_TERM_RDMAP_BAD_VERSION, seg, len, -EPROTO);
	else
		soft_term_send(c, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_OPERATION,
			       IWARP_TERM_RDMAP_BAD_OPCODE, seg, len, -EPROTO);
}

/* The first FPDU of the initiator (RFC 5044 §7.1.2, RFC 6581 RTR). */
static bool rx_first(struct soft_conn *c, const struct iwarp_hdr *h, size_t plen)
{
	bool rtr = c->rtr_send_pending && h->opcode == IWARP_OP_SEND && h->last && !plen;

	if (c->tx_hold) {
		c->tx_hold = false;
		soft_tx_kick(c);
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

/*
 * The CRC of an FPDU read in place: @ctx holds its header and payload, the
 * trailer @trl (@tlen bytes) its PAD and CRC. On a mismatch, the Terminate
 * (RFC 5044 §8) and false.
 */
static bool rx_crc_end(struct soft_conn *c, struct digest_ctx *ctx, const uint8_t *trl, size_t tlen)
{
	digest_update(ctx, trl, tlen - IWARP_FPDU_CRC_LEN);
	if (digest_final(ctx) == digest_load(trl + tlen - IWARP_FPDU_CRC_LEN))
		return true;
	soft_term_send(c, IWARP_TERM_LLP, IWARP_TERM_LLP_MPA, IWARP_TERM_MPA_CRC, NULL, 0, -EPROTO);
	return false;
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
		if (!rx_crc_end(c, &d->crc, d->trailer, tlen))
			return;
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
		soft_term_send(c, IWARP_TERM_LLP, IWARP_TERM_LLP_MPA, IWARP_TERM_MPA_CRC, NULL, 0,
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
		soft_conn_error(c, -EPROTO);
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

void soft_rx_process(struct soft_conn *c)
{
	int r;

	while (c->rx_off < c->rx_len && !c->direct.on) {
		const uint8_t *b = c->rx + c->rx_off;
		size_t n = c->rx_len - c->rx_off;

		switch (c->state) {
		case S_REQ_WAIT:
			r = soft_rx_mpa_request(c, b, n);
			break;
		case S_REP_WAIT:
			r = soft_rx_mpa_reply(c, b, n);
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
	struct digest_ctx crc;
	int k;

	if (c->crc) {
		digest_begin(&crc);
		for (k = 0; k < 2; k++) {
			struct iovec v = rx_ahead_piece(c, w, i, k);

			digest_update(&crc, v.iov_base, v.iov_len);
		}
		if (!rx_crc_end(c, &crc, a->trl[i], a->f[i].tlen))
			return false;
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
	soft_rx_process(c);
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

/* End of stream, or a broken one. */
static void rx_end(struct soft_conn *c, int err)
{
	switch (c->state) {
	case S_REQ_WAIT:
		soft_close_fd(c);
		break;
	case S_CONNECTING:
	case S_REP_WAIT:
		soft_connect_end(c, RDMA_EV_CONNECT_ERROR, err ? err : -ECONNRESET, NULL, 0);
		break;
	case S_RTS:
		/* A FIN between two FPDUs is the peer's disconnect. */
		soft_conn_error(c, err || c->rx_off != c->rx_len || c->direct.on ||
						   (c->ahead && c->ahead->have)
					   ? -ECONNRESET
					   : 0);
		break;
	default:
		break;
	}
	c->eof = true;
	if (err)
		soft_close_fd(c);
	else if (c->fd >= 0) {
		soft_fd_set_events(c, c->fd_events & ~(uint32_t)EPOLLIN);
		soft_tx_maybe_close(c);
	}
}

void soft_rx_run(struct soft_conn *c)
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
			soft_rx_process(c);
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
		soft_rx_process(c);
		/* A short read emptied the socket: the fd is level-triggered,
		 * so what comes next raises it again; asking now would only
		 * return EAGAIN (one syscall per wake-up, measured). */
		if ((size_t)n < room && !c->direct.on)
			return;
	}
}
