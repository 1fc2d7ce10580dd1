/*
 * Unit tests for common/iwarp: the MPA, DDP and RDMAP wire codec of the
 * soft provider. Every vector is written out by hand, byte by byte, from
 * the RFCs' figures:
 *   MPA Request/Reply frame     RFC 5044 §7.1 (Key, M C R Res, Rev,
 *                               PD_Length, Private Data)
 *   IRD/ORD header              RFC 6581 (A B IRD, C D ORD at the start of
 *                               the private data, Rev 2)
 *   FPDU                        RFC 5044 §4.1 (ULPDU_Length, ULPDU, PAD,
 *                               CRC)
 *   DDP control, headers        RFC 5041 §4.1-4.3 (T L Rsvd DV; STag, TO;
 *                               QN, MSN, MO)
 *   RDMAP control, messages     RFC 5040 §4.1, §4.2 (RV, opcode,
 *                               Invalidate STag), §4.4 (Read Request), §4.8
 *                               (Terminate)
 * and each layout is checked a second time against Linux's siw
 * (drivers/infiniband/sw/siw/iwarp.h and the iwarp_pktinfo table of
 * siw_qp.c), whose structs are transcribed below field for field.
 *
 * The CRC vectors are not taken from our own code: a bitwise CRC32C written
 * here from the definition (reflected polynomial 0x82F63B78, preset and
 * final complement) computes them, checked first against the published
 * check value and against RFC 7143 App. A.4.
 */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/be.h"
#include "common/iwarp.h"

/* "MPA ID Req Frame" and "MPA ID Rep Frame", as RFC 5044 §7.1 prints them */
#define KEY_REQ                                                                                   \
	0x4d, 0x50, 0x41, 0x20, 0x49, 0x44, 0x20, 0x52, 0x65, 0x71, 0x20, 0x46, 0x72, 0x61, 0x6d, \
		0x65
#define KEY_REP                                                                                   \
	0x4d, 0x50, 0x41, 0x20, 0x49, 0x44, 0x20, 0x52, 0x65, 0x70, 0x20, 0x46, 0x72, 0x61, 0x6d, \
		0x65

/*
 * Linux drivers/infiniband/sw/siw/iwarp.h, transcribed: field order and
 * widths (all __be16/__be32/__be64), and the mask values its enums give in
 * host order before cpu_to_be16/32. Each struct starts with the FPDU's
 * 2-byte ULPDU_Length (iwarp_ctrl.mpa_len), so a field at siw offset N is
 * at offset N - 2 of our ULPDU.
 */
struct siw_mpa_rr {
	uint8_t key[16];
	uint16_t bits;
	uint16_t pd_len;
} __attribute__((packed));

struct siw_mpa_v2_data {
	uint16_t ird;
	uint16_t ord;
} __attribute__((packed));

struct siw_iwarp_ctrl {
	uint16_t mpa_len;
	uint16_t ddp_rdmap_ctrl;
} __attribute__((packed));

struct siw_rdma_write { /* also iwarp_rdma_rresp */
	struct siw_iwarp_ctrl ctrl;
	uint32_t sink_stag;
	uint64_t sink_to;
} __attribute__((packed));

struct siw_rdma_rreq {
	struct siw_iwarp_ctrl ctrl;
	uint32_t rsvd;
	uint32_t ddp_qn;
	uint32_t ddp_msn;
	uint32_t ddp_mo;
	uint32_t sink_stag;
	uint64_t sink_to;
	uint32_t read_size;
	uint32_t source_stag;
	uint64_t source_to;
} __attribute__((packed));

struct siw_send_inv { /* iwarp_send has rsvd where this has inval_stag */
	struct siw_iwarp_ctrl ctrl;
	uint32_t inval_stag;
	uint32_t ddp_qn;
	uint32_t ddp_msn;
	uint32_t ddp_mo;
} __attribute__((packed));

struct siw_terminate {
	struct siw_iwarp_ctrl ctrl;
	uint32_t rsvd;
	uint32_t ddp_qn;
	uint32_t ddp_msn;
	uint32_t ddp_mo;
	uint32_t term_ctrl; /* layer:4 etype:4 ecode:8 flag_m flag_d flag_r rsvd:13 */
} __attribute__((packed));

#define SIW_MPA_RR_FLAG_MARKERS 0x8000
#define SIW_MPA_RR_FLAG_CRC 0x4000
#define SIW_MPA_RR_FLAG_REJECT 0x2000
#define SIW_MPA_RR_FLAG_ENHANCED 0x1000
#define SIW_MPA_RR_MASK_REVISION 0x00ff
#define SIW_MPA_V2_PEER_TO_PEER 0x8000	  /* in ird */
#define SIW_MPA_V2_ZERO_LENGTH_RTR 0x4000 /* in ird */
#define SIW_MPA_V2_RDMA_WRITE_RTR 0x8000  /* in ord */
#define SIW_MPA_V2_RDMA_READ_RTR 0x4000	  /* in ord */
#define SIW_MPA_V2_MASK_IRD_ORD 0x3fff
#define SIW_DDP_FLAG_TAGGED 0x8000
#define SIW_DDP_FLAG_LAST 0x4000
#define SIW_DDP_MASK_VERSION 0x0300
#define SIW_RDMAP_MASK_VERSION 0x00c0
#define SIW_RDMAP_MASK_OPCODE 0x000f
#define SIW_TERM_MASK_LAYER 0xf0000000u
#define SIW_TERM_MASK_ETYPE 0x0f000000u
#define SIW_TERM_MASK_ECODE 0x00ff0000u
#define SIW_TERM_FLAG_M 0x00008000u
#define SIW_TERM_FLAG_D 0x00004000u
#define SIW_TERM_FLAG_R 0x00002000u

/* sizeof minus the ULPDU_Length is our header length (RFC 5041 §4.2, §4.3). */
_Static_assert(sizeof(struct siw_mpa_rr) == IWARP_MPA_HDR_LEN, "mpa_rr");
_Static_assert(sizeof(struct siw_mpa_v2_data) == IWARP_MPA_V2_LEN, "mpa_v2_data");
_Static_assert(sizeof(struct siw_rdma_write) - 2 == IWARP_TAGGED_HDR_LEN, "rdma_write");
_Static_assert(sizeof(struct siw_send_inv) - 2 == IWARP_UNTAGGED_HDR_LEN, "send_inv");
_Static_assert(sizeof(struct siw_rdma_rreq) - 2 == IWARP_UNTAGGED_HDR_LEN + IWARP_READ_REQ_LEN,
	       "rdma_rreq");
_Static_assert(sizeof(struct siw_terminate) - 2 == IWARP_UNTAGGED_HDR_LEN + IWARP_TERM_CTRL_LEN,
	       "terminate");

#define SIW_OFF(type, field) (offsetof(struct type, field) - 2)

/* CRC32C from its definition, independent of isa-l and of digest.c. */
static uint32_t ref_crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

/* Decoders get an exact-size heap copy, so ASan catches any read past @len. */
static uint8_t *dup_exact(const uint8_t *bytes, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(copy);
	if (len)
		memcpy(copy, bytes, len);
	return copy;
}

static int mpa_decode_exact(const uint8_t *bytes, size_t len, struct iwarp_mpa *m)
{
	uint8_t *copy = dup_exact(bytes, len);
	int ret = iwarp_mpa_decode(copy, len, m);

	/* pdata points into the copy: rebase it onto @bytes before freeing. */
	if (ret >= 0 && m->pdata)
		m->pdata = bytes + (m->pdata - copy);
	free(copy);
	return ret;
}

static int hdr_decode_exact(const uint8_t *bytes, size_t len, struct iwarp_hdr *h)
{
	uint8_t *copy = dup_exact(bytes, len);
	int ret = iwarp_hdr_decode(copy, len, h);

	free(copy);
	return ret;
}

static int term_decode_exact(const uint8_t *bytes, size_t len, struct iwarp_term *t)
{
	uint8_t *copy = dup_exact(bytes, len);
	int ret = iwarp_term_decode(copy, len, t);

	if (ret == 0 && t->hdrs)
		t->hdrs = bytes + (t->hdrs - copy);
	free(copy);
	return ret;
}

