/*
 * Unit tests for common/xport/tcp: PDU framing out of a byte stream that
 * arrives in pieces of every size, with and without digests, and data
 * segments received in place (the place callback): they land where the
 * callback said, digests are checked over them there, the stream stays
 * in step around them, and a PDU too small, with an AHS or all buffered
 * already is not offered.
 *
 * The wire bytes are made by a second stream's tcp_send() over one
 * socketpair, then written into another in chunks while the receiving
 * stream reads.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/xport/tcp.h"
#include "digest.h"

#define NPDU 8
#define WIRE_MAX (4 * 1024 * 1024)

/* Data-Out PDUs of these data lengths, ITT i. */
static const uint32_t pdu_len[NPDU] = {
	100, TCP_PLACE_MIN, 65536 + 3, 256 * 1024, TCP_PLACE_MIN - 1, 0, 20001, 256 * 1024,
};

static uint8_t pattern(uint32_t itt, uint32_t off)
{
	return (uint8_t)(itt * 37 + off * 7 + (off >> 9));
}

struct rx_ctx {
	struct tcp_stream s; /* first: the callback's pointer is this */
	bool decline;	     /* answer NULL */
	int asked[NPDU];     /* how often each PDU was offered */
	uint8_t *place[NPDU];
};

static void *place_cb(struct tcp_stream *s, const struct pdu *p)
{
	struct rx_ctx *c = (struct rx_ctx *)s;
	uint32_t i = p->bhs.itt;

	ck_assert_uint_lt(i, NPDU);
	ck_assert_uint_ge(p->bhs.data_len, TCP_PLACE_MIN);
	ck_assert_ptr_null(p->data);
	c->asked[i]++;
	if (c->decline)
		return NULL;
	c->place[i] = malloc(p->bhs.data_len);
	ck_assert_ptr_nonnull(c->place[i]);
	return c->place[i];
}

