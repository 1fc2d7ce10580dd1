/*
 * config: parse and check iser-target's configuration. See config.h and
 * iser-target.conf(5).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xport/iser.h"
#include "text.h"
#include "config.h"

#define ISCSI_PORT 3260

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Grow an array of @size-byte elements by one; returns the new slot. */
static void *array_push(void *arrayp, size_t *n, size_t size)
{
	void **array = arrayp;
	char *p = realloc(*array, (*n + 1) * size);

	if (!p)
		return NULL;
	*array = p;
	memset(p + *n * size, 0, size);
	return p + (*n)++ * size;
}

int config_create(struct config **ret)
{
	struct config *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->fabric = CONFIG_FABRIC_AUTO;
	c->nop_interval = 5;
	c->nop_timeout = 30;
	c->login_timeout = 15;
	c->arm_delay = ISER_ARM_DELAY_DEFAULT;
	c->busy_poll = CONFIG_BUSY_POLL_DEFAULT;
	c->header_digest = c->data_digest = TEXT_DIGEST_CRC32C | TEXT_DIGEST_NONE;
	*ret = c;
	return 0;
}

static void target_free(struct config_target *t)
{
	size_t i;

	for (i = 0; i < t->nallow; i++)
		free(t->allow[i]);
	free(t->allow);
	for (i = 0; i < t->nluns; i++)
		free(t->luns[i].path);
	free(t->luns);
}

void config_destroy(struct config *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->ntargets; i++)
		target_free(&c->targets[i]);
	free(c->targets);
	free(c->portals);
	free(c->file);
	free(c);
}

int config_parse_size(const char *s, uint64_t *ret)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	switch (tolower((unsigned char)*end)) {
	case '\0':
		break;
	case 'k':
		shift = 10;
		break;
	case 'm':
		shift = 20;
		break;
	case 'g':
		shift = 30;
		break;
	case 't':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end && end[1] && strcasecmp(end + 1, "iB") && strcasecmp(end + 1, "B"))
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret = (uint64_t)v << shift;
	return 0;
}

static int parse_uint(const char *s, unsigned int max, unsigned int *ret)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = (unsigned int)v;
	return 0;
}

static int parse_bool(const char *s, bool *ret)
{
	if (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "on"))
		*ret = true;
	else if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "off"))
		*ret = false;
	else
		return -EINVAL;
	return 0;
}

/* "ADDR", "ADDR:PORT", "[V6]:PORT", "V6" with an optional "tcp:"/"iser:". */
static int parse_addr(const char *spec, struct config_portal *p)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&p->addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&p->addr;
	char host[64];
	const char *port = NULL, *end;
	unsigned int portnum = ISCSI_PORT;
	size_t len;

	if (spec[0] == '[') {
		end = strchr(spec, ']');
		if (!end || (end[1] && end[1] != ':'))
			return -EINVAL;
		len = (size_t)(end - spec - 1);
		if (len >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec + 1, len);
		host[len] = '\0';
		port = end[1] ? end + 2 : NULL;
	} else {
		end = strrchr(spec, ':');
		/* Two colons or more without brackets: a bare IPv6 address. */
		if (end && strchr(spec, ':') != end)
			end = NULL;
		len = end ? (size_t)(end - spec) : strlen(spec);
		if (len >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec, len);
		host[len] = '\0';
		port = end ? end + 1 : NULL;
	}
	if (port && (parse_uint(port, 65535, &portnum) || portnum == 0))
		return -EINVAL;

	memset(&p->addr, 0, sizeof(p->addr));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)portnum);
		p->addrlen = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)portnum);
		p->addrlen = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	return 0;
}

