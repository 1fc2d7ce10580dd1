/*
 * Unit tests of the chap module: CHAP for the iSCSI security stage
 * (RFC 7143 §12.1.3, RFC 1994), both sides, through text_buf/text_list
 * as the login code uses them.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/base64.h>
#include <nettle/md5.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

#include "chap.h"

#define INI_USER "iqn.2024-01.org.example:host1"
#define INI_SECRET "initiator-secret"
#define TGT_USER "iqn.2024-01.org.example:tgt"
#define TGT_SECRET "target-secret-2"

/*
 * Known answers, computed with coreutils, not with nettle or chap.c:
 *   printf '<id><secret><challenge>' | md5sum   (or sha256sum)
 * with the identifier and the challenge bytes written as \xHH escapes.
 */

/* printf '\x01initiator-secret\x00\x01\x02...\x0f' | md5sum */
#define KAT_MD5_C "0x000102030405060708090a0b0c0d0e0f"
#define KAT_MD5_C_B64 "0bAAECAwQFBgcICQoLDA0ODw=="
#define KAT_MD5_R "0xb8560a1a75e50351791f3b3e58ec4520"

/* printf '\xa7initiator-secret\xff\xfe\xfd...\xe0' | sha256sum (32 bytes, ff down to e0) */
#define KAT_SHA256_C "0xfffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0"
#define KAT_SHA256_R "0xacb17ef06c59a77514722951feef8e4b595acc4d56e4ddba453accb99e0b079a"

/* The target's mutual answers, secret "target-secret-2":
 * printf '\x09target-secret-2\x10\x11...\x2f' | sha256sum (32 bytes, 10 up to 2f) */
#define KAT_MUT_SHA256_C "0x101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"
#define KAT_MUT_SHA256_R "0x3105253431884fb901ff9cb146fd16fd17a91a7da503a5ed2e7d73dfa22e906d"
/* printf '\x00target-secret-2\xde\xad\xbe\xef\x00\x11\x22...\xbb' | md5sum;
 * the challenge in base64 from: printf '\xde\xad...\xbb' | base64 */
#define KAT_MUT_MD5_C_B64 "0b3q2+7wARIjNEVWZ3iJmquw=="
#define KAT_MUT_MD5_R "0xb64414e79ddaef56b8a6ee6ae7250892"

/*
 * Stands in for nettle's memeql_sec(): the executable's definition wins
 * over libnettle's, so chap.c's calls land here and are counted. It
 * compares without early exit, like the original.
 */
static unsigned int memeql_calls;
static size_t memeql_len;

int memeql_sec(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	uint8_t diff = 0;
	size_t i;

	memeql_calls++;
	memeql_len = n;
	for (i = 0; i < n; i++)
		diff |= (uint8_t)(x[i] ^ y[i]);
	return diff == 0;
}

/* One data segment: built with text_buf, read back through text_list. */
struct seg {
	char mem[4096];
	struct text_buf b;
	struct text_list l;
};

static void seg_init(struct seg *s)
{
	text_buf_init(&s->b, s->mem, sizeof(s->mem));
	s->l.count = 0;
}

static void seg_parse(struct seg *s)
{
	ck_assert_int_eq(text_parse(s->b.data, s->b.len, 0, &s->l), 0);
}

/* A parsed segment of "key=value" strings, NULL-terminated. */
static void seg_set(struct seg *s, ...)
{
	const char *kv;
	char key[TEXT_KEY_MAX + 1];
	const char *eq;
	va_list ap;

	seg_init(s);
	va_start(ap, s);
	while ((kv = va_arg(ap, const char *))) {
		eq = strchr(kv, '=');
		ck_assert_ptr_nonnull(eq);
		ck_assert_uint_le((size_t)(eq - kv), TEXT_KEY_MAX);
		memcpy(key, kv, (size_t)(eq - kv));
		key[eq - kv] = '\0';
		ck_assert_int_eq(text_append(&s->b, key, eq + 1), 0);
	}
	va_end(ap);
	seg_parse(s);
}

/* The value of @key in @s (parsed), or NULL. */
static const char *val(const struct seg *s, const char *key)
{
	const struct text_pair *p = text_list_find(&s->l, key);

	return p ? p->value : NULL;
}

/* Our own response computation, for the target's random challenges. */
static void hex_of(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	out[0] = '0';
	out[1] = 'x';
	for (i = 0; i < n; i++)
		snprintf(out + 2 + 2 * i, 3, "%02x", p[i]);
}

static size_t unhex(const char *s, uint8_t *out, size_t size)
{
	size_t n = 0;
	unsigned int byte;

	ck_assert(s[0] == '0' && s[1] == 'x');
	for (s += 2; *s; s += 2) {
		ck_assert_uint_lt(n, size);
		ck_assert_int_eq(sscanf(s, "%2x", &byte), 1);
		out[n++] = (uint8_t)byte;
	}
	return n;
}

/* "0x..." response to CHAP_I @id_s, CHAP_C @c_hex with @secret, into @out. */
static void response(unsigned int alg, const char *id_s, const char *secret, const char *c_hex,
		     char *out)
{
	uint8_t c[64], d[32], id = (uint8_t)strtoul(id_s, NULL, 10);
	size_t n = unhex(c_hex, c, sizeof(c));
	struct md5_ctx m;
	struct sha256_ctx s;

	if (alg == CHAP_A_MD5) {
		md5_init(&m);
		md5_update(&m, 1, &id);
		md5_update(&m, strlen(secret), (const uint8_t *)secret);
		md5_update(&m, n, c);
		md5_digest(&m, MD5_DIGEST_SIZE, d);
		hex_of(d, MD5_DIGEST_SIZE, out);
	} else {
		sha256_init(&s);
		sha256_update(&s, 1, &id);
		sha256_update(&s, strlen(secret), (const uint8_t *)secret);
		sha256_update(&s, n, c);
		sha256_digest(&s, SHA256_DIGEST_SIZE, d);
		hex_of(d, SHA256_DIGEST_SIZE, out);
	}
}

