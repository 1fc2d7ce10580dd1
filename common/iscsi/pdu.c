/*
 * pdu: the iSCSI PDU codec. Field offsets are those of the figures in
 * RFC 7143 §11; each opcode's decode and encode sit side by side so they
 * can be checked against the figure and against each other.
 */
#include <errno.h>
#include <string.h>

#include "common/be.h"
#include "pdu.h"

#define OP_MASK 0x3f
#define BIT_I 0x40 /* byte 0 */
#define BIT_F 0x80 /* byte 1; T in Login PDUs */

/* A flag bit of byte 1 as a bool, and back. */
static bool bit(const uint8_t *b, unsigned int mask)
{
	return (b[1] & mask) != 0;
}

static uint8_t flag(bool v, unsigned int mask)
{
	return v ? (uint8_t)mask : 0;
}

/* SCSI Command, §11.3 */
static void scsi_cmd_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->scsi_cmd.read = bit(b, 0x40);
	h->scsi_cmd.write = bit(b, 0x20);
	h->scsi_cmd.attr = b[1] & 0x07;
	h->scsi_cmd.exp_xfer_len = be_get32(b + 20);
	memcpy(h->scsi_cmd.cdb, b + 32, sizeof(h->scsi_cmd.cdb));
}

static int scsi_cmd_enc(const struct pdu_bhs *h, uint8_t *b)
{
	if (h->scsi_cmd.attr > 0x07)
		return -EINVAL;
	b[1] |= flag(h->scsi_cmd.read, 0x40) | flag(h->scsi_cmd.write, 0x20) | h->scsi_cmd.attr;
	be_put32(b + 20, h->scsi_cmd.exp_xfer_len);
	memcpy(b + 32, h->scsi_cmd.cdb, sizeof(h->scsi_cmd.cdb));
	return 0;
}

/* SCSI Response, §11.4 */
static void scsi_rsp_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->scsi_rsp.bidi_overflow = bit(b, 0x10);
	h->scsi_rsp.bidi_underflow = bit(b, 0x08);
	h->scsi_rsp.overflow = bit(b, 0x04);
	h->scsi_rsp.underflow = bit(b, 0x02);
	h->scsi_rsp.response = b[2];
	h->scsi_rsp.status = b[3];
	h->scsi_rsp.snack_tag = be_get32(b + 20);
	h->scsi_rsp.exp_data_sn = be_get32(b + 36);
	h->scsi_rsp.bidi_residual = be_get32(b + 40);
	h->scsi_rsp.residual = be_get32(b + 44);
}

static int scsi_rsp_enc(const struct pdu_bhs *h, uint8_t *b)
{
	const struct pdu_scsi_rsp *r = &h->scsi_rsp;

	b[1] |= flag(r->bidi_overflow, 0x10) | flag(r->bidi_underflow, 0x08) |
		flag(r->overflow, 0x04) | flag(r->underflow, 0x02);
	b[2] = r->response;
	b[3] = r->status;
	be_put32(b + 20, r->snack_tag);
	be_put32(b + 36, r->exp_data_sn);
	be_put32(b + 40, r->bidi_residual);
	be_put32(b + 44, r->residual);
	return 0;
}

/* Task Management Function Request, §11.5 */
static void tmf_req_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->tmf_req.function = b[1] & 0x7f;
	h->tmf_req.ref_task_tag = be_get32(b + 20);
	h->tmf_req.ref_cmd_sn = be_get32(b + 32);
	h->tmf_req.exp_data_sn = be_get32(b + 36);
}

static int tmf_req_enc(const struct pdu_bhs *h, uint8_t *b)
{
	if (h->tmf_req.function > 0x7f)
		return -EINVAL;
	b[1] |= h->tmf_req.function;
	be_put32(b + 20, h->tmf_req.ref_task_tag);
	be_put32(b + 32, h->tmf_req.ref_cmd_sn);
	be_put32(b + 36, h->tmf_req.exp_data_sn);
	return 0;
}

/* Task Management Function Response, §11.6 */
static void tmf_rsp_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->tmf_rsp.response = b[2];
}

