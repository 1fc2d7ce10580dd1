/*
 * Unit tests for common/iscsi/pdu: every BHS against bytes placed by hand
 * at the offsets of the RFC 7143 §11 figures, AHS parsing and writing,
 * framing with digests, each error code, serial number arithmetic.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pdu.h"

/* Test-side byte placement, big-endian, at an offset read off a figure. */
static void w16(uint8_t *b, size_t off, uint16_t v)
{
	b[off] = (uint8_t)(v >> 8);
	b[off + 1] = (uint8_t)v;
}

static void w32(uint8_t *b, size_t off, uint32_t v)
{
	w16(b, off, (uint16_t)(v >> 16));
	w16(b, off + 2, (uint16_t)v);
}

static void w_lun(uint8_t *b)
{
	static const uint8_t lun[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};

	memcpy(b + 8, lun, sizeof(lun));
}

#define LUN 0x0102030405060708ull

/* Bytes 0-7 of a BHS: opcode byte, byte 1, TotalAHSLength 3, DSL 0x123456. */
static void w_head(uint8_t *b, uint8_t b0, uint8_t b1)
{
	memset(b, 0, PDU_BHS_LEN);
	b[0] = b0;
	b[1] = b1;
	b[4] = 3;
	b[5] = 0x12;
	b[6] = 0x34;
	b[7] = 0x56;
	w32(b, 16, 0xa1a2a3a4); /* ITT */
}

/*
 * Decode @w into @h, then check that encoding gives back @w byte for byte
 * and that decoding that gives back @h.
 */
static void roundtrip(const uint8_t *w, struct pdu_bhs *h)
{
	uint8_t e[PDU_BHS_LEN];
	struct pdu_bhs h2;

	ck_assert_int_eq(pdu_bhs_decode(w, PDU_BHS_LEN, h), 0);
	ck_assert_int_eq(pdu_bhs_encode(h, e, sizeof(e)), 0);
	ck_assert_mem_eq(e, w, PDU_BHS_LEN);
	ck_assert_int_eq(pdu_bhs_decode(e, sizeof(e), &h2), 0);
	ck_assert_mem_eq(&h2, h, sizeof(h2));
}

static void check_head(const struct pdu_bhs *h, uint8_t op)
{
	ck_assert_uint_eq(h->opcode, op);
	ck_assert_uint_eq(h->total_ahs_len, 3);
	ck_assert_uint_eq(h->data_len, 0x123456);
	ck_assert_uint_eq(h->itt, 0xa1a2a3a4);
}

static void check_target_sn(const struct pdu_bhs *h)
{
	ck_assert_uint_eq(h->stat_sn, 0xb0000024);
	ck_assert_uint_eq(h->exp_cmd_sn, 0xb0000028);
	ck_assert_uint_eq(h->max_cmd_sn, 0xb0000032);
	ck_assert_uint_eq(h->cmd_sn, 0);
	ck_assert_uint_eq(h->exp_stat_sn, 0);
}

static void w_target_sn(uint8_t *b)
{
	w32(b, 24, 0xb0000024);
	w32(b, 28, 0xb0000028);
	w32(b, 32, 0xb0000032);
}

/*
 * RFC 7143 §11.3, written out byte by byte: READ(10) of 8 blocks at LBA
 * 0x1234 on LUN 1, F and R set, ATTR Simple.
 */
static const uint8_t scsi_read10[PDU_BHS_LEN] = {
	0x01, 0xc1, 0x00, 0x00,				/* 0x01, F|R|Simple */
	0x00, 0x00, 0x00, 0x00,				/* TotalAHSLength, DSL */
	0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* LUN */
	0x00, 0x00, 0x00, 0x10,				/* ITT */
	0x00, 0x00, 0x10, 0x00,				/* Expected Data Transfer Length */
	0x00, 0x00, 0x00, 0x07,				/* CmdSN */
	0x00, 0x00, 0x00, 0x03,				/* ExpStatSN */
	0x28, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x00, /* CDB */
	0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

START_TEST(test_scsi_cmd_figure)
{
	struct pdu_bhs h;

	roundtrip(scsi_read10, &h);
	ck_assert_uint_eq(h.opcode, PDU_OP_SCSI_CMD);
	ck_assert(!h.immediate);
	ck_assert(h.final);
	ck_assert(h.scsi_cmd.read);
	ck_assert(!h.scsi_cmd.write);
	ck_assert_uint_eq(h.scsi_cmd.attr, 1);
	ck_assert_uint_eq(h.total_ahs_len, 0);
	ck_assert_uint_eq(h.data_len, 0);
	ck_assert_uint_eq(h.lun, 0x0001000000000000ull);
	ck_assert_uint_eq(h.itt, 0x10);
	ck_assert_uint_eq(h.scsi_cmd.exp_xfer_len, 4096);
	ck_assert_uint_eq(h.cmd_sn, 7);
	ck_assert_uint_eq(h.exp_stat_sn, 3);
	ck_assert_mem_eq(h.scsi_cmd.cdb, scsi_read10 + 32, 16);
}
END_TEST

/* The other direction: a struct filled by hand encodes to the figure. */
START_TEST(test_scsi_cmd_encode_figure)
{
	static const uint8_t cdb[16] = {0x28, 0, 0, 0, 0x12, 0x34, 0, 0, 0x08};
	struct pdu_bhs h = {
		.opcode = PDU_OP_SCSI_CMD,
		.final = true,
		.lun = 0x0001000000000000ull,
		.itt = 0x10,
		.cmd_sn = 7,
		.exp_stat_sn = 3,
		.stat_sn = 99, /* not a SCSI Command field: not written */
		.scsi_cmd = {.read = true, .attr = 1, .exp_xfer_len = 4096},
	};
	uint8_t e[PDU_BHS_LEN + 4];

	memcpy(h.scsi_cmd.cdb, cdb, sizeof(cdb));
	memset(e, 0xee, sizeof(e));
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), 0);
	ck_assert_mem_eq(e, scsi_read10, PDU_BHS_LEN);
	ck_assert_uint_eq(e[PDU_BHS_LEN], 0xee);
}
END_TEST

START_TEST(test_scsi_cmd_write)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;
	int i;

	w_head(w, 0x41, 0x24); /* I; W, ATTR ACA, not final */
	w_lun(w);
	w32(w, 20, 0x00100000);
	w32(w, 24, 0xc0000024);
	w32(w, 28, 0xc0000028);
	for (i = 0; i < 16; i++)
		w[32 + i] = (uint8_t)(0x80 + i);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_SCSI_CMD);
	ck_assert(h.immediate && !h.final);
	ck_assert(!h.scsi_cmd.read && h.scsi_cmd.write);
	ck_assert_uint_eq(h.scsi_cmd.attr, 4);
	ck_assert_uint_eq(h.lun, LUN);
	ck_assert_uint_eq(h.scsi_cmd.exp_xfer_len, 0x00100000);
	ck_assert_uint_eq(h.cmd_sn, 0xc0000024);
	ck_assert_uint_eq(h.exp_stat_sn, 0xc0000028);
	ck_assert_mem_eq(h.scsi_cmd.cdb, w + 32, 16);
}
END_TEST