static void base64_of(const uint8_t *p, size_t n, char *out)
{
	out[0] = '0';
	out[1] = 'b';
	base64_encode_raw(out + 2, n, p);
	out[2 + BASE64_ENCODE_RAW_LENGTH(n)] = '\0';
}

/* ---- known answers ---- */

static void kat_initiator(const char *a, const char *id, const char *c, const char *r)
{
	struct chap_initiator ini;
	struct seg o, in, rsp;
	char ks[3][TEXT_BINARY_MAX * 2 + 16];

	ck_assert_int_eq(
		chap_initiator_init(&ini, CHAP_ALLOW_ALL, INI_USER, INI_SECRET, NULL, NULL), 0);
	seg_init(&o);
	ck_assert_int_eq(chap_initiator_offer(&ini, &o.b), 0);
	snprintf(ks[0], sizeof(ks[0]), "CHAP_A=%s", a);
	snprintf(ks[1], sizeof(ks[1]), "CHAP_I=%s", id);
	snprintf(ks[2], sizeof(ks[2]), "CHAP_C=%s", c);
	seg_set(&in, ks[0], ks[1], ks[2], NULL);
	seg_init(&rsp);
	ck_assert_int_eq(chap_initiator_respond(&ini, &in.l, &rsp.b), 0);
	seg_parse(&rsp);
	ck_assert_uint_eq(rsp.l.count, 2); /* one-way: no CHAP_I/CHAP_C of ours */
	ck_assert_str_eq(val(&rsp, "CHAP_N"), INI_USER);
	ck_assert_str_eq(val(&rsp, "CHAP_R"), r);
}

START_TEST(kat_md5)
{
	kat_initiator("5", "1", KAT_MD5_C, KAT_MD5_R);
}
END_TEST

START_TEST(kat_sha256)
{
	kat_initiator("7", "167", KAT_SHA256_C, KAT_SHA256_R);
}
END_TEST

/* RFC 7143 §6.1: binary-values in base64 ("0b") and upper-case hex;
 * CHAP_I as a hex-constant is a numerical-value too. */
START_TEST(kat_other_encodings)
{
	kat_initiator("5", "1", KAT_MD5_C_B64, KAT_MD5_R);
	kat_initiator("5", "0x01", KAT_MD5_C, KAT_MD5_R);
	kat_initiator("5", "1", "0X000102030405060708090A0B0C0D0E0F", KAT_MD5_R);
}
END_TEST

/* A target that has sent its challenge for @alg (CHAP_A=@alg): CHAP_I and
 * CHAP_C are in @ch, the right CHAP_R of the initiator in @r. */
static void challenged(struct chap_target *t, unsigned int alg, bool mutual, struct seg *ch,
		       char *r)
{
	struct seg in;
	char a[16];

	ck_assert_int_eq(chap_target_init(t, CHAP_ALLOW_ALL, INI_USER, INI_SECRET,
					  mutual ? TGT_USER : NULL, mutual ? TGT_SECRET : NULL),
			 0);
	snprintf(a, sizeof(a), "CHAP_A=%u", alg);
	seg_set(&in, a, NULL);
	seg_init(ch);
	ck_assert_int_eq(chap_target_challenge(t, &in.l, &ch->b), 0);
	seg_parse(ch);
	response(alg, val(ch, "CHAP_I"), INI_SECRET, val(ch, "CHAP_C"), r);
}

static void kat_target(unsigned int alg, const char *id, const char *c, const char *want)
{
	struct chap_target t;
	struct seg ch, in, out;
	char r[80], nr[2][TEXT_BINARY_MAX * 2 + 16];

	challenged(&t, alg, true, &ch, r);
	snprintf(nr[0], sizeof(nr[0]), "CHAP_R=%s", r);
	snprintf(nr[1], sizeof(nr[1]), "CHAP_C=%s", c);
	seg_set(&in, "CHAP_N=" INI_USER, nr[0], id, nr[1], NULL);
	seg_init(&out);
	ck_assert_int_eq(chap_target_verify(&t, &in.l, &out.b), 0);
	seg_parse(&out);
	ck_assert_uint_eq(out.l.count, 2);
	ck_assert_str_eq(val(&out, "CHAP_N"), TGT_USER);
	ck_assert_str_eq(val(&out, "CHAP_R"), want);
	ck_assert(t.mutual);
	ck_assert_int_eq(t.state, CHAP_S_DONE);
}

START_TEST(kat_target_mutual)
{
	kat_target(CHAP_A_SHA256, "CHAP_I=9", KAT_MUT_SHA256_C, KAT_MUT_SHA256_R);
	kat_target(CHAP_A_MD5, "CHAP_I=0", KAT_MUT_MD5_C_B64, KAT_MUT_MD5_R);
}
END_TEST

