/*
 * text: iSCSI text parameters. See text.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* Table indices, for the keys the rules single out. */
enum {
	K_INITIATOR_NAME,
	K_INITIATOR_ALIAS,
	K_TARGET_NAME,
	K_SESSION_TYPE,
	K_RDMA_EXTENSIONS,
	K_INITIAL_R2T,
	K_IMMEDIATE_DATA,
	K_MAX_BURST_LENGTH,
	K_ERROR_RECOVERY_LEVEL,
	K_DATA_SEQUENCE_IN_ORDER,
	K_HEADER_DIGEST,
	K_DATA_DIGEST,
	K_MAX_CONNECTIONS,
	K_SEND_TARGETS,
	K_TARGET_ALIAS,
	K_TARGET_ADDRESS,
	K_TPGT,
	K_MAX_RECV_DSL,
	K_FIRST_BURST_LENGTH,
	K_DEFAULT_TIME2WAIT,
	K_DEFAULT_TIME2RETAIN,
	K_MAX_OUTSTANDING_R2T,
	K_DATA_PDU_IN_ORDER,
	K_TASK_REPORTING,
	K_PROTOCOL_LEVEL,
	K_NODE_ARCHITECTURE,
	K_AUTH_METHOD,
	K_CHAP_A,
	K_CHAP_I,
	K_CHAP_C,
	K_CHAP_N,
	K_CHAP_R,
	K_IFMARKER,
	K_OFMARKER,
	K_IFMARKINT,
	K_OFMARKINT,
	K_TARGET_RECV_DSL,
	K_INITIATOR_RECV_DSL,
	K_MAX_UNEXP_PDUS,
	K_MAX_AHS_LENGTH,
	K_TAGGED_BUFFER,
	K_ISER_HELLO,
	K_COUNT
};

_Static_assert(K_COUNT <= 64, "key bitmasks are 64 bits");

static const char *const digest_values[] = {"CRC32C", "None", NULL};
static const char *const auth_values[] = {"CHAP", "None", NULL};
static const char *const taskrep_values[] = {"FastAbort", "ResponseFence", "RFC3720", NULL};
static const char *const session_values[] = {"Normal", "Discovery", NULL};

#define S_I TEXT_SENDER_I
#define S_T TEXT_SENDER_T
#define S_IT (TEXT_SENDER_I | TEXT_SENDER_T)
#define SW TEXT_SCOPE_SW
#define CO TEXT_SCOPE_CO
#define LEN24 ((1u << 24) - 1)
#define FIELD(f) \
	.off = offsetof(struct text_params, f), .size = sizeof(((struct text_params *)0)->f)

/*
 * The rules of RFC 7143 §12-§13, RFC 7144 §7.1.1 and RFC 7145 §6. Columns:
 * name, type, senders, scope, rank, flags, min, max, default, values,
 * max_len, field.
 */
