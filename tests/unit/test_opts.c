/*
 * Unit tests for fuse/opts: iser-mount's command line as iser-mount(8)
 * lists it (-f, -d, --discover, --help, --version, every -o option, the
 * defaults), each refusal and the option its message names, the size
 * suffixes of opts_parse_size, and the CHAP credentials from the URL, a
 * file and the environment, in the man page's order of precedence.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ini.h"
#include "opts.h"

#define URL "iscsi://192.0.2.1/iqn.2026-11.org.example:disk"
#define MNT "/mnt/disk"
#define MAX_ARGS 16
#define MAX_KEPT 2048

static struct opts o;
static char err[OPTS_ERR_MAX];
static char path[64];
static struct opts_chap chap;

/* Every argv string of a test: o.url and o.mountpoint point into them. */
static char *kept[MAX_KEPT];
static size_t nkept;

static const char *const chap_env[] = {
	"ISERKIT_CHAP_USER",
	"ISERKIT_CHAP_PASSWORD",
	"ISERKIT_CHAP_TARGET_USER",
	"ISERKIT_CHAP_TARGET_PASSWORD",
};

static char *keep(const char *s)
{
	char *d = strdup(s);

	ck_assert_ptr_nonnull(d);
	ck_assert_uint_lt(nkept, MAX_KEPT);
	kept[nkept++] = d;
	return d;
}

static void unset_chap_env(void)
{
	size_t i;

	for (i = 0; i < sizeof(chap_env) / sizeof(chap_env[0]); i++)
		unsetenv(chap_env[i]);
}

static void setup(void)
{
	memset(&o, 0, sizeof(o));
	memset(&chap, 0x5a, sizeof(chap));
	err[0] = '\0';
	path[0] = '\0';
	unset_chap_env();
}

static void teardown(void)
{
	opts_free(&o);
	while (nkept)
		free(kept[--nkept]);
	if (path[0])
		unlink(path);
	unset_chap_env();
}

/* opts_parse over "iser-mount" and the arguments up to NULL. */
static int vparse(const char *first, va_list ap)
{
	char *argv[MAX_ARGS + 2];
	const char *a;
	int argc = 0;

	opts_free(&o);
	err[0] = '\0';
	argv[argc++] = keep("iser-mount");
	for (a = first; a; a = va_arg(ap, const char *)) {
		ck_assert_int_lt(argc, MAX_ARGS);
		argv[argc++] = keep(a);
	}
	argv[argc] = NULL;
	return opts_parse(argc, argv, &o, err, sizeof(err));
}

static int parse(const char *first, ...) __attribute__((sentinel));

static int parse(const char *first, ...)
{
	va_list ap;
	int ret;

	va_start(ap, first);
	ret = vparse(first, ap);
	va_end(ap);
	return ret;
}

#define PARSE(...) parse(__VA_ARGS__, (const char *)NULL)

