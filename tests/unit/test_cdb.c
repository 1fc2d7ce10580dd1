/*
 * Unit tests for target/cdb: one hand-built CDB per command decoded to its
 * fields, the reserved-bit rejections with their field pointers (SPC-4
 * §4.5.2.4.2), short CDBs, unknown operation codes and service actions, and
 * the table itself (order, usage maps as REPORT SUPPORTED OPERATION CODES
 * must return them, and agreement between each map and the decoder).
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdb.h"

/* Decode the bytes into @c, expecting success. */
#define DECODE(c, ...)                                                 \
	do {                                                           \
		static const uint8_t b_[] = {__VA_ARGS__};             \
		ck_assert_int_eq(cdb_decode(b_, sizeof(b_), &(c)), 0); \
	} while (0)

/* Decode the bytes, expecting -EINVAL with the field pointer @byte/@bit. */
#define REJECT(byte, bit, ...)                                              \
	do {                                                                \
		static const uint8_t b_[] = {__VA_ARGS__};                  \
		struct cdb c_;                                              \
		ck_assert_int_eq(cdb_decode(b_, sizeof(b_), &c_), -EINVAL); \
		ck_assert_uint_eq(c_.err_byte, (byte));                     \
		ck_assert_uint_eq(c_.err_bit, (bit));                       \
		ck_assert_ptr_null(c_.desc);                                \
	} while (0)

START_TEST(test_test_unit_ready)
{
	struct cdb c;

	DECODE(c, 0x00, 0, 0, 0, 0, 0);
	ck_assert_str_eq(c.desc->name, "TEST UNIT READY");
	ck_assert_uint_eq(c.opcode, 0x00);
	ck_assert_int_eq(c.dir, CDB_DIR_NONE);
	REJECT(3, 0, 0x00, 0, 0, 0x01, 0, 0);
	REJECT(1, 7, 0x00, 0x80, 0, 0, 0, 0);
}
END_TEST

START_TEST(test_request_sense)
{
	struct cdb c;

	DECODE(c, 0x03, 0x01, 0, 0, 0xfc, 0);
	ck_assert_str_eq(c.desc->name, "REQUEST SENSE");
	ck_assert(c.desc_sense);
	ck_assert_uint_eq(c.alloc_len, 252);
	ck_assert_int_eq(c.dir, CDB_DIR_IN);
	REJECT(1, 1, 0x03, 0x03, 0, 0, 0xfc, 0);
	REJECT(2, 0, 0x03, 0, 0x01, 0, 0xfc, 0);
}
END_TEST

START_TEST(test_read6_write6)
{
	struct cdb c;

	DECODE(c, 0x08, 0x01, 0x02, 0x03, 0x05, 0);
	ck_assert_str_eq(c.desc->name, "READ(6)");
	ck_assert_uint_eq(c.lba, 0x010203);
	ck_assert_uint_eq(c.length, 5);
	ck_assert_int_eq(c.dir, CDB_DIR_IN);
	/* SBC-3: TRANSFER LENGTH 0 means 256 blocks; LBA is 21 bits. */
	DECODE(c, 0x08, 0x1f, 0xff, 0xff, 0x00, 0);
	ck_assert_uint_eq(c.lba, 0x1fffff);
	ck_assert_uint_eq(c.length, 256);
	DECODE(c, 0x08, 0, 0, 0, 0xff, 0);
	ck_assert_uint_eq(c.length, 255);
	DECODE(c, 0x0a, 0x00, 0x00, 0x10, 0x00, 0);
	ck_assert_str_eq(c.desc->name, "WRITE(6)");
	ck_assert_uint_eq(c.lba, 0x10);
	ck_assert_uint_eq(c.length, 256);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	/* Byte 1 bits 7-5 are reserved (formerly the LUN). */
	REJECT(1, 5, 0x08, 0x20, 0, 0, 1, 0);
	REJECT(1, 7, 0x0a, 0xff, 0, 0, 1, 0);
}
END_TEST

START_TEST(test_inquiry)
{
	struct cdb c;

	DECODE(c, 0x12, 0x01, 0x83, 0x01, 0x00, 0);
	ck_assert_str_eq(c.desc->name, "INQUIRY");
	ck_assert(c.evpd);
	ck_assert_uint_eq(c.page_code, 0x83);
	ck_assert_uint_eq(c.alloc_len, 256);
	DECODE(c, 0x12, 0x00, 0x00, 0x00, 0x24, 0);
	ck_assert(!c.evpd);
	ck_assert_uint_eq(c.alloc_len, 36);
	/* The obsolete CMDDT bit is not supported. */
	REJECT(1, 1, 0x12, 0x02, 0, 0, 0x24, 0);
	REJECT(1, 7, 0x12, 0x81, 0, 0, 0x24, 0);
}
END_TEST

START_TEST(test_mode_sense)
{
	struct cdb c;

	DECODE(c, 0x1a, 0x08, 0x3f, 0xff, 0xff, 0);
	ck_assert_str_eq(c.desc->name, "MODE SENSE(6)");
	ck_assert(c.dbd);
	ck_assert_uint_eq(c.pc, 0);
	ck_assert_uint_eq(c.page_code, 0x3f);
	ck_assert_uint_eq(c.subpage, 0xff);
	ck_assert_uint_eq(c.alloc_len, 255);
	DECODE(c, 0x1a, 0x00, 0xca, 0x00, 0x10, 0);
	ck_assert_uint_eq(c.pc, 3);
	ck_assert_uint_eq(c.page_code, 0x0a);
	ck_assert(!c.dbd);
	DECODE(c, 0x5a, 0x18, 0x4a, 0x01, 0, 0, 0, 0x12, 0x34, 0);
	ck_assert_str_eq(c.desc->name, "MODE SENSE(10)");
	ck_assert(c.llbaa);
	ck_assert(c.dbd);
	ck_assert_uint_eq(c.pc, 1);
	ck_assert_uint_eq(c.page_code, 0x0a);
	ck_assert_uint_eq(c.subpage, 1);
	ck_assert_uint_eq(c.alloc_len, 0x1234);
	ck_assert_int_eq(c.dir, CDB_DIR_IN);
	/* LLBAA does not exist in MODE SENSE(6). */
	REJECT(1, 4, 0x1a, 0x10, 0x3f, 0, 0xff, 0);
	REJECT(1, 0, 0x1a, 0x01, 0x3f, 0, 0xff, 0);
	REJECT(5, 6, 0x5a, 0, 0x3f, 0, 0, 0x40, 0, 0, 0xff, 0);
}
END_TEST

