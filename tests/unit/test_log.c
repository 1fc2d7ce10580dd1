/*
 * Unit tests for common/log: one timestamped line per call on stderr, with
 * the program's name and the level, and the level filter.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* Run @fn with stderr on a pipe and return what it wrote. */
static char *capture(void (*fn)(void))
{
	static char buf[4096];
	int fds[2], saved;
	ssize_t n;

	ck_assert_int_eq(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void two_lines(void)
{
	log_init("iser-test", LOG_LVL_INFO, false);
	log_info("portal %s:%d open", "127.0.0.1", 3260);
	log_debug("not shown at INFO");
	log_err("LUN %u: %s", 3u, "backing file gone");
}

START_TEST(test_format_and_filter)
{
	char *out = capture(two_lines), *nl, pid[32];

	nl = strchr(out, '\n');
	ck_assert_ptr_nonnull(nl);
	/* 2026-11-22T03:45:01.123Z iser-test[PID]: info: portal ... */
	ck_assert_msg(out[4] == '-' && out[10] == 'T' && out[19] == '.' && out[23] == 'Z', "%s",
		      out);
	snprintf(pid, sizeof(pid), "iser-test[%d]: info: ", (int)getpid());
	ck_assert_msg(strstr(out, pid) == out + 25, "%s", out);
	ck_assert(strstr(out, "portal 127.0.0.1:3260 open\n"));
	ck_assert(!strstr(out, "not shown"));
	ck_assert(strstr(nl + 1, ": error: LUN 3: backing file gone\n"));
	ck_assert_ptr_null(strchr(strchr(nl + 1, '\n') + 1, '\n'));
}
END_TEST

static void long_line(void)
{
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_init("iser-test", LOG_LVL_DEBUG, false);
	log_debug("%s", big);
}

START_TEST(test_long_line_truncated)
{
	char *out = capture(long_line);
	size_t len = strlen(out);

	ck_assert_uint_eq(len, 1023);
	ck_assert_int_eq(out[len - 1], '\n');
	ck_assert_ptr_eq(strchr(out, '\n'), out + len - 1);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("log");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_format_and_filter);
	tcase_add_test(tc, test_long_line_truncated);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
