/*
 * url: iSCSI URLs in libiscsi's syntax, parsed into struct iscsi_url.
 *
 * Like RFC 3986, the authority ends at the first '/' and the user info at
 * the last '@' in it, so an '@' left raw in a password still works; a '/'
 * in a password must be written %2F. libiscsi's "?key=value" arguments are
 * refused rather than dropped: the struct has nowhere to keep them, and a
 * silently ignored header_digest=crc32c would be worse than an error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "url.h"

#define URL_DEFAULT_PORT 3260
#define URL_LUN_MAX 16383 /* SAM-5 flat space addressing: 14 bits */

struct span {
	const char *p;
	size_t n;
};

struct ctx {
	char *err;
	size_t errlen;
};

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err && c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Whether @s.p[i] starts a "%XX" escape that lies inside @s. */
static bool escape_at(struct span s, size_t i)
{
	return s.p[i] == '%' && i + 2 < s.n && hexval(s.p[i + 1]) >= 0 && hexval(s.p[i + 2]) >= 0;
}

static struct span span_cut(struct span s, size_t from, size_t to)
{
	return (struct span){s.p + from, to - from};
}

/*
 * Percent-decode @s into @dst (URL_FIELD_MAX bytes) as the field @what.
 * A '%' that starts no escape is an error when @strict, else itself.
 */
static int decode(struct ctx *c, const char *what, struct span s, char *dst, bool strict)
{
	size_t i, o = 0;
	char ch;

	for (i = 0; i < s.n; i++) {
		ch = s.p[i];
		if (escape_at(s, i)) {
			ch = (char)(hexval(s.p[i + 1]) << 4 | hexval(s.p[i + 2]));
			i += 2;
			if (!ch)
				return fail(c, "%s: %%00 would put a NUL byte in it", what);
		} else if (ch == '%' && strict) {
			return fail(c, "%s: '%%' not followed by two hex digits", what);
		}
		if (o == URL_FIELD_MAX - 1)
			return fail(c, "%s is too long (at most %d bytes)", what,
				    URL_FIELD_MAX - 1);
		dst[o++] = ch;
	}
	dst[o] = '\0';
	return 0;
}

/* A decimal number in 1..@max digits only; -1 when it is not one. */
static long parse_decimal(struct span s, long max)
{
	long v = 0;
	size_t i;

	if (!s.n)
		return -1;
	for (i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -1;
		v = v * 10 + (s.p[i] - '0');
		if (v > max)
			return -1;
	}
	return v;
}

static int parse_scheme(struct ctx *c, const char **p, struct iscsi_url *u)
{
	if (!strncasecmp(*p, "iscsi://", 8)) {
		u->transport = URL_ISCSI;
		*p += 8;
	} else if (!strncasecmp(*p, "iser://", 7)) {
		u->transport = URL_ISER;
		*p += 7;
	} else {
		return fail(c, "unknown scheme: the URL must start with iscsi:// or iser://");
	}
	return 0;
}

/* Blanks and control characters are typos or worse; a URL has none. */
static int check_chars(struct ctx *c, const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return fail(c, "invalid character 0x%02x at offset %zu",
				    (unsigned char)s[i], i);
	return 0;
}

/*
 * The first '%' that starts no escape separates user from password, as
 * url.h says; without one, a ':' does, as in libiscsi.
 */
static size_t find_separator(struct span s)
{
	const char *colon;
	size_t i;

	for (i = 0; i < s.n; i++)
		if (s.p[i] == '%' && !escape_at(s, i))
			return i;
	colon = memchr(s.p, ':', s.n);
	return colon ? (size_t)(colon - s.p) : s.n;
}

static int parse_userinfo(struct ctx *c, struct span s, struct iscsi_url *u)
{
	size_t sep = find_separator(s);
	int err;

	if (!sep)
		return fail(c, "empty user name before the '@'");
	err = decode(c, "user", span_cut(s, 0, sep), u->user, false);
	if (err || sep == s.n)
		return err;
	if (sep + 1 == s.n)
		return fail(c, "empty password after the user name");
	return decode(c, "password", span_cut(s, sep + 1, s.n), u->password, false);
}

static int parse_port(struct ctx *c, struct span s, struct iscsi_url *u)
{
	long v = parse_decimal(s, 65535);

	if (v < 1)
		return fail(c, "bad port \"%.*s\": not a number in 1..65535", (int)s.n, s.p);
	u->port = (uint16_t)v;
	return 0;
}

static int copy_host(struct ctx *c, struct span s, struct iscsi_url *u)
{
	if (!s.n)
		return fail(c, "empty host");
	if (s.n > URL_FIELD_MAX - 1)
		return fail(c, "host is too long (at most %d bytes)", URL_FIELD_MAX - 1);
	memcpy(u->host, s.p, s.n);
	u->host[s.n] = '\0';
	return 0;
}

/* An IPv6 address, with an optional zone ("fe80::1%eth0", getaddrinfo's
 * form), the part between the brackets. */