/* The target also takes the initiator's CHAP_R in base64. */
START_TEST(target_accepts_base64_response)
{
	struct chap_target t;
	struct seg ch, in, out;
	char r[80], b64[80], kv[100];
	uint8_t d[32];

	challenged(&t, CHAP_A_SHA256, false, &ch, r);
	base64_of(d, unhex(r, d, sizeof(d)), b64);
	snprintf(kv, sizeof(kv), "CHAP_R=%s", b64);
	seg_set(&in, "CHAP_N=" INI_USER, kv, NULL);
	seg_init(&out);
	ck_assert_int_eq(chap_target_verify(&t, &in.l, &out.b), 0);
	ck_assert_uint_eq(out.b.len, 0); /* one-way: nothing to say */
}
END_TEST

/* ---- whole exchanges ---- */

struct run {
	uint32_t t_allowed, i_allowed;
	bool mutual;
	unsigned int alg; /* expected choice */
};

static const struct run runs[] = {
	{CHAP_ALLOW_ALL, CHAP_ALLOW_ALL, false, CHAP_A_SHA256},
	{CHAP_ALLOW(CHAP_A_MD5), CHAP_ALLOW_ALL, false, CHAP_A_MD5},
	{CHAP_ALLOW_ALL, CHAP_ALLOW(CHAP_A_MD5), false, CHAP_A_MD5},
	{CHAP_ALLOW_ALL, CHAP_ALLOW_ALL, true, CHAP_A_SHA256},
	{CHAP_ALLOW(CHAP_A_MD5), CHAP_ALLOW_ALL, true, CHAP_A_MD5},
	{CHAP_ALLOW(CHAP_A_SHA256), CHAP_ALLOW_ALL, true, CHAP_A_SHA256},
};

/* Steps 1 to 5 of RFC 7143 §12.1.3, each through a data segment. */
START_TEST(exchange)
{
	const struct run *run = &runs[_i];
	const char *mu = run->mutual ? TGT_USER : NULL, *ms = run->mutual ? TGT_SECRET : NULL;
	struct chap_initiator ini;
	struct chap_target t;
	struct seg s1, s2, s3, s4;

	ck_assert_int_eq(chap_initiator_init(&ini, run->i_allowed, INI_USER, INI_SECRET, mu, ms),
			 0);
	ck_assert_int_eq(
		chap_target_init(&t, run->t_allowed, INI_USER, INI_SECRET, TGT_USER, TGT_SECRET),
		0);
	seg_init(&s1);
	ck_assert_int_eq(chap_initiator_offer(&ini, &s1.b), 0);
	seg_parse(&s1);
	seg_init(&s2);
	ck_assert_int_eq(chap_target_challenge(&t, &s1.l, &s2.b), 0);
	seg_parse(&s2);
	ck_assert_uint_eq(strtoul(val(&s2, "CHAP_A"), NULL, 10), run->alg);
	seg_init(&s3);
	ck_assert_int_eq(chap_initiator_respond(&ini, &s2.l, &s3.b), 0);
	seg_parse(&s3);
	ck_assert_uint_eq(s3.l.count, run->mutual ? 4 : 2);
	seg_init(&s4);
	ck_assert_int_eq(chap_target_verify(&t, &s3.l, &s4.b), 0);
	seg_parse(&s4);
	ck_assert_uint_eq(s4.l.count, run->mutual ? 2 : 0);
	ck_assert_int_eq(chap_initiator_verify(&ini, &s4.l), 0);
	ck_assert_int_eq(t.state, CHAP_S_DONE);
	ck_assert_int_eq(ini.state, CHAP_S_DONE);
	ck_assert_uint_eq(t.alg, run->alg);
	ck_assert_uint_eq(ini.alg, run->alg);
	ck_assert(t.mutual == run->mutual);
}
END_TEST

START_TEST(offer_lists)
{
	struct chap_initiator ini;
	struct seg s;

	ck_assert_int_eq(
		chap_initiator_init(&ini, CHAP_ALLOW_ALL, INI_USER, INI_SECRET, NULL, NULL), 0);
	seg_init(&s);
	ck_assert_int_eq(chap_initiator_offer(&ini, &s.b), 0);
	seg_parse(&s);
	ck_assert_str_eq(val(&s, "CHAP_A"), "7,5");
	ck_assert_int_eq(chap_initiator_offer(&ini, &s.b), -EPROTO);

	ck_assert_int_eq(
		chap_initiator_init(&ini, CHAP_ALLOW(CHAP_A_MD5), INI_USER, INI_SECRET, NULL, NULL),
		0);
	seg_init(&s);
	ck_assert_int_eq(chap_initiator_offer(&ini, &s.b), 0);
	seg_parse(&s);
	ck_assert_str_eq(val(&s, "CHAP_A"), "5");
}
END_TEST

/* ---- the target's step 2 ---- */

struct pick {
	const char *a; /* CHAP_A=..., or NULL: key missing */
	uint32_t allowed;
	int ret;
	unsigned int alg;
};

