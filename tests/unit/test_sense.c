/*
 * Unit tests for target/sense: every encoding is checked byte by byte
 * against the layouts of SPC-4 §4.5.2 (descriptor format) and §4.5.3 (fixed
 * format), with the field pointer of §4.5.2.4.2.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sense.h"

static uint8_t buf[64];

static void setup(void)
{
	memset(buf, 0xaa, sizeof(buf));
}

/* Encode @s with @flags, expect exactly @len bytes equal to @want. */
#define EXPECT_BYTES(s, flags, ...)                                \
	do {                                                       \
		static const uint8_t want_[] = {__VA_ARGS__};      \
		struct sense s_ = (s);                             \
		int n_;                                            \
		memset(buf, 0xaa, sizeof(buf));                    \
		n_ = sense_encode(&s_, (flags), buf, sizeof(buf)); \
		ck_assert_int_eq(n_, (int)sizeof(want_));          \
		ck_assert_mem_eq(buf, want_, sizeof(want_));       \
		ck_assert_uint_eq(buf[sizeof(want_)], 0xaa);       \
	} while (0)

START_TEST(test_make_splits_code)
{
	struct sense s = sense_make(SENSE_KEY_UNIT_ATTENTION, SENSE_CAPACITY_DATA_CHANGED);

	ck_assert_uint_eq(s.key, 0x6);
	ck_assert_uint_eq(s.asc, 0x2a);
	ck_assert_uint_eq(s.ascq, 0x09);
	ck_assert(!s.info_valid);
	ck_assert(!s.field.valid);
	ck_assert_uint_eq(SENSE_ASC(SENSE_BUS_DEVICE_RESET), 0x29);
	ck_assert_uint_eq(SENSE_ASCQ(SENSE_BUS_DEVICE_RESET), 0x03);
	ck_assert_uint_eq(SENSE_CODE(0x1d, 0x00), SENSE_MISCOMPARE_DURING_VERIFY);
}
END_TEST

/* SPC-4 table 28 values the disk target relies on. */
START_TEST(test_asc_values)
{
	ck_assert_uint_eq(SENSE_INVALID_COMMAND_OPCODE, 0x2000);
	ck_assert_uint_eq(SENSE_INVALID_FIELD_IN_CDB, 0x2400);
	ck_assert_uint_eq(SENSE_INVALID_FIELD_IN_PARAM_LIST, 0x2600);
	ck_assert_uint_eq(SENSE_PARAMETER_LIST_LENGTH_ERROR, 0x1a00);
	ck_assert_uint_eq(SENSE_LBA_OUT_OF_RANGE, 0x2100);
	ck_assert_uint_eq(SENSE_WRITE_PROTECTED, 0x2700);
	ck_assert_uint_eq(SENSE_SPACE_ALLOC_FAILED_WRITE_PROTECT, 0x2707);
	ck_assert_uint_eq(SENSE_LU_NOT_SUPPORTED, 0x2500);
	ck_assert_uint_eq(SENSE_POWER_ON_RESET, 0x2900);
	ck_assert_uint_eq(SENSE_MODE_PARAMETERS_CHANGED, 0x2a01);
	ck_assert_uint_eq(SENSE_RESERVATIONS_PREEMPTED, 0x2a03);
	ck_assert_uint_eq(SENSE_RESERVATIONS_RELEASED, 0x2a04);
	ck_assert_uint_eq(SENSE_REGISTRATIONS_PREEMPTED, 0x2a05);
	ck_assert_uint_eq(SENSE_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR, 0x2f00);
	ck_assert_uint_eq(SENSE_UNRECOVERED_READ_ERROR, 0x1100);
	ck_assert_uint_eq(SENSE_WRITE_ERROR, 0x0c00);
	ck_assert_uint_eq(SENSE_INTERNAL_TARGET_FAILURE, 0x4400);
	ck_assert_uint_eq(SENSE_MEDIUM_NOT_PRESENT, 0x3a00);
	ck_assert_uint_eq(SENSE_MEDIUM_REMOVAL_PREVENTED, 0x5302);
}
END_TEST