static void nonblock(int fd)
{
	ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* A receiving stream with the place callback on one end of a new
 * socketpair (@sp[0] is the sending end). */
static void rx_open(struct rx_ctx *c, int sp[2], unsigned int digests)
{
	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	nonblock(sp[1]);
	ck_assert_int_eq(tcp_stream_init(&c->s, sp[1], NULL), 0);
	c->s.digests = digests;
	c->s.max_recv_dsl = PDU_DSL_MAX;
	c->s.place = place_cb;
}

static void rx_close(struct rx_ctx *c, int sp[2])
{
	int i;

	for (i = 0; i < NPDU; i++)
		free(c->place[i]);
	tcp_stream_fini(&c->s);
	close(sp[0]);
	close(sp[1]);
}

/* The wire bytes of the NPDU PDUs, with @digests; returns their length. */
static size_t make_wire(uint8_t *wire, unsigned int digests)
{
	struct tcp_stream tx;
	uint8_t *data[NPDU];
	size_t n = 0;
	ssize_t k;
	int sp[2], i;
	uint32_t j;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	nonblock(sp[0]);
	nonblock(sp[1]);
	ck_assert_int_eq(tcp_stream_init(&tx, sp[0], NULL), 0);
	tx.digests = digests;
	for (i = 0; i < NPDU; i++) {
		struct pdu_bhs b = {.opcode = PDU_OP_DATA_OUT, .final = true, .itt = (uint32_t)i};

		data[i] = malloc(pdu_len[i] + 1);
		for (j = 0; j < pdu_len[i]; j++)
			data[i][j] = pattern((uint32_t)i, j);
		b.data_out.ttt = PDU_RSVD_TAG;
		b.data_out.buffer_offset = 7;
		ck_assert_int_eq(tcp_send(&tx, &b, data[i], pdu_len[i], data[i], NULL), 0);
	}
	for (;;) {
		int err = tcp_flush(&tx);

		k = read(sp[1], wire + n, WIRE_MAX - n);
		if (k > 0)
			n += (size_t)k;
		if (!err && k <= 0)
			break;
	}
	tcp_stream_fini(&tx);
	close(sp[0]);
	close(sp[1]);
	return n;
}

/* Check PDU @i as received. */
static void check_pdu(struct rx_ctx *c, const struct pdu *p, uint32_t i)
{
	uint32_t j;

	ck_assert_uint_eq(p->bhs.opcode, PDU_OP_DATA_OUT);
	ck_assert_uint_eq(p->bhs.itt, i);
	ck_assert_uint_eq(p->bhs.data_len, pdu_len[i]);
	ck_assert_uint_eq(p->bhs.data_out.buffer_offset, 7);
	if (!pdu_len[i]) {
		ck_assert_ptr_null(p->data);
		return;
	}
	if (c->place[i])
		ck_assert_ptr_eq(p->data, c->place[i]);
	for (j = 0; j < pdu_len[i]; j++)
		if (p->data[j] != pattern(i, j))
			ck_abort_msg("PDU %u byte %u: %02x, not %02x", i, j, p->data[j],
				     pattern(i, j));
}

/*
 * Write @wire in chunks of @chunk bytes (0: sizes from a small PRNG, 1
 * to 70000) and receive every PDU; returns how many tcp_recv() returned.
 */
static int run(struct rx_ctx *c, const uint8_t *wire, size_t len, size_t chunk,
	       unsigned int digests, bool decline, int corrupt_at)
{
	uint32_t rnd = 12345;
	size_t off = 0;
	uint32_t next = 0;
	int sp[2], ret, i;
	struct pdu p;

	rx_open(c, sp, digests);
	c->decline = decline;
	while (off < len || next < NPDU) {
		size_t n = chunk;

		if (!n) {
			rnd = rnd * 1103515245 + 12345;
			n = 1 + (rnd >> 8) % ((rnd & 0x10000) ? 70000 : 300);
		}
		if (n > len - off)
			n = len - off;
		if (n) {
			ck_assert_int_eq(write(sp[0], wire + off, n), (ssize_t)n);
			off += n;
		}
		while ((ret = tcp_recv(&c->s, &p)) != 0) {
			if (ret == -EILSEQ) {
				ck_assert_int_eq((int)next, corrupt_at);
				ck_assert_uint_eq(p.bhs.itt, next);
				next++;
				continue;
			}
			ck_assert_int_eq(ret, 1);
			ck_assert_uint_lt(next, NPDU);
			check_pdu(c, &p, next++);
		}
		if (off == len)
			break;
	}
	for (i = 0; i < NPDU; i++) {
		/* Offered once, and only when large enough. */
		ck_assert_int_le(c->asked[i], 1);
		if (pdu_len[i] < TCP_PLACE_MIN)
			ck_assert_int_eq(c->asked[i], 0);
	}
	rx_close(c, sp);
	return (int)next;
}

static uint8_t *wire_buf(void)
{
	uint8_t *w = malloc(WIRE_MAX);

	ck_assert_ptr_nonnull(w);
	return w;
}

/* Every digest setting, chunks from 3 bytes (every header split) to 64 KiB. */
START_TEST(test_chunks)
{
	static const size_t chunks[] = {3, 48, 52, 4096, 65536, 0};
	unsigned int digests = (unsigned int)_i;
	struct rx_ctx c;
	uint8_t *w = wire_buf();
	size_t len = make_wire(w, digests), k;

	for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		if (chunks[k] == 3 && digests)
			continue; /* 1.3 MB 3 bytes at a time: once is enough */
		ck_assert_int_eq(run(&c, w, len, chunks[k], digests, false, -1), NPDU);
	}
	free(w);
}
END_TEST

/* With a chunk of one byte every large PDU's data is received in place:
 * only the data that came with its header in the buffer was copied. */
