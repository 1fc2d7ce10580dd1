/*
 * scsi_mode: MODE SENSE and MODE SELECT (SPC-4 §6.9-6.12) over three mode
 * pages: Caching (SBC-3 §6.4.5), Control (SPC-4 §7.5.7) and Informational
 * Exceptions Control (SPC-4 §7.5.11). WCE, D_SENSE and SWP are
 * changeable; nothing can be saved.
 */
#include <string.h>

#include "scsi_priv.h"

enum mode_pc {
	PC_CURRENT,
	PC_CHANGEABLE,
	PC_DEFAULT,
	PC_SAVED,
};

#define PAGE_CACHING 0x08
#define PAGE_CONTROL 0x0a
#define PAGE_IEC 0x1c
#define PAGE_ALL 0x3f
#define SUBPAGE_ALL 0xff
#define PAGE_SPF 0x40
#define PAGE_MAX_LEN 20

#define CACHING_WCE 0x04     /* byte 2 */
#define CONTROL_D_SENSE 0x04 /* byte 2 */
#define CONTROL_SWP 0x08     /* byte 4 */
#define DEV_WP 0x80	     /* device-specific parameter */
#define DEV_DPOFUA 0x10
#define SHORT_BD_LEN 8
#define LONG_BD_LEN 16

static const uint8_t pages[] = {PAGE_CACHING, PAGE_CONTROL, PAGE_IEC};

struct mode_values {
	bool wce, d_sense, swp;
};

/* Build page @code with @v, or its changeable mask; returns the length,
 * 0 for a page that is not supported. */
static uint32_t build_page(uint8_t code, const struct mode_values *v, bool mask, uint8_t *p)
{
	switch (code) {
	case PAGE_CACHING:
		memset(p, 0, 20);
		p[0] = code;
		p[1] = 0x12;
		p[2] = (mask || v->wce) ? CACHING_WCE : 0;
		return 20;
	case PAGE_CONTROL:
		memset(p, 0, 12);
		p[0] = code;
		p[1] = 0x0a;
		p[2] = (mask || v->d_sense) ? CONTROL_D_SENSE : 0;
		p[3] = mask ? 0 : 0x10; /* QUEUE ALGORITHM MODIFIER: unrestricted */
		p[4] = (mask || v->swp) ? CONTROL_SWP : 0;
		return 12;
	case PAGE_IEC:
		memset(p, 0, 12);
		p[0] = code;
		p[1] = 0x0a;
		p[2] = mask ? 0 : 0x08; /* DEXCPT: no exceptions to report */
		return 12;
	default:
		return 0;
	}
}

static struct mode_values values_of(const struct lun *l, enum mode_pc pc)
{
	if (pc == PC_DEFAULT)
		return (struct mode_values){.wce = true};
	return (struct mode_values){.wce = l->wce, .d_sense = l->d_sense, .swp = l->swp};
}

/* The block descriptor (SPC-4 §7.5.5, SBC-3 §6.4.2); zero when changeable. */
static uint32_t block_descriptor(const struct lun *l, bool llba, bool mask, uint8_t *p)
{
	uint64_t blocks = mask ? 0 : l->blocks;
	uint32_t bs = mask ? 0 : l->block_size;

	if (llba) {
		memset(p, 0, LONG_BD_LEN);
		be_put64(p, blocks);
		be_put32(p + 12, bs);
		return LONG_BD_LEN;
	}
	memset(p, 0, SHORT_BD_LEN);
	be_put32(p, blocks > UINT32_MAX ? UINT32_MAX : (uint32_t)blocks);
	be_put32(p + 4, bs & 0xffffff);
	return SHORT_BD_LEN;
}

/* The pages MODE SENSE asked for; 0 and a sense on error. */
static uint32_t sense_pages(struct scsi_cmd *cmd, uint8_t *p, struct sense *s)
{
	const struct cdb *c = &cmd->c;
	struct mode_values v = values_of(cmd->lun, c->pc);
	bool mask = c->pc == PC_CHANGEABLE;
	uint32_t n = 0;

	if (c->page_code == PAGE_ALL) {
		if (c->subpage != 0 && c->subpage != SUBPAGE_ALL)
			goto bad_subpage;
		for (size_t i = 0; i < sizeof(pages); i++)
			n += build_page(pages[i], &v, mask, p + n);
		return n;
	}
	n = build_page(c->page_code, &v, mask, p);
	if (!n) {
		*s = sense_invalid_cdb_field(2, 5);
		return 0;
	}
	if (c->subpage != 0 && c->subpage != SUBPAGE_ALL)
		goto bad_subpage;
	return n;

bad_subpage:
	*s = sense_invalid_cdb_field(3, 7);
	return 0;
}

/* SPC-4 §6.11, §6.12 MODE SENSE(6), MODE SENSE(10) */
void scsi_mode_sense(struct scsi_cmd *cmd)
{
	const struct cdb *c = &cmd->c;
	bool ten = c->opcode == 0x5a, llba = ten && c->llbaa;
	uint32_t hdr = ten ? 8 : 4, bd = 0, pg, n;
	uint8_t d[256] = {0};
	struct sense s = {0};

	if (c->pc == PC_SAVED)
		return scsi_fail(cmd, sense_make(SENSE_KEY_ILLEGAL_REQUEST,
						 SENSE_SAVING_PARAMS_NOT_SUPPORTED));
	if (!c->dbd)
		bd = block_descriptor(cmd->lun, llba, c->pc == PC_CHANGEABLE, d + hdr);
	pg = sense_pages(cmd, d + hdr + bd, &s);
	if (!pg)
		return scsi_fail(cmd, s);
	n = hdr + bd + pg;
	if (ten) {
		be_put16(d, n - 2);
		d[3] = (lun_write_protected(cmd->lun) ? DEV_WP : 0) | DEV_DPOFUA;
		d[4] = llba && bd ? 0x01 : 0; /* LONGLBA */
		be_put16(d + 6, bd);
	} else {
		d[0] = n - 1;
		d[2] = (lun_write_protected(cmd->lun) ? DEV_WP : 0) | DEV_DPOFUA;
		d[3] = bd;
	}
	scsi_data_in(cmd, d, n, c->alloc_len);
}

