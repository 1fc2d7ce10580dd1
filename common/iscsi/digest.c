/*
 * digest: CRC32C for iSCSI digests through isa-l (RFC 7143 §13.1).
 *
 * crc32_iscsi(buf, len, crc) runs the reflected CRC32C register over buf
 * starting from crc and returns the register: it neither presets nor
 * complements. RFC 7143 §13.1 complements the first 32 bits (a preset of
 * all ones) and the result, so a digest starts at 0xFFFFFFFF, chains the
 * register through every piece, and ends with one complement.
 */
#include <stdint.h>

#include <isa-l/crc.h>

#include "digest.h"

#define DIGEST_PRESET 0xFFFFFFFFu

/* crc32_iscsi() takes an int length: feed larger buffers in chunks. */
#define DIGEST_CHUNK (1u << 30)

static uint32_t digest_run(uint32_t crc, const void *buf, size_t len)
{
	/* isa-l's prototype lacks const; it only reads the buffer. */
	unsigned char *p = (unsigned char *)(uintptr_t)buf;

	while (len > 0) {
		size_t n = len < DIGEST_CHUNK ? len : DIGEST_CHUNK;

		crc = crc32_iscsi(p, (int)n, crc);
		p += n;
		len -= n;
	}
	return crc;
}

uint32_t digest_crc32c(const void *buf, size_t len)
{
	return ~digest_run(DIGEST_PRESET, buf, len);
}

void digest_begin(struct digest_ctx *ctx)
{
	ctx->crc = DIGEST_PRESET;
}

void digest_update(struct digest_ctx *ctx, const void *buf, size_t len)
{
	ctx->crc = digest_run(ctx->crc, buf, len);
}

void digest_update_pad(struct digest_ctx *ctx, size_t seg_len)
{
	static const unsigned char zeros[DIGEST_LEN - 1];

	/* RFC 7143 §11.1: segments are padded to a multiple of 4 bytes. */
	digest_update(ctx, zeros, (DIGEST_LEN - seg_len % DIGEST_LEN) % DIGEST_LEN);
}

uint32_t digest_final(const struct digest_ctx *ctx)
{
	return ~ctx->crc;
}

/*
 * RFC 7143 §13.1: the x**31 coefficient goes to bit 7 of the first byte.
 * iSCSI bit 7 is the least significant bit (§11), and the reflected
 * register keeps x**31 in its bit 0, so the first byte on the wire is the
 * value's low byte (App. A.4: 0x8A9136AA is sent as aa 36 91 8a).
 */
void digest_store(void *p, uint32_t crc)
{
	unsigned char *b = p;

	b[0] = (unsigned char)crc;
	b[1] = (unsigned char)(crc >> 8);
	b[2] = (unsigned char)(crc >> 16);
	b[3] = (unsigned char)(crc >> 24);
}

uint32_t digest_load(const void *p)
{
	const unsigned char *b = p;

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