/* RFC 7143 §11.12, byte by byte: T, CSG 1 (operational), NSG 3 (full feature). */
static const uint8_t login_req[PDU_BHS_LEN] = {
	0x43, 0x87, 0x00, 0x00,		    /* I|0x03, T|CSG 1|NSG 3, Version-max, -min */
	0x00, 0x00, 0x00, 0x10,		    /* TotalAHSLength 0, DSL 16 */
	0x80, 0x12, 0x34, 0x56, 0x00, 0x01, /* ISID */
	0x00, 0x00,			    /* TSIH */
	0x00, 0x00, 0x00, 0x01,		    /* ITT */
	0x00, 0x01, 0x00, 0x00,		    /* CID, reserved */
	0x00, 0x00, 0x00, 0x01,		    /* CmdSN */
	0x00, 0x00, 0x00, 0x00,		    /* ExpStatSN */
	0,    0,    0,	  0,	0,    0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

START_TEST(test_login_req_figure)
{
	static const uint8_t isid[6] = {0x80, 0x12, 0x34, 0x56, 0x00, 0x01};
	struct pdu_bhs h;

	roundtrip(login_req, &h);
	ck_assert_uint_eq(h.opcode, PDU_OP_LOGIN_REQ);
	ck_assert(h.immediate);
	ck_assert(!h.final);
	ck_assert(h.login.transit);
	ck_assert(!h.login.cont);
	ck_assert_uint_eq(h.login.csg, 1);
	ck_assert_uint_eq(h.login.nsg, 3);
	ck_assert_uint_eq(h.login.version_max, 0);
	ck_assert_uint_eq(h.login.version_min, 0);
	ck_assert_uint_eq(h.data_len, 16);
	ck_assert_mem_eq(h.login.isid, isid, 6);
	ck_assert_uint_eq(h.login.tsih, 0);
	ck_assert_uint_eq(h.lun, 0);
	ck_assert_uint_eq(h.itt, 1);
	ck_assert_uint_eq(h.login.cid, 1);
	ck_assert_uint_eq(h.cmd_sn, 1);
	ck_assert_uint_eq(h.exp_stat_sn, 0);
}
END_TEST

START_TEST(test_login_req_fields)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x43, 0x4e); /* C, CSG 3, NSG 2: reserved values, decoded as sent */
	w[2] = 0x02;
	w[3] = 0x01;
	memcpy(w + 8, "\x40\x01\x02\x03\x04\x05", 6);
	w16(w, 14, 0xbeef);
	w16(w, 20, 0x7777);
	w32(w, 24, 0xc0000024);
	w32(w, 28, 0xc0000028);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_LOGIN_REQ);
	ck_assert(!h.login.transit && h.login.cont);
	ck_assert_uint_eq(h.login.csg, 3);
	ck_assert_uint_eq(h.login.nsg, 2);
	ck_assert_uint_eq(h.login.version_max, 2);
	ck_assert_uint_eq(h.login.version_min, 1);
	ck_assert_mem_eq(h.login.isid, "\x40\x01\x02\x03\x04\x05", 6);
	ck_assert_uint_eq(h.login.tsih, 0xbeef);
	ck_assert_uint_eq(h.login.cid, 0x7777);
	ck_assert_uint_eq(h.cmd_sn, 0xc0000024);
	ck_assert_uint_eq(h.exp_stat_sn, 0xc0000028);
}
END_TEST

START_TEST(test_login_rsp)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x23, 0x87);
	w[2] = 0x03;
	w[3] = 0x02;
	memcpy(w + 8, "\x40\x01\x02\x03\x04\x05", 6);
	w16(w, 14, 0x1234);
	w_target_sn(w);
	w[36] = 0x02;
	w[37] = 0x05;
	roundtrip(w, &h);
	check_head(&h, PDU_OP_LOGIN_RSP);
	check_target_sn(&h);
	ck_assert(!h.immediate && !h.final);
	ck_assert(h.login.transit && !h.login.cont);
	ck_assert_uint_eq(h.login.csg, 1);
	ck_assert_uint_eq(h.login.nsg, 3);
	ck_assert_uint_eq(h.login.version_max, 3);
	ck_assert_uint_eq(h.login.version_active, 2);
	ck_assert_mem_eq(h.login.isid, "\x40\x01\x02\x03\x04\x05", 6);
	ck_assert_uint_eq(h.login.tsih, 0x1234);
	ck_assert_uint_eq(h.login.status_class, 2);
	ck_assert_uint_eq(h.login.status_detail, 5);
	ck_assert_uint_eq(h.login.cid, 0);
}
END_TEST

START_TEST(test_nop_out)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x40, 0x80);
	w_lun(w);
	w32(w, 20, PDU_RSVD_TAG);
	w32(w, 24, 0xc0000024);
	w32(w, 28, 0xc0000028);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_NOP_OUT);
	ck_assert(h.immediate && h.final);
	ck_assert_uint_eq(h.lun, LUN);
	ck_assert_uint_eq(h.nop.ttt, PDU_RSVD_TAG);
	ck_assert_uint_eq(h.cmd_sn, 0xc0000024);
	ck_assert_uint_eq(h.exp_stat_sn, 0xc0000028);
	ck_assert_uint_eq(h.stat_sn, 0);
}
END_TEST

START_TEST(test_nop_in)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x20, 0x80);
	w_lun(w);
	w32(w, 20, 0x0000abcd);
	w_target_sn(w);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_NOP_IN);
	check_target_sn(&h);
	ck_assert(!h.immediate && h.final);
	ck_assert_uint_eq(h.lun, LUN);
	ck_assert_uint_eq(h.nop.ttt, 0xabcd);
}
END_TEST

START_TEST(test_tmf_req)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x42, 0x80 | 0x7f);
	w_lun(w);
	w32(w, 20, 0xd0000020);
	w32(w, 24, 0xc0000024);
	w32(w, 28, 0xc0000028);
	w32(w, 32, 0xd0000032);
	w32(w, 36, 0xd0000036);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_TMF_REQ);
	ck_assert(h.immediate && h.final);
	ck_assert_uint_eq(h.tmf_req.function, 0x7f);
	ck_assert_uint_eq(h.lun, LUN);
	ck_assert_uint_eq(h.tmf_req.ref_task_tag, 0xd0000020);
	ck_assert_uint_eq(h.cmd_sn, 0xc0000024);
	ck_assert_uint_eq(h.exp_stat_sn, 0xc0000028);
	ck_assert_uint_eq(h.tmf_req.ref_cmd_sn, 0xd0000032);
	ck_assert_uint_eq(h.tmf_req.exp_data_sn, 0xd0000036);
}
END_TEST

START_TEST(test_tmf_rsp)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x22, 0x80);
	w[2] = 0xff;
	w_target_sn(w);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_TMF_RSP);
	check_target_sn(&h);
	ck_assert(h.final);
	ck_assert_uint_eq(h.tmf_rsp.response, 0xff);
	ck_assert_uint_eq(h.lun, 0);
}
END_TEST

