/*
 * Unit tests for common/iscsi/iser_hdr: the iSER header of RFC 7145 §9,
 * Hello negotiation (§5.1.3, §10.1.3.2) and the iSER CM header, with bytes
 * written out by hand from the RFC's figures and from the layout of
 * Linux's include/scsi/iser.h.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iser_hdr.h"

/*
 * Linux include/scsi/iser.h, transcribed field for field: the bytes a Linux
 * initiator or target puts on the wire (__packed, __be32, __be64).
 */
#define LINUX_ISCSI_CTRL 0x10
#define LINUX_ISER_HELLO 0x20
#define LINUX_ISER_HELLORPLY 0x30
#define LINUX_ISER_WSV 0x08
#define LINUX_ISER_RSV 0x04
#define LINUX_ISER_ZBVA_NOT_SUP 0x80
#define LINUX_ISER_SEND_W_INV_NOT_SUP 0x40
#define LINUX_ISERT_ZBVA_NOT_USED 0x80
#define LINUX_ISERT_SEND_W_INV_NOT_USED 0x40

struct linux_iser_ctrl {
	uint8_t flags;
	uint8_t rsvd[3];
	uint32_t write_stag; /* __be32 */
	uint64_t write_va;   /* __be64 */
	uint32_t read_stag;  /* __be32 */
	uint64_t read_va;    /* __be64 */
} __attribute__((packed));

struct linux_iser_cm_hdr {
	uint8_t flags;
	uint8_t rsvd[3];
} __attribute__((packed));

_Static_assert(sizeof(struct linux_iser_ctrl) == ISER_HDR_LEN, "iser_ctrl size");
_Static_assert(sizeof(struct linux_iser_cm_hdr) == ISER_HDR_CM_LEN, "iser_cm_hdr size");

/* Decode from an exact-size heap copy, so ASan catches any read past @len. */
static int decode_exact(const uint8_t *bytes, size_t len, struct iser_hdr *hdr)
{
	uint8_t *copy = malloc(len ? len : 1);
	int ret;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, bytes, len);
	ret = iser_hdr_decode(copy, len, hdr);
	free(copy);
	return ret;
}

static void assert_encodes_to(const struct iser_hdr *hdr, const uint8_t *want)
{
	uint8_t out[ISER_HDR_LEN];

	memset(out, 0xee, sizeof(out));
	ck_assert_int_eq(iser_hdr_encode(hdr, out, sizeof(out)), 0);
	ck_assert_mem_eq(out, want, ISER_HDR_LEN);
}

/* RFC 7145 Figure 3, W set: Write STag 0x11223344, Write Base Offset
 * 0x0102030405060708. */