static int fpdu_parse_exact(const uint8_t *bytes, size_t len, bool crc, uint16_t max)
{
	uint8_t *copy = dup_exact(bytes, len);
	struct iwarp_fpdu f;
	int ret = iwarp_fpdu_parse(copy, len, crc, max, &f);

	free(copy);
	return ret;
}

static void assert_mpa_encodes_to(const struct iwarp_mpa *m, const uint8_t *want, size_t len)
{
	uint8_t out[IWARP_MPA_FRAME_MAX + 8];

	memset(out, 0xee, sizeof(out));
	ck_assert_int_eq(iwarp_mpa_encode(m, out, sizeof(out)), (int)len);
	ck_assert_mem_eq(out, want, len);
	ck_assert_uint_eq(out[len], 0xee);
}

static void assert_hdr_encodes_to(const struct iwarp_hdr *h, const uint8_t *want, size_t len)
{
	uint8_t out[64];

	memset(out, 0xee, sizeof(out));
	ck_assert_int_eq(iwarp_hdr_encode(h, out, sizeof(out)), (int)len);
	ck_assert_mem_eq(out, want, len);
	ck_assert_uint_eq(out[len], 0xee);
}

/* The reference CRC is the one RFC 5044 means: check values first. */
START_TEST(test_crc_reference)
{
	static const uint8_t zeros[32];

	ck_assert_uint_eq(ref_crc32c((const uint8_t *)"123456789", 9), 0xe3069283u);
	/* RFC 7143 App. A.4: 32 bytes of zeros, sent as aa 36 91 8a. */
	ck_assert_uint_eq(ref_crc32c(zeros, sizeof(zeros)), 0x8a9136aau);
	ck_assert_uint_eq(digest_crc32c(zeros, sizeof(zeros)), 0x8a9136aau);
}
END_TEST

/* RFC 5044 §7.1: Rev 1 Request, CRC wanted, no private data. */
START_TEST(test_mpa_req_v1)
{
	static const uint8_t bytes[] = {KEY_REQ, 0x40, 0x01, 0x00, 0x00};
	struct iwarp_mpa m;

	ck_assert_int_eq(mpa_decode_exact(bytes, sizeof(bytes), &m), 20);
	ck_assert(!m.reply);
	ck_assert(!m.markers);
	ck_assert(m.crc);
	ck_assert(!m.reject);
	ck_assert_uint_eq(m.rev, IWARP_MPA_REV1);
	ck_assert(!m.enhanced);
	ck_assert_uint_eq(m.pdata_len, 0);
	ck_assert_ptr_null(m.pdata);
	assert_mpa_encodes_to(&m, bytes, sizeof(bytes));
	ck_assert_int_eq(iwarp_mpa_len(bytes, sizeof(bytes)), 20);
}
END_TEST

/*
 * RFC 6581: Rev 2 Request with the enhanced flag, CRC, peer-to-peer, RTR as
 * zero-length RDMA Write or Read, IRD 16, ORD 16; then 4 bytes of the
 * ULP's own private data (an iSER CM header with ZBVA not supported).
 * PD_Length 8 counts the IRD/ORD header.
 */
static const uint8_t req_v2[] = {
	KEY_REQ, 0x50, 0x02, 0x00, 0x08, 0x80, 0x10, 0xc0, 0x10, 0x80, 0x00, 0x00, 0x00,
};

START_TEST(test_mpa_req_v2)
{
	const uint8_t *v2 = req_v2 + IWARP_MPA_HDR_LEN;
	uint16_t bits = be_get16(req_v2 + offsetof(struct siw_mpa_rr, bits));
	uint16_t ird = be_get16(v2 + offsetof(struct siw_mpa_v2_data, ird));
	uint16_t ord = be_get16(v2 + offsetof(struct siw_mpa_v2_data, ord));
	struct iwarp_mpa m;

	ck_assert_int_eq(mpa_decode_exact(req_v2, sizeof(req_v2), &m), 28);
	ck_assert(!m.reply);
	ck_assert(m.crc);
	ck_assert_uint_eq(m.rev, IWARP_MPA_REV2);
	ck_assert(m.enhanced);
	ck_assert(m.p2p);
	ck_assert_uint_eq(m.rtr, IWARP_MPA_RTR_WRITE | IWARP_MPA_RTR_READ);
	ck_assert_uint_eq(m.ird, 16);
	ck_assert_uint_eq(m.ord, 16);
	ck_assert_uint_eq(m.pdata_len, 4);
	ck_assert_ptr_eq(m.pdata, req_v2 + 24);
	assert_mpa_encodes_to(&m, req_v2, sizeof(req_v2));

	/* siw reads the same frame: its flag, revision and v2 masks. */
	ck_assert_mem_eq(req_v2 + offsetof(struct siw_mpa_rr, key), "MPA ID Req Frame", 16);
	ck_assert_uint_eq(bits & SIW_MPA_RR_MASK_REVISION, 2);
	ck_assert(bits & SIW_MPA_RR_FLAG_ENHANCED);
	ck_assert(bits & SIW_MPA_RR_FLAG_CRC);
	ck_assert(!(bits & (SIW_MPA_RR_FLAG_MARKERS | SIW_MPA_RR_FLAG_REJECT)));
	ck_assert_uint_eq(be_get16(req_v2 + offsetof(struct siw_mpa_rr, pd_len)), 8);
	ck_assert(ird & SIW_MPA_V2_PEER_TO_PEER);
	ck_assert(!(ird & SIW_MPA_V2_ZERO_LENGTH_RTR));
	ck_assert_uint_eq(ird & SIW_MPA_V2_MASK_IRD_ORD, 16);
	ck_assert(ord & SIW_MPA_V2_RDMA_WRITE_RTR);
	ck_assert(ord & SIW_MPA_V2_RDMA_READ_RTR);
	ck_assert_uint_eq(ord & SIW_MPA_V2_MASK_IRD_ORD, 16);
}
END_TEST

/* RFC 6581: the Reply picks one RTR (Write), IRD 8, ORD 8, no ULP data. */
START_TEST(test_mpa_rep_v2)
{
	static const uint8_t bytes[] = {KEY_REP, 0x50, 0x02, 0x00, 0x04, 0x80, 0x08, 0x80, 0x08};
	struct iwarp_mpa m = {
		.reply = true,
		.crc = true,
		.rev = IWARP_MPA_REV2,
		.enhanced = true,
		.p2p = true,
		.rtr = IWARP_MPA_RTR_WRITE,
		.ird = 8,
		.ord = 8,
	};

	assert_mpa_encodes_to(&m, bytes, sizeof(bytes));
	memset(&m, 0xee, sizeof(m));
	ck_assert_int_eq(mpa_decode_exact(bytes, sizeof(bytes), &m), 24);
	ck_assert(m.reply);
	ck_assert(!m.reject);
	ck_assert(m.enhanced && m.p2p);
	ck_assert_uint_eq(m.rtr, IWARP_MPA_RTR_WRITE);
	ck_assert_uint_eq(m.ird, 8);
	ck_assert_uint_eq(m.ord, 8);
	ck_assert_uint_eq(m.pdata_len, 0);
	ck_assert_ptr_null(m.pdata);
}
END_TEST

/* B, the zero-length FPDU RTR, and the 14-bit maxima (RFC 6581). */
START_TEST(test_mpa_v2_send_rtr_and_limits)
{
	static const uint8_t bytes[] = {KEY_REQ, 0x10, 0x02, 0x00, 0x04, 0x7f, 0xff, 0x3f, 0xff};
	struct iwarp_mpa m;

	ck_assert_int_eq(mpa_decode_exact(bytes, sizeof(bytes), &m), 24);
	ck_assert(!m.crc);
	ck_assert(!m.p2p);
	ck_assert_uint_eq(m.rtr, IWARP_MPA_RTR_SEND);
	ck_assert_uint_eq(m.ird, IWARP_MPA_IRD_ORD_MAX);
	ck_assert_uint_eq(m.ord, IWARP_MPA_IRD_ORD_MAX);
	assert_mpa_encodes_to(&m, bytes, sizeof(bytes));
}
END_TEST