static const struct text_key keys[K_COUNT] = {
	[K_SESSION_TYPE] = {"SessionType", TEXT_T_DECL_ENUM, S_I, SW, 0,
			    TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_ANY_STAGE, 0, 0, TEXT_SESSION_NORMAL,
			    session_values, TEXT_VALUE_MAX, FIELD(session_type)},
	[K_RDMA_EXTENSIONS] = {"RDMAExtensions", TEXT_T_AND, S_IT, SW, 1,
			       TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_LATER | TEXT_F_IRR_DISCOVERY, 0, 1,
			       0, NULL, TEXT_VALUE_MAX, FIELD(rdma_extensions)},
	[K_INITIAL_R2T] = {"InitialR2T", TEXT_T_OR, S_IT, SW, 1,
			   TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_IRR_DISCOVERY, 0, 1, 1, NULL,
			   TEXT_VALUE_MAX, FIELD(initial_r2t)},
	[K_IMMEDIATE_DATA] = {"ImmediateData", TEXT_T_AND, S_IT, SW, 1,
			      TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_IRR_DISCOVERY, 0, 1, 1, NULL,
			      TEXT_VALUE_MAX, FIELD(immediate_data)},
	[K_MAX_BURST_LENGTH] = {"MaxBurstLength", TEXT_T_MIN, S_IT, SW, 1,
				TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_IRR_DISCOVERY, 512, LEN24, 262144,
				NULL, TEXT_VALUE_MAX, FIELD(max_burst_length)},
	[K_ERROR_RECOVERY_LEVEL] = {"ErrorRecoveryLevel", TEXT_T_MIN, S_IT, SW, 1,
				    TEXT_F_LO | TEXT_F_LOGIN, 0, 2, 0, NULL, TEXT_VALUE_MAX,
				    FIELD(error_recovery_level)},
	[K_DATA_SEQUENCE_IN_ORDER] = {"DataSequenceInOrder", TEXT_T_OR, S_IT, SW, 1,
				      TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_IRR_DISCOVERY, 0, 1, 1,
				      NULL, TEXT_VALUE_MAX, FIELD(data_sequence_in_order)},
	[K_HEADER_DIGEST] = {"HeaderDigest", TEXT_T_LIST, S_IT, CO, 2,
			     TEXT_F_LOGIN | TEXT_F_IRR_RDMA_YES, 0, 0, TEXT_DIGEST_NONE,
			     digest_values, TEXT_LARGE_VALUE_MAX, FIELD(header_digest)},
	[K_DATA_DIGEST] = {"DataDigest", TEXT_T_LIST, S_IT, CO, 2,
			   TEXT_F_LOGIN | TEXT_F_IRR_RDMA_YES, 0, 0, TEXT_DIGEST_NONE,
			   digest_values, TEXT_LARGE_VALUE_MAX, FIELD(data_digest)},
	[K_MAX_CONNECTIONS] = {"MaxConnections", TEXT_T_MIN, S_IT, SW, 2,
			       TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_IRR_DISCOVERY, 1, 65535, 1, NULL,
			       TEXT_VALUE_MAX, FIELD(max_connections)},
	[K_SEND_TARGETS] = {"SendTargets", TEXT_T_PASS, S_I, SW, 2, TEXT_F_FFPO | TEXT_F_EMPTY_OK,
			    0, 0, 0, NULL, TEXT_VALUE_MAX, 0, 0},
	[K_TARGET_NAME] = {"TargetName", TEXT_T_DECL_STR, S_IT, SW, 2,
			   TEXT_F_LOGIN | TEXT_F_ANY_STAGE | TEXT_F_T_FFPO | TEXT_F_REPEAT, 0, 0, 0,
			   NULL, TEXT_NAME_MAX, FIELD(target_name)},
	[K_INITIATOR_NAME] = {"InitiatorName", TEXT_T_DECL_STR, S_I, SW, 2,
			      TEXT_F_LOGIN | TEXT_F_ANY_STAGE, 0, 0, 0, NULL, TEXT_NAME_MAX,
			      FIELD(initiator_name)},
	[K_TARGET_ALIAS] = {"TargetAlias", TEXT_T_DECL_STR, S_T, SW, 2, TEXT_F_ANY_STAGE, 0, 0, 0,
			    NULL, TEXT_VALUE_MAX, FIELD(target_alias)},
	[K_INITIATOR_ALIAS] = {"InitiatorAlias", TEXT_T_DECL_STR, S_I, SW, 2, TEXT_F_ANY_STAGE, 0,
			       0, 0, NULL, TEXT_VALUE_MAX, FIELD(initiator_alias)},
	[K_TARGET_ADDRESS] = {"TargetAddress", TEXT_T_DECL_STR, S_T, SW, 2,
			      TEXT_F_ANY_STAGE | TEXT_F_REPEAT, 0, 0, 0, NULL, TEXT_VALUE_MAX, 0,
			      0},
	[K_TPGT] = {"TargetPortalGroupTag", TEXT_T_DECL_NUM, S_T, SW, 2,
		    TEXT_F_LOGIN | TEXT_F_ANY_STAGE | TEXT_F_BINARY, 0, 65535, 0, NULL,
		    TEXT_VALUE_MAX, FIELD(target_portal_group_tag)},
	[K_MAX_RECV_DSL] = {"MaxRecvDataSegmentLength", TEXT_T_DECL_NUM, S_IT, CO, 2,
			    TEXT_F_IRR_RDMA_YES, 512, LEN24, 8192, NULL, TEXT_VALUE_MAX,
			    FIELD(max_recv_dsl)},
	[K_FIRST_BURST_LENGTH] = {"FirstBurstLength", TEXT_T_MIN, S_IT, SW, 2,
				  TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_IRR_DISCOVERY |
					  TEXT_F_IRR_R2T_NO_IMM,
				  512, LEN24, 65536, NULL, TEXT_VALUE_MAX,
				  FIELD(first_burst_length)},
	[K_DEFAULT_TIME2WAIT] = {"DefaultTime2Wait", TEXT_T_MAX, S_IT, SW, 2,
				 TEXT_F_LO | TEXT_F_LOGIN, 0, 3600, 2, NULL, TEXT_VALUE_MAX,
				 FIELD(default_time2wait)},
	[K_DEFAULT_TIME2RETAIN] = {"DefaultTime2Retain", TEXT_T_MIN, S_IT, SW, 2,
				   TEXT_F_LO | TEXT_F_LOGIN, 0, 3600, 20, NULL, TEXT_VALUE_MAX,
				   FIELD(default_time2retain)},
	[K_MAX_OUTSTANDING_R2T] = {"MaxOutstandingR2T", TEXT_T_MIN, S_IT, SW, 2,
				   TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_IRR_DISCOVERY, 1, 65535, 1,
				   NULL, TEXT_VALUE_MAX, FIELD(max_outstanding_r2t)},
	[K_DATA_PDU_IN_ORDER] = {"DataPDUInOrder", TEXT_T_OR, S_IT, SW, 2,
				 TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_IRR_DISCOVERY, 0, 1, 1, NULL,
				 TEXT_VALUE_MAX, FIELD(data_pdu_in_order)},
	[K_TASK_REPORTING] = {"TaskReporting", TEXT_T_LIST, S_IT, SW, 2,
			      TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_IRR_DISCOVERY, 0, 0,
			      TEXT_TASKREP_RFC3720, taskrep_values, TEXT_LARGE_VALUE_MAX,
			      FIELD(task_reporting)},
	[K_PROTOCOL_LEVEL] = {"iSCSIProtocolLevel", TEXT_T_MIN, S_IT, SW, 2,
			      TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_LATER | TEXT_F_IRR_DISCOVERY, 0, 31,
			      1, NULL, TEXT_VALUE_MAX, FIELD(protocol_level)},
	[K_NODE_ARCHITECTURE] = {"X#NodeArchitecture", TEXT_T_DECL_STR, S_IT, SW, 2,
				 TEXT_F_LO | TEXT_F_LOGIN, 0, 0, 0, NULL, TEXT_VALUE_MAX, 0, 0},
	[K_AUTH_METHOD] = {"AuthMethod", TEXT_T_LIST, S_IT, CO, 2, TEXT_F_LOGIN | TEXT_F_SECURITY,
			   0, 0, TEXT_AUTH_NONE, auth_values, TEXT_LARGE_VALUE_MAX,
			   FIELD(auth_method)},
	[K_CHAP_A] = {"CHAP_A", TEXT_T_PASS, S_IT, CO, 2, TEXT_F_LOGIN | TEXT_F_SECURITY, 0, 0, 0,
		      NULL, TEXT_VALUE_MAX, 0, 0},
	[K_CHAP_I] = {"CHAP_I", TEXT_T_PASS, S_IT, CO, 2, TEXT_F_LOGIN | TEXT_F_SECURITY, 0, 0, 0,
		      NULL, TEXT_VALUE_MAX, 0, 0},
	[K_CHAP_C] = {"CHAP_C", TEXT_T_PASS, S_IT, CO, 2, TEXT_F_LOGIN | TEXT_F_SECURITY, 0, 0, 0,
		      NULL, 2 + 2 * TEXT_BINARY_MAX, 0, 0},
	[K_CHAP_N] = {"CHAP_N", TEXT_T_PASS, S_IT, CO, 2, TEXT_F_LOGIN | TEXT_F_SECURITY, 0, 0, 0,
		      NULL, TEXT_VALUE_MAX, 0, 0},
	[K_CHAP_R] = {"CHAP_R", TEXT_T_PASS, S_IT, CO, 2, TEXT_F_LOGIN | TEXT_F_SECURITY, 0, 0, 0,
		      NULL, 2 + 2 * TEXT_BINARY_MAX, 0, 0},
	[K_IFMARKER] = {"IFMarker", TEXT_T_OBSOLETE, S_IT, CO, 2, TEXT_F_LOGIN, 0, 0, 0, NULL,
			TEXT_VALUE_MAX, 0, 0},
	[K_OFMARKER] = {"OFMarker", TEXT_T_OBSOLETE, S_IT, CO, 2, TEXT_F_LOGIN, 0, 0, 0, NULL,
			TEXT_VALUE_MAX, 0, 0},
	[K_IFMARKINT] = {"IFMarkInt", TEXT_T_OBSOLETE, S_IT, CO, 2, TEXT_F_LOGIN, 0, 0, 0, NULL,
			 TEXT_VALUE_MAX, 0, 0},
	[K_OFMARKINT] = {"OFMarkInt", TEXT_T_OBSOLETE, S_IT, CO, 2, TEXT_F_LOGIN, 0, 0, 0, NULL,
			 TEXT_VALUE_MAX, 0, 0},
	[K_TARGET_RECV_DSL] = {"TargetRecvDataSegmentLength", TEXT_T_MIN, S_IT, CO, 2,
			       TEXT_F_LOGIN | TEXT_F_LATER | TEXT_F_IRR_RDMA_NO, 512, LEN24, 8192,
			       NULL, TEXT_VALUE_MAX, FIELD(target_recv_dsl)},
	[K_INITIATOR_RECV_DSL] = {"InitiatorRecvDataSegmentLength", TEXT_T_MIN, S_IT, CO, 2,
				  TEXT_F_LOGIN | TEXT_F_LATER | TEXT_F_IRR_RDMA_NO, 512, LEN24,
				  8192, NULL, TEXT_VALUE_MAX, FIELD(initiator_recv_dsl)},
	[K_MAX_UNEXP_PDUS] = {"MaxOutstandingUnexpectedPDUs", TEXT_T_DECL_NUM, S_IT, SW, 2,
			      TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_LATER | TEXT_F_IRR_RDMA_NO |
				      TEXT_F_ZERO_OK,
			      2, UINT32_MAX, 0, NULL, TEXT_VALUE_MAX,
			      FIELD(max_outstanding_unexp_pdus)},
	[K_MAX_AHS_LENGTH] = {"MaxAHSLength", TEXT_T_DECL_NUM, S_IT, SW, 2,
			      TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_LATER | TEXT_F_IRR_RDMA_NO |
				      TEXT_F_ZERO_OK,
			      2, UINT32_MAX, 256, NULL, TEXT_VALUE_MAX, FIELD(max_ahs_length)},
	[K_TAGGED_BUFFER] = {"TaggedBufferForSolicitedDataOnly", TEXT_T_DECL_BOOL, S_I, SW, 2,
			     TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_LATER | TEXT_F_IRR_RDMA_NO, 0, 1, 0,
			     NULL, TEXT_VALUE_MAX, FIELD(tagged_buffer_solicited_only)},
	[K_ISER_HELLO] = {"iSERHelloRequired", TEXT_T_DECL_BOOL, S_I, SW, 2,
			  TEXT_F_LO | TEXT_F_LOGIN | TEXT_F_LATER | TEXT_F_IRR_RDMA_NO, 0, 1, 0,
			  NULL, TEXT_VALUE_MAX, FIELD(iser_hello_required)},
};