static const struct pick picks[] = {
	{"CHAP_A=7,5", CHAP_ALLOW_ALL, 0, CHAP_A_SHA256},
	{"CHAP_A=5,7", CHAP_ALLOW_ALL, 0, CHAP_A_MD5}, /* the initiator's order */
	{"CHAP_A=7,5", CHAP_ALLOW(CHAP_A_MD5), 0, CHAP_A_MD5},
	{"CHAP_A=6,8,7", CHAP_ALLOW_ALL, 0, CHAP_A_SHA256}, /* unknown ones skipped */
	{"CHAP_A=0x5", CHAP_ALLOW_ALL, 0, CHAP_A_MD5},	    /* a numerical-value */
	{"CHAP_A=7", CHAP_ALLOW(CHAP_A_MD5), -ENOTSUP, 0},
	{"CHAP_A=6,8,128", CHAP_ALLOW_ALL, -ENOTSUP, 0},
	{"CHAP_A=99999999999999999999999", CHAP_ALLOW_ALL, -EINVAL, 0},
	{"CHAP_A=MD5", CHAP_ALLOW_ALL, -EINVAL, 0},
	{"CHAP_A=5,,7", CHAP_ALLOW_ALL, -EINVAL, 0},
	{"CHAP_A=5,", CHAP_ALLOW_ALL, -EINVAL, 0},
	{"CHAP_A=5,x", CHAP_ALLOW_ALL, -EINVAL, 0}, /* even after a good one */
	{"CHAP_A=05", CHAP_ALLOW_ALL, -EINVAL, 0},
	{"CHAP_A=None", CHAP_ALLOW_ALL, -EINVAL, 0},
	{NULL, CHAP_ALLOW_ALL, -ENOENT, 0},
};

START_TEST(target_picks)
{
	const struct pick *p = &picks[_i];
	struct chap_target t;
	struct seg in, out;
	uint8_t c[64];

	ck_assert_int_eq(chap_target_init(&t, p->allowed, INI_USER, INI_SECRET, NULL, NULL), 0);
	if (p->a)
		seg_set(&in, p->a, NULL);
	else
		seg_set(&in, "CHAP_N=" INI_USER, NULL);
	seg_init(&out);
	ck_assert_int_eq(chap_target_challenge(&t, &in.l, &out.b), p->ret);
	if (p->ret) {
		ck_assert_uint_eq(out.b.len, 0);
		ck_assert_int_eq(chap_target_challenge(&t, &in.l, &out.b), -EPROTO);
		return;
	}
	seg_parse(&out);
	ck_assert_uint_eq(out.l.count, 3);
	ck_assert_uint_eq(strtoul(val(&out, "CHAP_A"), NULL, 10), p->alg);
	ck_assert_ptr_nonnull(val(&out, "CHAP_I"));
	ck_assert_uint_le(strtoul(val(&out, "CHAP_I"), NULL, 10), 255);
	/* challenges as long as the digest */
	ck_assert_uint_eq(unhex(val(&out, "CHAP_C"), c, sizeof(c)), p->alg == CHAP_A_MD5 ? 16 : 32);
	ck_assert_uint_eq(t.challenge_len, p->alg == CHAP_A_MD5 ? 16 : 32);
	ck_assert_int_eq(chap_target_challenge(&t, &in.l, &out.b), -EPROTO);
}
END_TEST