static const uint8_t ctrl_w[ISER_HDR_LEN] = {
	0x18, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
	0x07, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

START_TEST(test_ctrl_write)
{
	struct iser_hdr h;

	ck_assert_int_eq(decode_exact(ctrl_w, sizeof(ctrl_w), &h), 0);
	ck_assert_int_eq(h.opcode, ISER_HDR_CTRL);
	ck_assert(h.ctrl.wsv);
	ck_assert(!h.ctrl.rsv);
	ck_assert_uint_eq(h.ctrl.write_stag, 0x11223344);
	ck_assert_uint_eq(h.ctrl.write_va, 0x0102030405060708ULL);
	ck_assert_uint_eq(h.ctrl.read_stag, 0);
	ck_assert_uint_eq(h.ctrl.read_va, 0);
	assert_encodes_to(&h, ctrl_w);
}
END_TEST

START_TEST(test_ctrl_read)
{
	static const uint8_t bytes[ISER_HDR_LEN] = {
		0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88,
	};
	struct iser_hdr h;

	ck_assert_int_eq(decode_exact(bytes, sizeof(bytes), &h), 0);
	ck_assert_int_eq(h.opcode, ISER_HDR_CTRL);
	ck_assert(!h.ctrl.wsv);
	ck_assert(h.ctrl.rsv);
	ck_assert_uint_eq(h.ctrl.write_stag, 0);
	ck_assert_uint_eq(h.ctrl.write_va, 0);
	ck_assert_uint_eq(h.ctrl.read_stag, 0xdeadbeef);
	ck_assert_uint_eq(h.ctrl.read_va, 0xffeeddccbbaa9988ULL);
	assert_encodes_to(&h, bytes);
}
END_TEST

/* A bidirectional command, with the iSCSI BHS after the header: only the
 * header is decoded, and the encoder leaves the rest of the buffer alone. */
START_TEST(test_ctrl_both_with_pdu)
{
	uint8_t msg[ISER_HDR_LEN + 48];
	struct iser_hdr h;

	memset(msg, 0x5a, sizeof(msg));
	memcpy(msg, (const uint8_t[]){0x1c, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0,	   0,
				      0x10, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0x20, 0},
	       ISER_HDR_LEN);
	ck_assert_int_eq(decode_exact(msg, sizeof(msg), &h), 0);
	ck_assert(h.ctrl.wsv && h.ctrl.rsv);
	ck_assert_uint_eq(h.ctrl.write_stag, 1);
	ck_assert_uint_eq(h.ctrl.write_va, 0x1000);
	ck_assert_uint_eq(h.ctrl.read_stag, 2);
	ck_assert_uint_eq(h.ctrl.read_va, 0x2000);

	memset(msg, 0x5a, sizeof(msg));
	ck_assert_int_eq(iser_hdr_encode(&h, msg, sizeof(msg)), 0);
	ck_assert_uint_eq(msg[0], 0x1c);
	ck_assert_uint_eq(msg[1], 0);
	ck_assert_uint_eq(msg[ISER_HDR_LEN], 0x5a);
	ck_assert_uint_eq(msg[sizeof(msg) - 1], 0x5a);
}
END_TEST

/* §9.2: reserved fields, and STag/Base Offset behind a clear flag, are
 * ignored on receive and zero on transmit. */
START_TEST(test_ctrl_ignored_fields)
{
	uint8_t bytes[ISER_HDR_LEN], want[ISER_HDR_LEN];
	struct iser_hdr h;

	memset(bytes, 0xff, sizeof(bytes));
	bytes[0] = 0x13; /* opcode 1, no W, no R, both reserved bits set */
	ck_assert_int_eq(decode_exact(bytes, sizeof(bytes), &h), 0);
	ck_assert_int_eq(h.opcode, ISER_HDR_CTRL);
	ck_assert(!h.ctrl.wsv && !h.ctrl.rsv);
	ck_assert_uint_eq(h.ctrl.write_stag, 0);
	ck_assert_uint_eq(h.ctrl.write_va, 0);
	ck_assert_uint_eq(h.ctrl.read_stag, 0);
	ck_assert_uint_eq(h.ctrl.read_va, 0);

	/* Values in the struct behind a clear flag do not reach the wire. */
	h.ctrl.write_stag = 7;
	h.ctrl.read_va = 9;
	memset(want, 0, sizeof(want));
	want[0] = 0x10;
	assert_encodes_to(&h, want);
}
END_TEST

/* Bytes laid out through Linux's struct iser_ctrl decode as ours, and ours
 * read back through it. */
START_TEST(test_ctrl_linux_layout)
{
	struct linux_iser_ctrl k = {
		.flags = LINUX_ISCSI_CTRL | LINUX_ISER_WSV | LINUX_ISER_RSV,
		.write_stag = htobe32(0x00abcdef),
		.write_va = htobe64(0x00007f1234567000ULL),
		.read_stag = htobe32(0x12345678),
		.read_va = htobe64(0x00007f89abcde000ULL),
	};
	uint8_t bytes[ISER_HDR_LEN];
	struct iser_hdr h;

	memcpy(bytes, &k, sizeof(bytes));
	ck_assert_int_eq(decode_exact(bytes, sizeof(bytes), &h), 0);
	ck_assert_int_eq(h.opcode, ISER_HDR_CTRL);
	ck_assert(h.ctrl.wsv && h.ctrl.rsv);
	ck_assert_uint_eq(h.ctrl.write_stag, 0x00abcdef);
	ck_assert_uint_eq(h.ctrl.write_va, 0x00007f1234567000ULL);
	ck_assert_uint_eq(h.ctrl.read_stag, 0x12345678);
	ck_assert_uint_eq(h.ctrl.read_va, 0x00007f89abcde000ULL);

	h.ctrl.rsv = false;
	ck_assert_int_eq(iser_hdr_encode(&h, bytes, sizeof(bytes)), 0);
	memcpy(&k, bytes, sizeof(k));
	ck_assert_uint_eq(k.flags, LINUX_ISCSI_CTRL | LINUX_ISER_WSV);
	ck_assert_uint_eq(be32toh(k.write_stag), 0x00abcdef);
	ck_assert_uint_eq(be64toh(k.write_va), 0x00007f1234567000ULL);
	ck_assert_uint_eq(k.read_stag, 0);
	ck_assert_uint_eq(k.read_va, 0);
	ck_assert_uint_eq(k.rsvd[0] | k.rsvd[1] | k.rsvd[2], 0);
}
END_TEST

/* Linux's opcode constants are ours in the high nibble of byte 0. */
START_TEST(test_linux_opcodes)
{
	static const struct {
		uint8_t flags;
		enum iser_hdr_opcode op;
	} map[] = {
		{LINUX_ISCSI_CTRL, ISER_HDR_CTRL},
		{LINUX_ISER_HELLO, ISER_HDR_HELLO},
		{LINUX_ISER_HELLORPLY, ISER_HDR_HELLO_REPLY},
	};
	uint8_t bytes[ISER_HDR_LEN] = {0};
	struct iser_hdr h;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		bytes[0] = map[i].flags;
		bytes[1] = 0xaa; /* versions 10/10, so a Hello/HelloReply is valid */
		ck_assert_int_eq(decode_exact(bytes, sizeof(bytes), &h), 0);
		ck_assert_int_eq(h.opcode, map[i].op);
	}
}
END_TEST

