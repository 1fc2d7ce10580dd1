/*
 * digest: CRC32C for iSCSI header and data digests (RFC 7143 §11.2.3,
 * §13.1; formerly RFC 3720 §12.1), computed by isa-l's crc32_iscsi().
 *
 * A CRC value here is the conventional CRC32C value (the one every
 * CRC32C library returns: 0xE3069283 for "123456789"). On the wire it is
 * NOT big-endian like the rest of the PDU: RFC 7143 §13.1 maps the CRC's
 * x**31 coefficient to bit 7 of the first digest byte, and iSCSI numbers
 * bits from the most significant (bit 7 is the least significant one,
 * RFC 7143 §11), so the value's least significant byte goes first. The
 * examples of RFC 7143 App. A.4 (RFC 3720 App. B.4) print 32 zero bytes'
 * digest as "aa 36 91 8a" for the value 0x8A9136AA. Always go through
 * digest_store() and digest_load().
 *
 * Nothing here allocates, prints or blocks; every function may be called
 * from any thread, on objects the caller owns.
 */
#ifndef ISERKIT_DIGEST_H
#define ISERKIT_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_LEN 4 /* bytes of a header or data digest on the wire */

/* Incremental state, to be embedded in its owner; set up by digest_begin(). */
struct digest_ctx {
	uint32_t crc; /* running CRC register, not yet complemented */
};

/* CRC32C of @len bytes at @buf (@buf may be NULL when @len is 0). */
uint32_t digest_crc32c(const void *buf, size_t len);

/* Start a digest over a segment that arrives in several pieces. */
void digest_begin(struct digest_ctx *ctx);

/* Add @len bytes at @buf (may be NULL when @len is 0) to the digest. */
void digest_update(struct digest_ctx *ctx, const void *buf, size_t len);

/*
 * Add the zero padding that follows a segment of @seg_len bytes, up to the
 * next multiple of 4 (RFC 7143 §11.1): for a sender, whose padding is
 * zero. A receiver must digest the padding bytes as received instead,
 * since they only SHOULD be zero and are covered by the CRC (§13.1).
 */
void digest_update_pad(struct digest_ctx *ctx, size_t seg_len);

/* The CRC32C of everything added since digest_begin(); @ctx is unchanged,
 * so more may be added afterwards. */
uint32_t digest_final(const struct digest_ctx *ctx);

/* Write @crc as the DIGEST_LEN wire bytes at @p (any alignment). */
void digest_store(void *p, uint32_t crc);

/* Read the CRC value from the DIGEST_LEN wire bytes at @p (any alignment). */
uint32_t digest_load(const void *p);

#endif /* ISERKIT_DIGEST_H */