static int tmf_rsp_enc(const struct pdu_bhs *h, uint8_t *b)
{
	b[2] = h->tmf_rsp.response;
	return 0;
}

/* SCSI Data-Out, §11.7 */
static void data_out_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->data_out.ttt = be_get32(b + 20);
	h->data_out.data_sn = be_get32(b + 36);
	h->data_out.buffer_offset = be_get32(b + 40);
}

static int data_out_enc(const struct pdu_bhs *h, uint8_t *b)
{
	be_put32(b + 20, h->data_out.ttt);
	be_put32(b + 36, h->data_out.data_sn);
	be_put32(b + 40, h->data_out.buffer_offset);
	return 0;
}

/* SCSI Data-In, §11.7 */
static void data_in_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->data_in.ack = bit(b, 0x40);
	h->data_in.overflow = bit(b, 0x04);
	h->data_in.underflow = bit(b, 0x02);
	h->data_in.status_present = bit(b, 0x01);
	h->data_in.status = b[3];
	h->data_in.ttt = be_get32(b + 20);
	h->data_in.data_sn = be_get32(b + 36);
	h->data_in.buffer_offset = be_get32(b + 40);
	h->data_in.residual = be_get32(b + 44);
}

static int data_in_enc(const struct pdu_bhs *h, uint8_t *b)
{
	const struct pdu_data_in *d = &h->data_in;

	b[1] |= flag(d->ack, 0x40) | flag(d->overflow, 0x04) | flag(d->underflow, 0x02) |
		flag(d->status_present, 0x01);
	b[3] = d->status;
	be_put32(b + 20, d->ttt);
	be_put32(b + 36, d->data_sn);
	be_put32(b + 40, d->buffer_offset);
	be_put32(b + 44, d->residual);
	return 0;
}

/* R2T, §11.8 */
static void r2t_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->r2t.ttt = be_get32(b + 20);
	h->r2t.r2t_sn = be_get32(b + 36);
	h->r2t.buffer_offset = be_get32(b + 40);
	h->r2t.desired_len = be_get32(b + 44);
}

static int r2t_enc(const struct pdu_bhs *h, uint8_t *b)
{
	be_put32(b + 20, h->r2t.ttt);
	be_put32(b + 36, h->r2t.r2t_sn);
	be_put32(b + 40, h->r2t.buffer_offset);
	be_put32(b + 44, h->r2t.desired_len);
	return 0;
}

/* Asynchronous Message, §11.9 */
static void async_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->async.event = b[36];
	h->async.vcode = b[37];
	h->async.param1 = be_get16(b + 38);
	h->async.param2 = be_get16(b + 40);
	h->async.param3 = be_get16(b + 42);
}

static int async_enc(const struct pdu_bhs *h, uint8_t *b)
{
	b[36] = h->async.event;
	b[37] = h->async.vcode;
	be_put16(b + 38, h->async.param1);
	be_put16(b + 40, h->async.param2);
	be_put16(b + 42, h->async.param3);
	return 0;
}

/* Text Request §11.10, Text Response §11.11 */
static void text_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->text.cont = bit(b, 0x40);
	h->text.ttt = be_get32(b + 20);
}

static int text_enc(const struct pdu_bhs *h, uint8_t *b)
{
	b[1] |= flag(h->text.cont, 0x40);
	be_put32(b + 20, h->text.ttt);
	return 0;
}

/* Login Request §11.12, Login Response §11.13: the parts they share. */
static void login_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->login.transit = bit(b, BIT_F);
	h->login.cont = bit(b, 0x40);
	h->login.csg = (b[1] >> 2) & 0x03;
	h->login.nsg = b[1] & 0x03;
	h->login.version_max = b[2];
	h->login.version_min = b[3];
	memcpy(h->login.isid, b + 8, sizeof(h->login.isid));
	h->login.tsih = be_get16(b + 14);
}

