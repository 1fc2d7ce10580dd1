/*
 * text: iSCSI text parameters (RFC 7143 §6, §12, §13; RFC 7144 §7.1.1;
 * RFC 7145 §6).
 *
 * Two layers:
 *
 * 1. Syntax. The data segment of a Login or Text PDU (or several of them
 *    joined into one logical-text-data-segment) is a sequence of
 *    "key=value\0" strings. text_parse() checks it and fills a bounded
 *    list of pairs that point into the caller's buffer (nothing is
 *    copied or allocated); text_next() walks the same syntax one pair at
 *    a time, for lists longer than TEXT_MAX_PAIRS (SendTargets
 *    responses). struct text_buf + text_append() build a data segment.
 *
 * 2. Negotiation. A table of every key (text_key_find()) holds the RFC's
 *    rule for it. struct text_neg holds one side of one connection's
 *    negotiation: what we want (local), what was agreed (result) and
 *    which keys were offered, declared and answered. text_offer() writes
 *    our offers and declarations, text_resolve() checks the peer's
 *    answers to them, text_respond() answers the peer's offers and
 *    records its declarations.
 *
 * Nothing here allocates, prints or blocks; every function may be called
 * from any thread, on objects the caller owns.
 */
#ifndef ISERKIT_TEXT_H
#define ISERKIT_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TEXT_KEY_MAX 63		  /* key-name bytes, RFC 7143 §6.1 */
#define TEXT_VALUE_MAX 255	  /* simple-value bytes, RFC 7143 §6.1 */
#define TEXT_NAME_MAX 223	  /* iSCSI name bytes, RFC 7143 §4.2.7.1 */
#define TEXT_BINARY_MAX 1024	  /* CHAP_C/CHAP_R binary bytes, RFC 7143 §12.1.3 */
#define TEXT_LARGE_VALUE_MAX 8192 /* unknown keys, lists: RFC 7143 §6.1 */
#define TEXT_MAX_PAIRS 64	  /* pairs in a struct text_list */

/* One key=value pair inside a parsed buffer. The key is not
 * NUL-terminated (an '=' follows it); the value is. */
struct text_pair {
	const char *key;
	const char *value;
	uint16_t key_len;
	uint16_t value_len;
};

struct text_list {
	unsigned int count;
	struct text_pair pairs[TEXT_MAX_PAIRS];
};

/* text_parse() flags */
#define TEXT_PARSE_SENDTARGETS 0x1 /* allow repeated TargetName/TargetAddress (RFC 7143 App. C) */

/*
 * Parse @len bytes at @data into @list. The pairs point into @data, which
 * must outlive @list. Zero bytes after the last pair's NUL are padding and
 * are ignored. Returns 0 or:
 *   -EILSEQ       a pair not ended by NUL, a stray NUL between pairs, a
 *                 key with a character outside the RFC 7143 §6.1 set or
 *                 not starting with a letter, or a control character in
 *                 a value
 *   -EINVAL       a pair without '='
 *   -EBADMSG      an empty key ("=value")
 *   -ENAMETOOLONG a key longer than TEXT_KEY_MAX
 *   -ENOMSG       an empty value; legal only for SendTargets (RFC 7143
 *                 App. C, "<nothing>")
 *   -E2BIG        a value longer than its key allows: text_key.max_len for
 *                 known keys (255 for simple values, 223 for iSCSI names,
 *                 2050 for CHAP_C/CHAP_R, 255 per element of a list),
 *                 TEXT_LARGE_VALUE_MAX for keys we do not know
 *   -EEXIST       a key twice (RFC 7143 §6.2, §6.3)
 *   -ENOBUFS      more than TEXT_MAX_PAIRS pairs
 * On error @list is unspecified.
 */
int text_parse(const void *data, size_t len, unsigned int flags, struct text_list *list);

/*
 * Parse the pair at *@pos in @data (@len bytes), advance *@pos past it.
 * Returns 0, -ENODATA when only padding (or nothing) is left, or the
 * errors of text_parse() except -EEXIST and -ENOBUFS.
 */
int text_next(const void *data, size_t len, size_t *pos, struct text_pair *pair);

/* The first pair named @key, or NULL. */
const struct text_pair *text_list_find(const struct text_list *list, const char *key);

/* A data segment under construction in caller-owned memory. */
struct text_buf {
	char *data;
	size_t size;
	size_t len;
};

void text_buf_init(struct text_buf *b, void *mem, size_t size);

