/*
 * scsierr: SCSI status and sense data mapped to errno, the way the Linux
 * block layer maps them for a disk (block/blk-core.c blk_errors,
 * drivers/scsi/scsi_lib.c scsi_result_to_blk_status, scsi_io_completion):
 *
 *   GOOD, CONDITION MET                     0
 *   RESERVATION CONFLICT                    -EBADE
 *   BUSY, TASK SET FULL                     -EAGAIN (the caller retries)
 *   CHECK CONDITION, by sense key / ASC:
 *     NO SENSE, RECOVERED ERROR             0
 *     NOT READY                             -EAGAIN when becoming ready
 *                                           (04/01), else -EIO
 *     MEDIUM ERROR                          -EIO  (Linux: BLK_STS_MEDIUM)
 *     HARDWARE ERROR                        -EIO
 *     ILLEGAL REQUEST 20/00 (opcode)        -EOPNOTSUPP
 *     ILLEGAL REQUEST, other (21/00 LBA out
 *       of range, 24/00 invalid field...)   -EINVAL
 *     UNIT ATTENTION                        -EAGAIN (retry)
 *     DATA PROTECT 27/07 (space alloc.)     -ENOSPC
 *     DATA PROTECT, other                   -EROFS
 *     ABORTED COMMAND                       -EAGAIN (retry)
 *     MISCOMPARE                            -EILSEQ
 *     other                                 -EIO
 *   other statuses                          -EIO
 *
 * Both fixed (0x70/0x71) and descriptor (0x72/0x73) sense formats are
 * read; every length is checked against the buffer. Pure functions.
 */
#ifndef ISERKIT_SCSIERR_H
#define ISERKIT_SCSIERR_H

#include <stddef.h>
#include <stdint.h>

struct scsierr_sense {
	uint8_t key, asc, ascq;
};

/* Decode @len bytes of sense data; returns 0 or -EINVAL (too short, an
 * unknown response code). */
int scsierr_sense_decode(const uint8_t *sense, size_t len, struct scsierr_sense *out);

/* The errno (0 or negative) for a command that ended with @status and
 * the @len bytes of @sense (NULL/0 when none). */
int scsierr_to_errno(uint8_t status, const uint8_t *sense, size_t len);

/* "ILLEGAL REQUEST: LOGICAL BLOCK ADDRESS OUT OF RANGE (21/00)" and the
 * like into @buf, for logs. Returns @buf. */
const char *scsierr_describe(uint8_t status, const uint8_t *sense, size_t len, char *buf,
			     size_t size);

#endif
