/*
 * scsi_pr: reservations. SPC-2 RESERVE/RELEASE (SPC-2 §7.21-7.24) and
 * SPC-4 persistent reservations (SPC-4 §5.13, §6.15, §6.16), with the
 * conflict rules of SPC-4 table 66 and SBC-3 table 13. APTPL, SPEC_I_PT,
 * ALL_TG_PT and REGISTER AND MOVE are not supported (REPORT CAPABILITIES
 * says so); registrations live as long as the process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_priv.h"

/* SPC-4 §6.16.3 table 175 persistent reservation types. */
#define PR_WE 0x1
#define PR_EA 0x3
#define PR_WE_RO 0x5
#define PR_EA_RO 0x6
#define PR_WE_AR 0x7
#define PR_EA_AR 0x8

#define PR_OUT_PARAM_LEN 24
#define SENSE_INVALID_RELEASE_OF_PR 0x2604 /* SPC-4 table 28 */
#define PR_APTPL 0x01
#define PR_ALL_TG_PT 0x04
#define PR_SPEC_I_PT 0x08

enum pr_class {
	PR_ALLOWED, /* allowed under every reservation */
	PR_READS,   /* allowed under the write exclusive types */
	PR_WRITES,  /* allowed only with access */
};

static enum pr_class classify(const struct cdb *c)
{
	switch (c->opcode) {
	case 0x00: /* TEST UNIT READY */
	case 0x03: /* REQUEST SENSE */
	case 0x12: /* INQUIRY */
	case 0x17: /* RELEASE(6): a no-op from a non-holder */
	case 0x57:
	case 0x25: /* READ CAPACITY(10) */
	case 0x5e: /* PERSISTENT RESERVE IN */
	case 0x5f: /* PERSISTENT RESERVE OUT: checked by its own rules */
	case 0xa0: /* REPORT LUNS */
	case 0xa3: /* REPORT SUPPORTED OPERATION CODES / TMFS */
		return PR_ALLOWED;
	case 0x1e: /* PREVENT ALLOW MEDIUM REMOVAL: allowing is allowed */
		return c->prevent ? PR_WRITES : PR_ALLOWED;
	case 0x9e:
		return c->sa == 0x10 ? PR_ALLOWED : PR_READS;
	case 0x08:
	case 0x28:
	case 0x88:
	case 0xa8:
	case 0x2f:
	case 0x8f:
	case 0xaf:
	case 0x34:
	case 0x90:
	case 0x1a:
	case 0x5a:
		return PR_READS;
	default:
		return PR_WRITES;
	}
}

static bool all_registrants(uint8_t type)
{
	return type == PR_WE_AR || type == PR_EA_AR;
}

static bool registrants_access(uint8_t type)
{
	return type == PR_WE_RO || type == PR_EA_RO || all_registrants(type);
}

static bool write_exclusive(uint8_t type)
{
	return type == PR_WE || type == PR_WE_RO || type == PR_WE_AR;
}

/* The reservation holder (SPC-4 §5.13.10): every registrant for the
 * all-registrants types. */
static bool is_holder(const struct lun *l, const struct lun_reg *r)
{
	if (!l->pr_held || !r)
		return false;
	return all_registrants(l->pr_type) || l->pr_holder == r;
}

/* SPC-2 §5.5.1: what another initiator may still send. */
static bool spc2_allowed(uint8_t opcode)
{
	return opcode == 0x12 || opcode == 0x03 || opcode == 0xa0 || opcode == 0x17 ||
	       opcode == 0x57 || opcode == 0xa3;
}

bool scsi_reservation_conflict(const struct scsi_cmd *cmd)
{
	const struct lun *l = cmd->lun;
	const struct lun_reg *r;
	enum pr_class cls;

	if (l->res2 && l->res2_nexus != cmd->nexus->id)
		return !spc2_allowed(cmd->c.opcode);
	if (!l->pr_held)
		return false;
	cls = classify(&cmd->c);
	if (cls == PR_ALLOWED)
		return false;
	r = lun_reg_find(l, cmd->nexus);
	if (is_holder(l, r) || (r && registrants_access(l->pr_type)))
		return false;
	return !(cls == PR_READS && write_exclusive(l->pr_type));
}

/* ---- SPC-2 RESERVE / RELEASE ---- */

