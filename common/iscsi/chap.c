/*
 * chap: CHAP authentication for the iSCSI security stage (RFC 7143
 * §12.1.3, RFC 1994). Digests and the constant-time compare come from
 * nettle, randomness from getrandom(2).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <nettle/md5.h>
#include <nettle/memops.h>
#include <nettle/nettle-meta.h>
#include <nettle/sha2.h>

#include "chap.h"

/* One CHAP_A value: its number and nettle's description of the hash. */
struct chap_alg {
	uint8_t number;
	const struct nettle_hash *hash;
};

/* Strongest first: the order of the initiator's offer. */
static const struct chap_alg chap_algs[] = {
	{.number = CHAP_A_SHA256, .hash = &nettle_sha256},
	{.number = CHAP_A_MD5, .hash = &nettle_md5},
};

#define N_ALGS (sizeof(chap_algs) / sizeof(chap_algs[0]))

/* A challenge from the peer, with its identifier. */
struct chap_challenge {
	uint8_t id;
	size_t len;
	uint8_t data[TEXT_BINARY_MAX];
};

static const struct chap_alg *alg_find(uint64_t number, uint32_t allowed)
{
	size_t i;

	for (i = 0; i < N_ALGS; i++)
		if (chap_algs[i].number == number && (allowed & CHAP_ALLOW(number)))
			return &chap_algs[i];
	return NULL;
}

static uint32_t alg_mask(void)
{
	uint32_t mask = 0;
	size_t i;

	for (i = 0; i < N_ALGS; i++)
		mask |= CHAP_ALLOW(chap_algs[i].number);
	return mask;
}

static size_t alg_len(const struct chap_alg *a)
{
	return a->hash->digest_size;
}

/* RFC 1994 §4.1: Response = H(Identifier || secret || Challenge). */
static void chap_hash(const struct chap_alg *a, uint8_t id, const char *secret,
		      const uint8_t *challenge, size_t len, uint8_t *out)
{
	union {
		struct md5_ctx md5;
		struct sha256_ctx sha256;
	} ctx;

	a->hash->init(&ctx);
	a->hash->update(&ctx, 1, &id);
	a->hash->update(&ctx, strlen(secret), (const uint8_t *)secret);
	a->hash->update(&ctx, len, challenge);
	a->hash->digest(&ctx, a->hash->digest_size, out);
	/* The state holds what was hashed after the secret. */
	explicit_bzero(&ctx, sizeof(ctx));
}

static int chap_random(void *buf, size_t len)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- configuration ---- */

/* A CHAP_N we send or expect: a simple-value (RFC 7143 §6.1). */
static bool name_ok(const char *s)
{
	size_t len, i;

	if (!s)
		return false;
	len = strlen(s);
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return len && len <= TEXT_VALUE_MAX;
}

static bool secret_ok(const char *s)
{
	size_t len = s ? strlen(s) : 0;

	return len >= CHAP_SECRET_MIN && len <= CHAP_SECRET_MAX;
}

static int check_config(uint32_t allowed, const char *user, const char *secret,
			const char *mutual_user, const char *mutual_secret)
{
	if (!allowed || (allowed & ~alg_mask()))
		return -EINVAL;
	if (!name_ok(user) || !secret_ok(secret))
		return -EINVAL;
	if (!mutual_user && !mutual_secret)
		return 0;
	if (!name_ok(mutual_user) || !secret_ok(mutual_secret))
		return -EINVAL;
	/* RFC 7143 §9.2.1: a secret never authenticates both directions. */
	return strcmp(secret, mutual_secret) ? 0 : -EINVAL;
}

/* ---- values on the wire ---- */

static int read_id(const struct text_pair *p, uint8_t *id)
{
	uint64_t v;

	/* RFC 1994 §4.1: the Identifier is one octet. */
	if (text_parse_number(p->value, p->value_len, &v) || v > 255)
		return -EINVAL;
	*id = (uint8_t)v;
	return 0;
}

/*
 * CHAP_I and CHAP_C into @c. *@present says whether they were there;
 * one without the other is -ENOENT.
 */
