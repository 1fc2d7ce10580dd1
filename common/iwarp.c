/*
 * iwarp: MPA, DDP and RDMAP codecs. Layouts and receive rules are in
 * iwarp.h; each decoder sits next to its encoder, so that both can be read
 * against the RFC's figure and against each other.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/be.h"
#include "common/iwarp.h"

/* MPA Request/Reply frame, RFC 5044 §7.1 */
#define MPA_KEY_REQ "MPA ID Req Frame"
#define MPA_KEY_REP "MPA ID Rep Frame"
#define MPA_OFF_FLAGS 16
#define MPA_OFF_REV 17
#define MPA_OFF_PD_LEN 18
#define MPA_M 0x80
#define MPA_C 0x40
#define MPA_R 0x20
#define MPA_ENHANCED 0x10 /* RFC 6581; still Res in a Rev 1 frame */

/* RFC 6581's IRD/ORD header: two 16-bit words, two flags over 14 bits each */
#define MPA_V2_A 0x8000 /* IRD word: peer-to-peer */
#define MPA_V2_B 0x4000 /* IRD word: zero-length FPDU (Send) RTR */
#define MPA_V2_C 0x8000 /* ORD word: zero-length RDMA Write RTR */
#define MPA_V2_D 0x4000 /* ORD word: zero-length RDMA Read RTR */

/* DDP control (RFC 5041 §4.1) and RDMAP control (RFC 5040 §4.1) */
#define DDP_T 0x80
#define DDP_L 0x40
#define DDP_DV 0x03
#define RDMAP_RV_SHIFT 6
#define RDMAP_OPCODE 0x0f

/* Offsets in the ULPDU: RFC 5041 §4.2 (tagged), §4.3 (untagged) */
#define OFF_STAG 2
#define OFF_TO 6
#define OFF_INV_STAG 2 /* RsvdULP bits 8-39 under RDMAP, RFC 5040 §4.1 */
#define OFF_QN 6
#define OFF_MSN 10
#define OFF_MO 14
#define OFF_RREQ 18 /* RDMA Read Request header, RFC 5040 §4.4 */

/* Terminate Control, byte 2 (RFC 5040 §4.8) */
#define TERM_M 0x80
#define TERM_D 0x40
#define TERM_R 0x20
#define TERM_NIBBLE 0x0f

static uint8_t flag(bool v, unsigned int mask)
{
	return v ? (uint8_t)mask : 0;
}

/* Which key @b starts with: 0 the Request's, 1 the Reply's, -EPROTO neither. */
static int mpa_key(const uint8_t *b)
{
	if (!memcmp(b, MPA_KEY_REQ, IWARP_MPA_KEY_LEN))
		return 0;
	if (!memcmp(b, MPA_KEY_REP, IWARP_MPA_KEY_LEN))
		return 1;
	return -EPROTO;
}

int iwarp_mpa_is_request(const void *buf, size_t len)
{
	size_t n = len < IWARP_MPA_KEY_LEN ? len : IWARP_MPA_KEY_LEN;

	if (n && memcmp(buf, MPA_KEY_REQ, n))
		return 0;
	return n == IWARP_MPA_KEY_LEN ? 1 : -ENODATA;
}

int iwarp_mpa_len(const void *buf, size_t len)
{
	const uint8_t *b = buf;
	uint16_t pd_len;

	if (len < IWARP_MPA_HDR_LEN)
		return -ENODATA;
	if (mpa_key(b) < 0)
		return -EPROTO;
	pd_len = be_get16(b + MPA_OFF_PD_LEN);
	/* RFC 5044 §7.1: over 512 bytes of private data closes the connection. */
	if (pd_len > IWARP_MPA_PD_MAX)
		return -EMSGSIZE;
	return IWARP_MPA_HDR_LEN + pd_len;
}