START_TEST(test_mode_select)
{
	struct cdb c;

	DECODE(c, 0x15, 0x11, 0, 0, 0x18, 0);
	ck_assert_str_eq(c.desc->name, "MODE SELECT(6)");
	ck_assert(c.pf);
	ck_assert(c.sp);
	ck_assert_uint_eq(c.param_len, 24);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	DECODE(c, 0x55, 0x10, 0, 0, 0, 0, 0, 0x01, 0x00, 0);
	ck_assert_str_eq(c.desc->name, "MODE SELECT(10)");
	ck_assert(c.pf);
	ck_assert(!c.sp);
	ck_assert_uint_eq(c.param_len, 256);
	REJECT(1, 3, 0x15, 0x08, 0, 0, 0x18, 0);
	REJECT(2, 7, 0x55, 0, 0x80, 0, 0, 0, 0, 0, 0x18, 0);
}
END_TEST

START_TEST(test_start_stop_unit)
{
	struct cdb c;

	DECODE(c, 0x1b, 0x01, 0x00, 0x0a, 0x37, 0);
	ck_assert_str_eq(c.desc->name, "START STOP UNIT");
	ck_assert(c.immed);
	ck_assert_uint_eq(c.power_mod, 0x0a);
	ck_assert_uint_eq(c.power_cond, 3);
	ck_assert(c.no_flush);
	ck_assert(c.loej);
	ck_assert(c.start);
	DECODE(c, 0x1b, 0, 0, 0, 0x02, 0);
	ck_assert(c.loej);
	ck_assert(!c.start);
	ck_assert(!c.immed);
	REJECT(4, 3, 0x1b, 0, 0, 0, 0x08, 0);
	REJECT(3, 4, 0x1b, 0, 0, 0x10, 0, 0);
	REJECT(2, 0, 0x1b, 0, 0x01, 0, 0, 0);
}
END_TEST

START_TEST(test_prevent_allow)
{
	struct cdb c;

	DECODE(c, 0x1e, 0, 0, 0, 0x03, 0);
	ck_assert_str_eq(c.desc->name, "PREVENT ALLOW MEDIUM REMOVAL");
	ck_assert_uint_eq(c.prevent, 3);
	DECODE(c, 0x1e, 0, 0, 0, 0x01, 0);
	ck_assert_uint_eq(c.prevent, 1);
	REJECT(4, 2, 0x1e, 0, 0, 0, 0x05, 0);
}
END_TEST

