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
#include "raw_iscsi.h"

#define IQN "iqn.2026-11.org.iserkit:badinput"
#define INITIATOR "iqn.2026-11.org.iserkit:badinput-client"
#define LOGIN_TIMEOUT_S 2 /* login-timeout in the config we write */
#define NOP_INTERVAL_S 1
#define NOP_TIMEOUT_S 2

#define OP_RESERVED 0x0a /* an opcode RFC 7143 §11.2.1.2 does not assign */

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
	put(out + 16, 0x1000 + isid_tail, 4); /* ITT */
	put(out + 24, 1, 4);		      /* CmdSN */
	len = add_key(d, len, cap_d, "InitiatorName=" INITIATOR);
	len = add_key(d, len, cap_d, "SessionType=Normal");
	len = add_key(d, len, cap_d, "TargetName=" IQN);
	len = add_key(d, len, cap_d, "HeaderDigest=None");
	len = add_key(d, len, cap_d, "DataDigest=None");
	put(out + 5, (uint32_t)len, 3);
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
	s->exp_stat_sn = get(p.bhs + 24, 4) + 1;
	s->cmd_sn = get(p.bhs + 28, 4); /* ExpCmdSN */
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
	put(b + 16, itt, 4);
	put(b + 20, RSVD, 4);
	put(b + 24, s->cmd_sn, 4);
	put(b + 28, s->exp_stat_sn, 4);
	send_all(s->fd, b, BHS_LEN);
	for (;;) {
		ret = read_pdu(s->fd, &p, deadline);
		if (ret <= 0) {
			not_ok("%s: no answer to a NOP-Out (%s)", what, ret ? "timeout" : "closed");
			return false;
		}
		if (op_of(&p) == OP_NOP_IN && get(p.bhs + 16, 4) == itt)
			return true;
		/* A NOP-In ping of the target's own: answer it (§11.19). */
		if (op_of(&p) == OP_NOP_IN && get(p.bhs + 20, 4) != RSVD) {
			uint8_t a[BHS_LEN] = {0};

			a[0] = OP_NOP_OUT | OP_IMMEDIATE;
			a[1] = 0x80;
			put(a + 16, RSVD, 4);
			memcpy(a + 20, p.bhs + 20, 4);
			put(a + 24, s->cmd_sn, 4);
			put(a + 28, s->exp_stat_sn, 4);
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
	put(b + 16, ++s->itt, 4);
	put(b + 24, s->cmd_sn, 4);
	put(b + 28, s->exp_stat_sn, 4);
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
		put(b + 5, big[i], 3);
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
	put(b + 16, RSVD, 4);
	put(b + 20, 0x1234, 4);
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
	put(b + 16, 77, 4);
	put(b + 24, s.cmd_sn, 4);
	put(b + 28, s.exp_stat_sn, 4);
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
	b[1] = 0x80 | 0x20;  /* F, W */
	put(b + 5, 4096, 3); /* immediate data announced, 100 bytes sent */
	put(b + 16, 5, 4);
	put(b + 20, 4096, 4);
	put(b + 24, s.cmd_sn, 4);
	put(b + 28, s.exp_stat_sn, 4);
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

int main(int argc, char **argv)
{
	char global[128];
	struct sess s;

	if (argc != 2) {
		fprintf(stderr, "usage: target_bad_input ISER-TARGET\n");
		return 1;
	}
	setup("/tmp/iserkit-badin.XXXXXX", 80); /* a long log: its end */
	snprintf(global, sizeof(global),
		 "login-timeout = %d\nnop-interval = %d\nnop-timeout = %d\n", LOGIN_TIMEOUT_S,
		 NOP_INTERVAL_S, NOP_TIMEOUT_S);
	if (!start_target(argv[1], IQN, global, 43)) {
		if (log_has("unknown key")) {
			printf("SKIP: iser-target does not know login-timeout or nop-interval "
			       "yet:\n");
			fflush(stdout);
			show_log(3);
			return 77;
		}
		bail("iser-target did not start");
	}

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