static void mpa_v2_decode(const uint8_t *p, struct iwarp_mpa *m)
{
	uint16_t ird = be_get16(p);
	uint16_t ord = be_get16(p + 2);

	m->p2p = ird & MPA_V2_A;
	m->rtr = (uint8_t)(flag(ird & MPA_V2_B, IWARP_MPA_RTR_SEND) |
			   flag(ord & MPA_V2_C, IWARP_MPA_RTR_WRITE) |
			   flag(ord & MPA_V2_D, IWARP_MPA_RTR_READ));
	m->ird = ird & IWARP_MPA_IRD_ORD_MAX;
	m->ord = ord & IWARP_MPA_IRD_ORD_MAX;
}

static void mpa_v2_encode(const struct iwarp_mpa *m, uint8_t *p)
{
	uint16_t ird = m->ird, ord = m->ord;

	if (m->p2p)
		ird |= MPA_V2_A;
	if (m->rtr & IWARP_MPA_RTR_SEND)
		ird |= MPA_V2_B;
	if (m->rtr & IWARP_MPA_RTR_WRITE)
		ord |= MPA_V2_C;
	if (m->rtr & IWARP_MPA_RTR_READ)
		ord |= MPA_V2_D;
	be_put16(p, ird);
	be_put16(p + 2, ord);
}

/* Flags and Rev, once the key is known to be one of ours. */
static void mpa_decode_flags(const uint8_t *b, bool reply, struct iwarp_mpa *m)
{
	uint8_t f = b[MPA_OFF_FLAGS];

	m->reply = reply;
	m->markers = f & MPA_M;
	m->crc = f & MPA_C;
	/* RFC 5044 §7.1: R is zero and not checked in a Request. */
	m->reject = reply && (f & MPA_R);
	m->rev = b[MPA_OFF_REV];
	m->enhanced = m->rev == IWARP_MPA_REV2 && (f & MPA_ENHANCED);
}

int iwarp_mpa_decode(const void *buf, size_t len, struct iwarp_mpa *out)
{
	const uint8_t *b = buf;
	uint16_t pd_len;
	int key;

	if (len < IWARP_MPA_HDR_LEN)
		return -ENODATA;
	key = mpa_key(b);
	if (key < 0)
		return key;
	memset(out, 0, sizeof(*out));
	mpa_decode_flags(b, key, out);
	/* RFC 5044 §7.1: a receiver MUST check Rev; RFC 6581 defines Rev 2. */
	if (out->rev != IWARP_MPA_REV1 && out->rev != IWARP_MPA_REV2)
		return -EPROTO;
	pd_len = be_get16(b + MPA_OFF_PD_LEN);
	if (pd_len > IWARP_MPA_PD_MAX || (out->enhanced && pd_len < IWARP_MPA_V2_LEN))
		return -EMSGSIZE;
	if (len < IWARP_MPA_HDR_LEN + (size_t)pd_len)
		return -ENODATA;
	b += IWARP_MPA_HDR_LEN;
	out->pdata_len = pd_len;
	if (out->enhanced) {
		/* RFC 6581: the IRD/ORD header opens the private data. */
		mpa_v2_decode(b, out);
		b += IWARP_MPA_V2_LEN;
		out->pdata_len -= IWARP_MPA_V2_LEN;
	}
	out->pdata = out->pdata_len ? b : NULL;
	return IWARP_MPA_HDR_LEN + pd_len;
}

static int mpa_valid(const struct iwarp_mpa *m)
{
	/* Markers are declined (DESIGN §5): we never ask a peer for them. */
	if (m->markers)
		return -EINVAL;
	/* RFC 5044 §7.1: R only has a meaning in a Reply. */
	if (m->reject && !m->reply)
		return -EINVAL;
	if (m->rev != IWARP_MPA_REV1 && m->rev != IWARP_MPA_REV2)
		return -EINVAL;
	if (m->pdata_len && !m->pdata)
		return -EINVAL;
	if (!m->enhanced)
		return 0;
	if (m->rev != IWARP_MPA_REV2 || m->ird > IWARP_MPA_IRD_ORD_MAX ||
	    m->ord > IWARP_MPA_IRD_ORD_MAX || (m->rtr & ~IWARP_MPA_RTR_ALL))
		return -EINVAL;
	return 0;
}