START_TEST(test_text_req)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x04, 0x40); /* C, not F */
	w_lun(w);
	w32(w, 20, 0xd0000020);
	w32(w, 24, 0xc0000024);
	w32(w, 28, 0xc0000028);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_TEXT_REQ);
	ck_assert(!h.immediate && !h.final && h.text.cont);
	ck_assert_uint_eq(h.lun, LUN);
	ck_assert_uint_eq(h.text.ttt, 0xd0000020);
	ck_assert_uint_eq(h.cmd_sn, 0xc0000024);
	ck_assert_uint_eq(h.exp_stat_sn, 0xc0000028);
}
END_TEST

START_TEST(test_text_rsp)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x24, 0x80);
	w_lun(w);
	w32(w, 20, 0xd0000020);
	w_target_sn(w);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_TEXT_RSP);
	check_target_sn(&h);
	ck_assert(h.final && !h.text.cont);
	ck_assert_uint_eq(h.lun, LUN);
	ck_assert_uint_eq(h.text.ttt, 0xd0000020);
}
END_TEST

START_TEST(test_data_out)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x05, 0x80);
	w_lun(w);
	w32(w, 20, 0xd0000020);
	w32(w, 28, 0xc0000028);
	w32(w, 36, 0xd0000036);
	w32(w, 40, 0xd0000040);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_DATA_OUT);
	ck_assert(!h.immediate && h.final);
	ck_assert_uint_eq(h.lun, LUN);
	ck_assert_uint_eq(h.data_out.ttt, 0xd0000020);
	ck_assert_uint_eq(h.cmd_sn, 0);
	ck_assert_uint_eq(h.exp_stat_sn, 0xc0000028);
	ck_assert_uint_eq(h.data_out.data_sn, 0xd0000036);
	ck_assert_uint_eq(h.data_out.buffer_offset, 0xd0000040);
}
END_TEST

START_TEST(test_data_in)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x25, 0x80 | 0x40 | 0x04 | 0x01); /* F, A, O, S */
	w[3] = 0x02;
	w_lun(w);
	w32(w, 20, 0xd0000020);
	w_target_sn(w);
	w32(w, 36, 0xd0000036);
	w32(w, 40, 0xd0000040);
	w32(w, 44, 0xd0000044);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_DATA_IN);
	check_target_sn(&h);
	ck_assert(h.final && h.data_in.ack && h.data_in.overflow && h.data_in.status_present);
	ck_assert(!h.data_in.underflow);
	ck_assert_uint_eq(h.data_in.status, 2);
	ck_assert_uint_eq(h.lun, LUN);
	ck_assert_uint_eq(h.data_in.ttt, 0xd0000020);
	ck_assert_uint_eq(h.data_in.data_sn, 0xd0000036);
	ck_assert_uint_eq(h.data_in.buffer_offset, 0xd0000040);
	ck_assert_uint_eq(h.data_in.residual, 0xd0000044);

	w[1] = 0x02; /* U alone, not final */
	roundtrip(w, &h);
	ck_assert(!h.final && !h.data_in.ack && !h.data_in.overflow);
	ck_assert(h.data_in.underflow && !h.data_in.status_present);
}
END_TEST

START_TEST(test_scsi_rsp)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x21, 0x80 | 0x10 | 0x02); /* o, U */
	w[2] = 0x01;
	w[3] = 0x02;
	w32(w, 20, 0xd0000020);
	w_target_sn(w);
	w32(w, 36, 0xd0000036);
	w32(w, 40, 0xd0000040);
	w32(w, 44, 0xd0000044);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_SCSI_RSP);
	check_target_sn(&h);
	ck_assert(h.final);
	ck_assert(h.scsi_rsp.bidi_overflow && !h.scsi_rsp.bidi_underflow);
	ck_assert(!h.scsi_rsp.overflow && h.scsi_rsp.underflow);
	ck_assert_uint_eq(h.scsi_rsp.response, 1);
	ck_assert_uint_eq(h.scsi_rsp.status, 2);
	ck_assert_uint_eq(h.lun, 0);
	ck_assert_uint_eq(h.scsi_rsp.snack_tag, 0xd0000020);
	ck_assert_uint_eq(h.scsi_rsp.exp_data_sn, 0xd0000036);
	ck_assert_uint_eq(h.scsi_rsp.bidi_residual, 0xd0000040);
	ck_assert_uint_eq(h.scsi_rsp.residual, 0xd0000044);

	w[1] = 0x80 | 0x08 | 0x04; /* u, O */
	roundtrip(w, &h);
	ck_assert(!h.scsi_rsp.bidi_overflow && h.scsi_rsp.bidi_underflow);
	ck_assert(h.scsi_rsp.overflow && !h.scsi_rsp.underflow);
}
END_TEST

START_TEST(test_logout_req)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x46, 0x80 | 0x02);
	w16(w, 20, 0x5555);
	w32(w, 24, 0xc0000024);
	w32(w, 28, 0xc0000028);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_LOGOUT_REQ);
	ck_assert(h.immediate && h.final);
	ck_assert_uint_eq(h.logout_req.reason, 2);
	ck_assert_uint_eq(h.logout_req.cid, 0x5555);
	ck_assert_uint_eq(h.cmd_sn, 0xc0000024);
	ck_assert_uint_eq(h.exp_stat_sn, 0xc0000028);
}
END_TEST

START_TEST(test_logout_rsp)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x26, 0x80);
	w[2] = 0x03;
	w_target_sn(w);
	w16(w, 40, 0x0a0b);
	w16(w, 42, 0x0c0d);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_LOGOUT_RSP);
	check_target_sn(&h);
	ck_assert_uint_eq(h.logout_rsp.response, 3);
	ck_assert_uint_eq(h.logout_rsp.time2wait, 0x0a0b);
	ck_assert_uint_eq(h.logout_rsp.time2retain, 0x0c0d);
}
END_TEST

START_TEST(test_snack)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x10, 0x80 | 0x03);
	w_lun(w);
	w32(w, 20, 0xd0000020);
	w32(w, 28, 0xc0000028);
	w32(w, 40, 0xd0000040);
	w32(w, 44, 0xd0000044);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_SNACK);
	ck_assert(!h.immediate && h.final);
	ck_assert_uint_eq(h.snack.type, 3);
	ck_assert_uint_eq(h.lun, LUN);
	ck_assert_uint_eq(h.snack.ttt, 0xd0000020);
	ck_assert_uint_eq(h.cmd_sn, 0);
	ck_assert_uint_eq(h.exp_stat_sn, 0xc0000028);
	ck_assert_uint_eq(h.snack.beg_run, 0xd0000040);
	ck_assert_uint_eq(h.snack.run_length, 0xd0000044);
}
END_TEST