/* The command line parses. */
#define PARSE_OK(...)                                                             \
	do {                                                                      \
		int ret_ = PARSE(__VA_ARGS__);                                    \
		ck_assert_msg(ret_ == 0, "%s: %d (%s)", #__VA_ARGS__, ret_, err); \
	} while (0)

/* The error is one line that says @why. */
static void check_err(const char *what, const char *why)
{
	ck_assert_msg(err[0] && !strchr(err, '\n'), "%s: reason \"%s\"", what, err);
	ck_assert_msg(strstr(err, why), "%s: reason \"%s\" does not say \"%s\"", what, err, why);
}

/* The command line is refused with -EINVAL and a line that says @why. */
static void bad(const char *why, const char *first, ...) __attribute__((sentinel));

static void bad(const char *why, const char *first, ...)
{
	va_list ap;
	int ret;

	va_start(ap, first);
	ret = vparse(first, ap);
	va_end(ap);
	ck_assert_msg(ret == -EINVAL, "%s ...: %d, not -EINVAL", first, ret);
	check_err(first, why);
}

#define BAD(why, ...) bad(why, __VA_ARGS__, (const char *)NULL)

/* "-o @list URL MNT" parses. */
static void olist_ok(const char *list)
{
	int ret = PARSE("-o", list, URL, MNT);

	ck_assert_msg(ret == 0, "-o %s: %d (%s)", list, ret, err);
}

/* "-o @list URL MNT" is refused; the error says @why. */
static void olist_bad(const char *list, const char *why)
{
	int ret = PARSE("-o", list, URL, MNT);

	ck_assert_msg(ret == -EINVAL, "-o %s: %d, not -EINVAL", list, ret);
	check_err(list, why);
}

/* A string of @n copies of @c into @buf (at least n + 1 bytes). */
static char *rep(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* Write @text to a new file in /tmp, mode @mode, in place of the last one;
 * its name in path. */
static void write_file(const char *text, mode_t mode)
{
	FILE *f;
	int fd;

	if (path[0])
		unlink(path);
	snprintf(path, sizeof(path), "/tmp/iserkit-opts-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

/* -o chap_file=@text's file, then opts_load_chap with the URL's fields. */
static int load_chap_text(const char *text, const char *url_user, const char *url_secret)
{
	char opt[128];

	write_file(text, 0600);
	snprintf(opt, sizeof(opt), "chap_file=%s", path);
	olist_ok(opt);
	ck_assert_str_eq(o.chap_file, path);
	err[0] = '\0';
	return opts_load_chap(&o, url_user, url_secret, &chap, err, sizeof(err));
}

/* opts_load_chap without a file. */
static int load_chap(const char *url_user, const char *url_secret)
{
	PARSE_OK(URL, MNT);
	err[0] = '\0';
	return opts_load_chap(&o, url_user, url_secret, &chap, err, sizeof(err));
}

static void assert_chap(const char *user, const char *secret, const char *target_user,
			const char *target_secret)
{
	ck_assert_str_eq(chap.user, user);
	ck_assert_str_eq(chap.secret, secret);
	ck_assert_str_eq(chap.target_user, target_user);
	ck_assert_str_eq(chap.target_secret, target_secret);
}

/* No name or secret (the file's mode is no secret). */
static bool chap_is_zero(const struct opts_chap *c)
{
	struct opts_chap zero, cmp = *c;

	memset(&zero, 0, sizeof(zero));
	cmp.file_mode = 0;
	return !memcmp(&cmp, &zero, sizeof(zero));
}

/* A refusal of opts_load_chap: -EINVAL, a line that says @why, no secret left. */
static void chap_bad(int ret, const char *why)
{
	ck_assert_int_eq(ret, -EINVAL);
	check_err("chap", why);
	ck_assert_msg(chap_is_zero(&chap), "credentials left after an error");
}

START_TEST(test_defaults)
{
	PARSE_OK(URL, MNT);
	ck_assert_str_eq(o.url, URL);
	ck_assert_str_eq(o.mountpoint, MNT);
	ck_assert(!o.discover && !o.help && !o.version);
	ck_assert(!o.foreground && !o.debug);
	ck_assert(!o.ro && !o.allow_other);
	ck_assert(!o.cache); /* direct_io is the default */
	ck_assert(!o.uring); /* /dev/fuse */
	ck_assert(!o.header_digest && !o.data_digest && !o.mpa_crc);
	ck_assert_uint_eq(o.chap_algs, 0); /* SHA-256 and MD5 */
	/* 0: the initiator's default, which the man page gives as 128 */
	ck_assert_uint_eq(o.queue_depth, 0);
	ck_assert_uint_eq(INI_DEFAULT_QUEUE_DEPTH, 128);
	ck_assert_uint_eq(o.max_io, 1u << 20);
	ck_assert_uint_eq(o.recovery_timeout, 120);
	ck_assert_int_eq(o.arm_delay, -1); /* the provider's default */
	ck_assert_uint_eq(o.busy_poll, 100);
	ck_assert_ptr_null(o.initiator);
	ck_assert_ptr_null(o.chap_file);
	ck_assert_ptr_null(o.fabric); /* auto */
}
END_TEST

START_TEST(test_dash_flags)
{
	PARSE_OK("-f", URL, MNT);
	ck_assert(o.foreground && !o.debug);
	PARSE_OK("--foreground", URL, MNT);
	ck_assert(o.foreground && !o.debug);
	/* -d implies -f */
	PARSE_OK("-d", URL, MNT);
	ck_assert(o.debug && o.foreground);
	PARSE_OK("--debug", URL, MNT);
	ck_assert(o.debug && o.foreground);
	PARSE_OK("-fd", "-o", "ro", URL, MNT);
	ck_assert(o.debug && o.foreground && o.ro);
	PARSE_OK("--", URL, MNT);
	ck_assert_str_eq(o.url, URL);
	ck_assert_str_eq(o.mountpoint, MNT);

	PARSE_OK("--discover", "iscsi://192.0.2.1");
	ck_assert(o.discover);
	ck_assert_str_eq(o.url, "iscsi://192.0.2.1");
	ck_assert_ptr_null(o.mountpoint);

	/* --help and --version need no URL */
	PARSE_OK("--help");
	ck_assert(o.help && !o.version);
	PARSE_OK("-h");
	ck_assert(o.help);
	PARSE_OK("--version");
	ck_assert(o.version && !o.help);
	PARSE_OK("-V", "too", "many", "args");
	ck_assert(o.version);
}
END_TEST

START_TEST(test_flag_options)
{
	olist_ok("ro");
	ck_assert(o.ro);
	olist_ok("ro,rw");
	ck_assert(!o.ro);
	olist_ok("allow_other");
	ck_assert(o.allow_other);
	olist_ok("cache");
	ck_assert(o.cache);
	olist_ok("cache,direct_io");
	ck_assert(!o.cache);
	olist_ok("direct_io,cache");
	ck_assert(o.cache);
	olist_ok("header_digest");
	ck_assert(o.header_digest && !o.data_digest);
	olist_ok("data_digest");
	ck_assert(o.data_digest && !o.header_digest);
	olist_ok("mpa_crc");
	ck_assert(o.mpa_crc);
	olist_ok("uring");
	ck_assert(o.uring && !o.cache);
	olist_ok("uring,no_uring");
	ck_assert(!o.uring);
	/* each flag sets its own field only */
	olist_ok("mpa_crc");
	ck_assert(!o.ro && !o.allow_other && !o.cache && !o.header_digest && !o.data_digest);
}
END_TEST

START_TEST(test_value_options)
{
	olist_ok("queue_depth=64");
	ck_assert_uint_eq(o.queue_depth, 64);
	olist_ok("queue_depth=1");
	ck_assert_uint_eq(o.queue_depth, 1);
	olist_ok("queue_depth=4096");
	ck_assert_uint_eq(o.queue_depth, 4096);

	olist_ok("max_io=131072");
	ck_assert_uint_eq(o.max_io, 131072);
	olist_ok("max_io=256k");
	ck_assert_uint_eq(o.max_io, 256u << 10);
	olist_ok("max_io=4M");
	ck_assert_uint_eq(o.max_io, 4u << 20);
	olist_ok("max_io=512");
	ck_assert_uint_eq(o.max_io, 512);
	olist_ok("max_io=64M");
	ck_assert_uint_eq(o.max_io, 64u << 20);

	olist_ok("initiator=iqn.2026-11.org.example:host");
	ck_assert_str_eq(o.initiator, "iqn.2026-11.org.example:host");

	olist_ok("recovery_timeout=30");
	ck_assert_uint_eq(o.recovery_timeout, 30);
	olist_ok("recovery_timeout=0"); /* for ever */
	ck_assert_uint_eq(o.recovery_timeout, 0);
	olist_ok("recovery_timeout=604800"); /* a week, the most */
	ck_assert_uint_eq(o.recovery_timeout, 604800);

	ck_assert_uint_eq(o.cmd_timeout, 0); /* the initiator's default */
	ck_assert_uint_eq(o.nop_interval, 0);
	olist_ok("cmd_timeout=2,nop_interval=1");
	ck_assert_uint_eq(o.cmd_timeout, 2);
	ck_assert_uint_eq(o.nop_interval, 1);
	olist_ok("cmd_timeout=3600,nop_interval=3600");
	ck_assert_uint_eq(o.cmd_timeout, 3600);
	ck_assert_uint_eq(o.nop_interval, 3600);

	olist_ok("chap_file=/etc/iserkit/chap");
	ck_assert_str_eq(o.chap_file, "/etc/iserkit/chap");

	olist_ok("chap_alg=md5");
	ck_assert_uint_eq(o.chap_algs, INI_CHAP_MD5);

	olist_ok("fabric=auto");
	ck_assert_str_eq(o.fabric, "auto");
	olist_ok("fabric=verbs");
	ck_assert_str_eq(o.fabric, "verbs");
	olist_ok("fabric=soft");
	ck_assert_str_eq(o.fabric, "soft");

	olist_ok("arm_delay=0");
	ck_assert_int_eq(o.arm_delay, 0);
	olist_ok("arm_delay=1000");
	ck_assert_int_eq(o.arm_delay, 1000);

	olist_ok("busy_poll=0"); /* off */
	ck_assert_uint_eq(o.busy_poll, 0);
	olist_ok("busy_poll=100000");
	ck_assert_uint_eq(o.busy_poll, 100000);
}
END_TEST

START_TEST(test_several_options)
{
	PARSE_OK("-o",
		 "ro,allow_other,cache,queue_depth=32,max_io=64k,initiator=iqn.a:b,"
		 "recovery_timeout=0,fabric=soft,busy_poll=5,mpa_crc,arm_delay=3",
		 URL, MNT);
	ck_assert(o.ro && o.allow_other && o.cache && o.mpa_crc);
	ck_assert_uint_eq(o.queue_depth, 32);
	ck_assert_uint_eq(o.max_io, 65536);
	ck_assert_str_eq(o.initiator, "iqn.a:b");
	ck_assert_uint_eq(o.recovery_timeout, 0);
	ck_assert_str_eq(o.fabric, "soft");
	ck_assert_uint_eq(o.busy_poll, 5);
	ck_assert_int_eq(o.arm_delay, 3);
	ck_assert_str_eq(o.url, URL);
	ck_assert_str_eq(o.mountpoint, MNT);

	/* several -o, attached or not, with -f between; the last value wins */
	PARSE_OK("-o", "ro,queue_depth=8", "-f", "-oinitiator=iqn.x:1", "-o",
		 "queue_depth=16,initiator=iqn.y:2,rw", "-o", "header_digest", URL, MNT);
	ck_assert(o.foreground && !o.ro && o.header_digest);
	ck_assert_uint_eq(o.queue_depth, 16);
	ck_assert_str_eq(o.initiator, "iqn.y:2");

	/* empty items are skipped */
	PARSE_OK("-o", ",ro,,allow_other,", "-o", ",", URL, MNT);
	ck_assert(o.ro && o.allow_other);

	/* opts_parse_list on its own adds to what is there */
	PARSE_OK("-o", "ro", URL, MNT);
	ck_assert_int_eq(opts_parse_list(&o, "queue_depth=64,chap_file=/c", err, sizeof(err)), 0);
	ck_assert(o.ro);
	ck_assert_uint_eq(o.queue_depth, 64);
	ck_assert_str_eq(o.chap_file, "/c");
	ck_assert_int_eq(opts_parse_list(&o, "chap_file=/d", err, sizeof(err)), 0);
	ck_assert_str_eq(o.chap_file, "/d");
}
END_TEST

START_TEST(test_arguments)
{
	BAD("expected a URL and a mount point", "-f");
	BAD("expected a URL and a mount point", URL);
	BAD("expected a URL and a mount point", "-o", "ro", URL);
	BAD("unexpected argument 'extra'", URL, MNT, "extra");
	BAD("--discover needs a URL", "--discover");
	BAD("unexpected argument '" MNT "'", "--discover", URL, MNT);
	/* options come first, as the synopsis shows */
	BAD("unexpected argument '-o'", URL, MNT, "-o", "ro");
}
END_TEST

START_TEST(test_unknown_options)
{
	BAD("unknown option '-x'", "-x", URL, MNT);
	/* the option itself, wherever it is in a cluster */
	BAD("unknown option '-x'", "-fx", URL, MNT);
	BAD("unknown option '-x'", "-xf", URL, MNT);
	/* and a parse after a refused cluster starts afresh (optind = 0) */
	PARSE_OK("-f", URL, MNT);
	ck_assert(o.foreground);
	BAD("unknown option '--bogus'", "--bogus", URL, MNT);
	BAD("unknown option '--help=x'", "--help=x", URL, MNT);
	BAD("-o needs a list of options", "-o");
	BAD("-o needs a list of options", "-f", "-o");

	olist_bad("bogus", "unknown option 'bogus'");
	olist_bad("bogus=1", "unknown option 'bogus'");
	olist_bad("ro,bogus,allow_other", "unknown option 'bogus'");
	olist_bad("RO", "unknown option 'RO'");
	olist_bad("queue_depth_=1", "unknown option 'queue_depth_'");
	/* FUSE's own options are not passed through */
	olist_bad("default_permissions", "unknown option 'default_permissions'");
	olist_bad("=5", "an option without a name");
	olist_bad("ro,=", "an option without a name");

	ck_assert_int_eq(opts_parse_list(&o, "nope", err, sizeof(err)), -EINVAL);
	check_err("nope", "unknown option 'nope'");
}
END_TEST

START_TEST(test_value_not_allowed)
{
	static const char *const flags[] = {
		"ro",	       "rw",	  "allow_other", "direct_io", "cache", "header_digest",
		"data_digest", "mpa_crc",
	};
	char list[64], why[64];
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		snprintf(why, sizeof(why), "option '%s' takes no value", flags[i]);
		snprintf(list, sizeof(list), "%s=1", flags[i]);
		olist_bad(list, why);
		snprintf(list, sizeof(list), "%s=", flags[i]);
		olist_bad(list, why);
	}
}
END_TEST

START_TEST(test_value_missing)
{
	static const char *const names[] = {
		"initiator",	    "chap_file", "chap_alg",  "queue_depth", "max_io",
		"recovery_timeout", "fabric",	 "arm_delay", "busy_poll",
	};
	char why[64];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(why, sizeof(why), "option '%s' needs a value", names[i]);
		olist_bad(names[i], why);
	}
}
END_TEST

static uint64_t get_queue_depth(void)
{
	return o.queue_depth;
}

static uint64_t get_max_io(void)
{
	return o.max_io;
}

static uint64_t get_recovery_timeout(void)
{
	return o.recovery_timeout;
}

static uint64_t get_arm_delay(void)
{
	return (uint64_t)o.arm_delay;
}

static uint64_t get_busy_poll(void)
{
	return o.busy_poll;
}

static uint64_t get_cmd_timeout(void)
{
	return o.cmd_timeout;
}

static uint64_t get_nop_interval(void)
{
	return o.nop_interval;
}

/* The numeric options, their bounds, and where the value lands. */
static const struct {
	const char *name;
	uint64_t min, max;
	uint64_t (*get)(void);
} numbers[] = {
	{"queue_depth", 1, 4096, get_queue_depth},
	{"max_io", 512, 64u << 20, get_max_io},
	{"recovery_timeout", 0, 7 * 24 * 3600, get_recovery_timeout},
	{"arm_delay", 0, 1000, get_arm_delay},
	{"busy_poll", 0, 100000, get_busy_poll},
	{"cmd_timeout", 1, 3600, get_cmd_timeout},
	{"nop_interval", 1, 3600, get_nop_interval},
};

/* -o @name=@val is refused with the exact message, naming option and range. */
static void number_bad(size_t i, const char *val)
{
	char list[128], want[OPTS_ERR_MAX];

	snprintf(list, sizeof(list), "%s=%s", numbers[i].name, val);
	snprintf(want, sizeof(want), "bad value for %s: '%s' (expected %llu..%llu)",
		 numbers[i].name, val, (unsigned long long)numbers[i].min,
		 (unsigned long long)numbers[i].max);
	olist_bad(list, numbers[i].name);
	ck_assert_str_eq(err, want);
}

START_TEST(test_numbers)
{
	static const char *const garbage[] = {
		"",
		"abc",
		"-1",
		"+1",
		" 5",
		"5 ",
		"1.5",
		"0x10",
		"12x",
		"1KB",
		"1T",
		"k",
		"99999999999999999999999",
	};
	char list[128], val[32];
	size_t i, j;

	for (i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		snprintf(val, sizeof(val), "%llu", (unsigned long long)numbers[i].min);
		snprintf(list, sizeof(list), "%s=%s", numbers[i].name, val);
		olist_ok(list);
		ck_assert_uint_eq(numbers[i].get(), numbers[i].min);

		snprintf(val, sizeof(val), "%llu", (unsigned long long)numbers[i].max);
		snprintf(list, sizeof(list), "%s=%s", numbers[i].name, val);
		olist_ok(list);
		ck_assert_uint_eq(numbers[i].get(), numbers[i].max);

		snprintf(val, sizeof(val), "%llu", (unsigned long long)numbers[i].max + 1);
		number_bad(i, val);
		if (numbers[i].min) {
			snprintf(val, sizeof(val), "%llu", (unsigned long long)numbers[i].min - 1);
			number_bad(i, val);
		}
		for (j = 0; j < sizeof(garbage) / sizeof(garbage[0]); j++)
			number_bad(i, garbage[j]);
	}
	number_bad(0, "0");
	number_bad(1, "65M");
	number_bad(1, "1G");
}
END_TEST

START_TEST(test_strings)
{
	char val[4200], list[4300];

	/* RFC 7143 §4.2.7.1: an iSCSI name is at most 223 bytes */
	snprintf(list, sizeof(list), "initiator=%s", rep(val, 'i', 223));
	olist_ok(list);
	ck_assert_uint_eq(strlen(o.initiator), 223);
	snprintf(list, sizeof(list), "initiator=%s", rep(val, 'i', 224));
	olist_bad(list, "bad value for initiator: empty or too long");
	olist_bad("initiator=", "bad value for initiator: empty or too long");

	snprintf(list, sizeof(list), "chap_file=/%s", rep(val, 'c', 4094));
	olist_ok(list);
	ck_assert_uint_eq(strlen(o.chap_file), 4095);
	snprintf(list, sizeof(list), "chap_file=/%s", rep(val, 'c', 4095));
	olist_bad(list, "bad value for chap_file: empty or too long");
	olist_bad("chap_file=", "bad value for chap_file: empty or too long");

	/* a number as long: the message is cut, still one line naming the option */
	snprintf(list, sizeof(list), "queue_depth=%s", rep(val, '7', 4000));
	olist_bad(list, "bad value for queue_depth: '777");
	ck_assert_uint_eq(strlen(err), OPTS_ERR_MAX - 1);
}
END_TEST

START_TEST(test_fabric_and_alg)
{
	olist_bad("fabric=rdma", "bad value for fabric: 'rdma' (auto, verbs, soft)");
	olist_bad("fabric=Soft", "bad value for fabric: 'Soft'");
	olist_bad("fabric=", "bad value for fabric: ''");
	olist_bad("fabric=softx", "bad value for fabric: 'softx'");
	olist_bad("fabric=verbs,fabric=bogus", "bad value for fabric: 'bogus'");
	olist_bad("chap_alg=sha256", "bad value for chap_alg: 'sha256' (md5)");
	olist_bad("chap_alg=MD5", "bad value for chap_alg: 'MD5'");
	olist_bad("chap_alg=", "bad value for chap_alg: ''");
}
END_TEST

START_TEST(test_small_err_buffer)
{
	char *argv[] = {keep("iser-mount"), keep("-o"), keep("queue_depth=9999"),
			keep(URL),	    keep(MNT),	NULL};
	char small[16];

	memset(small, 'x', sizeof(small));
	ck_assert_int_eq(opts_parse(5, argv, &o, small, sizeof(small)), -EINVAL);
	ck_assert_str_eq(small, "bad value for q");

	memset(small, 'x', sizeof(small));
	ck_assert_int_eq(opts_parse_list(&o, "ro=1", small, 8), -EINVAL);
	ck_assert_str_eq(small, "option ");
	ck_assert_int_eq(small[8], 'x');

	memset(small, 'x', sizeof(small));
	ck_assert_int_eq(opts_parse_list(&o, "max_io=1", small, 1), -EINVAL);
	ck_assert_int_eq(small[0], '\0');
	ck_assert_int_eq(small[1], 'x');
}
END_TEST

START_TEST(test_free)
{
	PARSE_OK(URL, MNT);
	opts_free(&o);
	ck_assert_ptr_null(o.initiator);
	ck_assert_ptr_null(o.chap_file);
	olist_ok("initiator=iqn.a:b,chap_file=/x,initiator=iqn.c:d");
	ck_assert_str_eq(o.initiator, "iqn.c:d");
	opts_free(&o);
	ck_assert_ptr_null(o.initiator);
	ck_assert_ptr_null(o.chap_file);
	opts_free(&o);
	/* an error after an allocation: opts_free still releases it */
	olist_bad("initiator=iqn.a:b,chap_file=/x,queue_depth=0", "queue_depth");
	ck_assert_str_eq(o.initiator, "iqn.a:b");
	opts_free(&o);
	ck_assert_ptr_null(o.initiator);
	ck_assert_ptr_null(o.chap_file);
}
END_TEST

START_TEST(test_parse_size)
{
	uint64_t v;

	ck_assert_int_eq(opts_parse_size("0", 100, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(opts_parse_size("4096", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(opts_parse_size("007", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 7);
	ck_assert_int_eq(opts_parse_size("64k", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 64 << 10);
	ck_assert_int_eq(opts_parse_size("64K", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 64 << 10);
	ck_assert_int_eq(opts_parse_size("1M", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 1 << 20);
	ck_assert_int_eq(opts_parse_size("3m", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 3 << 20);
	ck_assert_int_eq(opts_parse_size("2G", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 2ull << 30);
	ck_assert_int_eq(opts_parse_size("5g", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 5ull << 30);
	ck_assert_int_eq(opts_parse_size("0k", 0, &v), 0);
	ck_assert_uint_eq(v, 0);
}
END_TEST

START_TEST(test_parse_size_limits)
{
	uint64_t v;

	/* at the limit, and one past it */
	ck_assert_int_eq(opts_parse_size("1024", 1024, &v), 0);
	ck_assert_uint_eq(v, 1024);
	ck_assert_int_eq(opts_parse_size("1k", 1024, &v), 0);
	ck_assert_uint_eq(v, 1024);
	ck_assert_int_eq(opts_parse_size("1G", 1ull << 30, &v), 0);
	ck_assert_uint_eq(v, 1ull << 30);
	v = 42;
	ck_assert_int_eq(opts_parse_size("1025", 1024, &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("1k", 1023, &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("2k", 2047, &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("1025M", 1ull << 30, &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("1", 0, &v), -EINVAL);

	/* 64 bits: the largest number, and what overflows, with or without a suffix */
	ck_assert_int_eq(opts_parse_size("18446744073709551615", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	v = 42;
	ck_assert_int_eq(opts_parse_size("18446744073709551616", UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("99999999999999999999999", UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("17179869183G", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX - ((1ull << 30) - 1));
	v = 42;
	ck_assert_int_eq(opts_parse_size("17179869184G", UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("18014398509481984k", UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("17592186044416M", UINT64_MAX, &v), -EINVAL);
	ck_assert_uint_eq(v, 42); /* untouched on failure */
}
END_TEST

START_TEST(test_parse_size_garbage)
{
	static const char *const bad_sizes[] = {
		"",   "k",  "M",  "-1",	 "+1",	 " 1",	"1 ",	 "1KB", "1kk",
		"1T", "1P", "1b", "1.5", "0x10", "1e3", "1,000", "1k ", "1 k",
	};
	uint64_t v = 42;
	size_t i;

	for (i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		ck_assert_msg(opts_parse_size(bad_sizes[i], UINT64_MAX, &v) == -EINVAL,
			      "\"%s\" accepted", bad_sizes[i]);
		ck_assert_uint_eq(v, 42);
	}
}
END_TEST

/* --help names every -o option the code takes, and the CHAP variables. */
START_TEST(test_usage)
{
	static const char *const names[] = {
		"ro",	       "allow_other", "direct_io",     "cache",
		"queue_depth", "max_io",      "initiator",     "recovery_timeout",
		"chap_file",   "chap_alg",    "fabric",	       "arm_delay",
		"busy_poll",   "mpa_crc",     "header_digest", "data_digest",
	};
	char want[64];
	const char *p;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(want, sizeof(want), "  -o %s", names[i]);
		p = strstr(opts_usage, want);
		ck_assert_msg(p, "--help lacks \"%s\"", want);
		p += strlen(want);
		ck_assert_msg(*p == ' ' || *p == '=', "--help: \"%s\" followed by '%c'", want, *p);
	}
	for (i = 0; i < sizeof(chap_env) / sizeof(chap_env[0]); i++)
		ck_assert_msg(strstr(opts_usage, chap_env[i]), "--help lacks %s", chap_env[i]);
}
END_TEST

START_TEST(test_chap_none)
{
	ck_assert_int_eq(load_chap(NULL, NULL), 0);
	assert_chap("", "", "", "");
	ck_assert(chap_is_zero(&chap));
	ck_assert_int_eq(load_chap("", ""), 0);
	ck_assert(chap_is_zero(&chap));
	/* an empty variable is no value */
	setenv("ISERKIT_CHAP_USER", "", 1);
	setenv("ISERKIT_CHAP_PASSWORD", "", 1);
	ck_assert_int_eq(load_chap(NULL, NULL), 0);
	ck_assert(chap_is_zero(&chap));
}
END_TEST

START_TEST(test_chap_file)
{
	int ret = load_chap_text("# CHAP for the lab target\n"
				 "\n"
				 "   \t\n"
				 "  # an indented comment\n"
				 "user=iqn.2026-11.org.example:host\n"
				 "  password =\t a secret of 12 or more  \n"
				 "target_user\t=iqn.2026-11.org.example:disk\r\n"
				 "target_password=an=other # secret",
				 NULL, NULL);

	ck_assert_msg(ret == 0, "%d (%s)", ret, err);
	/* blanks around keys and values go, inner ones stay; no inline comments */
	assert_chap("iqn.2026-11.org.example:host", "a secret of 12 or more",
		    "iqn.2026-11.org.example:disk", "an=other # secret");
}
END_TEST

START_TEST(test_chap_file_one_way)
{
	int ret = load_chap_text("user=alice\npassword=secretsecret12\n", "", NULL);

	ck_assert_msg(ret == 0, "%d (%s)", ret, err);
	assert_chap("alice", "secretsecret12", "", "");

	/* an empty value is no value: the environment gives it */
	setenv("ISERKIT_CHAP_PASSWORD", "fromtheenvironment", 1);
	ret = load_chap_text("user=alice\npassword=\n", NULL, NULL);
	ck_assert_msg(ret == 0, "%d (%s)", ret, err);
	assert_chap("alice", "fromtheenvironment", "", "");

	/* an empty file is no credentials */
	unsetenv("ISERKIT_CHAP_PASSWORD");
	ck_assert_int_eq(load_chap_text("", NULL, NULL), 0);
	ck_assert(chap_is_zero(&chap));
	/* its mode, for iser-mount's warning when others may read it */
	ck_assert_uint_eq(chap.file_mode, 0600);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(opts_load_chap(&o, NULL, NULL, &chap, err, sizeof(err)), 0);
	ck_assert_uint_eq(chap.file_mode, 0644);
}
END_TEST

START_TEST(test_chap_env)
{
	setenv("ISERKIT_CHAP_USER", "envuser", 1);
	setenv("ISERKIT_CHAP_PASSWORD", "env secret 12", 1);
	ck_assert_int_eq(load_chap(NULL, NULL), 0);
	assert_chap("envuser", "env secret 12", "", "");

	setenv("ISERKIT_CHAP_TARGET_USER", "envtarget", 1);
	setenv("ISERKIT_CHAP_TARGET_PASSWORD", "env target secret", 1);
	ck_assert_int_eq(load_chap(NULL, NULL), 0);
	assert_chap("envuser", "env secret 12", "envtarget", "env target secret");
}
END_TEST

START_TEST(test_chap_url)
{
	ck_assert_int_eq(load_chap("urluser", "urlsecret123"), 0);
	assert_chap("urluser", "urlsecret123", "", "");
	/* the URL has no target fields: the environment gives them */
	setenv("ISERKIT_CHAP_TARGET_USER", "envtarget", 1);
	setenv("ISERKIT_CHAP_TARGET_PASSWORD", "envtargetsecret", 1);
	ck_assert_int_eq(load_chap("urluser", "urlsecret123"), 0);
	assert_chap("urluser", "urlsecret123", "envtarget", "envtargetsecret");
}
END_TEST

/* iser-mount(8): "Each value is taken from the first of these that has it:
 * the URL, the chap_file option, the environment." */
START_TEST(test_chap_precedence)
{
	static const char file[] = "user=fileuser\n"
				   "password=filesecret\n"
				   "target_user=filetarget\n"
				   "target_password=filetargetsecret\n";
	int ret;

	setenv("ISERKIT_CHAP_USER", "envuser", 1);
	setenv("ISERKIT_CHAP_PASSWORD", "envsecret", 1);
	setenv("ISERKIT_CHAP_TARGET_USER", "envtarget", 1);
	setenv("ISERKIT_CHAP_TARGET_PASSWORD", "envtargetsecret", 1);

	/* all three: the URL, then the file */
	ret = load_chap_text(file, "urluser", "urlsecret");
	ck_assert_msg(ret == 0, "%d (%s)", ret, err);
	assert_chap("urluser", "urlsecret", "filetarget", "filetargetsecret");

	/* file and environment: the file */
	ret = opts_load_chap(&o, NULL, NULL, &chap, err, sizeof(err));
	ck_assert_msg(ret == 0, "%d (%s)", ret, err);
	assert_chap("fileuser", "filesecret", "filetarget", "filetargetsecret");

	/* each value on its own: a user in the URL, its password in the file */
	ret = opts_load_chap(&o, "urluser", "", &chap, err, sizeof(err));
	ck_assert_msg(ret == 0, "%d (%s)", ret, err);
	assert_chap("urluser", "filesecret", "filetarget", "filetargetsecret");

	/* what the file lacks comes from the environment */
	ret = load_chap_text("password=filesecret\ntarget_user=filetarget\n", NULL, NULL);
	ck_assert_msg(ret == 0, "%d (%s)", ret, err);
	assert_chap("envuser", "filesecret", "filetarget", "envtargetsecret");

	/* URL and environment, no file */
	ck_assert_int_eq(load_chap("urluser", "urlsecret"), 0);
	assert_chap("urluser", "urlsecret", "envtarget", "envtargetsecret");
}
END_TEST

START_TEST(test_chap_file_missing)
{
	char opt[128], want[128];
	int fd;

	/* a name that was a file a moment ago */
	snprintf(path, sizeof(path), "/tmp/iserkit-opts-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(unlink(path), 0);
	snprintf(opt, sizeof(opt), "chap_file=%s", path);
	olist_ok(opt);
	ck_assert_int_eq(opts_load_chap(&o, "urluser", "urlsecret", &chap, err, sizeof(err)),
			 -ENOENT);
	snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
	ck_assert_str_eq(err, want);
	ck_assert(chap_is_zero(&chap));
	path[0] = '\0';
}
END_TEST

START_TEST(test_chap_file_is_dir)
{
	char want[128];

	/* read(2) fails with EISDIR: not taken for an empty file */
	olist_ok("chap_file=/tmp");
	ck_assert_int_eq(opts_load_chap(&o, "urluser", "urlsecret", &chap, err, sizeof(err)),
			 -EISDIR);
	snprintf(want, sizeof(want), "/tmp: %s", strerror(EISDIR));
	ck_assert_str_eq(err, want);
	ck_assert(chap_is_zero(&chap));
}
END_TEST

START_TEST(test_chap_file_not_dir)
{
	char opt[128], want[128];

	/* a path through a regular file: the error is the errno of open */
	write_file("user=a\npassword=b\n", 0600);
	snprintf(opt, sizeof(opt), "chap_file=%s/chap", path);
	olist_ok(opt);
	ck_assert_int_eq(opts_load_chap(&o, NULL, NULL, &chap, err, sizeof(err)), -ENOTDIR);
	snprintf(want, sizeof(want), "%s/chap: %s", path, strerror(ENOTDIR));
	ck_assert_str_eq(err, want);
	ck_assert(chap_is_zero(&chap));
}
END_TEST

/* @text is refused at line @line, with the file and line in the message.
 * No URL fields: a field the URL gives is never read from the file. */
static void chap_file_bad(const char *text, unsigned int line)
{
	char want[OPTS_ERR_MAX];

	memset(&chap, 0x5a, sizeof(chap));
	ck_assert_int_eq(load_chap_text(text, NULL, NULL), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:%u: expected user=, password=, target_user= or target_password= "
		 "(values below %d bytes)",
		 path, line, OPTS_SECRET_MAX);
	ck_assert_str_eq(err, want);
	ck_assert_msg(chap_is_zero(&chap), "credentials left after an error");
}

START_TEST(test_chap_file_malformed)
{
	char text[600], val[300];

	chap_file_bad("user alice\n", 1);
	chap_file_bad("# ok\nuser=alice\npassword\n", 3);
	chap_file_bad("\n\nsecret=alice\n", 3);
	chap_file_bad("User=alice\n", 1);
	chap_file_bad("=alice\n", 1);
	chap_file_bad("username=alice\n", 1);
	chap_file_bad("user=a\npassword=b\n[chap]\n", 3);

	/* a value is below OPTS_SECRET_MAX bytes */
	snprintf(text, sizeof(text), "user=alice\npassword=%s\n", rep(val, 's', OPTS_SECRET_MAX));
	chap_file_bad(text, 2);
	snprintf(text, sizeof(text), "target_user=%s\n", rep(val, 't', OPTS_SECRET_MAX));
	chap_file_bad(text, 1);

	snprintf(text, sizeof(text), "user=alice\npassword=%s\n",
		 rep(val, 's', OPTS_SECRET_MAX - 1));
	ck_assert_int_eq(load_chap_text(text, NULL, NULL), 0);
	ck_assert_uint_eq(strlen(chap.secret), OPTS_SECRET_MAX - 1);
	ck_assert_str_eq(chap.secret, val);
}
END_TEST

START_TEST(test_chap_pairs)
{
	chap_bad(load_chap("urluser", NULL), "CHAP: a user name without a password");
	chap_bad(load_chap(NULL, "urlsecret"), "CHAP: a password without a user name");

	setenv("ISERKIT_CHAP_TARGET_USER", "envtarget", 1);
	chap_bad(load_chap("u", "s"), "CHAP: a target user name without a target password");
	unsetenv("ISERKIT_CHAP_TARGET_USER");

	setenv("ISERKIT_CHAP_TARGET_PASSWORD", "envtargetsecret", 1);
	chap_bad(load_chap("u", "s"), "CHAP: a target password without a target user name");

	/* mutual CHAP needs one-way CHAP first */
	setenv("ISERKIT_CHAP_TARGET_USER", "envtarget", 1);
	chap_bad(load_chap(NULL, NULL), "mutual CHAP (target_user) needs our user and password");

	unsetenv("ISERKIT_CHAP_TARGET_USER");
	unsetenv("ISERKIT_CHAP_TARGET_PASSWORD");
	chap_bad(load_chap_text("password=filesecret\n", NULL, NULL),
		 "CHAP: a password without a user name");
}
END_TEST

START_TEST(test_chap_lengths)
{
	char val[OPTS_SECRET_MAX + 1], val2[OPTS_SECRET_MAX + 1];

	ck_assert_int_eq(
		load_chap(rep(val, 'u', OPTS_SECRET_MAX - 1), rep(val2, 's', OPTS_SECRET_MAX - 1)),
		0);
	ck_assert_str_eq(chap.user, val);
	ck_assert_str_eq(chap.secret, val2);

	chap_bad(load_chap(rep(val, 'u', OPTS_SECRET_MAX), "s"),
		 "CHAP: a name or password in the URL is too long");
	/* the user name, taken before the password, is wiped too */
	chap_bad(load_chap("u", rep(val, 's', OPTS_SECRET_MAX)),
		 "CHAP: a name or password in the URL is too long");

	setenv("ISERKIT_CHAP_USER", "envuser", 1);
	setenv("ISERKIT_CHAP_PASSWORD", rep(val, 'p', OPTS_SECRET_MAX - 1), 1);
	ck_assert_int_eq(load_chap(NULL, NULL), 0);
	ck_assert_str_eq(chap.secret, val);
	setenv("ISERKIT_CHAP_PASSWORD", rep(val, 'p', OPTS_SECRET_MAX), 1);
	chap_bad(load_chap(NULL, NULL), "ISERKIT_CHAP_PASSWORD is too long");
	setenv("ISERKIT_CHAP_PASSWORD", "envsecret", 1);
	setenv("ISERKIT_CHAP_TARGET_USER", rep(val, 't', OPTS_SECRET_MAX), 1);
	chap_bad(load_chap(NULL, NULL), "ISERKIT_CHAP_TARGET_USER is too long");
}
END_TEST

START_TEST(test_chap_wipe)
{
	static const struct opts_chap zero;

	ck_assert_int_eq(load_chap("urluser", "urlsecret"), 0);
	ck_assert_str_eq(chap.secret, "urlsecret");
	opts_chap_wipe(&chap);
	ck_assert_mem_eq(&chap, &zero, sizeof(zero));
	memset(&chap, 0x5a, sizeof(chap));
	opts_chap_wipe(&chap);
	ck_assert_mem_eq(&chap, &zero, sizeof(zero));
}
END_TEST

static Suite *opts_suite(void)
{
	Suite *su = suite_create("opts");
	TCase *tc = tcase_create("command line");
	TCase *tc_size = tcase_create("sizes");
	TCase *tc_chap = tcase_create("chap");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_dash_flags);
	tcase_add_test(tc, test_flag_options);
	tcase_add_test(tc, test_value_options);
	tcase_add_test(tc, test_several_options);
	tcase_add_test(tc, test_arguments);
	tcase_add_test(tc, test_unknown_options);
	tcase_add_test(tc, test_value_not_allowed);
	tcase_add_test(tc, test_value_missing);
	tcase_add_test(tc, test_numbers);
	tcase_add_test(tc, test_strings);
	tcase_add_test(tc, test_fabric_and_alg);
	tcase_add_test(tc, test_small_err_buffer);
	tcase_add_test(tc, test_free);
	tcase_add_test(tc, test_usage);
	suite_add_tcase(su, tc);

	tcase_add_test(tc_size, test_parse_size);
	tcase_add_test(tc_size, test_parse_size_limits);
	tcase_add_test(tc_size, test_parse_size_garbage);
	suite_add_tcase(su, tc_size);

	tcase_add_checked_fixture(tc_chap, setup, teardown);
	tcase_add_test(tc_chap, test_chap_none);
	tcase_add_test(tc_chap, test_chap_file);
	tcase_add_test(tc_chap, test_chap_file_one_way);
	tcase_add_test(tc_chap, test_chap_env);
	tcase_add_test(tc_chap, test_chap_url);
	tcase_add_test(tc_chap, test_chap_precedence);
	tcase_add_test(tc_chap, test_chap_file_missing);
	tcase_add_test(tc_chap, test_chap_file_is_dir);
	tcase_add_test(tc_chap, test_chap_file_not_dir);
	tcase_add_test(tc_chap, test_chap_file_malformed);
	tcase_add_test(tc_chap, test_chap_pairs);
	tcase_add_test(tc_chap, test_chap_lengths);
	tcase_add_test(tc_chap, test_chap_wipe);
	suite_add_tcase(su, tc_chap);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(opts_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