/* RFC 5044 §7.1: a rejecting Reply, Rev 1, with a reason as private data. */
START_TEST(test_mpa_reject)
{
	static const uint8_t bytes[] = {KEY_REP, 0x20, 0x01, 0x00, 0x02, 'n', 'o'};
	struct iwarp_mpa m;

	ck_assert_int_eq(mpa_decode_exact(bytes, sizeof(bytes), &m), 22);
	ck_assert(m.reply);
	ck_assert(m.reject);
	ck_assert(!m.crc);
	ck_assert_uint_eq(m.pdata_len, 2);
	ck_assert_mem_eq(m.pdata, "no", 2);
	assert_mpa_encodes_to(&m, bytes, sizeof(bytes));
}
END_TEST

/*
 * RFC 5044 §7.1: Res is ignored on receipt and sent as 0; R means nothing in
 * a Request; in Rev 1 the enhanced bit is still Res (siw also ignores it, and
 * its MPA_RR_FLAG_GSO_EXP 0x08 is Res to the RFC). Trailing bytes after the
 * frame are not part of it.
 */
START_TEST(test_mpa_ignored_bits)
{
	static const uint8_t in[] = {KEY_REQ, 0x7f, 0x01, 0x00, 0x01, 0xaa, 0xbb, 0xcc};
	static const uint8_t want[] = {KEY_REQ, 0x40, 0x01, 0x00, 0x01, 0xaa};
	static const uint8_t in2[] = {KEY_REP, 0x2f, 0x02, 0x00, 0x00};
	static const uint8_t want2[] = {KEY_REP, 0x20, 0x02, 0x00, 0x00};
	struct iwarp_mpa m;

	ck_assert_int_eq(mpa_decode_exact(in, sizeof(in), &m), 21);
	ck_assert(!m.reject);
	ck_assert(!m.enhanced);
	ck_assert(m.crc);
	ck_assert_uint_eq(m.pdata_len, 1);
	assert_mpa_encodes_to(&m, want, sizeof(want));

	/* Rev 2 without the enhanced flag: no IRD/ORD header, data is ULP's. */
	ck_assert_int_eq(mpa_decode_exact(in2, sizeof(in2), &m), 20);
	ck_assert(m.reject);
	ck_assert(!m.enhanced);
	ck_assert_uint_eq(m.rev, 2);
	assert_mpa_encodes_to(&m, want2, sizeof(want2));
}
END_TEST

START_TEST(test_mpa_errors)
{
	uint8_t bytes[IWARP_MPA_FRAME_MAX + 1] = {KEY_REQ, 0x40, 0x01, 0x00, 0x00};
	struct iwarp_mpa m;

	/* Every prefix of the header: wait for more. */
	for (size_t n = 0; n < IWARP_MPA_HDR_LEN; n++) {
		ck_assert_int_eq(mpa_decode_exact(bytes, n, &m), -ENODATA);
		ck_assert_int_eq(iwarp_mpa_len(bytes, n), -ENODATA);
	}
	/* A key that is neither, e.g. lower case. */
	bytes[0] = 'm';
	ck_assert_int_eq(mpa_decode_exact(bytes, 20, &m), -EPROTO);
	ck_assert_int_eq(iwarp_mpa_len(bytes, 20), -EPROTO);
	bytes[0] = 0x4d;
	/* Rev 0 (the RDMA Consortium's MPA, which siw still accepts) and 3. */
	bytes[17] = 0;
	ck_assert_int_eq(mpa_decode_exact(bytes, 20, &m), -EPROTO);
	ck_assert(m.crc); /* enough to answer with a rejecting Reply */
	bytes[17] = 3;
	ck_assert_int_eq(mpa_decode_exact(bytes, 20, &m), -EPROTO);
	ck_assert_int_eq(iwarp_mpa_len(bytes, 20), 20); /* the length needs no Rev */
	bytes[17] = 1;
	/* PD_Length 512 is the maximum; 513 and 0xffff are not. */
	bytes[18] = 0x02;
	bytes[19] = 0x00;
	ck_assert_int_eq(iwarp_mpa_len(bytes, 20), 532);
	ck_assert_int_eq(mpa_decode_exact(bytes, 531, &m), -ENODATA);
	ck_assert_int_eq(mpa_decode_exact(bytes, 532, &m), 532);
	bytes[19] = 0x01;
	ck_assert_int_eq(mpa_decode_exact(bytes, 533, &m), -EMSGSIZE);
	ck_assert_int_eq(iwarp_mpa_len(bytes, 20), -EMSGSIZE);
	bytes[18] = 0xff;
	bytes[19] = 0xff;
	ck_assert_int_eq(mpa_decode_exact(bytes, 20, &m), -EMSGSIZE);
	/* Enhanced but the private data cannot hold the IRD/ORD header. */
	bytes[16] = 0x10;
	bytes[17] = 2;
	bytes[18] = 0;
	bytes[19] = 3;
	ck_assert_int_eq(mpa_decode_exact(bytes, 23, &m), -EMSGSIZE);
	ck_assert_uint_eq(m.rev, 2);
	bytes[19] = 4;
	ck_assert_int_eq(mpa_decode_exact(bytes, 23, &m), -ENODATA);
	ck_assert_int_eq(mpa_decode_exact(bytes, 24, &m), 24);
}
END_TEST

START_TEST(test_mpa_encode_errors)
{
	uint8_t out[IWARP_MPA_FRAME_MAX + 4];
	uint8_t pd[IWARP_MPA_PD_MAX + 1] = {0};
	struct iwarp_mpa ok = {.crc = true, .rev = 1}, m;

	memset(out, 0xee, sizeof(out));
	m = ok;
	m.markers = true; /* markers are declined, never offered */
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), -EINVAL);
	m = ok;
	m.reject = true; /* R only exists in a Reply */
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), -EINVAL);
	m.reply = true;
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, 19), -ENOSPC);
	m = ok;
	m.rev = 0;
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), -EINVAL);
	m.rev = 3;
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), -EINVAL);
	m = ok;
	m.enhanced = true; /* needs Rev 2 */
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), -EINVAL);
	m.rev = 2;
	m.ird = 0x4000;
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), -EINVAL);
	m.ird = 0;
	m.ord = 0x4000;
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), -EINVAL);
	m.ord = 0;
	m.rtr = 0x8;
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), -EINVAL);
	m = ok;
	m.pdata_len = 1; /* with no pdata */
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), -EINVAL);
	for (size_t i = 0; i < sizeof(out); i++)
		ck_assert_uint_eq(out[i], 0xee);

	/* 512 bytes of private data in all: 508 after an IRD/ORD header. */
	m = ok;
	m.pdata = pd;
	m.pdata_len = IWARP_MPA_PD_MAX;
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), IWARP_MPA_FRAME_MAX);
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, IWARP_MPA_FRAME_MAX - 1), -ENOSPC);
	m.pdata_len = IWARP_MPA_PD_MAX + 1;
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), -EMSGSIZE);
	m.rev = 2;
	m.enhanced = true;
	m.pdata_len = IWARP_MPA_PD_MAX - IWARP_MPA_V2_LEN;
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), IWARP_MPA_FRAME_MAX);
	ck_assert_uint_eq(be_get16(out + 18), IWARP_MPA_PD_MAX);
	m.pdata_len++;
	ck_assert_int_eq(iwarp_mpa_encode(&m, out, sizeof(out)), -EMSGSIZE);
}
END_TEST

/*
 * DESIGN §5, one port: the first bytes decide. An iSCSI connection starts
 * with a BHS whose byte 0 is never 'M' (0x4d would be an immediate opcode
 * 0x0d, unassigned in RFC 7143 §11.2.1.2), so it is told apart at once.
 */
START_TEST(test_mpa_is_request)
{
	static const uint8_t req[] = {KEY_REQ, 0x40, 0x01};
	static const uint8_t rep[] = {KEY_REP};
	static const uint8_t login[] = {0x43, 0x87, 0x00, 0x00};

	for (size_t n = 0; n < IWARP_MPA_KEY_LEN; n++)
		ck_assert_int_eq(iwarp_mpa_is_request(req, n), -ENODATA);
	ck_assert_int_eq(iwarp_mpa_is_request(req, 16), 1);
	ck_assert_int_eq(iwarp_mpa_is_request(req, sizeof(req)), 1);
	/* "MPA ID Re" is common to both keys; byte 9 tells them apart. */
	ck_assert_int_eq(iwarp_mpa_is_request(rep, 9), -ENODATA);
	ck_assert_int_eq(iwarp_mpa_is_request(rep, 10), 0);
	ck_assert_int_eq(iwarp_mpa_is_request(rep, 16), 0);
	ck_assert_int_eq(iwarp_mpa_is_request(login, 1), 0);
	ck_assert_int_eq(iwarp_mpa_is_request(login, sizeof(login)), 0);
	ck_assert_int_eq(iwarp_mpa_is_request("MPA ID Req Framf", 16), 0);
}
END_TEST