static int login_enc(const struct pdu_bhs *h, uint8_t *b)
{
	const struct pdu_login *l = &h->login;

	if (l->csg > 0x03 || l->nsg > 0x03)
		return -EINVAL;
	b[1] |= flag(l->transit, BIT_F) | flag(l->cont, 0x40) | (uint8_t)(l->csg << 2) | l->nsg;
	b[2] = l->version_max;
	b[3] = l->version_min;
	memcpy(b + 8, l->isid, sizeof(l->isid));
	be_put16(b + 14, l->tsih);
	return 0;
}

static void login_req_dec(const uint8_t *b, struct pdu_bhs *h)
{
	login_dec(b, h);
	h->login.cid = be_get16(b + 20);
}

static int login_req_enc(const struct pdu_bhs *h, uint8_t *b)
{
	be_put16(b + 20, h->login.cid);
	return login_enc(h, b);
}

static void login_rsp_dec(const uint8_t *b, struct pdu_bhs *h)
{
	login_dec(b, h);
	h->login.status_class = b[36];
	h->login.status_detail = b[37];
}

static int login_rsp_enc(const struct pdu_bhs *h, uint8_t *b)
{
	b[36] = h->login.status_class;
	b[37] = h->login.status_detail;
	return login_enc(h, b);
}

/* Logout Request, §11.14 */
static void logout_req_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->logout_req.reason = b[1] & 0x7f;
	h->logout_req.cid = be_get16(b + 20);
}

static int logout_req_enc(const struct pdu_bhs *h, uint8_t *b)
{
	if (h->logout_req.reason > 0x7f)
		return -EINVAL;
	b[1] |= h->logout_req.reason;
	be_put16(b + 20, h->logout_req.cid);
	return 0;
}

/* Logout Response, §11.15 */
static void logout_rsp_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->logout_rsp.response = b[2];
	h->logout_rsp.time2wait = be_get16(b + 40);
	h->logout_rsp.time2retain = be_get16(b + 42);
}

static int logout_rsp_enc(const struct pdu_bhs *h, uint8_t *b)
{
	b[2] = h->logout_rsp.response;
	be_put16(b + 40, h->logout_rsp.time2wait);
	be_put16(b + 42, h->logout_rsp.time2retain);
	return 0;
}

/* SNACK Request, §11.16 */
static void snack_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->snack.type = b[1] & 0x0f;
	h->snack.ttt = be_get32(b + 20);
	h->snack.beg_run = be_get32(b + 40);
	h->snack.run_length = be_get32(b + 44);
}

static int snack_enc(const struct pdu_bhs *h, uint8_t *b)
{
	if (h->snack.type > 0x0f)
		return -EINVAL;
	b[1] |= h->snack.type;
	be_put32(b + 20, h->snack.ttt);
	be_put32(b + 40, h->snack.beg_run);
	be_put32(b + 44, h->snack.run_length);
	return 0;
}

/* Reject, §11.17 */
static void reject_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->reject.reason = b[2];
	h->reject.data_sn = be_get32(b + 36);
}

static int reject_enc(const struct pdu_bhs *h, uint8_t *b)
{
	b[2] = h->reject.reason;
	be_put32(b + 36, h->reject.data_sn);
	return 0;
}

/* NOP-Out §11.18, NOP-In §11.19 */
static void nop_dec(const uint8_t *b, struct pdu_bhs *h)
{
	h->nop.ttt = be_get32(b + 20);
}

static int nop_enc(const struct pdu_bhs *h, uint8_t *b)
{
	be_put32(b + 20, h->nop.ttt);
	return 0;
}

/* Which common fields an opcode has (RFC 7143 §11.2.1 and each figure). */
#define OP_INIT 0x01  /* initiator PDU: ExpStatSN at 28 */
#define OP_CMDSN 0x02 /* CmdSN at 24 */
#define OP_IMM 0x04   /* I bit */
#define OP_I1 0x08    /* I bit fixed at 1 */
#define OP_F1 0x10    /* F bit fixed at 1 */
#define OP_LOGIN 0x20 /* byte 1 bit 7 is T, not F */
#define OP_LUN 0x40   /* LUN at 8-15 */

struct op_desc {
	const char *name;
	unsigned int flags;
	void (*dec)(const uint8_t *b, struct pdu_bhs *h);
	int (*enc)(const struct pdu_bhs *h, uint8_t *b);
};

