/*
 * libFuzzer harness of the text module. The input is a Login or Text data
 * segment. If it parses, it must build back to the same bytes and reparse
 * to the same pairs; then every negotiation entry point runs on it, as
 * target and as initiator, in every stage, and must keep its promises:
 * documented errnos only, nothing changed on error, answers that parse
 * and stay in range.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static bool parse_errno(int err)
{
	return err == -EILSEQ || err == -EINVAL || err == -EBADMSG || err == -ENAMETOOLONG ||
	       err == -ENOMSG || err == -E2BIG || err == -EEXIST || err == -ENOBUFS;
}

static bool same_pairs(const struct text_list *a, const struct text_list *b)
{
	unsigned int i;

	if (a->count != b->count)
		return false;
	for (i = 0; i < a->count; i++) {
		const struct text_pair *x = &a->pairs[i], *y = &b->pairs[i];

		if (x->key_len != y->key_len || x->value_len != y->value_len ||
		    memcmp(x->key, y->key, x->key_len) || memcmp(x->value, y->value, x->value_len))
			return false;
	}
	return true;
}

static bool zeros(const uint8_t *p, size_t len)
{
	while (len--)
		if (*p++)
			return false;
	return true;
}

/* build(parse(x)) is x without its padding; parse(build(x)) is x. */
static void round_trip(const uint8_t *data, size_t size, const struct text_list *l)
{
	static char mem[1 << 17];
	static struct text_list again;
	struct text_buf b;

	if (size > sizeof(mem))
		return;
	text_buf_init(&b, mem, size);
	CHECK(text_build(&b, l) == 0);
	CHECK(!memcmp(b.data, data, b.len) && zeros(data + b.len, size - b.len));
	CHECK(text_parse(b.data, b.len, 0, &again) == 0);
	CHECK(same_pairs(l, &again));
}

/* The value parsers on every value: no crash, documented errnos. */
static void values(const struct text_list *l)
{
	uint8_t bin[TEXT_BINARY_MAX];
	unsigned int i;
	uint64_t v;
	size_t n;
	int err;

	for (i = 0; i < l->count; i++) {
		const struct text_pair *p = &l->pairs[i];
		const struct text_key *k = text_key_find(p->key, p->key_len);

		err = text_parse_number(p->value, p->value_len, &v);
		CHECK(!err || err == -EINVAL || err == -ERANGE);
		err = text_decode_binary(p->value, p->value_len, bin, sizeof(bin), &n);
		CHECK(!err || err == -EINVAL || err == -E2BIG);
		CHECK(err || n <= sizeof(bin));
		if (k) {
			err = text_check_value(k, p->value, p->value_len);
			CHECK(!err || err == -EINVAL || err == -ERANGE);
		}
	}
}

static bool reserved(const struct text_pair *p)
{
	static const char *const r[] = {"Reject", "Irrelevant", "NotUnderstood", "None"};
	unsigned int i;

	for (i = 0; i < 4; i++)
		if (p->value_len == strlen(r[i]) && !memcmp(p->value, r[i], p->value_len))
			return true;
	return false;
}

/* What we send parses, and every value we chose is one the key allows. */
static void check_output(const struct text_buf *out)
{
	static struct text_list o;
	unsigned int i;

	CHECK(text_parse(out->data, out->len, 0, &o) == 0);
	for (i = 0; i < o.count; i++) {
		const struct text_pair *p = &o.pairs[i];
		const struct text_key *k = text_key_find(p->key, p->key_len);

		if (k && !reserved(p))
			CHECK(text_check_value(k, p->value, p->value_len) == 0);
	}
}

static void configure(struct text_neg *n, bool rdma)
{
	struct text_params *l = &n->local;

	l->auth_method = TEXT_AUTH_CHAP | TEXT_AUTH_NONE;
	l->header_digest = l->data_digest = TEXT_DIGEST_CRC32C | TEXT_DIGEST_NONE;
	l->task_reporting = TEXT_TASKREP_RESPONSEFENCE | TEXT_TASKREP_RFC3720;
	l->max_burst_length = 1048576;
	l->first_burst_length = 262144;
	l->max_connections = 4;
	l->error_recovery_level = 2;
	l->max_outstanding_r2t = 8;
	l->rdma_extensions = rdma;
	l->target_portal_group_tag = 1;
	memcpy(l->initiator_name, "iqn.2024-01.org.iserkit:fuzz", 29);
	memcpy(l->target_name, "iqn.2024-01.org.iserkit:disk0", 30);
	memcpy(l->target_alias, "fuzz disk", 10);
}

/* One side receiving @l: resolve, respond, offer, check. */
static void negotiate(const struct text_list *l, enum text_role role, enum text_stage stage,
		      bool leading, bool rdma)
{
	static char mem[1 << 15];
	static struct text_neg n, before;
	struct text_buf out;
	size_t len;
	int err;

	text_neg_init(&n, role, leading);
	configure(&n, rdma);
	text_neg_stage(&n, stage);
	text_buf_init(&out, mem, sizeof(mem));
	/* an initiator has offered first, so @l may hold its answers */
	if (role == TEXT_ROLE_INITIATOR)
		CHECK(text_offer(&n, &out) == 0);
	before = n;
	err = text_resolve(&n, l);
	CHECK(!err || (err == -EPROTO && !memcmp(&before, &n, sizeof(n))));
	if (err)
		return;
	before = n;
	len = out.len;
	err = text_respond(&n, l, &out);
	CHECK(!err || err == -EPROTO);
	if (err) {
		CHECK(out.len == len && !memcmp(&before, &n, sizeof(n)));
		return;
	}
	CHECK(text_offer(&n, &out) == 0);
	check_output(&out);
	err = text_neg_check(&n);
	CHECK(!err || err == -EPROTO);
	CHECK(text_max_send_dsl(&n) >= 512 && text_max_recv_dsl(&n) >= 512);
}

static void negotiate_all(const struct text_list *l)
{
	static const enum text_stage stages[] = {TEXT_STAGE_SECURITY, TEXT_STAGE_OPERATIONAL,
						 TEXT_STAGE_FFP};
	unsigned int s, m;

	for (s = 0; s < 3; s++)
		for (m = 0; m < 8; m++)
			negotiate(l, m & 1 ? TEXT_ROLE_INITIATOR : TEXT_ROLE_TARGET, stages[s],
				  !(m & 2), m & 4);
}

/* text_next() walks the same syntax without a bound on the count: it
 * stops where text_parse() did, unless that stopped on a duplicate or on
 * the count, which it does not check. */
static void walk(const uint8_t *data, size_t size, int parse_err)
{
	struct text_pair p;
	size_t pos = 0;
	int err;

	while (!(err = text_next(data, size, &pos, &p)))
		CHECK(pos <= size);
	if (parse_err == -EEXIST || parse_err == -ENOBUFS)
		CHECK(err == -ENODATA || parse_errno(err));
	else
		CHECK(err == (parse_err ? parse_err : -ENODATA));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct text_list l;
	int err;

	err = text_parse(data, size, TEXT_PARSE_SENDTARGETS, &l);
	CHECK(!err || parse_errno(err));
	err = text_parse(data, size, 0, &l);
	CHECK(!err || parse_errno(err));
	walk(data, size, err);
	if (err)
		return 0;
	round_trip(data, size, &l);
	values(&l);
	negotiate_all(&l);
	return 0;
}