int config_add_portal(struct config *c, const char *spec, char *err, size_t errlen)
{
	struct config_portal p = {.transport = CONFIG_TCP};
	const char *addr = spec;
	size_t i;

	if (!strncmp(spec, "tcp:", 4)) {
		addr = spec + 4;
	} else if (!strncmp(spec, "iser:", 5)) {
		p.transport = CONFIG_ISER;
		addr = spec + 5;
	}
	if (parse_addr(addr, &p)) {
		seterr(err, errlen,
		       "bad portal '%s': expected [tcp:|iser:]ADDRESS[:PORT], e.g. 127.0.0.1:3260 or [::1]:3260",
		       spec);
		return -EINVAL;
	}
	snprintf(p.text, sizeof(p.text), "%s", spec);
	for (i = 0; i < c->nportals; i++) {
		if (c->portals[i].addrlen == p.addrlen &&
		    !memcmp(&c->portals[i].addr, &p.addr, p.addrlen)) {
			seterr(err, errlen, "portal '%s' given twice", spec);
			return -EEXIST;
		}
	}
	if (!array_push(&c->portals, &c->nportals, sizeof(p)))
		return -ENOMEM;
	c->portals[c->nportals - 1] = p;
	return 0;
}

/*
 * RFC 7143 §4.2.7: "iqn." date "." reversed domain [":" anything],
 * "eui." 16 hex digits, or "naa." 16 or 32 hex digits; after stringprep
 * only lower-case letters, digits, '-', '.' and ':'.
 */
static bool valid_iscsi_name(const char *s)
{
	size_t len = strlen(s), i, hex;

	if (len == 0 || len > CONFIG_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!(islower(ch) || isdigit(ch) || ch == '-' || ch == '.' || ch == ':'))
			return false;
	}
	if (!strncmp(s, "iqn.", 4))
		return len > 12 && isdigit((unsigned char)s[4]) && isdigit((unsigned char)s[7]) &&
		       s[8] == '-' && isdigit((unsigned char)s[9]) &&
		       isdigit((unsigned char)s[10]) && s[11] == '.' && s[12] != '\0';
	if (strncmp(s, "eui.", 4) && strncmp(s, "naa.", 4))
		return false;
	hex = strspn(s + 4, "0123456789abcdef");
	if (hex != len - 4)
		return false;
	return hex == 16 || (s[0] == 'n' && hex == 32);
}

int config_add_target(struct config *c, const char *iqn, char *err, size_t errlen)
{
	struct config_target *t;

	if (!valid_iscsi_name(iqn)) {
		seterr(err, errlen,
		       "bad target name '%s': expected iqn.YYYY-MM.reversed.domain[:name] (lower case), eui.<16 hex> or naa.<16|32 hex> (RFC 7143 4.2.7)",
		       iqn);
		return -EINVAL;
	}
	if (config_find_target(c, iqn)) {
		seterr(err, errlen, "target '%s' declared twice", iqn);
		return -EEXIST;
	}
	t = array_push(&c->targets, &c->ntargets, sizeof(*t));
	if (!t)
		return -ENOMEM;
	snprintf(t->name, sizeof(t->name), "%s", iqn);
	return 0;
}

struct config_target *config_last_target(struct config *c)
{
	return c->ntargets ? &c->targets[c->ntargets - 1] : NULL;
}

bool config_allows(const struct config_target *t, const char *initiator)
{
	size_t i;

	if (!t->nallow)
		return true;
	for (i = 0; i < t->nallow; i++)
		if (!strcmp(t->allow[i], "all") || !strcmp(t->allow[i], initiator))
			return true;
	return false;
}

struct config_target *config_find_target(struct config *c, const char *iqn)
{
	size_t i;

	for (i = 0; i < c->ntargets; i++)
		if (!strcmp(c->targets[i].name, iqn))
			return &c->targets[i];
	return NULL;
}

