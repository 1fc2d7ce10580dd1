/*
 * iser_hdr: iSER header (RFC 7145 §9) and iSER CM header codecs.
 * Layouts and receive rules are in iser_hdr.h.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/be.h"
#include "iser_hdr.h"

/* Byte 0 */
#define OPCODE_SHIFT 4
#define CTRL_FLAGS (ISER_HDR_WSV | ISER_HDR_RSV)

/* Offsets, RFC 7145 §9.2 (control-type) and §9.3/§9.4 (Hello, HelloReply) */
#define OFF_WRITE_STAG 4
#define OFF_WRITE_VA 8
#define OFF_READ_STAG 16
#define OFF_READ_VA 20
#define OFF_VERSIONS 1
#define OFF_IRD_ORD 2

/* RFC 7145 §9.2: STag and Base Offset behind a clear valid flag are ignored. */
static void decode_ctrl(const uint8_t *b, struct iser_hdr_ctrl *c)
{
	c->wsv = b[0] & ISER_HDR_WSV;
	c->rsv = b[0] & ISER_HDR_RSV;
	if (c->wsv) {
		c->write_stag = be_get32(b + OFF_WRITE_STAG);
		c->write_va = be_get64(b + OFF_WRITE_VA);
	}
	if (c->rsv) {
		c->read_stag = be_get32(b + OFF_READ_STAG);
		c->read_va = be_get64(b + OFF_READ_VA);
	}
}

/* RFC 7145 §10.1.3.3: inconsistent field contents are a format error. */
static int decode_hello(const uint8_t *b, struct iser_hdr_hello *h)
{
	h->max_ver = b[OFF_VERSIONS] >> 4;
	h->min_ver = b[OFF_VERSIONS] & 0x0f;
	h->ird = be_get16(b + OFF_IRD_ORD);
	return h->min_ver > h->max_ver ? -EBADMSG : 0;
}

static int decode_hello_reply(const uint8_t *b, struct iser_hdr_hello_reply *r)
{
	r->rej = b[0] & ISER_HDR_REJ;
	r->max_ver = b[OFF_VERSIONS] >> 4;
	r->cur_ver = b[OFF_VERSIONS] & 0x0f;
	r->ord = be_get16(b + OFF_IRD_ORD);
	return r->cur_ver > r->max_ver ? -EBADMSG : 0;
}

int iser_hdr_decode(const void *buf, size_t len, struct iser_hdr *hdr)
{
	const uint8_t *b = buf;

	if (len < ISER_HDR_LEN)
		return -ENODATA;
	/* Zero first: ignored fields read back as zero, padding compares equal. */
	memset(hdr, 0, sizeof(*hdr));
	hdr->opcode = (enum iser_hdr_opcode)(b[0] >> OPCODE_SHIFT);
	switch (hdr->opcode) {
	case ISER_HDR_CTRL:
		decode_ctrl(b, &hdr->ctrl);
		return 0;
	case ISER_HDR_HELLO:
		/* §9.3, §9.4: the message MUST only contain the iSER header. */
		if (len != ISER_HDR_LEN)
			return -EMSGSIZE;
		return decode_hello(b, &hdr->hello);
	case ISER_HDR_HELLO_REPLY:
		if (len != ISER_HDR_LEN)
			return -EMSGSIZE;
		return decode_hello_reply(b, &hdr->hello_reply);
	}
	/* §9.1: all other opcodes are unassigned. */
	return -EPROTO;
}

static bool versions_ok(uint8_t max, uint8_t low)
{
	return max <= ISER_HDR_VER_MAX && low <= max;
}

static int hdr_valid(const struct iser_hdr *hdr)
{
	switch (hdr->opcode) {
	case ISER_HDR_CTRL:
		return 0;
	case ISER_HDR_HELLO:
		return versions_ok(hdr->hello.max_ver, hdr->hello.min_ver) ? 0 : -EINVAL;
	case ISER_HDR_HELLO_REPLY:
		return versions_ok(hdr->hello_reply.max_ver, hdr->hello_reply.cur_ver) ? 0
										       : -EINVAL;
	}
	return -EINVAL;
}

