/*
 * libFuzzer harness for common/iscsi/pdu. Every input is framed with each
 * digest combination. Whatever decodes must survive encode and decode
 * again unchanged, the encoder must not invent bits the input lacked
 * (beyond the F and I bits the RFC fixes at 1), and every pointer and
 * offset handed back must lie inside the input. abort() on any breach.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pdu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_bhs(const uint8_t *in, size_t size)
{
	struct pdu_bhs x, y;
	uint8_t w[PDU_BHS_LEN];
	unsigned int i, extra;

	if (pdu_bhs_decode(in, size, &x))
		return;
	if (pdu_bhs_encode(&x, w, sizeof(w)))
		abort();
	if (pdu_bhs_decode(w, sizeof(w), &y) || memcmp(&x, &y, sizeof(x)))
		abort();
	for (i = 0; i < PDU_BHS_LEN; i++) {
		extra = w[i] & ~in[i];
		if (i == 0)
			extra &= ~0x40u;
		if (i == 1)
			extra &= ~0x80u;
		if (extra)
			abort();
	}
}

static void check_ahs(const struct pdu *p)
{
	uint8_t w[PDU_AHS_MAX];
	struct pdu_ahs back;
	int n;

	n = pdu_ahs_encode(&p->ahs, w, sizeof(w));
	if (n < 0 || n > 4 * p->bhs.total_ahs_len)
		abort();
	if (pdu_ahs_parse(w, (size_t)n, p->bhs.opcode, &back))
		abort();
	if (back.ext_cdb_len != p->ahs.ext_cdb_len ||
	    memcmp(back.ext_cdb ? back.ext_cdb : w, p->ahs.ext_cdb ? p->ahs.ext_cdb : w,
		   back.ext_cdb_len) ||
	    back.has_bidi_read_len != p->ahs.has_bidi_read_len ||
	    back.bidi_read_len != p->ahs.bidi_read_len)
		abort();
}

static void check_frame(const uint8_t *data, size_t size, const struct pdu *p, int n,
			unsigned int flags)
{
	const uint8_t *ahs_end = data + PDU_BHS_LEN + 4 * p->bhs.total_ahs_len;

	if (n < PDU_BHS_LEN || (size_t)n > size || p->len != (unsigned int)n)
		abort();
	if (pdu_total_len(data, size, flags, PDU_DSL_MAX) != n)
		abort();
	if (p->ahs.ext_cdb &&
	    (p->ahs.ext_cdb < data + PDU_BHS_LEN || p->ahs.ext_cdb + p->ahs.ext_cdb_len > ahs_end))
		abort();
	if (p->data && (p->data != data + p->data_off || p->data_off + p->bhs.data_len > p->len))
		abort();
	if (p->ddigest_off && p->ddigest_off + PDU_DIGEST_LEN != p->len)
		abort();
	/* No data, no data digest (RFC 7143 §11.2.3). */
	if (!p->bhs.data_len && (p->ddigest_off || p->data))
		abort();
	if (p->hdigest_off && p->hdigest_off + PDU_DIGEST_LEN != p->data_off)
		abort();
}

static void check_error(int n)
{
	switch (n) {
	case -ENODATA:
	case -EPROTO:
	case -EOVERFLOW:
	case -EMSGSIZE:
		return;
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pdu p;
	unsigned int flags;
	int n;

	check_bhs(data, size);
	for (flags = 0; flags <= (PDU_HDIGEST | PDU_DDIGEST); flags++) {
		struct pdu h;
		int hn = pdu_parse_header(data, size, flags, PDU_DSL_MAX, &h);

		n = pdu_parse(data, size, flags, PDU_DSL_MAX, &p);
		/* The header parse agrees with the whole one, needs no more
		 * bytes, and fails only where the header is cut. */
		if (hn >= 0 && (h.data || (unsigned int)hn != h.data_off || h.data_off > size))
			abort();
		if (n >= 0 && (hn < 0 || h.len != p.len || h.data_off != p.data_off))
			abort();
		if (n < 0 && n != -EMSGSIZE && n != hn)
			abort();
		if (n < 0) {
			check_error(n);
			continue;
		}
		check_frame(data, size, &p, n, flags);
		check_ahs(&p);
	}
	return 0;
}
