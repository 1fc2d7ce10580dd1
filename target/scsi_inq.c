/*
 * scsi_inq: INQUIRY with its VPD pages (SPC-4 §6.6, §7.8; SBC-3 §6.5),
 * REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35) and REPORT SUPPORTED TASK
 * MANAGEMENT FUNCTIONS (SPC-4 §6.36).
 */
#include <stdio.h>
#include <string.h>

#include "scsi_priv.h"

#define INQ_VENDOR "ISERKIT "
#define INQ_PRODUCT "iserkit disk    "
#define INQ_REVISION "0.1 "
#define INQ_STD_LEN 74 /* through the eight version descriptors */

/* SPC-4 table 144 version descriptors. */
static const uint16_t versions[] = {
	0x00a0, /* SAM-5 */
	0x0960, /* iSCSI */
	0x0460, /* SPC-4 */
	0x04c0, /* SBC-3 */
};

static const uint8_t vpd_pages[] = {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};

/* Designator header fields, SPC-4 §7.8.6.1 */
#define PROTO_ISCSI 0x5
#define CODE_BINARY 0x1
#define CODE_ASCII 0x2
#define CODE_UTF8 0x3
#define PIV 0x80
#define ASSOC_LU 0x00
#define ASSOC_PORT 0x10
#define ASSOC_TARGET 0x20
#define DESIG_T10 0x1
#define DESIG_NAA 0x3
#define DESIG_REL_PORT 0x4
#define DESIG_NAME 0x8

static void put_padded(uint8_t *p, const char *s, size_t len)
{
	size_t n = strlen(s);

	memset(p, ' ', len);
	memcpy(p, s, n < len ? n : len);
}

/* SPC-4 §6.6.2 standard INQUIRY data. */
static uint32_t standard_data(uint8_t *d)
{
	d[0] = 0x00; /* connected, direct access block device */
	d[2] = 0x06; /* SPC-4 */
	d[3] = 0x12; /* HISUP, RESPONSE DATA FORMAT 2 */
	d[4] = INQ_STD_LEN - 5;
	d[7] = 0x02; /* CMDQUE */
	put_padded(d + 8, INQ_VENDOR, 8);
	put_padded(d + 16, INQ_PRODUCT, 16);
	put_padded(d + 32, INQ_REVISION, 4);
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		be_put16(d + 58 + 2 * i, versions[i]);
	return INQ_STD_LEN;
}

static uint32_t vpd_supported(uint8_t *d)
{
	memcpy(d + 4, vpd_pages, sizeof(vpd_pages));
	return 4 + sizeof(vpd_pages);
}

/* SPC-4 §7.8.15 Unit Serial Number */
static uint32_t vpd_serial(const struct lun *l, uint8_t *d)
{
	size_t n = strlen(l->serial);

	memcpy(d + 4, l->serial, n);
	return 4 + n;
}

/* One designation descriptor at @p; returns its length. */
static uint32_t designator(uint8_t *p, uint8_t proto_code, uint8_t assoc_type, const void *id,
			   size_t len)
{
	p[0] = proto_code;
	p[1] = assoc_type;
	p[3] = len;
	memcpy(p + 4, id, len);
	return 4 + len;
}

/* An SCSI name string designator: NUL-terminated, padded to 4 bytes. */
static uint32_t name_designator(uint8_t *p, uint8_t assoc, const char *name, const char *suffix)
{
	int n = snprintf((char *)p + 4, 256, "%.223s%s", name, suffix);
	size_t len;

	if (n < 0)
		n = 0;
	len = ((size_t)n + 1 + 3) & ~(size_t)3;
	memset(p + 4 + n, 0, len - (size_t)n);
	p[0] = PROTO_ISCSI << 4 | CODE_UTF8;
	p[1] = PIV | assoc | DESIG_NAME;
	p[2] = 0;
	p[3] = len;
	return 4 + len;
}

/* SPC-4 §7.8.6 Device Identification: the LU's NAA and T10 vendor ID
 * designators; the target port's relative port and name (",t,0x" plus the
 * portal group tag, RFC 7143 §13.4); the target device's name. */