START_TEST(test_placed_counts)
{
	struct rx_ctx c;
	uint8_t *w = wire_buf();
	size_t len = make_wire(w, 0);
	uint64_t big = 0;
	int i, sp[2];
	struct pdu p;
	size_t off;

	for (i = 0; i < NPDU; i++)
		if (pdu_len[i] >= TCP_PLACE_MIN)
			big += pdu_len[i];
	/* Fed 512 bytes at a time: a large PDU takes at most 512 from the
	 * buffer. */
	rx_open(&c, sp, 0);
	i = 0;
	for (off = 0; off < len; off += 512) {
		size_t n = len - off < 512 ? len - off : 512;

		ck_assert_int_eq(write(sp[0], w + off, n), (ssize_t)n);
		while (tcp_recv(&c.s, &p) == 1)
			check_pdu(&c, &p, (uint32_t)i++);
	}
	ck_assert_int_eq(i, NPDU);
	ck_assert_uint_ge(c.s.rx_placed, big - 4 * 512);
	ck_assert_uint_eq(c.s.rx_placed + c.s.rx_buffered, big + 100 + TCP_PLACE_MIN - 1);
	rx_close(&c, sp);
	free(w);
}
END_TEST

/* A SCSI Command with a 32-byte CDB (an Extended CDB AHS, RFC 7143
 * §11.2.2) and 32 KiB of immediate data is not offered: the AHS stays in
 * the buffer with the data. */
START_TEST(test_ahs_not_offered)
{
	uint32_t dlen = 32768, j;
	size_t len = PDU_BHS_LEN + 20 + dlen;
	uint8_t *w = calloc(1, len);
	struct rx_ctx c;
	int sp[2];
	struct pdu p;
	size_t off;

	w[0] = 0x01;
	w[1] = 0x80 | 0x20; /* F, W */
	w[4] = 5;	    /* TotalAHSLength: 20 bytes */
	w[6] = (uint8_t)(dlen >> 8);
	w[48 + 1] = 17; /* AHSLength: 32 - 15 */
	w[48 + 2] = PDU_AHS_EXT_CDB;
	for (j = 0; j < dlen; j++)
		w[PDU_BHS_LEN + 20 + j] = pattern(0, j);
	rx_open(&c, sp, 0);
	for (off = 0; off < len; off += 1000) {
		size_t n = len - off < 1000 ? len - off : 1000;

		ck_assert_int_eq(write(sp[0], w + off, n), (ssize_t)n);
		if (off + n < len)
			ck_assert_int_eq(tcp_recv(&c.s, &p), 0);
	}
	ck_assert_int_eq(tcp_recv(&c.s, &p), 1);
	ck_assert_int_eq(c.asked[0], 0);
	ck_assert_uint_eq(p.ahs.ext_cdb_len, 16);
	ck_assert_uint_eq(p.bhs.data_len, dlen);
	for (j = 0; j < dlen; j++)
		ck_assert_uint_eq(p.data[j], pattern(0, j));
	rx_close(&c, sp);
	free(w);
}
END_TEST

/* Declined: the PDU comes through the buffer, as without a callback. */
START_TEST(test_declined)
{
	struct rx_ctx c;
	uint8_t *w = wire_buf();
	size_t len = make_wire(w, PDU_HDIGEST | PDU_DDIGEST);
	int i;

	ck_assert_int_eq(run(&c, w, len, 0, PDU_HDIGEST | PDU_DDIGEST, true, -1), NPDU);
	for (i = 0; i < NPDU; i++)
		if (pdu_len[i] > 70000) /* more than a chunk: never whole at once */
			ck_assert_int_eq(c.asked[i], 1);
	free(w);
}
END_TEST

