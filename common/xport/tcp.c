/*
 * tcp: the iSCSI/TCP byte stream. See tcp.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

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

/* Read what the socket has into the free end of the buffer. Returns the
 * bytes read, 0 when it has none now, or -errno (-ECONNRESET at EOF). */
static int rx_read(struct tcp_stream *s)
{
	ssize_t n;

	if (s->rx_off && (s->rx_off == s->rx_len || s->rx_cap - s->rx_len < RX_MIN / 2)) {
		memmove(s->rx, s->rx + s->rx_off, s->rx_len - s->rx_off);
		s->rx_len -= s->rx_off;
		s->rx_off = 0;
	}
	if (s->rx_dry) {
		s->rx_dry = false;
		return 0;
	}
	for (;;) {
		n = recv(s->fd, s->rx + s->rx_len, s->rx_cap - s->rx_len, 0);
		if (n > 0) {
			s->rx_dry = (size_t)n < s->rx_cap - s->rx_len;
			s->rx_len += (uint32_t)n;
			return (int)n;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? 0 : -errno;
	}
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

/* Frame the PDU at rx_off: 1 when whole (@out filled, consumed), 0 when
 * more bytes are needed, or -errno. */
static int rx_frame(struct tcp_stream *s, struct pdu *out)
{
	const uint8_t *p = s->rx + s->rx_off;
	uint32_t have = s->rx_len - s->rx_off;
	int total, err;

	if (have < PDU_BHS_LEN + ((s->digests & PDU_HDIGEST) ? PDU_DIGEST_LEN : 0u))
		return 0;
	total = pdu_total_len(p, have, s->digests, s->max_recv_dsl);
	if (total < 0)
		return total;
	if ((uint32_t)total > have) {
		err = rx_room(s, (uint32_t)total);
		return err ? err : 0;
	}
	err = pdu_parse(p, have, s->digests, s->max_recv_dsl, out);
	if (err < 0)
		return err;
	/* RFC 7143 §7.8: without a trusted header the stream is lost. */
	if (out->hdigest_off &&
	    digest_crc32c(p, out->hdigest_off) != digest_load(p + out->hdigest_off))
		return -EBADMSG;
	s->rx_off += (uint32_t)total;
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