START_TEST(test_r2t)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x31, 0x80);
	w_lun(w);
	w32(w, 20, 0xd0000020);
	w_target_sn(w);
	w32(w, 36, 0xd0000036);
	w32(w, 40, 0xd0000040);
	w32(w, 44, 0xd0000044);
	roundtrip(w, &h);
	check_head(&h, PDU_OP_R2T);
	check_target_sn(&h);
	ck_assert_uint_eq(h.lun, LUN);
	ck_assert_uint_eq(h.r2t.ttt, 0xd0000020);
	ck_assert_uint_eq(h.r2t.r2t_sn, 0xd0000036);
	ck_assert_uint_eq(h.r2t.buffer_offset, 0xd0000040);
	ck_assert_uint_eq(h.r2t.desired_len, 0xd0000044);
}
END_TEST

START_TEST(test_async)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x32, 0x80);
	w_lun(w);
	w32(w, 16, PDU_RSVD_TAG);
	w_target_sn(w);
	w[36] = 0x04;
	w[37] = 0x99;
	w16(w, 38, 0x3801);
	w16(w, 40, 0x4002);
	w16(w, 42, 0x4203);
	roundtrip(w, &h);
	ck_assert_uint_eq(h.opcode, PDU_OP_ASYNC);
	check_target_sn(&h);
	ck_assert_uint_eq(h.itt, PDU_RSVD_TAG);
	ck_assert_uint_eq(h.lun, LUN);
	ck_assert_uint_eq(h.async.event, 4);
	ck_assert_uint_eq(h.async.vcode, 0x99);
	ck_assert_uint_eq(h.async.param1, 0x3801);
	ck_assert_uint_eq(h.async.param2, 0x4002);
	ck_assert_uint_eq(h.async.param3, 0x4203);
}
END_TEST

START_TEST(test_reject)
{
	uint8_t w[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x3f, 0x80);
	w[2] = 0x09;
	w32(w, 16, PDU_RSVD_TAG);
	w_target_sn(w);
	w32(w, 36, 0xd0000036);
	roundtrip(w, &h);
	ck_assert_uint_eq(h.opcode, PDU_OP_REJECT);
	check_target_sn(&h);
	ck_assert_uint_eq(h.reject.reason, 9);
	ck_assert_uint_eq(h.reject.data_sn, 0xd0000036);
}
END_TEST

/* Reserved bits and bytes are ignored on decode and written as 0 (§11). */
START_TEST(test_reserved_ignored)
{
	uint8_t clean[PDU_BHS_LEN], dirty[PDU_BHS_LEN], e[PDU_BHS_LEN];
	struct pdu_bhs a, b;

	w_head(clean, 0x20, 0x80);
	w_lun(clean);
	w_target_sn(clean);
	memcpy(dirty, clean, sizeof(dirty));
	dirty[0] |= 0xc0; /* bit 7 reserved; I reserved in target PDUs */
	dirty[1] |= 0x7f;
	dirty[2] = dirty[3] = 0xff;
	memset(dirty + 36, 0xff, 12);
	ck_assert_int_eq(pdu_bhs_decode(clean, sizeof(clean), &a), 0);
	ck_assert_int_eq(pdu_bhs_decode(dirty, sizeof(dirty), &b), 0);
	ck_assert_mem_eq(&a, &b, sizeof(a));
	ck_assert_int_eq(pdu_bhs_encode(&b, e, sizeof(e)), 0);
	ck_assert_mem_eq(e, clean, sizeof(e));

	/* Data-Out: I reserved, bytes 24, 32 and 44 reserved. */
	w_head(clean, 0x05, 0x80);
	memcpy(dirty, clean, sizeof(dirty));
	dirty[0] |= 0x40;
	memset(dirty + 24, 0xff, 4);
	memset(dirty + 32, 0xff, 4);
	memset(dirty + 44, 0xff, 4);
	ck_assert_int_eq(pdu_bhs_decode(dirty, sizeof(dirty), &b), 0);
	ck_assert(!b.immediate);
	ck_assert_uint_eq(b.cmd_sn, 0);
	ck_assert_int_eq(pdu_bhs_encode(&b, e, sizeof(e)), 0);
	ck_assert_mem_eq(e, clean, sizeof(e));

	/* SCSI Response: bytes 8-15 are reserved, not a LUN. */
	w_head(clean, 0x21, 0x80);
	memcpy(dirty, clean, sizeof(dirty));
	w_lun(dirty);
	dirty[1] |= 0x61;
	ck_assert_int_eq(pdu_bhs_decode(dirty, sizeof(dirty), &b), 0);
	ck_assert_uint_eq(b.lun, 0);
	ck_assert_int_eq(pdu_bhs_encode(&b, e, sizeof(e)), 0);
	ck_assert_mem_eq(e, clean, sizeof(e));
}
END_TEST

/* F fixed at 1, and I fixed at 1 in Login Request, whatever is sent or set. */
START_TEST(test_fixed_bits)
{
	uint8_t w[PDU_BHS_LEN], e[PDU_BHS_LEN];
	struct pdu_bhs h;

	w_head(w, 0x20, 0x00);
	ck_assert_int_eq(pdu_bhs_decode(w, sizeof(w), &h), 0);
	ck_assert(h.final);
	h.final = false;
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), 0);
	ck_assert_uint_eq(e[1], 0x80);

	w_head(w, 0x03, 0x00);
	ck_assert_int_eq(pdu_bhs_decode(w, sizeof(w), &h), 0);
	ck_assert(h.immediate);
	h.immediate = false;
	h.final = true; /* Login has T, not F */
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), 0);
	ck_assert_uint_eq(e[0], 0x43);
	ck_assert_uint_eq(e[1], 0x00);

	/* No I bit in target PDUs, Data-Out or SNACK. */
	memset(&h, 0, sizeof(h));
	h.immediate = true;
	h.opcode = PDU_OP_DATA_IN;
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), 0);
	ck_assert_uint_eq(e[0], 0x25);
	h.opcode = PDU_OP_DATA_OUT;
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), 0);
	ck_assert_uint_eq(e[0], 0x05);
	h.opcode = PDU_OP_SNACK;
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), 0);
	ck_assert_uint_eq(e[0], 0x10);
}
END_TEST

START_TEST(test_opcodes)
{
	static const uint8_t known[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x20,
					0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x31, 0x32, 0x3f};
	uint8_t w[PDU_BHS_LEN] = {0};
	struct pdu_bhs h;
	unsigned int op, i, n = 0;
	bool is_known;

	for (op = 0; op < 64; op++) {
		is_known = false;
		for (i = 0; i < sizeof(known); i++)
			is_known |= known[i] == op;
		w[0] = (uint8_t)op;
		ck_assert_int_eq(pdu_bhs_decode(w, sizeof(w), &h), is_known ? 0 : -EPROTO);
		ck_assert_int_eq(pdu_op_name((uint8_t)op) != NULL, is_known);
		memset(&h, 0, sizeof(h));
		h.opcode = (uint8_t)op;
		ck_assert_int_eq(pdu_bhs_encode(&h, w, sizeof(w)), is_known ? 0 : -EPROTO);
		n += is_known;
	}
	ck_assert_uint_eq(n, 18);
	ck_assert_str_eq(pdu_op_name(PDU_OP_SCSI_CMD), "SCSI Command");
	ck_assert_str_eq(pdu_op_name(PDU_OP_REJECT), "Reject");
	ck_assert_ptr_null(pdu_op_name(0x40));
	/* Vendor-specific opcodes are not supported. */
	w[0] = 0x1c;
	ck_assert_int_eq(pdu_bhs_decode(w, sizeof(w), &h), -EPROTO);
	h.opcode = 0x41;
	ck_assert_int_eq(pdu_bhs_encode(&h, w, sizeof(w)), -EPROTO);
}
END_TEST