int iwarp_mpa_encode(const struct iwarp_mpa *mpa, void *buf, size_t len)
{
	size_t pd_len = mpa->pdata_len + (mpa->enhanced ? IWARP_MPA_V2_LEN : 0);
	uint8_t *b = buf;
	int err = mpa_valid(mpa);

	if (err)
		return err;
	if (pd_len > IWARP_MPA_PD_MAX)
		return -EMSGSIZE;
	if (len < IWARP_MPA_HDR_LEN + pd_len)
		return -ENOSPC;
	memcpy(b, mpa->reply ? MPA_KEY_REP : MPA_KEY_REQ, IWARP_MPA_KEY_LEN);
	/* RFC 5044 §7.1: Res MUST be zero on transmit. */
	b[MPA_OFF_FLAGS] = (uint8_t)(flag(mpa->crc, MPA_C) | flag(mpa->reject, MPA_R) |
				     flag(mpa->enhanced, MPA_ENHANCED));
	b[MPA_OFF_REV] = mpa->rev;
	be_put16(b + MPA_OFF_PD_LEN, (uint16_t)pd_len);
	b += IWARP_MPA_HDR_LEN;
	if (mpa->enhanced) {
		mpa_v2_encode(mpa, b);
		b += IWARP_MPA_V2_LEN;
	}
	if (mpa->pdata_len)
		memcpy(b, mpa->pdata, mpa->pdata_len);
	return (int)(IWARP_MPA_HDR_LEN + pd_len);
}

int iwarp_fpdu_len(const void *buf, size_t len, uint16_t max_ulpdu)
{
	uint16_t ulpdu_len;

	if (len < IWARP_FPDU_HDR_LEN)
		return -ENODATA;
	ulpdu_len = be_get16(buf);
	if (ulpdu_len > max_ulpdu)
		return -EMSGSIZE;
	return (int)iwarp_fpdu_size(ulpdu_len);
}

int iwarp_fpdu_parse(const void *buf, size_t len, bool crc, uint16_t max_ulpdu,
		     struct iwarp_fpdu *out)
{
	const uint8_t *b = buf;
	int total = iwarp_fpdu_len(buf, len, max_ulpdu);
	size_t crc_off;

	if (total < 0)
		return total;
	if (len < (size_t)total)
		return -ENODATA;
	crc_off = (size_t)total - IWARP_FPDU_CRC_LEN;
	/*
	 * RFC 5044 §4.1: the CRC covers the whole FPDU, PAD as received (its
	 * zeros are only a sender's duty); without CRC the field MUST NOT be
	 * checked.
	 */
	if (crc && digest_crc32c(b, crc_off) != digest_load(b + crc_off))
		return -EBADMSG;
	out->ulpdu = b + IWARP_FPDU_HDR_LEN;
	out->ulpdu_len = be_get16(b);
	out->len = (uint32_t)total;
	return total;
}

int iwarp_fpdu_hdr_encode(void *buf, size_t len, size_t ulpdu_len)
{
	if (ulpdu_len > IWARP_ULPDU_MAX)
		return -EMSGSIZE;
	if (len < IWARP_FPDU_HDR_LEN)
		return -ENOSPC;
	be_put16(buf, (uint16_t)ulpdu_len);
	return IWARP_FPDU_HDR_LEN;
}

