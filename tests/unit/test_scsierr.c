/*
 * Unit tests for initiator/scsierr. Sense data is written byte by byte
 * from the layouts of SPC-4 §4.5.2 (descriptor format: key in byte 1, ASC
 * and ASCQ in bytes 2 and 3) and §4.5.3 (fixed format: key in byte 2, the
 * ADDITIONAL SENSE LENGTH in byte 7, ASC and ASCQ in bytes 12 and 13);
 * then every row of scsierr.h's table, in both formats.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scsierr.h"

enum {
	GOOD = 0x00,
	CHECK_CONDITION = 0x02,
	CONDITION_MET = 0x04,
	BUSY = 0x08,
	RESERVATION_CONFLICT = 0x18,
	TASK_SET_FULL = 0x28,
	ACA_ACTIVE = 0x30,
	TASK_ABORTED = 0x40,
};

enum {
	NO_SENSE,
	RECOVERED_ERROR,
	NOT_READY,
	MEDIUM_ERROR,
	HARDWARE_ERROR,
	ILLEGAL_REQUEST,
	UNIT_ATTENTION,
	DATA_PROTECT,
	BLANK_CHECK,
	VENDOR_SPECIFIC,
	COPY_ABORTED,
	ABORTED_COMMAND,
	KEY_0C,
	VOLUME_OVERFLOW,
	MISCOMPARE,
	KEY_0F,
};

/* 18 bytes of current fixed sense (70h), as target/sense.c sends it;
 * the other fields hold values a decoder must not mistake for ours. */
static size_t fixed(uint8_t *b, uint8_t key, uint8_t asc, uint8_t ascq)
{
	memset(b, 0, 18);
	b[0] = 0x70;
	b[1] = 0xee;		   /* obsolete */
	b[2] = 0x20 | key;	   /* ILI set: the key is the low nibble */
	b[3] = b[4] = b[5] = 0x55; /* INFORMATION */
	b[6] = 0x66;
	b[7] = 10; /* ADDITIONAL SENSE LENGTH: bytes 8..17 */
	b[8] = b[9] = b[10] = b[11] = 0x77;
	b[12] = asc;
	b[13] = ascq;
	b[14] = 0x99; /* FRU */
	b[15] = 0x80; /* SKSV */
	return 18;
}

/* Descriptor sense (72h): an 8-byte header and one INFORMATION
 * descriptor (§4.5.2.2), 20 bytes. */
static size_t desc(uint8_t *b, uint8_t key, uint8_t asc, uint8_t ascq)
{
	memset(b, 0, 20);
	b[0] = 0x72;
	b[1] = 0xf0 | key; /* reserved bits set */
	b[2] = asc;
	b[3] = ascq;
	b[4] = 0x80; /* SDAT_OVFL */
	b[7] = 12;
	b[8] = 0x00; /* information descriptor */
	b[9] = 0x0a;
	b[10] = 0x80;
	memset(b + 12, 0x21, 8);
	return 20;
}

static struct scsierr_sense dec(const uint8_t *b, size_t len)
{
	struct scsierr_sense s;

	memset(&s, 0xcc, sizeof(s));
	ck_assert_int_eq(scsierr_sense_decode(b, len, &s), 0);
	return s;
}

static void dec_bad(const uint8_t *b, size_t len)
{
	struct scsierr_sense s, before;

	memset(&s, 0xcc, sizeof(s));
	before = s;
	ck_assert_int_eq(scsierr_sense_decode(b, len, &s), -EINVAL);
	ck_assert_mem_eq(&s, &before, sizeof(s));
}

#define EXPECT_SENSE(s, k, a, q)                 \
	do {                                     \
		struct scsierr_sense s_ = (s);   \
		ck_assert_uint_eq(s_.key, (k));  \
		ck_assert_uint_eq(s_.asc, (a));  \
		ck_assert_uint_eq(s_.ascq, (q)); \
	} while (0)