static uint32_t vpd_devid(const struct scsi_cmd *cmd, uint8_t *d)
{
	const struct lun *l = cmd->lun;
	const struct scsi_target *t = cmd->target;
	uint8_t *p = d + 4, id[8 + CONFIG_SERIAL_MAX];
	uint16_t port = t && t->tpgt ? t->tpgt : 1;
	size_t n = strlen(l->serial);
	char suffix[16];

	be_put64(id, l->naa);
	p += designator(p, CODE_BINARY, ASSOC_LU | DESIG_NAA, id, 8);
	memcpy(id, INQ_VENDOR, 8);
	memcpy(id + 8, l->serial, n);
	p += designator(p, CODE_ASCII, ASSOC_LU | DESIG_T10, id, 8 + n);
	memset(id, 0, 4);
	be_put16(id + 2, port);
	p += designator(p, PROTO_ISCSI << 4 | CODE_BINARY, PIV | ASSOC_PORT | DESIG_REL_PORT, id,
			4);
	if (t && t->name) {
		snprintf(suffix, sizeof(suffix), ",t,0x%04x", port);
		p += name_designator(p, ASSOC_PORT, t->name, suffix);
		p += name_designator(p, ASSOC_TARGET, t->name, "");
	}
	be_put16(d + 2, (uint16_t)(p - d - 4));
	return p - d;
}

static uint32_t max_xfer_blocks(const struct lun *l)
{
	return SCSI_MAX_XFER_BYTES / l->block_size;
}

/* SBC-3 §6.5.3 Block Limits */
static uint32_t vpd_block_limits(const struct lun *l, uint8_t *d)
{
	uint32_t gran = l->block_size < 4096 ? 4096 / l->block_size : 1;

	d[4] = 0x01; /* WSNZ */
	d[5] = SCSI_MAX_CAW_BLOCKS;
	be_put16(d + 6, gran);
	be_put32(d + 8, max_xfer_blocks(l));
	be_put32(d + 12, (1u << 20) / l->block_size);
	be_put32(d + 20, SCSI_MAX_UNMAP_BLOCKS);
	be_put32(d + 24, SCSI_MAX_UNMAP_DESCS);
	be_put32(d + 28, gran);
	be_put64(d + 36, max_xfer_blocks(l)); /* MAXIMUM WRITE SAME LENGTH, as checked */
	return 64;
}

/* SBC-3 §6.5.2 Block Device Characteristics */
static uint32_t vpd_bdc(uint8_t *d)
{
	be_put16(d + 4, 0x0001); /* non-rotating medium */
	return 64;
}

/* SBC-3 §6.5.4 Logical Block Provisioning: thin, UNMAP and WRITE SAME
 * with UNMAP; deallocated blocks read as zeros in a sparse file. */
static uint32_t vpd_lbp(const struct lun *l, uint8_t *d)
{
	d[5] = 0x80 | 0x40 | 0x20 | (l->blockdev ? 0 : 0x04); /* LBPU LBPWS LBPWS10 LBPRZ */
	d[6] = 0x02;					      /* PROVISIONING TYPE: thin */
	return 8;
}

/* Build VPD page @page into @d; returns its length, 0 if unsupported. */
static uint32_t vpd_page(const struct scsi_cmd *cmd, uint8_t page, uint8_t *d)
{
	uint32_t n;

	switch (page) {
	case 0x00:
		n = vpd_supported(d);
		break;
	case 0x80:
		n = vpd_serial(cmd->lun, d);
		break;
	case 0x83:
		n = vpd_devid(cmd, d);
		d[1] = page;
		return n;
	case 0xb0:
		n = vpd_block_limits(cmd->lun, d);
		break;
	case 0xb1:
		n = vpd_bdc(d);
		break;
	case 0xb2:
		n = vpd_lbp(cmd->lun, d);
		break;
	default:
		return 0;
	}
	d[1] = page;
	be_put16(d + 2, (uint16_t)(n - 4));
	return n;
}

/* SPC-4 §6.6 INQUIRY */
void scsi_inquiry(struct scsi_cmd *cmd)
{
	uint8_t d[1024] = {0};
	uint32_t n;

	if (!cmd->c.evpd) {
		if (cmd->c.page_code)
			return scsi_fail(cmd, sense_invalid_cdb_field(2, 7));
		n = standard_data(d);
		return scsi_data_in(cmd, d, n, cmd->c.alloc_len);
	}
	n = vpd_page(cmd, cmd->c.page_code, d);
	if (!n)
		return scsi_fail(cmd, sense_invalid_cdb_field(2, 7));
	scsi_data_in(cmd, d, n, cmd->c.alloc_len);
}

