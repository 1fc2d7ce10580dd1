/*
 * ini: the iSCSI initiator library (DESIGN.md §8). One struct ini_session
 * is one iSCSI session with one connection to one target, on one
 * scheduler thread: login (CHAP, digests), a window of many commands in
 * flight within the target's CmdSN window, R2T and Data-Out, NOP-Out
 * keepalive, command timeouts, and recovery: when the connection drops,
 * reconnect with back-off, log in again with the same ISID, and reissue
 * every command that had no response.
 *
 * Rules:
 * - Everything runs on the scheduler passed to ini_session_create(); no
 *   function here may be called from another thread.
 * - A command's memory belongs to the caller from ini_submit() until its
 *   done() callback runs; done() runs from the scheduler, never from
 *   inside ini_submit().
 * - Errors are -errno. The library never prints; ini_session_error()
 *   gives the text of the last failure for the program to log.
 */
#ifndef ISERKIT_INI_H
#define ISERKIT_INI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sched;
struct ini_session;
struct rbuf;

#define INI_DEFAULT_PORT 3260
#define INI_DEFAULT_QUEUE_DEPTH 128
#define INI_DEFAULT_RECOVERY_TIMEOUT 120 /* s */
#define INI_DEFAULT_CMD_TIMEOUT 30	 /* s */
#define INI_DEFAULT_NOP_INTERVAL 5	 /* s */
#define INI_SENSE_MAX 96

struct ini_opts {
	const char *host;	       /* name or address of the portal */
	uint16_t port;		       /* 0: INI_DEFAULT_PORT */
	const char *target;	       /* IQN; NULL: a discovery session */
	const char *initiator;	       /* our IQN; NULL: a default name */
	const char *user, *secret;     /* CHAP; NULL: no authentication */
	const char *target_user;       /* mutual CHAP: the target's name... */
	const char *target_secret;     /* ...and secret; NULL: one-way */
	unsigned int chap_algs;	       /* INI_CHAP_*; 0: both, SHA-256 first */
	bool header_digest;	       /* ask for CRC32C header digests */
	bool data_digest;	       /* ask for CRC32C data digests */
	unsigned int queue_depth;      /* commands in flight; 0: default */
	unsigned int recovery_timeout; /* s to keep reconnecting, 0 = forever */
	unsigned int cmd_timeout;      /* s before a command is aborted; 0: default */
	unsigned int nop_interval;     /* s between NOP-Out pings; 0: default */
	unsigned int login_timeout;    /* s for one connect + login; 0: 15 */
	bool iser;		       /* iSER (RFC 7145) instead of iSCSI/TCP */
	const char *fabric;	       /* iSER: "auto" (NULL), "verbs" or "soft" */
	int arm_delay;		       /* iSER: empty CQ polls before re-arming; < 0: default */
	bool mpa_crc;		       /* iSER on soft: ask for MPA CRC32C (RFC 5044 §7.1) */
};

/* CHAP algorithms to offer. tgt 1.0.85 picks SHA-256 when offered and
 * then cannot check a 32-byte answer ("initiator error"): MD5 for it. */
#define INI_CHAP_MD5 0x1u
#define INI_CHAP_SHA256 0x2u

enum ini_dir {
	INI_DIR_NONE,
	INI_DIR_READ,  /* data from the target into buf */
	INI_DIR_WRITE, /* data from buf to the target */
};

/* One SCSI command; embedded in the caller's request. */
struct ini_cmd {
	/* set by the caller */
	uint64_t lun; /* LUN number (0..16383, flat space addressing) */
	uint8_t cdb[16];
	uint8_t cdb_len; /* 6, 10, 12 or 16 */
	enum ini_dir dir;
	void *buf;    /* data buffer; owned by the caller */
	uint32_t len; /* bytes to transfer (Expected Data Transfer Length) */
	void (*done)(struct ini_cmd *cmd);
	void *priv;	  /* for the caller */
	struct rbuf *reg; /* optional: an ini_buf_get() buffer holding buf */

	/* results, valid in done() */
	int err;	/* 0, or -errno mapped from status and sense, or -EIO
			 * when the session failed for good */
	uint8_t status; /* SCSI status */
	uint8_t sense_len;
	uint8_t sense[INI_SENSE_MAX];
	uint32_t residual; /* bytes not transferred (underflow) */

	/* private to the library */
	struct ini_cmd *next, *prev;
	uint32_t itt;
	uint32_t cmd_sn;
	uint32_t xfer; /* data bytes moved so far */
	uint32_t exp_data_sn;
	uint64_t start_ns; /* submitted */
	uint64_t sent_ns;  /* last sent to the target */
	uint8_t state;
	uint8_t retries;
	struct rbuf *xbuf; /* iSER: the registered buffer the target reads or writes */
};