/* ---- syntax (RFC 7143 §6.1) ---- */

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool label_char(char c)
{
	return is_alpha(c) || is_digit(c) || c == '.' || c == '-' || c == '+' || c == '@' ||
	       c == '_';
}

/* A standard-label of at most 63 bytes (RFC 7143 §6.1). §6.1 wants a
 * capital letter first, but iSCSIProtocolLevel (RFC 7144) and
 * iSERHelloRequired (RFC 7145) start with 'i': any letter is taken. "X#"
 * is the RFC 3720 prefix still used by X#NodeArchitecture (§13.26). */
static int check_key(const char *key, size_t len)
{
	size_t i;

	if (!len)
		return -EBADMSG;
	if (len > TEXT_KEY_MAX)
		return -ENAMETOOLONG;
	if (!is_alpha(key[0]))
		return -EILSEQ;
	for (i = 1; i < len; i++)
		if (!label_char(key[i]) && !(i == 1 && key[0] == 'X' && key[i] == '#'))
			return -EILSEQ;
	return 0;
}

/* The 255-byte limit is per simple-value; a list-of-values is a sequence
 * of them (RFC 7143 §6.1). */
static bool list_elements_fit(const char *v, size_t len)
{
	const char *end = v + len, *comma;

	while (v < end) {
		comma = memchr(v, ',', (size_t)(end - v));
		if (!comma)
			comma = end;
		if ((size_t)(comma - v) > TEXT_VALUE_MAX)
			return false;
		v = comma + 1;
	}
	return true;
}

static int check_value_syntax(const struct text_key *k, const char *v, size_t len)
{
	size_t i;

	if (!len)
		return k && (k->flags & TEXT_F_EMPTY_OK) ? 0 : -ENOMSG;
	if (len > (k ? k->max_len : TEXT_LARGE_VALUE_MAX))
		return -E2BIG;
	if (k && k->type == TEXT_T_LIST && !list_elements_fit(v, len))
		return -E2BIG;
	/* UTF-8 is passed through; control bytes never belong in a value. */
	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return -EILSEQ;
	return 0;
}

static int check_pair(const char *key, size_t klen, const char *value, size_t vlen)
{
	int err = check_key(key, klen);

	if (err)
		return err;
	return check_value_syntax(text_key_find(key, klen), value, vlen);
}

static bool all_zero(const char *p, size_t len)
{
	while (len--)
		if (*p++)
			return false;
	return true;
}

int text_next(const void *data, size_t len, size_t *pos, struct text_pair *pair)
{
	const char *s = data, *p, *end, *eq;
	int err;

	if (*pos >= len)
		return -ENODATA;
	p = s + *pos;
	/* A NUL where a pair should start: padding if only NULs follow. */
	if (!*p)
		return all_zero(p, len - *pos) ? -ENODATA : -EILSEQ;
	/* RFC 7143 §6.1: every pair, the last included, ends with a NUL. */
	end = memchr(p, '\0', len - *pos);
	if (!end)
		return -EILSEQ;
	eq = memchr(p, '=', (size_t)(end - p));
	if (!eq)
		return -EINVAL;
	err = check_pair(p, (size_t)(eq - p), eq + 1, (size_t)(end - eq - 1));
	if (err)
		return err;
	pair->key = p;
	pair->key_len = (uint16_t)(eq - p);
	pair->value = eq + 1;
	pair->value_len = (uint16_t)(end - eq - 1);
	*pos = (size_t)(end - s) + 1;
	return 0;
}

