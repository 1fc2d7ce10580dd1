/*
 * Unit tests for initiator/url: the URL forms of libiscsi's
 * iscsi_parse_full_url (iscsi://[user[%password]@]host[:port]/iqn/lun,
 * its ':' separator when there is no '%', its percent-decoded target),
 * what url.h adds (optional LUN, discovery URLs, bracketed IPv6,
 * percent-decoded user and password) and every rejection url.h lists.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

static struct iscsi_url u;
static char err[128];

/* @s parses; the fields are then checked by the caller. */
static void ok(const char *s)
{
	int rc;

	memset(&u, 0x5a, sizeof(u));
	err[0] = '\0';
	rc = url_parse(s, &u, err, sizeof(err));
	ck_assert_msg(rc == 0, "\"%s\": %d (%s)", s, rc, err);
}

/*
 * @s is refused with -EINVAL, @out is left as it was, and the reason is
 * a non-empty line that contains @why.
 */
static void bad(const char *s, const char *why)
{
	struct iscsi_url before;
	int rc;

	memset(&u, 0x5a, sizeof(u));
	before = u;
	memset(err, 0, sizeof(err));
	rc = url_parse(s, &u, err, sizeof(err));
	ck_assert_msg(rc == -EINVAL, "\"%s\": %d, not -EINVAL", s, rc);
	ck_assert_msg(!memcmp(&before, &u, sizeof(u)), "\"%s\": out changed on error", s);
	ck_assert_msg(err[0] != '\0' && !strchr(err, '\n'), "\"%s\": reason \"%s\"", s, err);
	ck_assert_msg(strstr(err, why), "\"%s\": reason \"%s\" does not say \"%s\"", s, err, why);
}

