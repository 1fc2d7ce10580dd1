/*
 * probe: what iser-mount asks a target before it mounts anything: the
 * LUNs (REPORT LUNS), and for each its identity (standard INQUIRY), its
 * limits (VPD Block Limits, Logical Block Provisioning), its capacity
 * (READ CAPACITY) and whether it is write-protected (MODE SENSE).
 *
 * Synchronous: each function runs the scheduler until its commands are
 * done (ini_cmd_sync), so it is for start-up and --discover, not for the
 * mounted file system's loop.
 */
#ifndef ISERKIT_PROBE_H
#define ISERKIT_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ini_session;
struct ini_opts;
struct sched;

#define PROBE_ERR_MAX 256

struct probe_lun {
	uint32_t lun;
	char vendor[9], product[17], rev[5]; /* printable, blanks trimmed */
	uint32_t block_size;		     /* bytes, 512..65536 */
	uint64_t nblocks;
	uint32_t max_xfer;  /* blocks per command (VPD B0h); 0: no limit given */
	uint32_t opt_xfer;  /* optimal blocks per command; 0: none given */
	uint32_t max_unmap; /* blocks per UNMAP; 0: the LUN does not unmap */
	bool lbprz;	    /* unmapped blocks read back as zeros */
	bool write_protected;
};

/*
 * Create a session on @s with @o and log in, waiting. Returns 0 and sets
 * *ret, or -errno with the reason in @err (ini_session_error()'s words).
 */
int probe_login(struct sched *s, const struct ini_opts *o, struct ini_session **ret, char *err,
		size_t errlen);

/*
 * Log out, waiting for the commands in flight and the target's answer
 * (at most 10 s), then destroy @sess. Returns 0 or -errno (-ETIMEDOUT).
 * NULL is allowed.
 */
int probe_logout(struct sched *s, struct ini_session *sess);

/*
 * REPORT LUNS: the LUN numbers (peripheral and flat addressing; others are
 * skipped), sorted, without duplicates, in *luns (malloc'd; free it) and
 * *n. Returns 0 or -errno with the reason in @err (the command's status
 * and sense, or a malformed answer: -EPROTO).
 */
int probe_report_luns(struct ini_session *sess, uint32_t **luns, size_t *n, char *err,
		      size_t errlen);

/*
 * Fill @out for LUN @lun. Returns 0, -ENODEV when it is not a connected
 * direct-access block device (SBC), -EPROTO for an answer that makes no
 * sense (a block size out of 512..65536, a capacity that overflows), or
 * the -errno of a command that failed; @err says which.
 */
int probe_lun(struct ini_session *sess, uint32_t lun, struct probe_lun *out, char *err,
	      size_t errlen);

/* @bytes as "64.0 MiB" (or "512 B") into @buf. Returns @buf. */
const char *probe_human_size(uint64_t bytes, char *buf, size_t size);

#endif
