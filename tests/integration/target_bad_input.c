/*
 * target_bad_input: what iser-target does with bytes a correct initiator
 * never sends, over raw TCP sockets with PDUs built by hand here (not with
 * common/iscsi, so that the codec under test does not vouch for itself).
 *
 * For each case the outcome is asserted: the connection is closed (read
 * returns 0 or ECONNRESET) within a bound, with at most a Reject or a
 * failed Login Response before it; or a Reject comes back and the
 * connection still answers a NOP-Out. The daemon must survive every case,
 * serve a correct login (ours, then libiscsi's iscsi-inq if installed),
 * and exit 0 on SIGTERM, with no sanitizer report.
 *
 * usage: target_bad_input ISER-TARGET
 * Exits 0 (all cases as expected), 1 (a case failed), 77 (cannot run here).
 */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BHS_LEN 48
#define IQN "iqn.2026-11.org.iserkit:badinput"
#define INITIATOR "iqn.2026-11.org.iserkit:badinput-client"
#define LOGIN_TIMEOUT_S 2 /* login-timeout in the config we write */
#define NOP_INTERVAL_S 1
#define NOP_TIMEOUT_S 2
#define RSVD 0xffffffffu

/* Opcodes, RFC 7143 §11.2.1.2 */
#define OP_NOP_OUT 0x00
#define OP_SCSI_CMD 0x01
#define OP_LOGIN_REQ 0x03
#define OP_LOGOUT_REQ 0x06
#define OP_NOP_IN 0x20
#define OP_LOGIN_RSP 0x23
#define OP_LOGOUT_RSP 0x26
#define OP_REJECT 0x3f
#define OP_RESERVED 0x0a /* not assigned by RFC 7143 */
#define OP_IMMEDIATE 0x40

static pid_t target_pid = -1;
static char dir[64], logpath[96], confpath[96], lunpath[96];
static int port;
static unsigned int fails;

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

/* The daemon's last @lines log lines, for a failure's context. */
static void show_log(unsigned int lines)
{
	char buf[512];
	long *starts;
	unsigned int n = 0, i;
	FILE *f = fopen(logpath, "r");

	starts = calloc(lines, sizeof(*starts));
	if (!f || !starts)
		goto out;
	for (;;) {
		long pos = ftell(f);

		if (!fgets(buf, sizeof(buf), f))
			break;
		starts[n++ % lines] = pos;
	}
	i = n > lines ? n - lines : 0;
	for (; i < n; i++) {
		fseek(f, starts[i % lines], SEEK_SET);
		if (fgets(buf, sizeof(buf), f))
			printf("# %s", buf);
	}
out:
	free(starts);
	if (f)
		fclose(f);
}