/* PAD and CRC at @out, which has room for them; returns their length. */
static size_t fpdu_trailer(const struct digest_ctx *ctx, size_t ulpdu_len, uint8_t *out)
{
	unsigned int pad = iwarp_fpdu_pad(ulpdu_len);
	struct digest_ctx c;

	/* RFC 5044 §4.1: PAD is zero on transmit, and the CRC covers it. */
	memset(out, 0, pad);
	if (!ctx) {
		/* No CRC negotiated: the field is sent all the same. */
		memset(out + pad, 0, IWARP_FPDU_CRC_LEN);
		return pad + IWARP_FPDU_CRC_LEN;
	}
	c = *ctx;
	digest_update(&c, out, pad);
	/* Placed as iSCSI places its digests: see iwarp.h and test_iwarp.c. */
	digest_store(out + pad, digest_final(&c));
	return pad + IWARP_FPDU_CRC_LEN;
}

size_t iwarp_fpdu_trailer(const struct digest_ctx *ctx, size_t ulpdu_len,
			  uint8_t out[IWARP_FPDU_TRAILER_MAX])
{
	return fpdu_trailer(ctx, ulpdu_len, out);
}

int iwarp_fpdu_seal(void *buf, size_t len, bool crc)
{
	uint8_t *b = buf;
	struct digest_ctx ctx;
	size_t ulpdu_len, body;

	if (len < IWARP_FPDU_HDR_LEN)
		return -EINVAL;
	ulpdu_len = be_get16(b);
	body = IWARP_FPDU_HDR_LEN + ulpdu_len;
	if (len < body)
		return -EINVAL;
	if (len < iwarp_fpdu_size(ulpdu_len))
		return -ENOSPC;
	if (crc) {
		digest_begin(&ctx);
		digest_update(&ctx, b, body);
	}
	return (int)(body + fpdu_trailer(crc ? &ctx : NULL, ulpdu_len, b + body));
}

/* RFC 5040 §4.2: each opcode's buffer model and untagged queue. */
static const struct {
	const char *name;
	bool tagged;
	uint8_t qn;
	uint8_t hdr_len;
} ops[] = {
	[IWARP_OP_WRITE] = {"RDMA Write", true, 0, IWARP_TAGGED_HDR_LEN},
	[IWARP_OP_READ_REQ] = {"RDMA Read Request", false, IWARP_QN_READ_REQ,
			       IWARP_UNTAGGED_HDR_LEN + IWARP_READ_REQ_LEN},
	[IWARP_OP_READ_RESP] = {"RDMA Read Response", true, 0, IWARP_TAGGED_HDR_LEN},
	[IWARP_OP_SEND] = {"Send", false, IWARP_QN_SEND, IWARP_UNTAGGED_HDR_LEN},
	[IWARP_OP_SEND_INV] = {"Send with Invalidate", false, IWARP_QN_SEND,
			       IWARP_UNTAGGED_HDR_LEN},
	[IWARP_OP_SEND_SE] = {"Send with Solicited Event", false, IWARP_QN_SEND,
			      IWARP_UNTAGGED_HDR_LEN},
	[IWARP_OP_SEND_SE_INV] = {"Send with SE and Invalidate", false, IWARP_QN_SEND,
				  IWARP_UNTAGGED_HDR_LEN},
	[IWARP_OP_TERMINATE] = {"Terminate", false, IWARP_QN_TERMINATE, IWARP_UNTAGGED_HDR_LEN},
};

#define N_OPS (sizeof(ops) / sizeof(ops[0]))

bool iwarp_op_tagged(uint8_t opcode)
{
	return opcode < N_OPS && ops[opcode].tagged;
}

int iwarp_op_qn(uint8_t opcode)
{
	if (opcode >= N_OPS || ops[opcode].tagged)
		return -EINVAL;
	return ops[opcode].qn;
}

int iwarp_hdr_len(uint8_t opcode)
{
	/* RFC 5040 §4.2: 8-15 are reserved (RFC 7306's atomics are not spoken). */
	if (opcode >= N_OPS)
		return -EPROTO;
	return ops[opcode].hdr_len;
}

const char *iwarp_op_name(uint8_t opcode)
{
	return opcode < N_OPS ? ops[opcode].name : NULL;
}