/*
 * RFC 5044 §4.1: an RDMA Write of "abc" (STag 0x11223344, TO
 * 0x0102030405060708) with CRC: ULPDU_Length 17, one PAD byte, then the
 * CRC32C of the 20 bytes before it, least significant byte first.
 */
static const uint8_t fpdu_write[] = {
	0x00, 0x11,					/* ULPDU_Length 17 */
	0xc1, 0x40,					/* T L DV=1, RV=1 Write */
	0x11, 0x22, 0x33, 0x44,				/* STag */
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* TO */
	0x61, 0x62, 0x63,				/* "abc" */
	0x00,						/* PAD */
	0xca, 0x51, 0x92, 0xe6,				/* CRC 0xe69251ca */
};

/*
 * Where the CRC goes. RFC 5044 computes MPA's CRC as iSCSI's (RFC 3720
 * §12.1, now RFC 7143 §13.1), whose App. A.4 shows the value 0x8A9136AA
 * sent as aa 36 91 8a: least significant byte first, unlike every other
 * field. siw does the same (siw_crc_final() is put_unaligned_le32(~crc)),
 * whatever its struct mpa_trailer's __be32 suggests. And with the CRC so
 * stored, the CRC32C over the whole FPDU is the constant residue
 * 0x48674BC7, as for any reflected CRC sent low bit first.
 */
START_TEST(test_fpdu_crc_placement)
{
	uint32_t crc = ref_crc32c(fpdu_write, 20);

	ck_assert_uint_eq(crc, 0xe69251cau);
	ck_assert_uint_eq(fpdu_write[20], crc & 0xff);
	ck_assert_uint_eq(fpdu_write[23], crc >> 24);
	ck_assert_uint_eq(ref_crc32c(fpdu_write, sizeof(fpdu_write)), 0x48674bc7u);
}
END_TEST

START_TEST(test_fpdu_write)
{
	uint8_t buf[64];
	struct iwarp_fpdu f;
	struct iwarp_hdr h;

	ck_assert_int_eq(iwarp_fpdu_len(fpdu_write, 2, IWARP_ULPDU_MAX), 24);
	ck_assert_int_eq(fpdu_parse_exact(fpdu_write, sizeof(fpdu_write), true, 17), 24);
	ck_assert_int_eq(iwarp_fpdu_parse(fpdu_write, sizeof(fpdu_write), true, 17, &f), 24);
	ck_assert_ptr_eq(f.ulpdu, fpdu_write + 2);
	ck_assert_uint_eq(f.ulpdu_len, 17);
	ck_assert_uint_eq(f.len, 24);

	ck_assert_int_eq(hdr_decode_exact(f.ulpdu, f.ulpdu_len, &h), IWARP_TAGGED_HDR_LEN);
	ck_assert(h.tagged && h.last);
	ck_assert_uint_eq(h.opcode, IWARP_OP_WRITE);
	ck_assert_uint_eq(h.stag, 0x11223344u);
	ck_assert_uint_eq(h.to, 0x0102030405060708ull);

	/* Build it again: header, ULPDU, then seal in place. */
	memset(buf, 0xee, sizeof(buf));
	ck_assert_int_eq(iwarp_fpdu_hdr_encode(buf, sizeof(buf), 17), 2);
	ck_assert_int_eq(iwarp_hdr_encode(&h, buf + 2, sizeof(buf) - 2), 14);
	memcpy(buf + 16, "abc", 3);
	ck_assert_int_eq(iwarp_fpdu_seal(buf, sizeof(buf), true), 24);
	ck_assert_mem_eq(buf, fpdu_write, sizeof(fpdu_write));
	ck_assert_uint_eq(buf[24], 0xee);
}
END_TEST

/* Each byte of the FPDU, PAD and CRC included, is covered by the CRC. */
START_TEST(test_fpdu_crc_mismatch)
{
	uint8_t bad[sizeof(fpdu_write)];

	for (size_t i = 2; i < sizeof(bad); i++) {
		memcpy(bad, fpdu_write, sizeof(bad));
		bad[i] ^= 0x01;
		ck_assert_int_eq(fpdu_parse_exact(bad, sizeof(bad), true, IWARP_ULPDU_MAX),
				 -EBADMSG);
		/* Without CRC the field is not checked, nor is PAD. */
		ck_assert_int_eq(fpdu_parse_exact(bad, sizeof(bad), false, IWARP_ULPDU_MAX), 24);
	}
}
END_TEST

/*
 * A Send without CRC (RFC 5044 §4.1: the CRC field is still there, and we
 * send it as zero): QN 0, MSN 5, MO 0, 8 bytes of payload; 2 + 26 is a
 * multiple of 4, so no PAD.
 */
static const uint8_t fpdu_send[] = {
	0x00, 0x1a,					/* ULPDU_Length 26 */
	0x41, 0x43,					/* L DV=1, RV=1 Send */
	0x00, 0x00, 0x00, 0x00,				/* reserved (no Invalidate STag) */
	0x00, 0x00, 0x00, 0x00,				/* QN 0 */
	0x00, 0x00, 0x00, 0x05,				/* MSN 5 */
	0x00, 0x00, 0x00, 0x00,				/* MO 0 */
	0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* payload */
	0x00, 0x00, 0x00, 0x00,				/* CRC field, not used */
};

START_TEST(test_fpdu_send_no_crc)
{
	uint8_t buf[sizeof(fpdu_send)];
	struct iwarp_fpdu f;
	struct iwarp_hdr h;

	ck_assert_int_eq(iwarp_fpdu_parse(fpdu_send, sizeof(fpdu_send), false, 26, &f), 32);
	ck_assert_int_eq(fpdu_parse_exact(fpdu_send, sizeof(fpdu_send), true, 26), -EBADMSG);
	ck_assert_int_eq(fpdu_parse_exact(fpdu_send, sizeof(fpdu_send), false, 25), -EMSGSIZE);
	ck_assert_int_eq(hdr_decode_exact(f.ulpdu, f.ulpdu_len, &h), IWARP_UNTAGGED_HDR_LEN);
	ck_assert(!h.tagged && h.last);
	ck_assert_uint_eq(h.opcode, IWARP_OP_SEND);
	ck_assert_uint_eq(h.qn, IWARP_QN_SEND);
	ck_assert_uint_eq(h.msn, 5);
	ck_assert_uint_eq(h.mo, 0);

	memcpy(buf, fpdu_send, 28);
	memset(buf + 28, 0xee, 4);
	ck_assert_int_eq(iwarp_fpdu_seal(buf, sizeof(buf), false), 32);
	ck_assert_mem_eq(buf, fpdu_send, sizeof(fpdu_send));
	/* Sealed with CRC, it parses with CRC. */
	ck_assert_int_eq(iwarp_fpdu_seal(buf, sizeof(buf), true), 32);
	ck_assert_uint_eq(digest_load(buf + 28), ref_crc32c(buf, 28));
	ck_assert_int_eq(fpdu_parse_exact(buf, sizeof(buf), true, 26), 32);
}
END_TEST

/* PAD makes 2 + ULPDU_Length + PAD a multiple of 4 (RFC 5044 §4.1). */
START_TEST(test_fpdu_pad)
{
	static const unsigned int pad[8] = {2, 1, 0, 3, 2, 1, 0, 3};

	for (size_t n = 0; n < 8; n++) {
		ck_assert_uint_eq(iwarp_fpdu_pad(n), pad[n]);
		ck_assert_uint_eq(iwarp_fpdu_size(n), 2 + n + pad[n] + 4);
		ck_assert_uint_eq(iwarp_fpdu_size(n) % 4, 0);
	}
	ck_assert_uint_eq(iwarp_fpdu_size(IWARP_ULPDU_MAX), 2 + 65535 + 3 + 4);
}
END_TEST