/* RFC 7145 Figure 4: MaxVer 10, MinVer 10, iSER-IRD 0x0102. */
START_TEST(test_hello)
{
	static const uint8_t bytes[ISER_HDR_LEN] = {0x20, 0xaa, 0x01, 0x02};
	uint8_t noisy[ISER_HDR_LEN];
	struct iser_hdr h, h2;

	ck_assert_int_eq(decode_exact(bytes, sizeof(bytes), &h), 0);
	ck_assert_int_eq(h.opcode, ISER_HDR_HELLO);
	ck_assert_uint_eq(h.hello.max_ver, 10);
	ck_assert_uint_eq(h.hello.min_ver, 10);
	ck_assert_uint_eq(h.hello.ird, 0x0102);
	assert_encodes_to(&h, bytes);

	/* Reserved nibble and bytes 4-27 are ignored on receive (§9.3). */
	memset(noisy, 0xff, sizeof(noisy));
	memcpy(noisy, (const uint8_t[]){0x2f, 0xaa, 0x01, 0x02}, 4);
	ck_assert_int_eq(decode_exact(noisy, sizeof(noisy), &h2), 0);
	ck_assert_mem_eq(&h, &h2, sizeof(h));
}
END_TEST

/* RFC 7145 Figure 5: REJ in the last bit of byte 0, MaxVer 11, CurVer 10. */
START_TEST(test_hello_reply)
{
	static const uint8_t rej[ISER_HDR_LEN] = {0x31, 0xba, 0x00, 0x08};
	static const uint8_t ok[ISER_HDR_LEN] = {0x30, 0xaa, 0xff, 0xfe};
	uint8_t noisy[ISER_HDR_LEN];
	struct iser_hdr h, h2;

	ck_assert_int_eq(decode_exact(rej, sizeof(rej), &h), 0);
	ck_assert_int_eq(h.opcode, ISER_HDR_HELLO_REPLY);
	ck_assert(h.hello_reply.rej);
	ck_assert_uint_eq(h.hello_reply.max_ver, 11);
	ck_assert_uint_eq(h.hello_reply.cur_ver, 10);
	ck_assert_uint_eq(h.hello_reply.ord, 8);
	assert_encodes_to(&h, rej);

	ck_assert_int_eq(decode_exact(ok, sizeof(ok), &h), 0);
	ck_assert(!h.hello_reply.rej);
	ck_assert_uint_eq(h.hello_reply.ord, 0xfffe);
	assert_encodes_to(&h, ok);

	/* The three reserved bits before REJ are ignored (§9.4). */
	memset(noisy, 0xff, sizeof(noisy));
	memcpy(noisy, (const uint8_t[]){0x3e, 0xaa, 0xff, 0xfe}, 4);
	ck_assert_int_eq(decode_exact(noisy, sizeof(noisy), &h2), 0);
	ck_assert_mem_eq(&h, &h2, sizeof(h));
}
END_TEST

START_TEST(test_err_short)
{
	static const uint8_t firsts[] = {0x1c, 0x20, 0x31, 0x00, 0x40};
	uint8_t bytes[ISER_HDR_LEN];
	struct iser_hdr h;

	memset(bytes, 0xaa, sizeof(bytes));
	for (size_t i = 0; i < sizeof(firsts); i++) {
		bytes[0] = firsts[i];
		for (size_t len = 0; len < ISER_HDR_LEN; len++)
			ck_assert_int_eq(decode_exact(bytes, len, &h), -ENODATA);
	}
}
END_TEST

