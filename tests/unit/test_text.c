/*
 * Unit tests of the text module: the syntax of RFC 7143 §6.1, the
 * negotiation rules of §6.2 and §13 (and RFC 7145 §6), and a login.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

#define SEG_MAX 16384

/* Join "key=value" strings into a data segment, each followed by NUL. */
static size_t vseg(char *buf, size_t size, va_list ap)
{
	const char *s;
	size_t len = 0, n;

	while ((s = va_arg(ap, const char *))) {
		n = strlen(s) + 1;
		ck_assert_uint_le(len + n, size);
		memcpy(buf + len, s, n);
		len += n;
	}
	return len;
}

static size_t seg(char *buf, size_t size, ...)
{
	va_list ap;
	size_t len;

	va_start(ap, size);
	len = vseg(buf, size, ap);
	va_end(ap);
	return len;
}

static int parse_strs(struct text_list *l, unsigned int flags, ...)
{
	static char buf[SEG_MAX];
	va_list ap;
	size_t len;

	va_start(ap, flags);
	len = vseg(buf, sizeof(buf), ap);
	va_end(ap);
	return text_parse(buf, len, flags, l);
}

static const char *val(const struct text_list *l, const char *key)
{
	const struct text_pair *p = text_list_find(l, key);

	return p ? p->value : NULL;
}

/* A string of @n copies of @c, in a static buffer. */
static const char *rep(char c, size_t n)
{
	static char s[2][SEG_MAX];
	static int which;
	char *p = s[which ^= 1];

	ck_assert_uint_lt(n, SEG_MAX);
	memset(p, c, n);
	p[n] = '\0';
	return p;
}

static const char *kv(const char *key, const char *value)
{
	static char s[4][SEG_MAX + 128];
	static int which;
	char *p = s[which = (which + 1) % 4];

	snprintf(p, sizeof(s[0]), "%s=%s", key, value);
	return p;
}

/*
 * Feed the peer's data segment (the strings) to @n: resolve, then
 * respond; the answers are parsed into @ans. Returns the first error.
 */
static char in_buf[SEG_MAX], out_mem[SEG_MAX];
static struct text_list in_list;

static int exchange(struct text_neg *n, struct text_list *ans, ...)
{
	struct text_buf out;
	va_list ap;
	size_t len;
	int err;

	va_start(ap, ans);
	len = vseg(in_buf, sizeof(in_buf), ap);
	va_end(ap);
	ck_assert_int_eq(text_parse(in_buf, len, 0, &in_list), 0);
	text_buf_init(&out, out_mem, sizeof(out_mem));
	err = text_resolve(n, &in_list);
	if (!err)
		err = text_respond(n, &in_list, &out);
	if (!err)
		ck_assert_int_eq(text_parse(out.data, out.len, 0, ans), 0);
	return err;
}

static void target_op(struct text_neg *n)
{
	text_neg_init(n, TEXT_ROLE_TARGET, true);
	text_neg_stage(n, TEXT_STAGE_OPERATIONAL);
}

/* ---- syntax ---- */

START_TEST(parse_basic)
{
	char buf[256];
	struct text_list l;
	size_t len = seg(buf, sizeof(buf), "InitiatorName=iqn.1999-07.com.os:hostid.77",
			 "TargetName=iqn.1999-07.com.example:diskarray.sn.88",
			 "AuthMethod=KRB5,CHAP,None", NULL);

	ck_assert_int_eq(text_parse(buf, len, 0, &l), 0);
	ck_assert_uint_eq(l.count, 3);
	ck_assert_uint_eq(l.pairs[0].key_len, strlen("InitiatorName"));
	ck_assert(!memcmp(l.pairs[0].key, "InitiatorName", l.pairs[0].key_len));
	ck_assert_str_eq(l.pairs[0].value, "iqn.1999-07.com.os:hostid.77");
	ck_assert_str_eq(val(&l, "AuthMethod"), "KRB5,CHAP,None");
	ck_assert_ptr_null(val(&l, "Auth"));
}
END_TEST

START_TEST(parse_padding)
{
	char buf[64];
	struct text_list l;
	size_t len = seg(buf, sizeof(buf), "MaxBurstLength=512", NULL);

	memset(buf + len, 0, 3);
	ck_assert_int_eq(text_parse(buf, len + 3, 0, &l), 0);
	ck_assert_uint_eq(l.count, 1);
	ck_assert_int_eq(text_parse(buf, 0, 0, &l), 0);
	ck_assert_uint_eq(l.count, 0);
	ck_assert_int_eq(text_parse("\0\0\0", 4, 0, &l), 0);
	ck_assert_uint_eq(l.count, 0);
}
END_TEST

START_TEST(parse_malformed)
{
	struct text_list l;

	ck_assert_int_eq(parse_strs(&l, 0, "InitiatorName", NULL), -EINVAL);
	ck_assert_int_eq(parse_strs(&l, 0, "=iqn.x", NULL), -EBADMSG);
	ck_assert_int_eq(parse_strs(&l, 0, "MaxBurstLength=", NULL), -ENOMSG);
	ck_assert_int_eq(parse_strs(&l, 0, "TargetAlias=", NULL), -ENOMSG);
	ck_assert_int_eq(parse_strs(&l, 0, "ImmediateData=Yes", "ImmediateData=No", NULL), -EEXIST);
	ck_assert_int_eq(parse_strs(&l, 0, "1stKey=1", NULL), -EILSEQ);
	ck_assert_int_eq(parse_strs(&l, 0, "-Key=1", NULL), -EILSEQ);
	ck_assert_int_eq(parse_strs(&l, 0, "iSCSIProtocolLevel=1", NULL), 0);
	ck_assert_int_eq(parse_strs(&l, 0, "Max Burst=1", NULL), -EILSEQ);
	ck_assert_int_eq(parse_strs(&l, 0, "TargetAlias=a\tb", NULL), -EILSEQ);
	ck_assert_int_eq(parse_strs(&l, 0, "X#NodeArchitecture=ExampleOS/v1234", NULL), 0);
	ck_assert_int_eq(parse_strs(&l, 0, "X-com.example.bar.foo.do_something=3", NULL), 0);
}
END_TEST

/* RFC 7143 App. C: "<nothing>" is a legal SendTargets value. */
START_TEST(parse_empty_sendtargets)
{
	struct text_list l;

	ck_assert_int_eq(parse_strs(&l, 0, "SendTargets=", NULL), 0);
	ck_assert_str_eq(val(&l, "SendTargets"), "");
}
END_TEST

START_TEST(parse_not_nul_separated)
{
	struct text_list l;
	static const char a[] = "MaxBurstLength=512";		    /* no NUL counted */
	static const char b[] = "A=1\0\0B=2";			    /* stray NUL */
	static const char c[] = "InitialR2T=Yes\0ImmediateData=No"; /* last not ended */

	ck_assert_int_eq(text_parse(a, sizeof(a) - 1, 0, &l), -EILSEQ);
	ck_assert_int_eq(text_parse(b, sizeof(b), 0, &l), -EILSEQ);
	ck_assert_int_eq(text_parse(c, sizeof(c) - 1, 0, &l), -EILSEQ);
}
END_TEST

START_TEST(parse_key_length)
{
	struct text_list l;
	char key[80];

	snprintf(key, sizeof(key), "X-%s=1", rep('k', 61)); /* 63 bytes */
	ck_assert_int_eq(parse_strs(&l, 0, key, NULL), 0);
	snprintf(key, sizeof(key), "X-%s=1", rep('k', 62)); /* 64 bytes */
	ck_assert_int_eq(parse_strs(&l, 0, key, NULL), -ENAMETOOLONG);
}
END_TEST