static bool same_key(const struct text_pair *a, const struct text_pair *b)
{
	return a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len);
}

/* RFC 7143 §6.2: a key at most once, except those allowed to repeat. */
static int check_duplicate(const struct text_list *list, const struct text_pair *p,
			   unsigned int flags)
{
	const struct text_key *k;
	unsigned int i;

	for (i = 0; i < list->count; i++) {
		if (!same_key(&list->pairs[i], p))
			continue;
		k = text_key_find(p->key, p->key_len);
		if ((flags & TEXT_PARSE_SENDTARGETS) && k && (k->flags & TEXT_F_REPEAT))
			return 0;
		return -EEXIST;
	}
	return 0;
}

int text_parse(const void *data, size_t len, unsigned int flags, struct text_list *list)
{
	struct text_pair p;
	size_t pos = 0;
	int err;

	list->count = 0;
	while (!(err = text_next(data, len, &pos, &p))) {
		err = check_duplicate(list, &p, flags);
		if (err)
			return err;
		if (list->count == TEXT_MAX_PAIRS)
			return -ENOBUFS;
		list->pairs[list->count++] = p;
	}
	return err == -ENODATA ? 0 : err;
}

const struct text_pair *text_list_find(const struct text_list *list, const char *key)
{
	size_t len = strlen(key);
	unsigned int i;

	for (i = 0; i < list->count; i++)
		if (list->pairs[i].key_len == len && !memcmp(list->pairs[i].key, key, len))
			return &list->pairs[i];
	return NULL;
}

void text_buf_init(struct text_buf *b, void *mem, size_t size)
{
	b->data = mem;
	b->size = size;
	b->len = 0;
}

static int append_n(struct text_buf *b, const char *key, size_t klen, const char *value,
		    size_t vlen)
{
	int err = check_pair(key, klen, value, vlen);

	if (err)
		return err;
	if (b->len > b->size || klen + vlen + 2 > b->size - b->len)
		return -ENOSPC;
	memcpy(b->data + b->len, key, klen);
	b->data[b->len + klen] = '=';
	memcpy(b->data + b->len + klen + 1, value, vlen);
	b->data[b->len + klen + 1 + vlen] = '\0';
	b->len += klen + vlen + 2;
	return 0;
}

int text_append(struct text_buf *b, const char *key, const char *value)
{
	return append_n(b, key, strlen(key), value, strlen(value));
}

int text_build(struct text_buf *b, const struct text_list *list)
{
	size_t len = b->len;
	unsigned int i;
	int err;

	for (i = 0; i < list->count; i++) {
		const struct text_pair *p = &list->pairs[i];

		err = append_n(b, p->key, p->key_len, p->value, p->value_len);
		if (err) {
			b->len = len;
			return err;
		}
	}
	return 0;
}

/* ---- values (RFC 7143 §6.1) ---- */

static bool is_xdigit(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool hex_prefix(const char *s, size_t len)
{
	return len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
}

int text_parse_number(const char *s, size_t len, uint64_t *out)
{
	char tmp[24], *end;
	int base = hex_prefix(s, len) ? 16 : 10;
	size_t i;
	unsigned long long v;

	if (base == 16) {
		s += 2;
		len -= 2;
		for (i = 0; i < len; i++)
			if (!is_xdigit(s[i]))
				return -EINVAL;
		while (len > 1 && *s == '0')
			s++, len--;
	} else {
		for (i = 0; i < len; i++)
			if (!is_digit(s[i]))
				return -EINVAL;
		/* decimal-constant: "0", or no leading zero */
		if (!len || (len > 1 && s[0] == '0'))
			return -EINVAL;
	}
	if (len > (base == 16 ? 16u : 20u))
		return -ERANGE;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	errno = 0;
	v = strtoull(tmp, &end, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || end != tmp + len)
		return -EINVAL;
	*out = v;
	return 0;
}

static int decode_hex(const char *s, size_t len, uint8_t *out, size_t size, size_t *out_len)
{
	size_t i, n = (len + 1) / 2;
	unsigned int nib;

	if (n > size)
		return -E2BIG;
	memset(out, 0, n);
	/* An odd count means an implied leading zero nibble (§6.1 byte-length). */
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!is_xdigit(c))
			return -EINVAL;
		nib = is_digit(c) ? (unsigned int)(c - '0') : (unsigned int)((c | 0x20) - 'a' + 10);
		out[(i + (len & 1)) / 2] |= (uint8_t)(nib << ((i + (len & 1)) % 2 ? 0 : 4));
	}
	*out_len = n;
	return 0;
}

static int b64_digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (is_digit(c))
		return c - '0' + 52;
	if (c == '+')
		return 62;
	return c == '/' ? 63 : -1;
}

/* RFC 4648 §4; the "=" padding may be left out. */
static int decode_b64(const char *s, size_t len, uint8_t *out, size_t size, size_t *out_len)
{
	size_t i, n = 0, pad = 0;
	uint32_t acc = 0;
	int d;

	while (len && s[len - 1] == '=' && pad < 2)
		len--, pad++;
	if (!len || len % 4 == 1 || (pad && (len + pad) % 4))
		return -EINVAL;
	if (len * 6 / 8 > size)
		return -E2BIG;
	for (i = 0; i < len; i++) {
		d = b64_digit(s[i]);
		if (d < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)d;
		if (i % 4 == 3 || i == len - 1) {
			size_t got = i % 4 + 1, bytes = got * 6 / 8;

			acc >>= (got * 6) % 8;
			while (bytes--)
				out[n++] = (uint8_t)(acc >> (8 * bytes));
			acc = 0;
		}
	}
	*out_len = n;
	return 0;
}

