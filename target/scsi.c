/*
 * scsi: command dispatch and completion for the emulated disk (SPC-4,
 * SBC-3), and the commands that need no more than a few lines.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_priv.h"

/* SPC-4 §6.33 REPORT LUNS SELECT REPORT codes. */
#define SELECT_REPORT_ALL_LOGICAL 0x00
#define SELECT_REPORT_WELL_KNOWN 0x01
#define SELECT_REPORT_ALL 0x02
#define REPORT_LUNS_MIN_ALLOC 16

#define INQ_PQ_NOT_CONNECTABLE 0x60 /* peripheral qualifier 011b */
#define INQ_TYPE_UNKNOWN 0x1f

unsigned int scsi_sense_flags(const struct scsi_cmd *cmd)
{
	return cmd->lun && cmd->lun->d_sense ? SENSE_DESC : 0;
}

uint32_t scsi_data_in_cap(const struct scsi_cmd *cmd)
{
	return cmd->dir == SCSI_DIR_READ && cmd->buf ? cmd->edtl : 0;
}

uint32_t scsi_data_out_len(const struct scsi_cmd *cmd)
{
	if (cmd->dir != SCSI_DIR_WRITE || !cmd->buf)
		return 0;
	return cmd->buf_len < cmd->edtl ? cmd->buf_len : cmd->edtl;
}

static void finish(struct scsi_cmd *cmd)
{
	free(cmd->bounce);
	cmd->bounce = NULL;
	scsi_unlock(cmd);
	cmd->done(cmd);
}

/* RFC 7143 §11.4.5.1: the transfer the command asked for against EDTL. */
static void set_residual(struct scsi_cmd *cmd)
{
	if (cmd->xfer > cmd->edtl) {
		cmd->overflow = true;
		cmd->residual = cmd->xfer - cmd->edtl;
	} else if (cmd->xfer < cmd->edtl) {
		cmd->underflow = true;
		cmd->residual = cmd->edtl - cmd->xfer;
	}
}

void scsi_good(struct scsi_cmd *cmd)
{
	cmd->status = SCSI_STATUS_GOOD;
	set_residual(cmd);
	finish(cmd);
}

void scsi_status(struct scsi_cmd *cmd, uint8_t status)
{
	cmd->status = status;
	cmd->data_len = 0;
	finish(cmd);
}

void scsi_fail(struct scsi_cmd *cmd, struct sense s)
{
	int n = sense_encode(&s, scsi_sense_flags(cmd), cmd->sense, sizeof(cmd->sense));

	if (n < 0) {
		s = sense_make(SENSE_KEY_HARDWARE_ERROR, SENSE_INTERNAL_TARGET_FAILURE);
		n = sense_encode(&s, 0, cmd->sense, sizeof(cmd->sense));
	}
	cmd->sense_len = n;
	cmd->status = SCSI_STATUS_CHECK_CONDITION;
	cmd->data_len = 0;
	finish(cmd);
}

void scsi_data_in(struct scsi_cmd *cmd, const uint8_t *data, uint32_t len, uint32_t alloc)
{
	uint32_t cap = scsi_data_in_cap(cmd);

	cmd->xfer = len < alloc ? len : alloc;
	cmd->data_len = cmd->xfer < cap ? cmd->xfer : cap;
	if (cmd->data_len)
		memcpy(cmd->buf, data, cmd->data_len);
	scsi_good(cmd);
}

bool scsi_check_range(struct scsi_cmd *cmd, uint64_t lba, uint64_t n)
{
	uint64_t blocks = cmd->lun->blocks;

	if (lba <= blocks && n <= blocks - lba)
		return true;
	/* SBC-3 §4.5: the INFORMATION field is not required; leave it. */
	scsi_fail(cmd, sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_LBA_OUT_OF_RANGE));
	return false;
}

/* SAM-5 §5.3.2 LUN encoding: peripheral below 256, flat space above. */
static void put_lun(uint8_t *p, unsigned int lun)
{
	memset(p, 0, 8);
	if (lun < 256) {
		p[1] = lun;
	} else {
		p[0] = 0x40 | ((lun >> 8) & 0x3f);
		p[1] = lun & 0xff;
	}
}

/* SPC-4 §6.33 REPORT LUNS */
static void report_luns(struct scsi_cmd *cmd)
{
	const struct scsi_target *t = cmd->target;
	size_t n = t ? t->nluns : 0;
	uint8_t *data;

	if (cmd->c.select_report == SELECT_REPORT_WELL_KNOWN)
		n = 0;
	else if (cmd->c.select_report != SELECT_REPORT_ALL_LOGICAL &&
		 cmd->c.select_report != SELECT_REPORT_ALL)
		return scsi_fail(cmd, sense_invalid_cdb_field(2, 7));
	if (cmd->c.alloc_len < REPORT_LUNS_MIN_ALLOC)
		return scsi_fail(cmd, sense_invalid_cdb_field(6, 7));
	data = calloc(1, 8 + 8 * n);
	if (!data)
		return scsi_status(cmd, SCSI_STATUS_TASK_SET_FULL);
	be_put32(data, 8 * n);
	for (size_t i = 0; i < n; i++)
		put_lun(data + 8 + 8 * i, lun_number(t->luns[i]));
	cmd->bounce = data;
	scsi_data_in(cmd, data, 8 + 8 * n, cmd->c.alloc_len);
}