START_TEST(test_reserve_release)
{
	struct cdb c;

	DECODE(c, 0x16, 0, 0, 0, 0, 0);
	ck_assert_str_eq(c.desc->name, "RESERVE(6)");
	DECODE(c, 0x17, 0, 0, 0, 0, 0);
	ck_assert_str_eq(c.desc->name, "RELEASE(6)");
	/* No third party, no extents, no reservation identification. */
	REJECT(1, 4, 0x16, 0x10, 0, 0, 0, 0);
	REJECT(1, 0, 0x17, 0x01, 0, 0, 0, 0);
	REJECT(2, 1, 0x16, 0, 0x02, 0, 0, 0);
	REJECT(4, 7, 0x16, 0, 0, 0, 0x80, 0);
	/* With 3RDPTY zero, LONGID, the device ID and the length are ignored. */
	DECODE(c, 0x56, 0x02, 0, 0x07, 0, 0, 0, 0x00, 0x08, 0);
	ck_assert_str_eq(c.desc->name, "RESERVE(10)");
	ck_assert_uint_eq(c.param_len, 0);
	ck_assert_int_eq(c.dir, CDB_DIR_NONE);
	DECODE(c, 0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	ck_assert_str_eq(c.desc->name, "RELEASE(10)");
	REJECT(1, 4, 0x56, 0x12, 0, 0x07, 0, 0, 0, 0, 0x08, 0);
	REJECT(1, 0, 0x57, 0x01, 0, 0, 0, 0, 0, 0, 0, 0);
	REJECT(2, 7, 0x56, 0, 0x80, 0, 0, 0, 0, 0, 0, 0);
	REJECT(5, 0, 0x57, 0, 0, 0, 0, 0x01, 0, 0, 0, 0);
}
END_TEST

START_TEST(test_read_capacity)
{
	struct cdb c;

	DECODE(c, 0x25, 0, 0, 0, 0x10, 0x00, 0, 0, 0x01, 0);
	ck_assert_str_eq(c.desc->name, "READ CAPACITY(10)");
	ck_assert_uint_eq(c.lba, 0x1000);
	ck_assert(c.pmi);
	ck_assert_int_eq(c.dir, CDB_DIR_IN);
	/* The obsolete RELADR bit. */
	REJECT(1, 0, 0x25, 0x01, 0, 0, 0, 0, 0, 0, 0, 0);
	REJECT(8, 1, 0x25, 0, 0, 0, 0, 0, 0, 0, 0x02, 0);
	DECODE(c, 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0x20, 0x01, 0);
	ck_assert_str_eq(c.desc->name, "READ CAPACITY(16)");
	ck_assert_uint_eq(c.sa, 0x10);
	ck_assert_uint_eq(c.lba, 1);
	ck_assert_uint_eq(c.alloc_len, 32);
	ck_assert(c.pmi);
	/* Bits 7-5 of the service action byte are reserved. */
	REJECT(1, 5, 0x9e, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0);
	REJECT(14, 1, 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x02, 0);
}
END_TEST

START_TEST(test_get_lba_status)
{
	struct cdb c;

	DECODE(c, 0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0, 0, 0, 0x18, 0, 0);
	ck_assert_str_eq(c.desc->name, "GET LBA STATUS");
	ck_assert_uint_eq(c.sa, 0x12);
	ck_assert_uint_eq(c.lba, 0x100);
	ck_assert_uint_eq(c.alloc_len, 0x18);
	ck_assert_int_eq(c.dir, CDB_DIR_IN);
	REJECT(14, 0, 0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x18, 0x01, 0);
}
END_TEST

START_TEST(test_read_write_10)
{
	struct cdb c;

	DECODE(c, 0x28, 0x18, 0x12, 0x34, 0x56, 0x78, 0x25, 0x00, 0x10, 0);
	ck_assert_str_eq(c.desc->name, "READ(10)");
	ck_assert(c.dpo);
	ck_assert(c.fua);
	ck_assert_uint_eq(c.lba, 0x12345678);
	ck_assert_uint_eq(c.group, 0x25);
	ck_assert_uint_eq(c.length, 0x10);
	ck_assert_int_eq(c.dir, CDB_DIR_IN);
	DECODE(c, 0x2a, 0x08, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0);
	ck_assert_str_eq(c.desc->name, "WRITE(10)");
	ck_assert(!c.dpo);
	ck_assert(c.fua);
	ck_assert_uint_eq(c.lba, 0xffffffff);
	ck_assert_uint_eq(c.length, 0xffff);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	/* TRANSFER LENGTH 0 is zero blocks here, not 256. */
	DECODE(c, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	ck_assert_uint_eq(c.length, 0);
	/* FUA_NV is accepted (libiscsi sends it) and ignored. */
	DECODE(c, 0x2a, 0x0a, 0, 0, 0, 0, 0, 0, 1, 0);
	ck_assert(c.fua);
}
END_TEST

/* Each class of reserved-bit violation in READ/WRITE(10). */
START_TEST(test_read_write_10_reserved)
{
	/* RDPROTECT: no protection information; any value points at bit 7. */
	REJECT(1, 7, 0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0);
	REJECT(1, 7, 0x28, 0x60, 0, 0, 0, 0, 0, 0, 1, 0);
	REJECT(1, 7, 0x2a, 0x80, 0, 0, 0, 0, 0, 0, 1, 0);
	/* RARC, then the obsolete bit 0 */
	REJECT(1, 2, 0x28, 0x04, 0, 0, 0, 0, 0, 0, 1, 0);
	REJECT(1, 2, 0x28, 0x05, 0, 0, 0, 0, 0, 0, 1, 0);
	REJECT(1, 0, 0x2a, 0x01, 0, 0, 0, 0, 0, 0, 1, 0);
	/* byte 6 bits 7-6 */
	REJECT(6, 7, 0x28, 0, 0, 0, 0, 0, 0x80, 0, 1, 0);
	REJECT(6, 6, 0x2a, 0, 0, 0, 0, 0, 0x7f, 0, 1, 0);
	/* The first offending byte wins. */
	REJECT(1, 0, 0x28, 0x01, 0, 0, 0, 0, 0x80, 0, 1, 0x04);
	/* CONTROL: NACA, LINK, FLAG, vendor specific */
	REJECT(9, 2, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x04);
	REJECT(9, 0, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x01);
	REJECT(9, 1, 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0x02);
	REJECT(9, 7, 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0);
	REJECT(9, 5, 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0x20);
}
END_TEST

START_TEST(test_read_write_12)
{
	struct cdb c;

	DECODE(c, 0xa8, 0x08, 0, 0, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0);
	ck_assert_str_eq(c.desc->name, "READ(12)");
	ck_assert(c.fua);
	ck_assert(!c.dpo);
	ck_assert_uint_eq(c.lba, 0x1000);
	ck_assert_uint_eq(c.length, 0x10000);
	ck_assert_uint_eq(c.group, 1);
	DECODE(c, 0xaa, 0x10, 0x80, 0, 0, 0, 0, 0, 0, 0x08, 0x3f, 0);
	ck_assert_str_eq(c.desc->name, "WRITE(12)");
	ck_assert(c.dpo);
	ck_assert_uint_eq(c.lba, 0x80000000);
	ck_assert_uint_eq(c.length, 8);
	ck_assert_uint_eq(c.group, 0x3f);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	/* Restricted for MMC, then reserved */
	REJECT(10, 7, 0xa8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0);
	REJECT(10, 6, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x40, 0);
	REJECT(1, 7, 0xaa, 0xe0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
	REJECT(11, 2, 0xa8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x04);
}
END_TEST

START_TEST(test_read_write_16)
{
	struct cdb c;

	DECODE(c, 0x88, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x01, 0x00, 0x3f, 0);
	ck_assert_str_eq(c.desc->name, "READ(16)");
	ck_assert(c.dpo);
	ck_assert(!c.fua);
	ck_assert_uint_eq(c.lba, 0x0102030405060708ull);
	ck_assert_uint_eq(c.length, 256);
	ck_assert_uint_eq(c.group, 0x3f);
	ck_assert_int_eq(c.dir, CDB_DIR_IN);
	DECODE(c, 0x8a, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	       0xff, 0, 0);
	ck_assert_str_eq(c.desc->name, "WRITE(16)");
	ck_assert(c.fua);
	ck_assert_uint_eq(c.lba, UINT64_MAX);
	ck_assert_uint_eq(c.length, UINT32_MAX);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	/* DLD2 (SBC-4) / reserved, DLD1 / restricted for MMC */
	REJECT(1, 0, 0x88, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
	REJECT(14, 7, 0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0);
	REJECT(14, 6, 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x40, 0);
	REJECT(1, 7, 0x8a, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
	REJECT(15, 2, 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x04);
}
END_TEST

START_TEST(test_verify)
{
	struct cdb c;

	DECODE(c, 0x2f, 0x12, 0, 0, 0, 0x08, 0x02, 0x00, 0x04, 0);
	ck_assert_str_eq(c.desc->name, "VERIFY(10)");
	ck_assert(c.dpo);
	ck_assert_uint_eq(c.bytchk, 1);
	ck_assert_uint_eq(c.lba, 8);
	ck_assert_uint_eq(c.group, 2);
	ck_assert_uint_eq(c.length, 4);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	/* BYTCHK 0: the medium is verified, no data moves. */
	DECODE(c, 0x2f, 0x00, 0, 0, 0, 0x08, 0, 0x00, 0x04, 0);
	ck_assert_uint_eq(c.bytchk, 0);
	ck_assert_int_eq(c.dir, CDB_DIR_NONE);
	/* BYTCHK is 2 bits (SBC-3 r36): 11b compares one block against each. */
	DECODE(c, 0xaf, 0x06, 0, 0, 0x10, 0, 0, 0, 0, 0x02, 0, 0);
	ck_assert_str_eq(c.desc->name, "VERIFY(12)");
	ck_assert_uint_eq(c.bytchk, 3);
	ck_assert_uint_eq(c.lba, 0x1000);
	ck_assert_uint_eq(c.length, 2);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	DECODE(c, 0x8f, 0x04, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0);
	ck_assert_str_eq(c.desc->name, "VERIFY(16)");
	ck_assert_uint_eq(c.bytchk, 2);
	ck_assert_uint_eq(c.lba, 0x100000000ull);
	ck_assert_uint_eq(c.length, 9);
	/* VRPROTECT, reserved bit 3 (no FUA), obsolete bit 0 */
	REJECT(1, 7, 0x2f, 0x20, 0, 0, 0, 0, 0, 0, 1, 0);
	REJECT(1, 3, 0x2f, 0x08, 0, 0, 0, 0, 0, 0, 1, 0);
	REJECT(1, 0, 0xaf, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
	REJECT(1, 0, 0x8f, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
	REJECT(14, 7, 0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0);
}
END_TEST

START_TEST(test_write_and_verify)
{
	struct cdb c;

	DECODE(c, 0x2e, 0x12, 0, 0, 0, 0x08, 0, 0x00, 0x04, 0);
	ck_assert_str_eq(c.desc->name, "WRITE AND VERIFY(10)");
	ck_assert(c.dpo);
	ck_assert_uint_eq(c.bytchk, 1);
	ck_assert_uint_eq(c.lba, 8);
	ck_assert_uint_eq(c.length, 4);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	/* BYTCHK 0 still writes: data-out */
	DECODE(c, 0xae, 0x00, 0, 0, 0, 0x01, 0, 0, 0, 0x01, 0x05, 0);
	ck_assert_str_eq(c.desc->name, "WRITE AND VERIFY(12)");
	ck_assert_uint_eq(c.bytchk, 0);
	ck_assert_uint_eq(c.group, 5);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	DECODE(c, 0x8e, 0x02, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0);
	ck_assert_str_eq(c.desc->name, "WRITE AND VERIFY(16)");
	ck_assert_uint_eq(c.bytchk, 1);
	ck_assert_uint_eq(c.lba, 7);
	/* There is no FUA in WRITE AND VERIFY. */
	REJECT(1, 3, 0x2e, 0x08, 0, 0, 0, 0, 0, 0, 1, 0);
	REJECT(1, 7, 0xae, 0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
	REJECT(1, 0, 0x8e, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
}
END_TEST

START_TEST(test_compare_and_write)
{
	struct cdb c;

	DECODE(c, 0x89, 0x18, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0x01, 0x02, 0);
	ck_assert_str_eq(c.desc->name, "COMPARE AND WRITE");
	ck_assert(c.dpo);
	ck_assert(c.fua);
	ck_assert_uint_eq(c.lba, 0x1234);
	ck_assert_uint_eq(c.length, 1);
	ck_assert_uint_eq(c.group, 2);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	REJECT(10, 0, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 1, 0, 0);
	REJECT(12, 7, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 1, 0, 0);
	REJECT(1, 0, 0x89, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
	REJECT(1, 7, 0x89, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
}
END_TEST

START_TEST(test_orwrite)
{
	struct cdb c;

	DECODE(c, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0x08, 0x01, 0);
	ck_assert_str_eq(c.desc->name, "ORWRITE(16)");
	ck_assert(c.fua);
	ck_assert_uint_eq(c.lba, 0x40);
	ck_assert_uint_eq(c.length, 8);
	ck_assert_uint_eq(c.group, 1);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	REJECT(1, 7, 0x8b, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
	REJECT(1, 2, 0x8b, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
}
END_TEST

START_TEST(test_write_same)
{
	struct cdb c;

	DECODE(c, 0x41, 0x18, 0, 0, 0x01, 0x00, 0x03, 0x00, 0x10, 0);
	ck_assert_str_eq(c.desc->name, "WRITE SAME(10)");
	ck_assert(c.anchor);
	ck_assert(c.unmap);
	ck_assert_uint_eq(c.lba, 0x100);
	ck_assert_uint_eq(c.group, 3);
	ck_assert_uint_eq(c.length, 0x10);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	DECODE(c, 0x93, 0x08, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0x01, 0x00, 0, 0);
	ck_assert_str_eq(c.desc->name, "WRITE SAME(16)");
	ck_assert(c.unmap);
	ck_assert(!c.ndob);
	ck_assert_uint_eq(c.lba, 0x20);
	ck_assert_uint_eq(c.length, 256);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	/* NDOB: no data-out buffer */
	DECODE(c, 0x93, 0x09, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0x01, 0x00, 0, 0);
	ck_assert(c.ndob);
	ck_assert_int_eq(c.dir, CDB_DIR_NONE);
	/* The obsolete PBDATA, LBDATA and RELADR; NDOB is not in the 10-byte form. */
	REJECT(1, 2, 0x41, 0x04, 0, 0, 0, 0, 0, 0, 1, 0);
	REJECT(1, 1, 0x41, 0x02, 0, 0, 0, 0, 0, 0, 1, 0);
	REJECT(1, 0, 0x41, 0x01, 0, 0, 0, 0, 0, 0, 1, 0);
	REJECT(1, 2, 0x93, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
	REJECT(1, 7, 0x93, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
}
END_TEST

START_TEST(test_unmap)
{
	struct cdb c;

	DECODE(c, 0x42, 0x01, 0, 0, 0, 0, 0x05, 0x00, 0x18, 0);
	ck_assert_str_eq(c.desc->name, "UNMAP");
	ck_assert(c.anchor);
	ck_assert_uint_eq(c.group, 5);
	ck_assert_uint_eq(c.param_len, 24);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	REJECT(1, 1, 0x42, 0x02, 0, 0, 0, 0, 0, 0, 0x18, 0);
	REJECT(4, 4, 0x42, 0, 0, 0, 0x10, 0, 0, 0, 0x18, 0);
	REJECT(6, 6, 0x42, 0, 0, 0, 0, 0, 0x40, 0, 0x18, 0);
}
END_TEST

START_TEST(test_prefetch_sync_cache)
{
	struct cdb c;

	DECODE(c, 0x34, 0x02, 0, 0, 0, 0x10, 0x03, 0x00, 0x01, 0);
	ck_assert_str_eq(c.desc->name, "PRE-FETCH(10)");
	ck_assert(c.immed);
	ck_assert_uint_eq(c.lba, 0x10);
	ck_assert_uint_eq(c.group, 3);
	ck_assert_uint_eq(c.length, 1);
	ck_assert_int_eq(c.dir, CDB_DIR_NONE);
	DECODE(c, 0x90, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x02, 0x04, 0);
	ck_assert_str_eq(c.desc->name, "PRE-FETCH(16)");
	ck_assert(!c.immed);
	ck_assert_uint_eq(c.length, 2);
	ck_assert_uint_eq(c.group, 4);
	/* SYNC_NV is accepted (libiscsi sends it) and ignored. */
	DECODE(c, 0x35, 0x06, 0, 0, 0, 0, 0, 0, 0x01, 0);
	ck_assert_str_eq(c.desc->name, "SYNCHRONIZE CACHE(10)");
	ck_assert(c.immed);
	ck_assert_uint_eq(c.length, 1);
	DECODE(c, 0x91, 0x04, 0, 0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0x00, 0, 0);
	ck_assert_str_eq(c.desc->name, "SYNCHRONIZE CACHE(16)");
	ck_assert(!c.immed);
	ck_assert_uint_eq(c.lba, 8);
	ck_assert_uint_eq(c.length, 0);
	REJECT(1, 0, 0x34, 0x01, 0, 0, 0, 0, 0, 0, 1, 0);
	REJECT(1, 2, 0x90, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
	REJECT(1, 0, 0x35, 0x01, 0, 0, 0, 0, 0, 0, 1, 0);
	REJECT(1, 3, 0x91, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
}
END_TEST

START_TEST(test_persistent_reserve_in)
{
	static const char *const names[] = {
		"PERSISTENT RESERVE IN (READ KEYS)",
		"PERSISTENT RESERVE IN (READ RESERVATION)",
		"PERSISTENT RESERVE IN (REPORT CAPABILITIES)",
		"PERSISTENT RESERVE IN (READ FULL STATUS)",
	};
	uint8_t b[10] = {0x5e, 0, 0, 0, 0, 0, 0, 0x10, 0x00, 0};
	struct cdb c;

	for (uint8_t sa = 0; sa < 4; sa++) {
		b[1] = sa;
		ck_assert_int_eq(cdb_decode(b, sizeof(b), &c), 0);
		ck_assert_str_eq(c.desc->name, names[sa]);
		ck_assert_uint_eq(c.sa, sa);
		ck_assert_uint_eq(c.alloc_len, 4096);
		ck_assert_int_eq(c.dir, CDB_DIR_IN);
	}
	REJECT(2, 0, 0x5e, 0x01, 0x01, 0, 0, 0, 0, 0x10, 0, 0);
	REJECT(1, 6, 0x5e, 0x41, 0, 0, 0, 0, 0, 0x10, 0, 0);
}
END_TEST

START_TEST(test_persistent_reserve_out)
{
	struct cdb c;

	/* RESERVE: SCOPE 0 (LU_SCOPE), TYPE 3; 4-byte PARAMETER LIST LENGTH */
	DECODE(c, 0x5f, 0x01, 0x03, 0, 0, 0, 0, 0, 0x18, 0);
	ck_assert_str_eq(c.desc->name, "PERSISTENT RESERVE OUT (RESERVE)");
	ck_assert_uint_eq(c.sa, 1);
	ck_assert_uint_eq(c.scope, 0);
	ck_assert_uint_eq(c.type, 3);
	ck_assert_uint_eq(c.param_len, 24);
	ck_assert_int_eq(c.dir, CDB_DIR_OUT);
	DECODE(c, 0x5f, 0x04, 0x15, 0, 0, 0x01, 0x02, 0x03, 0x04, 0);
	ck_assert_str_eq(c.desc->name, "PERSISTENT RESERVE OUT (PREEMPT)");
	ck_assert_uint_eq(c.scope, 1);
	ck_assert_uint_eq(c.type, 5);
	ck_assert_uint_eq(c.param_len, 0x01020304);
	DECODE(c, 0x5f, 0x07, 0x06, 0, 0, 0, 0, 0, 0x28, 0);
	ck_assert_str_eq(c.desc->name, "PERSISTENT RESERVE OUT (REGISTER AND MOVE)");
	ck_assert_uint_eq(c.type, 6);
	/* REGISTER, CLEAR, REGISTER AND IGNORE EXISTING KEY ignore SCOPE/TYPE. */
	DECODE(c, 0x5f, 0x00, 0xff, 0, 0, 0, 0, 0, 0x18, 0);
	ck_assert_str_eq(c.desc->name, "PERSISTENT RESERVE OUT (REGISTER)");
	ck_assert_uint_eq(c.scope, 0);
	ck_assert_uint_eq(c.type, 0);
	DECODE(c, 0x5f, 0x03, 0x13, 0, 0, 0, 0, 0, 0x18, 0);
	ck_assert_str_eq(c.desc->name, "PERSISTENT RESERVE OUT (CLEAR)");
	DECODE(c, 0x5f, 0x06, 0x01, 0, 0, 0, 0, 0, 0x18, 0);
	ck_assert_str_eq(c.desc->name, "PERSISTENT RESERVE OUT (REGISTER AND IGNORE EXISTING KEY)");
	DECODE(c, 0x5f, 0x02, 0x01, 0, 0, 0, 0, 0, 0x18, 0);
	ck_assert_str_eq(c.desc->name, "PERSISTENT RESERVE OUT (RELEASE)");
	DECODE(c, 0x5f, 0x05, 0x01, 0, 0, 0, 0, 0, 0x18, 0);
	ck_assert_str_eq(c.desc->name, "PERSISTENT RESERVE OUT (PREEMPT AND ABORT)");
	REJECT(3, 0, 0x5f, 0x00, 0, 0x01, 0, 0, 0, 0, 0x18, 0);
	REJECT(4, 7, 0x5f, 0x01, 0x03, 0, 0x80, 0, 0, 0, 0x18, 0);
}
END_TEST

START_TEST(test_report_luns)
{
	struct cdb c;

	DECODE(c, 0xa0, 0, 0x02, 0, 0, 0, 0, 0, 0x10, 0x00, 0, 0);
	ck_assert_str_eq(c.desc->name, "REPORT LUNS");
	ck_assert_uint_eq(c.select_report, 2);
	ck_assert_uint_eq(c.alloc_len, 4096);
	ck_assert_int_eq(c.dir, CDB_DIR_IN);
	REJECT(1, 0, 0xa0, 0x01, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0);
	REJECT(10, 3, 0xa0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0x08, 0);
}
END_TEST

START_TEST(test_report_supported_opcodes)
{
	struct cdb c;

	DECODE(c, 0xa3, 0x0c, 0x82, 0x9e, 0x00, 0x10, 0, 0, 0x02, 0x00, 0, 0);
	ck_assert_str_eq(c.desc->name, "REPORT SUPPORTED OPERATION CODES");
	ck_assert_uint_eq(c.sa, 0x0c);
	ck_assert(c.rctd);
	ck_assert_uint_eq(c.options, 2);
	ck_assert_uint_eq(c.req_opcode, 0x9e);
	ck_assert_uint_eq(c.req_sa, 0x10);
	ck_assert_uint_eq(c.alloc_len, 512);
	ck_assert_int_eq(c.dir, CDB_DIR_IN);
	DECODE(c, 0xa3, 0x0c, 0x01, 0x28, 0x12, 0x34, 0x00, 0x01, 0x00, 0x00, 0, 0);
	ck_assert(!c.rctd);
	ck_assert_uint_eq(c.options, 1);
	ck_assert_uint_eq(c.req_sa, 0x1234);
	ck_assert_uint_eq(c.alloc_len, 0x10000);
	REJECT(2, 3, 0xa3, 0x0c, 0x08, 0, 0, 0, 0, 0, 0x02, 0, 0, 0);
	REJECT(10, 0, 0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x02, 0, 0x01, 0);
}
END_TEST

START_TEST(test_report_supported_tmfs)
{
	struct cdb c;

	DECODE(c, 0xa3, 0x0d, 0x80, 0, 0, 0, 0, 0, 0, 0x10, 0, 0);
	ck_assert_str_eq(c.desc->name, "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS");
	ck_assert_uint_eq(c.sa, 0x0d);
	ck_assert(c.repd);
	ck_assert_uint_eq(c.alloc_len, 16);
	REJECT(2, 6, 0xa3, 0x0d, 0x40, 0, 0, 0, 0, 0, 0, 0x10, 0, 0);
	REJECT(3, 0, 0xa3, 0x0d, 0, 0x01, 0, 0, 0, 0, 0, 0x10, 0, 0);
}
END_TEST

START_TEST(test_short_cdb)
{
	static const uint8_t read10[10] = {0x28};
	static const uint8_t read16[16] = {0x88};
	static const uint8_t sai[16] = {0x9e, 0x10};
	struct cdb c;

	ck_assert_int_eq(cdb_decode(read10, 9, &c), -EMSGSIZE);
	ck_assert_uint_eq(c.opcode, 0x28);
	ck_assert_ptr_null(c.desc);
	ck_assert_int_eq(cdb_decode(read10, 10, &c), 0);
	ck_assert_int_eq(cdb_decode(read16, 10, &c), -EMSGSIZE);
	ck_assert_int_eq(cdb_decode(read16, 15, &c), -EMSGSIZE);
	ck_assert_int_eq(cdb_decode(sai, 1, &c), -EMSGSIZE);
	ck_assert_int_eq(cdb_decode(sai, 12, &c), -EMSGSIZE);
	ck_assert_int_eq(cdb_decode(sai, 0, &c), -EMSGSIZE);
	/* iSCSI carries 16 bytes: what follows a 10-byte CDB is not looked at. */
	{
		uint8_t b[16] = {0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff};

		ck_assert_int_eq(cdb_decode(b, sizeof(b), &c), 0);
		ck_assert_uint_eq(c.lba, 1);
	}
}
END_TEST

START_TEST(test_unknown_opcode)
{
	static const uint8_t ops[] = {0x01, 0x04, 0x07, 0x1c, 0x2b, 0x3b, 0x4d,
				      0x7f, 0x83, 0x9f, 0xa4, 0xc0, 0xff};
	uint8_t b[16] = {0};
	struct cdb c;

	for (size_t i = 0; i < sizeof(ops); i++) {
		b[0] = ops[i];
		ck_assert_int_eq(cdb_decode(b, sizeof(b), &c), -EOPNOTSUPP);
		ck_assert_uint_eq(c.opcode, ops[i]);
		ck_assert_ptr_null(cdb_lookup(ops[i], 0));
	}
}
END_TEST

/* SPC-4: an unsupported service action is INVALID FIELD IN CDB at the SA field. */
START_TEST(test_unknown_service_action)
{
	uint8_t b[16] = {0};
	struct cdb c;

	b[0] = 0x9e;
	for (uint8_t sa = 0; sa < 0x20; sa++) {
		b[1] = sa;
		if (sa == 0x10 || sa == 0x12)
			continue;
		ck_assert_int_eq(cdb_decode(b, sizeof(b), &c), -EINVAL);
		ck_assert_uint_eq(c.err_byte, 1);
		ck_assert_uint_eq(c.err_bit, 4);
		ck_assert_uint_eq(c.sa, sa);
	}
	/* REPORT TARGET PORT GROUPS, MAINTENANCE IN 0Ah */
	REJECT(1, 4, 0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0);
	/* PERSISTENT RESERVE IN 04h..1Fh, as libiscsi's PrinServiceactionRange */
	b[0] = 0x5e;
	for (uint8_t sa = 4; sa < 0x20; sa++) {
		b[1] = sa;
		ck_assert_int_eq(cdb_decode(b, 10, &c), -EINVAL);
		ck_assert_uint_eq(c.err_byte, 1);
	}
	/* PERSISTENT RESERVE OUT REPLACE LOST RESERVATION (SPC-5) */
	REJECT(1, 4, 0x5f, 0x08, 0x01, 0, 0, 0, 0, 0, 0x18, 0);
}
END_TEST

START_TEST(test_error_sense)
{
	uint8_t b[16] = {0x28, 0x04, 0, 0, 0, 0, 0, 0, 1, 0};
	uint8_t buf[SENSE_MAX_LEN];
	struct cdb c;
	struct sense s;

	/* RARC set: INVALID FIELD IN CDB, SKSV | C/D | BPV | bit 2, byte 1 */
	ck_assert_int_eq(cdb_decode(b, 10, &c), -EINVAL);
	s = cdb_error_sense(-EINVAL, &c);
	ck_assert_int_eq(sense_encode(&s, 0, buf, sizeof(buf)), SENSE_FIXED_LEN);
	ck_assert_uint_eq(buf[2], SENSE_KEY_ILLEGAL_REQUEST);
	ck_assert_uint_eq(buf[12], 0x24);
	ck_assert_uint_eq(buf[13], 0x00);
	ck_assert_uint_eq(buf[15], 0xca);
	ck_assert_uint_eq(buf[16], 0x00);
	ck_assert_uint_eq(buf[17], 0x01);

	b[0] = 0x04;
	ck_assert_int_eq(cdb_decode(b, 10, &c), -EOPNOTSUPP);
	s = cdb_error_sense(-EOPNOTSUPP, &c);
	ck_assert_uint_eq(s.key, SENSE_KEY_ILLEGAL_REQUEST);
	ck_assert_uint_eq(s.asc, 0x20);
	ck_assert_uint_eq(s.ascq, 0x00);
	ck_assert(!s.field.valid);

	s = cdb_error_sense(-EMSGSIZE, &c);
	ck_assert_uint_eq(s.key, SENSE_KEY_ILLEGAL_REQUEST);
	ck_assert_uint_eq(s.asc, 0x24);
	ck_assert(!s.field.valid);

	s = cdb_error_sense(-ENOMEM, &c);
	ck_assert_uint_eq(s.key, SENSE_KEY_HARDWARE_ERROR);
	ck_assert_uint_eq(s.asc, 0x44);

	s = cdb_error_sense(0, &c);
	ck_assert_uint_eq(s.key, SENSE_KEY_NO_SENSE);
	ck_assert_uint_eq(s.asc, 0);
}
END_TEST

START_TEST(test_lookup)
{
	const struct cdb_desc *d;

	d = cdb_lookup(0x28, 0);
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d->name, "READ(10)");
	ck_assert(!d->has_sa);
	ck_assert_uint_eq(d->len, 10);
	/* Without service actions, the one asked for is ignored. */
	ck_assert_ptr_eq(cdb_lookup(0x28, 0x1234), d);
	d = cdb_lookup(0x9e, 0x10);
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d->name, "READ CAPACITY(16)");
	ck_assert(d->has_sa);
	ck_assert_uint_eq(d->sa, 0x10);
	ck_assert_ptr_null(cdb_lookup(0x9e, 0x11));
	ck_assert_ptr_null(cdb_lookup(0x9e, 0x1010));
	ck_assert_ptr_nonnull(cdb_lookup(0x5f, 0x07));
	ck_assert_ptr_null(cdb_lookup(0x5f, 0x08));
	ck_assert(cdb_has_sa(0x9e));
	ck_assert(cdb_has_sa(0xa3));
	ck_assert(cdb_has_sa(0x5e));
	ck_assert(cdb_has_sa(0x5f));
	ck_assert(!cdb_has_sa(0x28));
	ck_assert(!cdb_has_sa(0x04));
	/* The exact bytes REPORT SUPPORTED OPERATION CODES returns. */
	d = cdb_lookup(0x28, 0);
	ck_assert_mem_eq(
		d->usage,
		((const uint8_t[]){0x28, 0x18, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00}),
		10);
	d = cdb_lookup(0xa3, 0x0c);
	ck_assert_mem_eq(d->usage,
			 ((const uint8_t[]){0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0x00, 0x00}),
			 12);
	d = cdb_lookup(0x9e, 0x10);
	ck_assert_mem_eq(d->usage,
			 ((const uint8_t[]){0x9e, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00}),
			 16);
}
END_TEST

static const char *const expected_commands[] = {
	"TEST UNIT READY",
	"REQUEST SENSE",
	"INQUIRY",
	"REPORT LUNS",
	"READ CAPACITY(10)",
	"READ CAPACITY(16)",
	"READ(6)",
	"READ(10)",
	"READ(12)",
	"READ(16)",
	"WRITE(6)",
	"WRITE(10)",
	"WRITE(12)",
	"WRITE(16)",
	"WRITE AND VERIFY(10)",
	"WRITE AND VERIFY(12)",
	"WRITE AND VERIFY(16)",
	"VERIFY(10)",
	"VERIFY(12)",
	"VERIFY(16)",
	"COMPARE AND WRITE",
	"ORWRITE(16)",
	"WRITE SAME(10)",
	"WRITE SAME(16)",
	"UNMAP",
	"GET LBA STATUS",
	"SYNCHRONIZE CACHE(10)",
	"SYNCHRONIZE CACHE(16)",
	"PRE-FETCH(10)",
	"PRE-FETCH(16)",
	"MODE SENSE(6)",
	"MODE SENSE(10)",
	"MODE SELECT(6)",
	"MODE SELECT(10)",
	"START STOP UNIT",
	"PREVENT ALLOW MEDIUM REMOVAL",
	"RESERVE(6)",
	"RESERVE(10)",
	"RELEASE(6)",
	"RELEASE(10)",
	"PERSISTENT RESERVE IN (READ KEYS)",
	"PERSISTENT RESERVE OUT (REGISTER)",
	"REPORT SUPPORTED OPERATION CODES",
	"REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS",
};

static const struct cdb_desc *find_name(const char *name)
{
	for (const struct cdb_desc *d = cdb_next(NULL); d; d = cdb_next(d))
		if (!strcmp(d->name, name))
			return d;
	return NULL;
}

START_TEST(test_table_complete)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(expected_commands) / sizeof(expected_commands[0]); i++)
		ck_assert_msg(find_name(expected_commands[i]), "missing %s", expected_commands[i]);
	for (const struct cdb_desc *d = cdb_next(NULL); d; d = cdb_next(d))
		n++;
	ck_assert_uint_eq(n, 54);
}
END_TEST

/* What libiscsi and SPC-4 §6.35 check in every command descriptor. */
START_TEST(test_table_well_formed)
{
	const struct cdb_desc *prev = NULL;

	for (const struct cdb_desc *d = cdb_next(NULL); d; prev = d, d = cdb_next(d)) {
		ck_assert_ptr_nonnull(d->name);
		ck_assert_msg(d->len == 6 || d->len == 10 || d->len == 12 || d->len == 16, "%s",
			      d->name);
		ck_assert_uint_eq(d->usage[0], d->opcode);
		/* CONTROL: nothing supported, last byte */
		ck_assert_uint_eq(d->usage[d->len - 1], 0x00);
		for (size_t i = d->len; i < CDB_MAX_LEN; i++)
			ck_assert_uint_eq(d->usage[i], 0);
		if (d->has_sa)
			ck_assert_uint_eq(d->usage[1], d->sa);
		else
			ck_assert_uint_eq(d->sa, 0);
		ck_assert(d->has_sa == cdb_has_sa(d->opcode));
		ck_assert_ptr_eq(cdb_lookup(d->opcode, d->sa), d);
		/* sorted, unique (opcode, service action) */
		if (prev)
			ck_assert_msg(prev->opcode < d->opcode ||
					      (prev->opcode == d->opcode && prev->sa < d->sa),
				      "%s after %s", d->name, prev->name);
	}
}
END_TEST

static void desc_cdb(const struct cdb_desc *d, uint8_t *b)
{
	memset(b, 0, CDB_MAX_LEN);
	b[0] = d->opcode;
	if (d->has_sa)
		b[1] = d->sa;
}

/* RDPROTECT, WRPROTECT, VRPROTECT, ORPROTECT: byte 1, bits 7-5. */
static bool has_protect_field(uint8_t opcode)
{
	static const uint8_t ops[] = {0x28, 0x2a, 0x2e, 0x2f, 0x41, 0x88, 0x89, 0x8a,
				      0x8b, 0x8e, 0x8f, 0x93, 0xa8, 0xaa, 0xae, 0xaf};

	return memchr(ops, opcode, sizeof(ops)) != NULL;
}

/* A multi-bit field in error is reported at its left-most bit. */
static unsigned int expected_bit(const struct cdb_desc *d, uint8_t byte, int bit)
{
	if (byte == 1 && bit >= 5 && has_protect_field(d->opcode))
		return 7;
	return bit;
}

/*
 * The usage map and the decoder agree, bit by bit: a bit in the map changes
 * the decoded CDB, a bit outside it is rejected at that byte and bit (or at
 * the left-most bit of an unsupported field), except the few bits the
 * standard says to ignore, which change nothing.
 */
START_TEST(test_usage_map_agrees_with_decoder)
{
	for (const struct cdb_desc *d = cdb_next(NULL); d; d = cdb_next(d)) {
		uint8_t b[CDB_MAX_LEN];
		struct cdb zero, c;

		desc_cdb(d, b);
		ck_assert_int_eq(cdb_decode(b, d->len, &zero), 0);
		ck_assert_ptr_eq(zero.desc, d);
		for (uint8_t i = 1; i < d->len; i++) {
			for (int bit = 0; bit < 8; bit++) {
				uint8_t m = 1u << bit;
				int ret;

				if (d->has_sa && i == 1 && m & 0x1f)
					continue;
				desc_cdb(d, b);
				b[i] |= m;
				ret = cdb_decode(b, d->len, &c);
				if (d->usage[i] & m) {
					ck_assert_msg(ret == 0, "%s byte %u bit %d", d->name, i,
						      bit);
					ck_assert_msg(memcmp(&c, &zero, sizeof(c)),
						      "%s byte %u bit %d decodes to nothing",
						      d->name, i, bit);
				} else if (ret == 0) {
					ck_assert_msg(!memcmp(&c, &zero, sizeof(c)),
						      "%s byte %u bit %d ignored yet decoded",
						      d->name, i, bit);
				} else {
					ck_assert_int_eq(ret, -EINVAL);
					ck_assert_uint_eq(c.err_byte, i);
					ck_assert_msg(c.err_bit == expected_bit(d, i, bit),
						      "%s byte %u bit %d reported as bit %u",
						      d->name, i, bit, c.err_bit);
				}
			}
		}
	}
}
END_TEST

/* The bits accepted outside the usage map are exactly the documented ones. */
START_TEST(test_ignored_bits)
{
	static const struct {
		uint8_t opcode;
		uint16_t sa;
		uint8_t byte, mask;
	} ignored[] = {
		{0x28, 0, 1, 0x02},    {0x2a, 0, 1, 0x02},    {0xa8, 0, 1, 0x02},
		{0xaa, 0, 1, 0x02},    {0x88, 0, 1, 0x02},    {0x8a, 0, 1, 0x02},
		{0x89, 0, 1, 0x02},    {0x8b, 0, 1, 0x02},    {0x35, 0, 1, 0x04},
		{0x91, 0, 1, 0x04},    {0x56, 0, 1, 0x02},    {0x56, 0, 3, 0xff},
		{0x56, 0, 7, 0xff},    {0x56, 0, 8, 0xff},    {0x57, 0, 1, 0x02},
		{0x57, 0, 3, 0xff},    {0x57, 0, 7, 0xff},    {0x57, 0, 8, 0xff},
		{0x5f, 0x00, 2, 0xff}, {0x5f, 0x03, 2, 0xff}, {0x5f, 0x06, 2, 0xff},
	};
	size_t found = 0, n = sizeof(ignored) / sizeof(ignored[0]);

	for (const struct cdb_desc *d = cdb_next(NULL); d; d = cdb_next(d)) {
		for (uint8_t i = 1; i < d->len; i++) {
			for (int bit = 0; bit < 8; bit++) {
				uint8_t b[CDB_MAX_LEN], m = 1u << bit;
				bool listed = false;
				struct cdb c;

				if ((d->has_sa && i == 1 && m & 0x1f) || d->usage[i] & m)
					continue;
				desc_cdb(d, b);
				b[i] |= m;
				if (cdb_decode(b, d->len, &c) != 0)
					continue;
				for (size_t k = 0; k < n; k++)
					listed |= ignored[k].opcode == d->opcode &&
						  ignored[k].sa == d->sa && ignored[k].byte == i &&
						  ignored[k].mask & m;
				ck_assert_msg(listed, "%s byte %u bit %d accepted", d->name, i,
					      bit);
				found++;
			}
		}
	}
	/* 8 FUA_NV + 2 SYNC_NV + 2 * 25 RESERVE/RELEASE(10) + 3 * 8 SCOPE/TYPE */
	ck_assert_uint_eq(found, 8 + 2 + 2 * 25 + 3 * 8);
}
END_TEST

static Suite *cdb_suite(void)
{
	Suite *su = suite_create("cdb");
	TCase *tc = tcase_create("commands");
	TCase *tt = tcase_create("table");

	tcase_add_test(tc, test_test_unit_ready);
	tcase_add_test(tc, test_request_sense);
	tcase_add_test(tc, test_read6_write6);
	tcase_add_test(tc, test_inquiry);
	tcase_add_test(tc, test_mode_sense);
	tcase_add_test(tc, test_mode_select);
	tcase_add_test(tc, test_start_stop_unit);
	tcase_add_test(tc, test_prevent_allow);
	tcase_add_test(tc, test_reserve_release);
	tcase_add_test(tc, test_read_capacity);
	tcase_add_test(tc, test_get_lba_status);
	tcase_add_test(tc, test_read_write_10);
	tcase_add_test(tc, test_read_write_10_reserved);
	tcase_add_test(tc, test_read_write_12);
	tcase_add_test(tc, test_read_write_16);
	tcase_add_test(tc, test_verify);
	tcase_add_test(tc, test_write_and_verify);
	tcase_add_test(tc, test_compare_and_write);
	tcase_add_test(tc, test_orwrite);
	tcase_add_test(tc, test_write_same);
	tcase_add_test(tc, test_unmap);
	tcase_add_test(tc, test_prefetch_sync_cache);
	tcase_add_test(tc, test_persistent_reserve_in);
	tcase_add_test(tc, test_persistent_reserve_out);
	tcase_add_test(tc, test_report_luns);
	tcase_add_test(tc, test_report_supported_opcodes);
	tcase_add_test(tc, test_report_supported_tmfs);
	tcase_add_test(tc, test_short_cdb);
	tcase_add_test(tc, test_unknown_opcode);
	tcase_add_test(tc, test_unknown_service_action);
	tcase_add_test(tc, test_error_sense);
	suite_add_tcase(su, tc);
	tcase_add_test(tt, test_lookup);
	tcase_add_test(tt, test_table_complete);
	tcase_add_test(tt, test_table_well_formed);
	tcase_add_test(tt, test_usage_map_agrees_with_decoder);
	tcase_add_test(tt, test_ignored_bits);
	suite_add_tcase(su, tt);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(cdb_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
