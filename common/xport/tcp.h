/*
 * tcp: the byte stream of one iSCSI/TCP connection (RFC 7143 §11, §13.1):
 * a send queue written with writev, and PDU framing of what is received,
 * with CRC32C header and data digests. The target's and the initiator's
 * connections both sit on it; the state machines above it are theirs.
 *
 * Rules:
 * - A struct tcp_stream is embedded in its owner and used from one
 *   thread. Nothing here blocks: the socket is non-blocking, and "would
 *   block" comes back as -EAGAIN or 0 for the owner's event loop.
 * - Queued data is not copied: it must stay valid until the PDU is sent
 *   or dropped, when it is freed (@owned) or handed back (@ref, through
 *   the release callback).
 * - Nothing here prints; errors are -errno.
 */
#ifndef ISERKIT_TCP_H
#define ISERKIT_TCP_H

#include <stdbool.h>
#include <stdint.h>

#include "pdu.h"

/* One queued PDU: header (+ digest), then data (+ pad + digest). */
struct tcp_tx {
	struct tcp_tx *next;
	uint8_t hdr[PDU_BHS_LEN + PDU_DIGEST_LEN];
	uint32_t hdr_len;
	const uint8_t *data;
	uint32_t data_len;
	uint8_t trail[3 + PDU_DIGEST_LEN];
	uint32_t trail_len;
	uint32_t done; /* bytes written so far */
	void *owned;
	void *ref;
};

struct tcp_stream {
	int fd;
	unsigned int digests;  /* PDU_HDIGEST | PDU_DDIGEST, both directions */
	uint32_t max_recv_dsl; /* the largest DataSegmentLength we accept */
	struct tcp_tx *tx_head, *tx_tail;
	uint8_t *rx;
	uint32_t rx_cap, rx_len, rx_off;
	/* The last recv() returned less than it asked for: the socket was
	 * empty then, and a byte arriving since raises a new EPOLLET edge,
	 * so tcp_recv() may report "nothing now" without asking again. */
	bool rx_dry;
	/* A PDU queued with a non-NULL @ref was sent or dropped. */
	void (*release)(struct tcp_stream *s, void *ref);
	/* Optional: where the data segment of the PDU whose header @p is
	 * (no AHS, at least TCP_PLACE_MIN bytes of data, not all received
	 * yet) should go, or NULL to take it into the stream's buffer.
	 * The data is then received there, bytes already buffered copied
	 * once, and tcp_recv() returns the PDU with out->data pointing at
	 * it. The place must stay valid until then or tcp_stream_fini(). */
	void *(*place)(struct tcp_stream *s, const struct pdu *p);
	struct pdu rx_pdu;		      /* the placed PDU's header */
	uint8_t *rx_dst;		      /* where its data goes; NULL when none */
	uint32_t rx_dst_done;		      /* data bytes there so far */
	uint8_t rx_trail[3 + PDU_DIGEST_LEN]; /* its pad and data digest */
	uint32_t rx_trail_len, rx_trail_done;
	bool rx_asked;			 /* the place callback saw the PDU at rx_off */
	bool rx_hdr_next;		 /* after a placed PDU, read a header's worth first */
	uint64_t rx_placed, rx_buffered; /* data bytes received in place, copied */
};

/* The smallest data segment worth placing: below it, copying is cheaper
 * than the read it would take. */
#define TCP_PLACE_MIN (16 * 1024)

/*
 * Set up @s on the connected, non-blocking socket @fd (not owned: never
 * closed here). @release may be NULL when no PDU is queued with a ref.
 * No digests; max_recv_dsl 8192 (the login limit, RFC 7143 §13.12).
 * Returns 0 or -ENOMEM.
 */
int tcp_stream_init(struct tcp_stream *s, int fd, void (*release)(struct tcp_stream *s, void *ref));

/* Drop what is queued (freeing @owned, releasing refs) and free the
 * receive buffer. The stream may be set up again afterwards. */
void tcp_stream_fini(struct tcp_stream *s);

/*
 * Queue a PDU: encode @bhs (its data_len is set to @len), compute the
 * digests the stream has, and point at @len bytes of @data. @owned is
 * freed once the PDU is sent or dropped; @ref is handed to the release
 * callback then. Returns 0, or -ENOMEM or -EINVAL (a field @bhs cannot
 * encode), in which case @owned was freed and @ref released already.
 */
int tcp_send(struct tcp_stream *s, struct pdu_bhs *bhs, const void *data, uint32_t len, void *owned,
	     void *ref);

static inline bool tcp_tx_pending(const struct tcp_stream *s)
{
	return s->tx_head != NULL;
}

/*
 * Write what is queued. Returns 0 when the queue is empty, -EAGAIN when
 * the socket takes no more for now (wait for EPOLLOUT), or another
 * -errno when the connection is broken.
 */
int tcp_flush(struct tcp_stream *s);

/*
 * The next whole PDU, reading the socket when the buffer holds none.
 * Returns 1 with @out filled (its pointers are into the stream's buffer,
 * valid until the next tcp_recv(), but for the data of a placed PDU,
 * which is where the place callback said); 0 when no whole PDU is there
 * and the socket has nothing more now; or an error that ends the stream:
 * -ECONNRESET (end of file), -EPROTO, -E2BIG (over max_recv_dsl) and the
 * other errors of pdu_total_len()/pdu_parse() for a bad PDU, -EBADMSG for
 * a header digest error, -ENOMEM, or recv(2)'s -errno. A data digest
 * error is -EILSEQ with @out filled and the PDU consumed: the stream
 * stays in step, and the caller decides (RFC 7143 §7.8).
 */
int tcp_recv(struct tcp_stream *s, struct pdu *out);

/* Bytes received and not yet framed: when a caller stops after a budget
 * with bytes left, no readiness event will come for them. */
static inline bool tcp_rx_pending(const struct tcp_stream *s)
{
	return s->rx_len > s->rx_off;
}

#endif