START_TEST(test_err_opcode)
{
	uint8_t bytes[ISER_HDR_LEN + 48] = {0};
	struct iser_hdr h;

	for (unsigned int op = 0; op < 16; op++) {
		int want = op >= 1 && op <= 3 ? 0 : -EPROTO;

		bytes[0] = (uint8_t)(op << 4);
		bytes[1] = 0xaa;
		ck_assert_int_eq(decode_exact(bytes, ISER_HDR_LEN, &h), want);
	}
}
END_TEST

/* §9.3, §9.4, §10.1.3.3: a Hello or HelloReply longer than the header is a
 * length error; a control-type header is followed by its PDU. */
START_TEST(test_err_hello_length)
{
	uint8_t bytes[ISER_HDR_LEN + 4] = {0};
	struct iser_hdr h;

	bytes[1] = 0xaa;
	bytes[0] = 0x20;
	ck_assert_int_eq(decode_exact(bytes, ISER_HDR_LEN + 1, &h), -EMSGSIZE);
	ck_assert_int_eq(decode_exact(bytes, ISER_HDR_LEN + 4, &h), -EMSGSIZE);
	bytes[0] = 0x30;
	ck_assert_int_eq(decode_exact(bytes, ISER_HDR_LEN + 1, &h), -EMSGSIZE);
	bytes[0] = 0x10;
	ck_assert_int_eq(decode_exact(bytes, ISER_HDR_LEN + 4, &h), 0);
}
END_TEST

/* §10.1.3.3: inconsistent versions are a format error. */
START_TEST(test_err_versions)
{
	uint8_t bytes[ISER_HDR_LEN] = {0x20, 0xab};
	struct iser_hdr h;

	ck_assert_int_eq(decode_exact(bytes, sizeof(bytes), &h), -EBADMSG); /* 10 < 11 */
	bytes[1] = 0xba;
	ck_assert_int_eq(decode_exact(bytes, sizeof(bytes), &h), 0);
	bytes[0] = 0x30;
	bytes[1] = 0x9a; /* MaxVer 9, CurVer 10 */
	ck_assert_int_eq(decode_exact(bytes, sizeof(bytes), &h), -EBADMSG);
	bytes[1] = 0x00; /* not our version, but consistent: negotiation's job */
	ck_assert_int_eq(decode_exact(bytes, sizeof(bytes), &h), 0);
}
END_TEST

START_TEST(test_encode_errors)
{
	uint8_t out[ISER_HDR_LEN];
	struct iser_hdr h;

	memset(&h, 0, sizeof(h));
	memset(out, 0xee, sizeof(out));
	h.opcode = ISER_HDR_CTRL;
	ck_assert_int_eq(iser_hdr_encode(&h, out, ISER_HDR_LEN - 1), -ENOSPC);
	h.opcode = (enum iser_hdr_opcode)0;
	ck_assert_int_eq(iser_hdr_encode(&h, out, sizeof(out)), -EINVAL);
	h.opcode = (enum iser_hdr_opcode)4;
	ck_assert_int_eq(iser_hdr_encode(&h, out, sizeof(out)), -EINVAL);
	h.opcode = ISER_HDR_HELLO;
	h.hello = (struct iser_hdr_hello){.max_ver = 16, .min_ver = 10};
	ck_assert_int_eq(iser_hdr_encode(&h, out, sizeof(out)), -EINVAL);
	h.hello = (struct iser_hdr_hello){.max_ver = 9, .min_ver = 10};
	ck_assert_int_eq(iser_hdr_encode(&h, out, sizeof(out)), -EINVAL);
	h.opcode = ISER_HDR_HELLO_REPLY;
	h.hello_reply = (struct iser_hdr_hello_reply){.max_ver = 10, .cur_ver = 11};
	ck_assert_int_eq(iser_hdr_encode(&h, out, sizeof(out)), -EINVAL);
	for (size_t i = 0; i < sizeof(out); i++)
		ck_assert_uint_eq(out[i], 0xee);
}
END_TEST

static int answer(uint8_t max, uint8_t min, uint16_t ird, uint16_t ord,
		  struct iser_hdr_hello_reply *r)
{
	struct iser_hdr_hello hello = {.max_ver = max, .min_ver = min, .ird = ird};