static void encode_ctrl(const struct iser_hdr_ctrl *c, uint8_t *b)
{
	/* §9.2: fields behind a clear valid flag MUST be zero on transmit. */
	if (c->wsv) {
		b[0] |= ISER_HDR_WSV;
		be_put32(b + OFF_WRITE_STAG, c->write_stag);
		be_put64(b + OFF_WRITE_VA, c->write_va);
	}
	if (c->rsv) {
		b[0] |= ISER_HDR_RSV;
		be_put32(b + OFF_READ_STAG, c->read_stag);
		be_put64(b + OFF_READ_VA, c->read_va);
	}
}

int iser_hdr_encode(const struct iser_hdr *hdr, void *buf, size_t len)
{
	uint8_t *b = buf;
	int err;

	if (len < ISER_HDR_LEN)
		return -ENOSPC;
	err = hdr_valid(hdr);
	if (err)
		return err;
	/* Reserved fields MUST be zero on transmit (§9.2-9.4). */
	memset(b, 0, ISER_HDR_LEN);
	b[0] = (uint8_t)(hdr->opcode << OPCODE_SHIFT);
	switch (hdr->opcode) {
	case ISER_HDR_CTRL:
		encode_ctrl(&hdr->ctrl, b);
		break;
	case ISER_HDR_HELLO:
		b[OFF_VERSIONS] = (uint8_t)(hdr->hello.max_ver << 4 | hdr->hello.min_ver);
		be_put16(b + OFF_IRD_ORD, hdr->hello.ird);
		break;
	case ISER_HDR_HELLO_REPLY:
		if (hdr->hello_reply.rej)
			b[0] |= ISER_HDR_REJ;
		b[OFF_VERSIONS] =
			(uint8_t)(hdr->hello_reply.max_ver << 4 | hdr->hello_reply.cur_ver);
		be_put16(b + OFF_IRD_ORD, hdr->hello_reply.ord);
		break;
	}
	return 0;
}

int iser_hdr_hello_answer(const struct iser_hdr_hello *hello, uint16_t ord,
			  struct iser_hdr_hello_reply *reply)
{
	/* §9.4: MaxVer and CurVer MUST be 10, even in a rejecting reply. */
	reply->max_ver = ISER_HDR_VERSION;
	reply->cur_ver = ISER_HDR_VERSION;
	/* §5.1.3: iSER-ORD becomes the minimum of ours and the initiator's IRD. */
	reply->ord = ord < hello->ird ? ord : hello->ird;
	reply->rej = true;
	/* §10.1.3.2: the two cases where REJ MUST be set. */
	if (hello->min_ver > ISER_HDR_VERSION || hello->max_ver < ISER_HDR_VERSION)
		return -EPROTONOSUPPORT;
	if (hello->ird > 0 && ord == 0)
		return -ENOBUFS;
	reply->rej = false;
	return 0;
}

int iser_hdr_hello_reply_check(const struct iser_hdr_hello_reply *reply)
{
	if (reply->rej)
		return -ECONNREFUSED;
	/* §9.4: CurVer is the version the target will speak; we speak only 10. */
	if (reply->cur_ver != ISER_HDR_VERSION)
		return -EPROTONOSUPPORT;
	return 0;
}

int iser_hdr_cm_decode(const void *buf, size_t len, struct iser_hdr_cm *cm)
{
	const uint8_t *b = buf;

	if (len < ISER_HDR_CM_LEN)
		return -ENODATA;
	/* Reserved bits and bytes are ignored, as everywhere in iSCSI/iSER. */
	cm->zbva_not_sup = b[0] & ISER_HDR_CM_ZBVA_NOT_SUP;
	cm->send_w_inv_not_sup = b[0] & ISER_HDR_CM_SEND_W_INV_NOT_SUP;
	return 0;
}

int iser_hdr_cm_encode(const struct iser_hdr_cm *cm, void *buf, size_t len)
{
	uint8_t *b = buf;

	if (len < ISER_HDR_CM_LEN)
		return -ENOSPC;
	memset(b, 0, ISER_HDR_CM_LEN);
	if (cm->zbva_not_sup)
		b[0] |= ISER_HDR_CM_ZBVA_NOT_SUP;
	if (cm->send_w_inv_not_sup)
		b[0] |= ISER_HDR_CM_SEND_W_INV_NOT_SUP;
	return 0;
}