/* SPC-4 §6.35.4 command timeouts descriptor: no timeouts (zero). */
#define TIMEOUTS_LEN 12
#define RSOC_ALL_DESC_LEN 8
#define RSOC_ONE_HEADER_LEN 4
#define RSOC_CTDP_ALL 0x02
#define RSOC_SERVACTV 0x01
#define RSOC_CTDP_ONE 0x80
#define SUPPORT_NO 0x1
#define SUPPORT_YES 0x3

static uint32_t put_timeouts(uint8_t *p)
{
	memset(p, 0, TIMEOUTS_LEN);
	be_put16(p, TIMEOUTS_LEN - 2);
	return TIMEOUTS_LEN;
}

/* Reporting options 000b: every command (SPC-4 §6.35.2). */
static uint32_t rsoc_all(bool rctd, uint8_t *d)
{
	uint8_t *p = d + 4;

	for (const struct cdb_desc *c = cdb_next(NULL); c; c = cdb_next(c)) {
		memset(p, 0, RSOC_ALL_DESC_LEN);
		p[0] = c->opcode;
		be_put16(p + 2, c->sa);
		p[5] = (rctd ? RSOC_CTDP_ALL : 0) | (c->has_sa ? RSOC_SERVACTV : 0);
		be_put16(p + 6, c->len);
		p += RSOC_ALL_DESC_LEN;
		if (rctd)
			p += put_timeouts(p);
	}
	be_put32(d, (uint32_t)(p - d - 4));
	return p - d;
}

/* Reporting options 001b-011b: one command (SPC-4 §6.35.3). */
static uint32_t rsoc_one(const struct cdb_desc *c, bool rctd, uint8_t *d)
{
	if (!c) {
		d[1] = SUPPORT_NO;
		return RSOC_ONE_HEADER_LEN;
	}
	d[1] = (rctd ? RSOC_CTDP_ONE : 0) | SUPPORT_YES;
	be_put16(d + 2, c->len);
	memcpy(d + 4, c->usage, c->len);
	if (rctd)
		return RSOC_ONE_HEADER_LEN + c->len + put_timeouts(d + 4 + c->len);
	return RSOC_ONE_HEADER_LEN + c->len;
}

void scsi_report_opcodes(struct scsi_cmd *cmd)
{
	const struct cdb *c = &cmd->c;
	uint8_t d[SCSI_DATA_MAX] = {0};
	bool has_sa = cdb_has_sa(c->req_opcode);
	uint32_t n;

	switch (c->options) {
	case 0:
		n = rsoc_all(c->rctd, d);
		break;
	case 1: /* operation code only: wrong for one with service actions */
		if (has_sa)
			return scsi_fail(cmd, sense_invalid_cdb_field(2, 2));
		n = rsoc_one(cdb_lookup(c->req_opcode, 0), c->rctd, d);
		break;
	case 2: /* operation code and service action */
		if (!has_sa && cdb_lookup(c->req_opcode, 0))
			return scsi_fail(cmd, sense_invalid_cdb_field(2, 2));
		n = rsoc_one(has_sa ? cdb_lookup(c->req_opcode, c->req_sa) : NULL, c->rctd, d);
		break;
	case 3: /* service action only where the operation code has them */
		n = rsoc_one(cdb_lookup(c->req_opcode, c->req_sa), c->rctd, d);
		break;
	default:
		return scsi_fail(cmd, sense_invalid_cdb_field(2, 2));
	}
	scsi_data_in(cmd, d, n, c->alloc_len);
}

/* SPC-4 §6.36: ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT
 * RESET, TARGET RESET: the iSCSI task management functions (RFC 7143
 * §11.5.1) the session layer carries out. */
void scsi_report_tmfs(struct scsi_cmd *cmd)
{
	uint8_t d[16] = {0};

	d[0] = 0x80 | 0x40 | 0x10 | 0x08 | 0x02; /* ATS ATSS CTSS LURS TRS */
	if (cmd->c.repd) {
		d[3] = 0x0c; /* ADDITIONAL DATA LENGTH */
		return scsi_data_in(cmd, d, 16, cmd->c.alloc_len);
	}
	scsi_data_in(cmd, d, 4, cmd->c.alloc_len);
}