int text_decode_binary(const char *s, size_t len, uint8_t *out, size_t size, size_t *out_len)
{
	if (len < 3 || s[0] != '0')
		return -EINVAL;
	if (s[1] == 'x' || s[1] == 'X')
		return decode_hex(s + 2, len - 2, out, size, out_len);
	if (s[1] == 'b' || s[1] == 'B')
		return decode_b64(s + 2, len - 2, out, size, out_len);
	return -EINVAL;
}

/* ---- the key table ---- */

const struct text_key *text_key_find(const char *name, size_t len)
{
	unsigned int i;

	for (i = 0; i < K_COUNT; i++)
		if (strlen(keys[i].name) == len && !memcmp(keys[i].name, name, len))
			return &keys[i];
	return NULL;
}

static uint64_t key_bit(const struct text_key *k)
{
	return 1ull << (k - keys);
}

static bool is_decl(const struct text_key *k)
{
	return k->type >= TEXT_T_DECL_NUM && k->type <= TEXT_T_DECL_STR;
}

static bool is_bool(const struct text_key *k)
{
	return k->type == TEXT_T_AND || k->type == TEXT_T_OR || k->type == TEXT_T_DECL_BOOL;
}

static bool is_num(const struct text_key *k)
{
	return k->type == TEXT_T_MIN || k->type == TEXT_T_MAX || k->type == TEXT_T_DECL_NUM;
}

static bool value_is(const char *v, size_t len, const char *s)
{
	return strlen(s) == len && !memcmp(v, s, len);
}

/* Index of @v among @k's values, or -1. */
static int value_index(const struct text_key *k, const char *v, size_t len)
{
	int i;

	for (i = 0; k->values && k->values[i]; i++)
		if (value_is(v, len, k->values[i]))
			return i;
	return -1;
}

/* A 16-bit-binary-value (TargetPortalGroupTag) may also be base64. */
static int binary_number(const char *s, size_t len, uint64_t *out)
{
	uint8_t buf[8];
	size_t n, i;
	int err;

	err = text_decode_binary(s, len, buf, sizeof(buf), &n);
	if (err)
		return err == -E2BIG ? -ERANGE : err;
	*out = 0;
	for (i = 0; i < n; i++)
		*out = *out << 8 | buf[i];
	return 0;
}

static int key_number(const struct text_key *k, const char *s, size_t len, uint64_t *v)
{
	int err = text_parse_number(s, len, v);

	if (err == -EINVAL && (k->flags & TEXT_F_BINARY))
		err = binary_number(s, len, v);
	if (err)
		return err;
	if (*v == 0 && (k->flags & TEXT_F_ZERO_OK))
		return 0;
	return *v < k->min || *v > k->max ? -ERANGE : 0;
}

int text_check_value(const struct text_key *k, const char *s, size_t len)
{
	uint64_t v;

	if (is_bool(k))
		return value_is(s, len, "Yes") || value_is(s, len, "No") ? 0 : -EINVAL;
	if (is_num(k))
		return key_number(k, s, len, &v);
	if (k->type == TEXT_T_DECL_ENUM)
		return value_index(k, s, len) < 0 ? -EINVAL : 0;
	return 0;
}

/* ---- parameters ---- */

static uint32_t get_u32(const struct text_params *p, const struct text_key *k)
{
	if (is_bool(k))
		return *(const bool *)((const char *)p + k->off);
	return *(const uint32_t *)((const char *)p + k->off);
}

static void set_u32(struct text_params *p, const struct text_key *k, uint64_t v)
{
	if (is_bool(k))
		*(bool *)((char *)p + k->off) = v != 0;
	else
		*(uint32_t *)((char *)p + k->off) = (uint32_t)v;
}

static void set_str(struct text_params *p, const struct text_key *k, const char *v, size_t len)
{
	char *dst = (char *)p + k->off;

	/* max_len < size: checked by the parser */
	memcpy(dst, v, len);
	dst[len] = '\0';
}

void text_params_init(struct text_params *p)
{
	unsigned int i;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < K_COUNT; i++)
		if (keys[i].size && keys[i].type != TEXT_T_DECL_STR)
			set_u32(p, &keys[i], keys[i].def);
}

/* ---- negotiation (RFC 7143 §6.2) ---- */

void text_neg_init(struct text_neg *n, enum text_role role, bool leading)
{
	memset(n, 0, sizeof(*n));
	n->role = role;
	n->stage = TEXT_STAGE_SECURITY;
	n->leading = leading;
	text_params_init(&n->local);
	text_params_init(&n->result);
}

void text_neg_stage(struct text_neg *n, enum text_stage stage)
{
	n->stage = stage;
	/* RFC 7143 §6.4: each Text Request/Response sequence is a negotiation. */
	if (stage == TEXT_STAGE_FFP)
		n->sent = n->pending = n->recvd = n->rejected = n->answered = 0;
}

bool text_neg_pending(const struct text_neg *n)
{
	return n->pending != 0;
}

bool text_neg_recvd(const struct text_neg *n, const char *key)
{
	const struct text_key *k = text_key_find(key, strlen(key));

	return k && (n->recvd & key_bit(k));
}

static unsigned int me(const struct text_neg *n)
{
	return n->role == TEXT_ROLE_INITIATOR ? TEXT_SENDER_I : TEXT_SENDER_T;
}

static unsigned int peer(const struct text_neg *n)
{
	return n->role == TEXT_ROLE_INITIATOR ? TEXT_SENDER_T : TEXT_SENDER_I;
}

/* Only the initiator declares SessionType (RFC 7143 §13.21). */
static bool discovery(const struct text_neg *n)
{
	const struct text_params *p = n->role == TEXT_ROLE_INITIATOR ? &n->local : &n->result;

	return p->session_type == TEXT_SESSION_DISCOVERY;
}

/* May @sender use @k now? RFC 7143 §6.3 (stages), §12, §13 (Use). */
static bool usable(const struct text_neg *n, const struct text_key *k, unsigned int sender)
{
	if (!(k->senders & sender))
		return false;
	if ((k->flags & TEXT_F_LO) && !n->leading)
		return false;
	if (k->type == TEXT_T_OBSOLETE)
		return true;
	/* TargetName: IO by the initiator, FFPO by the target (§13.4). */
	if ((k->flags & TEXT_F_T_FFPO) && sender == TEXT_SENDER_T)
		return n->stage == TEXT_STAGE_FFP;
	switch (n->stage) {
	case TEXT_STAGE_SECURITY:
		return k->flags & (TEXT_F_SECURITY | TEXT_F_ANY_STAGE);
	case TEXT_STAGE_OPERATIONAL:
		return !(k->flags & (TEXT_F_SECURITY | TEXT_F_FFPO));
	default:
		return !(k->flags & (TEXT_F_SECURITY | TEXT_F_LOGIN));
	}
}