#define INIT_CMD (OP_INIT | OP_CMDSN | OP_IMM)

static const struct op_desc ops[OP_MASK + 1] = {
	[PDU_OP_NOP_OUT] = {"NOP-Out", INIT_CMD | OP_F1 | OP_LUN, nop_dec, nop_enc},
	[PDU_OP_SCSI_CMD] = {"SCSI Command", INIT_CMD | OP_LUN, scsi_cmd_dec, scsi_cmd_enc},
	[PDU_OP_TMF_REQ] = {"Task Management Function Request", INIT_CMD | OP_F1 | OP_LUN,
			    tmf_req_dec, tmf_req_enc},
	[PDU_OP_LOGIN_REQ] = {"Login Request", INIT_CMD | OP_I1 | OP_LOGIN, login_req_dec,
			      login_req_enc},
	[PDU_OP_TEXT_REQ] = {"Text Request", INIT_CMD | OP_LUN, text_dec, text_enc},
	[PDU_OP_DATA_OUT] = {"SCSI Data-Out", OP_INIT | OP_LUN, data_out_dec, data_out_enc},
	[PDU_OP_LOGOUT_REQ] = {"Logout Request", INIT_CMD | OP_F1, logout_req_dec, logout_req_enc},
	[PDU_OP_SNACK] = {"SNACK Request", OP_INIT | OP_F1 | OP_LUN, snack_dec, snack_enc},
	[PDU_OP_NOP_IN] = {"NOP-In", OP_F1 | OP_LUN, nop_dec, nop_enc},
	[PDU_OP_SCSI_RSP] = {"SCSI Response", OP_F1, scsi_rsp_dec, scsi_rsp_enc},
	[PDU_OP_TMF_RSP] = {"Task Management Function Response", OP_F1, tmf_rsp_dec, tmf_rsp_enc},
	[PDU_OP_LOGIN_RSP] = {"Login Response", OP_LOGIN, login_rsp_dec, login_rsp_enc},
	[PDU_OP_TEXT_RSP] = {"Text Response", OP_LUN, text_dec, text_enc},
	[PDU_OP_DATA_IN] = {"SCSI Data-In", OP_LUN, data_in_dec, data_in_enc},
	[PDU_OP_LOGOUT_RSP] = {"Logout Response", OP_F1, logout_rsp_dec, logout_rsp_enc},
	[PDU_OP_R2T] = {"Ready To Transfer (R2T)", OP_F1 | OP_LUN, r2t_dec, r2t_enc},
	[PDU_OP_ASYNC] = {"Asynchronous Message", OP_F1 | OP_LUN, async_dec, async_enc},
	[PDU_OP_REJECT] = {"Reject", OP_F1, reject_dec, reject_enc},
};

static const struct op_desc *op_find(uint8_t opcode)
{
	if (opcode > OP_MASK || !ops[opcode].name)
		return NULL;
	return &ops[opcode];
}

const char *pdu_op_name(uint8_t opcode)
{
	const struct op_desc *d = op_find(opcode);

	return d ? d->name : NULL;
}

/* The fields at the same place in every PDU that has them. */
static void common_dec(const uint8_t *b, unsigned int f, struct pdu_bhs *h)
{
	h->immediate = (f & OP_I1) || ((f & OP_IMM) && (b[0] & BIT_I));
	h->final = (f & OP_F1) || (!(f & OP_LOGIN) && (b[1] & BIT_F));
	h->total_ahs_len = b[4];
	h->data_len = be_get24(b + 5);
	if (f & OP_LUN)
		h->lun = be_get64(b + 8);
	h->itt = be_get32(b + 16);
	if (f & OP_CMDSN)
		h->cmd_sn = be_get32(b + 24);
	if (f & OP_INIT) {
		h->exp_stat_sn = be_get32(b + 28);
	} else {
		h->stat_sn = be_get32(b + 24);
		h->exp_cmd_sn = be_get32(b + 28);
		h->max_cmd_sn = be_get32(b + 32);
	}
}