__attribute__((format(printf, 1, 2))) static void not_ok(const char *fmt, ...)
{
	va_list ap;

	printf("not ok - ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fails++;
}

__attribute__((format(printf, 1, 2), noreturn)) static void bail(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	show_log(40);
	exit(1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void put32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void put_dsl(uint8_t *bhs, uint32_t len)
{
	bhs[5] = (uint8_t)(len >> 16);
	bhs[6] = (uint8_t)(len >> 8);
	bhs[7] = (uint8_t)len;
}

static uint32_t get_dsl(const uint8_t *bhs)
{
	return (uint32_t)bhs[5] << 16 | (uint32_t)bhs[6] << 8 | bhs[7];
}

static bool target_alive(void)
{
	int status;

	if (target_pid <= 0)
		return false;
	if (waitpid(target_pid, &status, WNOHANG) == target_pid) {
		target_pid = -1;
		printf("# iser-target ended: %s %d\n", WIFEXITED(status) ? "exit" : "signal",
		       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return false;
	}
	return true;
}

/* Config */

static bool log_has(const char *what)
{
	char buf[8192];
	FILE *f = fopen(logpath, "r");
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(buf, sizeof(buf), f))
		found = strstr(buf, what) != NULL;
	fclose(f);
	return found;
}

static int write_config(void)
{
	FILE *f = fopen(confpath, "w");

	if (!f)
		return -1;
	fprintf(f,
		"[global]\n"
		"portal = 127.0.0.1:%d\n"
		"login-timeout = %d\n"
		"nop-interval = %d\n"
		"nop-timeout = %d\n"
		"[target " IQN "]\n"
		"[lun 0]\n"
		"path = %s\n"
		"size = 16M\n",
		port, LOGIN_TIMEOUT_S, NOP_INTERVAL_S, NOP_TIMEOUT_S, lunpath);
	return fclose(f);
}

/* 1: listening; 0: that port is taken; 77: the daemon cannot run this;
 * -1: it failed otherwise. */
static int start_target(const char *bin)
{
	char want[64];
	int i, fd;

	if (write_config())
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
	for (i = 0; i < 200; i++) {
		if (log_has(want))
			return 1;
		if (!target_alive())
			break;
		usleep(25000);
	}
	if (target_pid > 0) {
		kill(target_pid, SIGKILL);
		waitpid(target_pid, NULL, 0);
		target_pid = -1;
	}
	if (log_has("unknown key")) {
		printf("SKIP: iser-target does not know login-timeout or nop-interval yet:\n");
		fflush(stdout);
		show_log(3);
		return 77;
	}
	return log_has("in use") ? 0 : -1;
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
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0 && errno != EINTR)
			return 0;
		if (n > 0)
			got += (size_t)n;
	}
	return 1;
}

struct pdu {
	uint8_t bhs[BHS_LEN];
	uint8_t data[16384];
	uint32_t len;
};

/* One whole PDU (no digests negotiated): 1, 0 (closed), -1 (timed out). */
static int read_pdu(int fd, struct pdu *p, uint64_t deadline)
{
	uint32_t padded;
	int ret;

	ret = read_full(fd, p->bhs, BHS_LEN, deadline);
	if (ret <= 0)
		return ret;
	p->len = get_dsl(p->bhs);
	padded = (p->len + 3) & ~3u;
	if (p->bhs[4] || padded > sizeof(p->data)) {
		not_ok("the target sent a PDU we cannot frame (opcode 0x%02x, AHS %u, %u data "
		       "bytes)",
		       p->bhs[0] & 0x3f, p->bhs[4], p->len);
		return 0;
	}
	return read_full(fd, p->data, padded, deadline);
}

static uint8_t op_of(const struct pdu *p)
{
	return p->bhs[0] & 0x3f;
}

/*
 * The case must end with the connection closed within @ms. Before that
 * the target may send a Reject or a Login Response that refuses (status
 * class not 0), nothing else. Returns how long the close took, or -1.
 */
static long expect_close(int fd, unsigned int ms, const char *what)
{
	uint64_t start = now_ms(), deadline = start + ms;
	struct pdu p;
	int ret;

	for (;;) {
		ret = read_pdu(fd, &p, deadline);
		if (ret == 0)
			return (long)(now_ms() - start);
		if (ret < 0) {
			not_ok("%s: the connection is still open after %u ms", what, ms);
			return -1;
		}
		if (op_of(&p) == OP_REJECT)
			continue;
		if (op_of(&p) == OP_LOGIN_RSP && p.bhs[36] != 0)
			continue;
		not_ok("%s: the target answered with opcode 0x%02x (login status %u/%u)", what,
		       op_of(&p), p.bhs[36], p.bhs[37]);
		return -1;
	}
}

static void case_closes(int fd, unsigned int ms, const char *what)
{
	long t = expect_close(fd, ms, what);

	close(fd);
	if (t >= 0)
		printf("ok - %s: closed after %ld ms\n", what, t);
	if (!target_alive())
		bail("iser-target died after: %s", what);
}

static size_t add_key(uint8_t *buf, size_t off, size_t cap, const char *kv)
{
	size_t n = strlen(kv) + 1;

	if (off + n > cap)
		bail("login keys too long");
	memcpy(buf + off, kv, n);
	return off + n;
}

/* A Login Request: operational stage to full feature, as RFC 7143 §6.3
 * allows when no security negotiation is wanted. */
static size_t login_req(uint8_t *out, size_t cap, uint8_t isid_tail, bool transit)
{
	uint8_t *d = out + BHS_LEN;
	size_t len = 0, cap_d = cap - BHS_LEN;

	memset(out, 0, BHS_LEN);
	out[0] = OP_LOGIN_REQ | OP_IMMEDIATE;
	out[1] = (uint8_t)((transit ? 0x80 : 0) | 1 << 2 | 3); /* CSG 1, NSG 3 */
	out[8] = 0x80;					       /* ISID type: random */
	out[13] = isid_tail;
	put32(out + 16, 0x1000 + isid_tail); /* ITT */
	put32(out + 24, 1);		     /* CmdSN */
	len = add_key(d, len, cap_d, "InitiatorName=" INITIATOR);
	len = add_key(d, len, cap_d, "SessionType=Normal");
	len = add_key(d, len, cap_d, "TargetName=" IQN);
	len = add_key(d, len, cap_d, "HeaderDigest=None");
	len = add_key(d, len, cap_d, "DataDigest=None");
	put_dsl(out, (uint32_t)len);
	while (len & 3)
		d[len++] = 0;
	return BHS_LEN + len;
}

struct sess {
	int fd;
	uint32_t cmd_sn, exp_stat_sn, itt;
};

/* A full login on a fresh connection; bails out if it fails. */
static void login(struct sess *s, uint8_t isid_tail)
{
	uint8_t req[1024];
	struct pdu p;
	size_t n;
	int ret;

	s->fd = tcp_connect();
	n = login_req(req, sizeof(req), isid_tail, true);
	send_all(s->fd, req, n);
	ret = read_pdu(s->fd, &p, now_ms() + 5000);
	if (ret <= 0)
		bail("a correct login got no Login Response (%s)", ret ? "timeout" : "closed");
	if (op_of(&p) != OP_LOGIN_RSP || p.bhs[36] != 0)
		bail("a correct login failed: opcode 0x%02x, status %u/%u", op_of(&p), p.bhs[36],
		     p.bhs[37]);
	if (!(p.bhs[1] & 0x80) || (p.bhs[1] & 3) != 3)
		bail("the target did not move to the full feature phase (flags 0x%02x)", p.bhs[1]);
	s->exp_stat_sn = get32(p.bhs + 24) + 1;
	s->cmd_sn = get32(p.bhs + 28); /* ExpCmdSN */
	s->itt = 0x2000;
}

/* NOP-Out ping (RFC 7143 §11.18): the NOP-In answer must come back. */
static bool ping(struct sess *s, const char *what)
{
	uint8_t b[BHS_LEN] = {0};
	struct pdu p;
	uint32_t itt = ++s->itt;
	uint64_t deadline = now_ms() + 3000;
	int ret;

	b[0] = OP_NOP_OUT | OP_IMMEDIATE;
	b[1] = 0x80;
	put32(b + 16, itt);
	put32(b + 20, RSVD);
	put32(b + 24, s->cmd_sn);
	put32(b + 28, s->exp_stat_sn);
	send_all(s->fd, b, BHS_LEN);
	for (;;) {
		ret = read_pdu(s->fd, &p, deadline);
		if (ret <= 0) {
			not_ok("%s: no answer to a NOP-Out (%s)", what, ret ? "timeout" : "closed");
			return false;
		}
		if (op_of(&p) == OP_NOP_IN && get32(p.bhs + 16) == itt)
			return true;
		/* A NOP-In ping of the target's own: answer it (§11.19). */
		if (op_of(&p) == OP_NOP_IN && get32(p.bhs + 20) != RSVD) {
			uint8_t a[BHS_LEN] = {0};

			a[0] = OP_NOP_OUT | OP_IMMEDIATE;
			a[1] = 0x80;
			put32(a + 16, RSVD);
			memcpy(a + 20, p.bhs + 20, 4);
			put32(a + 24, s->cmd_sn);
			put32(a + 28, s->exp_stat_sn);
			send_all(s->fd, a, BHS_LEN);
		}
	}
}

static void logout(struct sess *s)
{
	uint8_t b[BHS_LEN] = {0};
	struct pdu p;
	int ret;

	b[0] = OP_LOGOUT_REQ | OP_IMMEDIATE;
	b[1] = 0x80; /* reason 0: close the session */
	put32(b + 16, ++s->itt);
	put32(b + 24, s->cmd_sn);
	put32(b + 28, s->exp_stat_sn);
	send_all(s->fd, b, BHS_LEN);
	do
		ret = read_pdu(s->fd, &p, now_ms() + 3000);
	while (ret > 0 && op_of(&p) == OP_NOP_IN);
	if (ret <= 0 || op_of(&p) != OP_LOGOUT_RSP || p.bhs[2] != 0) {
		not_ok("logout: %s", ret <= 0 ? "no Logout Response" : "refused");
		close(s->fd);
		return;
	}
	case_closes(s->fd, 2000, "a correct login, NOP-Out and logout");
}

/* Cases: the target must close at once (well inside login-timeout). */

static void fill_garbage(uint8_t *b, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
}

static void cases_prompt(void)
{
	static const uint32_t big[] = {8193, 65536, 0xffffff};
	uint8_t b[2048];
	char what[128];
	size_t n, i;
	int fd;

	/* A BHS cut short, then the initiator's FIN. */
	fd = tcp_connect();
	n = login_req(b, sizeof(b), 1, true);
	send_all(fd, b, 20);
	shutdown(fd, SHUT_WR);
	case_closes(fd, 1000, "a Login Request cut after 20 bytes, then FIN");

	/* A whole header, part of its data, then FIN. */
	fd = tcp_connect();
	send_all(fd, b, n - 8);
	shutdown(fd, SHUT_WR);
	case_closes(fd, 1000, "a Login Request missing its last 8 data bytes, then FIN");

	/* DataSegmentLength over the 8192 bytes allowed during login
	 * (RFC 7143 §13.12): refused from the header, without waiting for
	 * the data (which never comes). */
	for (i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		fd = tcp_connect();
		login_req(b, sizeof(b), 2, true);
		put_dsl(b, big[i]);
		send_all(fd, b, BHS_LEN);
		snprintf(what, sizeof(what), "a Login Request with DataSegmentLength %u", big[i]);
		case_closes(fd, 1000, what);
	}

	/* An opcode RFC 7143 does not assign, as the first PDU. */
	fd = tcp_connect();
	memset(b, 0, BHS_LEN);
	b[0] = OP_RESERVED | OP_IMMEDIATE;
	b[1] = 0x80;
	send_all(fd, b, BHS_LEN);
	case_closes(fd, 1000, "opcode 0x0a (unassigned) before login");

	/* A SCSI Command before login: a Login Response refusing it, or a close. */
	fd = tcp_connect();
	memset(b, 0, BHS_LEN);
	b[0] = OP_SCSI_CMD;
	b[1] = 0x80;
	b[32] = 0x00; /* TEST UNIT READY */
	send_all(fd, b, BHS_LEN);
	case_closes(fd, 1000, "a SCSI Command before login");

	/* A PDU only a target sends (Reject), as the first PDU. */
	fd = tcp_connect();
	memset(b, 0, BHS_LEN);
	b[0] = OP_REJECT;
	b[1] = 0x80;
	send_all(fd, b, BHS_LEN);
	case_closes(fd, 1000, "a Reject from the initiator before login");
}

/* In the full feature phase: Reject and go on, or close. */
static void cases_ffp(void)
{
	struct sess s;
	uint8_t b[BHS_LEN];
	struct pdu p;
	int ret;

	/* A target opcode from the initiator: Reject, "Command not
	 * supported" (RFC 7143 §11.17.1), and the session goes on. */
	login(&s, 10);
	memset(b, 0, BHS_LEN);
	b[0] = OP_NOP_IN;
	b[1] = 0x80;
	put32(b + 16, RSVD);
	put32(b + 20, 0x1234);
	send_all(s.fd, b, BHS_LEN);
	ret = read_pdu(s.fd, &p, now_ms() + 2000);
	if (ret <= 0 || op_of(&p) != OP_REJECT)
		not_ok("a NOP-In from the initiator: %s", ret < 0    ? "no answer"
							  : ret == 0 ? "connection closed"
								     : "not a Reject");
	else if (p.bhs[2] != 0x05 || p.len < BHS_LEN || p.data[0] != OP_NOP_IN)
		not_ok("a NOP-In from the initiator: Reject reason 0x%02x, %u data bytes", p.bhs[2],
		       p.len);
	else if (ping(&s, "after the Reject"))
		printf("ok - a NOP-In from the initiator: Reject, reason 0x05, and the session "
		       "goes on\n");
	logout(&s);

	/* An unassigned opcode in the full feature phase. */
	login(&s, 11);
	memset(b, 0, BHS_LEN);
	b[0] = OP_RESERVED;
	b[1] = 0x80;
	put32(b + 16, 77);
	put32(b + 24, s.cmd_sn);
	put32(b + 28, s.exp_stat_sn);
	send_all(s.fd, b, BHS_LEN);
	ret = read_pdu(s.fd, &p, now_ms() + 2000);
	if (ret > 0 && op_of(&p) == OP_REJECT) {
		if (ping(&s, "after a Reject of opcode 0x0a"))
			printf("ok - opcode 0x0a in the full feature phase: Reject, reason 0x%02x\n",
			       p.bhs[2]);
		logout(&s);
	} else if (ret == 0) {
		close(s.fd);
		printf("ok - opcode 0x0a in the full feature phase: connection closed\n");
	} else {
		close(s.fd);
		not_ok("opcode 0x0a in the full feature phase: %s",
		       ret < 0 ? "neither a Reject nor a close within 2 s"
			       : "an answer other than Reject");
	}
	if (!target_alive())
		bail("iser-target died in the full feature phase cases");
}

/*
 * Cases that only a timer ends: logins that never finish (login-timeout)
 * and a full feature phase connection stuck in the middle of a PDU (NOP-In
 * pings unanswered: nop-interval + nop-timeout). All at once, to save time.
 */
struct slow {
	const char *what;
	int fd;
	unsigned int min_ms, max_ms;
	uint64_t start;
	long closed_ms;
};

static void cases_slow(void)
{
	const unsigned int login_ms = LOGIN_TIMEOUT_S * 1000;
	const unsigned int ffp_ms = (NOP_INTERVAL_S + NOP_TIMEOUT_S) * 1000;
	struct slow c[] = {
		{.what = "a connection that never sends a byte", .min_ms = login_ms / 2},
		{.what = "a login that stops after its first request", .min_ms = login_ms / 2},
		{.what = "a Login Request whose data never comes", .min_ms = login_ms / 2},
		{.what = "a SCSI Command whose data never comes, after login",
		 .min_ms = ffp_ms / 2,
		 .max_ms = ffp_ms + 3000},
		{.what = "2 KiB of garbage (seed 1), the socket left open"},
		{.what = "2 KiB of garbage (seed 2), the socket left open"},
		{.what = "2 KiB of garbage (seed 3), the socket left open"},
		{.what = "2 KiB of garbage (seed 4), the socket left open"},
		{.what = "2 KiB of garbage (seed 5), the socket left open"},
	};
	const size_t nc = sizeof(c) / sizeof(c[0]);
	uint8_t b[2048];
	struct sess s;
	struct pdu p;
	size_t i, n, open_left = nc;
	uint64_t deadline;
	int ret;

	c[0].fd = tcp_connect();

	c[1].fd = tcp_connect();
	n = login_req(b, sizeof(b), 20, false); /* T=0: more to come */
	send_all(c[1].fd, b, n);

	c[2].fd = tcp_connect();
	n = login_req(b, sizeof(b), 21, true);
	send_all(c[2].fd, b, BHS_LEN + 10);

	login(&s, 22);
	c[3].fd = s.fd;
	memset(b, 0, BHS_LEN);
	b[0] = OP_SCSI_CMD;
	b[1] = 0x80 | 0x20; /* F, W */
	put_dsl(b, 4096);   /* immediate data announced, 100 bytes sent */
	put32(b + 16, 5);
	put32(b + 20, 4096);
	put32(b + 24, s.cmd_sn);
	put32(b + 28, s.exp_stat_sn);
	b[32] = 0x2a; /* WRITE(10), LBA 0, 8 blocks */
	b[40] = 8;
	send_all(c[3].fd, b, BHS_LEN + 100);

	/* Garbage: whatever its first 48 bytes frame, the login timer ends it. */
	for (i = 4; i < nc; i++) {
		c[i].fd = tcp_connect();
		fill_garbage(b, sizeof(b), (uint32_t)i - 3);
		send_all(c[i].fd, b, sizeof(b));
	}

	for (i = 0; i < nc; i++) {
		c[i].start = now_ms();
		c[i].closed_ms = -1;
		if (!c[i].max_ms)
			c[i].max_ms = login_ms + 1500;
	}
	deadline = now_ms() + ffp_ms + 3000;
	while (open_left && now_ms() < deadline) {
		struct pollfd pfd[sizeof(c) / sizeof(c[0])];

		for (i = 0; i < nc; i++) {
			pfd[i].fd = c[i].closed_ms < 0 ? c[i].fd : -1;
			pfd[i].events = POLLIN;
		}
		if (poll(pfd, nc, 200) <= 0)
			continue;
		for (i = 0; i < nc; i++) {
			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ret = read_pdu(c[i].fd, &p, now_ms() + 1000);
			if (ret > 0 && (op_of(&p) == OP_REJECT || op_of(&p) == OP_NOP_IN ||
					(op_of(&p) == OP_LOGIN_RSP && p.bhs[36] != 0)))
				continue; /* pings stay unanswered: that is the case */
			if (ret > 0 && op_of(&p) == OP_LOGIN_RSP && c[i].fd == c[1].fd)
				continue; /* the answer to the first request */
			if (ret > 0) {
				not_ok("%s: the target answered with opcode 0x%02x", c[i].what,
				       op_of(&p));
			}
			c[i].closed_ms = (long)(now_ms() - c[i].start);
			open_left--;
		}
	}
	for (i = 0; i < nc; i++) {
		if (c[i].closed_ms < 0)
			not_ok("%s: still open after %u ms", c[i].what, c[i].max_ms);
		else if (c[i].closed_ms < (long)c[i].min_ms || c[i].closed_ms > (long)c[i].max_ms)
			not_ok("%s: closed after %ld ms, expected %u to %u ms", c[i].what,
			       c[i].closed_ms, c[i].min_ms, c[i].max_ms);
		else
			printf("ok - %s: closed after %ld ms\n", c[i].what, c[i].closed_ms);
		close(c[i].fd);
	}
	if (!target_alive())
		bail("iser-target died in the timer cases");
}

/* libiscsi's iscsi-inq, when installed: software nobody here wrote. */
static void iscsi_inq(void)
{
	char cmd[256];
	int rc;

	if (system("command -v iscsi-inq >/dev/null 2>&1")) {
		printf("ok - # SKIP iscsi-inq not installed (Debian package libiscsi-bin)\n");
		return;
	}
	snprintf(cmd, sizeof(cmd),
		 "iscsi-inq iscsi://127.0.0.1:%d/" IQN "/0 2>&1 | grep -q '^Vendor:ISERKIT'", port);
	rc = system(cmd);
	if (rc == 0)
		printf("ok - iscsi-inq logs in and gets INQUIRY data\n");
	else
		not_ok("iscsi-inq after the bad input (status %d)", rc);
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
		show_log(20);
		return; /* cleanup() kills it */
	}
	target_pid = -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("ok - SIGTERM: iser-target exited 0\n");
	} else {
		not_ok("SIGTERM: iser-target %s %d",
		       WIFEXITED(status) ? "exited" : "killed by signal",
		       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		show_log(60);
	}
}