START_TEST(test_fpdu_framing_errors)
{
	static const uint8_t big[2] = {0xff, 0xff};
	uint8_t buf[16] = {0};

	/* Every prefix of a whole FPDU: wait for more. */
	ck_assert_int_eq(iwarp_fpdu_len(fpdu_write, 0, IWARP_ULPDU_MAX), -ENODATA);
	ck_assert_int_eq(iwarp_fpdu_len(fpdu_write, 1, IWARP_ULPDU_MAX), -ENODATA);
	for (size_t n = 0; n < sizeof(fpdu_write); n++)
		ck_assert_int_eq(fpdu_parse_exact(fpdu_write, n, true, IWARP_ULPDU_MAX), -ENODATA);
	/* The receiver's maximum, not the 16-bit field, is the limit. */
	ck_assert_int_eq(iwarp_fpdu_len(big, 2, IWARP_ULPDU_MAX), 65544);
	ck_assert_int_eq(iwarp_fpdu_len(big, 2, 0xfffe), -EMSGSIZE);
	ck_assert_int_eq(iwarp_fpdu_len(fpdu_write, 2, 16), -EMSGSIZE);
	ck_assert_int_eq(fpdu_parse_exact(fpdu_write, sizeof(fpdu_write), true, 16), -EMSGSIZE);

	ck_assert_int_eq(iwarp_fpdu_hdr_encode(buf, 1, 0), -ENOSPC);
	ck_assert_int_eq(iwarp_fpdu_hdr_encode(buf, 2, 65536), -EMSGSIZE);
	ck_assert_int_eq(iwarp_fpdu_hdr_encode(buf, 2, 65535), 2);
	ck_assert_uint_eq(be_get16(buf), 0xffff);
	/* Seal: the buffer must hold what the header announces, then room. */
	ck_assert_int_eq(iwarp_fpdu_seal(buf, 1, false), -EINVAL);
	ck_assert_int_eq(iwarp_fpdu_seal(buf, sizeof(buf), false), -EINVAL);
	ck_assert_int_eq(iwarp_fpdu_hdr_encode(buf, sizeof(buf), 6), 2);
	ck_assert_int_eq(iwarp_fpdu_seal(buf, 11, false), -ENOSPC);
	ck_assert_int_eq(iwarp_fpdu_seal(buf, 12, false), 12);
}
END_TEST

/* A sender that gathers header and payload from different buffers gets
 * the same bytes as one that seals in place. */
START_TEST(test_fpdu_trailer_gathered)
{
	uint8_t trailer[IWARP_FPDU_TRAILER_MAX];
	struct digest_ctx ctx;

	digest_begin(&ctx);
	digest_update(&ctx, fpdu_write, 16); /* ULPDU_Length and headers */
	digest_update(&ctx, "abc", 3);	     /* payload, from elsewhere */
	memset(trailer, 0xee, sizeof(trailer));
	ck_assert_uint_eq(iwarp_fpdu_trailer(&ctx, 17, trailer), 5);
	ck_assert_mem_eq(trailer, fpdu_write + 19, 5);
	/* ctx is unchanged: the receiver's check of the same bytes. */
	digest_update(&ctx, fpdu_write + 19, 1);
	ck_assert_uint_eq(digest_final(&ctx), digest_load(fpdu_write + 20));

	memset(trailer, 0xee, sizeof(trailer));
	ck_assert_uint_eq(iwarp_fpdu_trailer(NULL, 26, trailer), 4);
	ck_assert_mem_eq(trailer, fpdu_send + 28, 4);
	ck_assert_uint_eq(iwarp_fpdu_trailer(NULL, 0, trailer), 6);
	for (int i = 0; i < 6; i++)
		ck_assert_uint_eq(trailer[i], 0);
}
END_TEST

/*
 * RFC 5040 §4.4: RDMA Read Request, untagged on QN 1, MSN 1, MO 0, then
 * Data Sink STag 0xaabbccdd, Data Sink TO 0x10000000, RDMA Read Message
 * Size 4096, Data Source STag 0x55667788, Data Source TO 0x7f0000001000.
 */
static const uint8_t fpdu_rreq[] = {
	0x00, 0x2e,					/* ULPDU_Length 46 */
	0x41, 0x41,					/* L DV=1, RV=1 Read Request */
	0x00, 0x00, 0x00, 0x00,				/* reserved */
	0x00, 0x00, 0x00, 0x01,				/* QN 1 */
	0x00, 0x00, 0x00, 0x01,				/* MSN 1 */
	0x00, 0x00, 0x00, 0x00,				/* MO 0 */
	0xaa, 0xbb, 0xcc, 0xdd,				/* Data Sink STag */
	0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, /* Data Sink TO */
	0x00, 0x00, 0x10, 0x00,				/* RDMA Read Message Size */
	0x55, 0x66, 0x77, 0x88,				/* Data Source STag */
	0x00, 0x00, 0x7f, 0x00, 0x00, 0x00, 0x10, 0x00, /* Data Source TO */
	0xcd, 0xd8, 0xa0, 0x76,				/* CRC */
};

START_TEST(test_hdr_read_request)
{
	const uint8_t *ulpdu = fpdu_rreq + 2;
	struct iwarp_hdr h;

	ck_assert_uint_eq(digest_load(fpdu_rreq + 48), ref_crc32c(fpdu_rreq, 48));
	ck_assert_int_eq(fpdu_parse_exact(fpdu_rreq, sizeof(fpdu_rreq), true, 46), 52);
	ck_assert_int_eq(hdr_decode_exact(ulpdu, 46, &h), 46);
	ck_assert(!h.tagged && h.last);
	ck_assert_uint_eq(h.opcode, IWARP_OP_READ_REQ);
	ck_assert_uint_eq(h.qn, IWARP_QN_READ_REQ);
	ck_assert_uint_eq(h.msn, 1);
	ck_assert_uint_eq(h.mo, 0);
	ck_assert_uint_eq(h.rreq.sink_stag, 0xaabbccddu);
	ck_assert_uint_eq(h.rreq.sink_to, 0x10000000u);
	ck_assert_uint_eq(h.rreq.size, 4096);
	ck_assert_uint_eq(h.rreq.src_stag, 0x55667788u);
	ck_assert_uint_eq(h.rreq.src_to, 0x7f0000001000ull);
	ck_assert_uint_eq(h.stag, 0);
	ck_assert_uint_eq(h.to, 0);
	assert_hdr_encodes_to(&h, ulpdu, 46);

	/* siw's struct iwarp_rdma_rreq finds each field where we put it. */
	ck_assert_uint_eq(be_get32(ulpdu + SIW_OFF(siw_rdma_rreq, ddp_qn)), 1);
	ck_assert_uint_eq(be_get32(ulpdu + SIW_OFF(siw_rdma_rreq, ddp_msn)), 1);
	ck_assert_uint_eq(be_get32(ulpdu + SIW_OFF(siw_rdma_rreq, sink_stag)), 0xaabbccddu);
	ck_assert_uint_eq(be_get64(ulpdu + SIW_OFF(siw_rdma_rreq, sink_to)), 0x10000000u);
	ck_assert_uint_eq(be_get32(ulpdu + SIW_OFF(siw_rdma_rreq, read_size)), 4096);
	ck_assert_uint_eq(be_get32(ulpdu + SIW_OFF(siw_rdma_rreq, source_stag)), 0x55667788u);
	ck_assert_uint_eq(be_get64(ulpdu + SIW_OFF(siw_rdma_rreq, source_to)), 0x7f0000001000ull);
	/* One byte short of the Read Request header. */
	ck_assert_int_eq(hdr_decode_exact(ulpdu, 45, &h), -EMSGSIZE);
}
END_TEST

/* RFC 5040 §4.5: RDMA Read Response, tagged, not the last segment. */
START_TEST(test_hdr_read_response)
{
	static const uint8_t seg[] = {
		0x81, 0x42,					/* T DV=1, RV=1 Read Response */
		0xaa, 0xbb, 0xcc, 0xdd,				/* STag (Data Sink) */
		0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x08, 0x00, /* TO */
		0xde, 0xad,					/* payload */
	};
	struct iwarp_hdr h;

	ck_assert_int_eq(hdr_decode_exact(seg, sizeof(seg), &h), 14);
	ck_assert(h.tagged);
	ck_assert(!h.last);
	ck_assert_uint_eq(h.opcode, IWARP_OP_READ_RESP);
	ck_assert_uint_eq(h.stag, 0xaabbccddu);
	ck_assert_uint_eq(h.to, 0x10000800u);
	ck_assert_uint_eq(h.qn, 0);
	assert_hdr_encodes_to(&h, seg, 14);
	ck_assert_uint_eq(be_get32(seg + SIW_OFF(siw_rdma_write, sink_stag)), 0xaabbccddu);
	ck_assert_uint_eq(be_get64(seg + SIW_OFF(siw_rdma_write, sink_to)), 0x10000800u);
}
END_TEST