/* A string of @n copies of @c into @buf (at least n + 1 bytes). */
static char *rep(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

START_TEST(test_full_url)
{
	ok("iscsi://192.0.2.1/iqn.2001-04.com.example:disk/3");
	ck_assert_int_eq(u.transport, URL_ISCSI);
	ck_assert_str_eq(u.host, "192.0.2.1");
	ck_assert_uint_eq(u.port, 3260);
	ck_assert_str_eq(u.target, "iqn.2001-04.com.example:disk");
	ck_assert(u.has_lun);
	ck_assert_uint_eq(u.lun, 3);
	ck_assert_str_eq(u.user, "");
	ck_assert_str_eq(u.password, "");
}
END_TEST

START_TEST(test_iser_and_port)
{
	ok("iser://storage.example.com:3261/iqn.2001-04.com.example:disk/0");
	ck_assert_int_eq(u.transport, URL_ISER);
	ck_assert_str_eq(u.host, "storage.example.com");
	ck_assert_uint_eq(u.port, 3261);
	ck_assert_uint_eq(u.lun, 0);
	ok("iscsi://h:1/t/0");
	ck_assert_uint_eq(u.port, 1);
	ok("iscsi://h:65535/t/0");
	ck_assert_uint_eq(u.port, 65535);
	ok("iscsi://h:03260/t/0");
	ck_assert_uint_eq(u.port, 3260);
	/* RFC 3986 §3.1: the scheme is case-insensitive */
	ok("ISCSI://h/t/0");
	ck_assert_int_eq(u.transport, URL_ISCSI);
	ok("iSER://h/t/0");
	ck_assert_int_eq(u.transport, URL_ISER);
}
END_TEST

START_TEST(test_no_lun)
{
	ok("iscsi://127.0.0.1:3260/iqn.2026-11.org.iserkit:robust");
	ck_assert_str_eq(u.target, "iqn.2026-11.org.iserkit:robust");
	ck_assert(!u.has_lun);
	ck_assert_uint_eq(u.lun, 0);
}
END_TEST

START_TEST(test_discovery)
{
	ok("iscsi://127.0.0.1");
	ck_assert_str_eq(u.host, "127.0.0.1");
	ck_assert_uint_eq(u.port, 3260);
	ck_assert_str_eq(u.target, "");
	ck_assert(!u.has_lun);
	ok("iscsi://127.0.0.1:3262/");
	ck_assert_uint_eq(u.port, 3262);
	ck_assert_str_eq(u.target, "");
	ck_assert(!u.has_lun);
	ok("iser://alice%secretsecret@[::1]");
	ck_assert_str_eq(u.host, "::1");
	ck_assert_str_eq(u.user, "alice");
	ck_assert_str_eq(u.target, "");
}
END_TEST

START_TEST(test_lun_range)
{
	ok("iscsi://h/t/16383");
	ck_assert_uint_eq(u.lun, 16383);
	ok("iscsi://h/t/007");
	ck_assert_uint_eq(u.lun, 7);
	ok("iscsi://h/t/1");
	ck_assert_uint_eq(u.lun, 1);
	bad("iscsi://h/t/16384", "LUN");
	bad("iscsi://h/t/4294967296", "LUN");
	bad("iscsi://h/t/99999999999999999999999", "LUN");
	bad("iscsi://h/t/-1", "LUN");
	bad("iscsi://h/t/+1", "LUN");
	bad("iscsi://h/t/ 1", "");
	bad("iscsi://h/t/0x1", "LUN");
	bad("iscsi://h/t/1a", "LUN");
	bad("iscsi://h/t/", "LUN");
}
END_TEST

START_TEST(test_ipv6)
{
	ok("iscsi://[::1]:3261/t/2");
	ck_assert_str_eq(u.host, "::1");
	ck_assert_uint_eq(u.port, 3261);
	ck_assert_uint_eq(u.lun, 2);
	ok("iscsi://[2001:db8::7]/t/0");
	ck_assert_str_eq(u.host, "2001:db8::7");
	ck_assert_uint_eq(u.port, 3260);
	ok("iscsi://[::ffff:192.0.2.1]:9/t");
	ck_assert_str_eq(u.host, "::ffff:192.0.2.1");
	ck_assert_uint_eq(u.port, 9);
	/* a zone, for link-local addresses (getaddrinfo takes "%eth0") */
	ok("iscsi://[fe80::1%eth0]:3260/t/0");
	ck_assert_str_eq(u.host, "fe80::1%eth0");
	ok("iscsi://u%pw@[::1]/t/0");
	ck_assert_str_eq(u.user, "u");
	ck_assert_str_eq(u.password, "pw");
	ck_assert_str_eq(u.host, "::1");
	bad("iscsi://::1/t/0", "bracket");
	bad("iscsi://2001:db8::7:3260/t/0", "bracket");
	bad("iscsi://[::1/t/0", "]");
	bad("iscsi://[::1]x/t/0", "after");
	bad("iscsi://[::1]:/t/0", "port");
	bad("iscsi://[]/t/0", "host");
	bad("iscsi://[192.0.2.1]/t/0", "IPv6");
	bad("iscsi://[::g]/t/0", "IPv6");
	bad("iscsi://[fe80::1%]/t/0", "IPv6");
}
END_TEST

START_TEST(test_user_password)
{
	ok("iscsi://alice%averylongsecret@h/t/0");
	ck_assert_str_eq(u.user, "alice");
	ck_assert_str_eq(u.password, "averylongsecret");
	ck_assert_str_eq(u.host, "h");
	/* libiscsi: ':' separates when there is no '%' */
	ok("iscsi://alice:averylongsecret@h:3270/t/0");
	ck_assert_str_eq(u.user, "alice");
	ck_assert_str_eq(u.password, "averylongsecret");
	ck_assert_uint_eq(u.port, 3270);
	/* a user and no password: the caller may take it from a file */
	ok("iscsi://alice@h/t/0");
	ck_assert_str_eq(u.user, "alice");
	ck_assert_str_eq(u.password, "");
	/* the '%' separates, so the ':' belongs to the user */
	ok("iscsi://al:ice%pw@h/t/0");
	ck_assert_str_eq(u.user, "al:ice");
	ck_assert_str_eq(u.password, "pw");
	/* after the separator, a ':' is part of the password */
	ok("iscsi://alice%p:w@h/t/0");
	ck_assert_str_eq(u.password, "p:w");
	/* '?' and '#' are plain characters in the user info */
	ok("iscsi://alice%p?w#x@h/t/0");
	ck_assert_str_eq(u.password, "p?w#x");
	/*
	 * url.h's rule: "%de" is a byte, so a password that starts with two
	 * hex digits cannot follow a '%' separator; ':' is the way to write it.
	 */
	ok("iscsi://alice%deadbeef@h/t/0");
	ck_assert_str_eq(u.user, "alice\xde"
				 "adbeef");
	ck_assert_str_eq(u.password, "");
	ok("iscsi://alice:deadbeef@h/t/0");
	ck_assert_str_eq(u.user, "alice");
	ck_assert_str_eq(u.password, "deadbeef");
}
END_TEST

START_TEST(test_percent_decoding)
{
	/* %40 is '@', %25 '%', %2F '/', %3a ':' (either case) */
	ok("iscsi://us%40er%pa%25ss%2Fw%3ad@h/t/0");
	ck_assert_str_eq(u.user, "us@er");
	ck_assert_str_eq(u.password, "pa%ss/w:d");
	/* the first '%' not followed by two hex digits is the separator */
	ok("iscsi://a%41%zz@h/t/0");
	ck_assert_str_eq(u.user, "aA");
	ck_assert_str_eq(u.password, "zz");
	/* in the password, a lone '%' is itself */
	ok("iscsi://a%b%c%@h/t/0");
	ck_assert_str_eq(u.user, "a");
	ck_assert_str_eq(u.password, "b%c%");
	/* a '%' at the end of the user: an empty password is an error */
	bad("iscsi://alice%@h/t/0", "password");
	/* an '@' left raw in the password: the last '@' ends the user info */
	ok("iscsi://alice%p@ss@h/t/0");
	ck_assert_str_eq(u.password, "p@ss");
	ck_assert_str_eq(u.host, "h");
	/* libiscsi decodes the target too */
	ok("iscsi://h/iqn.2001-04.com.example%3Adisk/0");
	ck_assert_str_eq(u.target, "iqn.2001-04.com.example:disk");
	bad("iscsi://h/iqn%zz/0", "%");
	bad("iscsi://h/iqn%4/0", "%");
	/* a NUL would cut the field short */
	bad("iscsi://a%00b%pw@h/t/0", "NUL");
	bad("iscsi://a%pw%00@h/t/0", "NUL");
	bad("iscsi://h/iqn%00x/0", "NUL");
}
END_TEST

START_TEST(test_scheme)
{
	bad("http://h/t/0", "scheme");
	bad("iscsi:/h/t/0", "scheme");
	bad("iscsi:h/t/0", "scheme");
	bad("iscsix://h/t/0", "scheme");
	bad("", "scheme");
	bad("h/t/0", "scheme");
}
END_TEST

START_TEST(test_host_and_port)
{
	bad("iscsi://", "host");
	bad("iscsi:///t/0", "host");
	bad("iscsi://:3260/t/0", "host");
	bad("iscsi://alice%pw@/t/0", "host");
	bad("iscsi://h:/t/0", "port");
	bad("iscsi://h:0/t/0", "port");
	bad("iscsi://h:65536/t/0", "port");
	bad("iscsi://h:99999999999999999999/t/0", "port");
	bad("iscsi://h:-1/t/0", "port");
	bad("iscsi://h:32a/t/0", "port");
	bad("iscsi://h:3260:1/t/0", "");
	bad("iscsi://h_o!st/t/0", "host");
	bad("iscsi://h,1/t/0", "host");
}
END_TEST

START_TEST(test_user_info)
{
	bad("iscsi://@h/t/0", "user");
	bad("iscsi://%pw@h/t/0", "user");
	bad("iscsi://:pw@h/t/0", "user");
}
END_TEST

START_TEST(test_path)
{
	bad("iscsi://h//0", "target");
	bad("iscsi://h/t/0/", "trailing");
	bad("iscsi://h/t/0/1", "trailing");
	/* libiscsi's ?header_digest=... arguments have no field here */
	bad("iscsi://h/t/0?header_digest=crc32c", "?");
	bad("iscsi://h/t?iser", "?");
	bad("iscsi://h/t#frag", "#");
}
END_TEST

START_TEST(test_characters)
{
	bad("iscsi://h/t /0", "character");
	bad("iscsi://h/t\t/0", "character");
	bad("iscsi://a b%pw@h/t/0", "character");
	bad("iscsi://h/t\x7f/0", "character");
	bad("iscsi://h/t\n/0", "character");
}
END_TEST

/* Every field holds URL_FIELD_MAX - 1 characters, not one more. */
START_TEST(test_field_lengths)
{
	char f[URL_FIELD_MAX + 8], s[4 * URL_FIELD_MAX + 64], enc[3 * URL_FIELD_MAX + 1];
	size_t i;

	/* 'x': not a hex digit, so "%x..." is the separator, not an escape */
	rep(f, 'x', URL_FIELD_MAX - 1);
	snprintf(s, sizeof(s), "iscsi://%s/t/0", f);
	ok(s);
	ck_assert_uint_eq(strlen(u.host), URL_FIELD_MAX - 1);
	snprintf(s, sizeof(s), "iscsi://h/%s/0", f);
	ok(s);
	ck_assert_uint_eq(strlen(u.target), URL_FIELD_MAX - 1);
	snprintf(s, sizeof(s), "iscsi://%s%%%s@h/t/0", f, f);
	ok(s);
	ck_assert_uint_eq(strlen(u.user), URL_FIELD_MAX - 1);
	ck_assert_uint_eq(strlen(u.password), URL_FIELD_MAX - 1);

	rep(f, 'x', URL_FIELD_MAX);
	snprintf(s, sizeof(s), "iscsi://%s/t/0", f);
	bad(s, "long");
	snprintf(s, sizeof(s), "iscsi://h/%s/0", f);
	bad(s, "long");
	snprintf(s, sizeof(s), "iscsi://%s%%pw@h/t/0", f);
	bad(s, "long");
	snprintf(s, sizeof(s), "iscsi://u%%%s@h/t/0", f);
	bad(s, "long");
	snprintf(s, sizeof(s), "iscsi://[::%s]/t/0", rep(f, '1', URL_FIELD_MAX));
	bad(s, "long");

	/* the limit is on the decoded text: 255 "%41" are 255 bytes */
	for (i = 0; i < URL_FIELD_MAX - 1; i++)
		memcpy(enc + 3 * i, "%41", 3);
	enc[3 * i] = '\0';
	snprintf(s, sizeof(s), "iscsi://u%%%s@h/t/0", enc);
	ok(s);
	ck_assert_uint_eq(strlen(u.password), URL_FIELD_MAX - 1);
	ck_assert_int_eq(u.password[0], 'A');
}
END_TEST

/* The reason fits whatever room it is given, even none. */
START_TEST(test_error_buffer)
{
	char small[6];

	memset(small, 'x', sizeof(small));
	ck_assert_int_eq(url_parse("bogus", &u, small, sizeof(small)), -EINVAL);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_int_eq(url_parse("bogus", &u, NULL, 0), -EINVAL);
	small[0] = 'x';
	ck_assert_int_eq(url_parse("bogus", &u, small, 0), -EINVAL);
	ck_assert_int_eq(small[0], 'x');
	ck_assert_int_eq(url_parse(NULL, &u, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(url_parse("iscsi://h/t/0", NULL, err, sizeof(err)), -EINVAL);
	/* a success leaves no stale reason behind */
	ck_assert_int_eq(url_parse("iscsi://h/t/0", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "");
}
END_TEST

static Suite *url_suite(void)
{
	Suite *su = suite_create("url");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_full_url);
	tcase_add_test(tc, test_iser_and_port);
	tcase_add_test(tc, test_no_lun);
	tcase_add_test(tc, test_discovery);
	tcase_add_test(tc, test_lun_range);
	tcase_add_test(tc, test_ipv6);
	tcase_add_test(tc, test_user_password);
	tcase_add_test(tc, test_percent_decoding);
	tcase_add_test(tc, test_scheme);
	tcase_add_test(tc, test_host_and_port);
	tcase_add_test(tc, test_user_info);
	tcase_add_test(tc, test_path);
	tcase_add_test(tc, test_characters);
	tcase_add_test(tc, test_field_lengths);
	tcase_add_test(tc, test_error_buffer);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(url_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