/* RFC 5040 §4.1: only the two Invalidate Sends give RsvdULP a meaning. */
static bool op_has_inv_stag(uint8_t opcode)
{
	return opcode == IWARP_OP_SEND_INV || opcode == IWARP_OP_SEND_SE_INV;
}

static void rreq_decode(const uint8_t *p, struct iwarp_read_req *r)
{
	r->sink_stag = be_get32(p);
	r->sink_to = be_get64(p + 4);
	r->size = be_get32(p + 12);
	r->src_stag = be_get32(p + 16);
	r->src_to = be_get64(p + 20);
}

static void rreq_encode(const struct iwarp_read_req *r, uint8_t *p)
{
	be_put32(p, r->sink_stag);
	be_put64(p + 4, r->sink_to);
	be_put32(p + 12, r->size);
	be_put32(p + 16, r->src_stag);
	be_put64(p + 20, r->src_to);
}

static void hdr_decode_fields(const uint8_t *b, struct iwarp_hdr *h)
{
	if (h->tagged) {
		h->stag = be_get32(b + OFF_STAG);
		h->to = be_get64(b + OFF_TO);
		return;
	}
	if (op_has_inv_stag(h->opcode))
		h->inv_stag = be_get32(b + OFF_INV_STAG);
	h->qn = be_get32(b + OFF_QN);
	h->msn = be_get32(b + OFF_MSN);
	h->mo = be_get32(b + OFF_MO);
	if (h->opcode == IWARP_OP_READ_REQ)
		rreq_decode(b + OFF_RREQ, &h->rreq);
}

int iwarp_hdr_decode(const void *seg, size_t len, struct iwarp_hdr *out)
{
	const uint8_t *b = seg;
	int hdr_len;

	memset(out, 0, sizeof(*out));
	if (len < 2)
		return -EMSGSIZE;
	out->tagged = b[0] & DDP_T;
	out->last = b[0] & DDP_L;
	out->ddp_version = b[0] & DDP_DV;
	out->rdmap_version = b[1] >> RDMAP_RV_SHIFT;
	out->opcode = b[1] & RDMAP_OPCODE;
	/* RFC 5041 §4.1, RFC 5040 §4.1: version 1 is the only one there is. */
	if (out->ddp_version != IWARP_DDP_VERSION || out->rdmap_version != IWARP_RDMAP_VERSION)
		return -EPROTO;
	hdr_len = iwarp_hdr_len(out->opcode);
	if (hdr_len < 0)
		return hdr_len;
	/* RFC 5040 §4.2: the opcode fixes the buffer model. */
	if (out->tagged != ops[out->opcode].tagged)
		return -EPROTO;
	if (len < (size_t)hdr_len)
		return -EMSGSIZE;
	hdr_decode_fields(b, out);
	return hdr_len;
}

int iwarp_hdr_encode(const struct iwarp_hdr *hdr, void *buf, size_t len)
{
	uint8_t *b = buf;
	int hdr_len = iwarp_hdr_len(hdr->opcode);

	if (hdr_len < 0 || hdr->tagged != ops[hdr->opcode].tagged)
		return -EINVAL;
	if (len < (size_t)hdr_len)
		return -ENOSPC;
	/* Reserved bits and RsvdULP without a meaning go out as zero. */
	memset(b, 0, (size_t)hdr_len);
	b[0] = (uint8_t)(flag(hdr->tagged, DDP_T) | flag(hdr->last, DDP_L) | IWARP_DDP_VERSION);
	b[1] = (uint8_t)(IWARP_RDMAP_VERSION << RDMAP_RV_SHIFT | hdr->opcode);
	if (hdr->tagged) {
		be_put32(b + OFF_STAG, hdr->stag);
		be_put64(b + OFF_TO, hdr->to);
		return hdr_len;
	}
	if (op_has_inv_stag(hdr->opcode))
		be_put32(b + OFF_INV_STAG, hdr->inv_stag);
	be_put32(b + OFF_QN, hdr->qn);
	be_put32(b + OFF_MSN, hdr->msn);
	be_put32(b + OFF_MO, hdr->mo);
	if (hdr->opcode == IWARP_OP_READ_REQ)
		rreq_encode(&hdr->rreq, b + OFF_RREQ);
	return hdr_len;
}