START_TEST(parse_value_length)
{
	struct text_list l;
	char list[600];

	ck_assert_int_eq(parse_strs(&l, 0, kv("TargetAlias", rep('a', 255)), NULL), 0);
	ck_assert_int_eq(parse_strs(&l, 0, kv("TargetAlias", rep('a', 256)), NULL), -E2BIG);
	/* iSCSI names: 223 bytes, RFC 7143 §4.2.7.1 */
	ck_assert_int_eq(parse_strs(&l, 0, kv("InitiatorName", rep('n', 223)), NULL), 0);
	ck_assert_int_eq(parse_strs(&l, 0, kv("InitiatorName", rep('n', 224)), NULL), -E2BIG);
	/* CHAP_C/CHAP_R: 1024 binary bytes, hex-encoded "0x" + 2048 digits */
	ck_assert_int_eq(parse_strs(&l, 0, kv("CHAP_C", rep('a', 2050)), NULL), 0);
	ck_assert_int_eq(parse_strs(&l, 0, kv("CHAP_R", rep('a', 2051)), NULL), -E2BIG);
	/* keys we do not know: up to the 8192 bytes everyone must take */
	ck_assert_int_eq(parse_strs(&l, 0, kv("X-org.example.k", rep('v', 8192)), NULL), 0);
	ck_assert_int_eq(parse_strs(&l, 0, kv("X-org.example.k", rep('v', 8193)), NULL), -E2BIG);
	/* lists: 255 per element */
	snprintf(list, sizeof(list), "%s,%s", rep('x', 255), rep('y', 200));
	ck_assert_int_eq(parse_strs(&l, 0, kv("HeaderDigest", list), NULL), 0);
	snprintf(list, sizeof(list), "None,%s", rep('y', 256));
	ck_assert_int_eq(parse_strs(&l, 0, kv("HeaderDigest", list), NULL), -E2BIG);
}
END_TEST

START_TEST(parse_too_many)
{
	static char buf[SEG_MAX];
	struct text_list l;
	size_t len = 0;
	int i;

	for (i = 0; i <= TEXT_MAX_PAIRS; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "X-k%d=v", i) + 1;
	ck_assert_int_eq(text_parse(buf, len, 0, &l), -ENOBUFS);
}
END_TEST

/* RFC 7143 App. C: a SendTargets response repeats TargetName/Address. */
START_TEST(parse_sendtargets_response)
{
	struct text_list l;

#define ST_RSP                                                                      \
	"TargetName=iqn.1993-11.com.example:diskarray.sn.8675309",                  \
		"TargetAddress=10.1.0.45:3000,1", "TargetAddress=10.1.1.45:3000,2", \
		"TargetName=iqn.1993-11.com.example:diskarray.sn.1234567",          \
		"TargetAddress=10.1.0.45:3000,1", "TargetAddress=10.1.1.45:3000,2", NULL
	ck_assert_int_eq(parse_strs(&l, TEXT_PARSE_SENDTARGETS, ST_RSP), 0);
	ck_assert_uint_eq(l.count, 6);
	ck_assert_int_eq(parse_strs(&l, 0, ST_RSP), -EEXIST);
	ck_assert_int_eq(
		parse_strs(&l, TEXT_PARSE_SENDTARGETS, "TargetAlias=a", "TargetAlias=b", NULL),
		-EEXIST);
}
END_TEST

START_TEST(next_streams_long_lists)
{
	static char buf[SEG_MAX];
	struct text_pair p;
	size_t len = 0, pos = 0;
	int i, n = 0;

	for (i = 0; i < 300; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "TargetAddress=10.0.%d.1,1",
					i) +
		       1;
	while (!text_next(buf, len, &pos, &p))
		n++;
	ck_assert_int_eq(n, 300);
	ck_assert_int_eq(text_next(buf, len, &pos, &p), -ENODATA);
}
END_TEST

