/*
 * tcp: the iSCSI/TCP byte stream. See tcp.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/be.h"
#include "digest.h"
#include "tcp.h"

#define TX_IOV 64
#define RX_MIN (64 * 1024)
#define LOGIN_DSL 8192

int tcp_stream_init(struct tcp_stream *s, int fd, void (*release)(struct tcp_stream *s, void *ref))
{
	memset(s, 0, sizeof(*s));
	s->rx = malloc(RX_MIN);
	if (!s->rx)
		return -ENOMEM;
	s->rx_cap = RX_MIN;
	s->fd = fd;
	s->max_recv_dsl = LOGIN_DSL;
	s->release = release;
	return 0;
}

static void tx_free(struct tcp_stream *s, struct tcp_tx *tx)
{
	free(tx->owned);
	if (tx->ref)
		s->release(s, tx->ref);
	free(tx);
}

void tcp_stream_fini(struct tcp_stream *s)
{
	struct tcp_tx *tx;

	while ((tx = s->tx_head)) {
		s->tx_head = tx->next;
		tx_free(s, tx);
	}
	s->tx_tail = NULL;
	free(s->rx);
	s->rx = NULL;
	s->rx_cap = s->rx_len = s->rx_off = 0;
	s->rx_dst = NULL;
	s->rx_asked = s->rx_hdr_next = false;
}

/* Send */

int tcp_send(struct tcp_stream *s, struct pdu_bhs *bhs, const void *data, uint32_t len, void *owned,
	     void *ref)
{
	uint32_t pad = PDU_PAD4(len) - len;
	struct tcp_tx *tx = calloc(1, sizeof(*tx));

	if (!tx) {
		free(owned);
		if (ref)
			s->release(s, ref);
		return -ENOMEM;
	}
	tx->owned = owned;
	tx->ref = ref;
	bhs->data_len = len;
	if (pdu_bhs_encode(bhs, tx->hdr, PDU_BHS_LEN)) {
		tx_free(s, tx);
		return -EINVAL;
	}
	tx->hdr_len = PDU_BHS_LEN;
	if (s->digests & PDU_HDIGEST) {
		digest_store(tx->hdr + PDU_BHS_LEN, digest_crc32c(tx->hdr, PDU_BHS_LEN));
		tx->hdr_len += PDU_DIGEST_LEN;
	}
	tx->data = data;
	tx->data_len = len;
	tx->trail_len = pad;
	if (len && (s->digests & PDU_DDIGEST)) {
		struct digest_ctx d;

		digest_begin(&d);
		digest_update(&d, data, len);
		digest_update_pad(&d, len);
		digest_store(tx->trail + pad, digest_final(&d));
		tx->trail_len += PDU_DIGEST_LEN;
	}
	if (s->tx_tail)
		s->tx_tail->next = tx;
	else
		s->tx_head = tx;
	s->tx_tail = tx;
	return 0;
}

/* What is queued as iovecs, skipping what is already written. */
static int tx_gather(const struct tcp_stream *s, struct iovec *iov)
{
	struct tcp_tx *tx;
	int n = 0;

	for (tx = s->tx_head; tx && n <= TX_IOV - 3; tx = tx->next) {
		const uint8_t *part[3] = {tx->hdr, tx->data, tx->trail};
		uint32_t len[3] = {tx->hdr_len, tx->data_len, tx->trail_len};
		uint32_t skip = tx->done;
		int i;

		for (i = 0; i < 3; i++) {
			if (skip >= len[i]) {
				skip -= len[i];
				continue;
			}
			iov[n].iov_base = (void *)(part[i] + skip);
			iov[n].iov_len = len[i] - skip;
			skip = 0;
			n++;
		}
	}
	return n;
}

/* Retire the PDUs that @n written bytes completed. */
static void tx_advance(struct tcp_stream *s, size_t n)
{
	struct tcp_tx *tx;

	while ((tx = s->tx_head) && n > 0) {
		uint32_t left = tx->hdr_len + tx->data_len + tx->trail_len - tx->done;

		if (n < left) {
			tx->done += (uint32_t)n;
			return;
		}
		n -= left;
		s->tx_head = tx->next;
		if (!s->tx_head)
			s->tx_tail = NULL;
		tx_free(s, tx);
	}
}

int tcp_flush(struct tcp_stream *s)
{
	struct iovec iov[TX_IOV];
	struct msghdr msg = {.msg_iov = iov};
	ssize_t n;

	while (s->tx_head) {
		msg.msg_iovlen = (size_t)tx_gather(s, iov);
		/* sendmsg, not writev: MSG_NOSIGNAL, a dead peer is -EPIPE */
		n = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EWOULDBLOCK)
				return -EAGAIN;
			return -errno;
		}
		tx_advance(s, (size_t)n);
	}
	return 0;
}

