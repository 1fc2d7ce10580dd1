/*
 * libFuzzer harness for common/iscsi/iser_hdr: any input is decoded as an
 * iSER header (as a whole Send message, and cut to the header alone) and as
 * an iSER CM header. Whatever decodes must encode, decode back to the same
 * struct, and encode to the input's bytes with the ignored bits cleared.
 * Any other outcome, or an undocumented errno, aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iser_hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input bits that carry meaning (iser_hdr.h); the rest encode as zero. */
static void hdr_mask(const struct iser_hdr *h, uint8_t mask[ISER_HDR_LEN])
{
	memset(mask, 0, ISER_HDR_LEN);
	switch (h->opcode) {
	case ISER_HDR_CTRL:
		mask[0] = 0xf0 | ISER_HDR_WSV | ISER_HDR_RSV;
		if (h->ctrl.wsv)
			memset(mask + 4, 0xff, 12);
		if (h->ctrl.rsv)
			memset(mask + 16, 0xff, 12);
		break;
	case ISER_HDR_HELLO:
		mask[0] = 0xf0;
		memset(mask + 1, 0xff, 3);
		break;
	case ISER_HDR_HELLO_REPLY:
		mask[0] = 0xf0 | ISER_HDR_REJ;
		memset(mask + 1, 0xff, 3);
		break;
	}
}

static void check_hdr(const uint8_t *data, size_t size)
{
	uint8_t out[ISER_HDR_LEN], mask[ISER_HDR_LEN];
	struct iser_hdr a, b;
	int ret = iser_hdr_decode(data, size, &a);

	if (ret == -ENODATA || ret == -EPROTO || ret == -EMSGSIZE || ret == -EBADMSG)
		return;
	if (ret != 0)
		abort();
	if (iser_hdr_encode(&a, out, sizeof(out)) != 0)
		abort();
	if (iser_hdr_decode(out, sizeof(out), &b) != 0 || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	hdr_mask(&a, mask);
	for (size_t i = 0; i < ISER_HDR_LEN; i++)
		if (out[i] != (data[i] & mask[i]))
			abort();
}

static void check_cm(const uint8_t *data, size_t size)
{
	uint8_t out[ISER_HDR_CM_LEN];
	struct iser_hdr_cm a, b;
	int ret = iser_hdr_cm_decode(data, size, &a);

	if (ret == -ENODATA)
		return;
	if (ret != 0 || iser_hdr_cm_encode(&a, out, sizeof(out)) != 0)
		abort();
	if (iser_hdr_cm_decode(out, sizeof(out), &b) != 0 || a.zbva_not_sup != b.zbva_not_sup ||
	    a.send_w_inv_not_sup != b.send_w_inv_not_sup)
		abort();
	if (out[0] != (data[0] & (ISER_HDR_CM_ZBVA_NOT_SUP | ISER_HDR_CM_SEND_W_INV_NOT_SUP)) ||
	    out[1] || out[2] || out[3])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_hdr(data, size);
	if (size > ISER_HDR_LEN)
		check_hdr(data, ISER_HDR_LEN);
	check_cm(data, size);
	return 0;
}