/* RFC 5040 §4.1: the Invalidate STag in RsvdULP of the two Invalidate
 * Sends; Send with SE has none. */
START_TEST(test_hdr_send_variants)
{
	static const uint8_t inv[] = {
		0x41, 0x44,		/* L DV=1, RV=1 Send with Invalidate */
		0x12, 0x34, 0x56, 0x78, /* Invalidate STag */
		0x00, 0x00, 0x00, 0x00, /* QN 0 */
		0x00, 0x00, 0x00, 0x09, /* MSN 9 */
		0x00, 0x00, 0x00, 0x00, /* MO 0 */
	};
	static const uint8_t se_inv[] = {
		0x01, 0x46,		/* DV=1 (not last), RV=1 Send with SE and Inv. */
		0x87, 0x65, 0x43, 0x21, /* Invalidate STag */
		0x00, 0x00, 0x00, 0x00, /* QN 0 */
		0x00, 0x00, 0x00, 0x0a, /* MSN 10 */
		0x00, 0x00, 0x10, 0x00, /* MO 4096 */
	};
	static const uint8_t se[] = {
		0x41, 0x45,		/* L DV=1, RV=1 Send with SE */
		0x00, 0x00, 0x00, 0x00, /* reserved */
		0x00, 0x00, 0x00, 0x00, /* QN 0 */
		0xff, 0xff, 0xff, 0xff, /* MSN 2^32 - 1 */
		0x00, 0x00, 0x00, 0x00, /* MO 0 */
	};
	struct iwarp_hdr h;

	ck_assert_int_eq(hdr_decode_exact(inv, sizeof(inv), &h), 18);
	ck_assert_uint_eq(h.opcode, IWARP_OP_SEND_INV);
	ck_assert_uint_eq(h.inv_stag, 0x12345678u);
	ck_assert_uint_eq(h.msn, 9);
	assert_hdr_encodes_to(&h, inv, 18);
	ck_assert_uint_eq(be_get32(inv + SIW_OFF(siw_send_inv, inval_stag)), 0x12345678u);
	ck_assert_uint_eq(be_get32(inv + SIW_OFF(siw_send_inv, ddp_msn)), 9);

	ck_assert_int_eq(hdr_decode_exact(se_inv, sizeof(se_inv), &h), 18);
	ck_assert_uint_eq(h.opcode, IWARP_OP_SEND_SE_INV);
	ck_assert(!h.last);
	ck_assert_uint_eq(h.inv_stag, 0x87654321u);
	ck_assert_uint_eq(h.msn, 10);
	ck_assert_uint_eq(h.mo, 4096);
	assert_hdr_encodes_to(&h, se_inv, 18);

	ck_assert_int_eq(hdr_decode_exact(se, sizeof(se), &h), 18);
	ck_assert_uint_eq(h.opcode, IWARP_OP_SEND_SE);
	ck_assert_uint_eq(h.inv_stag, 0);
	ck_assert_uint_eq(h.msn, 0xffffffffu);
	assert_hdr_encodes_to(&h, se, 18);
}
END_TEST

/*
 * The first two header bytes of each opcode against siw's iwarp_pktinfo
 * (siw_qp.c): DDP_FLAG_TAGGED and DDP_FLAG_LAST where the opcode is tagged,
 * DDP_VERSION << 8, RDMAP_VERSION << 6, opcode. Also RFC 5040 §4.2's table:
 * which opcodes are tagged, their QN, and the header lengths.
 */
START_TEST(test_hdr_siw_ctrl_words)
{
	static const uint16_t siw_ctrl[8] = {0xc140, 0x4141, 0xc142, 0x4143,
					     0x4144, 0x4145, 0x4146, 0x4147};
	static const int hlen[8] = {14, 46, 14, 18, 18, 18, 18, 18};
	static const int qn[8] = {-EINVAL, 1, -EINVAL, 0, 0, 0, 0, 2};
	uint8_t out[64];

	for (uint8_t op = 0; op < 8; op++) {
		struct iwarp_hdr h = {.opcode = op, .last = true, .tagged = (op == 0 || op == 2)};
		uint16_t w;

		ck_assert_int_eq(iwarp_hdr_encode(&h, out, sizeof(out)), hlen[op]);
		w = be_get16(out);
		ck_assert_uint_eq(w, siw_ctrl[op]);
		ck_assert_uint_eq((w & SIW_DDP_MASK_VERSION) >> 8, IWARP_DDP_VERSION);
		ck_assert_uint_eq((w & SIW_RDMAP_MASK_VERSION) >> 6, IWARP_RDMAP_VERSION);
		ck_assert_uint_eq(w & SIW_RDMAP_MASK_OPCODE, op);
		ck_assert_int_eq(!!(w & SIW_DDP_FLAG_TAGGED), iwarp_op_tagged(op));
		ck_assert(w & SIW_DDP_FLAG_LAST);
		ck_assert_int_eq(iwarp_hdr_len(op), hlen[op]);
		ck_assert_int_eq(iwarp_op_qn(op), qn[op]);
		ck_assert_ptr_nonnull(iwarp_op_name(op));
	}
	for (int op = 8; op < 16; op++) {
		ck_assert_int_eq(iwarp_hdr_len((uint8_t)op), -EPROTO);
		ck_assert_int_eq(iwarp_op_qn((uint8_t)op), -EINVAL);
		ck_assert(!iwarp_op_tagged((uint8_t)op));
		ck_assert_ptr_null(iwarp_op_name((uint8_t)op));
	}
	ck_assert_str_eq(iwarp_op_name(IWARP_OP_SEND_SE_INV), "Send with SE and Invalidate");
}
END_TEST

/*
 * RFC 5041 §4.1 and RFC 5040 §4.1: Rsvd bits of both control bytes, and
 * RsvdULP where there is no Invalidate STag, are ignored and sent as 0.
 * QN is not the codec's to judge (a wrong one is DDP's "Invalid QN").
 */
START_TEST(test_hdr_reserved_ignored)
{
	static const uint8_t in[] = {
		0x7d, 0x73,		/* Rsvd 1111, Rsv 11; L DV=1, RV=1 Send */
		0xff, 0xff, 0xff, 0xff, /* RsvdULP, no Invalidate STag in a Send */
		0x00, 0x00, 0x00, 0x07, /* QN 7 */
		0x00, 0x00, 0x00, 0x01, /* MSN 1 */
		0x00, 0x00, 0x00, 0x00, /* MO 0 */
	};
	static const uint8_t want[] = {
		0x41, 0x43,		/* reserved bits cleared */
		0x00, 0x00, 0x00, 0x00, /* RsvdULP cleared */
		0x00, 0x00, 0x00, 0x07, /* QN 7 */
		0x00, 0x00, 0x00, 0x01, /* MSN 1 */
		0x00, 0x00, 0x00, 0x00, /* MO 0 */
	};
	static const uint8_t tagged_in[] = {
		0xfd, 0x70,		/* T L Rsvd 1111 DV=1, RV=1 Rsv 11 Write */
		0x00, 0x00, 0x00, 0x01, /* STag 1 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, /* TO 2 */
	};
	struct iwarp_hdr h;

	ck_assert_int_eq(hdr_decode_exact(in, sizeof(in), &h), 18);
	ck_assert_uint_eq(h.opcode, IWARP_OP_SEND);
	ck_assert_uint_eq(h.inv_stag, 0);
	ck_assert_uint_eq(h.qn, 7);
	assert_hdr_encodes_to(&h, want, sizeof(want));
	ck_assert_int_eq(hdr_decode_exact(tagged_in, sizeof(tagged_in), &h), 14);
	ck_assert_uint_eq(h.opcode, IWARP_OP_WRITE);
	ck_assert_uint_eq(h.stag, 1);
	ck_assert_uint_eq(h.to, 2);
}
END_TEST

