/*
 * scsi_priv: what the files of the SCSI layer share (scsi.c: dispatch and
 * completion; scsi_io.c: media commands; scsi_inq.c: INQUIRY and REPORT
 * SUPPORTED OPERATION CODES; scsi_mode.c: mode pages; scsi_pr.c:
 * reservations). Not for the session layer.
 */
#ifndef ISERKIT_SCSI_PRIV_H
#define ISERKIT_SCSI_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "common/be.h"
#include "lun.h"
#include "scsi.h"

/* Block Limits VPD page values (SBC-3 §6.5.3), shared with the checks. */
#define SCSI_MAX_XFER_BYTES (16u << 20)
#define SCSI_MAX_CAW_BLOCKS 255u
#define SCSI_MAX_UNMAP_BLOCKS 0xffffffffu
#define SCSI_MAX_UNMAP_DESCS 256u

/* The largest parameter data built in memory (REPORT SUPPORTED OPERATION
 * CODES with timeouts is the largest). */
#define SCSI_DATA_MAX 4096u

/* Completion: each sets status, sense, residual and calls cmd->done. */
void scsi_good(struct scsi_cmd *cmd);
void scsi_fail(struct scsi_cmd *cmd, struct sense s);
void scsi_status(struct scsi_cmd *cmd, uint8_t status);

/* Copy @len bytes of parameter data to the data-in buffer, truncated to
 * @alloc, the ALLOCATION LENGTH (SPC-4 §4.2.5.6), and to EDTL; complete
 * GOOD. */
void scsi_data_in(struct scsi_cmd *cmd, const uint8_t *data, uint32_t len, uint32_t alloc);

/* The data-in capacity: EDTL for a read, 0 otherwise. */
uint32_t scsi_data_in_cap(const struct scsi_cmd *cmd);

/* Release @cmd's range lock, if any, and start the commands it blocked. */
void scsi_unlock(struct scsi_cmd *cmd);

/* The data-out bytes the command carries: min(EDTL, received). */
uint32_t scsi_data_out_len(const struct scsi_cmd *cmd);

/* Sense flags for @cmd's LUN (D_SENSE). */
unsigned int scsi_sense_flags(const struct scsi_cmd *cmd);

/* scsi_inq.c */
void scsi_inquiry(struct scsi_cmd *cmd);
void scsi_report_opcodes(struct scsi_cmd *cmd);
void scsi_report_tmfs(struct scsi_cmd *cmd);

/* scsi_mode.c */
void scsi_mode_sense(struct scsi_cmd *cmd);
void scsi_mode_select(struct scsi_cmd *cmd);

/* scsi_pr.c */
bool scsi_reservation_conflict(const struct scsi_cmd *cmd);
void scsi_reserve(struct scsi_cmd *cmd);
void scsi_release(struct scsi_cmd *cmd);
void scsi_pr_in(struct scsi_cmd *cmd);
void scsi_pr_out(struct scsi_cmd *cmd);

/* scsi_io.c, scsi_lbp.c: commands that touch the medium. */
void scsi_read(struct scsi_cmd *cmd);
void scsi_write(struct scsi_cmd *cmd);
void scsi_verify(struct scsi_cmd *cmd);
void scsi_compare_and_write(struct scsi_cmd *cmd);
void scsi_orwrite(struct scsi_cmd *cmd);
void scsi_write_same(struct scsi_cmd *cmd);
void scsi_unmap(struct scsi_cmd *cmd);
void scsi_get_lba_status(struct scsi_cmd *cmd);
void scsi_sync_cache(struct scsi_cmd *cmd);

/* scsi_io.c helpers for scsi_lbp.c: a whole transfer, a shared range lock,
 * the sense of a failed media I/O, the end of a write (FUA, WCE). */
void scsi_io_start(struct scsi_cmd *cmd, bool write, uint8_t *buf, uint64_t off, uint32_t len,
		   void (*cb)(struct scsi_cmd *cmd, int err));
void scsi_io_lock(struct scsi_cmd *cmd, uint64_t lba, uint64_t n,
		  void (*start)(struct scsi_cmd *cmd));
struct sense scsi_media_sense(int err, bool write);
void scsi_write_done(struct scsi_cmd *cmd, int err);

/* Whether the range [lba, lba + n) fits the LUN; else completes @cmd with
 * LBA OUT OF RANGE and returns false. */
bool scsi_check_range(struct scsi_cmd *cmd, uint64_t lba, uint64_t n);

#endif