/*
 * Append "key=value\0". The pair must pass text_parse()'s checks (same
 * errnos); -ENOSPC if it does not fit, and then @b is unchanged.
 */
int text_append(struct text_buf *b, const char *key, const char *value);

/* Append every pair of @list; on error @b is unchanged. */
int text_build(struct text_buf *b, const struct text_list *list);

/*
 * Values (RFC 7143 §6.1).
 * text_parse_number(): a numerical-value, i.e. a decimal-constant (no
 * leading zeros, no sign, no spaces) or a hex-constant ("0x"/"0X").
 * Base64 is not a numerical-value. Returns 0, -EINVAL (syntax) or -ERANGE
 * (2**64 or more).
 */
int text_parse_number(const char *s, size_t len, uint64_t *out);

/*
 * text_decode_binary(): a hex-constant or base64-constant (RFC 4648, "0b"
 * or "0B") into @out. Returns 0 with *@out_len set, -EINVAL (syntax) or
 * -E2BIG (more than @size bytes).
 */
int text_decode_binary(const char *s, size_t len, uint8_t *out, size_t size, size_t *out_len);

enum text_type {
	TEXT_T_AND,	  /* boolean, result function AND */
	TEXT_T_OR,	  /* boolean, result function OR */
	TEXT_T_MIN,	  /* number, result function Minimum */
	TEXT_T_MAX,	  /* number, result function Maximum */
	TEXT_T_LIST,	  /* list-of-values, responder picks first it supports */
	TEXT_T_DECL_NUM,  /* declarative number */
	TEXT_T_DECL_BOOL, /* declarative boolean */
	TEXT_T_DECL_ENUM, /* declarative, one of text_key.values */
	TEXT_T_DECL_STR,  /* declarative string (names, aliases, addresses) */
	TEXT_T_PASS,	  /* left to the caller: CHAP_*, SendTargets */
	TEXT_T_OBSOLETE,  /* RFC 3720 markers, answered Reject (RFC 7143 §13.25) */
};

#define TEXT_SENDER_I 0x1
#define TEXT_SENDER_T 0x2

enum text_scope {
	TEXT_SCOPE_SW, /* session-wide */
	TEXT_SCOPE_CO, /* connection-only */
};

/* text_key.flags: where a key may be used, when it is irrelevant. */
#define TEXT_F_LO 0x0001	     /* leading connection only */
#define TEXT_F_LOGIN 0x0002	     /* login only (IO or LO) */
#define TEXT_F_FFPO 0x0004	     /* full feature phase only */
#define TEXT_F_SECURITY 0x0008	     /* security stage only (RFC 7143 §12) */
#define TEXT_F_ANY_STAGE 0x0010	     /* also allowed in the security stage */
#define TEXT_F_LATER 0x0020	     /* not RFC 7143: NotUnderstood is a valid answer */
#define TEXT_F_IRR_DISCOVERY 0x0040  /* irrelevant when SessionType=Discovery */
#define TEXT_F_IRR_RDMA_YES 0x0080   /* irrelevant when RDMAExtensions=Yes */
#define TEXT_F_IRR_RDMA_NO 0x0100    /* irrelevant when RDMAExtensions=No */
#define TEXT_F_IRR_R2T_NO_IMM 0x0200 /* irrelevant when InitialR2T=Yes, ImmediateData=No */
#define TEXT_F_EMPTY_OK 0x0400	     /* an empty value is legal */
#define TEXT_F_ZERO_OK 0x0800	     /* 0 is legal besides min..max */
#define TEXT_F_BINARY 0x1000	     /* binary-value: decimal, hex or base64 */
#define TEXT_F_T_FFPO 0x2000	     /* the target may send it only in FFP */
#define TEXT_F_REPEAT 0x4000	     /* may repeat in a SendTargets response */

/* One key's rule, from the table behind text_key_find(). */
struct text_key {
	const char *name;
	enum text_type type;
	uint8_t senders; /* TEXT_SENDER_* */
	uint8_t scope;	 /* enum text_scope */
	uint8_t rank;	 /* text_respond() order: keys others depend on first */
	uint32_t flags;	 /* TEXT_F_* */
	uint64_t min, max;
	uint64_t def;		   /* RFC default: number, 0/1, or mask of values */
	const char *const *values; /* list/enum keys: value i is bit (1 << i) */
	uint16_t max_len;	   /* longest value, bytes */
	uint16_t off, size;	   /* field in struct text_params; size 0: not kept */
};

/* The key named by @len bytes at @name, or NULL if we do not know it. */
const struct text_key *text_key_find(const char *name, size_t len);

