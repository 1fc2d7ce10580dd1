/*
 * Unit tests for target/config: the file format of iser-target.conf(5),
 * the shared setters, and error messages naming file, line and problem.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "text.h"

static char path[64];
static char err[CONFIG_ERR_MAX];
static struct config *c;

static void write_conf(const char *text)
{
	int fd;
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/iserkit-conf-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	err[0] = '\0';
	ck_assert_int_eq(config_create(&c), 0);
}

static void teardown(void)
{
	config_destroy(c);
	if (path[0])
		unlink(path);
	path[0] = '\0';
}

/* Load @text and expect @ret; on failure, @msg must be in the error. */
static void load_expect(const char *text, int ret, const char *msg)
{
	write_conf(text);
	ck_assert_int_eq(config_load(c, path, err, sizeof(err)), ret);
	if (msg) {
		ck_assert_msg(strstr(err, msg), "error '%s' lacks '%s'", err, msg);
		ck_assert_msg(strstr(err, path), "error '%s' lacks the file name", err);
	}
}

static const char good[] = "# a comment\n"
			   "[global]\n"
			   "portal = 127.0.0.1:3260\n"
			   "portal = iser:[::1]:3261\n"
			   "fabric = soft\n"
			   "discovery-chap = disco averylongsecret\n"
			   "nop-interval = 10\n"
			   "login-timeout = 7\n"
			   "busy-poll = 0\n"
			   "header-digest = crc32c\n"
			   "data-digest = none\n"
			   "\n"
			   "[target iqn.2026-11.org.example:disk]\n"
			   "  alias = disk one  \n"
			   "allow = iqn.1994-05.com.redhat:client\n"
			   "chap = user secretsecret12\n"
			   "mutual-chap = tgt othersecret123\n"
			   "[lun 0]\n"
			   "path = /tmp/disk0.img\n"
			   "size = 1G\n"
			   "[lun 3]\n"
			   "path = /dev/null\n"
			   "read-only = yes\n"
			   "block-size = 4096\n"
			   "serial = SN-42\n"
			   "naa = 0x3000000000000abc\n";

START_TEST(test_good_file)
{
	struct config_target *t;
	struct sockaddr_in *in4;
	struct sockaddr_in6 *in6;

	load_expect(good, 0, NULL);
	ck_assert_int_eq(config_finish(c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c->nportals, 2);
	in4 = (struct sockaddr_in *)&c->portals[0].addr;
	ck_assert_int_eq(in4->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(in4->sin_port), 3260);
	ck_assert_uint_eq(ntohl(in4->sin_addr.s_addr), 0x7f000001);
	ck_assert_int_eq(c->portals[0].transport, CONFIG_TCP);
	in6 = (struct sockaddr_in6 *)&c->portals[1].addr;
	ck_assert_int_eq(in6->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(in6->sin6_port), 3261);
	ck_assert_int_eq(c->portals[1].transport, CONFIG_ISER);
	ck_assert_int_eq(c->fabric, CONFIG_FABRIC_SOFT);
	ck_assert_str_eq(c->discovery_chap.user, "disco");
	ck_assert_str_eq(c->discovery_chap.secret, "averylongsecret");
	ck_assert_uint_eq(c->nop_interval, 10);
	ck_assert_uint_eq(c->login_timeout, 7);
	ck_assert_uint_eq(c->busy_poll, 0);
	ck_assert_uint_eq(c->header_digest, TEXT_DIGEST_CRC32C);
	ck_assert_uint_eq(c->data_digest, TEXT_DIGEST_NONE);

	ck_assert_uint_eq(c->ntargets, 1);
	t = config_find_target(c, "iqn.2026-11.org.example:disk");
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t->alias, "disk one");
	ck_assert_uint_eq(t->nallow, 1);
	ck_assert_str_eq(t->allow[0], "iqn.1994-05.com.redhat:client");
	ck_assert(t->chap.set && t->mutual_chap.set);
	ck_assert_str_eq(t->mutual_chap.secret, "othersecret123");
	ck_assert_uint_eq(t->nluns, 2);
	ck_assert_uint_eq(t->luns[0].lun, 0);
	ck_assert_str_eq(t->luns[0].path, "/tmp/disk0.img");
	ck_assert_uint_eq(t->luns[0].size, 1ull << 30);
	ck_assert(!t->luns[0].read_only);
	ck_assert_uint_eq(t->luns[0].block_size, 512);
	ck_assert_uint_eq(t->luns[1].lun, 3);
	ck_assert(t->luns[1].read_only);
	ck_assert_uint_eq(t->luns[1].block_size, 4096);
	ck_assert_str_eq(t->luns[1].serial, "SN-42");
	ck_assert_uint_eq(t->luns[1].naa, 0x3000000000000abcull);
	ck_assert_int_eq(t->luns[1].line, 21);
}
END_TEST