/* A zeroed struct sense is NO SENSE: 70h, key 0, ASC/ASCQ 0, length 0Ah. */
START_TEST(test_fixed_no_sense)
{
	struct sense s = {0};

	EXPECT_BYTES(s, 0, 0x70, 0x00, 0x00, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00,
		     0x00, 0x00);
}
END_TEST

START_TEST(test_fixed_plain)
{
	EXPECT_BYTES(sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_LBA_OUT_OF_RANGE), 0,
		     /* VALID=0, 70h; obsolete; key */
		     0x70, 0x00, 0x05,
		     /* INFORMATION */
		     0, 0, 0, 0,
		     /* ADDITIONAL SENSE LENGTH; COMMAND-SPECIFIC INFORMATION */
		     0x0a, 0, 0, 0, 0,
		     /* ASC, ASCQ, FRU, SKSV + sense-key specific */
		     0x21, 0x00, 0x00, 0x00, 0x00, 0x00);
}
END_TEST

START_TEST(test_fixed_cdb_field_pointer)
{
	/* SKSV | C/D | BPV | bit 4 = CCh; FIELD POINTER 0001h */
	EXPECT_BYTES(sense_invalid_cdb_field(1, 4), 0, 0x70, 0x00, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0,
		     0, 0x24, 0x00, 0x00, 0xcc, 0x00, 0x01);
}
END_TEST

START_TEST(test_fixed_cdb_field_pointer_no_bit)
{
	/* SKSV | C/D, BPV clear; a multi-byte pointer is big-endian */
	EXPECT_BYTES(sense_invalid_cdb_field(0x0102, -1), 0, 0x70, 0x00, 0x05, 0, 0, 0, 0, 0x0a, 0,
		     0, 0, 0, 0x24, 0x00, 0x00, 0xc0, 0x01, 0x02);
	/* An out-of-range bit is no bit pointer either. */
	EXPECT_BYTES(sense_invalid_cdb_field(9, 8), 0, 0x70, 0x00, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0,
		     0, 0x24, 0x00, 0x00, 0xc0, 0x00, 0x09);
}
END_TEST

START_TEST(test_fixed_param_field_pointer)
{
	/* C/D clear: the error is in the parameter list. SKSV | BPV | bit 0 = 88h. */
	EXPECT_BYTES(sense_invalid_param_field(20, 0), 0, 0x70, 0x00, 0x05, 0, 0, 0, 0, 0x0a, 0, 0,
		     0, 0, 0x26, 0x00, 0x00, 0x88, 0x00, 0x14);
}
END_TEST

START_TEST(test_fixed_information)
{
	/* VALID | 70h = F0h, INFORMATION big-endian in bytes 3-6 */
	EXPECT_BYTES(
		sense_make_info(SENSE_KEY_MEDIUM_ERROR, SENSE_UNRECOVERED_READ_ERROR, 0x12345678),
		0, 0xf0, 0x00, 0x03, 0x12, 0x34, 0x56, 0x78, 0x0a, 0, 0, 0, 0, 0x11, 0x00, 0x00,
		0x00, 0x00, 0x00);
	EXPECT_BYTES(
		sense_make_info(SENSE_KEY_MISCOMPARE, SENSE_MISCOMPARE_DURING_VERIFY, 0xffffffff),
		0, 0xf0, 0x00, 0x0e, 0xff, 0xff, 0xff, 0xff, 0x0a, 0, 0, 0, 0, 0x1d, 0x00, 0x00,
		0x00, 0x00, 0x00);
}
END_TEST

START_TEST(test_fixed_information_too_large)
{
	/* An 8-byte value does not fit in 4 bytes: VALID clear, field zero. */
	EXPECT_BYTES(sense_make_info(SENSE_KEY_MEDIUM_ERROR, SENSE_UNRECOVERED_READ_ERROR,
				     0x100000000ull),
		     0, 0x70, 0x00, 0x03, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x11, 0x00, 0x00, 0x00,
		     0x00, 0x00);
}
END_TEST

START_TEST(test_fixed_info_and_field_pointer)
{
	struct sense s = sense_invalid_cdb_field(2, 7);

	s.info_valid = true;
	s.info = 0xa0b0c0d0;
	EXPECT_BYTES(s, 0, 0xf0, 0x00, 0x05, 0xa0, 0xb0, 0xc0, 0xd0, 0x0a, 0, 0, 0, 0, 0x24, 0x00,
		     0x00, 0xcf, 0x00, 0x02);
}
END_TEST