static void common_enc(const struct pdu_bhs *h, unsigned int f, uint8_t *b)
{
	bool imm = (f & OP_I1) || ((f & OP_IMM) && h->immediate);
	bool fin = (f & OP_F1) || (!(f & OP_LOGIN) && h->final);

	b[0] = h->opcode | flag(imm, BIT_I);
	b[1] = flag(fin, BIT_F);
	b[4] = h->total_ahs_len;
	be_put24(b + 5, h->data_len);
	if (f & OP_LUN)
		be_put64(b + 8, h->lun);
	be_put32(b + 16, h->itt);
	if (f & OP_CMDSN)
		be_put32(b + 24, h->cmd_sn);
	if (f & OP_INIT) {
		be_put32(b + 28, h->exp_stat_sn);
	} else {
		be_put32(b + 24, h->stat_sn);
		be_put32(b + 28, h->exp_cmd_sn);
		be_put32(b + 32, h->max_cmd_sn);
	}
}

int pdu_bhs_decode(const void *buf, size_t len, struct pdu_bhs *out)
{
	const uint8_t *b = buf;
	const struct op_desc *d;

	if (len < PDU_BHS_LEN)
		return -ENODATA;
	/* Byte 0 bit 7 is reserved (RFC 7143 §11.2.1). */
	d = op_find(b[0] & OP_MASK);
	if (!d)
		return -EPROTO;
	memset(out, 0, sizeof(*out));
	out->opcode = b[0] & OP_MASK;
	common_dec(b, d->flags, out);
	d->dec(b, out);
	return 0;
}

int pdu_bhs_encode(const struct pdu_bhs *bhs, void *buf, size_t len)
{
	uint8_t *b = buf;
	const struct op_desc *d;

	if (len < PDU_BHS_LEN)
		return -ENOSPC;
	d = op_find(bhs->opcode);
	if (!d)
		return -EPROTO;
	if (bhs->data_len > PDU_DSL_MAX)
		return -EINVAL;
	memset(b, 0, PDU_BHS_LEN);
	common_enc(bhs, d->flags, b);
	return d->enc(bhs, b);
}

/*
 * One AHS at @b, @room bytes left in the AHS area. Returns the bytes it
 * takes, padding included, or -errno. RFC 7143 §11.2.2: AHSLength counts
 * the bytes after AHSType, padding excluded.
 */
static int ahs_one(const uint8_t *b, size_t room, uint8_t opcode, struct pdu_ahs *out)
{
	size_t alen, size;
	uint8_t type;

	if (room < 4)
		return -EOVERFLOW;
	alen = be_get16(b);
	size = PDU_PAD4(3 + alen);
	if (size > room)
		return -EOVERFLOW;
	/* AHSType bits 0-1 are reserved; reserved codes are a protocol error (§11). */
	type = b[2] & 0x3f;
	switch (type) {
	case PDU_AHS_EXT_CDB: /* §11.2.2.3: AHSLength = CDB length - 15 */
		if (opcode != PDU_OP_SCSI_CMD || out->ext_cdb || alen < 2)
			return -EPROTO;
		out->ext_cdb = b + 4;
		out->ext_cdb_len = (uint16_t)(alen - 1);
		break;
	case PDU_AHS_BIDI_READ: /* §11.2.2.4: AHSLength = 5 */
		if (opcode != PDU_OP_SCSI_CMD || out->has_bidi_read_len || alen != 5)
			return -EPROTO;
		out->has_bidi_read_len = true;
		out->bidi_read_len = be_get32(b + 4);
		break;
	default:
		if (type < PDU_AHS_VENDOR_FIRST)
			return -EPROTO;
		break;
	}
	return (int)size;
}

int pdu_ahs_parse(const void *buf, size_t len, uint8_t opcode, struct pdu_ahs *out)
{
	const uint8_t *b = buf;
	size_t off = 0;
	int n;

	memset(out, 0, sizeof(*out));
	while (off < len) {
		n = ahs_one(b + off, len - off, opcode, out);
		if (n < 0)
			return n;
		off += (size_t)n;
	}
	return 0;
}