START_TEST(test_encode_errors)
{
	struct pdu_bhs h = {.opcode = PDU_OP_NOP_OUT};
	uint8_t e[PDU_BHS_LEN];

	ck_assert_int_eq(pdu_bhs_encode(&h, e, PDU_BHS_LEN - 1), -ENOSPC);
	h.data_len = PDU_DSL_MAX;
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), 0);
	h.data_len = PDU_DSL_MAX + 1;
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), -EINVAL);

	memset(&h, 0, sizeof(h));
	h.opcode = PDU_OP_SCSI_CMD;
	h.scsi_cmd.attr = 8;
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), -EINVAL);
	memset(&h, 0, sizeof(h));
	h.opcode = PDU_OP_LOGIN_RSP;
	h.login.csg = 4;
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), -EINVAL);
	h.login.csg = 3;
	h.login.nsg = 4;
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), -EINVAL);
	memset(&h, 0, sizeof(h));
	h.opcode = PDU_OP_TMF_REQ;
	h.tmf_req.function = 0x80;
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), -EINVAL);
	memset(&h, 0, sizeof(h));
	h.opcode = PDU_OP_LOGOUT_REQ;
	h.logout_req.reason = 0x80;
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), -EINVAL);
	memset(&h, 0, sizeof(h));
	h.opcode = PDU_OP_SNACK;
	h.snack.type = 0x10;
	ck_assert_int_eq(pdu_bhs_encode(&h, e, sizeof(e)), -EINVAL);
}
END_TEST

START_TEST(test_short)
{
	uint8_t w[PDU_BHS_LEN] = {0};
	struct pdu_bhs h;
	struct pdu p;
	size_t len;

	for (len = 0; len < PDU_BHS_LEN; len++) {
		ck_assert_int_eq(pdu_bhs_decode(w, len, &h), -ENODATA);
		ck_assert_int_eq(pdu_parse(w, len, 0, PDU_DSL_MAX, &p), -ENODATA);
		ck_assert_int_eq(pdu_total_len(w, len, 0, PDU_DSL_MAX), -ENODATA);
	}
	ck_assert_int_eq(pdu_parse(w, PDU_BHS_LEN, 0, PDU_DSL_MAX, &p), PDU_BHS_LEN);
}
END_TEST

/*
 * A whole SCSI Command PDU laid out by hand (RFC 7143 §11.1, §11.2.2,
 * §11.2.3): a 32-byte CDB (Extended CDB AHS, AHSLength 17, 20 bytes), a
 * Bidirectional Read AHS (8 bytes), header digest at 76, 5 data bytes at
 * 80, 3 pad bytes, data digest at 88, 92 bytes in all; then 8 bytes of
 * the next PDU.
 */
static void w_full(uint8_t *b)
{
	int i;

	memset(b, 0, 100);
	b[0] = 0x01;
	b[1] = 0x80 | 0x40 | 0x20 | 0x01; /* F, R, W, Simple */
	b[4] = 7;			  /* TotalAHSLength: 28 bytes */
	b[7] = 5;			  /* DataSegmentLength */
	w32(b, 16, 0x42);
	w32(b, 20, 5);
	for (i = 0; i < 16; i++)
		b[32 + i] = (uint8_t)i; /* CDB bytes 0-15 */
	w16(b, 48, 17);			/* AHSLength = CDB length - 15 */
	b[50] = PDU_AHS_EXT_CDB;
	for (i = 0; i < 16; i++)
		b[52 + i] = (uint8_t)(16 + i); /* CDB bytes 16-31 */
	w16(b, 68, 5);
	b[70] = PDU_AHS_BIDI_READ;
	w32(b, 72, 0x00020000);
	w32(b, 76, 0xdeadbeef); /* header digest, not checked here */
	memcpy(b + 80, "hello", 5);
	w32(b, 88, 0xfeedface); /* data digest */
	memset(b + 92, 0x77, 8);
}

START_TEST(test_parse_full)
{
	uint8_t b[100];
	struct pdu p;
	int i;

	w_full(b);
	ck_assert_int_eq(pdu_parse(b, sizeof(b), PDU_HDIGEST | PDU_DDIGEST, 8192, &p), 92);
	ck_assert_int_eq(pdu_total_len(b, PDU_BHS_LEN, PDU_HDIGEST | PDU_DDIGEST, 8192), 92);
	ck_assert_uint_eq(p.len, 92);
	ck_assert_uint_eq(p.bhs.opcode, PDU_OP_SCSI_CMD);
	ck_assert(p.bhs.scsi_cmd.read && p.bhs.scsi_cmd.write);
	ck_assert_uint_eq(p.bhs.itt, 0x42);
	ck_assert_ptr_eq(p.ahs.ext_cdb, b + 52);
	ck_assert_uint_eq(p.ahs.ext_cdb_len, 16);
	for (i = 0; i < 16; i++)
		ck_assert_uint_eq(p.ahs.ext_cdb[i], 16 + i);
	ck_assert(p.ahs.has_bidi_read_len);
	ck_assert_uint_eq(p.ahs.bidi_read_len, 0x00020000);
	ck_assert_uint_eq(p.hdigest_off, 76);
	ck_assert_uint_eq(p.data_off, 80);
	ck_assert_ptr_eq(p.data, b + 80);
	ck_assert_mem_eq(p.data, "hello", 5);
	ck_assert_uint_eq(p.ddigest_off, 88);
}
END_TEST

/* The same bytes framed as if no digest was negotiated: 48 + 28 + 8. */
START_TEST(test_parse_no_digests)
{
	uint8_t b[100];
	struct pdu p;

	w_full(b);
	ck_assert_int_eq(pdu_parse(b, sizeof(b), 0, 8192, &p), 84);
	ck_assert_uint_eq(p.hdigest_off, 0);
	ck_assert_uint_eq(p.data_off, 76);
	ck_assert_uint_eq(p.ddigest_off, 0);
	ck_assert_int_eq(pdu_parse(b, sizeof(b), PDU_HDIGEST, 8192, &p), 88);
	ck_assert_uint_eq(p.hdigest_off, 76);
	ck_assert_uint_eq(p.ddigest_off, 0);
	ck_assert_int_eq(pdu_parse(b, sizeof(b), PDU_DDIGEST, 8192, &p), 88);
	ck_assert_uint_eq(p.hdigest_off, 0);
	ck_assert_uint_eq(p.ddigest_off, 84);
}
END_TEST

