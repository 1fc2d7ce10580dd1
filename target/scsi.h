/*
 * scsi: the disk that iser-target emulates (SBC-3 / SPC-4), seen from the
 * session layer. The transport has gathered the whole command, CDB and any
 * data-out, before it calls scsi_exec(); scsi_exec() produces status,
 * sense and data-in, and calls cmd->done, possibly later (media I/O goes
 * through the LUN's backing store on the scheduler). The transport is a
 * detail here: TCP and iSER fill and drain the same buffer.
 *
 * Everything runs on the scheduler thread that owns the LUN's session.
 */
#ifndef ISERKIT_SCSI_H
#define ISERKIT_SCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/uio.h>

#include "cdb.h"
#include "common/ioq.h"
#include "sense.h"

struct lun;
struct ioq;
struct config_lun;

/* SAM-5 status codes. */
#define SCSI_STATUS_GOOD 0x00
#define SCSI_STATUS_CHECK_CONDITION 0x02
#define SCSI_STATUS_CONDITION_MET 0x04
#define SCSI_STATUS_BUSY 0x08
#define SCSI_STATUS_RESERVATION_CONFLICT 0x18
#define SCSI_STATUS_TASK_SET_FULL 0x28
#define SCSI_STATUS_ACA_ACTIVE 0x30
#define SCSI_STATUS_TASK_ABORTED 0x40

#define SCSI_CDB_MAX 260 /* 16 in the BHS + up to 244 in an extended CDB AHS */

/*
 * The I_T nexus a command came through: reservations, unit attentions and
 * REQUEST SENSE are per nexus. @id is unique among live nexuses; the
 * TransportID of PERSISTENT RESERVE is the iSCSI name plus ",i,0x" ISID
 * (SPC-4 §7.6.4.6).
 */
struct scsi_nexus {
	uint64_t id;
	char initiator[224];
	uint8_t isid[6];
};

/* The target a command was sent to: its LUNs for REPORT LUNS, its name
 * and the portal group the nexus came through for the target port and
 * target device designators of INQUIRY page 83h (SPC-4 §7.8.6). */
struct scsi_target {
	struct lun **luns;
	size_t nluns;
	const char *name; /* iSCSI name; NULL: no name designators */
	uint16_t tpgt;	  /* target portal group tag, also the relative port */
};

enum scsi_dir {
	SCSI_DIR_NONE,
	SCSI_DIR_READ,	/* data-in */
	SCSI_DIR_WRITE, /* data-out */
};

struct scsi_cmd {
	/* Set by the caller. */
	struct lun *lun; /* NULL: no such LUN (the reply is built anyway) */
	const struct scsi_target *target;
	const struct scsi_nexus *nexus;
	uint8_t cdb[SCSI_CDB_MAX];
	uint16_t cdb_len;
	enum scsi_dir dir; /* as the initiator flagged it (iSCSI R/W bits) */
	uint32_t edtl;	   /* Expected Data Transfer Length */
	uint8_t *buf;	   /* data-out as received; data-in written here */
	uint32_t buf_len;  /* bytes of data-out in @buf; capacity for data-in is @edtl */
	void (*done)(struct scsi_cmd *cmd);
	void *priv; /* the caller's */

	/* Set by scsi_exec() before done(). */
	uint8_t status;
	uint8_t sense[SENSE_MAX_LEN];
	uint8_t sense_len;
	uint32_t data_len; /* data-in bytes in @buf */
	/* Residual (RFC 7143 §11.4.5): the transfer the command asked for
	 * compared with @edtl. */
	uint32_t residual;
	bool overflow, underflow;

	/* Private to scsi. */
	struct cdb c;
	struct ioq_req req;
	struct iovec iov;
	void (*io_cb)(struct scsi_cmd *cmd, int err); /* a whole transfer ended */
	uint8_t *io_buf;
	uint64_t io_off;
	uint32_t io_len, io_pos;
	bool io_write;
	int io_stage;
	uint32_t io_idx;
	uint8_t *bounce; /* freed when the command completes */
	uint32_t xfer;	 /* the bytes the command transfers, for the residual */
	/* Range lock (COMPARE AND WRITE, ORWRITE atomicity, SBC-4 §5.3). */
	struct scsi_cmd *lk_next;
	uint64_t lk_lba, lk_end;
	bool lk_excl;
	uint8_t lk_state; /* 0: no lock, 1: held, 2: waiting */
	void (*lk_start)(struct scsi_cmd *cmd);
};

/*
 * Execute @cmd on @cmd->lun. Calls @cmd->done exactly once, from this call
 * or later from the scheduler; never fails otherwise (every error is a
 * status and sense in @cmd).
 */
void scsi_exec(struct scsi_cmd *cmd);

/*
 * Open a LUN's backing store (creating the file sparse if @cl->size is set
 * and it does not exist); its I/O goes through @q. Returns 0, or -errno (-ENOENT, -EACCES,
 * -EINVAL for a size that is not a multiple of the block size...).
 */
int lun_open(const struct config_lun *cl, struct ioq *q, struct lun **ret);

/* Flush and close; NULL is allowed. Outstanding I/O must have completed. */
void lun_close(struct lun *l);

unsigned int lun_number(const struct lun *l);
uint64_t lun_blocks(const struct lun *l);
unsigned int lun_block_size(const struct lun *l);

/* Queue a unit attention for every nexus but @except (0: all), e.g.
 * POWER ON/RESET when a LUN reset or target reset happens. */
void lun_unit_attention(struct lun *l, uint64_t except, uint16_t asc_ascq);

/* Forget a nexus that ended: its unit attentions, its SPC-2 reservation
 * (SPC-2 §5.5.1); its persistent reservation registrations stay. */
void lun_nexus_gone(struct lun *l, uint64_t nexus_id);

/*
 * A LOGICAL UNIT RESET (SAM-5 §6.3.3) or a target reset reaching @l:
 * release the SPC-2 reservation, restore the mode parameters to their
 * defaults, and queue @asc_ascq (BUS DEVICE RESET FUNCTION OCCURRED for a
 * LUN reset) for every nexus but @except. Commands in flight are the
 * caller's to abort or wait for.
 */
void lun_reset(struct lun *l, uint64_t except, uint16_t asc_ascq);

#endif