/*
 * Check @s against @k's syntax and range. Returns 0, -EINVAL (not a
 * number, not Yes/No, not one of the values) or -ERANGE (a number
 * outside the key's range, e.g. MaxBurstLength=511).
 */
int text_check_value(const struct text_key *k, const char *s, size_t len);

/* Value masks of list and enum keys; one bit is set in a result. */
#define TEXT_DIGEST_CRC32C 0x1
#define TEXT_DIGEST_NONE 0x2
#define TEXT_AUTH_CHAP 0x1
#define TEXT_AUTH_NONE 0x2
#define TEXT_TASKREP_FASTABORT 0x1
#define TEXT_TASKREP_RESPONSEFENCE 0x2
#define TEXT_TASKREP_RFC3720 0x4
#define TEXT_SESSION_NORMAL 0x1
#define TEXT_SESSION_DISCOVERY 0x2

/*
 * Parameters of one connection and its session. In text_neg.local they
 * are what we offer, support or declare; in text_neg.result, what was
 * agreed for negotiated keys and what the peer declared for declarative
 * ones (so result.max_recv_dsl is the peer's MaxRecvDataSegmentLength:
 * the most we may send it). List keys hold masks: in local, every value
 * we support (offered in the bit order above: CRC32C before None, CHAP
 * before None); in result, the one chosen.
 */
struct text_params {
	uint32_t header_digest;		     /* RFC 7143 §13.1 */
	uint32_t data_digest;		     /* RFC 7143 §13.1 */
	uint32_t max_recv_dsl;		     /* RFC 7143 §13.12 */
	uint32_t auth_method;		     /* RFC 7143 §12.1 */
	uint32_t target_recv_dsl;	     /* RFC 7145 §6.4 */
	uint32_t initiator_recv_dsl;	     /* RFC 7145 §6.5 */
	uint32_t max_connections;	     /* RFC 7143 §13.2 */
	uint32_t max_burst_length;	     /* RFC 7143 §13.13 */
	uint32_t first_burst_length;	     /* RFC 7143 §13.14 */
	uint32_t default_time2wait;	     /* RFC 7143 §13.15 */
	uint32_t default_time2retain;	     /* RFC 7143 §13.16 */
	uint32_t max_outstanding_r2t;	     /* RFC 7143 §13.17 */
	uint32_t error_recovery_level;	     /* RFC 7143 §13.20 */
	uint32_t session_type;		     /* RFC 7143 §13.21 */
	uint32_t task_reporting;	     /* RFC 7143 §13.23 */
	uint32_t protocol_level;	     /* RFC 7144 §7.1.1 */
	uint32_t target_portal_group_tag;    /* RFC 7143 §13.9 */
	uint32_t max_outstanding_unexp_pdus; /* RFC 7145 §6.7, 0: no limit */
	uint32_t max_ahs_length;	     /* RFC 7145 §6.8, 0: no limit */
	bool initial_r2t;		     /* RFC 7143 §13.10 */
	bool immediate_data;		     /* RFC 7143 §13.11 */
	bool data_pdu_in_order;		     /* RFC 7143 §13.18 */
	bool data_sequence_in_order;	     /* RFC 7143 §13.19 */
	bool rdma_extensions;		     /* RFC 7145 §6.3 */
	bool tagged_buffer_solicited_only;   /* RFC 7145 §6.9 */
	bool iser_hello_required;	     /* RFC 7145 §6.10 */
	char target_name[TEXT_NAME_MAX + 1];
	char initiator_name[TEXT_NAME_MAX + 1];
	char target_alias[TEXT_VALUE_MAX + 1];
	char initiator_alias[TEXT_VALUE_MAX + 1];
};

/* Set every field to its RFC default (names and aliases empty). */
void text_params_init(struct text_params *p);

enum text_role {
	TEXT_ROLE_INITIATOR,
	TEXT_ROLE_TARGET,
};

enum text_stage {
	TEXT_STAGE_SECURITY,	/* CSG 0 */
	TEXT_STAGE_OPERATIONAL, /* CSG 1 */
	TEXT_STAGE_FFP,		/* Text Request/Response */
};

/* One side of one connection's negotiation, embedded in its owner. */
struct text_neg {
	enum text_role role;
	enum text_stage stage;
	bool leading;		  /* first connection of the session (TSIH 0) */
	struct text_params local; /* set by the owner after text_neg_init() */
	struct text_params result;
	uint64_t sent;	   /* keys we offered or declared, by table index */
	uint64_t pending;  /* offered by us, no answer yet */
	uint64_t recvd;	   /* offered or declared by the peer */
	uint64_t rejected; /* our offers answered Reject: value left as it was */
	uint64_t answered; /* answers taken by text_resolve(), for text_respond() */
};