START_TEST(target_challenge_no_space)
{
	struct chap_target t;
	struct seg in;
	struct text_buf b;
	char small[40];

	ck_assert_int_eq(chap_target_init(&t, CHAP_ALLOW_ALL, INI_USER, INI_SECRET, NULL, NULL), 0);
	seg_set(&in, "CHAP_A=7", NULL);
	text_buf_init(&b, small, sizeof(small)); /* CHAP_A and CHAP_I fit, CHAP_C does not */
	ck_assert_int_eq(chap_target_challenge(&t, &in.l, &b), -ENOSPC);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

/* Two logins never see the same challenge (RFC 1994 §2.3). */
START_TEST(challenges_differ)
{
	char seen[8][80];
	struct chap_target t;
	struct seg ch;
	char r[80];
	int i, j;

	for (i = 0; i < 8; i++) {
		challenged(&t, CHAP_A_MD5, false, &ch, r);
		snprintf(seen[i], sizeof(seen[i]), "%s", val(&ch, "CHAP_C"));
		for (j = 0; j < i; j++)
			ck_assert_str_ne(seen[i], seen[j]);
	}
}
END_TEST

/* ---- the target's step 4 ---- */

struct bad {
	const char *what;
	int ret;
	bool mutual_creds;
	const char *kv[4]; /* "@R" is the right CHAP_R, "@C" our own CHAP_C */
};

static const struct bad bads[] = {
	{"no CHAP_N", -ENOENT, true, {"CHAP_R=@R"}},
	{"no CHAP_R", -ENOENT, true, {"CHAP_N=" INI_USER}},
	{"CHAP_I alone", -ENOENT, true, {"CHAP_N=" INI_USER, "CHAP_R=@R", "CHAP_I=3"}},
	{"CHAP_C alone", -ENOENT, true, {"CHAP_N=" INI_USER, "CHAP_R=@R", "CHAP_C=0x0102"}},
	{"R not hex", -EINVAL, true, {"CHAP_N=" INI_USER, "CHAP_R=0xzz"}},
	{"R decimal", -EINVAL, true, {"CHAP_N=" INI_USER, "CHAP_R=12345"}},
	{"R bad base64", -EINVAL, true, {"CHAP_N=" INI_USER, "CHAP_R=0b!!!!"}},
	{"R short", -EINVAL, true, {"CHAP_N=" INI_USER, "CHAP_R=0x00112233445566778899aabbccddee"}},
	{"R long",
	 -EINVAL,
	 true,
	 {"CHAP_N=" INI_USER, "CHAP_R=0x00112233445566778899aabbccddeeff00"}},
	{"R very long", -EINVAL, true, {"CHAP_N=" INI_USER, "CHAP_R=" KAT_SHA256_C "00"}},
	{"I too big",
	 -EINVAL,
	 true,
	 {"CHAP_N=" INI_USER, "CHAP_R=@R", "CHAP_I=256", "CHAP_C=0x01"}},
	{"I not a number",
	 -EINVAL,
	 true,
	 {"CHAP_N=" INI_USER, "CHAP_R=@R", "CHAP_I=x", "CHAP_C=0x01"}},
	{"I negative",
	 -EINVAL,
	 true,
	 {"CHAP_N=" INI_USER, "CHAP_R=@R", "CHAP_I=-1", "CHAP_C=0x01"}},
	{"C not hex", -EINVAL, true, {"CHAP_N=" INI_USER, "CHAP_R=@R", "CHAP_I=1", "CHAP_C=0xq1"}},
	{"C empty", -EINVAL, true, {"CHAP_N=" INI_USER, "CHAP_R=@R", "CHAP_I=1", "CHAP_C=0x"}},
	{"C reflected", -ELOOP, true, {"CHAP_N=" INI_USER, "CHAP_R=@R", "CHAP_I=1", "CHAP_C=@C"}},
	{"mutual, no creds",
	 -ENOKEY,
	 false,
	 {"CHAP_N=" INI_USER, "CHAP_R=@R", "CHAP_I=1", "CHAP_C=0x0102"}},
	{"wrong name", -EPERM, true, {"CHAP_N=iqn.2024-01.org.example:host2", "CHAP_R=@R"}},
	{"name prefix", -EPERM, true, {"CHAP_N=iqn.2024-01.org.example:host", "CHAP_R=@R"}},
	{"name longer", -EPERM, true, {"CHAP_N=" INI_USER "1", "CHAP_R=@R"}},
	{"wrong response", -EACCES, true, {"CHAP_N=" INI_USER, "CHAP_R=@W"}},
	{"zero response",
	 -EACCES,
	 true,
	 {"CHAP_N=" INI_USER, "CHAP_R=0x00000000000000000000000000000000"}},
};

/* Change hex digit *@c into another hex digit. */
static void flip_hex(char *c)
{
	*c = *c == '0' ? '1' : '0';
}

/* @kv with its placeholders filled in. */
static void fill(char *out, size_t size, const char *kv, const char *r, const char *c)
{
	char w[80];

	if (strstr(kv, "@R")) {
		snprintf(out, size, "CHAP_R=%s", r);
	} else if (strstr(kv, "@W")) {
		/* the right response with its last digit changed */
		snprintf(w, sizeof(w), "%s", r);
		flip_hex(&w[strlen(w) - 1]);
		snprintf(out, size, "CHAP_R=%s", w);
	} else if (strstr(kv, "@C")) {
		snprintf(out, size, "CHAP_C=%s", c);
	} else {
		snprintf(out, size, "%s", kv);
	}
}

START_TEST(target_verify_errors)
{
	const struct bad *bad = &bads[_i];
	char kv[4][TEXT_BINARY_MAX * 2 + 16], r[80];
	struct chap_target t;
	struct seg ch, in, out;
	int i;

	challenged(&t, CHAP_A_MD5, bad->mutual_creds, &ch, r);
	for (i = 0; i < 4; i++)
		if (bad->kv[i])
			fill(kv[i], sizeof(kv[i]), bad->kv[i], r, val(&ch, "CHAP_C"));
	seg_set(&in, bad->kv[0] ? kv[0] : NULL, bad->kv[1] ? kv[1] : NULL,
		bad->kv[2] ? kv[2] : NULL, bad->kv[3] ? kv[3] : NULL, NULL);
	seg_init(&out);
	ck_assert_msg(chap_target_verify(&t, &in.l, &out.b) == bad->ret, "%s", bad->what);
	ck_assert_uint_eq(out.b.len, 0);
	ck_assert_int_eq(t.state, CHAP_S_FAILED);
	/* One answer per challenge: the right one is refused now. */
	snprintf(kv[0], sizeof(kv[0]), "CHAP_R=%s", r);
	seg_set(&in, "CHAP_N=" INI_USER, kv[0], NULL);
	ck_assert_int_eq(chap_target_verify(&t, &in.l, &out.b), -EPROTO);
}
END_TEST

/* The reflection check also sees through another encoding (base64). */
START_TEST(target_reflected_base64)
{
	char kv[2][100], b64[80], r[80];
	struct chap_target t;
	struct seg ch, in, out;
	uint8_t c[32];

	challenged(&t, CHAP_A_SHA256, true, &ch, r);
	base64_of(c, unhex(val(&ch, "CHAP_C"), c, sizeof(c)), b64);
	snprintf(kv[0], sizeof(kv[0]), "CHAP_R=%s", r);
	snprintf(kv[1], sizeof(kv[1]), "CHAP_C=%s", b64);
	seg_set(&in, "CHAP_N=" INI_USER, kv[0], "CHAP_I=4", kv[1], NULL);
	seg_init(&out);
	ck_assert_int_eq(chap_target_verify(&t, &in.l, &out.b), -ELOOP);
}
END_TEST

/* RFC 7143 §12.1.3: CHAP_C may be up to 1024 bytes, not more. */
START_TEST(target_challenge_lengths)
{
	static char big[2][1500];
	char kv[100], r[80];
	uint8_t c[1025];
	struct chap_target t;
	struct seg ch, in, out;
	size_t n;

	for (n = 0; n < sizeof(c); n++)
		c[n] = (uint8_t)n;
	for (n = 0; n < 2; n++) {
		memcpy(big[n], "CHAP_C=", 7);
		base64_of(c, 1024 + n, big[n] + 7);
	}
	for (n = 0; n < 2; n++) {
		challenged(&t, CHAP_A_MD5, true, &ch, r);
		snprintf(kv, sizeof(kv), "CHAP_R=%s", r);
		seg_set(&in, "CHAP_N=" INI_USER, kv, "CHAP_I=255", big[n], NULL);
		seg_init(&out);
		ck_assert_int_eq(chap_target_verify(&t, &in.l, &out.b), n ? -EINVAL : 0);
	}
}
END_TEST

START_TEST(target_verify_no_space)
{
	char kv[100], r[80], small[60];
	struct chap_target t;
	struct seg ch, in;
	struct text_buf b;

	challenged(&t, CHAP_A_SHA256, true, &ch, r);
	snprintf(kv, sizeof(kv), "CHAP_R=%s", r);
	seg_set(&in, "CHAP_N=" INI_USER, kv, "CHAP_I=1", "CHAP_C=0x0102", NULL);
	text_buf_init(&b, small, sizeof(small)); /* CHAP_N fits, CHAP_R does not */
	ck_assert_int_eq(chap_target_verify(&t, &in.l, &b), -ENOSPC);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(target_out_of_order)
{
	struct chap_target t;
	struct seg in, out;

	ck_assert_int_eq(chap_target_init(&t, CHAP_ALLOW_ALL, INI_USER, INI_SECRET, NULL, NULL), 0);
	seg_set(&in, "CHAP_N=" INI_USER, "CHAP_R=" KAT_MD5_R, NULL);
	seg_init(&out);
	ck_assert_int_eq(chap_target_verify(&t, &in.l, &out.b), -EPROTO);
}
END_TEST

/* ---- constant-time compare ---- */

START_TEST(constant_time_compare)
{
	char kv[100], r[80], w[80];
	struct chap_target t;
	struct seg ch, in, out;

	memeql_calls = 0;
	challenged(&t, CHAP_A_SHA256, false, &ch, r);
	snprintf(kv, sizeof(kv), "CHAP_R=%s", r);
	seg_set(&in, "CHAP_N=" INI_USER, kv, NULL);
	seg_init(&out);
	ck_assert_int_eq(chap_target_verify(&t, &in.l, &out.b), 0);
	ck_assert_uint_eq(memeql_calls, 1);
	ck_assert_uint_eq(memeql_len, 32);

	challenged(&t, CHAP_A_MD5, false, &ch, r);
	snprintf(w, sizeof(w), "%s", r);
	flip_hex(&w[2]); /* first byte wrong: still one full-length compare */
	snprintf(kv, sizeof(kv), "CHAP_R=%s", w);
	seg_set(&in, "CHAP_N=" INI_USER, kv, NULL);
	ck_assert_int_eq(chap_target_verify(&t, &in.l, &out.b), -EACCES);
	ck_assert_uint_eq(memeql_calls, 2);
	ck_assert_uint_eq(memeql_len, 16);
}
END_TEST

/* ---- configuration ---- */

START_TEST(init_errors)
{
	static char long_name[TEXT_VALUE_MAX + 2], long_secret[CHAP_SECRET_MAX + 2];
	struct chap_initiator ini;
	struct chap_target t;
	const uint32_t all = CHAP_ALLOW_ALL;

	memset(long_name, 'n', sizeof(long_name) - 1);
	memset(long_secret, 's', sizeof(long_secret) - 1);
	ck_assert_int_eq(chap_target_init(&t, 0, INI_USER, INI_SECRET, NULL, NULL), -EINVAL);
	ck_assert_int_eq(
		chap_target_init(&t, all | CHAP_ALLOW(6), INI_USER, INI_SECRET, NULL, NULL),
		-EINVAL);
	ck_assert_int_eq(chap_target_init(&t, all, NULL, INI_SECRET, NULL, NULL), -EINVAL);
	ck_assert_int_eq(chap_target_init(&t, all, "", INI_SECRET, NULL, NULL), -EINVAL);
	ck_assert_int_eq(chap_target_init(&t, all, "a\nb", INI_SECRET, NULL, NULL), -EINVAL);
	ck_assert_int_eq(chap_target_init(&t, all, long_name, INI_SECRET, NULL, NULL), -EINVAL);
	long_name[TEXT_VALUE_MAX] = '\0';
	ck_assert_int_eq(chap_target_init(&t, all, long_name, INI_SECRET, NULL, NULL), 0);
	ck_assert_int_eq(chap_target_init(&t, all, INI_USER, NULL, NULL, NULL), -EINVAL);
	/* RFC 7143 §9.2.1: 96 bits at least */
	ck_assert_int_eq(chap_target_init(&t, all, INI_USER, "12345678901", NULL, NULL), -EINVAL);
	ck_assert_int_eq(chap_target_init(&t, all, INI_USER, "123456789012", NULL, NULL), 0);
	ck_assert_int_eq(chap_target_init(&t, all, INI_USER, long_secret, NULL, NULL), -EINVAL);
	long_secret[CHAP_SECRET_MAX] = '\0';
	ck_assert_int_eq(chap_target_init(&t, all, INI_USER, long_secret, NULL, NULL), 0);
	ck_assert_int_eq(chap_target_init(&t, all, INI_USER, INI_SECRET, TGT_USER, NULL), -EINVAL);
	ck_assert_int_eq(chap_target_init(&t, all, INI_USER, INI_SECRET, NULL, TGT_SECRET),
			 -EINVAL);
	ck_assert_int_eq(chap_target_init(&t, all, INI_USER, INI_SECRET, "", TGT_SECRET), -EINVAL);
	ck_assert_int_eq(chap_target_init(&t, all, INI_USER, INI_SECRET, TGT_USER, "short"),
			 -EINVAL);
	/* RFC 7143 §9.2.1: one secret per direction */
	ck_assert_int_eq(chap_target_init(&t, all, INI_USER, INI_SECRET, TGT_USER, INI_SECRET),
			 -EINVAL);
	ck_assert_int_eq(chap_initiator_init(&ini, all, INI_USER, INI_SECRET, TGT_USER, INI_SECRET),
			 -EINVAL);
	/* RFC 7143 §12.1.3: an initiator always offers MD5 */
	ck_assert_int_eq(chap_initiator_init(&ini, CHAP_ALLOW(CHAP_A_SHA256), INI_USER, INI_SECRET,
					     NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(chap_initiator_init(&ini, 0, INI_USER, INI_SECRET, NULL, NULL), -EINVAL);
	ck_assert_int_eq(chap_initiator_init(&ini, all, INI_USER, "short", NULL, NULL), -EINVAL);
	ck_assert_int_eq(chap_initiator_init(&ini, all, INI_USER, INI_SECRET, TGT_USER, NULL),
			 -EINVAL);
}
END_TEST

/* ---- the initiator's steps 3 and 5 ---- */

struct ibad {
	uint32_t allowed;
	const char *kv[3];
	int ret;
};

static const struct ibad ibads[] = {
	{CHAP_ALLOW_ALL, {"CHAP_A=Reject", "CHAP_I=1", "CHAP_C=" KAT_MD5_C}, -ENOTSUP},
	{CHAP_ALLOW_ALL, {"CHAP_A=6", "CHAP_I=1", "CHAP_C=" KAT_MD5_C}, -ENOTSUP},
	{CHAP_ALLOW(CHAP_A_MD5), {"CHAP_A=7", "CHAP_I=1", "CHAP_C=" KAT_MD5_C}, -ENOTSUP},
	{CHAP_ALLOW_ALL, {"CHAP_A=7,5", "CHAP_I=1", "CHAP_C=" KAT_MD5_C}, -EINVAL},
	{CHAP_ALLOW_ALL, {"CHAP_A=5", "CHAP_I=300", "CHAP_C=" KAT_MD5_C}, -EINVAL},
	{CHAP_ALLOW_ALL, {"CHAP_A=5", "CHAP_I=1", "CHAP_C=0xg0"}, -EINVAL},
	{CHAP_ALLOW_ALL, {"CHAP_A=5", "CHAP_I=1", "CHAP_C=0b="}, -EINVAL},
	{CHAP_ALLOW_ALL, {"CHAP_I=1", "CHAP_C=" KAT_MD5_C}, -ENOENT},
	{CHAP_ALLOW_ALL, {"CHAP_A=5", "CHAP_C=" KAT_MD5_C}, -ENOENT},
	{CHAP_ALLOW_ALL, {"CHAP_A=5", "CHAP_I=1"}, -ENOENT},
	{CHAP_ALLOW_ALL, {"CHAP_A=5"}, -ENOENT},
};

START_TEST(initiator_respond_errors)
{
	const struct ibad *b = &ibads[_i];
	struct chap_initiator ini;
	struct seg o, in, out;

	ck_assert_int_eq(
		chap_initiator_init(&ini, b->allowed, INI_USER, INI_SECRET, TGT_USER, TGT_SECRET),
		0);
	seg_set(&in, b->kv[0], b->kv[1], b->kv[2], NULL);
	seg_init(&out);
	ck_assert_int_eq(chap_initiator_respond(&ini, &in.l, &out.b), -EPROTO); /* no offer yet */
	seg_init(&o);
	ck_assert_int_eq(chap_initiator_offer(&ini, &o.b), 0);
	ck_assert_int_eq(chap_initiator_respond(&ini, &in.l, &out.b), b->ret);
	ck_assert_uint_eq(out.b.len, 0);
	ck_assert_int_eq(chap_initiator_verify(&ini, &in.l), -EPROTO);
}
END_TEST

/* An initiator doing mutual CHAP, after step 3 of a known challenge;
 * its own CHAP_I and CHAP_C are in @rsp. */
static void mutual_initiator(struct chap_initiator *ini, struct seg *rsp)
{
	struct seg o, in;

	ck_assert_int_eq(chap_initiator_init(ini, CHAP_ALLOW_ALL, INI_USER, INI_SECRET, TGT_USER,
					     TGT_SECRET),
			 0);
	seg_init(&o);
	ck_assert_int_eq(chap_initiator_offer(ini, &o.b), 0);
	seg_set(&in, "CHAP_A=5", "CHAP_I=1", "CHAP_C=" KAT_MD5_C, NULL);
	seg_init(rsp);
	ck_assert_int_eq(chap_initiator_respond(ini, &in.l, &rsp->b), 0);
	seg_parse(rsp);
	ck_assert_uint_eq(rsp->l.count, 4);
	ck_assert_str_eq(val(rsp, "CHAP_R"), KAT_MD5_R);
	ck_assert_uint_eq(ini->challenge_len, 16);
	/* RFC 7143 §9.2.1: not the target's challenge */
	ck_assert_str_ne(val(rsp, "CHAP_C"), KAT_MD5_C);
}

START_TEST(initiator_verify_errors)
{
	static const struct {
		const char *n;
		const char *r; /* NULL: right response; "": missing */
		int ret;
	} cases[] = {
		{"CHAP_N=" TGT_USER, NULL, 0},
		{"CHAP_N=" INI_USER, NULL, -EPERM},
		{"CHAP_N=" TGT_USER, KAT_MD5_R, -EACCES},
		{"CHAP_N=" TGT_USER, "0x0011", -EINVAL},
		{"CHAP_N=" TGT_USER, "", -ENOENT},
		{"CHAP_X=" TGT_USER, NULL, -ENOENT},
	};
	char r[80], kv[100];
	struct chap_initiator ini;
	struct seg rsp, in;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mutual_initiator(&ini, &rsp);
		response(CHAP_A_MD5, val(&rsp, "CHAP_I"), TGT_SECRET, val(&rsp, "CHAP_C"), r);
		snprintf(kv, sizeof(kv), "CHAP_R=%s", cases[i].r ? cases[i].r : r);
		if (cases[i].r && !*cases[i].r)
			seg_set(&in, cases[i].n, NULL);
		else
			seg_set(&in, cases[i].n, kv, NULL);
		ck_assert_int_eq(chap_initiator_verify(&ini, &in.l), cases[i].ret);
		ck_assert_int_eq(ini.state, cases[i].ret ? CHAP_S_FAILED : CHAP_S_DONE);
		ck_assert_int_eq(chap_initiator_verify(&ini, &in.l), -EPROTO);
	}
}
END_TEST

/* One-way: step 5 has nothing to check. */
START_TEST(initiator_one_way_verify)
{
	struct chap_initiator ini;
	struct seg o, in, rsp, empty;

	ck_assert_int_eq(
		chap_initiator_init(&ini, CHAP_ALLOW_ALL, INI_USER, INI_SECRET, NULL, NULL), 0);
	seg_init(&o);
	ck_assert_int_eq(chap_initiator_offer(&ini, &o.b), 0);
	seg_set(&in, "CHAP_A=7", "CHAP_I=167", "CHAP_C=" KAT_SHA256_C, NULL);
	seg_init(&rsp);
	ck_assert_int_eq(chap_initiator_respond(&ini, &in.l, &rsp.b), 0);
	seg_init(&empty);
	ck_assert_int_eq(chap_initiator_verify(&ini, &empty.l), 0);
	ck_assert_int_eq(ini.state, CHAP_S_DONE);
}
END_TEST

START_TEST(initiator_respond_no_space)
{
	struct chap_initiator ini;
	struct seg o, in;
	struct text_buf b;
	char small[90];

	ck_assert_int_eq(chap_initiator_init(&ini, CHAP_ALLOW_ALL, INI_USER, INI_SECRET, TGT_USER,
					     TGT_SECRET),
			 0);
	seg_init(&o);
	ck_assert_int_eq(chap_initiator_offer(&ini, &o.b), 0);
	seg_set(&in, "CHAP_A=5", "CHAP_I=1", "CHAP_C=" KAT_MD5_C, NULL);
	text_buf_init(&b, small, sizeof(small)); /* CHAP_N and CHAP_R fit, CHAP_C does not */
	ck_assert_int_eq(chap_initiator_respond(&ini, &in.l, &b), -ENOSPC);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

/* Mutual challenges of two initiators differ, too. */
START_TEST(initiator_challenges_differ)
{
	struct chap_initiator a, b;
	struct seg ra, rb;

	mutual_initiator(&a, &ra);
	mutual_initiator(&b, &rb);
	ck_assert_str_ne(val(&ra, "CHAP_C"), val(&rb, "CHAP_C"));
}
END_TEST

static Suite *chap_suite(void)
{
	Suite *s = suite_create("chap");
	TCase *kat = tcase_create("known answers"), *tgt = tcase_create("target"),
	      *ini = tcase_create("initiator");

	tcase_add_test(kat, kat_md5);
	tcase_add_test(kat, kat_sha256);
	tcase_add_test(kat, kat_other_encodings);
	tcase_add_test(kat, kat_target_mutual);
	tcase_add_loop_test(kat, exchange, 0, sizeof(runs) / sizeof(runs[0]));
	suite_add_tcase(s, kat);
	tcase_add_test(tgt, init_errors);
	tcase_add_loop_test(tgt, target_picks, 0, sizeof(picks) / sizeof(picks[0]));
	tcase_add_test(tgt, target_challenge_no_space);
	tcase_add_test(tgt, challenges_differ);
	tcase_add_test(tgt, target_accepts_base64_response);
	tcase_add_loop_test(tgt, target_verify_errors, 0, sizeof(bads) / sizeof(bads[0]));
	tcase_add_test(tgt, target_reflected_base64);
	tcase_add_test(tgt, target_challenge_lengths);
	tcase_add_test(tgt, target_verify_no_space);
	tcase_add_test(tgt, target_out_of_order);
	tcase_add_test(tgt, constant_time_compare);
	suite_add_tcase(s, tgt);
	tcase_add_test(ini, offer_lists);
	tcase_add_loop_test(ini, initiator_respond_errors, 0, sizeof(ibads) / sizeof(ibads[0]));
	tcase_add_test(ini, initiator_verify_errors);
	tcase_add_test(ini, initiator_one_way_verify);
	tcase_add_test(ini, initiator_respond_no_space);
	tcase_add_test(ini, initiator_challenges_differ);
	suite_add_tcase(s, ini);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(chap_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