/* No data, no data digest (§11.2.3), even when DataDigest is negotiated. */
START_TEST(test_parse_empty_data)
{
	uint8_t b[PDU_BHS_LEN + 4] = {0x40, 0x80};
	struct pdu p;

	ck_assert_int_eq(pdu_parse(b, sizeof(b), PDU_HDIGEST | PDU_DDIGEST, 0, &p), 52);
	ck_assert_ptr_null(p.data);
	ck_assert_uint_eq(p.hdigest_off, 48);
	ck_assert_uint_eq(p.data_off, 52);
	ck_assert_uint_eq(p.ddigest_off, 0);
	ck_assert_int_eq(pdu_total_len(b, sizeof(b), PDU_DDIGEST, 0), 48);
	ck_assert_int_eq(pdu_parse(b, PDU_BHS_LEN, PDU_DDIGEST, 0, &p), 48);
}
END_TEST

START_TEST(test_parse_lengths)
{
	uint8_t b[PDU_BHS_LEN] = {0x20, 0x80};
	unsigned int f;

	/* DataSegmentLength 1: padded to 4. */
	b[7] = 1;
	ck_assert_int_eq(pdu_total_len(b, sizeof(b), 0, 8192), 52);
	ck_assert_int_eq(pdu_total_len(b, sizeof(b), PDU_HDIGEST, 8192), 56);
	ck_assert_int_eq(pdu_total_len(b, sizeof(b), PDU_DDIGEST, 8192), 56);
	ck_assert_int_eq(pdu_total_len(b, sizeof(b), PDU_HDIGEST | PDU_DDIGEST, 8192), 60);
	b[7] = 4;
	ck_assert_int_eq(pdu_total_len(b, sizeof(b), 0, 8192), 52);
	b[7] = 5;
	ck_assert_int_eq(pdu_total_len(b, sizeof(b), 0, 8192), 56);
	/* The largest PDU there is. */
	b[4] = 0xff;
	b[5] = b[6] = b[7] = 0xff;
	f = PDU_HDIGEST | PDU_DDIGEST;
	ck_assert_int_eq(pdu_total_len(b, sizeof(b), f, PDU_DSL_MAX),
			 48 + 1020 + 4 + 0x1000000 + 4);
}
END_TEST

START_TEST(test_parse_truncated)
{
	uint8_t b[100];
	struct pdu p;
	size_t len;
	unsigned int f = PDU_HDIGEST | PDU_DDIGEST;

	w_full(b);
	for (len = PDU_BHS_LEN; len < 76; len++)
		ck_assert_int_eq(pdu_parse(b, len, f, 8192, &p), -EOVERFLOW);
	for (len = 76; len < 92; len++)
		ck_assert_int_eq(pdu_parse(b, len, f, 8192, &p), -EMSGSIZE);
	ck_assert_int_eq(pdu_parse(b, 92, f, 8192, &p), 92);
	/* pdu_total_len only needs the BHS. */
	ck_assert_int_eq(pdu_total_len(b, PDU_BHS_LEN, f, 8192), 92);
}
END_TEST

/*
 * The header alone (BHS, AHS, header digest: 80 bytes of w_full), as a
 * stream reader has it before the data segment: the layout of the rest
 * is known, the data is not there yet.
 */
START_TEST(test_parse_header)
{
	uint8_t b[100];
	struct pdu p;
	size_t len;
	unsigned int f = PDU_HDIGEST | PDU_DDIGEST;

	w_full(b);
	for (len = 0; len < PDU_BHS_LEN; len++)
		ck_assert_int_eq(pdu_parse_header(b, len, f, 8192, &p), -ENODATA);
	for (len = PDU_BHS_LEN; len < 76; len++)
		ck_assert_int_eq(pdu_parse_header(b, len, f, 8192, &p), -EOVERFLOW);
	for (len = 76; len < 80; len++)
		ck_assert_int_eq(pdu_parse_header(b, len, f, 8192, &p), -EMSGSIZE);
	for (len = 80; len <= sizeof(b); len++) {
		ck_assert_int_eq(pdu_parse_header(b, len, f, 8192, &p), 80);
		ck_assert_ptr_null(p.data);
		ck_assert_uint_eq(p.bhs.data_len, 5);
		ck_assert_ptr_eq(p.ahs.ext_cdb, b + 52);
		ck_assert_uint_eq(p.hdigest_off, 76);
		ck_assert_uint_eq(p.data_off, 80);
		ck_assert_uint_eq(p.ddigest_off, 88);
		ck_assert_uint_eq(p.len, 92);
	}
	/* Without digests the header ends with the AHS, at 76. */
	ck_assert_int_eq(pdu_parse_header(b, 76, 0, 8192, &p), 76);
	ck_assert_uint_eq(p.hdigest_off, 0);
	ck_assert_uint_eq(p.ddigest_off, 0);
	ck_assert_uint_eq(p.len, 84);
	ck_assert_int_eq(pdu_parse_header(b, 80, f, 4, &p), -E2BIG);
	ck_assert_int_eq(pdu_parse_header(b, 80, 0x4, 8192, &p), -EINVAL);
}
END_TEST

START_TEST(test_parse_e2big)
{
	uint8_t b[PDU_BHS_LEN + 8192] = {0x01, 0x80};
	struct pdu p;

	w16(b, 6, 8192);
	ck_assert_int_eq(pdu_parse(b, sizeof(b), 0, 8192, &p), (int)sizeof(b));
	ck_assert_int_eq(pdu_total_len(b, PDU_BHS_LEN, 0, 8192), (int)sizeof(b));
	ck_assert_int_eq(pdu_parse(b, sizeof(b), 0, 8191, &p), -E2BIG);
	ck_assert_int_eq(pdu_total_len(b, PDU_BHS_LEN, 0, 8191), -E2BIG);
	/* Before the length of the data is looked at. */
	ck_assert_int_eq(pdu_parse(b, PDU_BHS_LEN, 0, 8191, &p), -E2BIG);
}
END_TEST

START_TEST(test_parse_flags)
{
	uint8_t b[PDU_BHS_LEN] = {0};
	struct pdu p;

	ck_assert_int_eq(pdu_parse(b, sizeof(b), 0x4, 0, &p), -EINVAL);
	ck_assert_int_eq(pdu_total_len(b, sizeof(b), 0x4, 0), -EINVAL);
}
END_TEST

/* An unknown opcode cannot be decoded but can be framed, to be skipped. */
START_TEST(test_unknown_opcode_framing)
{
	uint8_t b[PDU_BHS_LEN + 12] = {0x1c};
	struct pdu p;

	b[7] = 10;
	ck_assert_int_eq(pdu_total_len(b, sizeof(b), 0, 8192), 60);
	ck_assert_int_eq(pdu_parse(b, sizeof(b), 0, 8192, &p), -EPROTO);
}
END_TEST