/*
 * The least @hdrs_len that holds what D and R announce (RFC 5040 §4.8): a
 * DDP header of the length its own T says, and the 28-byte RDMA Read
 * Request header behind R. Only a Read Request has an RDMAP header beyond
 * its control byte, so R on any other terminated message adds nothing
 * (siw sets R for every remote protection error, Sends included).
 */
static size_t term_hdrs_need(bool d, bool r, const uint8_t *hdrs, size_t hdrs_len)
{
	size_t need;

	if (!d)
		return r ? IWARP_READ_REQ_LEN : 0;
	if (hdrs_len < 2)
		return IWARP_TAGGED_HDR_LEN;
	if (hdrs[0] & DDP_T)
		return IWARP_TAGGED_HDR_LEN;
	need = IWARP_UNTAGGED_HDR_LEN;
	if (r && (hdrs[1] & RDMAP_OPCODE) == IWARP_OP_READ_REQ)
		need += IWARP_READ_REQ_LEN;
	return need;
}

int iwarp_term_decode(const void *buf, size_t len, struct iwarp_term *out)
{
	const uint8_t *b = buf;
	size_t off = IWARP_TERM_CTRL_LEN;

	memset(out, 0, sizeof(*out));
	if (len < off)
		return -EMSGSIZE;
	out->layer = b[0] >> 4;
	out->etype = b[0] & TERM_NIBBLE;
	out->ecode = b[1];
	out->m = b[2] & TERM_M;
	out->d = b[2] & TERM_D;
	out->r = b[2] & TERM_R;
	/* The length sits where the terminated FPDU had its ULPDU_Length. */
	if (out->m || out->d) {
		if (len < off + IWARP_TERM_SEGLEN_LEN)
			return -EMSGSIZE;
		out->seg_len = be_get16(b + off);
		off += IWARP_TERM_SEGLEN_LEN;
	}
	/* A Terminate is one ULPDU, so what follows fits in 16 bits. */
	if (len - off > IWARP_ULPDU_MAX)
		return -EMSGSIZE;
	out->hdrs_len = (uint16_t)(len - off);
	out->hdrs = out->hdrs_len ? b + off : NULL;
	if (out->hdrs_len < term_hdrs_need(out->d, out->r, out->hdrs, out->hdrs_len))
		return -EMSGSIZE;
	return 0;
}

int iwarp_term_encode(const struct iwarp_term *term, void *buf, size_t len)
{
	size_t seg = term->m || term->d ? IWARP_TERM_SEGLEN_LEN : 0;
	size_t n = IWARP_TERM_CTRL_LEN + seg + term->hdrs_len;
	uint8_t *b = buf;

	if (term->layer > TERM_NIBBLE || term->etype > TERM_NIBBLE ||
	    (term->hdrs_len && !term->hdrs))
		return -EINVAL;
	if (term->hdrs_len < term_hdrs_need(term->d, term->r, term->hdrs, term->hdrs_len))
		return -EINVAL;
	if (len < n)
		return -ENOSPC;
	b[0] = (uint8_t)(term->layer << 4 | term->etype);
	b[1] = term->ecode;
	b[2] = (uint8_t)(flag(term->m, TERM_M) | flag(term->d, TERM_D) | flag(term->r, TERM_R));
	b[3] = 0;
	if (seg)
		be_put16(b + IWARP_TERM_CTRL_LEN, term->seg_len);
	if (term->hdrs_len)
		memcpy(b + IWARP_TERM_CTRL_LEN + seg, term->hdrs, term->hdrs_len);
	return (int)n;
}