int config_add_lun(struct config_target *t, unsigned int lun, const char *path, char *err,
		   size_t errlen)
{
	struct config_lun *l;
	size_t i;

	/* Flat space addressing (SAM-5 §4.7.7) reaches 16383. */
	if (lun > 16383) {
		seterr(err, errlen, "LUN %u out of range 0..16383", lun);
		return -EINVAL;
	}
	for (i = 0; i < t->nluns; i++) {
		if (t->luns[i].lun == lun) {
			seterr(err, errlen, "LUN %u of %s declared twice", lun, t->name);
			return -EEXIST;
		}
	}
	l = array_push(&t->luns, &t->nluns, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->lun = lun;
	l->block_size = 512;
	if (path) {
		l->path = strdup(path);
		if (!l->path) {
			t->nluns--;
			return -ENOMEM;
		}
	}
	return 0;
}

/* "USER SECRET": RFC 7143 §12.1.3 wants secrets of at least 12 bytes. */
static int parse_chap(const char *value, struct config_chap *chap, char *err, size_t errlen)
{
	const char *sp = strpbrk(value, " \t");
	size_t ulen;

	if (!sp) {
		seterr(err, errlen, "expected 'USER SECRET'");
		return -EINVAL;
	}
	ulen = (size_t)(sp - value);
	sp += strspn(sp, " \t");
	if (ulen == 0 || ulen >= sizeof(chap->user) || strlen(sp) >= sizeof(chap->secret)) {
		seterr(err, errlen, "CHAP user or secret too long (max %d bytes)",
		       CONFIG_CHAP_MAX - 1);
		return -EINVAL;
	}
	if (strlen(sp) < 12) {
		seterr(err, errlen, "CHAP secret shorter than 12 bytes (RFC 7143 12.1.3)");
		return -EINVAL;
	}
	memcpy(chap->user, value, ulen);
	chap->user[ulen] = '\0';
	snprintf(chap->secret, sizeof(chap->secret), "%s", sp);
	chap->set = true;
	return 0;
}

/* The file parser */

enum section {
	SEC_GLOBAL,
	SEC_TARGET,
	SEC_LUN,
};

struct parser {
	struct config *c;
	enum section sec;
	char *err;
	size_t errlen;
};

static int bad_value(struct parser *ps, const char *key, const char *value, const char *want)
{
	seterr(ps->err, ps->errlen, "bad value '%s' for '%s': expected %s", value, key, want);
	return -EINVAL;
}

static int parse_fabric(const char *s, enum config_fabric *ret)
{
	if (!strcmp(s, "auto"))
		*ret = CONFIG_FABRIC_AUTO;
	else if (!strcmp(s, "verbs"))
		*ret = CONFIG_FABRIC_VERBS;
	else if (!strcmp(s, "soft"))
		*ret = CONFIG_FABRIC_SOFT;
	else
		return -EINVAL;
	return 0;
}

int config_set_fabric(struct config *c, const char *s, char *err, size_t errlen)
{
	if (!parse_fabric(s, &c->fabric))
		return 0;
	seterr(err, errlen, "bad fabric '%s': expected auto, verbs or soft", s);
	return -EINVAL;
}

int config_set_busy_poll(struct config *c, const char *s, char *err, size_t errlen)
{
	if (!parse_uint(s, CONFIG_BUSY_POLL_MAX, &c->busy_poll))
		return 0;
	seterr(err, errlen, "bad --busy-poll '%s': expected microseconds, 0..100000", s);
	return -EINVAL;
}

/* "any" (what the initiator prefers), "crc32c" (required) or "none". */
static int parse_digest(const char *s, unsigned int *ret)
{
	if (!strcmp(s, "any"))
		*ret = TEXT_DIGEST_CRC32C | TEXT_DIGEST_NONE;
	else if (!strcmp(s, "crc32c"))
		*ret = TEXT_DIGEST_CRC32C;
	else if (!strcmp(s, "none"))
		*ret = TEXT_DIGEST_NONE;
	else
		return -EINVAL;
	return 0;
}

static int global_key(struct parser *ps, const char *key, const char *value)
{
	struct config *c = ps->c;

	if (!strcmp(key, "portal"))
		return config_add_portal(c, value, ps->err, ps->errlen);
	if (!strcmp(key, "fabric"))
		return parse_fabric(value, &c->fabric)
			       ? bad_value(ps, key, value, "auto, verbs or soft")
			       : 0;
	if (!strcmp(key, "discovery-chap"))
		return parse_chap(value, &c->discovery_chap, ps->err, ps->errlen);
	if (!strcmp(key, "discovery-mutual-chap"))
		return parse_chap(value, &c->discovery_mutual_chap, ps->err, ps->errlen);
	if (!strcmp(key, "nop-interval"))
		return parse_uint(value, 3600, &c->nop_interval)
			       ? bad_value(ps, key, value, "seconds, 0..3600 (0: off)")
			       : 0;
	if (!strcmp(key, "login-timeout"))
		return parse_uint(value, 3600, &c->login_timeout) || !c->login_timeout
			       ? bad_value(ps, key, value, "seconds, 1..3600")
			       : 0;
	if (!strcmp(key, "arm-delay"))
		return parse_uint(value, 1000, &c->arm_delay)
			       ? bad_value(ps, key, value, "empty polls, 0..1000")
			       : 0;
	if (!strcmp(key, "header-digest"))
		return parse_digest(value, &c->header_digest)
			       ? bad_value(ps, key, value, "any, crc32c or none")
			       : 0;
	if (!strcmp(key, "data-digest"))
		return parse_digest(value, &c->data_digest)
			       ? bad_value(ps, key, value, "any, crc32c or none")
			       : 0;
	if (!strcmp(key, "busy-poll"))
		return parse_uint(value, CONFIG_BUSY_POLL_MAX, &c->busy_poll)
			       ? bad_value(ps, key, value, "microseconds, 0..100000")
			       : 0;
	if (!strcmp(key, "nop-timeout"))
		return parse_uint(value, 3600, &c->nop_timeout) || !c->nop_timeout
			       ? bad_value(ps, key, value, "seconds, 1..3600")
			       : 0;
	seterr(ps->err, ps->errlen, "unknown key '%s' in [global]", key);
	return -EINVAL;
}

static int target_key(struct parser *ps, const char *key, const char *value)
{
	struct config_target *t = config_last_target(ps->c);
	char *name;

	if (!strcmp(key, "alias")) {
		if (strlen(value) > CONFIG_NAME_MAX)
			return bad_value(ps, key, value, "at most 223 bytes");
		snprintf(t->alias, sizeof(t->alias), "%s", value);
		return 0;
	}
	if (!strcmp(key, "allow")) {
		if (strcmp(value, "all") && !valid_iscsi_name(value))
			return bad_value(ps, key, value,
					 "an initiator name (iqn./eui./naa.) or 'all'");
		name = strdup(value);
		if (!name || !array_push(&t->allow, &t->nallow, sizeof(*t->allow))) {
			free(name);
			return -ENOMEM;
		}
		t->allow[t->nallow - 1] = name;
		return 0;
	}
	if (!strcmp(key, "chap"))
		return parse_chap(value, &t->chap, ps->err, ps->errlen);
	if (!strcmp(key, "mutual-chap"))
		return parse_chap(value, &t->mutual_chap, ps->err, ps->errlen);
	seterr(ps->err, ps->errlen, "unknown key '%s' in [target]", key);
	return -EINVAL;
}

static int parse_naa(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (strncmp(s, "0x", 2) || strlen(s) != 18)
		return -EINVAL;
	errno = 0;
	v = strtoull(s + 2, &end, 16);
	if (errno || *end)
		return -EINVAL;
	/* SPC-4 §7.8.6.6: NAA 2, 3, 5 (8 bytes); 6 is 16 bytes, not here. */
	switch (v >> 60) {
	case 2:
	case 3:
	case 5:
		*ret = v;
		return 0;
	default:
		return -EINVAL;
	}
}

static int lun_key(struct parser *ps, const char *key, const char *value)
{
	struct config_target *t = config_last_target(ps->c);
	struct config_lun *l = &t->luns[t->nluns - 1];

	if (!strcmp(key, "path")) {
		free(l->path);
		l->path = strdup(value);
		return l->path ? 0 : -ENOMEM;
	}
	if (!strcmp(key, "size"))
		return config_parse_size(value, &l->size)
			       ? bad_value(ps, key, value, "a size such as 1G, 512M, 4096")
			       : 0;
	if (!strcmp(key, "read-only"))
		return parse_bool(value, &l->read_only) ? bad_value(ps, key, value, "yes or no")
							: 0;
	if (!strcmp(key, "block-size")) {
		if (parse_uint(value, 4096, &l->block_size) ||
		    (l->block_size != 512 && l->block_size != 4096))
			return bad_value(ps, key, value, "512 or 4096");
		return 0;
	}
	if (!strcmp(key, "serial")) {
		/* SPC-4 §7.8.11: ASCII, printable. */
		if (!*value || strlen(value) > CONFIG_SERIAL_MAX ||
		    strspn(value,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:") !=
			    strlen(value))
			return bad_value(ps, key, value, "1..64 letters, digits, '-_.:'");
		snprintf(l->serial, sizeof(l->serial), "%s", value);
		l->serial_set = true;
		return 0;
	}
	if (!strcmp(key, "naa")) {
		if (parse_naa(value, &l->naa))
			return bad_value(ps, key, value,
					 "0x and 16 hex digits starting with NAA 2, 3 or 5");
		l->naa_set = true;
		return 0;
	}
	seterr(ps->err, ps->errlen, "unknown key '%s' in [lun]", key);
	return -EINVAL;
}

/* "[name arg]": switch section. @line is NUL-terminated and trimmed. */
static int parse_section(struct parser *ps, char *line, int lineno)
{
	char *end = strchr(line, ']'), *arg;
	struct config_target *t;
	unsigned int lun;
	int err;

	if (!end || end[1]) {
		seterr(ps->err, ps->errlen, "section header without a closing ']'");
		return -EINVAL;
	}
	*end = '\0';
	line++;
	arg = strpbrk(line, " \t");
	if (arg) {
		*arg++ = '\0';
		arg += strspn(arg, " \t");
	}
	if (!strcmp(line, "global") && (!arg || !*arg)) {
		ps->sec = SEC_GLOBAL;
		return 0;
	}
	if (!strcmp(line, "target") && arg && *arg) {
		err = config_add_target(ps->c, arg, ps->err, ps->errlen);
		if (err)
			return err;
		config_last_target(ps->c)->line = lineno;
		ps->sec = SEC_TARGET;
		return 0;
	}
	if (!strcmp(line, "lun") && arg && *arg) {
		t = config_last_target(ps->c);
		if (!t) {
			seterr(ps->err, ps->errlen, "[lun %s] before any [target]", arg);
			return -EINVAL;
		}
		if (parse_uint(arg, UINT_MAX, &lun)) {
			seterr(ps->err, ps->errlen, "bad LUN number '%s'", arg);
			return -EINVAL;
		}
		err = config_add_lun(t, lun, NULL, ps->err, ps->errlen);
		if (err)
			return err;
		t->luns[t->nluns - 1].line = lineno;
		ps->sec = SEC_LUN;
		return 0;
	}
	seterr(ps->err, ps->errlen,
	       "unknown section '[%s%s%s]': expected [global], [target IQN] or [lun N]", line,
	       arg ? " " : "", arg ? arg : "");
	return -EINVAL;
}

static char *trim(char *s)
{
	char *end;

	s += strspn(s, " \t");
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	*end = '\0';
	return s;
}

static int parse_line(struct parser *ps, char *line, int lineno)
{
	char *key, *value, *eq;

	line = trim(line);
	if (!*line || *line == '#')
		return 0;
	if (*line == '[')
		return parse_section(ps, line, lineno);
	eq = strchr(line, '=');
	if (!eq) {
		seterr(ps->err, ps->errlen, "expected 'key = value', '[section]' or '# comment'");
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (!*key || !*value) {
		seterr(ps->err, ps->errlen, "empty %s", *key ? "value" : "key");
		return -EINVAL;
	}
	switch (ps->sec) {
	case SEC_GLOBAL:
		return global_key(ps, key, value);
	case SEC_TARGET:
		return target_key(ps, key, value);
	case SEC_LUN:
		return lun_key(ps, key, value);
	}
	return -EINVAL;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	char msg[CONFIG_ERR_MAX] = "";
	struct parser ps = {.c = c, .sec = SEC_GLOBAL, .err = msg, .errlen = sizeof(msg)};
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, ret = 0;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	free(c->file);
	c->file = strdup(path);
	while (!ret && getline(&line, &cap, f) >= 0) {
		lineno++;
		if (strlen(line) > 4096) {
			seterr(msg, sizeof(msg), "line longer than 4096 bytes");
			ret = -EINVAL;
			break;
		}
		ret = parse_line(&ps, line, lineno);
	}
	if (!ret && ferror(f)) {
		ret = -EIO;
		seterr(msg, sizeof(msg), "read error");
	}
	if (ret)
		seterr(err, errlen, "%s:%d: %s", path, lineno, msg);
	free(line);
	fclose(f);
	return ret;
}

/* FNV-1a, 64 bits: a stable hash of the target name and LUN, so that the
 * serial and NAA identifier stay the same across restarts. */
static uint64_t fnv1a(const char *s, unsigned int lun)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; s[i]; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	for (i = 0; i < 4; i++)
		h = (h ^ ((lun >> (8 * i)) & 0xff)) * 0x100000001b3ull;
	return h;
}

static void lun_defaults(struct config_target *t, struct config_lun *l)
{
	uint64_t h = fnv1a(t->name, l->lun);

	if (!l->serial_set)
		snprintf(l->serial, sizeof(l->serial), "%016llx", (unsigned long long)h);
	/* NAA 3: locally assigned (SPC-4 §7.8.6.6.3), no IEEE OUI needed. */
	if (!l->naa_set)
		l->naa = (3ull << 60) | (h & 0x0fffffffffffffffull);
}

static int check_target(struct config_target *t, char *err, size_t errlen)
{
	size_t i;
	bool lun0 = false;

	if (!t->nluns) {
		seterr(err, errlen, "target %s has no LUN", t->name);
		return -EINVAL;
	}
	for (i = 0; i < t->nluns; i++) {
		if (!t->luns[i].path) {
			seterr(err, errlen, "LUN %u of %s has no path", t->luns[i].lun, t->name);
			return -EINVAL;
		}
		lun0 |= t->luns[i].lun == 0;
		lun_defaults(t, &t->luns[i]);
	}
	/* SAM-5 §4.6.3: LUN 0 must exist for REPORT LUNS and INQUIRY. */
	if (!lun0) {
		seterr(err, errlen, "target %s has no LUN 0", t->name);
		return -EINVAL;
	}
	if (t->mutual_chap.set && !t->chap.set) {
		seterr(err, errlen, "target %s: mutual-chap needs chap too", t->name);
		return -EINVAL;
	}
	return 0;
}

int config_finish(struct config *c, char *err, size_t errlen)
{
	size_t i;
	int ret;

	if (!c->nportals) {
		seterr(err, errlen,
		       "no portal: add 'portal = ADDRESS[:PORT]' to [global] or --portal");
		return -EINVAL;
	}
	if (!c->ntargets) {
		seterr(err, errlen, "no target: add a [target IQN] section or --target");
		return -EINVAL;
	}
	if (c->discovery_mutual_chap.set && !c->discovery_chap.set) {
		seterr(err, errlen, "discovery-mutual-chap needs discovery-chap too");
		return -EINVAL;
	}
	for (i = 0; i < c->ntargets; i++) {
		char msg[CONFIG_ERR_MAX];

		ret = check_target(&c->targets[i], msg, sizeof(msg));
		if (ret && c->file && c->targets[i].line)
			seterr(err, errlen, "%s:%d: %s", c->file, c->targets[i].line, msg);
		else if (ret)
			seterr(err, errlen, "%s", msg);
		if (ret)
			return ret;
	}
	return 0;
}