/* An AHS running past TotalAHSLength, though not past the buffer. */
START_TEST(test_ahs_past_total)
{
	uint8_t b[PDU_BHS_LEN + 64];
	struct pdu p;
	struct pdu_ahs a;

	memset(b, 0, sizeof(b));
	b[0] = 0x01;
	b[4] = 2; /* 8 bytes */
	w16(b, 48, 17);
	b[50] = PDU_AHS_EXT_CDB;
	ck_assert_int_eq(pdu_parse(b, sizeof(b), 0, 8192, &p), -EOVERFLOW);
	ck_assert_int_eq(pdu_ahs_parse(b + 48, 8, PDU_OP_SCSI_CMD, &a), -EOVERFLOW);
	w16(b, 48, 0xffff);
	ck_assert_int_eq(pdu_parse(b, sizeof(b), 0, 8192, &p), -EOVERFLOW);
	/* AHSLength 5: 8 bytes exactly fit. */
	w16(b, 48, 5);
	b[50] = PDU_AHS_BIDI_READ;
	ck_assert_int_eq(pdu_parse(b, sizeof(b), 0, 8192, &p), 56);
	/* A caller-given area that is not a whole number of words. */
	ck_assert_int_eq(pdu_ahs_parse(b + 48, 11, PDU_OP_SCSI_CMD, &a), -EOVERFLOW);
	ck_assert_int_eq(pdu_ahs_parse(b + 48, 3, PDU_OP_SCSI_CMD, &a), -EOVERFLOW);
}
END_TEST

static int ahs1(uint16_t alen, uint8_t type, uint8_t opcode)
{
	uint8_t b[64] = {0};
	struct pdu_ahs a;

	w16(b, 0, alen);
	b[2] = type;
	return pdu_ahs_parse(b, PDU_PAD4(3u + alen), opcode, &a);
}

START_TEST(test_ahs_types)
{
	ck_assert_int_eq(ahs1(17, PDU_AHS_EXT_CDB, PDU_OP_SCSI_CMD), 0);
	ck_assert_int_eq(ahs1(2, PDU_AHS_EXT_CDB, PDU_OP_SCSI_CMD), 0);
	ck_assert_int_eq(ahs1(5, PDU_AHS_BIDI_READ, PDU_OP_SCSI_CMD), 0);
	/* AHSType bits 0-1 are reserved. */
	ck_assert_int_eq(ahs1(5, 0xc0 | PDU_AHS_BIDI_READ, PDU_OP_SCSI_CMD), 0);
	/* Reserved codes. */
	ck_assert_int_eq(ahs1(5, 0, PDU_OP_SCSI_CMD), -EPROTO);
	ck_assert_int_eq(ahs1(5, 3, PDU_OP_SCSI_CMD), -EPROTO);
	ck_assert_int_eq(ahs1(5, 59, PDU_OP_SCSI_CMD), -EPROTO);
	/* Non-iSCSI extensions are skipped, on any PDU. */
	ck_assert_int_eq(ahs1(9, 60, PDU_OP_SCSI_CMD), 0);
	ck_assert_int_eq(ahs1(0, 63, PDU_OP_NOP_OUT), 0);
	/* Wrong AHSLength for the type. */
	ck_assert_int_eq(ahs1(1, PDU_AHS_EXT_CDB, PDU_OP_SCSI_CMD), -EPROTO);
	ck_assert_int_eq(ahs1(0, PDU_AHS_EXT_CDB, PDU_OP_SCSI_CMD), -EPROTO);
	ck_assert_int_eq(ahs1(4, PDU_AHS_BIDI_READ, PDU_OP_SCSI_CMD), -EPROTO);
	ck_assert_int_eq(ahs1(6, PDU_AHS_BIDI_READ, PDU_OP_SCSI_CMD), -EPROTO);
	/* Only a SCSI Command has these. */
	ck_assert_int_eq(ahs1(17, PDU_AHS_EXT_CDB, PDU_OP_NOP_OUT), -EPROTO);
	ck_assert_int_eq(ahs1(5, PDU_AHS_BIDI_READ, PDU_OP_DATA_OUT), -EPROTO);
}
END_TEST

START_TEST(test_ahs_repeated)
{
	uint8_t b[32] = {0};
	struct pdu_ahs a;

	w16(b, 0, 5);
	b[2] = PDU_AHS_BIDI_READ;
	w16(b, 8, 5);
	b[10] = PDU_AHS_BIDI_READ;
	ck_assert_int_eq(pdu_ahs_parse(b, 16, PDU_OP_SCSI_CMD, &a), -EPROTO);
	w16(b, 0, 2);
	b[2] = PDU_AHS_EXT_CDB; /* 8 bytes: AHSLength 2 is 5 bytes, padded */
	w16(b, 8, 2);
	b[10] = PDU_AHS_EXT_CDB;
	ck_assert_int_eq(pdu_ahs_parse(b, 16, PDU_OP_SCSI_CMD, &a), -EPROTO);
	b[10] = PDU_AHS_BIDI_READ;
	w16(b, 8, 5);
	ck_assert_int_eq(pdu_ahs_parse(b, 16, PDU_OP_SCSI_CMD, &a), 0);
	ck_assert_uint_eq(a.ext_cdb_len, 1);
	ck_assert(a.has_bidi_read_len);
	/* Through pdu_parse too. */
	{
		uint8_t p[PDU_BHS_LEN + 16] = {0x01};
		struct pdu pp;

		p[4] = 4;
		memcpy(p + PDU_BHS_LEN, b, 16);
		p[PDU_BHS_LEN + 10] = PDU_AHS_EXT_CDB;
		w16(p, PDU_BHS_LEN + 8, 2);
		ck_assert_int_eq(pdu_parse(p, sizeof(p), 0, 0, &pp), -EPROTO);
	}
}
END_TEST