void scsi_reserve(struct scsi_cmd *cmd)
{
	struct lun *l = cmd->lun;

	/* SPC-4 §5.13.3 (CRH=1): no SPC-2 reservation over a persistent one. */
	if (l->pr_held)
		return scsi_status(cmd, SCSI_STATUS_RESERVATION_CONFLICT);
	l->res2 = true;
	l->res2_nexus = cmd->nexus->id;
	scsi_good(cmd);
}

/* SPC-2 §7.23: releasing what another holds, or nothing, is GOOD. */
void scsi_release(struct scsi_cmd *cmd)
{
	struct lun *l = cmd->lun;

	if (l->res2 && l->res2_nexus == cmd->nexus->id)
		l->res2 = false;
	scsi_good(cmd);
}

/* ---- PERSISTENT RESERVE IN ---- */

static uint32_t count_regs(const struct lun *l)
{
	uint32_t n = 0;

	for (const struct lun_reg *r = l->regs; r; r = r->next)
		n++;
	return n;
}

static uint32_t read_keys(const struct lun *l, uint8_t *d)
{
	uint32_t n = 8;

	be_put32(d, l->pr_generation);
	for (const struct lun_reg *r = l->regs; r; r = r->next, n += 8)
		be_put64(d + n, r->key);
	be_put32(d + 4, n - 8);
	return n;
}

static uint32_t read_reservation(const struct lun *l, uint8_t *d)
{
	be_put32(d, l->pr_generation);
	if (!l->pr_held)
		return 8;
	be_put32(d + 4, 16);
	if (l->pr_holder && !all_registrants(l->pr_type))
		be_put64(d + 8, l->pr_holder->key);
	d[21] = l->pr_type; /* SCOPE 0h: LU_SCOPE */
	return 24;
}