/* RFC defaults in local and result, stage SECURITY, nothing exchanged. */
void text_neg_init(struct text_neg *n, enum text_role role, bool leading);

/*
 * Enter @stage. A login is one negotiation sequence (a key may not be
 * renegotiated in it, RFC 7143 §6.3); entering TEXT_STAGE_FFP, and every
 * later call with it, starts a new one (each Text sequence, §6.4).
 */
void text_neg_stage(struct text_neg *n, enum text_stage stage);

/* Do offers of ours still wait for an answer? */
bool text_neg_pending(const struct text_neg *n);

/* Did the peer offer or declare @key in this negotiation? */
bool text_neg_recvd(const struct text_neg *n, const char *key);

/*
 * Append our offers and declarations for the current stage to @out: every
 * key we may send here that neither side has settled yet, from
 * n->local. Keys other RFCs added (iSCSIProtocolLevel, TaskReporting)
 * are offered only when local differs from the default; iSER keys only
 * while RDMAExtensions=Yes may still be agreed; nothing the RFC makes
 * irrelevant. Returns 0, -ENOSPC, or -E2BIG for an unterminated name in
 * n->local; on error @out and @n are unchanged.
 */
int text_offer(struct text_neg *n, struct text_buf *out);

/*
 * Check the peer's answers in @in to our pending offers and take them
 * into n->result; pairs that are not such answers are left for
 * text_respond(). Reject keeps the current value (and sets the key in
 * n->rejected), Irrelevant keeps it. Returns 0 or -EPROTO: an answer not
 * admissible under the key's result function (a Minimum answer above our
 * offer, a list value we did not offer, a boolean AND answered Yes to
 * No...), a number out of range, or NotUnderstood for an RFC 7143 key.
 * Call before text_respond() on the same list. On error @n is unchanged.
 */
int text_resolve(struct text_neg *n, const struct text_list *in);

/*
 * Answer the peer's offers in @in and record its declarations, appending
 * the answers to @out (RFC 7143 §6.2): the key's result function for
 * negotiated keys, Reject for inadmissible values and obsolete keys,
 * Irrelevant where the RFC makes the key irrelevant, NotUnderstood for
 * unknown keys; declarations get no answer. A Boolean the offer decides
 * (AND offered No, OR offered Yes) is still answered, with that result
 * (§6.2.2 makes the answer optional). With RDMAExtensions=Yes a digest
 * offer holding None is answered None, and MaxRecvDataSegmentLength is
 * ignored (RFC 7145 §6.1, §6.2). CHAP_* and SendTargets are left to the
 * caller. Keys others depend on (SessionType, RDMAExtensions,
 * InitialR2T, ImmediateData, MaxBurstLength, ...) are handled first, so
 * FirstBurstLength is clamped to MaxBurstLength and MaxOutstandingR2T to
 * 1 when ErrorRecoveryLevel > 0 with DataSequenceInOrder=Yes. Returns 0,
 * -ENOSPC, or -EPROTO for a protocol error: a key the peer may not send,
 * or not in this stage, or leading-only on another connection, a key
 * negotiated or declared twice, Reject/Irrelevant/NotUnderstood offered
 * as a value, NotUnderstood for an RFC 7143 key we declared, a
 * declaration out of range. On error @n and @out are unchanged.
 */
int text_respond(struct text_neg *n, const struct text_list *in, struct text_buf *out);

/*
 * Integrity rules over n->result (RFC 7143 §6.2: checked once all values
 * are known): FirstBurstLength <= MaxBurstLength, MaxOutstandingR2T = 1
 * when ErrorRecoveryLevel > 0 and DataSequenceInOrder=Yes, and
 * ErrorRecoveryLevel 0 in a Discovery session. Returns 0 or -EPROTO.
 */
int text_neg_check(const struct text_neg *n);

/*
 * Data segment limits for the full feature phase: with RDMAExtensions=Yes
 * they come from Initiator/TargetRecvDataSegmentLength, else from the
 * MaxRecvDataSegmentLength each side declared (RFC 7145 §6.2).
 */
uint32_t text_max_send_dsl(const struct text_neg *n);
uint32_t text_max_recv_dsl(const struct text_neg *n);

#endif