/* pdu_ahs_encode against bytes laid out by hand, then against the parser. */
START_TEST(test_ahs_encode)
{
	uint8_t cdb[1024], b[PDU_AHS_MAX + 8], want[28];
	struct pdu_ahs a = {0}, back;
	unsigned int n;
	int i;

	for (i = 0; i < (int)sizeof(cdb); i++)
		cdb[i] = (uint8_t)(i * 7 + 1);
	ck_assert_int_eq(pdu_ahs_encode(&a, b, 0), 0);

	memset(want, 0, sizeof(want));
	w16(want, 0, 17);
	want[2] = 1;
	memcpy(want + 4, cdb, 16);
	w16(want, 20, 5);
	want[22] = 2;
	w32(want, 24, 0x01020304);
	a.ext_cdb = cdb;
	a.ext_cdb_len = 16;
	a.has_bidi_read_len = true;
	a.bidi_read_len = 0x01020304;
	memset(b, 0xee, sizeof(b));
	ck_assert_int_eq(pdu_ahs_encode(&a, b, sizeof(b)), 28);
	ck_assert_mem_eq(b, want, sizeof(want));
	ck_assert_int_eq(pdu_ahs_encode(&a, b, 27), -ENOSPC);

	for (n = 1; n <= PDU_AHS_MAX - 4; n++) {
		a.ext_cdb_len = (uint16_t)n;
		a.has_bidi_read_len = n % 2;
		i = pdu_ahs_encode(&a, b, sizeof(b));
		if (PDU_PAD4(4 + n) + (n % 2 ? 8 : 0) > PDU_AHS_MAX) {
			ck_assert_int_eq(i, -EINVAL);
			continue;
		}
		ck_assert_int_eq(i, (int)(PDU_PAD4(4 + n) + (n % 2 ? 8 : 0)));
		ck_assert_int_eq(pdu_ahs_parse(b, (size_t)i, PDU_OP_SCSI_CMD, &back), 0);
		ck_assert_uint_eq(back.ext_cdb_len, n);
		ck_assert_mem_eq(back.ext_cdb, cdb, n);
		ck_assert_int_eq(back.has_bidi_read_len, n % 2);
		ck_assert_uint_eq(back.bidi_read_len, n % 2 ? 0x01020304 : 0);
	}
	a.ext_cdb_len = PDU_AHS_MAX - 4;
	a.has_bidi_read_len = false;
	ck_assert_int_eq(pdu_ahs_encode(&a, b, sizeof(b)), PDU_AHS_MAX);
	a.ext_cdb_len = PDU_AHS_MAX - 3;
	ck_assert_int_eq(pdu_ahs_encode(&a, b, sizeof(b)), -EINVAL);
	a.ext_cdb = NULL;
	a.ext_cdb_len = 1;
	ck_assert_int_eq(pdu_ahs_encode(&a, b, sizeof(b)), -EINVAL);
}
END_TEST

START_TEST(test_sn)
{
	ck_assert(pdu_sn_lt(1, 2));
	ck_assert(!pdu_sn_lt(2, 1));
	ck_assert(!pdu_sn_lt(5, 5));
	ck_assert(pdu_sn_le(5, 5) && pdu_sn_ge(5, 5));
	ck_assert(pdu_sn_gt(2, 1) && !pdu_sn_gt(1, 2));
	/* Wrap-around. */
	ck_assert(pdu_sn_lt(0xffffffff, 0));
	ck_assert(pdu_sn_gt(0, 0xffffffff));
	ck_assert(pdu_sn_lt(0xfffffff0, 0x10));
	ck_assert(pdu_sn_le(0xfffffff0, 0x10));
	ck_assert(!pdu_sn_ge(0xfffffff0, 0x10));
	ck_assert(pdu_sn_lt(0, 0x7fffffff));
	ck_assert(pdu_sn_lt(0x80000001, 0));
	/* 2^31 apart: unordered (RFC 1982 §3.2). */
	ck_assert(!pdu_sn_lt(0, 0x80000000) && !pdu_sn_gt(0, 0x80000000));
	ck_assert(!pdu_sn_le(0, 0x80000000) && !pdu_sn_ge(0, 0x80000000));
	ck_assert(!pdu_sn_lt(0x80000000, 0) && !pdu_sn_gt(0x80000000, 0));
}
END_TEST

START_TEST(test_sn_window)
{
	ck_assert(pdu_sn_in_window(5, 5, 10));
	ck_assert(pdu_sn_in_window(10, 5, 10));
	ck_assert(!pdu_sn_in_window(11, 5, 10));
	ck_assert(!pdu_sn_in_window(4, 5, 10));
	/* Across the wrap. */
	ck_assert(pdu_sn_in_window(0xffffffff, 0xfffffffe, 3));
	ck_assert(pdu_sn_in_window(2, 0xfffffffe, 3));
	ck_assert(!pdu_sn_in_window(4, 0xfffffffe, 3));
	ck_assert(!pdu_sn_in_window(0xfffffffd, 0xfffffffe, 3));
	/* MaxCmdSN = ExpCmdSN - 1: closed. */
	ck_assert(!pdu_sn_in_window(5, 5, 4));
	ck_assert(!pdu_sn_in_window(0, 0, 0xffffffff));
}
END_TEST

START_TEST(test_errors_distinct)
{
	static const int errs[] = {ENODATA, EOVERFLOW, EMSGSIZE, EPROTO, E2BIG, EINVAL, ENOSPC};
	size_t i, j;

	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		for (j = i + 1; j < sizeof(errs) / sizeof(errs[0]); j++)
			ck_assert_int_ne(errs[i], errs[j]);
}
END_TEST

static Suite *pdu_suite(void)
{
	Suite *su = suite_create("pdu");
	TCase *bhs = tcase_create("bhs");
	TCase *frame = tcase_create("frame");
	TCase *sn = tcase_create("sn");

	tcase_add_test(bhs, test_scsi_cmd_figure);
	tcase_add_test(bhs, test_scsi_cmd_encode_figure);
	tcase_add_test(bhs, test_scsi_cmd_write);
	tcase_add_test(bhs, test_login_req_figure);
	tcase_add_test(bhs, test_login_req_fields);
	tcase_add_test(bhs, test_login_rsp);
	tcase_add_test(bhs, test_nop_out);
	tcase_add_test(bhs, test_nop_in);
	tcase_add_test(bhs, test_tmf_req);
	tcase_add_test(bhs, test_tmf_rsp);
	tcase_add_test(bhs, test_text_req);
	tcase_add_test(bhs, test_text_rsp);
	tcase_add_test(bhs, test_data_out);
	tcase_add_test(bhs, test_data_in);
	tcase_add_test(bhs, test_scsi_rsp);
	tcase_add_test(bhs, test_logout_req);
	tcase_add_test(bhs, test_logout_rsp);
	tcase_add_test(bhs, test_snack);
	tcase_add_test(bhs, test_r2t);
	tcase_add_test(bhs, test_async);
	tcase_add_test(bhs, test_reject);
	tcase_add_test(bhs, test_reserved_ignored);
	tcase_add_test(bhs, test_fixed_bits);
	tcase_add_test(bhs, test_opcodes);
	tcase_add_test(bhs, test_encode_errors);
	suite_add_tcase(su, bhs);

	tcase_add_test(frame, test_short);
	tcase_add_test(frame, test_parse_full);
	tcase_add_test(frame, test_parse_no_digests);
	tcase_add_test(frame, test_parse_empty_data);
	tcase_add_test(frame, test_parse_lengths);
	tcase_add_test(frame, test_parse_truncated);
	tcase_add_test(frame, test_parse_header);
	tcase_add_test(frame, test_parse_e2big);
	tcase_add_test(frame, test_parse_flags);
	tcase_add_test(frame, test_unknown_opcode_framing);
	tcase_add_test(frame, test_ahs_past_total);
	tcase_add_test(frame, test_ahs_types);
	tcase_add_test(frame, test_ahs_repeated);
	tcase_add_test(frame, test_ahs_encode);
	tcase_add_test(frame, test_errors_distinct);
	suite_add_tcase(su, frame);

	tcase_add_test(sn, test_sn);
	tcase_add_test(sn, test_sn_window);
	suite_add_tcase(su, sn);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(pdu_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