/* SPC-4 §6.15.4 REPORT CAPABILITIES */
static uint32_t report_caps(uint8_t *d)
{
	be_put16(d, 8);
	d[2] = 0x10;				 /* CRH */
	d[3] = 0x80;				 /* TMV, ALLOW COMMANDS 000b */
	d[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; /* WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX */
	d[5] = 0x01;				 /* EX_AC_AR */
	return 8;
}

/* SPC-4 §7.6.4.6 iSCSI TransportID, format 01b: "name,i,0x" ISID. */
static uint32_t transport_id(const struct lun_reg *r, uint8_t *p)
{
	int n = snprintf((char *)p + 4, 256, "%.223s,i,0x%02x%02x%02x%02x%02x%02x", r->initiator,
			 r->isid[0], r->isid[1], r->isid[2], r->isid[3], r->isid[4], r->isid[5]);
	uint32_t len = ((uint32_t)(n < 0 ? 0 : n) + 1 + 3) & ~3u;

	memset(p + 4 + n, 0, len - n);
	p[0] = 0x40 | 0x05;
	p[1] = 0;
	be_put16(p + 2, len);
	return 4 + len;
}

static uint32_t read_full_status(const struct scsi_cmd *cmd, uint8_t *d)
{
	const struct lun *l = cmd->lun;
	uint16_t port = cmd->target && cmd->target->tpgt ? cmd->target->tpgt : 1;
	uint32_t n = 8;

	be_put32(d, l->pr_generation);
	for (const struct lun_reg *r = l->regs; r; r = r->next) {
		uint8_t *p = d + n;
		uint32_t tid;

		be_put64(p, r->key);
		if (is_holder(l, r)) {
			p[12] = 0x01; /* R_HOLDER */
			p[13] = l->pr_type;
		}
		be_put16(p + 18, port);
		tid = transport_id(r, p + 24);
		be_put32(p + 20, tid);
		n += 24 + tid;
	}
	be_put32(d + 4, n - 8);
	return n;
}

void scsi_pr_in(struct scsi_cmd *cmd)
{
	struct lun *l = cmd->lun;
	size_t cap = 64 + (size_t)count_regs(l) * (24 + 4 + 256);
	uint8_t *d = calloc(1, cap);
	uint32_t n;

	if (!d)
		return scsi_status(cmd, SCSI_STATUS_TASK_SET_FULL);
	cmd->bounce = d;
	switch (cmd->c.sa) {
	case 0x00:
		n = read_keys(l, d);
		break;
	case 0x01:
		n = read_reservation(l, d);
		break;
	case 0x02:
		n = report_caps(d);
		break;
	default:
		n = read_full_status(cmd, d);
		break;
	}
	scsi_data_in(cmd, d, n, cmd->c.alloc_len);
}

/* ---- PERSISTENT RESERVE OUT ---- */

static void release_pr(struct lun *l, const struct lun_reg *except)
{
	/* SPC-4 §5.13.11.2.2: releasing an RO/AR reservation tells the others. */
	if (registrants_access(l->pr_type))
		for (struct lun_reg *r = l->regs; r; r = r->next)
			if (r != except)
				lun_ua_reg(l, r, SENSE_RESERVATIONS_RELEASED);
	l->pr_held = false;
	l->pr_holder = NULL;
	l->pr_type = 0;
}

static void unregister(struct lun *l, struct lun_reg *r)
{
	struct lun_reg **pp;

	for (pp = &l->regs; *pp != r; pp = &(*pp)->next)
		;
	*pp = r->next;
	/* SPC-4 §5.13.10: an all-registrants reservation stays while any
	 * registrant is left; the others end with their holder. */
	if (l->pr_held && all_registrants(l->pr_type)) {
		if (!l->regs)
			release_pr(l, r);
		else if (l->pr_holder == r)
			l->pr_holder = l->regs;
	} else if (l->pr_held && l->pr_holder == r) {
		release_pr(l, r);
	}
	free(r);
}

static int add_reg(struct lun *l, const struct scsi_nexus *n, uint64_t key)
{
	struct lun_reg *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	r->key = key;
	memcpy(r->initiator, n->initiator, sizeof(r->initiator));
	r->initiator[sizeof(r->initiator) - 1] = '\0';
	memcpy(r->isid, n->isid, sizeof(r->isid));
	r->next = l->regs;
	l->regs = r;
	return 0;
}

/* REGISTER and REGISTER AND IGNORE EXISTING KEY (SPC-4 §5.13.7). */
static void pr_register(struct scsi_cmd *cmd, struct lun_reg *r, uint64_t rk, uint64_t sark,
			bool ignore)
{
	struct lun *l = cmd->lun;

	if (!r) {
		if (!ignore && rk != 0)
			return scsi_status(cmd, SCSI_STATUS_RESERVATION_CONFLICT);
		if (sark && add_reg(l, cmd->nexus, sark))
			return scsi_status(cmd, SCSI_STATUS_TASK_SET_FULL);
	} else {
		if (!ignore && rk != r->key)
			return scsi_status(cmd, SCSI_STATUS_RESERVATION_CONFLICT);
		if (sark)
			r->key = sark;
		else
			unregister(l, r);
	}
	if (r || sark)
		l->pr_generation++;
	scsi_good(cmd);
}

static bool valid_type(uint8_t type)
{
	return type == PR_WE || type == PR_EA || type == PR_WE_RO || type == PR_EA_RO ||
	       type == PR_WE_AR || type == PR_EA_AR;
}

static void pr_reserve(struct scsi_cmd *cmd, struct lun_reg *r)
{
	struct lun *l = cmd->lun;

	if (l->pr_held) {
		if (is_holder(l, r) && l->pr_type == cmd->c.type)
			return scsi_good(cmd);
		return scsi_status(cmd, SCSI_STATUS_RESERVATION_CONFLICT);
	}
	l->pr_held = true;
	l->pr_type = cmd->c.type;
	l->pr_holder = r;
	scsi_good(cmd);
}

static void pr_release(struct scsi_cmd *cmd, struct lun_reg *r)
{
	struct lun *l = cmd->lun;

	if (!is_holder(l, r))
		return scsi_good(cmd);
	if (l->pr_type != cmd->c.type)
		return scsi_fail(
			cmd, sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_RELEASE_OF_PR));
	release_pr(l, r);
	scsi_good(cmd);
}

static void pr_clear(struct scsi_cmd *cmd, struct lun_reg *self)
{
	struct lun *l = cmd->lun;

	l->pr_held = false;
	l->pr_holder = NULL;
	while (l->regs) {
		struct lun_reg *r = l->regs;

		if (r != self)
			lun_ua_reg(l, r, SENSE_RESERVATIONS_PREEMPTED);
		l->regs = r->next;
		free(r);
	}
	l->pr_generation++;
	scsi_good(cmd);
}

/* Remove every registration with @key but @self (or all if @key is 0);
 * returns how many went. */
