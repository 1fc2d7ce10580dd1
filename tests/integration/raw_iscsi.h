/*
 * raw_iscsi: what target_mcs and target_bad_input both need to speak iSCSI
 * to iser-target over raw TCP sockets, with PDUs built by hand (not with
 * common/iscsi, so that the codec under test does not vouch for itself):
 * the daemon started in a directory of its own and stopped, its log,
 * reading and writing whole PDUs, and TAP lines.
 *
 * Static, for one test program each: a test includes it once, and uses
 * every function here (unused ones would warn).
 */
#ifndef ISERKIT_RAW_ISCSI_H
#define ISERKIT_RAW_ISCSI_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BHS_LEN 48
#define RSVD 0xffffffffu

/* Opcodes, RFC 7143 §11.2.1.2 */
#define OP_NOP_OUT 0x00
#define OP_SCSI_CMD 0x01
#define OP_TMF_REQ 0x02
#define OP_LOGIN_REQ 0x03
#define OP_LOGOUT_REQ 0x06
#define OP_NOP_IN 0x20
#define OP_SCSI_RSP 0x21
#define OP_TMF_RSP 0x22
#define OP_LOGIN_RSP 0x23
#define OP_DATA_IN 0x25
#define OP_LOGOUT_RSP 0x26
#define OP_REJECT 0x3f
#define OP_IMMEDIATE 0x40

#define not_ok(...) check(false, __VA_ARGS__)

struct pdu {
	uint8_t bhs[BHS_LEN];
	uint8_t data[16384 + 1]; /* a NUL after the data ends a key list */
	uint32_t len;
};

static pid_t target_pid = -1;
static char dir[64], logpath[96], confpath[96], lunpath[96];
static int port;
static unsigned int fails;
static unsigned int log_tail; /* the log lines a failure shows, 0: all */

/* The daemon goes with us, whatever happens. */
static void cleanup(void)
{
	if (target_pid > 0) {
		kill(target_pid, SIGKILL);
		waitpid(target_pid, NULL, 0);
		target_pid = -1;
	}
	if (dir[0]) {
		unlink(confpath);
		unlink(lunpath);
		unlink(logpath);
		rmdir(dir);
	}
}

static void on_term(int sig)
{
	if (target_pid > 0)
		kill(target_pid, SIGKILL);
	_exit(128 + sig);
}

/* The daemon's last @lines log lines (all if 0), for a failure's context. */
static void show_log(unsigned int lines)
{
	char buf[512];
	unsigned int n = 0, skip;
	FILE *f = fopen(logpath, "r");

	if (!f)
		return;
	while (fgets(buf, sizeof(buf), f))
		n++;
	skip = lines && n > lines ? n - lines : 0;
	rewind(f);
	for (n = 0; fgets(buf, sizeof(buf), f); n++)
		if (n >= skip)
			printf("# %s", buf);
	fclose(f);
}