static int read_challenge(const struct text_list *in, struct chap_challenge *c, bool *present)
{
	const struct text_pair *i = text_list_find(in, "CHAP_I");
	const struct text_pair *v = text_list_find(in, "CHAP_C");
	int err;

	*present = i || v;
	if (!i || !v)
		return *present ? -ENOENT : 0;
	err = read_id(i, &c->id);
	if (err)
		return err;
	/* RFC 7143 §12.1.3: at most 1024 bytes, hex or base64. */
	if (text_decode_binary(v->value, v->value_len, c->data, sizeof(c->data), &c->len))
		return -EINVAL;
	return 0;
}

/* CHAP_N and CHAP_R, the latter exactly one digest of @a long. */
static int read_response(const struct text_list *in, const struct chap_alg *a,
			 const struct text_pair **name, uint8_t *r)
{
	const struct text_pair *v = text_list_find(in, "CHAP_R");
	size_t len;

	*name = text_list_find(in, "CHAP_N");
	if (!*name || !v)
		return -ENOENT;
	if (text_decode_binary(v->value, v->value_len, r, CHAP_DIGEST_MAX, &len) ||
	    len != alg_len(a))
		return -EINVAL;
	return 0;
}

static bool name_is(const struct text_pair *p, const char *name)
{
	return p->value_len == strlen(name) && !memcmp(p->value, name, p->value_len);
}

/* Is @r the response to (@id, @c) with @secret? */
static int check_response(const struct chap_alg *a, uint8_t id, const char *secret,
			  const uint8_t *c, size_t len, const uint8_t *r)
{
	uint8_t want[CHAP_DIGEST_MAX];
	int equal;

	chap_hash(a, id, secret, c, len, want);
	/* Constant time: a timing oracle would let a peer build R byte by byte. */
	equal = memeql_sec(want, r, alg_len(a));
	explicit_bzero(want, sizeof(want));
	return equal ? 0 : -EACCES;
}

/* RFC 7143 §6.1 binary-value: we send hex-constants. */
static void hex_encode(const uint8_t *p, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	out[0] = '0';
	out[1] = 'x';
	for (i = 0; i < len; i++) {
		out[2 + 2 * i] = digits[p[i] >> 4];
		out[3 + 2 * i] = digits[p[i] & 0xf];
	}
	out[2 + 2 * len] = '\0';
}

static int append_number(struct text_buf *out, const char *key, unsigned int v)
{
	char s[12];

	snprintf(s, sizeof(s), "%u", v);
	return text_append(out, key, s);
}

static int append_binary(struct text_buf *out, const char *key, const uint8_t *p, size_t len)
{
	char s[2 + 2 * CHAP_DIGEST_MAX + 1];
	int err;

	hex_encode(p, len, s);
	err = text_append(out, key, s);
	explicit_bzero(s, sizeof(s));
	return err;
}

/* CHAP_I and CHAP_C. */
static int append_challenge(struct text_buf *out, uint8_t id, const uint8_t *c, size_t len)
{
	int err = append_number(out, "CHAP_I", id);

	return err ? err : append_binary(out, "CHAP_C", c, len);
}

/* CHAP_N=@name and CHAP_R, our response to @c with @secret. */
static int append_response(struct text_buf *out, const struct chap_alg *a, const char *name,
			   const char *secret, const struct chap_challenge *c)
{
	uint8_t r[CHAP_DIGEST_MAX];
	int err;

	err = text_append(out, "CHAP_N", name);
	if (err)
		return err;
	chap_hash(a, c->id, secret, c->data, c->len, r);
	err = append_binary(out, "CHAP_R", r, alg_len(a));
	explicit_bzero(r, sizeof(r));
	return err;
}

/* A new identifier and a challenge as long as @a's digest. */
static int new_challenge(const struct chap_alg *a, uint8_t *id, uint8_t *c, uint8_t *len)
{
	int err = chap_random(id, 1);

	*len = (uint8_t)alg_len(a);
	return err ? err : chap_random(c, *len);
}

/* ---- target ---- */

int chap_target_init(struct chap_target *t, uint32_t allowed, const char *user, const char *secret,
		     const char *mutual_user, const char *mutual_secret)
{
	int err = check_config(allowed, user, secret, mutual_user, mutual_secret);

	if (err)
		return err;
	memset(t, 0, sizeof(*t));
	t->user = user;
	t->secret = secret;
	t->mutual_user = mutual_user;
	t->mutual_secret = mutual_secret;
	t->allowed = allowed;
	t->state = CHAP_S_START;
	return 0;
}