static unsigned int preempt_regs(struct lun *l, uint64_t key, const struct lun_reg *self)
{
	unsigned int n = 0;
	struct lun_reg **pp = &l->regs;

	while (*pp) {
		struct lun_reg *r = *pp;

		if (r != self && (key == 0 || r->key == key)) {
			*pp = r->next;
			lun_ua_reg(l, r, SENSE_REGISTRATIONS_PREEMPTED);
			if (l->pr_holder == r)
				l->pr_holder = NULL;
			free(r);
			n++;
			continue;
		}
		pp = &r->next;
	}
	return n;
}

/* PREEMPT, PREEMPT AND ABORT (SPC-4 §5.13.11.2.4); aborting the tasks of
 * the preempted nexuses is the session layer's. */
static void pr_preempt(struct scsi_cmd *cmd, struct lun_reg *self, uint64_t sark)
{
	struct lun *l = cmd->lun;
	bool take;

	if (!l->pr_held ||
	    (!all_registrants(l->pr_type) && l->pr_holder && l->pr_holder->key != sark)) {
		/* Only registrations go: the reservation, if any, stays. */
		if (sark == 0)
			return scsi_fail(cmd, sense_invalid_param_field(8, 7));
		if (!preempt_regs(l, sark, self))
			return scsi_status(cmd, SCSI_STATUS_RESERVATION_CONFLICT);
		l->pr_generation++;
		return scsi_good(cmd);
	}
	/* The reservation itself is preempted: all-registrants with key 0,
	 * or the holder's key. */
	take = !all_registrants(l->pr_type) || sark == 0;
	if (!take) {
		if (!preempt_regs(l, sark, self))
			return scsi_status(cmd, SCSI_STATUS_RESERVATION_CONFLICT);
	} else {
		preempt_regs(l, sark, self);
		l->pr_type = cmd->c.type;
		l->pr_holder = self;
	}
	l->pr_generation++;
	scsi_good(cmd);
}

/* Check the parameter list; returns false after completing @cmd. */
static bool pr_out_params(struct scsi_cmd *cmd)
{
	const uint8_t *p = cmd->buf;

	if (cmd->c.param_len != PR_OUT_PARAM_LEN || scsi_data_out_len(cmd) < PR_OUT_PARAM_LEN) {
		scsi_fail(cmd,
			  sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_PARAMETER_LIST_LENGTH_ERROR));
		return false;
	}
	if (p[20] & (PR_SPEC_I_PT | PR_ALL_TG_PT | PR_APTPL)) {
		int bit = p[20] & PR_SPEC_I_PT ? 3 : p[20] & PR_ALL_TG_PT ? 2 : 0;

		scsi_fail(cmd, sense_invalid_param_field(20, bit));
		return false;
	}
	return true;
}

static bool typed(uint16_t sa)
{
	return sa == 0x01 || sa == 0x02 || sa == 0x04 || sa == 0x05;
}

void scsi_pr_out(struct scsi_cmd *cmd)
{
	struct lun_reg *r = lun_reg_find(cmd->lun, cmd->nexus);
	uint64_t rk, sark;

	cmd->xfer = cmd->c.param_len;
	if (cmd->c.sa == 0x07) /* REGISTER AND MOVE */
		return scsi_fail(cmd, sense_invalid_cdb_field(1, 4));
	if (typed(cmd->c.sa) && cmd->c.scope != 0)
		return scsi_fail(cmd, sense_invalid_cdb_field(2, 7));
	if (typed(cmd->c.sa) && !valid_type(cmd->c.type))
		return scsi_fail(cmd, sense_invalid_cdb_field(2, 3));
	if (!pr_out_params(cmd))
		return;
	rk = be_get64(cmd->buf);
	sark = be_get64(cmd->buf + 8);
	if (cmd->c.sa == 0x00 || cmd->c.sa == 0x06)
		return pr_register(cmd, r, rk, sark, cmd->c.sa == 0x06);
	/* SPC-4 §5.13.1: the other actions need a registered nexus and key. */
	if (!r || r->key != rk)
		return scsi_status(cmd, SCSI_STATUS_RESERVATION_CONFLICT);
	switch (cmd->c.sa) {
	case 0x01:
		return pr_reserve(cmd, r);
	case 0x02:
		return pr_release(cmd, r);
	case 0x03:
		return pr_clear(cmd, r);
	default:
		return pr_preempt(cmd, r, sark);
	}
}