/* Receive */

/* A header's worth: BHS and header digest (no AHS in a placed PDU). */
static uint32_t hdr_len(const struct tcp_stream *s)
{
	return PDU_BHS_LEN + ((s->digests & PDU_HDIGEST) ? PDU_DIGEST_LEN : 0u);
}

/* Spread @n bytes read by rx_read_placed() over the place, the trail
 * and the buffer, in that order. */
static void rx_placed_advance(struct tcp_stream *s, uint32_t n)
{
	uint32_t k = s->rx_pdu.bhs.data_len - s->rx_dst_done;

	k = n < k ? n : k;
	s->rx_dst_done += k;
	s->rx_placed += k;
	n -= k;
	k = s->rx_trail_len - s->rx_trail_done;
	k = n < k ? n : k;
	s->rx_trail_done += k;
	s->rx_len += n - k;
}

/* recvmsg into @msg, @want bytes in all: the bytes read, 0 when the
 * socket has none now, or -errno (-ECONNRESET at end of file). */
static int rx_recv(struct tcp_stream *s, struct msghdr *msg, size_t want)
{
	ssize_t n;

	if (s->rx_dry) {
		s->rx_dry = false;
		return 0;
	}
	for (;;) {
		n = recvmsg(s->fd, msg, 0);
		if (n > 0) {
			s->rx_dry = (size_t)n < want;
			return (int)n;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? 0 : -errno;
	}
}

/* Read into the placed PDU's data and trail, and a header's worth of
 * what follows into the (empty) buffer: when the next PDU is placed too,
 * none of its data passes through the buffer. */
static int rx_read_placed(struct tcp_stream *s)
{
	struct iovec iov[3];
	struct msghdr msg = {.msg_iov = iov};
	size_t want = 0;
	int i = 0, n;

	s->rx_off = s->rx_len = 0;
	if (s->rx_dst_done < s->rx_pdu.bhs.data_len) {
		iov[i].iov_base = s->rx_dst + s->rx_dst_done;
		iov[i++].iov_len = s->rx_pdu.bhs.data_len - s->rx_dst_done;
	}
	if (s->rx_trail_done < s->rx_trail_len) {
		iov[i].iov_base = s->rx_trail + s->rx_trail_done;
		iov[i++].iov_len = s->rx_trail_len - s->rx_trail_done;
	}
	iov[i].iov_base = s->rx;
	iov[i++].iov_len = hdr_len(s);
	msg.msg_iovlen = (size_t)i;
	while (i--)
		want += iov[i].iov_len;
	n = rx_recv(s, &msg, want);
	if (n > 0)
		rx_placed_advance(s, (uint32_t)n);
	return n;
}

/* Read what the socket has into the free end of the buffer. Returns the
 * bytes read, 0 when it has none now, or -errno (-ECONNRESET at EOF). */
static int rx_read(struct tcp_stream *s)
{
	struct iovec iov;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	int n;

	if (s->rx_dst)
		return rx_read_placed(s);
	if (s->rx_off && (s->rx_off == s->rx_len || s->rx_cap - s->rx_len < RX_MIN / 2)) {
		memmove(s->rx, s->rx + s->rx_off, s->rx_len - s->rx_off);
		s->rx_len -= s->rx_off;
		s->rx_off = 0;
	}
	/* After a placed PDU, another may follow: its header first. */
	iov.iov_base = s->rx + s->rx_len;
	iov.iov_len = s->rx_cap - s->rx_len;
	if (s->rx_hdr_next && s->rx_len - s->rx_off < hdr_len(s))
		iov.iov_len = hdr_len(s) - (s->rx_len - s->rx_off);
	n = rx_recv(s, &msg, iov.iov_len);
	if (n > 0)
		s->rx_len += (uint32_t)n;
	return n;
}

/* Make room for a PDU of @total bytes at rx_off. */
static int rx_room(struct tcp_stream *s, uint32_t total)
{
	uint32_t have = s->rx_len - s->rx_off;
	uint8_t *rx;

	if (total <= s->rx_cap - s->rx_off)
		return 0;
	memmove(s->rx, s->rx + s->rx_off, have);
	s->rx_len = have;
	s->rx_off = 0;
	if (total <= s->rx_cap)
		return 0;
	rx = realloc(s->rx, (size_t)total * 2);
	if (!rx)
		return -ENOMEM;
	s->rx = rx;
	s->rx_cap = total * 2;
	return 0;
}

/* The placed PDU, once its data and trail are in: 1 (@out filled),
 * -EILSEQ (a data digest error, @out filled), or 0 while bytes are due. */
static int rx_placed_frame(struct tcp_stream *s, struct pdu *out)
{
	uint32_t len = s->rx_pdu.bhs.data_len, pad = PDU_PAD4(len) - len;

	if (s->rx_dst_done < len || s->rx_trail_done < s->rx_trail_len)
		return 0;
	*out = s->rx_pdu;
	out->data = s->rx_dst;
	s->rx_dst = NULL;
	s->rx_asked = false;
	s->rx_hdr_next = true;
	if (out->ddigest_off) {
		struct digest_ctx d;

		digest_begin(&d);
		digest_update(&d, out->data, len);
		digest_update(&d, s->rx_trail, pad);
		if (digest_final(&d) != digest_load(s->rx_trail + pad))
			return -EILSEQ;
	}
	return 1;
}

/* Offer the PDU at rx_off, whose header is in and data is not, to the
 * place callback. Returns 1 when placed (the bytes buffered behind the
 * header moved there), 0 when not, or -EBADMSG (header digest). */
static int rx_place(struct tcp_stream *s, const uint8_t *p, uint32_t have)
{
	struct pdu *h = &s->rx_pdu;
	uint32_t len, n;

	s->rx_asked = true;
	if (p[4] || be_get24(p + 5) < TCP_PLACE_MIN)
		return 0; /* AHS (its pointers would go), or small */
	/* An error here is found again, and answered, once it is all in. */
	if (pdu_parse_header(p, have, s->digests, s->max_recv_dsl, h) < 0)
		return 0;
	if (h->hdigest_off && digest_crc32c(p, h->hdigest_off) != digest_load(p + h->hdigest_off))
		return -EBADMSG;
	s->rx_dst = s->place(s, h);
	if (!s->rx_dst) {
		s->rx_hdr_next = false;
		return 0;
	}
	len = h->bhs.data_len;
	s->rx_trail_len = h->len - h->data_off - len;
	s->rx_off += h->data_off;
	have -= h->data_off;
	n = have < len ? have : len;
	memcpy(s->rx_dst, s->rx + s->rx_off, n);
	s->rx_dst_done = n;
	s->rx_buffered += n;
	have -= n;
	s->rx_off += n;
	n = have; /* less than the trail: the PDU is not all in */
	memcpy(s->rx_trail, s->rx + s->rx_off, n);
	s->rx_trail_done = n;
	s->rx_off += n;
	return 1;
}

/* Frame the PDU at rx_off: 1 when whole (@out filled, consumed), 0 when
 * more bytes are needed, or -errno. */
static int rx_frame(struct tcp_stream *s, struct pdu *out)
{
	const uint8_t *p = s->rx + s->rx_off;
	uint32_t have = s->rx_len - s->rx_off;
	int total, err;

	if (s->rx_dst)
		return rx_placed_frame(s, out);
	if (have < hdr_len(s))
		return 0;
	total = pdu_total_len(p, have, s->digests, s->max_recv_dsl);
	if (total < 0)
		return total;
	if ((uint32_t)total > have) {
		if (s->place && !s->rx_asked) {
			err = rx_place(s, p, have);
			if (err)
				return err < 0 ? err : rx_placed_frame(s, out);
		}
		err = rx_room(s, (uint32_t)total);
		return err ? err : 0;
	}
	s->rx_asked = false;
	s->rx_hdr_next = false;
	err = pdu_parse(p, have, s->digests, s->max_recv_dsl, out);
	if (err < 0)
		return err;
	/* RFC 7143 §7.8: without a trusted header the stream is lost. */
	if (out->hdigest_off &&
	    digest_crc32c(p, out->hdigest_off) != digest_load(p + out->hdigest_off))
		return -EBADMSG;
	s->rx_off += (uint32_t)total;
	s->rx_buffered += out->bhs.data_len;
	if (out->ddigest_off &&
	    digest_crc32c(p + out->data_off, out->ddigest_off - out->data_off) !=
		    digest_load(p + out->ddigest_off))
		return -EILSEQ;
	return 1;
}

int tcp_recv(struct tcp_stream *s, struct pdu *out)
{
	int ret;

	for (;;) {
		ret = rx_frame(s, out);
		if (ret)
			return ret;
		ret = rx_read(s);
		if (ret <= 0)
			return ret;
	}
}