/* Check the block descriptor of MODE SELECT against the medium. */
static struct sense select_bd(const struct lun *l, const uint8_t *p, uint32_t len, uint32_t at)
{
	uint64_t blocks = len == LONG_BD_LEN ? be_get64(p) : be_get32(p);
	uint32_t bs = len == LONG_BD_LEN ? be_get32(p + 12) : be_get32(p + 4) & 0xffffff;
	uint64_t have = len == LONG_BD_LEN || l->blocks <= UINT32_MAX ? l->blocks : UINT32_MAX;

	if (blocks != 0 && blocks != have)
		return sense_invalid_param_field(at, 7);
	if (bs != l->block_size)
		return sense_invalid_param_field(at + (len == LONG_BD_LEN ? 12 : 5), 7);
	return (struct sense){0};
}

/* Check one page at @p (@at in the list) against the current values, only
 * the changeable bits may differ; fold its values into @v. */
static struct sense select_page(const struct lun *l, const uint8_t *p, uint32_t room, uint32_t at,
				struct mode_values *v, uint32_t *used)
{
	struct mode_values cur = values_of(l, PC_CURRENT);
	uint8_t want[PAGE_MAX_LEN], mask[PAGE_MAX_LEN];
	uint32_t n;

	if (room < 2)
		return sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_PARAMETER_LIST_LENGTH_ERROR);
	n = (p[0] & PAGE_SPF) ? 0 : build_page(p[0] & 0x3f, &cur, false, want);
	if (!n)
		return sense_invalid_param_field(at, 5);
	build_page(p[0] & 0x3f, &cur, true, mask);
	if (p[1] != n - 2)
		return sense_invalid_param_field(at + 1, 7);
	if (room < n)
		return sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_PARAMETER_LIST_LENGTH_ERROR);
	for (uint32_t i = 2; i < n; i++) {
		uint8_t bad = (p[i] ^ want[i]) & ~mask[i];

		if (bad)
			return sense_invalid_param_field(at + i, 31 - __builtin_clz(bad));
	}
	if ((p[0] & 0x3f) == PAGE_CACHING)
		v->wce = p[2] & CACHING_WCE;
	if ((p[0] & 0x3f) == PAGE_CONTROL) {
		v->d_sense = p[2] & CONTROL_D_SENSE;
		v->swp = p[4] & CONTROL_SWP;
	}
	*used = n;
	return (struct sense){0};
}

/* Parse and check the whole parameter list into @v before applying any. */
static struct sense select_parse(struct scsi_cmd *cmd, const uint8_t *p, uint32_t len,
				 struct mode_values *v)
{
	bool ten = cmd->c.opcode == 0x55;
	uint32_t hdr = ten ? 8 : 4, bd, off, used = 0;
	struct sense s = {0};

	if (len < hdr)
		return sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_PARAMETER_LIST_LENGTH_ERROR);
	bd = ten ? be_get16(p + 6) : p[3];
	if (bd != 0 && bd != SHORT_BD_LEN && !(ten && bd == LONG_BD_LEN && (p[4] & 1)))
		return sense_invalid_param_field(ten ? 6 : 3, 7);
	if (len < hdr + bd)
		return sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_PARAMETER_LIST_LENGTH_ERROR);
	if (bd)
		s = select_bd(cmd->lun, p + hdr, bd, hdr);
	for (off = hdr + bd; !s.key && off < len; off += used)
		s = select_page(cmd->lun, p + off, len - off, off, v, &used);
	return s;
}

/* SPC-4 §6.9, §6.10 MODE SELECT(6), MODE SELECT(10) */
void scsi_mode_select(struct scsi_cmd *cmd)
{
	struct lun *l = cmd->lun;
	struct mode_values v = values_of(l, PC_CURRENT);
	uint32_t len = scsi_data_out_len(cmd);
	struct sense s;

	if (!cmd->c.pf)
		return scsi_fail(cmd, sense_invalid_cdb_field(1, 4));
	if (cmd->c.sp)
		return scsi_fail(cmd, sense_invalid_cdb_field(1, 0));
	cmd->xfer = cmd->c.param_len;
	if (len > cmd->c.param_len)
		len = cmd->c.param_len;
	if (cmd->c.param_len == 0)
		return scsi_good(cmd);
	if (len < cmd->c.param_len)
		return scsi_fail(cmd, sense_make(SENSE_KEY_ILLEGAL_REQUEST,
						 SENSE_PARAMETER_LIST_LENGTH_ERROR));
	s = select_parse(cmd, cmd->buf, len, &v);
	if (s.key)
		return scsi_fail(cmd, s);
	if (v.wce != l->wce || v.d_sense != l->d_sense || v.swp != l->swp) {
		l->wce = v.wce;
		l->d_sense = v.d_sense;
		l->swp = v.swp;
		/* SPC-4 §7.5.1: the other I_T nexuses learn of it. */
		lun_unit_attention(l, cmd->nexus->id, SENSE_MODE_PARAMETERS_CHANGED);
	}
	scsi_good(cmd);
}
