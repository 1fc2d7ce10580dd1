/*
 * opts: iser-mount's command line, its -o options in FUSE's style, and
 * the CHAP secrets, which come from the URL, a file or the environment
 * (a URL is visible to every user in ps; a file or the environment is not).
 * Pure parsing: nothing here touches the network or the mount point.
 */
#ifndef ISERKIT_OPTS_H
#define ISERKIT_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPTS_ERR_MAX 512
#define OPTS_DEFAULT_MAX_IO (1u << 20)
#define OPTS_DEFAULT_BUSY_POLL 100 /* us: covers a round trip through fio here */
#define OPTS_SECRET_MAX 256

struct opts {
	const char *url;	/* argv: the iscsi:// URL */
	const char *mountpoint; /* argv; NULL with --discover */
	bool discover;
	bool help, version;
	bool foreground, debug;
	bool ro, allow_other, cache;
	bool uring; /* FUSE requests over io_uring when the kernel offers it */
	bool header_digest, data_digest;
	bool mpa_crc;		       /* iser:// on soft: ask for MPA CRC32C */
	unsigned int chap_algs;	       /* INI_CHAP_*; 0: any */
	unsigned int queue_depth;      /* 0: the initiator's default */
	uint32_t max_io;	       /* bytes per SCSI command */
	unsigned int recovery_timeout; /* s; 0: forever */
	unsigned int cmd_timeout;      /* s; 0: the initiator's default */
	unsigned int nop_interval;     /* s; 0: the initiator's default */
	char *initiator;	       /* owned; NULL: the library's default */
	char *chap_file;	       /* owned; NULL: none */
	const char *fabric;	       /* iser://: "auto", "verbs" or "soft" */
	int arm_delay;		       /* iser://: -1 for the default */
	unsigned int busy_poll;	       /* us of busy polling (sched.h) */
};

/* CHAP names and secrets; empty strings when not given. */
struct opts_chap {
	char user[OPTS_SECRET_MAX];
	char secret[OPTS_SECRET_MAX];
	char target_user[OPTS_SECRET_MAX];
	char target_secret[OPTS_SECRET_MAX];
	unsigned int file_mode; /* chap_file's permission bits, for a warning */
};

/*
 * Parse argv into @o (set to defaults first). Returns 0, or -EINVAL with
 * one line saying what is wrong in @err: an unknown option, a bad number,
 * a missing or extra argument. --help and --version set o->help or
 * o->version and skip the argument checks. -ENOMEM when out of memory.
 */
int opts_parse(int argc, char **argv, struct opts *o, char *err, size_t errlen);

/* Parse one -o list ("ro,queue_depth=64") into @o. Returns 0, -EINVAL
 * (with @err), -ENOMEM. */
int opts_parse_list(struct opts *o, const char *list, char *err, size_t errlen);

/* Free what opts_parse() allocated. */
void opts_free(struct opts *o);

/*
 * "4096", "64k", "1M", "2G" (binary multiples) into *out, at most @max.
 * Returns 0 or -EINVAL (not a number, a bad suffix, above @max).
 */
int opts_parse_size(const char *s, uint64_t max, uint64_t *out);

/*
 * Fill @c with the CHAP credentials: each field from the first source
 * that has it, in this order: the URL (@url_user, @url_secret; may be
 * empty), the file o->chap_file (lines user=, password=, target_user=,
 * target_password=; # comments), then the environment
 * (ISERKIT_CHAP_USER, ISERKIT_CHAP_PASSWORD, ISERKIT_CHAP_TARGET_USER,
 * ISERKIT_CHAP_TARGET_PASSWORD). Returns 0, or -errno with @err: the file
 * cannot be read (-ENOENT, -EACCES...), a line is malformed (-EINVAL), a
 * secret without its name or a target secret without ours (-EINVAL).
 */
int opts_load_chap(const struct opts *o, const char *url_user, const char *url_secret,
		   struct opts_chap *c, char *err, size_t errlen);

/* Wipe the secrets from memory. */
void opts_chap_wipe(struct opts_chap *c);

/* The --help text. */
extern const char opts_usage[];

#endif