/* Derived identifiers: NAA 3 (locally assigned), stable, distinct per LUN. */
START_TEST(test_derived_ids_stable)
{
	struct config *c2;
	struct config_target *t, *t2;

	load_expect(good, 0, NULL);
	ck_assert_int_eq(config_finish(c, err, sizeof(err)), 0);
	ck_assert_int_eq(config_create(&c2), 0);
	ck_assert_int_eq(config_load(c2, path, err, sizeof(err)), 0);
	ck_assert_int_eq(config_finish(c2, err, sizeof(err)), 0);
	t = &c->targets[0];
	t2 = &c2->targets[0];
	ck_assert_uint_eq(t->luns[0].naa >> 60, 3);
	ck_assert_uint_eq(t->luns[0].naa, t2->luns[0].naa);
	ck_assert_str_eq(t->luns[0].serial, t2->luns[0].serial);
	ck_assert_uint_eq(strlen(t->luns[0].serial), 16);
	/* LUN 3 had its own. */
	ck_assert_uint_eq(t->luns[1].naa, 0x3000000000000abcull);
	config_destroy(c2);
}
END_TEST

START_TEST(test_errors_name_line)
{
	load_expect("[global]\nportal = 127.0.0.1:3260\nbogus = 1\n", -EINVAL,
		    ":3: unknown key 'bogus'");
}
END_TEST

START_TEST(test_error_cases)
{
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
		{"portal = 1.2.3.4:99999\n", ":1: bad portal"},
		{"portal = localhost\n", ":1: bad portal"},
		{"portal = [::1\n", ":1: bad portal"},
		{"portal = 1.2.3.4\nportal = 1.2.3.4:3260\n",
		 ":2: portal '1.2.3.4:3260' given twice"},
		{"fabric = magic\n", ":1: bad value 'magic' for 'fabric'"},
		{"busy-poll = 100001\n", ":1: bad value '100001' for 'busy-poll'"},
		{"data-digest = md5\n", ":1: bad value 'md5' for 'data-digest'"},
		{"just words\n", ":1: expected 'key = value'"},
		{"portal =\n", ":1: empty value"},
		{" = x\n", ":1: empty key"},
		{"[target]\n", ":1: unknown section"},
		{"[target IQN.2026-11.Org.Example:x]\n", ":1: bad target name"},
		{"[target iqn.2026-11.org.a:x]\n[target iqn.2026-11.org.a:x]\n",
		 ":2: target 'iqn.2026-11.org.a:x' declared twice"},
		{"[lun 0]\n", ":1: [lun 0] before any [target]"},
		{"[target iqn.2026-11.org.a:x]\n[lun 0]\n[lun 0]\n",
		 ":3: LUN 0 of iqn.2026-11.org.a:x declared twice"},
		{"[target iqn.2026-11.org.a:x]\n[lun x]\n", ":2: bad LUN number"},
		{"[target iqn.2026-11.org.a:x]\n[lun 20000]\n", ":2: LUN 20000 out of range"},
		{"[target iqn.2026-11.org.a:x]\n[lun 0]\nblock-size = 1024\n",
		 ":3: bad value '1024'"},
		{"[target iqn.2026-11.org.a:x]\n[lun 0]\nsize = 12Q\n", ":3: bad value '12Q'"},
		{"[target iqn.2026-11.org.a:x]\n[lun 0]\nnaa = 0x6000000000000001\n",
		 ":3: bad value"},
		{"[target iqn.2026-11.org.a:x]\nchap = user short\n",
		 ":2: CHAP secret shorter than 12"},
		{"[target iqn.2026-11.org.a:x]\nchap = onlyuser\n", ":2: expected 'USER SECRET'"},
		{"[target iqn.2026-11.org.a:x]\nallow = someone\n", ":2: bad value 'someone'"},
		{"[global\n", ":1: section header without a closing"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		config_destroy(c);
		ck_assert_int_eq(config_create(&c), 0);
		load_expect(cases[i].text, strstr(cases[i].msg, "twice") ? -EEXIST : -EINVAL,
			    cases[i].msg);
		unlink(path);
	}
}
END_TEST