/* Offset of PDU @i's first data byte in the wire bytes, with @digests. */
static size_t data_at(uint32_t i, unsigned int digests)
{
	size_t off = 0, hd = (digests & PDU_HDIGEST) ? 4 : 0, dd = (digests & PDU_DDIGEST) ? 4 : 0;
	uint32_t k;

	for (k = 0; k < i; k++)
		off += PDU_BHS_LEN + hd + PDU_PAD4(pdu_len[k]) + (pdu_len[k] ? dd : 0);
	return off + PDU_BHS_LEN + hd;
}

/* A data digest error in a placed PDU: -EILSEQ with the PDU, and the
 * stream stays in step (RFC 7143 §7.8). In a padded one, the pad byte
 * is covered too. */
START_TEST(test_data_digest_error)
{
	unsigned int f = PDU_HDIGEST | PDU_DDIGEST;
	struct rx_ctx c;
	uint8_t *w = wire_buf();
	size_t len = make_wire(w, f);

	w[data_at(3, f) + 200000] ^= 1;
	ck_assert_int_eq(run(&c, w, len, 0, f, false, 3), NPDU);
	ck_assert_ptr_nonnull(c.place[3]); /* freed; was placed */
	w[data_at(3, f) + 200000] ^= 1;
	w[data_at(2, f) + pdu_len[2]] ^= 1; /* the first pad byte */
	ck_assert_int_eq(run(&c, w, len, 4096, f, false, 2), NPDU);
	free(w);
}
END_TEST

/* A header digest error in a PDU large enough to place: -EBADMSG before
 * the callback sees it. */
START_TEST(test_header_digest_error)
{
	unsigned int f = PDU_HDIGEST;
	struct rx_ctx c;
	uint8_t *w = wire_buf();
	size_t at = data_at(3, f) - 4 - PDU_BHS_LEN;
	int sp[2];
	struct pdu p;

	make_wire(w, f);
	w[at + 16] ^= 0x80; /* in the ITT */
	rx_open(&c, sp, f);
	ck_assert_int_eq(write(sp[0], w, at + 52 + 1000), (ssize_t)(at + 52 + 1000));
	ck_assert_int_eq(tcp_recv(&c.s, &p), 1);
	ck_assert_int_eq(tcp_recv(&c.s, &p), 1);
	ck_assert_int_eq(tcp_recv(&c.s, &p), 1);
	ck_assert_int_eq(tcp_recv(&c.s, &p), -EBADMSG);
	ck_assert_int_eq(c.asked[3], 0);
	rx_close(&c, sp);
	free(w);
}
END_TEST

/* The stream set up again after a PDU was half placed: nothing of it is
 * left behind. */
START_TEST(test_fini_while_placing)
{
	struct rx_ctx c;
	uint8_t *w = wire_buf();
	size_t at = data_at(3, 0);
	int sp[2], i;
	struct pdu p;

	make_wire(w, 0);
	rx_open(&c, sp, 0);
	ck_assert_int_eq(write(sp[0], w, at + 1000), (ssize_t)(at + 1000));
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(tcp_recv(&c.s, &p), 1);
	ck_assert_int_eq(tcp_recv(&c.s, &p), 0);
	ck_assert_int_eq(c.asked[3], 1);
	ck_assert_ptr_nonnull(c.s.rx_dst);
	tcp_stream_fini(&c.s);
	ck_assert_ptr_null(c.s.rx_dst);
	ck_assert_int_eq(tcp_stream_init(&c.s, sp[1], NULL), 0);
	ck_assert_ptr_null(c.s.rx_dst);
	rx_close(&c, sp);
	free(w);
}
END_TEST

static Suite *tcp_suite(void)
{
	Suite *su = suite_create("tcp");
	TCase *tc = tcase_create("place");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_chunks, 0, 4);
	tcase_add_test(tc, test_placed_counts);
	tcase_add_test(tc, test_declined);
	tcase_add_test(tc, test_ahs_not_offered);
	tcase_add_test(tc, test_data_digest_error);
	tcase_add_test(tc, test_header_digest_error);
	tcase_add_test(tc, test_fini_while_placing);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(tcp_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