/* One TAP line: "ok" if @cond holds, else "not ok", counted. */
__attribute__((format(printf, 2, 3))) static bool check(bool cond, const char *fmt, ...)
{
	va_list ap;

	printf("%s - ", cond ? "ok" : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fails += !cond;
	return cond;
}

__attribute__((format(printf, 1, 2), noreturn)) static void bail(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	show_log(log_tail);
	exit(1);
}

/*
 * What a test does first: a directory of its own (@tmpl, for mkdtemp) for
 * the config, the LUN and the daemon's log, removed at exit with the
 * daemon. @tail: how many of the log's last lines a failure shows (0: all).
 */
static void setup(const char *tmpl, unsigned int tail)
{
	log_tail = tail;
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Under ASan: leaks found at exit make the daemon's status non-zero;
	 * outside meson, a UBSan report must stop it as it does under meson. */
	setenv("UBSAN_OPTIONS", "halt_on_error=1:abort_on_error=1:print_stacktrace=1", 0);
	setenv("ASAN_OPTIONS", "detect_leaks=1", 0);
	snprintf(dir, sizeof(dir), "%s", tmpl);
	if (!mkdtemp(dir))
		bail("mkdtemp: %s", strerror(errno));
	snprintf(logpath, sizeof(logpath), "%s/target.log", dir);
	snprintf(confpath, sizeof(confpath), "%s/target.conf", dir);
	snprintf(lunpath, sizeof(lunpath), "%s/lun0.img", dir);
	atexit(cleanup);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Big-endian fields of @n bytes. */
static void put(uint8_t *b, uint32_t v, int n)
{
	while (n--) {
		b[n] = (uint8_t)v;
		v >>= 8;
	}
}

static uint32_t get(const uint8_t *b, int n)
{
	uint32_t v = 0;

	while (n--)
		v = v << 8 | *b++;
	return v;
}

/* The daemon */

static bool target_alive(void)
{
	int status;

	if (target_pid > 0 && waitpid(target_pid, &status, WNOHANG) == target_pid) {
		target_pid = -1;
		printf("# iser-target ended: %s %d\n", WIFEXITED(status) ? "exit" : "signal",
		       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
	return target_pid > 0;
}

static bool log_has(const char *what)
{
	char buf[8192];
	FILE *f = fopen(logpath, "r");
	bool found = false;

	while (f && !found && fgets(buf, sizeof(buf), f))
		found = strstr(buf, what) != NULL;
	if (f)
		fclose(f);
	return found;
}

/* One try of start_target(), on the port in port. 1: listening; 0: that
 * port is taken; -1: it failed otherwise. */
static int start_on_port(const char *bin, const char *iqn, const char *global)
{
	FILE *f = fopen(confpath, "w");
	char want[64];
	int i, fd;

	if (!f ||
	    fprintf(f,
		    "[global]\nportal = 127.0.0.1:%d\n%s[target %s]\n[lun 0]\npath = %s\n"
		    "size = 16M\n",
		    port, global, iqn, lunpath) < 0 ||
	    fclose(f))
		bail("cannot write %s: %s", confpath, strerror(errno));
	/* Emptied before the fork: no line of an earlier start is read. */
	fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		bail("cannot create %s: %s", logpath, strerror(errno));
	target_pid = fork();
	if (target_pid < 0)
		bail("fork: %s", strerror(errno));
	if (target_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(126);
		execl(bin, bin, "-c", confpath, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	close(fd);
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d", port);
	for (i = 0; i < 200 && target_alive(); i++) {
		if (log_has(want))
			return 1;
		usleep(25000);
	}
	if (target_pid > 0) {
		kill(target_pid, SIGKILL);
		waitpid(target_pid, NULL, 0);
		target_pid = -1;
	}
	return log_has("in use") ? 0 : -1;
}

/*
 * iser-target @bin, configured with a portal and then @global (whole lines
 * of [global]), target @iqn and its LUN 0, on the first free one of 20
 * ports @step apart (a step of its own per test: tests started together
 * try different ports). false if it did not start: its log tells why.
 */
static bool start_target(const char *bin, const char *iqn, const char *global, int step)
{
	int i, ret = 0;

	for (i = 0; i < 20 && !ret; i++) {
		port = 20000 + (getpid() % 20000) + step * i;
		ret = start_on_port(bin, iqn, global);
	}
	return ret == 1;
}

static void stop_target(void)
{
	uint64_t deadline = now_ms() + 10000;
	int status = 0;
	pid_t r = 0;

	kill(target_pid, SIGTERM);
	while (now_ms() < deadline && (r = waitpid(target_pid, &status, WNOHANG)) == 0)
		usleep(20000);
	if (r != target_pid) {
		not_ok("SIGTERM: iser-target still running after 10 s");
		show_log(log_tail);
		return; /* cleanup() kills it */
	}
	target_pid = -1;
	if (!check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGTERM: iser-target %s %d",
		   WIFEXITED(status) ? "exited" : "killed by signal",
		   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status)))
		show_log(log_tail);
}

/* The log after stop_target(): no sanitizer may have reported anything. */
static void sanitizer_clean(void)
{
	static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
					    "runtime error:"};
	size_t i;

	for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		if (log_has(marks[i])) {
			not_ok("sanitizer report from iser-target (%s)", marks[i]);
			show_log(log_tail);
			return;
		}
	}
}

/* Sockets and PDUs */

static int tcp_connect(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		bail("connect to 127.0.0.1:%d: %s", port, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return; /* the target may close first: the read side tells */
		p += n;
		len -= (size_t)n;
	}
}

/* Read exactly @len bytes by @deadline. 1: done, 0: closed, -1: timed out. */
static int read_full(int fd, uint8_t *buf, size_t len, uint64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	size_t got = 0;
	ssize_t n;
	uint64_t t;

	while (got < len) {
		t = now_ms();
		if (t >= deadline)
			return -1;
		if (poll(&pfd, 1, (int)(deadline - t)) <= 0)
			continue;
		n = read(fd, buf + got, len - got);
		if (n == 0 || (n < 0 && errno != EINTR))
			return 0; /* EOF or ECONNRESET */
		if (n > 0)
			got += (size_t)n;
	}
	return 1;
}

static uint8_t op_of(const struct pdu *p)
{
	return p->bhs[0] & 0x3f;
}

/* One whole PDU (no digests negotiated): 1, 0 (closed), -1 (timed out). */
static int read_pdu(int fd, struct pdu *p, uint64_t deadline)
{
	int ret = read_full(fd, p->bhs, BHS_LEN, deadline);

	if (ret <= 0)
		return ret;
	p->len = get(p->bhs + 5, 3);
	if (p->bhs[4] || ((p->len + 3) & ~3u) > sizeof(p->data) - 1) {
		not_ok("the target sent a PDU we cannot frame (opcode 0x%02x, AHS %u, %u data "
		       "bytes)",
		       op_of(p), p->bhs[4], p->len);
		return 0;
	}
	ret = read_full(fd, p->data, (p->len + 3) & ~3u, deadline);
	p->data[p->len] = 0;
	return ret;
}

#endif