START_TEST(test_missing_file)
{
	ck_assert_int_eq(config_load(c, "/nonexistent/iser.conf", err, sizeof(err)), -ENOENT);
	ck_assert(strstr(err, "/nonexistent/iser.conf"));
	ck_assert(strstr(err, "No such file"));
}
END_TEST

START_TEST(test_finish_errors)
{
	load_expect("[target iqn.2026-11.org.a:x]\n", 0, NULL);
	ck_assert_int_eq(config_finish(c, err, sizeof(err)), -EINVAL);
	ck_assert(strstr(err, "no portal"));
	ck_assert_int_eq(config_add_portal(c, "127.0.0.1", err, sizeof(err)), 0);
	ck_assert_int_eq(config_finish(c, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, ":1: target iqn.2026-11.org.a:x has no LUN"), "%s", err);
	ck_assert_int_eq(config_add_lun(config_last_target(c), 1, "/x", err, sizeof(err)), 0);
	ck_assert_int_eq(config_finish(c, err, sizeof(err)), -EINVAL);
	ck_assert(strstr(err, "has no LUN 0"));
	ck_assert_int_eq(config_add_lun(config_last_target(c), 0, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(config_finish(c, err, sizeof(err)), -EINVAL);
	ck_assert(strstr(err, "LUN 0 of iqn.2026-11.org.a:x has no path"));
}
END_TEST

/* The command line builds the same configuration with no file. */
START_TEST(test_command_line)
{
	struct sockaddr_in *in4;

	ck_assert_int_eq(config_add_portal(c, "127.0.0.1:3260", err, sizeof(err)), 0);
	ck_assert_int_eq(config_add_target(c, "iqn.2026-11.org.example:disk", err, sizeof(err)), 0);
	ck_assert_int_eq(config_add_lun(config_last_target(c), 0, "/tmp/d.img", err, sizeof(err)),
			 0);
	ck_assert_int_eq(config_finish(c, err, sizeof(err)), 0);
	in4 = (struct sockaddr_in *)&c->portals[0].addr;
	ck_assert_uint_eq(ntohs(in4->sin_port), 3260);
	ck_assert_ptr_null(c->file);
	ck_assert_int_eq(config_add_target(c, "eui.0123456789abcdef", err, sizeof(err)), 0);
	ck_assert_int_eq(
		config_add_target(c, "naa.0123456789abcdef0123456789abcdef", err, sizeof(err)), 0);
	ck_assert_int_eq(config_add_target(c, "eui.0123", err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(config_add_portal(c, "0.0.0.0", err, sizeof(err)), 0);
	ck_assert_int_eq(config_add_portal(c, "::", err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_parse_size)
{
	uint64_t v;

	ck_assert_int_eq(config_parse_size("4096", &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(config_parse_size("4k", &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(config_parse_size("10M", &v), 0);
	ck_assert_uint_eq(v, 10ull << 20);
	ck_assert_int_eq(config_parse_size("1GiB", &v), 0);
	ck_assert_uint_eq(v, 1ull << 30);
	ck_assert_int_eq(config_parse_size("2T", &v), 0);
	ck_assert_uint_eq(v, 2ull << 40);
	ck_assert_int_eq(config_parse_size("-1", &v), -EINVAL);
	ck_assert_int_eq(config_parse_size("1X", &v), -EINVAL);
	ck_assert_int_eq(config_parse_size("1Gx", &v), -EINVAL);
	ck_assert_int_eq(config_parse_size("99999999999999999999", &v), -ERANGE);
	ck_assert_int_eq(config_parse_size("99999999999T", &v), -ERANGE);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *su = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_good_file);
	tcase_add_test(tc, test_derived_ids_stable);
	tcase_add_test(tc, test_errors_name_line);
	tcase_add_test(tc, test_error_cases);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_finish_errors);
	tcase_add_test(tc, test_command_line);
	tcase_add_test(tc, test_parse_size);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