START_TEST(test_decode_fixed)
{
	uint8_t b[32];
	size_t n = fixed(b, MEDIUM_ERROR, 0x11, 0x00);

	EXPECT_SENSE(dec(b, n), MEDIUM_ERROR, 0x11, 0x00);
	/* deferred (71h), and either with the VALID bit (F0h, F1h) */
	b[0] = 0x71;
	EXPECT_SENSE(dec(b, n), MEDIUM_ERROR, 0x11, 0x00);
	b[0] = 0xf0;
	EXPECT_SENSE(dec(b, n), MEDIUM_ERROR, 0x11, 0x00);
	b[0] = 0xf1;
	EXPECT_SENSE(dec(b, n), MEDIUM_ERROR, 0x11, 0x00);
	/* FILEMARK, EOM, ILI and SDAT_OVFL are not part of the key */
	b[2] = 0xf0 | DATA_PROTECT;
	EXPECT_SENSE(dec(b, n), DATA_PROTECT, 0x11, 0x00);
	/* more bytes than the additional length says: the rest is ignored */
	n = fixed(b, ILLEGAL_REQUEST, 0x24, 0x00);
	memset(b + n, 0xff, sizeof(b) - n);
	EXPECT_SENSE(dec(b, sizeof(b)), ILLEGAL_REQUEST, 0x24, 0x00);
}
END_TEST

START_TEST(test_decode_descriptor)
{
	uint8_t b[32];
	size_t n = desc(b, UNIT_ATTENTION, 0x29, 0x07);

	EXPECT_SENSE(dec(b, n), UNIT_ATTENTION, 0x29, 0x07);
	b[0] = 0x73;
	EXPECT_SENSE(dec(b, n), UNIT_ATTENTION, 0x29, 0x07);
	/* the header alone, no descriptors */
	b[0] = 0x72;
	b[7] = 0;
	EXPECT_SENSE(dec(b, 8), UNIT_ATTENTION, 0x29, 0x07);
	/* an additional length larger than the buffer is no reason to fail */
	b[7] = 244;
	EXPECT_SENSE(dec(b, 8), UNIT_ATTENTION, 0x29, 0x07);
}
END_TEST

START_TEST(test_decode_bad)
{
	uint8_t b[32];
	static const uint8_t codes[] = {0x00, 0x01, 0x6f, 0x74, 0x7e, 0x7f, 0xff};
	size_t i;

	dec_bad(NULL, 0);
	dec_bad(NULL, 18);
	fixed(b, MEDIUM_ERROR, 0x11, 0);
	dec_bad(b, 0);
	/* a response code that is neither fixed nor descriptor; 7Fh is
	 * vendor specific, a layout we cannot know */
	for (i = 0; i < sizeof(codes); i++) {
		b[0] = codes[i];
		dec_bad(b, 18);
	}
}
END_TEST

/*
 * Sense cut short (a target's SenseLength, or our buffer): whatever the
 * bytes hold is read, what they do not hold reads as 0, and too few bytes
 * for the sense key is an error. The key is byte 2 of fixed sense and
 * byte 1 of descriptor sense.
 */
START_TEST(test_decode_truncated)
{
	uint8_t b[32];

	fixed(b, NOT_READY, 0x04, 0x01);
	dec_bad(b, 1);
	dec_bad(b, 2);
	EXPECT_SENSE(dec(b, 3), NOT_READY, 0, 0);
	EXPECT_SENSE(dec(b, 12), NOT_READY, 0, 0);
	EXPECT_SENSE(dec(b, 13), NOT_READY, 0x04, 0);
	EXPECT_SENSE(dec(b, 14), NOT_READY, 0x04, 0x01);
	/* the ADDITIONAL SENSE LENGTH bounds the bytes too (§4.5.3: n - 7) */
	b[7] = 0;
	EXPECT_SENSE(dec(b, 18), NOT_READY, 0, 0);
	b[7] = 4;
	EXPECT_SENSE(dec(b, 18), NOT_READY, 0, 0);
	b[7] = 5;
	EXPECT_SENSE(dec(b, 18), NOT_READY, 0x04, 0);
	b[7] = 6;
	EXPECT_SENSE(dec(b, 18), NOT_READY, 0x04, 0x01);

	desc(b, DATA_PROTECT, 0x27, 0x07);
	dec_bad(b, 1);
	EXPECT_SENSE(dec(b, 2), DATA_PROTECT, 0, 0);
	EXPECT_SENSE(dec(b, 3), DATA_PROTECT, 0x27, 0);
	EXPECT_SENSE(dec(b, 4), DATA_PROTECT, 0x27, 0x07);
}
END_TEST