/* "Irrelevant when" of RFC 7143 §13 and RFC 7145 §6, on agreed values. */
static bool irrelevant(const struct text_neg *n, const struct text_key *k)
{
	const struct text_params *r = &n->result;

	if ((k->flags & TEXT_F_IRR_DISCOVERY) && discovery(n))
		return true;
	if ((k->flags & TEXT_F_IRR_RDMA_YES) && r->rdma_extensions)
		return true;
	if ((k->flags & TEXT_F_IRR_RDMA_NO) && !r->rdma_extensions)
		return true;
	return (k->flags & TEXT_F_IRR_R2T_NO_IMM) && r->initial_r2t && !r->immediate_data;
}

static bool reserved(const char *v, size_t len)
{
	return value_is(v, len, "Reject") || value_is(v, len, "Irrelevant") ||
	       value_is(v, len, "NotUnderstood");
}

/* Derived results: RFC 7145 §6.1 (no digests with iSER), RFC 7143 §13.21
 * (a Discovery session has one connection). */
static void fixup(struct text_neg *n)
{
	if (n->result.rdma_extensions)
		n->result.header_digest = n->result.data_digest = TEXT_DIGEST_NONE;
	if (discovery(n))
		n->result.max_connections = 1;
}

static int reply(struct text_buf *out, const struct text_key *k, const char *v)
{
	return text_append(out, k->name, v);
}

static int reply_num(struct text_buf *out, const struct text_key *k, uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, v);
	return reply(out, k, s);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* What we offer for a number. ErrorRecoveryLevel is 0 in a Discovery
 * session (RFC 7143 §13.21); FirstBurstLength <= MaxBurstLength (§13.14). */
static uint64_t offer_num(const struct text_neg *n, const struct text_key *k)
{
	uint64_t v = get_u32(&n->local, k);

	if (k == &keys[K_ERROR_RECOVERY_LEVEL] && discovery(n))
		return 0;
	if (k == &keys[K_FIRST_BURST_LENGTH])
		return min64(v, n->local.max_burst_length);
	return v;
}

/* Our side of a numeric answer: the offer, held to the integrity rules
 * against values agreed before (RFC 7143 §6.2, §13.14, §13.19). */
static uint64_t answer_limit(const struct text_neg *n, const struct text_key *k)
{
	const struct text_params *r = &n->result;
	uint64_t v = offer_num(n, k);

	if (k == &keys[K_FIRST_BURST_LENGTH])
		return min64(v, r->max_burst_length);
	if (k == &keys[K_MAX_OUTSTANDING_R2T] && r->error_recovery_level &&
	    r->data_sequence_in_order)
		return 1;
	return v;
}

/* ---- answering the peer's offers ---- */

/* Index of the first element of list @v whose bit is in @mask, or -1.
 * Values we do not know are skipped (RFC 7143 §6.2.1). */
static int list_pick(const struct text_key *k, const char *v, size_t len, uint32_t mask)
{
	const char *end = v + len, *comma;
	int i;

	while (v < end) {
		comma = memchr(v, ',', (size_t)(end - v));
		if (!comma)
			comma = end;
		i = value_index(k, v, (size_t)(comma - v));
		if (i >= 0 && (mask & (1u << i)))
			return i;
		v = comma + 1;
	}
	return -1;
}

/* RFC 7143 §6.2.2. A response is sent even where it is optional (AND
 * offered No, OR offered Yes): it repeats the only possible result. */
static int answer_bool(struct text_neg *n, const struct text_key *k, const struct text_pair *p,
		       struct text_buf *out)
{
	bool mine = get_u32(&n->local, k), v, res;

	if (text_check_value(k, p->value, p->value_len))
		return reply(out, k, "Reject");
	v = value_is(p->value, p->value_len, "Yes");
	res = k->type == TEXT_T_AND ? v && mine : v || mine;
	set_u32(&n->result, k, res);
	return reply(out, k, res ? "Yes" : "No");
}

/* RFC 7143 §6.2.2: inadmissible values get Reject; §13 result functions. */
static int answer_num(struct text_neg *n, const struct text_key *k, const struct text_pair *p,
		      struct text_buf *out)
{
	uint64_t mine = answer_limit(n, k), v, res;

	if (key_number(k, p->value, p->value_len, &v))
		return reply(out, k, "Reject");
	if (k->type == TEXT_T_MIN)
		res = min64(v, mine);
	else
		res = v > mine ? v : mine;
	set_u32(&n->result, k, res);
	return reply_num(out, k, res);
}

/* RFC 7143 §6.2.1: the first value offered that we support, else Reject. */
static int answer_list(struct text_neg *n, const struct text_key *k, const struct text_pair *p,
		       struct text_buf *out)
{
	int i = list_pick(k, p->value, p->value_len, get_u32(&n->local, k));

	if (i < 0)
		return reply(out, k, "Reject");
	set_u32(&n->result, k, 1u << i);
	return reply(out, k, k->values[i]);
}

/* With iSER the digests are None (RFC 7145 §6.1): when None was offered
 * that is a valid answer every initiator takes; otherwise Irrelevant. */
static int answer_irrelevant(struct text_neg *n, const struct text_key *k,
			     const struct text_pair *p, struct text_buf *out)
{
	if ((k->flags & TEXT_F_IRR_RDMA_YES) && k->type == TEXT_T_LIST &&
	    list_pick(k, p->value, p->value_len, TEXT_DIGEST_NONE) >= 0) {
		set_u32(&n->result, k, TEXT_DIGEST_NONE);
		return reply(out, k, "None");
	}
	return reply(out, k, "Irrelevant");
}

/* Record the peer's declaration. A value out of range cannot be answered
 * (declarations have no answer), so it ends the negotiation. */