START_TEST(build_and_bounds)
{
	char mem[36];
	struct text_buf b;

	text_buf_init(&b, mem, sizeof(mem));
	ck_assert_int_eq(text_append(&b, "MaxBurstLength", "262144"), 0);
	ck_assert_uint_eq(b.len, strlen("MaxBurstLength=262144") + 1);
	ck_assert_int_eq(text_append(&b, "ImmediateData", "Yes"), -ENOSPC);
	ck_assert_uint_eq(b.len, strlen("MaxBurstLength=262144") + 1);
	ck_assert_int_eq(text_append(&b, "InitialR2T", "No"), 0);
	ck_assert_uint_eq(b.len, sizeof(mem));
	ck_assert_int_eq(text_append(&b, "A", "1"), -ENOSPC);
	ck_assert_int_eq(memcmp(mem, "MaxBurstLength=262144\0InitialR2T=No", sizeof(mem)), 0);
	/* the builder refuses what the parser would */
	text_buf_init(&b, mem, sizeof(mem));
	ck_assert_int_eq(text_append(&b, "", "1"), -EBADMSG);
	ck_assert_int_eq(text_append(&b, "MaxBurstLength", ""), -ENOMSG);
	ck_assert_int_eq(text_append(&b, "B d", "1"), -EILSEQ);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(round_trip)
{
	static char mem[SEG_MAX];
	struct text_list a, b;
	struct text_buf out;
	unsigned int i;

	ck_assert_int_eq(parse_strs(&a, 0, "InitiatorName=iqn.2004-10.com.ubuntu:01:8b3c1f2e",
				    "InitiatorAlias=host-1 (rack 2)", "SessionType=Normal",
				    "HeaderDigest=None,CRC32C",
				    "SendTargets=", kv("CHAP_C", rep('f', 2050)),
				    "X#NodeArchitecture=a/1,b/2", NULL),
			 0);
	text_buf_init(&out, mem, sizeof(mem));
	ck_assert_int_eq(text_build(&out, &a), 0);
	ck_assert_int_eq(text_parse(out.data, out.len, 0, &b), 0);
	ck_assert_uint_eq(a.count, b.count);
	for (i = 0; i < a.count; i++) {
		ck_assert_uint_eq(a.pairs[i].key_len, b.pairs[i].key_len);
		ck_assert_uint_eq(a.pairs[i].value_len, b.pairs[i].value_len);
		ck_assert(!memcmp(a.pairs[i].key, b.pairs[i].key, a.pairs[i].key_len));
		ck_assert_str_eq(a.pairs[i].value, b.pairs[i].value);
	}
	/* all or nothing */
	text_buf_init(&out, mem, 100);
	ck_assert_int_eq(text_build(&out, &a), -ENOSPC);
	ck_assert_uint_eq(out.len, 0);
}
END_TEST

/* ---- values ---- */

START_TEST(numbers)
{
	uint64_t v = 7;

	ck_assert_int_eq(text_parse_number("0", 1, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(text_parse_number("262144", 6, &v), 0);
	ck_assert_uint_eq(v, 262144);
	ck_assert_int_eq(text_parse_number("0x3b", 4, &v), 0);
	ck_assert_uint_eq(v, 0x3b);
	ck_assert_int_eq(text_parse_number("0X00000000000000000000FF", 24, &v), 0);
	ck_assert_uint_eq(v, 255);
	ck_assert_int_eq(text_parse_number("18446744073709551615", 20, &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(text_parse_number("18446744073709551616", 20, &v), -ERANGE);
	ck_assert_int_eq(text_parse_number("0x10000000000000000", 19, &v), -ERANGE);
	ck_assert_int_eq(text_parse_number("99999999999999999999999", 23, &v), -ERANGE);
	ck_assert_int_eq(text_parse_number("012", 3, &v), -EINVAL);
	ck_assert_int_eq(text_parse_number("+1", 2, &v), -EINVAL);
	ck_assert_int_eq(text_parse_number(" 1", 2, &v), -EINVAL);
	ck_assert_int_eq(text_parse_number("1 ", 2, &v), -EINVAL);
	ck_assert_int_eq(text_parse_number("0x", 2, &v), -EINVAL);
	ck_assert_int_eq(text_parse_number("0x1g", 4, &v), -EINVAL);
	ck_assert_int_eq(text_parse_number("0bAQ==", 6, &v), -EINVAL); /* not numerical */
	ck_assert_int_eq(text_parse_number("", 0, &v), -EINVAL);
	/* the length given is the end, whatever follows */
	ck_assert_int_eq(text_parse_number("123456", 3, &v), 0);
	ck_assert_uint_eq(v, 123);
}
END_TEST

START_TEST(binary)
{
	uint8_t out[4];
	size_t n;

	ck_assert_int_eq(text_decode_binary("0x0102", 6, out, sizeof(out), &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(out[0] == 1 && out[1] == 2);
	ck_assert_int_eq(text_decode_binary("0x102", 5, out, sizeof(out), &n), 0);
	ck_assert(n == 2 && out[0] == 1 && out[1] == 2);
	ck_assert_int_eq(text_decode_binary("0bAQI=", 6, out, sizeof(out), &n), 0);
	ck_assert(n == 2 && out[0] == 1 && out[1] == 2);
	ck_assert_int_eq(text_decode_binary("0BAQID", 6, out, sizeof(out), &n), 0);
	ck_assert(n == 3 && out[2] == 3);
	ck_assert_int_eq(text_decode_binary("0b/w", 4, out, sizeof(out), &n), 0);
	ck_assert(n == 1 && out[0] == 0xff);
	ck_assert_int_eq(text_decode_binary("0x0102030405", 12, out, sizeof(out), &n), -E2BIG);
	ck_assert_int_eq(text_decode_binary("0b!!!!", 6, out, sizeof(out), &n), -EINVAL);
	ck_assert_int_eq(text_decode_binary("0bA", 3, out, sizeof(out), &n), -EINVAL);
	ck_assert_int_eq(text_decode_binary("0bAQ=", 5, out, sizeof(out), &n), -EINVAL);
	ck_assert_int_eq(text_decode_binary("12", 2, out, sizeof(out), &n), -EINVAL);
	ck_assert_int_eq(text_decode_binary("0y12", 4, out, sizeof(out), &n), -EINVAL);
	ck_assert_int_eq(text_decode_binary("0x", 2, out, sizeof(out), &n), -EINVAL);
	ck_assert_int_eq(text_decode_binary("0x0g", 4, out, sizeof(out), &n), -EINVAL);
	ck_assert_int_eq(text_decode_binary("0b+/89", 6, out, sizeof(out), &n), 0);
	ck_assert(n == 3 && out[0] == 0xfb && out[1] == 0xff && out[2] == 0x3d);
	ck_assert_int_eq(text_decode_binary("0bAAAAAAAA", 10, out, sizeof(out), &n), -E2BIG);
}
END_TEST

static int check(const char *key, const char *value)
{
	const struct text_key *k = text_key_find(key, strlen(key));

	ck_assert_ptr_nonnull(k);
	return text_check_value(k, value, strlen(value));
}

START_TEST(value_ranges)
{
	ck_assert_int_eq(check("MaxBurstLength", "511"), -ERANGE);
	ck_assert_int_eq(check("MaxBurstLength", "512"), 0);
	ck_assert_int_eq(check("MaxBurstLength", "16777215"), 0);
	ck_assert_int_eq(check("MaxBurstLength", "0x1000000"), -ERANGE);
	ck_assert_int_eq(check("MaxBurstLength", "lots"), -EINVAL);
	ck_assert_int_eq(check("ErrorRecoveryLevel", "3"), -ERANGE);
	ck_assert_int_eq(check("MaxConnections", "0"), -ERANGE);
	ck_assert_int_eq(check("DefaultTime2Wait", "3601"), -ERANGE);
	ck_assert_int_eq(check("iSCSIProtocolLevel", "32"), -ERANGE);
	/* RFC 7145 §6.7: 0 (no limit) or 2..2**32-1 */
	ck_assert_int_eq(check("MaxOutstandingUnexpectedPDUs", "0"), 0);
	ck_assert_int_eq(check("MaxOutstandingUnexpectedPDUs", "1"), -ERANGE);
	ck_assert_int_eq(check("MaxOutstandingUnexpectedPDUs", "2"), 0);
	ck_assert_int_eq(check("MaxOutstandingUnexpectedPDUs", "4294967295"), 0);
	ck_assert_int_eq(check("MaxOutstandingUnexpectedPDUs", "4294967296"), -ERANGE);
	ck_assert_int_eq(check("TargetRecvDataSegmentLength", "511"), -ERANGE);
	/* TargetPortalGroupTag is a 16-bit-binary-value: base64 allowed */
	ck_assert_int_eq(check("TargetPortalGroupTag", "0bAAE="), 0);
	ck_assert_int_eq(check("TargetPortalGroupTag", "65535"), 0);
	ck_assert_int_eq(check("TargetPortalGroupTag", "0x10000"), -ERANGE);
	ck_assert_int_eq(check("TargetPortalGroupTag", "0bAQAA"), -ERANGE);
	ck_assert_int_eq(check("TargetPortalGroupTag", "0x000102030405060708"), -ERANGE);
	ck_assert_int_eq(check("TargetPortalGroupTag", "0bA"), -EINVAL);
	/* lists and strings: anything the parser took */
	ck_assert_int_eq(check("HeaderDigest", "Y-com.example.md5,None"), 0);
	ck_assert_int_eq(check("TargetAlias", "Bob-s Disk"), 0);
	ck_assert_int_eq(check("InitialR2T", "yes"), -EINVAL);
	ck_assert_int_eq(check("SessionType", "discovery"), -EINVAL);
	ck_assert_int_eq(check("SessionType", "Discovery"), 0);
}
END_TEST

START_TEST(key_table)
{
	static const char *const all[] = {"HeaderDigest",
					  "DataDigest",
					  "MaxConnections",
					  "SendTargets",
					  "TargetName",
					  "InitiatorName",
					  "TargetAlias",
					  "InitiatorAlias",
					  "TargetAddress",
					  "TargetPortalGroupTag",
					  "InitialR2T",
					  "ImmediateData",
					  "MaxRecvDataSegmentLength",
					  "MaxBurstLength",
					  "FirstBurstLength",
					  "DefaultTime2Wait",
					  "DefaultTime2Retain",
					  "MaxOutstandingR2T",
					  "DataPDUInOrder",
					  "DataSequenceInOrder",
					  "ErrorRecoveryLevel",
					  "SessionType",
					  "AuthMethod",
					  "TaskReporting",
					  "iSCSIProtocolLevel",
					  "X#NodeArchitecture",
					  "CHAP_A",
					  "CHAP_I",
					  "CHAP_C",
					  "CHAP_N",
					  "CHAP_R",
					  "RDMAExtensions",
					  "InitiatorRecvDataSegmentLength",
					  "TargetRecvDataSegmentLength",
					  "MaxOutstandingUnexpectedPDUs",
					  "IFMarker",
					  "OFMarker",
					  "IFMarkInt",
					  "OFMarkInt",
					  NULL};
	const struct text_key *k;
	int i;

	for (i = 0; all[i]; i++)
		ck_assert_msg(text_key_find(all[i], strlen(all[i])), "%s", all[i]);
	ck_assert_ptr_null(text_key_find("MaxBurst", 8));
	k = text_key_find("MaxRecvDataSegmentLength", 24);
	ck_assert(k->type == TEXT_T_DECL_NUM && k->scope == TEXT_SCOPE_CO && k->def == 8192);
	k = text_key_find("MaxBurstLength", 14);
	ck_assert(k->type == TEXT_T_MIN && k->scope == TEXT_SCOPE_SW && (k->flags & TEXT_F_LO));
	ck_assert(k->min == 512 && k->max == (1u << 24) - 1 && k->def == 262144);
	k = text_key_find("DefaultTime2Wait", 16);
	ck_assert(k->type == TEXT_T_MAX && k->def == 2);
	k = text_key_find("InitialR2T", 10);
	ck_assert(k->type == TEXT_T_OR && k->def == 1);
	k = text_key_find("ImmediateData", 13);
	ck_assert(k->type == TEXT_T_AND && k->def == 1);
	k = text_key_find("TargetAlias", 11);
	ck_assert(k->senders == TEXT_SENDER_T && k->type == TEXT_T_DECL_STR);
	k = text_key_find("AuthMethod", 10);
	ck_assert(k->type == TEXT_T_LIST && (k->flags & TEXT_F_SECURITY));
	k = text_key_find("RDMAExtensions", 14);
	ck_assert(k->type == TEXT_T_AND && k->def == 0 && (k->flags & TEXT_F_LO));
	k = text_key_find("MaxOutstandingUnexpectedPDUs", 28);
	ck_assert(k->type == TEXT_T_DECL_NUM && k->def == 0 && (k->flags & TEXT_F_ZERO_OK));
	k = text_key_find("TargetRecvDataSegmentLength", 27);
	ck_assert(k->type == TEXT_T_MIN && k->def == 8192 && (k->flags & TEXT_F_IRR_RDMA_NO));
}
END_TEST

START_TEST(params_defaults)
{
	struct text_params p;

	text_params_init(&p);
	ck_assert_uint_eq(p.header_digest, TEXT_DIGEST_NONE);
	ck_assert_uint_eq(p.max_recv_dsl, 8192);
	ck_assert_uint_eq(p.max_connections, 1);
	ck_assert(p.initial_r2t && p.immediate_data && p.data_pdu_in_order &&
		  p.data_sequence_in_order && !p.rdma_extensions);
	ck_assert_uint_eq(p.max_burst_length, 262144);
	ck_assert_uint_eq(p.first_burst_length, 65536);
	ck_assert_uint_eq(p.default_time2wait, 2);
	ck_assert_uint_eq(p.default_time2retain, 20);
	ck_assert_uint_eq(p.max_outstanding_r2t, 1);
	ck_assert_uint_eq(p.error_recovery_level, 0);
	ck_assert_uint_eq(p.session_type, TEXT_SESSION_NORMAL);
	ck_assert_uint_eq(p.task_reporting, TEXT_TASKREP_RFC3720);
	ck_assert_uint_eq(p.protocol_level, 1);
	ck_assert_uint_eq(p.target_recv_dsl, 8192);
	ck_assert_uint_eq(p.initiator_recv_dsl, 8192);
	ck_assert_uint_eq(p.max_outstanding_unexp_pdus, 0);
	ck_assert_uint_eq(p.max_ahs_length, 256);
	ck_assert_str_eq(p.target_name, "");
}
END_TEST

/* ---- the responder: one rule per key type ---- */

START_TEST(rule_and)
{
	struct text_neg n;
	struct text_list a;

	target_op(&n);
	ck_assert_int_eq(exchange(&n, &a, "ImmediateData=Yes", NULL), 0);
	ck_assert_str_eq(val(&a, "ImmediateData"), "Yes");
	ck_assert(n.result.immediate_data);
	target_op(&n);
	ck_assert_int_eq(exchange(&n, &a, "ImmediateData=No", NULL), 0);
	ck_assert_str_eq(val(&a, "ImmediateData"), "No");
	ck_assert(!n.result.immediate_data);
	target_op(&n);
	n.local.immediate_data = false;
	ck_assert_int_eq(exchange(&n, &a, "ImmediateData=Yes", NULL), 0);
	ck_assert_str_eq(val(&a, "ImmediateData"), "No");
	target_op(&n);
	ck_assert_int_eq(exchange(&n, &a, "ImmediateData=Maybe", NULL), 0);
	ck_assert_str_eq(val(&a, "ImmediateData"), "Reject");
	ck_assert(n.result.immediate_data);
}
END_TEST

/* RFC 7143 §13.10 example: I->InitialR2T=No, T->InitialR2T=No */
START_TEST(rule_or)
{
	struct text_neg n;
	struct text_list a;

	target_op(&n);
	n.local.initial_r2t = false;
	ck_assert_int_eq(exchange(&n, &a, "InitialR2T=No", NULL), 0);
	ck_assert_str_eq(val(&a, "InitialR2T"), "No");
	ck_assert(!n.result.initial_r2t);
	target_op(&n);
	ck_assert_int_eq(exchange(&n, &a, "InitialR2T=No", NULL), 0);
	ck_assert_str_eq(val(&a, "InitialR2T"), "Yes");
	target_op(&n);
	n.local.initial_r2t = false;
	ck_assert_int_eq(exchange(&n, &a, "InitialR2T=Yes", NULL), 0);
	ck_assert_str_eq(val(&a, "InitialR2T"), "Yes");
}
END_TEST

START_TEST(rule_min)
{
	struct text_neg n;
	struct text_list a;

	target_op(&n);
	ck_assert_int_eq(exchange(&n, &a, "MaxBurstLength=16776192", "MaxConnections=8",
				  "DefaultTime2Retain=0", "MaxOutstandingR2T=0x10", NULL),
			 0);
	ck_assert_str_eq(val(&a, "MaxBurstLength"), "262144");
	ck_assert_str_eq(val(&a, "MaxConnections"), "1");
	ck_assert_str_eq(val(&a, "DefaultTime2Retain"), "0");
	ck_assert_str_eq(val(&a, "MaxOutstandingR2T"), "1");
	ck_assert_uint_eq(n.result.max_burst_length, 262144);
	ck_assert_uint_eq(n.result.default_time2retain, 0);
	target_op(&n);
	ck_assert_int_eq(exchange(&n, &a, "MaxBurstLength=65536", NULL), 0);
	ck_assert_str_eq(val(&a, "MaxBurstLength"), "65536");
	/* out of range: Reject, the value stays (RFC 7143 §6.2.2) */
	target_op(&n);
	ck_assert_int_eq(exchange(&n, &a, "MaxBurstLength=511", "ErrorRecoveryLevel=3", NULL), 0);
	ck_assert_str_eq(val(&a, "MaxBurstLength"), "Reject");
	ck_assert_str_eq(val(&a, "ErrorRecoveryLevel"), "Reject");
	ck_assert_uint_eq(n.result.max_burst_length, 262144);
}
END_TEST

START_TEST(rule_max)
{
	struct text_neg n;
	struct text_list a;

	target_op(&n);
	ck_assert_int_eq(exchange(&n, &a, "DefaultTime2Wait=5", NULL), 0);
	ck_assert_str_eq(val(&a, "DefaultTime2Wait"), "5");
	ck_assert_uint_eq(n.result.default_time2wait, 5);
	target_op(&n);
	ck_assert_int_eq(exchange(&n, &a, "DefaultTime2Wait=0", NULL), 0);
	ck_assert_str_eq(val(&a, "DefaultTime2Wait"), "2");
}
END_TEST

/* RFC 7143 §6.2.1: the first value in the offerer's order we support. */
START_TEST(rule_list)
{
	struct text_neg n;
	struct text_list a;

	target_op(&n);
	n.local.header_digest = TEXT_DIGEST_CRC32C | TEXT_DIGEST_NONE;
	n.local.data_digest = TEXT_DIGEST_CRC32C | TEXT_DIGEST_NONE;
	ck_assert_int_eq(
		exchange(&n, &a, "HeaderDigest=None,CRC32C", "DataDigest=CRC32C,None", NULL), 0);
	ck_assert_str_eq(val(&a, "HeaderDigest"), "None");
	ck_assert_str_eq(val(&a, "DataDigest"), "CRC32C");
	ck_assert_uint_eq(n.result.data_digest, TEXT_DIGEST_CRC32C);
	target_op(&n);
	ck_assert_int_eq(
		exchange(&n, &a, "HeaderDigest=CRC32C", "DataDigest=Y-com.x.md5,None", NULL), 0);
	ck_assert_str_eq(val(&a, "HeaderDigest"), "Reject");
	ck_assert_str_eq(val(&a, "DataDigest"), "None");
	/* RFC 7143 App. B: AuthMethod=KRB5,CHAP,None answered CHAP */
	text_neg_init(&n, TEXT_ROLE_TARGET, true);
	n.local.auth_method = TEXT_AUTH_CHAP;
	ck_assert_int_eq(exchange(&n, &a, "InitiatorName=iqn.1999-07.com.os:hostid.77",
				  "TargetName=iqn.1999-07.com.example:diskarray.sn.88",
				  "AuthMethod=KRB5,CHAP,None", NULL),
			 0);
	ck_assert_str_eq(val(&a, "AuthMethod"), "CHAP");
	ck_assert_uint_eq(a.count, 1);
	ck_assert_str_eq(n.result.initiator_name, "iqn.1999-07.com.os:hostid.77");
	ck_assert_str_eq(n.result.target_name, "iqn.1999-07.com.example:diskarray.sn.88");
	text_neg_init(&n, TEXT_ROLE_TARGET, true);
	n.local.auth_method = TEXT_AUTH_CHAP;
	ck_assert_int_eq(exchange(&n, &a, "AuthMethod=KRB5,SRP,None", NULL), 0);
	ck_assert_str_eq(val(&a, "AuthMethod"), "Reject");
}
END_TEST

/* RFC 7143 §6.2, the example of Irrelevant, whatever the order. */
START_TEST(rule_irrelevant_first_burst)
{
	struct text_neg n;
	struct text_list a;

	target_op(&n);
	n.local.immediate_data = false;
	ck_assert_int_eq(exchange(&n, &a, "FirstBurstLength=4192", "InitialR2T=No",
				  "ImmediateData=Yes", NULL),
			 0);
	ck_assert_str_eq(val(&a, "InitialR2T"), "Yes");
	ck_assert_str_eq(val(&a, "ImmediateData"), "No");
	ck_assert_str_eq(val(&a, "FirstBurstLength"), "Irrelevant");
	ck_assert_uint_eq(n.result.first_burst_length, 65536);
}
END_TEST

/* RFC 7143 §13: keys irrelevant to a Discovery session; §7.4.1 ERL 0. */
START_TEST(rule_irrelevant_discovery)
{
	struct text_neg n;
	struct text_list a;

	text_neg_init(&n, TEXT_ROLE_TARGET, true);
	n.local.error_recovery_level = 2;
	ck_assert_int_eq(exchange(&n, &a, "InitiatorName=iqn.2004-10.com.ubuntu:01:1",
				  "SessionType=Discovery", "AuthMethod=None", NULL),
			 0);
	text_neg_stage(&n, TEXT_STAGE_OPERATIONAL);
	ck_assert_int_eq(exchange(&n, &a, "MaxBurstLength=262144", "MaxConnections=1",
				  "InitialR2T=No", "ImmediateData=Yes", "FirstBurstLength=65536",
				  "MaxOutstandingR2T=1", "DataPDUInOrder=Yes",
				  "DataSequenceInOrder=Yes", "RDMAExtensions=Yes",
				  "DefaultTime2Wait=2", "ErrorRecoveryLevel=2",
				  "MaxRecvDataSegmentLength=32768", NULL),
			 0);
	ck_assert_str_eq(val(&a, "MaxBurstLength"), "Irrelevant");
	ck_assert_str_eq(val(&a, "MaxConnections"), "Irrelevant");
	ck_assert_str_eq(val(&a, "InitialR2T"), "Irrelevant");
	ck_assert_str_eq(val(&a, "ImmediateData"), "Irrelevant");
	ck_assert_str_eq(val(&a, "FirstBurstLength"), "Irrelevant");
	ck_assert_str_eq(val(&a, "MaxOutstandingR2T"), "Irrelevant");
	ck_assert_str_eq(val(&a, "DataPDUInOrder"), "Irrelevant");
	ck_assert_str_eq(val(&a, "DataSequenceInOrder"), "Irrelevant");
	ck_assert_str_eq(val(&a, "RDMAExtensions"), "Irrelevant");
	ck_assert_str_eq(val(&a, "DefaultTime2Wait"), "2");
	ck_assert_str_eq(val(&a, "ErrorRecoveryLevel"), "0");
	ck_assert_ptr_null(val(&a, "MaxRecvDataSegmentLength")); /* declarative */
	ck_assert_uint_eq(n.result.max_recv_dsl, 32768);
	ck_assert_uint_eq(n.result.session_type, TEXT_SESSION_DISCOVERY);
	ck_assert_int_eq(text_neg_check(&n), 0);
}
END_TEST

START_TEST(rule_not_understood_and_obsolete)
{
	struct text_neg n;
	struct text_list a;

	target_op(&n);
	ck_assert_int_eq(exchange(&n, &a, "X-com.example.bar.foo.do_something=3", "FutureKey=1",
				  "IFMarker=No", "OFMarker=No", "OFMarkInt=2048~8192",
				  "IFMarkInt=2048", NULL),
			 0);
	ck_assert_str_eq(val(&a, "X-com.example.bar.foo.do_something"), "NotUnderstood");
	ck_assert_str_eq(val(&a, "FutureKey"), "NotUnderstood");
	/* RFC 7143 §13.25: Reject, never NotUnderstood */
	ck_assert_str_eq(val(&a, "IFMarker"), "Reject");
	ck_assert_str_eq(val(&a, "OFMarker"), "Reject");
	ck_assert_str_eq(val(&a, "OFMarkInt"), "Reject");
	ck_assert_str_eq(val(&a, "IFMarkInt"), "Reject");
}
END_TEST

/* Declarations get no answer; the values are the peer's. */
START_TEST(rule_declarative)
{
	struct text_neg n;
	struct text_list a;

	target_op(&n);
	n.local.max_recv_dsl = 65536;
	ck_assert_int_eq(exchange(&n, &a, "MaxRecvDataSegmentLength=262144",
				  "InitiatorAlias=db host", "X#NodeArchitecture=ExampleOS/v1234",
				  NULL),
			 0);
	ck_assert_uint_eq(a.count, 0);
	ck_assert_uint_eq(n.result.max_recv_dsl, 262144);
	ck_assert_str_eq(n.result.initiator_alias, "db host");
	ck_assert_uint_eq(text_max_send_dsl(&n), 262144);
	ck_assert_uint_eq(text_max_recv_dsl(&n), 65536);
}
END_TEST

/* Each failing case leaves @n and the output as they were. */
static void assert_eproto(struct text_neg *n, ...)
{
	struct text_neg before = *n;
	struct text_list a;
	struct text_buf out;
	va_list ap;
	size_t len;

	va_start(ap, n);
	len = vseg(in_buf, sizeof(in_buf), ap);
	va_end(ap);
	ck_assert_int_eq(text_parse(in_buf, len, 0, &a), 0);
	text_buf_init(&out, out_mem, sizeof(out_mem));
	ck_assert_int_eq(text_append(&out, "X-mark", "1"), 0);
	ck_assert_int_eq(text_respond(n, &a, &out), -EPROTO);
	ck_assert_uint_eq(out.len, 9);
	ck_assert(!memcmp(&before, n, sizeof(*n)));
}

START_TEST(respond_protocol_errors)
{
	struct text_neg n;
	struct text_list a;

	target_op(&n);
	/* RFC 7143 §6.2: reserved constants are no proposals */
	assert_eproto(&n, "MaxBurstLength=8192", "ImmediateData=Irrelevant", NULL);
	assert_eproto(&n, "X-com.example.k=NotUnderstood", NULL);
	/* §6.3: keys of the other stage */
	assert_eproto(&n, "AuthMethod=None", NULL);
	assert_eproto(&n, "CHAP_A=5", NULL);
	assert_eproto(&n, "SendTargets=All", NULL);
	/* senders (§13): TargetAlias is the target's */
	assert_eproto(&n, "TargetAlias=disk", NULL);
	/* a declaration out of range (§13.12) */
	assert_eproto(&n, "MaxRecvDataSegmentLength=511", NULL);
	assert_eproto(&n, "SessionType=Both", NULL);
	/* the security stage takes only its keys (§12) */
	text_neg_init(&n, TEXT_ROLE_TARGET, true);
	assert_eproto(&n, "MaxBurstLength=8192", NULL);
	/* FFP: no login-only keys (§13 "Use") */
	text_neg_stage(&n, TEXT_STAGE_FFP);
	assert_eproto(&n, "MaxBurstLength=8192", NULL);
	assert_eproto(&n, "InitiatorName=iqn.x", NULL);
	/* leading-only keys on a second connection (§13 "LO") */
	text_neg_init(&n, TEXT_ROLE_TARGET, false);
	text_neg_stage(&n, TEXT_STAGE_OPERATIONAL);
	assert_eproto(&n, "MaxBurstLength=8192", NULL);
	ck_assert_int_eq(exchange(&n, &a, "HeaderDigest=None", NULL), 0);
	/* the initiator: the target never sends InitiatorName, nor
	 * TargetName during login (§13.4) */
	text_neg_init(&n, TEXT_ROLE_INITIATOR, true);
	assert_eproto(&n, "InitiatorName=iqn.x", NULL);
	assert_eproto(&n, "TargetName=iqn.x", NULL);
}
END_TEST

/* RFC 7143 §6.3: a key at most once in a login, across PDUs too. */
START_TEST(respond_no_renegotiation)
{
	struct text_neg n;
	struct text_list a;

	target_op(&n);
	ck_assert_int_eq(
		exchange(&n, &a, "MaxBurstLength=65536", "MaxRecvDataSegmentLength=8192", NULL), 0);
	assert_eproto(&n, "MaxBurstLength=8192", NULL);
	assert_eproto(&n, "MaxRecvDataSegmentLength=16384", NULL);
	/* a new Text sequence in full feature phase (§6.4) may redeclare */
	text_neg_stage(&n, TEXT_STAGE_FFP);
	ck_assert_int_eq(exchange(&n, &a, "MaxRecvDataSegmentLength=16384", NULL), 0);
	ck_assert_uint_eq(n.result.max_recv_dsl, 16384);
	text_neg_stage(&n, TEXT_STAGE_FFP);
	ck_assert_int_eq(exchange(&n, &a, "MaxRecvDataSegmentLength=4096", NULL), 0);
	ck_assert_uint_eq(n.result.max_recv_dsl, 4096);
}
END_TEST

/* The same declaration again (libiscsi repeats InitiatorName and
 * SessionType in the operational stage) is ignored; a changed one is
 * still a protocol error. */
START_TEST(respond_same_declaration)
{
	struct text_neg n;
	struct text_list a;

	text_neg_init(&n, TEXT_ROLE_TARGET, true);
	ck_assert_int_eq(
		exchange(&n, &a, "InitiatorName=iqn.2026-11.x:a", "SessionType=Discovery", NULL),
		0);
	text_neg_stage(&n, TEXT_STAGE_OPERATIONAL);
	ck_assert_int_eq(
		exchange(&n, &a, "InitiatorName=iqn.2026-11.x:a", "SessionType=Discovery", NULL),
		0);
	ck_assert_uint_eq(a.count, 0);
	assert_eproto(&n, "InitiatorName=iqn.2026-11.x:b", NULL);
	assert_eproto(&n, "SessionType=Normal", NULL);
}
END_TEST

/* RFC 7143 §6.2: FirstBurstLength <= MaxBurstLength; §13.19. */
START_TEST(respond_integrity)
{
	struct text_neg n;
	struct text_list a;

	target_op(&n);
	n.local.max_burst_length = 65536;
	n.local.first_burst_length = 262144;
	n.local.error_recovery_level = 1;
	n.local.max_outstanding_r2t = 4;
	ck_assert_int_eq(exchange(&n, &a, "FirstBurstLength=262144", "MaxOutstandingR2T=8",
				  "MaxBurstLength=262144", "ErrorRecoveryLevel=2", "InitialR2T=No",
				  NULL),
			 0);
	ck_assert_str_eq(val(&a, "MaxBurstLength"), "65536");
	ck_assert_str_eq(val(&a, "FirstBurstLength"), "65536");
	ck_assert_str_eq(val(&a, "ErrorRecoveryLevel"), "1");
	ck_assert_str_eq(val(&a, "MaxOutstandingR2T"), "1");
	ck_assert_int_eq(text_neg_check(&n), 0);
	n.result.first_burst_length = 131072;
	ck_assert_int_eq(text_neg_check(&n), -EPROTO);
	n.result.first_burst_length = 65536;
	n.result.max_outstanding_r2t = 2;
	ck_assert_int_eq(text_neg_check(&n), -EPROTO);
	n.result.data_sequence_in_order = false;
	ck_assert_int_eq(text_neg_check(&n), 0);
}
END_TEST

/* RFC 7145 §6: iSER keys, the digests, MaxRecvDataSegmentLength. */
START_TEST(respond_rdma)
{
	struct text_neg n;
	struct text_list a;

	target_op(&n);
	n.local.rdma_extensions = true;
	n.local.target_recv_dsl = 65536;
	n.local.initiator_recv_dsl = 262144;
	ck_assert_int_eq(exchange(&n, &a, "HeaderDigest=None", "DataDigest=CRC32C",
				  "MaxRecvDataSegmentLength=262144", "RDMAExtensions=Yes",
				  "TargetRecvDataSegmentLength=262144",
				  "InitiatorRecvDataSegmentLength=131072",
				  "MaxOutstandingUnexpectedPDUs=16", "iSERHelloRequired=Yes", NULL),
			 0);
	ck_assert_str_eq(val(&a, "RDMAExtensions"), "Yes");
	ck_assert_str_eq(val(&a, "HeaderDigest"), "None");
	ck_assert_str_eq(val(&a, "DataDigest"), "Irrelevant");
	ck_assert_str_eq(val(&a, "TargetRecvDataSegmentLength"), "65536");
	ck_assert_str_eq(val(&a, "InitiatorRecvDataSegmentLength"), "131072");
	ck_assert_ptr_null(val(&a, "MaxOutstandingUnexpectedPDUs"));
	ck_assert(n.result.rdma_extensions && n.result.iser_hello_required);
	ck_assert_uint_eq(n.result.data_digest, TEXT_DIGEST_NONE);
	ck_assert_uint_eq(n.result.max_outstanding_unexp_pdus, 16);
	ck_assert_uint_eq(n.result.max_recv_dsl, 8192); /* ignored, §6.2 */
	ck_assert_uint_eq(text_max_send_dsl(&n), 131072);
	ck_assert_uint_eq(text_max_recv_dsl(&n), 65536);
	/* a target without iSER: No, and the iSER keys are irrelevant */
	target_op(&n);
	ck_assert_int_eq(exchange(&n, &a, "RDMAExtensions=Yes", "TargetRecvDataSegmentLength=8192",
				  "MaxOutstandingUnexpectedPDUs=1", NULL),
			 0);
	ck_assert_str_eq(val(&a, "RDMAExtensions"), "No");
	ck_assert_str_eq(val(&a, "TargetRecvDataSegmentLength"), "Irrelevant");
	ck_assert_uint_eq(n.result.max_outstanding_unexp_pdus, 0);
	ck_assert_uint_eq(text_max_send_dsl(&n), 8192);
}
END_TEST

/* CHAP_* and SendTargets are the caller's (RFC 7143 §12.1.3, App. C). */
START_TEST(respond_pass_through)
{
	struct text_neg n;
	struct text_list a;

	text_neg_init(&n, TEXT_ROLE_TARGET, true);
	ck_assert_int_eq(exchange(&n, &a, "CHAP_A=5,7", "CHAP_N=user1", "CHAP_R=0x0102", NULL), 0);
	ck_assert_uint_eq(a.count, 0);
	/* mutual CHAP repeats CHAP_I/CHAP_C in the next PDU: no renegotiation */
	ck_assert_int_eq(exchange(&n, &a, "CHAP_I=1", "CHAP_C=0x0102", NULL), 0);
	ck_assert_int_eq(exchange(&n, &a, "CHAP_I=2", "CHAP_C=0x0304", NULL), 0);
	text_neg_stage(&n, TEXT_STAGE_FFP);
	ck_assert_int_eq(exchange(&n, &a, "SendTargets=All", NULL), 0);
	ck_assert_uint_eq(a.count, 0);
	/* a SendTargets response reaching an initiator's responder is ignored */
	text_neg_init(&n, TEXT_ROLE_INITIATOR, true);
	text_neg_stage(&n, TEXT_STAGE_FFP);
	ck_assert_int_eq(exchange(&n, &a, "TargetName=iqn.1993-11.com.example:diskarray.sn.1",
				  "TargetAddress=10.1.0.45:3000,1", NULL),
			 0);
	ck_assert_uint_eq(a.count, 0);
	ck_assert_str_eq(n.result.target_name, "");
}
END_TEST

/* NotUnderstood answers a declaration only for keys after RFC 7143. */
START_TEST(respond_declaration_answers)
{
	static char mem[4096];
	struct text_neg n;
	struct text_list a;
	struct text_buf out;

	text_neg_init(&n, TEXT_ROLE_INITIATOR, true);
	text_neg_stage(&n, TEXT_STAGE_OPERATIONAL);
	n.local.rdma_extensions = true;
	text_buf_init(&out, mem, sizeof(mem));
	ck_assert_int_eq(text_offer(&n, &out), 0);
	ck_assert_int_eq(exchange(&n, &a, "RDMAExtensions=Yes", "MaxAHSLength=NotUnderstood",
				  "MaxOutstandingUnexpectedPDUs=Irrelevant", NULL),
			 0);
	ck_assert(n.result.rdma_extensions);
	assert_eproto(&n, "MaxRecvDataSegmentLength=NotUnderstood", NULL);
	/* not declared by us: a reserved constant proposed */
	assert_eproto(&n, "TargetAlias=NotUnderstood", NULL);
	/* the target may not declare the initiator's iSER keys */
	assert_eproto(&n, "iSERHelloRequired=No", NULL);
	target_op(&n);
	n.local.rdma_extensions = true;
	assert_eproto(&n, "RDMAExtensions=Yes", "iSERHelloRequired=Maybe", NULL);
}
END_TEST

/* ---- the originator: resolving answers ---- */

static void initiator_offered(struct text_neg *n)
{
	static char mem[4096];
	struct text_buf out;

	text_neg_init(n, TEXT_ROLE_INITIATOR, true);
	text_neg_stage(n, TEXT_STAGE_OPERATIONAL);
	n->local.max_burst_length = 16776192;
	n->local.first_burst_length = 262144;
	n->local.initial_r2t = false;
	n->local.immediate_data = false;
	n->local.default_time2wait = 2;
	n->local.header_digest = TEXT_DIGEST_NONE;
	n->local.protocol_level = 2;
	text_buf_init(&out, mem, sizeof(mem));
	ck_assert_int_eq(text_offer(n, &out), 0);
	ck_assert(text_neg_pending(n));
}

static void assert_resolve(int expect, ...)
{
	struct text_neg n, before;
	struct text_list l;
	va_list ap;
	size_t len;

	initiator_offered(&n);
	before = n;
	va_start(ap, expect);
	len = vseg(in_buf, sizeof(in_buf), ap);
	va_end(ap);
	ck_assert_int_eq(text_parse(in_buf, len, 0, &l), 0);
	ck_assert_int_eq(text_resolve(&n, &l), expect);
	if (expect)
		ck_assert(!memcmp(&before, &n, sizeof(n)));
}

START_TEST(resolve_answers)
{
	struct text_neg n;
	struct text_list a;

	initiator_offered(&n);
	ck_assert_int_eq(exchange(&n, &a, "MaxBurstLength=262144", "FirstBurstLength=65536",
				  "DefaultTime2Wait=5", "InitialR2T=Yes", "ImmediateData=No",
				  "HeaderDigest=None", "MaxConnections=Reject",
				  "DataPDUInOrder=Irrelevant", "iSCSIProtocolLevel=NotUnderstood",
				  "MaxRecvDataSegmentLength=65536", NULL),
			 0);
	ck_assert_uint_eq(a.count, 0);
	ck_assert_uint_eq(n.result.max_burst_length, 262144);
	ck_assert_uint_eq(n.result.first_burst_length, 65536);
	ck_assert_uint_eq(n.result.default_time2wait, 5);
	ck_assert(n.result.initial_r2t && !n.result.immediate_data && n.result.data_pdu_in_order);
	ck_assert_uint_eq(n.result.max_connections, 1);
	ck_assert(n.rejected != 0);
	ck_assert_uint_eq(n.result.protocol_level, 1);
	ck_assert_uint_eq(n.result.max_recv_dsl, 65536);
	/* the answers we did not get yet */
	ck_assert(text_neg_pending(&n));
}
END_TEST

START_TEST(resolve_illegal_answers)
{
	/* Minimum: no more than offered (RFC 7143 §13 "Result function") */
	assert_resolve(-EPROTO, "MaxBurstLength=16777215", NULL);
	assert_resolve(-EPROTO, "FirstBurstLength=262145", NULL);
	/* Maximum: no less than offered */
	assert_resolve(-EPROTO, "DefaultTime2Wait=1", NULL);
	/* out of the key's range */
	assert_resolve(-EPROTO, "MaxBurstLength=256", NULL);
	assert_resolve(-EPROTO, "MaxBurstLength=big", NULL);
	/* AND offered No is No; OR offered Yes is Yes (here: DataPDUInOrder) */
	assert_resolve(-EPROTO, "ImmediateData=Yes", NULL);
	assert_resolve(-EPROTO, "DataPDUInOrder=No", NULL);
	assert_resolve(-EPROTO, "InitialR2T=Maybe", NULL);
	/* lists: one value, one we offered (§6.2.1) */
	assert_resolve(-EPROTO, "HeaderDigest=CRC32C", NULL);
	assert_resolve(-EPROTO, "HeaderDigest=None,CRC32C", NULL);
	/* NotUnderstood for an RFC 7143 key (§6.2) */
	assert_resolve(-EPROTO, "MaxBurstLength=NotUnderstood", NULL);
	/* and the legal ones */
	assert_resolve(0, "MaxBurstLength=512", "DefaultTime2Wait=3600", "InitialR2T=No",
		       "ImmediateData=No", "DataPDUInOrder=Yes", "iSCSIProtocolLevel=1", NULL);
}
END_TEST

/* An answer is taken once; the same key again is a renegotiation. */
START_TEST(resolve_twice)
{
	struct text_neg n;
	struct text_list a;

	initiator_offered(&n);
	ck_assert_int_eq(exchange(&n, &a, "MaxBurstLength=262144", NULL), 0);
	assert_eproto(&n, "MaxBurstLength=8192", NULL);
}
END_TEST

START_TEST(offer_atomic)
{
	struct text_neg n, before;
	struct text_buf out;
	char mem[64];

	text_neg_init(&n, TEXT_ROLE_INITIATOR, true);
	text_neg_stage(&n, TEXT_STAGE_OPERATIONAL);
	before = n;
	text_buf_init(&out, mem, sizeof(mem));
	ck_assert_int_eq(text_offer(&n, &out), -ENOSPC);
	ck_assert_uint_eq(out.len, 0);
	ck_assert(!memcmp(&before, &n, sizeof(n)));
	/* an unterminated name is refused, not read past */
	memset(n.local.initiator_name, 'a', sizeof(n.local.initiator_name));
	text_neg_stage(&n, TEXT_STAGE_SECURITY);
	ck_assert_int_eq(text_offer(&n, &out), -E2BIG);
}
END_TEST

/* ---- a whole login ---- */

struct side {
	struct text_neg n;
	char mem[SEG_MAX];
	struct text_buf out;
	struct text_list in;
};

/* Hand @from's output to @to: resolve, respond, offer; return @to's
 * output length. */
static size_t pass(struct side *from, struct side *to)
{
	ck_assert_int_eq(text_parse(from->out.data, from->out.len, 0, &to->in), 0);
	text_buf_init(&to->out, to->mem, sizeof(to->mem));
	ck_assert_int_eq(text_resolve(&to->n, &to->in), 0);
	ck_assert_int_eq(text_respond(&to->n, &to->in, &to->out), 0);
	ck_assert_int_eq(text_offer(&to->n, &to->out), 0);
	return to->out.len;
}

static void both_stage(struct side *i, struct side *t, enum text_stage stage)
{
	text_neg_stage(&i->n, stage);
	text_neg_stage(&t->n, stage);
	text_buf_init(&i->out, i->mem, sizeof(i->mem));
	ck_assert_int_eq(text_offer(&i->n, &i->out), 0);
}

static void run_login(struct side *i, struct side *t)
{
	int rounds;

	both_stage(i, t, TEXT_STAGE_SECURITY);
	for (rounds = 0; pass(i, t) && rounds < 6; rounds++)
		if (!pass(t, i))
			break;
	ck_assert(!text_neg_pending(&i->n) && !text_neg_pending(&t->n));
	both_stage(i, t, TEXT_STAGE_OPERATIONAL);
	for (rounds = 0; pass(i, t) && rounds < 6; rounds++)
		if (!pass(t, i))
			break;
	ck_assert(!text_neg_pending(&i->n) && !text_neg_pending(&t->n));
	ck_assert_int_eq(text_neg_check(&i->n), 0);
	ck_assert_int_eq(text_neg_check(&t->n), 0);
}

static void assert_same_session(const struct text_params *a, const struct text_params *b)
{
	ck_assert_uint_eq(a->header_digest, b->header_digest);
	ck_assert_uint_eq(a->data_digest, b->data_digest);
	ck_assert_uint_eq(a->auth_method, b->auth_method);
	ck_assert_uint_eq(a->max_connections, b->max_connections);
	ck_assert_uint_eq(a->initial_r2t, b->initial_r2t);
	ck_assert_uint_eq(a->immediate_data, b->immediate_data);
	ck_assert_uint_eq(a->max_burst_length, b->max_burst_length);
	ck_assert_uint_eq(a->first_burst_length, b->first_burst_length);
	ck_assert_uint_eq(a->default_time2wait, b->default_time2wait);
	ck_assert_uint_eq(a->default_time2retain, b->default_time2retain);
	ck_assert_uint_eq(a->max_outstanding_r2t, b->max_outstanding_r2t);
	ck_assert_uint_eq(a->data_pdu_in_order, b->data_pdu_in_order);
	ck_assert_uint_eq(a->data_sequence_in_order, b->data_sequence_in_order);
	ck_assert_uint_eq(a->error_recovery_level, b->error_recovery_level);
	ck_assert_uint_eq(a->task_reporting, b->task_reporting);
	ck_assert_uint_eq(a->protocol_level, b->protocol_level);
	ck_assert_uint_eq(a->rdma_extensions, b->rdma_extensions);
	ck_assert_uint_eq(a->target_recv_dsl, b->target_recv_dsl);
	ck_assert_uint_eq(a->initiator_recv_dsl, b->initiator_recv_dsl);
}

static struct side ini, tgt;

/* An initiator that offers what the Linux one does; a target with its
 * own limits. Both must end with the same session. */
START_TEST(login_exchange)
{
	struct text_params *il = &ini.n.local, *tl = &tgt.n.local;

	text_neg_init(&ini.n, TEXT_ROLE_INITIATOR, true);
	text_neg_init(&tgt.n, TEXT_ROLE_TARGET, true);
	snprintf(il->initiator_name, sizeof(il->initiator_name),
		 "iqn.2004-10.com.ubuntu:01:c0ffee");
	snprintf(il->initiator_alias, sizeof(il->initiator_alias), "host1");
	snprintf(il->target_name, sizeof(il->target_name), "iqn.2024-01.org.iserkit:disk0");
	il->auth_method = TEXT_AUTH_NONE;
	il->header_digest = il->data_digest = TEXT_DIGEST_CRC32C | TEXT_DIGEST_NONE;
	il->initial_r2t = false;
	il->max_burst_length = 16776192;
	il->first_burst_length = 262144;
	il->default_time2retain = 0;
	il->max_recv_dsl = 262144;
	il->max_connections = 1;
	tl->auth_method = TEXT_AUTH_CHAP | TEXT_AUTH_NONE;
	tl->header_digest = TEXT_DIGEST_NONE;
	tl->data_digest = TEXT_DIGEST_CRC32C | TEXT_DIGEST_NONE;
	tl->initial_r2t = false;
	tl->max_burst_length = 1048576;
	tl->first_burst_length = 65536;
	tl->max_connections = 4;
	tl->max_outstanding_r2t = 16;
	tl->max_recv_dsl = 131072;
	tl->default_time2wait = 5;
	tl->target_portal_group_tag = 7;
	snprintf(tl->target_alias, sizeof(tl->target_alias), "disk zero");

	run_login(&ini, &tgt);
	assert_same_session(&ini.n.result, &tgt.n.result);
	ck_assert_uint_eq(ini.n.result.auth_method, TEXT_AUTH_NONE);
	ck_assert_uint_eq(ini.n.result.header_digest, TEXT_DIGEST_NONE);
	ck_assert_uint_eq(ini.n.result.data_digest, TEXT_DIGEST_CRC32C);
	ck_assert(!ini.n.result.initial_r2t && ini.n.result.immediate_data);
	ck_assert_uint_eq(ini.n.result.max_burst_length, 1048576);
	ck_assert_uint_eq(ini.n.result.first_burst_length, 65536);
	ck_assert_uint_eq(ini.n.result.default_time2wait, 5);
	ck_assert_uint_eq(ini.n.result.default_time2retain, 0);
	ck_assert_uint_eq(ini.n.result.max_outstanding_r2t, 1);
	/* declarations went across */
	ck_assert_str_eq(tgt.n.result.initiator_name, "iqn.2004-10.com.ubuntu:01:c0ffee");
	ck_assert_str_eq(tgt.n.result.target_name, "iqn.2024-01.org.iserkit:disk0");
	ck_assert_str_eq(ini.n.result.target_alias, "disk zero");
	ck_assert_uint_eq(ini.n.result.target_portal_group_tag, 7);
	ck_assert_uint_eq(text_max_send_dsl(&ini.n), 131072);
	ck_assert_uint_eq(text_max_send_dsl(&tgt.n), 262144);
	ck_assert_uint_eq(text_max_recv_dsl(&tgt.n), 131072);
}
END_TEST

/* The same over iSER, and a Discovery session. */
START_TEST(login_exchange_iser)
{
	text_neg_init(&ini.n, TEXT_ROLE_INITIATOR, true);
	text_neg_init(&tgt.n, TEXT_ROLE_TARGET, true);
	snprintf(ini.n.local.initiator_name, TEXT_NAME_MAX, "iqn.2004-10.com.ubuntu:01:c0ffee");
	snprintf(ini.n.local.target_name, TEXT_NAME_MAX, "iqn.2024-01.org.iserkit:disk0");
	ini.n.local.rdma_extensions = tgt.n.local.rdma_extensions = true;
	ini.n.local.initiator_recv_dsl = 262144;
	ini.n.local.target_recv_dsl = 262144;
	ini.n.local.max_outstanding_unexp_pdus = 64;
	tgt.n.local.target_recv_dsl = 131072;
	tgt.n.local.initiator_recv_dsl = 1048576;
	tgt.n.local.max_outstanding_unexp_pdus = 0;
	run_login(&ini, &tgt);
	assert_same_session(&ini.n.result, &tgt.n.result);
	ck_assert(ini.n.result.rdma_extensions);
	ck_assert_uint_eq(ini.n.result.target_recv_dsl, 131072);
	ck_assert_uint_eq(ini.n.result.initiator_recv_dsl, 262144);
	ck_assert_uint_eq(tgt.n.result.max_outstanding_unexp_pdus, 64);
	ck_assert_uint_eq(text_max_send_dsl(&ini.n), 131072);
	ck_assert_uint_eq(text_max_recv_dsl(&tgt.n), 131072);
	ck_assert_uint_eq(text_max_send_dsl(&tgt.n), 262144);
	/* what the target saw declared: the initiator's own iSER keys */
	ck_assert(text_neg_recvd(&tgt.n, "MaxOutstandingUnexpectedPDUs"));
	ck_assert(text_neg_recvd(&tgt.n, "InitiatorRecvDataSegmentLength"));
	ck_assert(!text_neg_recvd(&tgt.n, "TargetAlias"));
	ck_assert(!text_neg_recvd(&tgt.n, "NoSuchKey"));

	text_neg_init(&ini.n, TEXT_ROLE_INITIATOR, true);
	text_neg_init(&tgt.n, TEXT_ROLE_TARGET, true);
	snprintf(ini.n.local.initiator_name, TEXT_NAME_MAX, "iqn.2004-10.com.ubuntu:01:c0ffee");
	snprintf(ini.n.local.target_name, TEXT_NAME_MAX, "iqn.unused");
	ini.n.local.session_type = TEXT_SESSION_DISCOVERY;
	ini.n.local.max_burst_length = 1024;
	run_login(&ini, &tgt);
	assert_same_session(&ini.n.result, &tgt.n.result);
	ck_assert_uint_eq(tgt.n.result.session_type, TEXT_SESSION_DISCOVERY);
	ck_assert_str_eq(tgt.n.result.target_name, ""); /* not sent in discovery */
	ck_assert_uint_eq(tgt.n.result.max_burst_length, 262144);
}
END_TEST

static Suite *text_suite(void)
{
	Suite *s = suite_create("text");
	TCase *syn = tcase_create("syntax"), *neg = tcase_create("negotiation");

	tcase_add_test(syn, parse_basic);
	tcase_add_test(syn, parse_padding);
	tcase_add_test(syn, parse_malformed);
	tcase_add_test(syn, parse_empty_sendtargets);
	tcase_add_test(syn, parse_not_nul_separated);
	tcase_add_test(syn, parse_key_length);
	tcase_add_test(syn, parse_value_length);
	tcase_add_test(syn, parse_too_many);
	tcase_add_test(syn, parse_sendtargets_response);
	tcase_add_test(syn, next_streams_long_lists);
	tcase_add_test(syn, build_and_bounds);
	tcase_add_test(syn, round_trip);
	tcase_add_test(syn, numbers);
	tcase_add_test(syn, binary);
	tcase_add_test(syn, value_ranges);
	suite_add_tcase(s, syn);
	tcase_add_test(neg, key_table);
	tcase_add_test(neg, params_defaults);
	tcase_add_test(neg, rule_and);
	tcase_add_test(neg, rule_or);
	tcase_add_test(neg, rule_min);
	tcase_add_test(neg, rule_max);
	tcase_add_test(neg, rule_list);
	tcase_add_test(neg, rule_irrelevant_first_burst);
	tcase_add_test(neg, rule_irrelevant_discovery);
	tcase_add_test(neg, rule_not_understood_and_obsolete);
	tcase_add_test(neg, rule_declarative);
	tcase_add_test(neg, respond_protocol_errors);
	tcase_add_test(neg, respond_no_renegotiation);
	tcase_add_test(neg, respond_same_declaration);
	tcase_add_test(neg, respond_integrity);
	tcase_add_test(neg, respond_rdma);
	tcase_add_test(neg, respond_pass_through);
	tcase_add_test(neg, respond_declaration_answers);
	tcase_add_test(neg, resolve_answers);
	tcase_add_test(neg, resolve_illegal_answers);
	tcase_add_test(neg, resolve_twice);
	tcase_add_test(neg, offer_atomic);
	tcase_add_test(neg, login_exchange);
	tcase_add_test(neg, login_exchange_iser);
	suite_add_tcase(s, neg);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(text_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