/* Statuses other than CHECK CONDITION, sense or no sense. */
START_TEST(test_status_rows)
{
	uint8_t b[32];
	size_t n = fixed(b, MEDIUM_ERROR, 0x11, 0);
	unsigned int st;

	ck_assert_int_eq(scsierr_to_errno(GOOD, NULL, 0), 0);
	ck_assert_int_eq(scsierr_to_errno(CONDITION_MET, NULL, 0), 0);
	ck_assert_int_eq(scsierr_to_errno(RESERVATION_CONFLICT, NULL, 0), -EBADE);
	ck_assert_int_eq(scsierr_to_errno(BUSY, NULL, 0), -EAGAIN);
	ck_assert_int_eq(scsierr_to_errno(TASK_SET_FULL, NULL, 0), -EAGAIN);
	ck_assert_int_eq(scsierr_to_errno(ACA_ACTIVE, NULL, 0), -EIO);
	ck_assert_int_eq(scsierr_to_errno(TASK_ABORTED, NULL, 0), -EIO);
	/* sense data with a status that is not CHECK CONDITION: the status rules */
	ck_assert_int_eq(scsierr_to_errno(GOOD, b, n), 0);
	ck_assert_int_eq(scsierr_to_errno(BUSY, b, n), -EAGAIN);
	for (st = 0; st < 256; st++) {
		int e = scsierr_to_errno((uint8_t)st, NULL, 0);

		switch (st) {
		case GOOD:
		case CONDITION_MET:
			ck_assert_int_eq(e, 0);
			break;
		case RESERVATION_CONFLICT:
			ck_assert_int_eq(e, -EBADE);
			break;
		case BUSY:
		case TASK_SET_FULL:
			ck_assert_int_eq(e, -EAGAIN);
			break;
		default:
			ck_assert_msg(e == -EIO, "status 0x%02x: %d", st, e);
		}
	}
}
END_TEST

/* CHECK CONDITION without sense we can read is an I/O error. */
START_TEST(test_check_condition_no_sense)
{
	uint8_t b[32];

	ck_assert_int_eq(scsierr_to_errno(CHECK_CONDITION, NULL, 0), -EIO);
	fixed(b, NO_SENSE, 0, 0);
	ck_assert_int_eq(scsierr_to_errno(CHECK_CONDITION, b, 0), -EIO);
	ck_assert_int_eq(scsierr_to_errno(CHECK_CONDITION, b, 2), -EIO);
	b[0] = 0x7f;
	ck_assert_int_eq(scsierr_to_errno(CHECK_CONDITION, b, 18), -EIO);
}
END_TEST

struct row {
	uint8_t key, asc, ascq;
	int err;
};

/* scsierr.h's table, row by row, with the ASC/ASCQ pairs that decide. */
static const struct row rows[] = {
	{NO_SENSE, 0x00, 0x00, 0},
	{RECOVERED_ERROR, 0x17, 0x01, 0},
	{NOT_READY, 0x04, 0x01, -EAGAIN},
	{NOT_READY, 0x04, 0x00, -EIO},
	{NOT_READY, 0x04, 0x02, -EIO},
	{NOT_READY, 0x3a, 0x00, -EIO},
	{NOT_READY, 0x00, 0x01, -EIO},
	{MEDIUM_ERROR, 0x11, 0x00, -EIO},
	{MEDIUM_ERROR, 0x0c, 0x00, -EIO},
	{HARDWARE_ERROR, 0x44, 0x00, -EIO},
	{ILLEGAL_REQUEST, 0x20, 0x00, -EOPNOTSUPP},
	{ILLEGAL_REQUEST, 0x20, 0x01, -EINVAL},
	{ILLEGAL_REQUEST, 0x21, 0x00, -EINVAL},
	{ILLEGAL_REQUEST, 0x24, 0x00, -EINVAL},
	{ILLEGAL_REQUEST, 0x25, 0x00, -EINVAL},
	{ILLEGAL_REQUEST, 0x00, 0x20, -EINVAL},
	{UNIT_ATTENTION, 0x29, 0x00, -EAGAIN},
	{UNIT_ATTENTION, 0x2a, 0x09, -EAGAIN},
	{DATA_PROTECT, 0x27, 0x07, -ENOSPC},
	{DATA_PROTECT, 0x27, 0x00, -EROFS},
	{DATA_PROTECT, 0x27, 0x02, -EROFS},
	{DATA_PROTECT, 0x07, 0x27, -EROFS},
	{BLANK_CHECK, 0x00, 0x00, -EIO},
	{VENDOR_SPECIFIC, 0x80, 0x00, -EIO},
	{COPY_ABORTED, 0x0d, 0x00, -EIO},
	{ABORTED_COMMAND, 0x47, 0x05, -EAGAIN},
	{ABORTED_COMMAND, 0x4b, 0x02, -EAGAIN},
	{KEY_0C, 0x00, 0x00, -EIO},
	{VOLUME_OVERFLOW, 0x00, 0x00, -EIO},
	{MISCOMPARE, 0x1d, 0x00, -EILSEQ},
	{KEY_0F, 0x00, 0x00, -EIO},
};