/*
 * RFC 7143 §12.1.3: CHAP_A lists numbers in the initiator's order of
 * preference; the first one we allow wins. Every element must be a
 * number, even after the one we take.
 */
static int pick_alg(const struct text_pair *p, uint32_t allowed, const struct chap_alg **ret)
{
	const struct chap_alg *found = NULL, *a;
	const char *s, *end, *comma;
	uint64_t v;

	if (!p)
		return -ENOENT;
	end = p->value + p->value_len;
	for (s = p->value;; s = comma + 1) {
		comma = memchr(s, ',', (size_t)(end - s));
		if (!comma)
			comma = end;
		if (text_parse_number(s, (size_t)(comma - s), &v))
			return -EINVAL;
		a = alg_find(v, allowed);
		if (!found)
			found = a;
		if (comma == end)
			break;
	}
	*ret = found;
	return found ? 0 : -ENOTSUP;
}

static int target_challenge(struct chap_target *t, const struct text_list *in, struct text_buf *out)
{
	const struct chap_alg *a;
	int err;

	err = pick_alg(text_list_find(in, "CHAP_A"), t->allowed, &a);
	if (err)
		return err;
	t->alg = a->number;
	/* RFC 1994 §2.3: each challenge unique and unpredictable. */
	err = new_challenge(a, &t->id, t->challenge, &t->challenge_len);
	if (err)
		return err;
	err = append_number(out, "CHAP_A", a->number);
	return err ? err : append_challenge(out, t->id, t->challenge, t->challenge_len);
}

int chap_target_challenge(struct chap_target *t, const struct text_list *in, struct text_buf *out)
{
	size_t mark = out->len;
	int err;

	if (t->state != CHAP_S_START)
		return -EPROTO;
	t->state = CHAP_S_FAILED;
	err = target_challenge(t, in, out);
	if (err) {
		out->len = mark;
		return err;
	}
	t->state = CHAP_S_SENT;
	return 0;
}

/*
 * The initiator's own challenge, if it sent one (RFC 7143 §12.1.3 step
 * 3). RFC 7143 §9.2.1: the responder must refuse its own challenge sent
 * back to it (a reflection attack) and close the connection.
 */
static int target_read_mutual(struct chap_target *t, const struct text_list *in,
			      struct chap_challenge *c)
{
	int err = read_challenge(in, c, &t->mutual);

	if (err || !t->mutual)
		return err;
	if (!t->mutual_user)
		return -ENOKEY;
	if (c->len == t->challenge_len && !memcmp(c->data, t->challenge, c->len))
		return -ELOOP;
	return 0;
}

static int target_verify(struct chap_target *t, const struct text_list *in, struct text_buf *out)
{
	const struct chap_alg *a = alg_find(t->alg, t->allowed);
	const struct text_pair *name;
	struct chap_challenge c;
	uint8_t r[CHAP_DIGEST_MAX];
	int err;

	err = read_response(in, a, &name, r);
	if (err)
		return err;
	err = target_read_mutual(t, in, &c);
	if (err)
		return err;
	if (!name_is(name, t->user))
		return -EPERM;
	err = check_response(a, t->id, t->secret, t->challenge, t->challenge_len, r);
	if (err || !t->mutual)
		return err;
	return append_response(out, a, t->mutual_user, t->mutual_secret, &c);
}

int chap_target_verify(struct chap_target *t, const struct text_list *in, struct text_buf *out)
{
	size_t mark = out->len;
	int err;

	if (t->state != CHAP_S_SENT)
		return -EPROTO;
	/* One answer per challenge: no second guess on this login. */
	t->state = CHAP_S_FAILED;
	err = target_verify(t, in, out);
	if (err) {
		out->len = mark;
		return err;
	}
	t->state = CHAP_S_DONE;
	return 0;
}

/* ---- initiator ---- */