static bool is_ipv6(const char *h)
{
	const char *zone = strchr(h, '%');
	char addr[INET6_ADDRSTRLEN];
	struct in6_addr a;
	size_t n = zone ? (size_t)(zone - h) : strlen(h);

	if (n >= sizeof(addr))
		return false;
	memcpy(addr, h, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET6, addr, &a) != 1)
		return false;
	if (!zone)
		return true;
	return zone[1] &&
	       strspn(zone + 1, "abcdefghijklmnopqrstuvwxyz"
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == strlen(zone + 1);
}

static int parse_bracketed(struct ctx *c, struct span s, struct iscsi_url *u)
{
	const char *close = memchr(s.p, ']', s.n);
	size_t end;
	int err;

	if (!close)
		return fail(c, "IPv6 address without its closing ']'");
	end = (size_t)(close - s.p);
	err = copy_host(c, span_cut(s, 1, end), u);
	if (err)
		return err;
	if (!is_ipv6(u->host))
		return fail(c, "\"%s\" between brackets is not an IPv6 address", u->host);
	if (end + 1 == s.n)
		return 0;
	if (s.p[end + 1] != ':')
		return fail(c, "unexpected \"%.*s\" after ']'", (int)(s.n - end - 1), close + 1);
	return parse_port(c, span_cut(s, end + 2, s.n), u);
}

static int parse_hostport(struct ctx *c, struct span s, struct iscsi_url *u)
{
	static const char host_chars[] = "abcdefghijklmnopqrstuvwxyz"
					 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";
	const char *colon = memchr(s.p, ':', s.n);
	size_t end = colon ? (size_t)(colon - s.p) : s.n;
	size_t i;
	int err;

	if (s.n && s.p[0] == '[')
		return parse_bracketed(c, s, u);
	if (colon && memchr(colon + 1, ':', s.n - end - 1))
		return fail(c, "an IPv6 address needs brackets: [%.*s]", (int)s.n, s.p);
	for (i = 0; i < end; i++)
		if (!strchr(host_chars, s.p[i]))
			return fail(c, "invalid character '%c' in host", s.p[i]);
	err = copy_host(c, span_cut(s, 0, end), u);
	if (err || !colon)
		return err;
	return parse_port(c, span_cut(s, end + 1, s.n), u);
}

static int parse_lun(struct ctx *c, struct span s, struct iscsi_url *u)
{
	const char *slash = memchr(s.p, '/', s.n);
	long v;

	if (slash)
		return fail(c, "trailing path \"%.*s\" after the LUN", (int)(s.n - (slash - s.p)),
			    slash);
	v = parse_decimal(s, URL_LUN_MAX);
	if (v < 0)
		return fail(c, "LUN \"%.*s\" is not a number in 0..%d", (int)s.n, s.p, URL_LUN_MAX);
	u->has_lun = true;
	u->lun = (uint32_t)v;
	return 0;
}

/* "" (discovery), "iqn" or "iqn/lun". */
static int parse_path(struct ctx *c, struct span s, struct iscsi_url *u)
{
	const char *slash;
	size_t end;
	int err;

	if (!s.n)
		return 0;
	if (memchr(s.p, '?', s.n))
		return fail(c, "URL arguments (\"?...\") are not supported: use mount options");
	if (memchr(s.p, '#', s.n))
		return fail(c, "a fragment (\"#...\") has no meaning in an iSCSI URL");
	slash = memchr(s.p, '/', s.n);
	end = slash ? (size_t)(slash - s.p) : s.n;
	if (!end)
		return fail(c, "empty target name before the LUN");
	err = decode(c, "target name", span_cut(s, 0, end), u->target, true);
	if (err || !slash)
		return err;
	return parse_lun(c, span_cut(s, end + 1, s.n), u);
}

/* Everything after the scheme. */
static int parse_rest(struct ctx *c, const char *p, struct iscsi_url *u)
{
	const char *slash = strchr(p, '/');
	struct span auth = {p, slash ? (size_t)(slash - p) : strlen(p)};
	const char *at = p && auth.n ? memrchr(p, '@', auth.n) : NULL;
	int err;

	if (at) {
		err = parse_userinfo(c, span_cut(auth, 0, (size_t)(at - p)), u);
		if (err)
			return err;
		auth = span_cut(auth, (size_t)(at - p) + 1, auth.n);
	}
	err = parse_hostport(c, auth, u);
	if (err || !slash)
		return err;
	return parse_path(c, (struct span){slash + 1, strlen(slash + 1)}, u);
}

int url_parse(const char *s, struct iscsi_url *out, char *err, size_t errlen)
{
	struct ctx c = {err, errlen};
	struct iscsi_url u;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!s || !out)
		return fail(&c, "no URL");
	memset(&u, 0, sizeof(u));
	u.port = URL_DEFAULT_PORT;
	rc = check_chars(&c, s);
	if (!rc)
		rc = parse_scheme(&c, &s, &u);
	if (!rc)
		rc = parse_rest(&c, s, &u);
	if (rc)
		return rc;
	*out = u;
	return 0;
}