START_TEST(test_hdr_errors)
{
	uint8_t seg[IWARP_TAGGED_HDR_LEN] = {0xc1, 0x40};
	uint8_t useg[IWARP_UNTAGGED_HDR_LEN] = {0x41, 0x43};
	struct iwarp_hdr h;

	/* DDP version 0 and 2: -EPROTO, with what was read left for the Terminate. */
	seg[0] = 0xc0;
	ck_assert_int_eq(hdr_decode_exact(seg, sizeof(seg), &h), -EPROTO);
	ck_assert_uint_eq(h.ddp_version, 0);
	ck_assert(h.tagged);
	seg[0] = 0xc2;
	ck_assert_int_eq(hdr_decode_exact(seg, sizeof(seg), &h), -EPROTO);
	seg[0] = 0xc1;
	/* RDMAP version 0 (RDMA Consortium) and 2. */
	seg[1] = 0x00;
	ck_assert_int_eq(hdr_decode_exact(seg, sizeof(seg), &h), -EPROTO);
	ck_assert_uint_eq(h.ddp_version, 1);
	ck_assert_uint_eq(h.rdmap_version, 0);
	seg[1] = 0x80;
	ck_assert_int_eq(hdr_decode_exact(seg, sizeof(seg), &h), -EPROTO);
	/* Reserved opcodes 8-15, tagged or not. */
	for (int op = 8; op < 16; op++) {
		seg[1] = (uint8_t)(0x40 | op);
		ck_assert_int_eq(hdr_decode_exact(seg, sizeof(seg), &h), -EPROTO);
		ck_assert_uint_eq(h.opcode, op);
		useg[1] = (uint8_t)(0x40 | op);
		ck_assert_int_eq(hdr_decode_exact(useg, sizeof(useg), &h), -EPROTO);
	}
	/* T must match the opcode (RFC 5040 §4.2): untagged Write, tagged Send. */
	seg[0] = 0x41;
	seg[1] = 0x40;
	ck_assert_int_eq(hdr_decode_exact(seg, sizeof(seg), &h), -EPROTO);
	ck_assert(!h.tagged);
	ck_assert_uint_eq(h.opcode, IWARP_OP_WRITE);
	useg[0] = 0xc1;
	useg[1] = 0x43;
	ck_assert_int_eq(hdr_decode_exact(useg, sizeof(useg), &h), -EPROTO);
	/* Segments shorter than their header. */
	useg[0] = 0x41;
	seg[0] = 0xc1;
	ck_assert_int_eq(hdr_decode_exact(seg, 0, &h), -EMSGSIZE);
	ck_assert_int_eq(hdr_decode_exact(seg, 1, &h), -EMSGSIZE);
	ck_assert_int_eq(hdr_decode_exact(seg, 13, &h), -EMSGSIZE);
	ck_assert_uint_eq(h.opcode, IWARP_OP_WRITE);
	ck_assert_int_eq(hdr_decode_exact(seg, 14, &h), 14);
	ck_assert_int_eq(hdr_decode_exact(useg, 17, &h), -EMSGSIZE);
	ck_assert_int_eq(hdr_decode_exact(useg, 18, &h), 18);
}
END_TEST

START_TEST(test_hdr_encode_errors)
{
	uint8_t out[64];
	struct iwarp_hdr h = {.opcode = 8};

	memset(out, 0xee, sizeof(out));
	ck_assert_int_eq(iwarp_hdr_encode(&h, out, sizeof(out)), -EINVAL);
	h.opcode = IWARP_OP_SEND;
	h.tagged = true;
	ck_assert_int_eq(iwarp_hdr_encode(&h, out, sizeof(out)), -EINVAL);
	h.opcode = IWARP_OP_WRITE;
	h.tagged = false;
	ck_assert_int_eq(iwarp_hdr_encode(&h, out, sizeof(out)), -EINVAL);
	h.tagged = true;
	ck_assert_int_eq(iwarp_hdr_encode(&h, out, 13), -ENOSPC);
	h.opcode = IWARP_OP_READ_REQ;
	h.tagged = false;
	ck_assert_int_eq(iwarp_hdr_encode(&h, out, 45), -ENOSPC);
	for (size_t i = 0; i < sizeof(out); i++)
		ck_assert_uint_eq(out[i], 0xee);
}
END_TEST

/*
 * RFC 5040 §4.8 with RFC 5041 §7.2's codes: DDP layer, tagged buffer error,
 * base or bounds violation, on the RDMA Write of fpdu_write. M and D: the
 * DDP Segment Length (17) and the 14-byte tagged header follow. The whole
 * Terminate message: untagged header on QN 2, MSN 1, then this.
 */
static const uint8_t term_msg[] = {
	0x41, 0x47, 0x00, 0x00, 0x00, 0x00, /* L DV, RV Terminate, rsvd */
	0x00, 0x00, 0x00, 0x02,		    /* QN 2 */
	0x00, 0x00, 0x00, 0x01,		    /* MSN 1 */
	0x00, 0x00, 0x00, 0x00,		    /* MO 0 */
	0x11, 0x01, 0xc0, 0x00,		    /* DDP, tagged, bounds; M D */
	0x00, 0x11,			    /* DDP Segment Length */
	0xc1, 0x40, 0x11, 0x22, 0x33, 0x44, /* terminated DDP header */
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
};

START_TEST(test_term_ddp_tagged)
{
	struct iwarp_term t;
	struct iwarp_hdr h;
	uint8_t out[64];

	ck_assert_int_eq(hdr_decode_exact(term_msg, sizeof(term_msg), &h), 18);
	ck_assert_uint_eq(h.opcode, IWARP_OP_TERMINATE);
	ck_assert_uint_eq(h.qn, IWARP_QN_TERMINATE);
	ck_assert_int_eq(term_decode_exact(term_msg + 18, sizeof(term_msg) - 18, &t), 0);
	ck_assert_uint_eq(t.layer, IWARP_TERM_DDP);
	ck_assert_uint_eq(t.etype, IWARP_TERM_DDP_TAGGED);
	ck_assert_uint_eq(t.ecode, IWARP_TERM_DDP_T_BASE_BOUNDS);
	ck_assert(t.m && t.d && !t.r);
	ck_assert_uint_eq(t.seg_len, 17);
	ck_assert_uint_eq(t.hdrs_len, 14);
	ck_assert_ptr_eq(t.hdrs, term_msg + 24);
	ck_assert_mem_eq(t.hdrs, fpdu_write + 2, 14);

	memset(out, 0xee, sizeof(out));
	ck_assert_int_eq(iwarp_term_encode(&t, out, sizeof(out)), 20);
	ck_assert_mem_eq(out, term_msg + 18, 20);
	ck_assert_uint_eq(out[20], 0xee);

	/* siw's iwarp_terminate: the control word right after the header. */
	ck_assert_uint_eq(SIW_OFF(siw_terminate, term_ctrl), 18);
	{
		uint32_t w = be_get32(term_msg + SIW_OFF(siw_terminate, term_ctrl));

		ck_assert_uint_eq((w & SIW_TERM_MASK_LAYER) >> 28, 1);
		ck_assert_uint_eq((w & SIW_TERM_MASK_ETYPE) >> 24, 1);
		ck_assert_uint_eq((w & SIW_TERM_MASK_ECODE) >> 16, 1);
		ck_assert(w & SIW_TERM_FLAG_M);
		ck_assert(w & SIW_TERM_FLAG_D);
		ck_assert(!(w & SIW_TERM_FLAG_R));
	}
}
END_TEST

/*
 * RDMAP layer, remote protection error, invalid STag, on the Read Request
 * of fpdu_rreq: M, D and R, so the DDP Segment Length, the untagged header
 * and the 28-byte Read Request header all come back, as siw sends them.
 */