int chap_initiator_init(struct chap_initiator *ini, uint32_t allowed, const char *user,
			const char *secret, const char *mutual_user, const char *mutual_secret)
{
	int err = check_config(allowed, user, secret, mutual_user, mutual_secret);

	if (err)
		return err;
	/* RFC 7143 §12.1.3: initiators always offer MD5. */
	if (!(allowed & CHAP_ALLOW(CHAP_A_MD5)))
		return -EINVAL;
	memset(ini, 0, sizeof(*ini));
	ini->user = user;
	ini->secret = secret;
	ini->mutual_user = mutual_user;
	ini->mutual_secret = mutual_secret;
	ini->allowed = allowed;
	ini->state = CHAP_S_START;
	return 0;
}

int chap_initiator_offer(struct chap_initiator *ini, struct text_buf *out)
{
	char list[4 * N_ALGS] = ""; /* up to 3 digits and a ',' or the NUL each */
	size_t i, len = 0;
	int err;

	if (ini->state != CHAP_S_START)
		return -EPROTO;
	for (i = 0; i < N_ALGS; i++) {
		if (!(ini->allowed & CHAP_ALLOW(chap_algs[i].number)))
			continue;
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%u", len ? "," : "",
					chap_algs[i].number);
	}
	err = text_append(out, "CHAP_A", list);
	ini->state = err ? CHAP_S_FAILED : CHAP_S_SENT;
	return err;
}

/* The target's CHAP_A: one number, one we offered (RFC 7143 §12.1.3 step 2). */
static int initiator_read_alg(const struct chap_initiator *ini, const struct text_list *in,
			      const struct chap_alg **a)
{
	const struct text_pair *p = text_list_find(in, "CHAP_A");
	uint64_t v;

	if (!p)
		return -ENOENT;
	if (p->value_len == 6 && !memcmp(p->value, "Reject", 6))
		return -ENOTSUP;
	if (text_parse_number(p->value, p->value_len, &v))
		return -EINVAL;
	*a = alg_find(v, ini->allowed);
	return *a ? 0 : -ENOTSUP;
}

static int initiator_respond(struct chap_initiator *ini, const struct text_list *in,
			     struct text_buf *out)
{
	const struct chap_alg *a;
	struct chap_challenge c;
	bool present;
	int err;

	err = initiator_read_alg(ini, in, &a);
	if (err)
		return err;
	err = read_challenge(in, &c, &present);
	if (err)
		return err;
	if (!present)
		return -ENOENT;
	ini->alg = a->number;
	err = append_response(out, a, ini->user, ini->secret, &c);
	if (err || !ini->mutual_user)
		return err;
	/* RFC 7143 §9.2.1: never send the target's challenge back to it. */
	do {
		err = new_challenge(a, &ini->id, ini->challenge, &ini->challenge_len);
		if (err)
			return err;
	} while (c.len == ini->challenge_len && !memcmp(c.data, ini->challenge, c.len));
	return append_challenge(out, ini->id, ini->challenge, ini->challenge_len);
}

int chap_initiator_respond(struct chap_initiator *ini, const struct text_list *in,
			   struct text_buf *out)
{
	size_t mark = out->len;
	int err;

	if (ini->state != CHAP_S_SENT)
		return -EPROTO;
	ini->state = CHAP_S_FAILED;
	err = initiator_respond(ini, in, out);
	if (err) {
		out->len = mark;
		return err;
	}
	ini->state = CHAP_S_ANSWER;
	return 0;
}

static int initiator_verify(const struct chap_initiator *ini, const struct text_list *in)
{
	const struct chap_alg *a = alg_find(ini->alg, ini->allowed);
	const struct text_pair *name;
	uint8_t r[CHAP_DIGEST_MAX];
	int err;

	err = read_response(in, a, &name, r);
	if (err)
		return err;
	if (!name_is(name, ini->mutual_user))
		return -EPERM;
	return check_response(a, ini->id, ini->mutual_secret, ini->challenge, ini->challenge_len,
			      r);
}

int chap_initiator_verify(struct chap_initiator *ini, const struct text_list *in)
{
	int err = 0;

	if (ini->state != CHAP_S_ANSWER)
		return -EPROTO;
	ini->state = CHAP_S_FAILED;
	if (ini->mutual_user)
		err = initiator_verify(ini, in);
	if (!err)
		ini->state = CHAP_S_DONE;
	return err;
}