static void sanitizer_clean(void)
{
	static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
					    "runtime error:"};
	size_t i;

	for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		if (log_has(marks[i])) {
			not_ok("sanitizer report from iser-target (%s)", marks[i]);
			show_log(80);
			return;
		}
	}
}

int main(int argc, char **argv)
{
	struct sess s;
	int i, ret = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: target_bad_input ISER-TARGET\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Under ASan: leaks found at exit make the daemon's status non-zero;
	 * outside meson, a UBSan report must stop it as it does under meson. */
	setenv("UBSAN_OPTIONS", "halt_on_error=1:abort_on_error=1:print_stacktrace=1", 0);
	setenv("ASAN_OPTIONS", "detect_leaks=1", 0);
	snprintf(dir, sizeof(dir), "/tmp/iserkit-badin.XXXXXX");
	if (!mkdtemp(dir))
		bail("mkdtemp: %s", strerror(errno));
	snprintf(logpath, sizeof(logpath), "%s/target.log", dir);
	snprintf(confpath, sizeof(confpath), "%s/target.conf", dir);
	snprintf(lunpath, sizeof(lunpath), "%s/lun0.img", dir);
	atexit(cleanup);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < 20 && !ret; i++) {
		port = 20000 + (getpid() % 20000) + 43 * i;
		ret = start_target(argv[1]);
		if (ret == 77)
			return 77;
	}
	if (ret != 1)
		bail("iser-target did not start");

	cases_prompt();
	cases_ffp();
	cases_slow();

	login(&s, 30);
	if (ping(&s, "a correct session"))
		logout(&s);
	else
		close(s.fd);
	iscsi_inq();
	stop_target();
	sanitizer_clean();
	return fails ? 1 : 0;
}