START_TEST(test_sense_rows)
{
	const struct row *r = &rows[_i];
	uint8_t b[32];
	size_t n;

	n = fixed(b, r->key, r->asc, r->ascq);
	ck_assert_msg(scsierr_to_errno(CHECK_CONDITION, b, n) == r->err,
		      "fixed %x/%02x/%02x: %d, want %d", r->key, r->asc, r->ascq,
		      scsierr_to_errno(CHECK_CONDITION, b, n), r->err);
	b[0] = 0x71;
	ck_assert_int_eq(scsierr_to_errno(CHECK_CONDITION, b, n), r->err);
	n = desc(b, r->key, r->asc, r->ascq);
	ck_assert_msg(scsierr_to_errno(CHECK_CONDITION, b, n) == r->err,
		      "descriptor %x/%02x/%02x: %d, want %d", r->key, r->asc, r->ascq,
		      scsierr_to_errno(CHECK_CONDITION, b, n), r->err);
	b[0] = 0x73;
	ck_assert_int_eq(scsierr_to_errno(CHECK_CONDITION, b, n), r->err);
}
END_TEST

/* Without its ASC the row is the key's "other": a cut DATA PROTECT
 * 27/07 is EROFS, a cut NOT READY 04/01 is EIO, a cut 20/00 EINVAL. */
START_TEST(test_rows_truncated)
{
	uint8_t b[32];

	fixed(b, DATA_PROTECT, 0x27, 0x07);
	ck_assert_int_eq(scsierr_to_errno(CHECK_CONDITION, b, 13), -EROFS);
	ck_assert_int_eq(scsierr_to_errno(CHECK_CONDITION, b, 14), -ENOSPC);
	fixed(b, NOT_READY, 0x04, 0x01);
	ck_assert_int_eq(scsierr_to_errno(CHECK_CONDITION, b, 8), -EIO);
	desc(b, ILLEGAL_REQUEST, 0x20, 0x00);
	ck_assert_int_eq(scsierr_to_errno(CHECK_CONDITION, b, 3), -EOPNOTSUPP);
	b[2] = 0x21;
	ck_assert_int_eq(scsierr_to_errno(CHECK_CONDITION, b, 2), -EINVAL);
	/* a cut MISCOMPARE and UNIT ATTENTION need no ASC */
	desc(b, MISCOMPARE, 0x1d, 0x00);
	ck_assert_int_eq(scsierr_to_errno(CHECK_CONDITION, b, 2), -EILSEQ);
}
END_TEST

static const char *describe(uint8_t status, const uint8_t *b, size_t n)
{
	static char out[128];

	memset(out, 'x', sizeof(out));
	ck_assert_ptr_eq(scsierr_describe(status, b, n, out, sizeof(out)), out);
	return out;
}