START_TEST(test_term_rdmap_read_request)
{
	uint8_t msg[4 + 2 + 46];
	uint8_t out[64];
	struct iwarp_term t;

	memcpy(msg, (const uint8_t[]){0x01, 0x00, 0xe0, 0x00, 0x00, 0x2e}, 6);
	memcpy(msg + 6, fpdu_rreq + 2, 46);
	ck_assert_int_eq(term_decode_exact(msg, sizeof(msg), &t), 0);
	ck_assert_uint_eq(t.layer, IWARP_TERM_RDMAP);
	ck_assert_uint_eq(t.etype, IWARP_TERM_RDMAP_PROTECTION);
	ck_assert_uint_eq(t.ecode, IWARP_TERM_RDMAP_INVALID_STAG);
	ck_assert(t.m && t.d && t.r);
	ck_assert_uint_eq(t.seg_len, 46);
	ck_assert_uint_eq(t.hdrs_len, 46);
	ck_assert_int_eq(iwarp_term_encode(&t, out, sizeof(out)), (int)sizeof(msg));
	ck_assert_mem_eq(out, msg, sizeof(msg));

	/* Without the Read Request header that R promises: too short. */
	ck_assert_int_eq(term_decode_exact(msg, sizeof(msg) - 1, &t), -EMSGSIZE);
	ck_assert_int_eq(term_decode_exact(msg, 6 + 18, &t), -EMSGSIZE);
}
END_TEST

/* RFC 5044 §8: an LLP (MPA) CRC error; no headers, no segment length. */
START_TEST(test_term_llp_crc)
{
	static const uint8_t msg[] = {0x20, 0x02, 0x00, 0x00};
	struct iwarp_term t;
	uint8_t out[8];

	ck_assert_int_eq(term_decode_exact(msg, sizeof(msg), &t), 0);
	ck_assert_uint_eq(t.layer, IWARP_TERM_LLP);
	ck_assert_uint_eq(t.etype, IWARP_TERM_LLP_MPA);
	ck_assert_uint_eq(t.ecode, IWARP_TERM_MPA_CRC);
	ck_assert(!t.m && !t.d && !t.r);
	ck_assert_uint_eq(t.hdrs_len, 0);
	ck_assert_ptr_null(t.hdrs);
	ck_assert_int_eq(iwarp_term_encode(&t, out, sizeof(out)), 4);
	ck_assert_mem_eq(out, msg, 4);
}
END_TEST

START_TEST(test_term_errors)
{
	uint8_t msg[4 + IWARP_READ_REQ_LEN] = {0x12, 0x01, 0x40, 0x00, 0x00, 0x12, 0x41, 0x43};
	const size_t d_len = 4 + 2 + IWARP_UNTAGGED_HDR_LEN;
	static const uint8_t reserved[] = {0x01, 0x00, 0x1f, 0xff};
	uint8_t out[64];
	struct iwarp_term t;

	for (size_t n = 0; n < IWARP_TERM_CTRL_LEN; n++)
		ck_assert_int_eq(term_decode_exact(msg, n, &t), -EMSGSIZE);
	/* D alone: the length field is there all the same (siw always sets M). */
	ck_assert_int_eq(term_decode_exact(msg, d_len, &t), 0);
	ck_assert(!t.m && t.d);
	ck_assert_uint_eq(t.hdrs_len, 18);
	ck_assert_int_eq(term_decode_exact(msg, 5, &t), -EMSGSIZE);
	ck_assert_int_eq(term_decode_exact(msg, 6, &t), -EMSGSIZE);
	ck_assert_int_eq(term_decode_exact(msg, d_len - 1, &t), -EMSGSIZE);
	/* M alone: the length, no header. */
	msg[2] = 0x80;
	ck_assert_int_eq(term_decode_exact(msg, 6, &t), 0);
	ck_assert_uint_eq(t.seg_len, 0x12);
	ck_assert_uint_eq(t.hdrs_len, 0);
	/* R alone: the 28-byte Read Request header, nothing before it. */
	msg[2] = 0x20;
	ck_assert_int_eq(term_decode_exact(msg, sizeof(msg) - 1, &t), -EMSGSIZE);
	ck_assert_int_eq(term_decode_exact(msg, sizeof(msg), &t), 0);
	ck_assert_uint_eq(t.hdrs_len, IWARP_READ_REQ_LEN);
	/* Reserved bits are ignored and sent as 0. */
	ck_assert_int_eq(term_decode_exact(reserved, sizeof(reserved), &t), 0);
	ck_assert(!t.m && !t.d && !t.r);
	ck_assert_int_eq(iwarp_term_encode(&t, out, sizeof(out)), 4);
	ck_assert_uint_eq(out[2], 0);
	ck_assert_uint_eq(out[3], 0);

	/* Encoder: field widths, promised headers, room. */
	t = (struct iwarp_term){.layer = 16};
	ck_assert_int_eq(iwarp_term_encode(&t, out, sizeof(out)), -EINVAL);
	t = (struct iwarp_term){.etype = 16};
	ck_assert_int_eq(iwarp_term_encode(&t, out, sizeof(out)), -EINVAL);
	t = (struct iwarp_term){.hdrs_len = 1};
	ck_assert_int_eq(iwarp_term_encode(&t, out, sizeof(out)), -EINVAL);
	t = (struct iwarp_term){.d = true, .hdrs = fpdu_write + 2, .hdrs_len = 13};
	ck_assert_int_eq(iwarp_term_encode(&t, out, sizeof(out)), -EINVAL);
	t.hdrs_len = 14;
	ck_assert_int_eq(iwarp_term_encode(&t, out, 19), -ENOSPC);
	ck_assert_int_eq(iwarp_term_encode(&t, out, 20), 20);
	t = (struct iwarp_term){.r = true, .hdrs = fpdu_rreq + 20, .hdrs_len = 27};
	ck_assert_int_eq(iwarp_term_encode(&t, out, sizeof(out)), -EINVAL);
}
END_TEST

/* A Terminate is one ULPDU: what follows its control fits in 16 bits. */
START_TEST(test_term_too_long)
{
	size_t max = IWARP_TERM_CTRL_LEN + IWARP_ULPDU_MAX;
	uint8_t *huge = calloc(1, max + 1);
	struct iwarp_term t;

	ck_assert_ptr_nonnull(huge);
	ck_assert_int_eq(iwarp_term_decode(huge, max, &t), 0);
	ck_assert_uint_eq(t.hdrs_len, IWARP_ULPDU_MAX);
	ck_assert_int_eq(iwarp_term_decode(huge, max + 1, &t), -EMSGSIZE);
	free(huge);
}
END_TEST

static Suite *iwarp_suite(void)
{
	Suite *su = suite_create("iwarp");
	TCase *mpa = tcase_create("mpa");
	TCase *fpdu = tcase_create("fpdu");
	TCase *hdr = tcase_create("hdr");
	TCase *term = tcase_create("term");

	tcase_add_test(mpa, test_mpa_req_v1);
	tcase_add_test(mpa, test_mpa_req_v2);
	tcase_add_test(mpa, test_mpa_rep_v2);
	tcase_add_test(mpa, test_mpa_v2_send_rtr_and_limits);
	tcase_add_test(mpa, test_mpa_reject);
	tcase_add_test(mpa, test_mpa_ignored_bits);
	tcase_add_test(mpa, test_mpa_errors);
	tcase_add_test(mpa, test_mpa_encode_errors);
	tcase_add_test(mpa, test_mpa_is_request);
	suite_add_tcase(su, mpa);

	tcase_add_test(fpdu, test_crc_reference);
	tcase_add_test(fpdu, test_fpdu_crc_placement);
	tcase_add_test(fpdu, test_fpdu_write);
	tcase_add_test(fpdu, test_fpdu_crc_mismatch);
	tcase_add_test(fpdu, test_fpdu_send_no_crc);
	tcase_add_test(fpdu, test_fpdu_pad);
	tcase_add_test(fpdu, test_fpdu_framing_errors);
	tcase_add_test(fpdu, test_fpdu_trailer_gathered);
	suite_add_tcase(su, fpdu);

	tcase_add_test(hdr, test_hdr_read_request);
	tcase_add_test(hdr, test_hdr_read_response);
	tcase_add_test(hdr, test_hdr_send_variants);
	tcase_add_test(hdr, test_hdr_siw_ctrl_words);
	tcase_add_test(hdr, test_hdr_reserved_ignored);
	tcase_add_test(hdr, test_hdr_errors);
	tcase_add_test(hdr, test_hdr_encode_errors);
	suite_add_tcase(su, hdr);

	tcase_add_test(term, test_term_ddp_tagged);
	tcase_add_test(term, test_term_rdmap_read_request);
	tcase_add_test(term, test_term_llp_crc);
	tcase_add_test(term, test_term_errors);
	tcase_add_test(term, test_term_too_long);
	suite_add_tcase(su, term);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(iwarp_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