	memset(r, 0xee, sizeof(*r));
	return iser_hdr_hello_answer(&hello, ord, r);
}

/* §5.1.3: iSER-ORD = min(target ORD, initiator IRD); §10.1.3.2: REJ cases. */
START_TEST(test_hello_answer)
{
	struct iser_hdr_hello_reply r;

	ck_assert_int_eq(answer(10, 10, 4, 16, &r), 0);
	ck_assert(!r.rej);
	ck_assert_uint_eq(r.ord, 4);
	ck_assert_uint_eq(r.max_ver, 10);
	ck_assert_uint_eq(r.cur_ver, 10);
	ck_assert_int_eq(iser_hdr_hello_reply_check(&r), 0);

	ck_assert_int_eq(answer(12, 9, 16, 8, &r), 0);
	ck_assert(!r.rej);
	ck_assert_uint_eq(r.ord, 8);

	ck_assert_int_eq(answer(10, 10, 0, 0, &r), 0); /* no R2Ts: ORD 0 is fine */
	ck_assert(!r.rej);

	ck_assert_int_eq(answer(12, 11, 4, 4, &r), -EPROTONOSUPPORT);
	ck_assert(r.rej);
	ck_assert_uint_eq(r.cur_ver, 10);
	ck_assert_int_eq(answer(9, 1, 4, 4, &r), -EPROTONOSUPPORT);
	ck_assert(r.rej);

	ck_assert_int_eq(answer(10, 10, 1, 0, &r), -ENOBUFS);
	ck_assert(r.rej);
	ck_assert_uint_eq(r.ord, 0);
	ck_assert_int_eq(iser_hdr_hello_reply_check(&r), -ECONNREFUSED);
}
END_TEST

START_TEST(test_hello_reply_check)
{
	struct iser_hdr_hello_reply r = {.max_ver = 10, .cur_ver = 10, .ord = 2};

	ck_assert_int_eq(iser_hdr_hello_reply_check(&r), 0);
	r.max_ver = 12; /* a newer target speaking our version */
	ck_assert_int_eq(iser_hdr_hello_reply_check(&r), 0);
	r.cur_ver = 11;
	ck_assert_int_eq(iser_hdr_hello_reply_check(&r), -EPROTONOSUPPORT);
	r.rej = true;
	ck_assert_int_eq(iser_hdr_hello_reply_check(&r), -ECONNREFUSED);
}
END_TEST

/* Every byte-0 value with random other bytes: decoding never fails for a
 * reason other than the opcode, and what decodes round-trips. */
START_TEST(test_roundtrip_sweep)
{
	unsigned int seed = 99;
	uint8_t bytes[ISER_HDR_LEN], out[ISER_HDR_LEN];
	struct iser_hdr a, b;

	for (int round = 0; round < 64; round++) {
		for (unsigned int b0 = 0; b0 < 256; b0++) {
			unsigned int op = b0 >> 4;
			int ret;

			for (size_t i = 0; i < sizeof(bytes); i++)
				bytes[i] = (uint8_t)rand_r(&seed);
			bytes[0] = (uint8_t)b0;
			bytes[1] = 0xaa;
			ret = decode_exact(bytes, sizeof(bytes), &a);
			ck_assert_int_eq(ret, op >= 1 && op <= 3 ? 0 : -EPROTO);
			if (ret)
				continue;
			ck_assert_int_eq(iser_hdr_encode(&a, out, sizeof(out)), 0);
			ck_assert_int_eq(iser_hdr_decode(out, sizeof(out), &b), 0);
			ck_assert_mem_eq(&a, &b, sizeof(a));
		}
	}
}
END_TEST