START_TEST(test_describe)
{
	uint8_t b[32];
	size_t n;

	n = fixed(b, ILLEGAL_REQUEST, 0x21, 0x00);
	ck_assert_str_eq(describe(CHECK_CONDITION, b, n),
			 "ILLEGAL REQUEST: LOGICAL BLOCK ADDRESS OUT OF RANGE (21/00)");
	n = desc(b, MEDIUM_ERROR, 0x11, 0x00);
	ck_assert_str_eq(describe(CHECK_CONDITION, b, n),
			 "MEDIUM ERROR: UNRECOVERED READ ERROR (11/00)");
	n = fixed(b, DATA_PROTECT, 0x27, 0x00);
	ck_assert_str_eq(describe(CHECK_CONDITION, b, n), "DATA PROTECT: WRITE PROTECTED (27/00)");
	n = fixed(b, NOT_READY, 0x04, 0x01);
	ck_assert_str_eq(describe(CHECK_CONDITION, b, n),
			 "NOT READY: LOGICAL UNIT IS IN PROCESS OF BECOMING READY (04/01)");
	n = fixed(b, UNIT_ATTENTION, 0x29, 0x07);
	ck_assert_str_eq(describe(CHECK_CONDITION, b, n),
			 "UNIT ATTENTION: I_T NEXUS LOSS OCCURRED (29/07)");
	n = fixed(b, ABORTED_COMMAND, 0x47, 0x05);
	ck_assert_str_eq(describe(CHECK_CONDITION, b, n),
			 "ABORTED COMMAND: PROTOCOL SERVICE CRC ERROR (47/05)");
	/* an ASC/ASCQ pair without a name, in upper-case hex */
	n = fixed(b, MEDIUM_ERROR, 0x11, 0x7f);
	ck_assert_str_eq(describe(CHECK_CONDITION, b, n), "MEDIUM ERROR (11/7F)");
	/* a deferred error says so: it belongs to an earlier command */
	n = fixed(b, MEDIUM_ERROR, 0x0c, 0x00);
	b[0] = 0x71;
	ck_assert_str_eq(describe(CHECK_CONDITION, b, n),
			 "MEDIUM ERROR: WRITE ERROR (0C/00), deferred");
	n = fixed(b, KEY_0F, 0, 0);
	ck_assert_str_eq(describe(CHECK_CONDITION, b, n),
			 "COMPLETED: NO ADDITIONAL SENSE INFORMATION (00/00)");
}
END_TEST

START_TEST(test_describe_status)
{
	uint8_t b[32];

	ck_assert_str_eq(describe(GOOD, NULL, 0), "GOOD");
	ck_assert_str_eq(describe(RESERVATION_CONFLICT, NULL, 0), "RESERVATION CONFLICT");
	ck_assert_str_eq(describe(BUSY, NULL, 0), "BUSY");
	ck_assert_str_eq(describe(TASK_SET_FULL, NULL, 0), "TASK SET FULL");
	ck_assert_str_eq(describe(TASK_ABORTED, NULL, 0), "TASK ABORTED");
	ck_assert_str_eq(describe(ACA_ACTIVE, NULL, 0), "ACA ACTIVE");
	ck_assert_str_eq(describe(CONDITION_MET, NULL, 0), "CONDITION MET");
	ck_assert_str_eq(describe(0x55, NULL, 0), "status 0x55");
	ck_assert_str_eq(describe(CHECK_CONDITION, NULL, 0), "CHECK CONDITION, no sense data");
	memset(b, 0, sizeof(b));
	ck_assert_str_eq(describe(CHECK_CONDITION, b, 18),
			 "CHECK CONDITION, unreadable sense data (response code 0x00, 18 bytes)");
}
END_TEST

/* The text is cut to fit, always terminated; no room, no write. */
START_TEST(test_describe_small)
{
	uint8_t b[32];
	char out[8];
	size_t n = fixed(b, ILLEGAL_REQUEST, 0x21, 0x00);

	memset(out, 'x', sizeof(out));
	ck_assert_ptr_eq(scsierr_describe(CHECK_CONDITION, b, n, out, sizeof(out)), out);
	ck_assert_str_eq(out, "ILLEGAL");
	memset(out, 'x', sizeof(out));
	ck_assert_ptr_eq(scsierr_describe(CHECK_CONDITION, b, n, out, 0), out);
	ck_assert_int_eq(out[0], 'x');
	ck_assert_ptr_eq(scsierr_describe(CHECK_CONDITION, b, n, out, 1), out);
	ck_assert_str_eq(out, "");
}
END_TEST

static Suite *scsierr_suite(void)
{
	Suite *su = suite_create("scsierr");
	TCase *tc = tcase_create("decode");

	tcase_add_test(tc, test_decode_fixed);
	tcase_add_test(tc, test_decode_descriptor);
	tcase_add_test(tc, test_decode_bad);
	tcase_add_test(tc, test_decode_truncated);
	suite_add_tcase(su, tc);
	tc = tcase_create("errno");
	tcase_add_test(tc, test_status_rows);
	tcase_add_test(tc, test_check_condition_no_sense);
	tcase_add_loop_test(tc, test_sense_rows, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_test(tc, test_rows_truncated);
	suite_add_tcase(su, tc);
	tc = tcase_create("describe");
	tcase_add_test(tc, test_describe);
	tcase_add_test(tc, test_describe_status);
	tcase_add_test(tc, test_describe_small);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(scsierr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