/* SPC-4 §6.39 REQUEST SENSE: a pending unit attention, else NO SENSE. */
static void request_sense(struct scsi_cmd *cmd, struct lun_nexus *ln)
{
	struct sense s = sense_make(SENSE_KEY_NO_SENSE, SENSE_NO_ADDITIONAL_SENSE);
	uint8_t data[SENSE_MAX_LEN];
	uint16_t code;
	int n;

	if (!cmd->lun)
		s = sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_LU_NOT_SUPPORTED);
	else if (ln && lun_ua_pop(ln, &code))
		s = sense_make(SENSE_KEY_UNIT_ATTENTION, code);
	n = sense_encode(&s, cmd->c.desc_sense ? SENSE_DESC : 0, data, sizeof(data));
	scsi_data_in(cmd, data, n > 0 ? (uint32_t)n : 0, cmd->c.alloc_len);
}

/* SBC-3 §5.15 READ CAPACITY(10) */
static void read_capacity10(struct scsi_cmd *cmd)
{
	uint64_t last = cmd->lun->blocks - 1;
	uint8_t data[8];

	if (!cmd->c.pmi && cmd->c.lba)
		return scsi_fail(cmd, sense_invalid_cdb_field(2, 7));
	be_put32(data, last > UINT32_MAX ? UINT32_MAX : (uint32_t)last);
	be_put32(data + 4, cmd->lun->block_size);
	scsi_data_in(cmd, data, sizeof(data), sizeof(data));
}

/* SBC-3 §5.16 READ CAPACITY(16): thin provisioned, LBPRZ for sparse files. */
static void read_capacity16(struct scsi_cmd *cmd)
{
	uint8_t data[32] = {0};

	be_put64(data, cmd->lun->blocks - 1);
	be_put32(data + 8, cmd->lun->block_size);
	data[13] = 0; /* LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT */
	data[14] = 0x80 | (cmd->lun->blockdev ? 0 : 0x40); /* LBPME, LBPRZ */
	scsi_data_in(cmd, data, sizeof(data), cmd->c.alloc_len);
}

/* SBC-3 §5.25 START STOP UNIT: a fixed, non-removable medium. */
static void start_stop(struct scsi_cmd *cmd)
{
	switch (cmd->c.power_cond) {
	case 0x0: /* START_VALID */
	case 0x1: /* ACTIVE */
	case 0x2: /* IDLE */
	case 0x3: /* STANDBY */
	case 0x5: /* obsolete */
	case 0x7: /* LU_CONTROL */
	case 0xa: /* FORCE_IDLE_0 */
	case 0xb: /* FORCE_STANDBY_0 */
		return scsi_good(cmd);
	default:
		return scsi_fail(cmd, sense_invalid_cdb_field(4, 7));
	}
}

/* SBC-3 §5.9 PRE-FETCH: no cache to load, so GOOD, not CONDITION MET. */
static void prefetch(struct scsi_cmd *cmd)
{
	if (scsi_check_range(cmd, cmd->c.lba, cmd->c.length))
		scsi_good(cmd);
}

/* A flat dispatcher over the operation codes of cdb.c's table. */
static void dispatch(struct scsi_cmd *cmd, struct lun_nexus *ln)
{
	switch (cmd->c.opcode) {
	case 0x00: /* TEST UNIT READY */
	case 0x1e: /* PREVENT ALLOW MEDIUM REMOVAL: nothing to lock */
		return scsi_good(cmd);
	case 0x03:
		return request_sense(cmd, ln);
	case 0x08:
	case 0x28:
	case 0x88:
	case 0xa8:
		return scsi_read(cmd);
	case 0x0a:
	case 0x2a:
	case 0x8a:
	case 0xaa:
	case 0x2e: /* WRITE AND VERIFY */
	case 0x8e:
	case 0xae:
		return scsi_write(cmd);
	case 0x12:
		return scsi_inquiry(cmd);
	case 0x15:
	case 0x55:
		return scsi_mode_select(cmd);
	case 0x16:
	case 0x56:
		return scsi_reserve(cmd);
	case 0x17:
	case 0x57:
		return scsi_release(cmd);
	case 0x1a:
	case 0x5a:
		return scsi_mode_sense(cmd);
	case 0x1b:
		return start_stop(cmd);
	case 0x25:
		return read_capacity10(cmd);
	case 0x2f:
	case 0x8f:
	case 0xaf:
		return scsi_verify(cmd);
	case 0x34:
	case 0x90:
		return prefetch(cmd);
	case 0x35:
	case 0x91:
		return scsi_sync_cache(cmd);
	case 0x41:
	case 0x93:
		return scsi_write_same(cmd);
	case 0x42:
		return scsi_unmap(cmd);
	case 0x5e:
		return scsi_pr_in(cmd);
	case 0x5f:
		return scsi_pr_out(cmd);
	case 0x89:
		return scsi_compare_and_write(cmd);
	case 0x8b:
		return scsi_orwrite(cmd);
	case 0x9e:
		if (cmd->c.sa == 0x10)
			return read_capacity16(cmd);
		return scsi_get_lba_status(cmd);
	case 0xa0:
		return report_luns(cmd);
	case 0xa3:
		if (cmd->c.sa == 0x0c)
			return scsi_report_opcodes(cmd);
		return scsi_report_tmfs(cmd);
	default:
		return scsi_fail(cmd, cdb_error_sense(-EOPNOTSUPP, &cmd->c));
	}
}

