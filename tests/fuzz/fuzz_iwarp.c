/*
 * libFuzzer harness for common/iwarp. Every input is read as each thing it
 * could be on the wire: the first bytes of a connection (the one-port
 * probe, an MPA Request or Reply), a stream of FPDUs with and without CRC
 * (each ULPDU then decoded as a DDP segment, and a Terminate's payload as a
 * Terminate header), a bare DDP segment and a bare Terminate header.
 * Whatever decodes must encode back to the input's bytes with the ignored
 * bits cleared, and decode again to the same thing; every length and
 * pointer handed back must lie inside the input. Any other outcome, or an
 * errno the header does not document, aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/iwarp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Big enough for any FPDU (65544 bytes) and any Terminate header. */
static uint8_t scratch[IWARP_ULPDU_MAX + 16];

static void check_probe(const uint8_t *data, size_t size)
{
	static const char key[] = "MPA ID Req Frame";
	size_t n = size < IWARP_MPA_KEY_LEN ? size : IWARP_MPA_KEY_LEN;
	bool prefix = !n || !memcmp(data, key, n);
	int r = iwarp_mpa_is_request(data, size);

	if (r == 1 && (n != IWARP_MPA_KEY_LEN || !prefix))
		abort();
	if (r == -ENODATA && (n == IWARP_MPA_KEY_LEN || !prefix))
		abort();
	if (r == 0 && prefix)
		abort();
	if (r != 1 && r != 0 && r != -ENODATA)
		abort();
}

/* Byte 16 as the encoder must write it back: Res cleared, and R and the
 * enhanced bit only where they mean something (RFC 5044 §7.1, RFC 6581). */
static uint8_t mpa_flags_mask(const struct iwarp_mpa *m)
{
	uint8_t mask = 0x40;

	if (m->reply)
		mask |= 0x20;
	if (m->rev == IWARP_MPA_REV2)
		mask |= 0x10;
	return mask;
}

static void check_mpa(const uint8_t *data, size_t size)
{
	static uint8_t out[IWARP_MPA_FRAME_MAX];
	struct iwarp_mpa a, b;
	int ret = iwarp_mpa_decode(data, size, &a);

	if (ret == -ENODATA || ret == -EPROTO || ret == -EMSGSIZE)
		return;
	if (ret < IWARP_MPA_HDR_LEN || (size_t)ret > size || iwarp_mpa_len(data, size) != ret)
		abort();
	if (a.pdata && (a.pdata < data + IWARP_MPA_HDR_LEN || a.pdata + a.pdata_len > data + ret))
		abort();
	/* We decline markers: such a frame is for refusing, not for sending. */
	if (a.markers) {
		if (iwarp_mpa_encode(&a, out, sizeof(out)) != -EINVAL)
			abort();
		return;
	}
	if (iwarp_mpa_encode(&a, out, sizeof(out)) != ret)
		abort();
	if (memcmp(out, data, 16) || out[16] != (data[16] & mpa_flags_mask(&a)) ||
	    memcmp(out + 17, data + 17, (size_t)ret - 17))
		abort();
	if (iwarp_mpa_decode(out, (size_t)ret, &b) != ret || b.pdata_len != a.pdata_len)
		abort();
	if (a.pdata_len && memcmp(a.pdata, b.pdata, a.pdata_len))
		abort();
	a.pdata = NULL;
	b.pdata = NULL;
	if (memcmp(&a, &b, sizeof(a)))
		abort();
}

static void check_term(const uint8_t *buf, size_t len)
{
	struct iwarp_term a, b;
	int ret = iwarp_term_decode(buf, len, &a);
	int n;

	if (ret == -EMSGSIZE)
		return;
	if (ret != 0)
		abort();
	if (a.hdrs && (a.hdrs < buf + IWARP_TERM_CTRL_LEN || a.hdrs + a.hdrs_len != buf + len))
		abort();
	n = iwarp_term_encode(&a, scratch, sizeof(scratch));
	if (n < 0 || (size_t)n != len)
		abort();
	/* HdrCt keeps M, D and R; the 13 reserved bits go out as zero. */
	if (scratch[0] != buf[0] || scratch[1] != buf[1] || scratch[2] != (buf[2] & 0xe0) ||
	    scratch[3] != 0 || memcmp(scratch + 4, buf + 4, len - 4))
		abort();
	if (iwarp_term_decode(scratch, len, &b) != 0 || b.hdrs_len != a.hdrs_len)
		abort();
	a.hdrs = NULL;
	b.hdrs = NULL;
	if (memcmp(&a, &b, sizeof(a)))
		abort();
}

static void check_seg(const uint8_t *seg, size_t len)
{
	uint8_t out[64], want[64];
	struct iwarp_hdr a, b;
	int ret = iwarp_hdr_decode(seg, len, &a);

	if (ret == -EPROTO || ret == -EMSGSIZE)
		return;
	if (ret < IWARP_TAGGED_HDR_LEN || (size_t)ret > len || ret != iwarp_hdr_len(a.opcode))
		abort();
	if (a.tagged != iwarp_op_tagged(a.opcode) || (!a.tagged && iwarp_op_qn(a.opcode) < 0) ||
	    !iwarp_op_name(a.opcode))
		abort();
	if (iwarp_hdr_encode(&a, out, sizeof(out)) != ret)
		abort();
	/* The input with its reserved bits, and RsvdULP where unused, cleared. */
	memcpy(want, seg, (size_t)ret);
	want[0] &= 0xc3;
	want[1] &= 0xcf;
	if (!a.tagged && a.opcode != IWARP_OP_SEND_INV && a.opcode != IWARP_OP_SEND_SE_INV)
		memset(want + 2, 0, 4);
	if (memcmp(out, want, (size_t)ret))
		abort();
	if (iwarp_hdr_decode(out, (size_t)ret, &b) != ret || memcmp(&a, &b, sizeof(a)))
		abort();
	if (a.opcode == IWARP_OP_TERMINATE)
		check_term(seg + ret, len - (size_t)ret);
}

/* Frame @data as a stream of FPDUs, as a receiver would. */
static void check_fpdus(const uint8_t *data, size_t size, bool crc)
{
	size_t off = 0;

	while (off < size) {
		const uint8_t *p = data + off;
		struct iwarp_fpdu f;
		int ret = iwarp_fpdu_parse(p, size - off, crc, IWARP_ULPDU_MAX, &f);

		if (ret == -ENODATA || (crc && ret == -EBADMSG))
			return;
		if (ret < 8 || ret % 4 || (size_t)ret > size - off || f.len != (uint32_t)ret ||
		    (size_t)ret != iwarp_fpdu_size(f.ulpdu_len) || f.ulpdu != p + 2 ||
		    iwarp_fpdu_len(p, 2, IWARP_ULPDU_MAX) != ret)
			abort();
		if (f.ulpdu_len > 16 && iwarp_fpdu_len(p, 2, 16) != -EMSGSIZE)
			abort();
		check_seg(f.ulpdu, f.ulpdu_len);

		/* Sealing what was received rewrites only PAD and CRC. */
		memcpy(scratch, p, (size_t)ret);
		if (iwarp_fpdu_seal(scratch, (size_t)ret, true) != ret ||
		    memcmp(scratch, p, 2 + (size_t)f.ulpdu_len) ||
		    iwarp_fpdu_parse(scratch, (size_t)ret, true, f.ulpdu_len, &f) != ret)
			abort();
		off += (size_t)ret;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_probe(data, size);
	check_mpa(data, size);
	check_fpdus(data, size, false);
	check_fpdus(data, size, true);
	check_seg(data, size);
	check_term(data, size);
	return 0;
}
