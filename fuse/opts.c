/*
 * opts: the command line and the CHAP sources. See opts.h.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ini.h"
#include "opts.h"

#define MAX_QUEUE_DEPTH 4096
#define MAX_MAX_IO (64u << 20)
#define MAX_BUSY_POLL 100000u /* us */
_Static_assert(OPTS_DEFAULT_BUSY_POLL == 100, "update the usage and the man page");
#define MAX_RECOVERY_TIMEOUT (7u * 24 * 3600)
#define MAX_CMD_TIMEOUT 3600u /* s, and the ping interval's */
#define IQN_MAX 223	      /* RFC 7143 §4.2.7.1: 223 bytes */

const char opts_usage[] =
	"Usage: iser-mount [-f] [-d] [-o OPTION[,OPTION...]] URL MOUNTPOINT\n"
	"       iser-mount --discover iscsi://HOST[:PORT]\n"
	"\n"
	"Show the LUNs of an iSCSI target as files lun0, lun1... under MOUNTPOINT.\n"
	"URL: iscsi://[USER[%PASSWORD]@]HOST[:PORT]/TARGET-IQN[/LUN]\n"
	"     iser://... the same over iSER (RFC 7145)\n"
	"\n"
	"  -o ro                  read-only\n"
	"  -o rw                  read-write (the default)\n"
	"  -o allow_other         let other users in (see fuse(8))\n"
	"  -o direct_io           bypass the page cache (the default)\n"
	"  -o cache               use the page cache\n"
	"  -o uring               take FUSE requests over io_uring when the kernel\n"
	"                         offers it (default: from /dev/fuse)\n"
	"  -o queue_depth=N       SCSI commands in flight (default 128)\n"
	"  -o max_io=BYTES        largest SCSI command (default 1M)\n"
	"  -o initiator=IQN       our initiator name\n"
	"  -o recovery_timeout=S  keep reconnecting for S seconds (default 120,\n"
	"                         0: forever), then fail I/O with EIO\n"
	"  -o cmd_timeout=S       abort a command with no answer after S seconds,\n"
	"                         then reset the LUN, then reconnect (default 30)\n"
	"  -o nop_interval=S      ping the target after S seconds without a word\n"
	"                         from it; no answer in 2S: reconnect (default 5)\n"
	"  -o chap_file=FILE      CHAP names and secrets (user=, password=,\n"
	"                         target_user=, target_password=)\n"
	"  -o chap_alg=md5        offer CHAP with MD5 only (default: SHA-256 and\n"
	"                         MD5, then MD5 alone if the target fails)\n"
	"  -o fabric=F            iser://: auto (RDMA device if any, else soft),\n"
	"                         verbs (rdma-core) or soft (iWARP over TCP)\n"
	"  -o arm_delay=N         iser://: empty completion queue polls before\n"
	"                         waiting for a notification again (default 2)\n"
	"  -o busy_poll=US        keep polling for US microseconds after the last\n"
	"                         event before sleeping (default 100; 0: off)\n"
	"  -o mpa_crc             iser:// on soft: ask for MPA CRC32C on every frame\n"
	"                         (default: not asked, as siw; TCP's checksum only)\n"
	"  -o header_digest       ask for CRC32C header digests\n"
	"  -o data_digest         ask for CRC32C data digests\n"
	"  -f                     stay in the foreground\n"
	"  -d                     debug: log every request (implies -f)\n"
	"      --discover         list the targets and LUNs of a portal\n"
	"  -h, --help             show this help\n"
	"  -V, --version          show the version\n"
	"\n"
	"CHAP secrets may also come from ISERKIT_CHAP_USER, ISERKIT_CHAP_PASSWORD,\n"
	"ISERKIT_CHAP_TARGET_USER and ISERKIT_CHAP_TARGET_PASSWORD.\n"
	"Unmount with 'fusermount3 -u MOUNTPOINT' or SIGTERM.\n";

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int opts_parse_size(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	default:
		return -EINVAL;
	}
	if (shift && end[1])
		return -EINVAL;
	if (v > (max >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

/* Options that are plain flags: where they go and what they set. */
struct flag_opt {
	const char *name;
	size_t off;
	bool val;
};

static const struct flag_opt flag_opts[] = {
	{"ro", offsetof(struct opts, ro), true},
	{"rw", offsetof(struct opts, ro), false},
	{"allow_other", offsetof(struct opts, allow_other), true},
	{"direct_io", offsetof(struct opts, cache), false},
	{"cache", offsetof(struct opts, cache), true},
	{"header_digest", offsetof(struct opts, header_digest), true},
	{"mpa_crc", offsetof(struct opts, mpa_crc), true},
	{"data_digest", offsetof(struct opts, data_digest), true},
	{"uring", offsetof(struct opts, uring), true},
	{"no_uring", offsetof(struct opts, uring), false},
};

static int set_flag(struct opts *o, const char *name, const char *val, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < sizeof(flag_opts) / sizeof(flag_opts[0]); i++) {
		if (strcmp(name, flag_opts[i].name))
			continue;
		if (val)
			return fail(err, errlen, "option '%s' takes no value", name);
		*(bool *)((char *)o + flag_opts[i].off) = flag_opts[i].val;
		return 0;
	}
	return -ENOENT;
}

static int set_uint(const char *name, const char *val, uint64_t min, uint64_t max, uint64_t *out,
		    char *err, size_t errlen)
{
	int n;

	if (opts_parse_size(val, max, out) || *out < min) {
		n = snprintf(err, errlen, "bad value for %s: '%s' (expected ", name, val);
		if (n > 0 && (size_t)n < errlen)
			snprintf(err + n, errlen - (size_t)n, "%llu..%llu)",
				 (unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	return 0;
}

static int set_string(char **dst, const char *name, const char *val, size_t max, char *err,
		      size_t errlen)
{
	char *s;

	if (!*val || strlen(val) > max)
		return fail(err, errlen, "bad value for %s: empty or too long", name);
	s = strdup(val);
	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

static int set_value(struct opts *o, const char *name, const char *val, char *err, size_t errlen)
{
	uint64_t v;
	int ret;

	if (!strcmp(name, "initiator"))
		return set_string(&o->initiator, name, val, IQN_MAX, err, errlen);
	if (!strcmp(name, "chap_file"))
		return set_string(&o->chap_file, name, val, 4095, err, errlen);
	if (!strcmp(name, "fabric")) {
		static const char *const fabrics[] = {"auto", "verbs", "soft"};
		size_t i;

		for (i = 0; i < 3; i++)
			if (!strcmp(val, fabrics[i]))
				o->fabric = fabrics[i];
		if (!o->fabric || strcmp(o->fabric, val))
			return fail(err, errlen, "bad value for fabric: '%s' (auto, verbs, soft)",
				    val);
		return 0;
	}
	if (!strcmp(name, "chap_alg")) {
		/* The library always allows MD5: "md5" is the one restriction. */
		if (strcmp(val, "md5"))
			return fail(err, errlen, "bad value for chap_alg: '%s' (md5)", val);
		o->chap_algs = INI_CHAP_MD5;
		return 0;
	}
	if (!strcmp(name, "queue_depth")) {
		ret = set_uint(name, val, 1, MAX_QUEUE_DEPTH, &v, err, errlen);
		o->queue_depth = (unsigned int)v;
	} else if (!strcmp(name, "max_io")) {
		ret = set_uint(name, val, 512, MAX_MAX_IO, &v, err, errlen);
		o->max_io = (uint32_t)v;
	} else if (!strcmp(name, "arm_delay")) {
		ret = set_uint(name, val, 0, 1000, &v, err, errlen);
		o->arm_delay = (int)v;
	} else if (!strcmp(name, "busy_poll")) {
		ret = set_uint(name, val, 0, MAX_BUSY_POLL, &v, err, errlen);
		o->busy_poll = (unsigned int)v;
	} else if (!strcmp(name, "recovery_timeout")) {
		ret = set_uint(name, val, 0, MAX_RECOVERY_TIMEOUT, &v, err, errlen);
		o->recovery_timeout = (unsigned int)v;
	} else if (!strcmp(name, "cmd_timeout")) {
		ret = set_uint(name, val, 1, MAX_CMD_TIMEOUT, &v, err, errlen);
		o->cmd_timeout = (unsigned int)v;
	} else if (!strcmp(name, "nop_interval")) {
		ret = set_uint(name, val, 1, MAX_CMD_TIMEOUT, &v, err, errlen);
		o->nop_interval = (unsigned int)v;
	} else {
		return fail(err, errlen, "unknown option '%s' (try --help)", name);
	}
	return ret;
}

static const char *const value_opts[] = {
	"initiator", "chap_file", "chap_alg",  "queue_depth", "max_io",	      "recovery_timeout",
	"fabric",    "arm_delay", "busy_poll", "cmd_timeout", "nop_interval",
};

static bool is_value_opt(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(value_opts) / sizeof(value_opts[0]); i++)
		if (!strcmp(name, value_opts[i]))
			return true;
	return false;
}

static int set_option(struct opts *o, char *item, char *err, size_t errlen)
{
	char *eq = strchr(item, '=');
	int ret;

	if (eq)
		*eq = '\0';
	if (!*item)
		return fail(err, errlen, "an option without a name in -o");
	ret = set_flag(o, item, eq ? eq + 1 : NULL, err, errlen);
	if (ret != -ENOENT)
		return ret;
	if (!is_value_opt(item))
		return fail(err, errlen, "unknown option '%s' (try --help)", item);
	if (!eq)
		return fail(err, errlen, "option '%s' needs a value", item);
	return set_value(o, item, eq + 1, err, errlen);
}

int opts_parse_list(struct opts *o, const char *list, char *err, size_t errlen)
{
	char *copy = strdup(list), *item, *comma;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (item = copy; item && !ret; item = comma) {
		comma = strchr(item, ',');
		if (comma)
			*comma++ = '\0';
		if (*item)
			ret = set_option(o, item, err, errlen);
	}
	free(copy);
	return ret;
}

static void opts_defaults(struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_io = OPTS_DEFAULT_MAX_IO;
	o->recovery_timeout = INI_DEFAULT_RECOVERY_TIMEOUT;
	o->arm_delay = -1;
	o->busy_poll = OPTS_DEFAULT_BUSY_POLL;
}

static int parse_flags(int argc, char **argv, struct opts *o, char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{"discover", no_argument, NULL, 'D'}, {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},  {"foreground", no_argument, NULL, 'f'},
		{"debug", no_argument, NULL, 'd'},    {0},
	};
	const char *bad;
	int opt, ret, at;

	opterr = 0;
	optind = 0; /* 0, not 1: glibc forgets a half-read cluster like -xf */
	for (;;) {
		at = optind ? optind : 1;
		opt = getopt_long(argc, argv, "+o:fdhV", longopts, NULL);
		if (opt == -1)
			break;
		switch (opt) {
		case 'o':
			ret = opts_parse_list(o, optarg, err, errlen);
			if (ret)
				return ret;
			break;
		case 'D':
			o->discover = true;
			break;
		case 'f':
			o->foreground = true;
			break;
		case 'd':
			o->debug = o->foreground = true;
			break;
		case 'h':
			o->help = true;
			break;
		case 'V':
			o->version = true;
			break;
		default:
			if (optopt == 'o')
				return fail(err, errlen, "-o needs a list of options");
			/* The argument it was in: passed, unless it stopped
			 * inside a cluster (-xf). A long one is named whole,
			 * a short one alone. */
			bad = optind > at ? argv[optind - 1] : argv[optind];
			if (strncmp(bad, "--", 2) && optopt)
				return fail(err, errlen, "unknown option '-%c' (try --help)",
					    optopt);
			return fail(err, errlen, "unknown option '%s' (try --help)", bad);
		}
	}
	return 0;
}

int opts_parse(int argc, char **argv, struct opts *o, char *err, size_t errlen)
{
	int ret, want;

	opts_defaults(o);
	ret = parse_flags(argc, argv, o, err, errlen);
	if (ret || o->help || o->version)
		return ret;
	want = o->discover ? 1 : 2;
	if (argc - optind < want)
		return fail(err, errlen, "%s",
			    o->discover ? "--discover needs a URL"
					: "expected a URL and a mount point (try --help)");
	if (argc - optind > want)
		return fail(err, errlen, "unexpected argument '%s' (try --help)",
			    argv[optind + want]);
	o->url = argv[optind];
	o->mountpoint = o->discover ? NULL : argv[optind + 1];
	return 0;
}

void opts_free(struct opts *o)
{
	free(o->initiator);
	free(o->chap_file);
	o->initiator = o->chap_file = NULL;
}

/* CHAP: each field from the first source that has it. */

struct chap_key {
	const char *key; /* in the file */
	const char *env;
	size_t off;
};

static const struct chap_key chap_keys[] = {
	{"user", "ISERKIT_CHAP_USER", offsetof(struct opts_chap, user)},
	{"password", "ISERKIT_CHAP_PASSWORD", offsetof(struct opts_chap, secret)},
	{"target_user", "ISERKIT_CHAP_TARGET_USER", offsetof(struct opts_chap, target_user)},
	{"target_password", "ISERKIT_CHAP_TARGET_PASSWORD",
	 offsetof(struct opts_chap, target_secret)},
};

#define NCHAP_KEYS (sizeof(chap_keys) / sizeof(chap_keys[0]))

static char *chap_field(struct opts_chap *c, size_t i)
{
	return (char *)c + chap_keys[i].off;
}

/* Fill the field if no earlier source did. */
static int chap_offer(struct opts_chap *c, size_t i, const char *val)
{
	char *dst = chap_field(c, i);
	size_t n = strlen(val);

	if (*dst || !n)
		return 0;
	if (n >= OPTS_SECRET_MAX)
		return -EINVAL;
	memcpy(dst, val, n + 1);
	return 0;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/* One line of a CHAP file: "key=value", blank, or a # comment. The value
 * is everything after '=' but surrounding blanks: secrets rarely end in
 * a space, and editors often leave one. */
static int chap_line(struct opts_chap *c, char *line)
{
	char *eq, *key;
	size_t i;

	line = trim(line);
	if (!*line || *line == '#')
		return 0;
	eq = strchr(line, '=');
	if (!eq)
		return -EINVAL;
	*eq = '\0';
	key = trim(line);
	for (i = 0; i < NCHAP_KEYS; i++)
		if (!strcmp(key, chap_keys[i].key))
			return chap_offer(c, i, trim(eq + 1));
	return -EINVAL;
}

static int chap_file(const char *path, struct opts_chap *c, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	unsigned int lineno = 0;
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;

	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	if (!fstat(fileno(f), &st))
		c->file_mode = st.st_mode & 07777;
	for (;;) {
		errno = 0;
		if (ret || getline(&line, &cap, f) < 0)
			break;
		lineno++;
		ret = chap_line(c, line);
	}
	if (!ret && (ferror(f) || errno)) {
		/* a directory, an I/O error, no memory: not the file's end */
		ret = errno ? -errno : -EIO;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
	} else if (ret)
		snprintf(err, errlen,
			 "%s:%u: expected user=, password=, target_user= or target_password= "
			 "(values below %d bytes)",
			 path, lineno, OPTS_SECRET_MAX);
	if (line)
		explicit_bzero(line, cap);
	free(line);
	fclose(f);
	return ret;
}

static int chap_check(const struct opts_chap *c, char *err, size_t errlen)
{
	if (!*c->user != !*c->secret)
		return fail(err, errlen, "CHAP: %s",
			    *c->user ? "a user name without a password"
				     : "a password without a user name");
	if (!*c->target_user != !*c->target_secret)
		return fail(err, errlen, "CHAP: %s",
			    *c->target_user ? "a target user name without a target password"
					    : "a target password without a target user name");
	if (*c->target_user && !*c->user)
		return fail(err, errlen, "CHAP: %s",
			    "mutual CHAP (target_user) needs our user and password too");
	return 0;
}

int opts_load_chap(const struct opts *o, const char *url_user, const char *url_secret,
		   struct opts_chap *c, char *err, size_t errlen)
{
	const char *v;
	size_t i;
	int ret;

	memset(c, 0, sizeof(*c));
	if (chap_offer(c, 0, url_user ? url_user : "") ||
	    chap_offer(c, 1, url_secret ? url_secret : "")) {
		ret = fail(err, errlen, "CHAP: a name or password in the URL is too long");
		goto err_wipe;
	}
	if (o->chap_file) {
		ret = chap_file(o->chap_file, c, err, errlen);
		if (ret)
			goto err_wipe;
	}
	for (i = 0; i < NCHAP_KEYS; i++) {
		v = getenv(chap_keys[i].env);
		if (v && chap_offer(c, i, v)) {
			ret = fail(err, errlen, "%s is too long", chap_keys[i].env);
			goto err_wipe;
		}
	}
	ret = chap_check(c, err, errlen);
	if (ret)
		goto err_wipe;
	return 0;

err_wipe:
	opts_chap_wipe(c);
	return ret;
}

void opts_chap_wipe(struct opts_chap *c)
{
	explicit_bzero(c, sizeof(*c));
}