static int declare(struct text_neg *n, const struct text_key *k, const struct text_pair *p)
{
	uint64_t v;
	int i;

	/* e.g. MaxRecvDataSegmentLength with iSER: ignored, RFC 7145 §6.2 */
	if (!k->size || irrelevant(n, k))
		return 0;
	switch (k->type) {
	case TEXT_T_DECL_STR:
		set_str(&n->result, k, p->value, p->value_len);
		return 0;
	case TEXT_T_DECL_ENUM:
		i = value_index(k, p->value, p->value_len);
		if (i < 0)
			return -EPROTO;
		set_u32(&n->result, k, 1u << i);
		return 0;
	case TEXT_T_DECL_BOOL:
		if (text_check_value(k, p->value, p->value_len))
			return -EPROTO;
		set_u32(&n->result, k, value_is(p->value, p->value_len, "Yes"));
		return 0;
	default:
		if (key_number(k, p->value, p->value_len, &v))
			return -EPROTO;
		set_u32(&n->result, k, v);
		return 0;
	}
}

/* A reserved constant from the peer can only answer one of our
 * declarations (answers to offers are text_resolve()'s); proposed, it is
 * a protocol error, as is NotUnderstood for an RFC 7143 key (§6.2). */
static int reserved_answer(const struct text_neg *n, const struct text_key *k,
			   const struct text_pair *p)
{
	if (!k || !is_decl(k) || !(n->sent & key_bit(k)))
		return -EPROTO;
	if (value_is(p->value, p->value_len, "NotUnderstood") && !(k->flags & TEXT_F_LATER))
		return -EPROTO;
	return 0;
}

static int answer(struct text_neg *n, const struct text_key *k, const struct text_pair *p,
		  struct text_buf *out)
{
	if (k->type == TEXT_T_OBSOLETE)
		return reply(out, k, "Reject"); /* RFC 7143 §13.25 */
	if (is_decl(k))
		return declare(n, k, p);
	if (irrelevant(n, k))
		return answer_irrelevant(n, k, p, out);
	if (is_bool(k))
		return answer_bool(n, k, p, out);
	if (is_num(k))
		return answer_num(n, k, p, out);
	return answer_list(n, k, p, out);
}

/*
 * The peer declares again, with the same value, a name or type it
 * declared before in this login. RFC 7143 §6.2 says to reject that, but
 * libiscsi (1.19) repeats InitiatorName and SessionType in the
 * operational stage after a security stage that agreed AuthMethod=None,
 * and tgt and LIO take it: a repeat that changes nothing is ignored.
 */
static bool same_declaration(const struct text_neg *n, const struct text_key *k,
			     const struct text_pair *p)
{
	const char *cur = (const char *)&n->result + k->off;
	int i;

	if (!k->size || n->stage == TEXT_STAGE_FFP)
		return false;
	if (k->type == TEXT_T_DECL_STR)
		return strnlen(cur, k->size) == p->value_len &&
		       !memcmp(cur, p->value, p->value_len);
	if (k->type != TEXT_T_DECL_ENUM)
		return false;
	i = value_index(k, p->value, p->value_len);
	return i >= 0 && get_u32(&n->result, k) == 1u << i;
}

static int respond_pair(struct text_neg *n, const struct text_pair *p, struct text_buf *out)
{
	const struct text_key *k = text_key_find(p->key, p->key_len);
	uint64_t bit = k ? key_bit(k) : 0;

	if ((n->pending | n->answered) & bit)
		return 0; /* an answer to our offer: text_resolve()'s */
	if (reserved(p->value, p->value_len))
		return reserved_answer(n, k, p);
	if (!k)
		return append_n(out, p->key, p->key_len, "NotUnderstood", 13);
	if (!usable(n, k, peer(n)))
		return -EPROTO;
	/* CHAP and SendTargets are the caller's; so are SendTargets records */
	if (k->type == TEXT_T_PASS || ((k->flags & TEXT_F_REPEAT) && n->stage == TEXT_STAGE_FFP))
		return 0;
	/* RFC 7143 §6.3, §6.4: no key negotiated or declared twice */
	if ((n->recvd & bit) && is_decl(k) && same_declaration(n, k, p))
		return 0;
	if ((n->recvd & bit) || (!is_decl(k) && (n->sent & bit)))
		return -EPROTO;
	n->recvd |= bit;
	return answer(n, k, p, out);
}

static unsigned int pair_rank(const struct text_pair *p)
{
	const struct text_key *k = text_key_find(p->key, p->key_len);

	return k ? k->rank : 2;
}

int text_respond(struct text_neg *n, const struct text_list *in, struct text_buf *out)
{
	struct text_neg save = *n;
	size_t len = out->len;
	unsigned int rank, i;
	int err = 0;

	/* Keys others depend on first: SessionType, then RDMAExtensions,
	 * InitialR2T, ImmediateData, MaxBurstLength... (RFC 7143 §6.2:
	 * "the dependency rules and parameter sequence"). */
	for (rank = 0; rank < 3 && !err; rank++)
		for (i = 0; i < in->count && !err; i++)
			if (pair_rank(&in->pairs[i]) == rank)
				err = respond_pair(n, &in->pairs[i], out);
	if (err) {
		*n = save;
		out->len = len;
		return err;
	}
	n->answered = 0;
	fixup(n);
	return 0;
}

/* ---- resolving the answers to our offers ---- */

/* Is @v admissible as an answer to our offer of @k? RFC 7143 §6.2.1 (a
 * value we offered), §6.2.2 and §13 "Result function". */
static int check_answer(const struct text_neg *n, const struct text_key *k, const char *v,
			size_t len, uint64_t *res)
{
	uint64_t offered = offer_num(n, k), a;
	int i;

	if (is_bool(k)) {
		if (text_check_value(k, v, len))
			return -EPROTO;
		a = value_is(v, len, "Yes");
		if (k->type == TEXT_T_AND ? !offered && a : offered && !a)
			return -EPROTO;
	} else if (is_num(k)) {
		if (key_number(k, v, len, &a))
			return -EPROTO;
		if (k->type == TEXT_T_MIN ? a > offered : a < offered)
			return -EPROTO;
	} else {
		i = value_index(k, v, len);
		if (i < 0 || !(offered & (1u << i)))
			return -EPROTO;
		a = 1u << i;
	}
	*res = a;
	return 0;
}