/* Counters of a session, for statistics files. */
struct ini_stats {
	uint64_t cmds;	      /* commands completed */
	uint64_t errors;      /* commands completed with err != 0 */
	uint64_t read_bytes;  /* data moved from the target */
	uint64_t write_bytes; /* data moved to the target */
	uint64_t lat_ns_sum;  /* sum of submit-to-done latency */
	uint64_t lat_ns_max;
	uint64_t reconnects; /* successful logins after a lost connection */
	uint64_t reissued;   /* commands sent again after a reconnect */
	uint64_t timeouts;   /* commands that hit cmd_timeout */
	uint64_t aborts;     /* ABORT TASK sent (after a timeout) */
	uint64_t lun_resets; /* LOGICAL UNIT RESET sent (an abort unanswered) */
	uint64_t tmf_rsps;   /* answers to either */
	uint64_t pings;	     /* NOP-Out keepalive pings sent */
	uint64_t ping_fails; /* pings unanswered: the connection dropped */
	uint64_t rx_pdus, tx_pdus;
	uint64_t bounced;      /* iSER: commands whose data was copied through
				* a registered buffer of ours (cmd->reg unset) */
	unsigned int inflight; /* submitted, not yet done */
	unsigned int sent_max; /* most commands at the target at once */
	bool connected;
	/* the socket's poller (see common/poller.h) */
	uint64_t notifications, polls, completions;
};

/*
 * Create a session (not connected) on @s with a copy of @o. Returns 0 and
 * sets *ret, -EINVAL (no host; a secret without a user...), -ENOMEM.
 */
int ini_session_create(struct sched *s, const struct ini_opts *o, struct ini_session **ret);

/* Close the connection at once (no logout) and fail every command with
 * -ECANCELED (their done() runs before this returns). NULL is allowed. */
void ini_session_destroy(struct ini_session *sess);

/*
 * Connect and log in; @cb(sess, err, arg) runs once, from the scheduler:
 * err 0 (full feature phase), or -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT
 * (no answer within login_timeout), -ENOENT (no such target), -EACCES
 * (authentication failed or not authorised), -EPROTO (the target broke the
 * protocol) and other -errno; ini_session_error() says which in words.
 * Errors here are final: no reconnect before the first login.
 */
int ini_session_login(struct ini_session *sess, void (*cb)(struct ini_session *, int, void *),
		      void *arg);

/*
 * Queue @cmd. It is sent when the CmdSN window and the queue depth allow;
 * while the session is recovering it waits (up to recovery_timeout).
 * cmd->done runs exactly once.
 */
void ini_submit(struct ini_session *sess, struct ini_cmd *cmd);

/*
 * Log out (waiting for the commands in flight first) and close;
 * @cb(sess, err, arg) runs once when the connection is closed.
 */
int ini_session_logout(struct ini_session *sess, void (*cb)(struct ini_session *, int, void *),
		       void *arg);

/* The text of the last error ("login rejected: authentication failed"). */
const char *ini_session_error(const struct ini_session *sess);

void ini_session_stats(const struct ini_session *sess, struct ini_stats *st);

/* What the target negotiated: the largest SCSI transfer worth asking
 * (MaxBurstLength-aware hint; 0 before login). */
uint32_t ini_session_max_burst(const struct ini_session *sess);

/*
 * A data buffer of at least @len bytes for commands of @sess, or NULL
 * (not over iSER, or no memory: use any memory then). Over iSER it is
 * registered once; a command whose buf lies inside it, with it as
 * cmd->reg, has its data moved by the target straight into or out of it.
 */
struct rbuf *ini_buf_get(struct ini_session *sess, size_t len);

/* Give back a buffer of ini_buf_get() or ini_buf_wrap() (NULL allowed). */
void ini_buf_put(struct rbuf *b);

/*
 * Over iSER, register the caller's @len bytes at @addr for commands of
 * @sess, like an ini_buf_get() buffer; NULL when not over iSER or when
 * the registration fails (use the memory unregistered then). The memory
 * stays the caller's; ini_buf_put() lets the registration go, and must
 * come before the memory is freed, or after ini_session_destroy().
 */
struct rbuf *ini_buf_wrap(struct ini_session *sess, void *addr, size_t len);

/* The transport in use: "tcp", or over iSER the RDMA provider ("verbs",
 * "soft"); for logs, e.g. of -o fabric=auto. */
const char *ini_session_transport(const struct ini_session *sess);

/* One target from a SendTargets answer. */
struct ini_target {
	char name[224];
	char addr[8][64]; /* TargetAddress values, "host:port,tpgt" */
	unsigned int naddr;
};

/*
 * Discovery: on a session created with o->target NULL and logged in, send
 * SendTargets=All; @cb(sess, err, targets, n, arg) runs once. The array is
 * valid during the callback only.
 */
int ini_discover(struct ini_session *sess,
		 void (*cb)(struct ini_session *, int, const struct ini_target *, size_t, void *),
		 void *arg);

/*
 * Helpers for start-up code that wants to wait: run @s until *done is
 * true or @timeout_ms passes. Returns 0 or -ETIMEDOUT.
 */
int ini_wait(struct sched *s, const bool *done, unsigned int timeout_ms);

/* Log in and wait; returns as ini_session_login's callback would. */
int ini_login_sync(struct ini_session *sess);

/* Submit @cmd and wait for it (bounded by cmd_timeout plus recovery);
 * returns cmd->err. */
int ini_cmd_sync(struct ini_session *sess, struct ini_cmd *cmd);

#endif
