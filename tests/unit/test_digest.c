/*
 * Unit tests for common/iscsi/digest: CRC32C values and wire order against
 * the examples printed in RFC 7143 App. A.4 (= RFC 3720 App. B.4), the
 * standard check value, the residue of RFC 7143 §13.1, and incremental
 * digests against one-shot ones.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"

/* Compare the digest of @buf with the four CRC bytes as the RFC prints them. */
static void check_rfc_vector(const uint8_t *buf, size_t len, const uint8_t wire[DIGEST_LEN])
{
	uint8_t out[DIGEST_LEN];
	uint32_t crc = digest_crc32c(buf, len);

	digest_store(out, crc);
	ck_assert_mem_eq(out, wire, DIGEST_LEN);
	ck_assert_uint_eq(digest_load(wire), crc);
}

START_TEST(test_rfc_zeros)
{
	static const uint8_t wire[] = {0xaa, 0x36, 0x91, 0x8a};
	uint8_t buf[32];

	memset(buf, 0, sizeof(buf));
	check_rfc_vector(buf, sizeof(buf), wire);
	ck_assert_uint_eq(digest_crc32c(buf, sizeof(buf)), 0x8A9136AA);
}
END_TEST

START_TEST(test_rfc_ones)
{
	static const uint8_t wire[] = {0x43, 0xab, 0xa8, 0x62};
	uint8_t buf[32];

	memset(buf, 0xff, sizeof(buf));
	check_rfc_vector(buf, sizeof(buf), wire);
}
END_TEST

START_TEST(test_rfc_incrementing)
{
	static const uint8_t wire[] = {0x4e, 0x79, 0xdd, 0x46};
	uint8_t buf[32];

	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	check_rfc_vector(buf, sizeof(buf), wire);
}
END_TEST

START_TEST(test_rfc_decrementing)
{
	static const uint8_t wire[] = {0x5c, 0xdb, 0x3f, 0x11};
	uint8_t buf[32];

	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	check_rfc_vector(buf, sizeof(buf), wire);
}
END_TEST

/* RFC 7143 App. A.4: "An iSCSI - SCSI Read (10) Command PDU". */
START_TEST(test_rfc_read10_pdu)
{
	static const uint8_t pdu[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	static const uint8_t wire[] = {0x56, 0x3a, 0x96, 0xd9};

	check_rfc_vector(pdu, sizeof(pdu), wire);
}
END_TEST

START_TEST(test_check_value)
{
	static const char s[] = "123456789";

	ck_assert_uint_eq(digest_crc32c(s, strlen(s)), 0xE3069283);
}
END_TEST

START_TEST(test_empty)
{
	struct digest_ctx ctx;

	ck_assert_uint_eq(digest_crc32c(NULL, 0), 0);
	digest_begin(&ctx);
	digest_update(&ctx, NULL, 0);
	ck_assert_uint_eq(digest_final(&ctx), 0);
}
END_TEST

static uint32_t bit_reverse32(uint32_t v)
{
	uint32_t r = 0;

	for (int i = 0; i < 32; i++, v >>= 1)
		r = r << 1 | (v & 1);
	return r;
}

/*
 * RFC 7143 §13.1: a segment extended with its digest always leaves the
 * remainder 0x1c2d19ed, in polynomial form. This only holds when the digest
 * bytes are in the right order, so it checks digest_store() independently
 * of the App. A.4 examples. The register holds the polynomial bit-reversed,
 * and digest_final() complements it.
 */
START_TEST(test_residue)
{
	const uint32_t residue = ~bit_reverse32(0x1c2d19ed);
	uint8_t buf[64 + DIGEST_LEN];
	unsigned int seed = 7;

	for (size_t len = 0; len <= 64; len++) {
		struct digest_ctx ctx;

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rand_r(&seed);
		digest_store(buf + len, digest_crc32c(buf, len));
		digest_begin(&ctx);
		digest_update(&ctx, buf, len + DIGEST_LEN);
		ck_assert_uint_eq(digest_final(&ctx), residue);
	}
}
END_TEST

/* Random buffers cut at random places, empty pieces included. */
START_TEST(test_incremental_random_splits)
{
	enum { MAX_LEN = 5000 };
	static uint8_t buf[MAX_LEN];
	unsigned int seed = 12345;

	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)rand_r(&seed) % (MAX_LEN + 1), off = 0;
		struct digest_ctx ctx;

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rand_r(&seed);
		digest_begin(&ctx);
		while (off < len) {
			size_t piece = (size_t)rand_r(&seed) % (len - off + 1);

			/* Sometimes tiny pieces, to cross isa-l's word boundaries. */
			if (rand_r(&seed) % 4 == 0)
				piece %= 8;
			digest_update(&ctx, buf + off, piece);
			off += piece;
		}
		ck_assert_uint_eq(digest_final(&ctx), digest_crc32c(buf, len));
	}
}
END_TEST

START_TEST(test_final_keeps_state)
{
	static const char s[] = "123456789";
	struct digest_ctx ctx;

	digest_begin(&ctx);
	digest_update(&ctx, s, 4);
	ck_assert_uint_eq(digest_final(&ctx), digest_crc32c(s, 4));
	digest_update(&ctx, s + 4, 5);
	ck_assert_uint_eq(digest_final(&ctx), 0xE3069283);
}
END_TEST

/* A data digest covers the data segment and its zero padding (§11.2.3). */
START_TEST(test_pad)
{
	uint8_t buf[16];

	for (size_t len = 0; len <= 12; len++) {
		size_t padded = (len + 3) & ~(size_t)3;
		struct digest_ctx ctx;

		memset(buf, 0, sizeof(buf));
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)(0xa5 ^ i);
		digest_begin(&ctx);
		digest_update(&ctx, buf, len);
		digest_update_pad(&ctx, len);
		ck_assert_uint_eq(digest_final(&ctx), digest_crc32c(buf, padded));
		if (len % 4)
			ck_assert_uint_ne(digest_final(&ctx), digest_crc32c(buf, len));
	}
}
END_TEST

START_TEST(test_store_load_unaligned)
{
	uint8_t buf[DIGEST_LEN + 3];

	for (int off = 0; off < 4; off++) {
		memset(buf, 0xee, sizeof(buf));
		digest_store(buf + off, 0x11223344);
		ck_assert_uint_eq(buf[off], 0x44);
		ck_assert_uint_eq(buf[off + 3], 0x11);
		ck_assert_uint_eq(digest_load(buf + off), 0x11223344);
		if (off > 0)
			ck_assert_uint_eq(buf[off - 1], 0xee);
		if (off < 3)
			ck_assert_uint_eq(buf[off + DIGEST_LEN], 0xee);
	}
}
END_TEST

static Suite *digest_suite(void)
{
	Suite *su = suite_create("digest");
	TCase *rfc = tcase_create("rfc");
	TCase *inc = tcase_create("incremental");

	tcase_add_test(rfc, test_rfc_zeros);
	tcase_add_test(rfc, test_rfc_ones);
	tcase_add_test(rfc, test_rfc_incrementing);
	tcase_add_test(rfc, test_rfc_decrementing);
	tcase_add_test(rfc, test_rfc_read10_pdu);
	tcase_add_test(rfc, test_check_value);
	tcase_add_test(rfc, test_empty);
	tcase_add_test(rfc, test_residue);
	suite_add_tcase(su, rfc);

	tcase_add_test(inc, test_incremental_random_splits);
	tcase_add_test(inc, test_final_keeps_state);
	tcase_add_test(inc, test_pad);
	tcase_add_test(inc, test_store_load_unaligned);
	suite_add_tcase(su, inc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(digest_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