/* SBC-3 §4.13: commands that write the medium. */
static bool writes_medium(uint8_t opcode)
{
	switch (opcode) {
	case 0x0a:
	case 0x2a:
	case 0x8a:
	case 0xaa:
	case 0x2e:
	case 0x8e:
	case 0xae:
	case 0x41:
	case 0x93:
	case 0x42:
	case 0x89:
	case 0x8b:
		return true;
	default:
		return false;
	}
}

/* SAM-5 §5.14: INQUIRY, REPORT LUNS and REQUEST SENSE do not report a
 * unit attention (REQUEST SENSE returns it as its data). */
static bool ua_exempt(uint8_t opcode)
{
	return opcode == 0x12 || opcode == 0xa0 || opcode == 0x03;
}

/* SPC-4 §6.6.1: INQUIRY to a LUN that is not there, qualifier 011b. */
static void no_lun_inquiry(struct scsi_cmd *cmd)
{
	uint8_t data[36] = {INQ_PQ_NOT_CONNECTABLE | INQ_TYPE_UNKNOWN};

	if (cmd->c.evpd) {
		data[1] = cmd->c.page_code;
		return scsi_data_in(cmd, data, 4, cmd->c.alloc_len);
	}
	if (cmd->c.page_code)
		return scsi_fail(cmd, sense_invalid_cdb_field(2, 7));
	data[2] = 0x06; /* SPC-4 */
	data[3] = 0x02; /* RESPONSE DATA FORMAT */
	data[4] = sizeof(data) - 5;
	scsi_data_in(cmd, data, sizeof(data), cmd->c.alloc_len);
}

static void no_lun(struct scsi_cmd *cmd, int err)
{
	if (err)
		return scsi_fail(cmd, cdb_error_sense(err, &cmd->c));
	switch (cmd->c.opcode) {
	case 0x12:
		return no_lun_inquiry(cmd);
	case 0xa0:
		return report_luns(cmd);
	case 0x03:
		return request_sense(cmd, NULL);
	default:
		return scsi_fail(cmd,
				 sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_LU_NOT_SUPPORTED));
	}
}

static void reset_outputs(struct scsi_cmd *cmd)
{
	cmd->status = SCSI_STATUS_GOOD;
	cmd->sense_len = 0;
	cmd->data_len = 0;
	cmd->residual = 0;
	cmd->overflow = cmd->underflow = false;
	cmd->bounce = NULL;
	cmd->xfer = 0;
	cmd->lk_next = NULL;
	cmd->lk_end = 0;
	cmd->lk_start = NULL;
	cmd->lk_state = 0;
	cmd->io_stage = 0;
	cmd->io_idx = 0;
}

void scsi_exec(struct scsi_cmd *cmd)
{
	struct lun_nexus *ln;
	uint16_t ua;
	int err;

	reset_outputs(cmd);
	err = cdb_decode(cmd->cdb, cmd->cdb_len, &cmd->c);
	if (!cmd->lun)
		return no_lun(cmd, err);
	ln = lun_nexus_get(cmd->lun, cmd->nexus);
	if (!ln)
		return scsi_status(cmd, SCSI_STATUS_TASK_SET_FULL);
	if (!ua_exempt(cmd->cdb[0]) && lun_ua_pop(ln, &ua))
		return scsi_fail(cmd, sense_make(SENSE_KEY_UNIT_ATTENTION, ua));
	if (err)
		return scsi_fail(cmd, cdb_error_sense(err, &cmd->c));
	if (scsi_reservation_conflict(cmd))
		return scsi_status(cmd, SCSI_STATUS_RESERVATION_CONFLICT);
	if (writes_medium(cmd->c.opcode) && lun_write_protected(cmd->lun))
		return scsi_fail(cmd, sense_make(SENSE_KEY_DATA_PROTECT, SENSE_WRITE_PROTECTED));
	dispatch(cmd, ln);
}