START_TEST(test_fixed_deferred)
{
	EXPECT_BYTES(sense_make_info(SENSE_KEY_MEDIUM_ERROR, SENSE_WRITE_ERROR, 7), SENSE_DEFERRED,
		     0xf1, 0x00, 0x03, 0, 0, 0, 7, 0x0a, 0, 0, 0, 0, 0x0c, 0x00, 0x00, 0x00, 0x00,
		     0x00);
	EXPECT_BYTES(sense_make(SENSE_KEY_HARDWARE_ERROR, SENSE_INTERNAL_TARGET_FAILURE),
		     SENSE_DEFERRED, 0x71, 0x00, 0x04, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x44, 0x00,
		     0x00, 0x00, 0x00, 0x00);
}
END_TEST

START_TEST(test_desc_plain)
{
	/* 72h; key; ASC; ASCQ; reserved x3; ADDITIONAL SENSE LENGTH 0 */
	EXPECT_BYTES(sense_make(SENSE_KEY_DATA_PROTECT, SENSE_WRITE_PROTECTED), SENSE_DESC, 0x72,
		     0x07, 0x27, 0x00, 0x00, 0x00, 0x00, 0x00);
}
END_TEST

START_TEST(test_desc_information)
{
	EXPECT_BYTES(sense_make_info(SENSE_KEY_MISCOMPARE, SENSE_MISCOMPARE_DURING_VERIFY,
				     0x0102030405060708ull),
		     SENSE_DESC, 0x72, 0x0e, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x0c,
		     /* information descriptor: type 00h, length 0Ah, VALID, reserved */
		     0x00, 0x0a, 0x80, 0x00,
		     /* INFORMATION, 8 bytes */
		     0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08);
	/* A 4-byte quantity: the first four bytes are zero. */
	EXPECT_BYTES(sense_make_info(SENSE_KEY_MEDIUM_ERROR, SENSE_UNRECOVERED_READ_ERROR, 0x10),
		     SENSE_DESC, 0x72, 0x03, 0x11, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0x80,
		     0x00, 0, 0, 0, 0, 0, 0, 0, 0x10);
}
END_TEST

START_TEST(test_desc_field_pointer)
{
	EXPECT_BYTES(sense_invalid_cdb_field(1, 4), SENSE_DESC, 0x72, 0x05, 0x24, 0x00, 0x00, 0x00,
		     0x00, 0x08,
		     /* sense key specific descriptor: type 02h, length 06h, reserved x2 */
		     0x02, 0x06, 0x00, 0x00,
		     /* SKSV | C/D | BPV | bit, FIELD POINTER, reserved */
		     0xcc, 0x00, 0x01, 0x00);
	EXPECT_BYTES(sense_invalid_param_field(0x1234, -1), SENSE_DESC, 0x72, 0x05, 0x26, 0x00,
		     0x00, 0x00, 0x00, 0x08, 0x02, 0x06, 0x00, 0x00, 0x80, 0x12, 0x34, 0x00);
}
END_TEST

START_TEST(test_desc_information_and_field_pointer)
{
	struct sense s = sense_invalid_cdb_field(14, 5);

	s.info_valid = true;
	s.info = 0xdeadbeefcafef00dull;
	ck_assert_int_eq(SENSE_MAX_LEN, 28);
	EXPECT_BYTES(s, SENSE_DESC | SENSE_DEFERRED, 0x73, 0x05, 0x24, 0x00, 0x00, 0x00, 0x00, 0x14,
		     /* information descriptor first */
		     0x00, 0x0a, 0x80, 0x00, 0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xf0, 0x0d,
		     /* then the sense key specific descriptor */
		     0x02, 0x06, 0x00, 0x00, 0xcd, 0x00, 0x0e, 0x00);
}
END_TEST