static int resolve_pair(struct text_neg *n, const struct text_pair *p)
{
	const struct text_key *k = text_key_find(p->key, p->key_len);
	uint64_t bit = k ? key_bit(k) : 0, v;
	int err;

	if (!(n->pending & bit))
		return 0;
	n->pending &= ~bit;
	n->answered |= bit;
	/* RFC 7143 §6.2: after Reject or Irrelevant the value stays as it
	 * was; NotUnderstood only for keys defined after RFC 7143. */
	if (value_is(p->value, p->value_len, "Reject")) {
		n->rejected |= bit;
		return 0;
	}
	if (value_is(p->value, p->value_len, "Irrelevant"))
		return 0;
	if (value_is(p->value, p->value_len, "NotUnderstood"))
		return (k->flags & TEXT_F_LATER) ? 0 : -EPROTO;
	err = check_answer(n, k, p->value, p->value_len, &v);
	if (!err)
		set_u32(&n->result, k, v);
	return err;
}

int text_resolve(struct text_neg *n, const struct text_list *in)
{
	struct text_neg save = *n;
	unsigned int i;
	int err = 0;

	n->answered = 0;
	for (i = 0; i < in->count && !err; i++)
		err = resolve_pair(n, &in->pairs[i]);
	if (err) {
		*n = save;
		return err;
	}
	fixup(n);
	return 0;
}

/* ---- our offers ---- */

/* iSER keys are offered while RDMAExtensions=Yes may still be agreed. */
static bool rdma_open(const struct text_neg *n)
{
	uint64_t bit = key_bit(&keys[K_RDMA_EXTENSIONS]);
	bool settled = (((n->sent & ~n->pending) | n->recvd) & bit) != 0;

	return n->result.rdma_extensions || (n->local.rdma_extensions && !settled);
}

static bool worth_offering(const struct text_neg *n, const struct text_key *k)
{
	const struct text_params *l = &n->local;

	if ((k->flags & TEXT_F_IRR_DISCOVERY) && discovery(n))
		return false;
	if ((k->flags & TEXT_F_IRR_RDMA_YES) && n->result.rdma_extensions)
		return false;
	if ((k->flags & TEXT_F_IRR_RDMA_NO) && !rdma_open(n))
		return false;
	if (k == &keys[K_RDMA_EXTENSIONS])
		return l->rdma_extensions;
	/* RFC 7144 §7.1.1, RFC 7143 §13.23: only to ask for more than the
	 * default (and §13.23 wants RFC3720,ResponseFence in such an offer) */
	if (k == &keys[K_PROTOCOL_LEVEL] || k == &keys[K_TASK_REPORTING])
		return get_u32(l, k) != k->def;
	if (k == &keys[K_TPGT]) /* §13.9: when the initiator gave TargetName */
		return n->result.target_name[0] != '\0';
	/* §13.4, §13.6: no target in a Discovery session */
	if ((k == &keys[K_TARGET_ALIAS] || k == &keys[K_TARGET_NAME]) && discovery(n))
		return false;
	if (k->type == TEXT_T_DECL_STR)
		return k->size && *((const char *)l + k->off);
	if (k == &keys[K_FIRST_BURST_LENGTH]) /* §13.14: irrelevant whatever the answer */
		return !(l->initial_r2t && !l->immediate_data);
	return !k->values || get_u32(l, k);
}

static int offer_key(const struct text_neg *n, const struct text_key *k, struct text_buf *out)
{
	const char *str = (const char *)&n->local + k->off;
	char s[TEXT_VALUE_MAX + 1];
	size_t len = 0;
	uint32_t mask;
	int i;

	if (k->type == TEXT_T_DECL_STR) /* an unterminated field gives -E2BIG */
		return append_n(out, k->name, strlen(k->name), str, strnlen(str, k->size));
	if (is_bool(k))
		return reply(out, k, get_u32(&n->local, k) ? "Yes" : "No");
	if (is_num(k))
		return reply_num(out, k, offer_num(n, k));
	mask = get_u32(&n->local, k);
	for (i = 0; k->values[i]; i++) {
		if (!(mask & (1u << i)))
			continue;
		if (k->type == TEXT_T_DECL_ENUM)
			return reply(out, k, k->values[i]);
		len += (size_t)snprintf(s + len, sizeof(s) - len, "%s%s", len ? "," : "",
					k->values[i]);
	}
	return reply(out, k, s);
}

int text_offer(struct text_neg *n, struct text_buf *out)
{
	struct text_neg save = *n;
	size_t len = out->len;
	unsigned int i;
	int err = 0;

	for (i = 0; i < K_COUNT && !err; i++) {
		const struct text_key *k = &keys[i];
		uint64_t bit = key_bit(k);

		if (k->type == TEXT_T_PASS || k->type == TEXT_T_OBSOLETE || !usable(n, k, me(n)))
			continue;
		/* settled already: by us, or by the peer's offer and our answer */
		if ((n->sent & bit) || (!is_decl(k) && (n->recvd & bit)))
			continue;
		if (!worth_offering(n, k))
			continue;
		err = offer_key(n, k, out);
		n->sent |= bit;
		if (!is_decl(k))
			n->pending |= bit;
	}
	if (err) {
		*n = save;
		out->len = len;
	}
	return err;
}

/* ---- after the exchange ---- */

int text_neg_check(const struct text_neg *n)
{
	const struct text_params *r = &n->result;

	if (discovery(n)) /* RFC 7143 §7.4.1, §13.21 */
		return r->error_recovery_level ? -EPROTO : 0;
	if (!irrelevant(n, &keys[K_FIRST_BURST_LENGTH]) &&
	    r->first_burst_length > r->max_burst_length)
		return -EPROTO; /* §13.14 */
	if (r->error_recovery_level && r->data_sequence_in_order && r->max_outstanding_r2t != 1)
		return -EPROTO; /* §13.19 */
	return 0;
}

uint32_t text_max_send_dsl(const struct text_neg *n)
{
	const struct text_params *r = &n->result;

	if (!r->rdma_extensions)
		return r->max_recv_dsl;
	return n->role == TEXT_ROLE_INITIATOR ? r->target_recv_dsl : r->initiator_recv_dsl;
}

uint32_t text_max_recv_dsl(const struct text_neg *n)
{
	const struct text_params *r = &n->result;

	if (!r->rdma_extensions)
		return n->local.max_recv_dsl;
	return n->role == TEXT_ROLE_INITIATOR ? r->initiator_recv_dsl : r->target_recv_dsl;
}
