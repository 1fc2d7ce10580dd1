/*
 * config: iser-target's configuration, from iser-target.conf(5) or from the
 * command line. Both go through the same setters, so a flag and a config
 * line are checked alike. Nothing here opens a socket or a backing file.
 *
 * The file is line-oriented: "[section args]" headers, "key = value"
 * lines, '#' comments. [global] holds portals and discovery settings;
 * [target IQN] starts a target; [lun N] a LUN of the target above it.
 */
#ifndef ISERKIT_CONFIG_H
#define ISERKIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CONFIG_ERR_MAX 512
#define CONFIG_NAME_MAX 223 /* RFC 7143 §4.2.7.1: iSCSI names <= 223 bytes */
#define CONFIG_CHAP_MAX 256
#define CONFIG_SERIAL_MAX 64
#define CONFIG_BUSY_POLL_DEFAULT 100 /* us: covers a loopback round trip here */
#define CONFIG_BUSY_POLL_MAX 100000

enum config_transport {
	CONFIG_TCP,
	CONFIG_ISER,
};

enum config_fabric {
	CONFIG_FABRIC_AUTO,
	CONFIG_FABRIC_VERBS,
	CONFIG_FABRIC_SOFT,
};

struct config_portal {
	enum config_transport transport;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char text[80]; /* as written, for logs */
};

struct config_chap {
	char user[CONFIG_CHAP_MAX];
	char secret[CONFIG_CHAP_MAX];
	bool set;
};

struct config_lun {
	unsigned int lun;
	char *path;
	uint64_t size; /* bytes; 0: use the existing file or device's size */
	bool read_only;
	unsigned int block_size; /* 512 or 4096 */
	char serial[CONFIG_SERIAL_MAX + 1];
	uint64_t naa; /* NAA identifier, 8 bytes */
	bool serial_set, naa_set;
	int line; /* where it was declared, for later errors; 0: command line */
};

struct config_target {
	char name[CONFIG_NAME_MAX + 1];
	char alias[CONFIG_NAME_MAX + 1];
	char **allow; /* initiator names; none: every initiator */
	size_t nallow;
	struct config_chap chap;	/* the initiator proves itself to us */
	struct config_chap mutual_chap; /* we prove ourselves to the initiator */
	struct config_lun *luns;
	size_t nluns;
	int line;
};

struct config {
	char *file; /* NULL: from the command line */
	struct config_portal *portals;
	size_t nportals;
	enum config_fabric fabric;
	struct config_chap discovery_chap;
	struct config_chap discovery_mutual_chap;
	unsigned int nop_interval;  /* seconds; 0: no NOP-In pings */
	unsigned int nop_timeout;   /* seconds without an answer before a drop */
	unsigned int login_timeout; /* seconds a login may take */
	unsigned int header_digest; /* TEXT_DIGEST_* accepted (text.h) */
	unsigned int data_digest;
	unsigned int arm_delay; /* iSER: empty CQ polls before re-arming */
	unsigned int busy_poll; /* us of busy polling (sched.h) */
	struct config_target *targets;
	size_t ntargets;
};

/* An empty configuration with the defaults. Returns 0 or -ENOMEM. */
int config_create(struct config **ret);

/* Free a configuration; NULL is allowed. */
void config_destroy(struct config *c);

/*
 * Read @path into @c (which may already hold command-line settings). On
 * error returns -errno (-ENOENT, -EACCES... for the file, -EINVAL for its
 * content) and writes "FILE:LINE: problem" to @err.
 */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

/*
 * Setters shared by the file and the command line. Each returns 0 or
 * -EINVAL/-ENOMEM/-EEXIST and writes the problem (without a location) to
 * @err.
 */
int config_add_portal(struct config *c, const char *spec, char *err, size_t errlen);
/* "auto", "verbs" or "soft": the RDMA provider of iSER portals. */
int config_set_fabric(struct config *c, const char *s, char *err, size_t errlen);
int config_set_busy_poll(struct config *c, const char *s, char *err, size_t errlen);
int config_add_target(struct config *c, const char *iqn, char *err, size_t errlen);
int config_add_lun(struct config_target *t, unsigned int lun, const char *path, char *err,
		   size_t errlen);

/* "512", "4k", "10M", "1G", "2T" (binary multiples, as truncate(1)). */
int config_parse_size(const char *s, uint64_t *ret);

/*
 * Check the whole configuration: at least one portal and one target, each
 * target with a LUN, LUN 0 present... Fills in derived defaults (a serial
 * and NAA identifier derived from the target name and LUN, stable across
 * restarts). Returns 0 or -EINVAL with the problem in @err.
 */
int config_finish(struct config *c, char *err, size_t errlen);

/* The last target added (the one [lun] lines and --lun flags apply to). */
struct config_target *config_last_target(struct config *c);

/* May @initiator log in to @t? No allow list, or "all", lets everyone in. */
bool config_allows(const struct config_target *t, const char *initiator);

/* Look a target up by name; NULL if none. */
struct config_target *config_find_target(struct config *c, const char *iqn);

#endif