/* Unit attentions for ASC 29h and MODE PARAMETERS CHANGED stay fixed, current. */
START_TEST(test_unit_attention_forced_fixed)
{
	EXPECT_BYTES(sense_make(SENSE_KEY_UNIT_ATTENTION, SENSE_POWER_ON_RESET), SENSE_DESC, 0x70,
		     0x00, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x29, 0x00, 0x00, 0x00, 0x00, 0x00);
	EXPECT_BYTES(sense_make(SENSE_KEY_UNIT_ATTENTION, SENSE_BUS_DEVICE_RESET),
		     SENSE_DESC | SENSE_DEFERRED, 0x70, 0x00, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0,
		     0x29, 0x03, 0x00, 0x00, 0x00, 0x00);
	EXPECT_BYTES(sense_make(SENSE_KEY_UNIT_ATTENTION, SENSE_MODE_PARAMETERS_CHANGED),
		     SENSE_DESC, 0x70, 0x00, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x2a, 0x01, 0x00,
		     0x00, 0x00, 0x00);
	/* Other unit attentions follow D_SENSE. */
	EXPECT_BYTES(sense_make(SENSE_KEY_UNIT_ATTENTION, SENSE_CAPACITY_DATA_CHANGED), SENSE_DESC,
		     0x72, 0x06, 0x2a, 0x09, 0x00, 0x00, 0x00, 0x00);
	/* The rule is about unit attentions only. */
	EXPECT_BYTES(sense_make(SENSE_KEY_NOT_READY, SENSE_CODE(0x29, 0x00)), SENSE_DESC, 0x72,
		     0x02, 0x29, 0x00, 0x00, 0x00, 0x00, 0x00);
}
END_TEST

START_TEST(test_encode_errors)
{
	struct sense s = sense_make(0x10, SENSE_NO_ADDITIONAL_SENSE);

	ck_assert_int_eq(sense_encode(&s, 0, buf, sizeof(buf)), -EINVAL);
	/* A field pointer belongs to ILLEGAL REQUEST only. */
	s = sense_invalid_cdb_field(1, 0);
	s.key = SENSE_KEY_MEDIUM_ERROR;
	ck_assert_int_eq(sense_encode(&s, 0, buf, sizeof(buf)), -EINVAL);
	s = sense_invalid_cdb_field(1, 0);
	s.field.bit = 8;
	ck_assert_int_eq(sense_encode(&s, SENSE_DESC, buf, sizeof(buf)), -EINVAL);
	ck_assert_uint_eq(buf[0], 0xaa);
}
END_TEST

START_TEST(test_encode_too_small)
{
	struct sense s = sense_invalid_cdb_field(1, 4);

	ck_assert_int_eq(sense_encode(&s, 0, buf, SENSE_FIXED_LEN - 1), -ENOSPC);
	ck_assert_int_eq(sense_encode(&s, SENSE_DESC, buf, 15), -ENOSPC);
	ck_assert_uint_eq(buf[0], 0xaa);
	ck_assert_int_eq(sense_encode(&s, SENSE_DESC, buf, 16), 16);
	ck_assert_int_eq(sense_encode(&s, 0, buf, SENSE_FIXED_LEN), SENSE_FIXED_LEN);
}
END_TEST

static Suite *sense_suite(void)
{
	Suite *su = suite_create("sense");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_make_splits_code);
	tcase_add_test(tc, test_asc_values);
	tcase_add_test(tc, test_fixed_no_sense);
	tcase_add_test(tc, test_fixed_plain);
	tcase_add_test(tc, test_fixed_cdb_field_pointer);
	tcase_add_test(tc, test_fixed_cdb_field_pointer_no_bit);
	tcase_add_test(tc, test_fixed_param_field_pointer);
	tcase_add_test(tc, test_fixed_information);
	tcase_add_test(tc, test_fixed_information_too_large);
	tcase_add_test(tc, test_fixed_info_and_field_pointer);
	tcase_add_test(tc, test_fixed_deferred);
	tcase_add_test(tc, test_desc_plain);
	tcase_add_test(tc, test_desc_information);
	tcase_add_test(tc, test_desc_field_pointer);
	tcase_add_test(tc, test_desc_information_and_field_pointer);
	tcase_add_test(tc, test_unit_attention_forced_fixed);
	tcase_add_test(tc, test_encode_errors);
	tcase_add_test(tc, test_encode_too_small);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(sense_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