int pdu_ahs_encode(const struct pdu_ahs *ahs, void *buf, size_t len)
{
	uint8_t *b = buf;
	size_t ext = 0, need;

	if (ahs->ext_cdb_len) {
		if (!ahs->ext_cdb)
			return -EINVAL;
		ext = PDU_PAD4(4 + (size_t)ahs->ext_cdb_len);
	}
	need = ext + (ahs->has_bidi_read_len ? 8 : 0);
	if (need > PDU_AHS_MAX)
		return -EINVAL;
	if (need > len)
		return -ENOSPC;
	memset(b, 0, need);
	if (ext) {
		be_put16(b, (uint16_t)(ahs->ext_cdb_len + 1));
		b[2] = PDU_AHS_EXT_CDB;
		memcpy(b + 4, ahs->ext_cdb, ahs->ext_cdb_len);
	}
	if (ahs->has_bidi_read_len) {
		be_put16(b + ext, 5);
		b[ext + 2] = PDU_AHS_BIDI_READ;
		be_put32(b + ext + 4, ahs->bidi_read_len);
	}
	return (int)need;
}

/* Where the parts of a PDU lie, RFC 7143 §11.1 and §11.2.3. */
struct layout {
	uint32_t hdigest, data, ddigest, end;
};

static void layout(uint8_t ahs_words, uint32_t data_len, unsigned int flags, struct layout *l)
{
	uint32_t off = PDU_BHS_LEN + 4u * ahs_words;

	l->hdigest = 0;
	if (flags & PDU_HDIGEST) {
		l->hdigest = off;
		off += PDU_DIGEST_LEN;
	}
	l->data = off;
	off += PDU_PAD4(data_len);
	/* A zero-length data segment has no data digest (§11.2.3). */
	l->ddigest = 0;
	if ((flags & PDU_DDIGEST) && data_len) {
		l->ddigest = off;
		off += PDU_DIGEST_LEN;
	}
	l->end = off;
}

int pdu_total_len(const void *bhs, size_t len, unsigned int flags, uint32_t max_data)
{
	const uint8_t *b = bhs;
	struct layout l;
	uint32_t data_len;

	if (flags & ~(PDU_HDIGEST | PDU_DDIGEST))
		return -EINVAL;
	if (len < PDU_BHS_LEN)
		return -ENODATA;
	data_len = be_get24(b + 5);
	if (data_len > max_data)
		return -E2BIG;
	layout(b[4], data_len, flags, &l);
	return (int)l.end;
}

int pdu_parse_header(const void *buf, size_t len, unsigned int flags, uint32_t max_data,
		     struct pdu *out)
{
	const uint8_t *b = buf;
	struct layout l;
	size_t ahs_len;
	int err;

	if (flags & ~(PDU_HDIGEST | PDU_DDIGEST))
		return -EINVAL;
	err = pdu_bhs_decode(buf, len, &out->bhs);
	if (err)
		return err;
	if (out->bhs.data_len > max_data)
		return -E2BIG;
	ahs_len = 4u * out->bhs.total_ahs_len;
	if (ahs_len > len - PDU_BHS_LEN)
		return -EOVERFLOW;
	err = pdu_ahs_parse(b + PDU_BHS_LEN, ahs_len, out->bhs.opcode, &out->ahs);
	if (err)
		return err;
	layout(out->bhs.total_ahs_len, out->bhs.data_len, flags, &l);
	if (l.data > len)
		return -EMSGSIZE;
	out->data = NULL;
	out->data_off = l.data;
	out->hdigest_off = l.hdigest;
	out->ddigest_off = l.ddigest;
	out->len = l.end;
	return (int)l.data;
}

int pdu_parse(const void *buf, size_t len, unsigned int flags, uint32_t max_data, struct pdu *out)
{
	int err = pdu_parse_header(buf, len, flags, max_data, out);

	if (err < 0)
		return err;
	if (out->len > len)
		return -EMSGSIZE;
	if (out->bhs.data_len)
		out->data = (const uint8_t *)buf + out->data_off;
	return (int)out->len;
}