START_TEST(test_cm_flags)
{
	static const struct {
		uint8_t flags;
		bool zbva, inv;
	} cases[] = {
		{0x00, false, false},
		{0x80, true, false},
		{0x40, false, true},
		{0xc0, true, true},
	};
	struct linux_iser_cm_hdr k;
	uint8_t out[ISER_HDR_CM_LEN];
	struct iser_hdr_cm cm;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t bytes[ISER_HDR_CM_LEN] = {cases[i].flags};

		ck_assert_int_eq(iser_hdr_cm_decode(bytes, sizeof(bytes), &cm), 0);
		ck_assert(cm.zbva_not_sup == cases[i].zbva);
		ck_assert(cm.send_w_inv_not_sup == cases[i].inv);
		memset(out, 0xee, sizeof(out));
		ck_assert_int_eq(iser_hdr_cm_encode(&cm, out, sizeof(out)), 0);
		ck_assert_mem_eq(out, bytes, sizeof(out));
	}

	/* Linux's initiator (ISER_*) and target (ISERT_*) names, same bits. */
	k = (struct linux_iser_cm_hdr){.flags = LINUX_ISER_ZBVA_NOT_SUP |
						LINUX_ISER_SEND_W_INV_NOT_SUP};
	memcpy(out, &k, sizeof(out));
	ck_assert_int_eq(iser_hdr_cm_decode(out, sizeof(out), &cm), 0);
	ck_assert(cm.zbva_not_sup && cm.send_w_inv_not_sup);
	k = (struct linux_iser_cm_hdr){.flags = LINUX_ISERT_ZBVA_NOT_USED};
	memcpy(out, &k, sizeof(out));
	ck_assert_int_eq(iser_hdr_cm_decode(out, sizeof(out), &cm), 0);
	ck_assert(cm.zbva_not_sup && !cm.send_w_inv_not_sup);
	k = (struct linux_iser_cm_hdr){.flags = LINUX_ISERT_SEND_W_INV_NOT_USED};
	memcpy(out, &k, sizeof(out));
	ck_assert_int_eq(iser_hdr_cm_decode(out, sizeof(out), &cm), 0);
	ck_assert(!cm.zbva_not_sup && cm.send_w_inv_not_sup);
}
END_TEST

START_TEST(test_cm_reserved_and_length)
{
	/* IB CM REQ private data is fixed-size: the header, then zeros. */
	uint8_t priv[92];
	struct iser_hdr_cm cm = {true, true};
	uint8_t out[ISER_HDR_CM_LEN + 1];

	memset(priv, 0, sizeof(priv));
	memcpy(priv, (const uint8_t[]){0x3f, 0xff, 0xff, 0xff}, 4);
	ck_assert_int_eq(iser_hdr_cm_decode(priv, sizeof(priv), &cm), 0);
	ck_assert(!cm.zbva_not_sup && !cm.send_w_inv_not_sup);

	for (size_t len = 0; len < ISER_HDR_CM_LEN; len++) {
		uint8_t *exact = malloc(len ? len : 1);

		ck_assert_ptr_nonnull(exact);
		memcpy(exact, priv, len);
		ck_assert_int_eq(iser_hdr_cm_decode(exact, len, &cm), -ENODATA);
		free(exact);
	}

	memset(out, 0xee, sizeof(out));
	cm = (struct iser_hdr_cm){.zbva_not_sup = true};
	ck_assert_int_eq(iser_hdr_cm_encode(&cm, out, ISER_HDR_CM_LEN - 1), -ENOSPC);
	ck_assert_uint_eq(out[0], 0xee);
	ck_assert_int_eq(iser_hdr_cm_encode(&cm, out, sizeof(out)), 0);
	ck_assert_mem_eq(out, ((const uint8_t[]){0x80, 0, 0, 0, 0xee}), sizeof(out));
}
END_TEST

static Suite *iser_hdr_suite(void)
{
	Suite *su = suite_create("iser_hdr");
	TCase *hdr = tcase_create("header");
	TCase *err = tcase_create("errors");
	TCase *neg = tcase_create("hello");
	TCase *cm = tcase_create("cm");

	tcase_add_test(hdr, test_ctrl_write);
	tcase_add_test(hdr, test_ctrl_read);
	tcase_add_test(hdr, test_ctrl_both_with_pdu);
	tcase_add_test(hdr, test_ctrl_ignored_fields);
	tcase_add_test(hdr, test_ctrl_linux_layout);
	tcase_add_test(hdr, test_linux_opcodes);
	tcase_add_test(hdr, test_hello);
	tcase_add_test(hdr, test_hello_reply);
	tcase_add_test(hdr, test_roundtrip_sweep);
	suite_add_tcase(su, hdr);

	tcase_add_test(err, test_err_short);
	tcase_add_test(err, test_err_opcode);
	tcase_add_test(err, test_err_hello_length);
	tcase_add_test(err, test_err_versions);
	tcase_add_test(err, test_encode_errors);
	suite_add_tcase(su, err);

	tcase_add_test(neg, test_hello_answer);
	tcase_add_test(neg, test_hello_reply_check);
	suite_add_tcase(su, neg);

	tcase_add_test(cm, test_cm_flags);
	tcase_add_test(cm, test_cm_reserved_and_length);
	suite_add_tcase(su, cm);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(iser_hdr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
