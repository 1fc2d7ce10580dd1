/*
 * target_mcs: multiple connections per session (MC/S) in iser-target, over
 * raw TCP sockets with PDUs built by hand here (not with common/iscsi, so
 * that the codec under test does not vouch for itself). In order:
 *
 *  1. a leading login (TSIH 0, CID 0) offering MaxConnections=4 gets
 *     MaxConnections=N with 2 <= N <= 4 (RFC 7143 §13.2: the lower one);
 *  2. a login with the same ISID, that TSIH and CID 1 joins the session; it
 *     sends no leading-only key (§6.3.4, §11.12, §13; SessionType is one);
 *  3. CmdSN is session-wide (§4.2.2.1): a WRITE with CmdSN C+1 on CID 1,
 *     then a TEST UNIT READY with C on CID 0: the WRITE is not answered
 *     before C is sent (delivery in CmdSN order), both get GOOD, each on
 *     its own connection, ExpCmdSN moves past both, and a READ on CID 0
 *     returns what the WRITE wrote;
 *  4. logins up to N connections succeed, one more fails with 0x0206
 *     (§11.13.5, §13.2) and the target closes it;
 *  5. a login naming a TSIH no session has fails with 0x020a (§11.13.5);
 *  6. a login with the CID of a live connection reinstates it: the old one
 *     is closed, the new one answers (§6.3.4);
 *  7. Logout reason 1 on CID 0 naming CID 1: response 0 on CID 0 and CID 1
 *     is closed; naming a CID nobody has: response 1 (§11.14, §11.15);
 *  8. Logout reason 0 closes every connection of the session (§11.14);
 *  9. the daemon still serves a new session and exits 0 on SIGTERM.
 *
 * usage: target_mcs ISER-TARGET
 * Exits 0 (all as expected), 1 (a check failed), 77 (cannot run here).
 */
#include "raw_iscsi.h"

#define IQN "iqn.2026-11.org.iserkit:mcs"
#define INITIATOR "iqn.2026-11.org.iserkit:mcs-client"
#define BLOCK 512     /* the LUN's block size (the default) */
#define LBA 8	      /* where step 3 writes */
#define CLOSE_MS 2000 /* how soon the target must close a connection */
#define MAX_CONNS 4   /* what the leading login offers */

/* Login status, class << 8 | detail (RFC 7143 §11.13.5) */
#define LS_TOO_MANY_CONNECTIONS 0x0206
#define LS_SESSION_NOT_FOUND 0x020a

/* The initiator's view of a session: CmdSN is session-wide... */
struct sess {
	uint8_t isid[6];
	uint16_t tsih;
	uint32_t cmd_sn;     /* the next non-immediate command's */
	uint32_t max_cmd_sn; /* the highest seen */
	uint32_t max_conns;  /* MaxConnections agreed */
	uint32_t mrdsl;	     /* the target's MaxRecvDataSegmentLength */
};

/* ...and of a connection: StatSN is counted per connection. */
struct conn {
	int fd;
	uint16_t cid;
	uint32_t exp_stat_sn;
	struct sess *s;
};

static uint32_t next_itt = 0x100; /* never reused: ITTs are session-wide */

/* Serial number arithmetic (RFC 1982), as RFC 7143 §4.2.2.1 uses it. */
static bool sn_gt(uint32_t a, uint32_t b)
{
	return a != b && a - b < 0x80000000u;
}

/* Connections */

static void drop(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* An immediate NOP-Out: a ping (@itt) or the answer to one (@ttt). */
static void nop_out(struct conn *c, uint32_t itt, uint32_t ttt)
{
	uint8_t b[BHS_LEN] = {OP_NOP_OUT | OP_IMMEDIATE, 0x80};

	put(b + 16, itt, 4);
	put(b + 20, ttt, 4);
	put(b + 24, c->s->cmd_sn, 4); /* immediate: carries CmdSN, takes none */
	put(b + 28, c->exp_stat_sn, 4);
	send_all(c->fd, b, BHS_LEN);
}

/*
 * The next PDU on @c; the target's own pings are answered on the way (RFC
 * 7143 §11.19). Keeps MaxCmdSN, and ExpStatSN after a PDU with a status
 * (§11.18: a NOP-In with ITT 0xffffffff takes no StatSN). 1, 0, -1 as
 * read_pdu().
 */
static int recv_pdu(struct conn *c, struct pdu *p, uint64_t deadline)
{
	uint8_t op;
	int ret;

	while ((ret = read_pdu(c->fd, p, deadline)) > 0) {
		op = op_of(p);
		if (sn_gt(get(p->bhs + 32, 4), c->s->max_cmd_sn))
			c->s->max_cmd_sn = get(p->bhs + 32, 4);
		if (op == OP_SCSI_RSP || op == OP_LOGOUT_RSP || op == OP_TMF_RSP ||
		    (op == OP_DATA_IN && p->bhs[1] & 1) ||
		    (op == OP_NOP_IN && get(p->bhs + 16, 4) != RSVD))
			c->exp_stat_sn = get(p->bhs + 24, 4) + 1;
		if (op != OP_NOP_IN || get(p->bhs + 16, 4) != RSVD)
			return 1;
		if (get(p->bhs + 20, 4) != RSVD)
			nop_out(c, RSVD, get(p->bhs + 20, 4));
	}
	return ret;
}

/* A NOP-Out ping (RFC 7143 §11.18) answered by its NOP-In within 3 s;
 * @exp_cmd_sn (may be NULL) gets the NOP-In's ExpCmdSN. */
static bool ping(struct conn *c, const char *what, uint32_t *exp_cmd_sn)
{
	uint32_t itt = next_itt++;
	uint64_t deadline = now_ms() + 3000;
	struct pdu p;
	int ret;

	nop_out(c, itt, RSVD);
	while ((ret = recv_pdu(c, &p, deadline)) > 0) {
		if (op_of(&p) == OP_NOP_IN && get(p.bhs + 16, 4) == itt) {
			if (exp_cmd_sn)
				*exp_cmd_sn = get(p.bhs + 28, 4);
			return check(true, "%s: CID %u answers a NOP-Out", what, c->cid);
		}
	}
	return not_ok("%s: CID %u: no answer to a NOP-Out (%s)", what, c->cid,
		      ret ? "timeout" : "closed");
}

/* The target must close @c within CLOSE_MS; PDUs before that (an Async
 * Message, say) may come. Our end is closed either way. */
static void closed_by_target(struct conn *c, const char *what)
{
	uint64_t start = now_ms();
	struct pdu p;
	int ret;

	while ((ret = read_pdu(c->fd, &p, start + CLOSE_MS)) > 0)
		;
	drop(c);
	check(ret == 0, "%s: the target closes CID %u (%s after %u ms)", what, c->cid,
	      ret ? "still open" : "closed", (unsigned int)(now_ms() - start));
}

/* Login */

/*
 * A Login Request from the operational stage straight to the full feature
 * phase (RFC 7143 §6.3: the security stage is optional). The leading-only
 * keys (§13, "Use: LO") go in a leading login (TSIH 0) only: SessionType
 * is one of them (§13.21; Normal is its default).
 */
static size_t login_req(uint8_t *out, const struct sess *s, uint16_t tsih, uint16_t cid,
			uint32_t exp_stat_sn)
{
	static const char keys[] = "InitiatorName=" INITIATOR "\0TargetName=" IQN
				   "\0HeaderDigest=None\0DataDigest=None"
				   "\0MaxRecvDataSegmentLength=65536";
	static const char lo_keys[] = "SessionType=Normal\0MaxConnections=4"
				      "\0ImmediateData=Yes\0InitialR2T=No";
	size_t len = sizeof(keys);

	memset(out, 0, BHS_LEN);
	out[0] = OP_LOGIN_REQ | OP_IMMEDIATE;
	out[1] = 0x80 | 1 << 2 | 3; /* T, CSG 1, NSG 3 */
	memcpy(out + 8, s->isid, 6);
	put(out + 14, tsih, 2);
	put(out + 16, next_itt++, 4);
	put(out + 20, cid, 2);
	put(out + 24, s->cmd_sn, 4); /* a joining login: the session's (§11.12.7) */
	put(out + 28, exp_stat_sn, 4);
	memcpy(out + BHS_LEN, keys, sizeof(keys));
	if (!tsih) {
		memcpy(out + BHS_LEN + len, lo_keys, sizeof(lo_keys));
		len += sizeof(lo_keys);
	}
	put(out + 5, (uint32_t)len, 3);
	while (len & 3)
		out[BHS_LEN + len++] = 0;
	return BHS_LEN + len;
}

/*
 * Connect and log in, leading when @tsih is 0. Returns the Login Response's
 * status (class << 8 | detail), or -1 without one (reported); on success
 * @c is in the full feature phase. @c stays open either way: the target
 * closes a refused login (§11.13.5), which the caller may check.
 */
static int login(struct sess *s, struct conn *c, uint16_t tsih, uint16_t cid, uint32_t exp_stat_sn,
		 struct pdu *rsp, const char *what)
{
	uint8_t req[512];
	int ret;

	c->fd = tcp_connect();
	c->cid = cid;
	c->s = s;
	send_all(c->fd, req, login_req(req, s, tsih, cid, exp_stat_sn));
	ret = read_pdu(c->fd, rsp, now_ms() + 5000);
	if (ret <= 0 || op_of(rsp) != OP_LOGIN_RSP) {
		not_ok("%s: no Login Response (%s)", what,
		       ret < 0 ? "timeout"
		       : ret   ? "another opcode"
			       : "closed");
		return -1;
	}
	if (rsp->bhs[36] || rsp->bhs[37])
		return rsp->bhs[36] << 8 | rsp->bhs[37];
	if (!(rsp->bhs[1] & 0x80) || (rsp->bhs[1] & 3) != 3) {
		not_ok("%s: status 0 but no move to the full feature phase (flags 0x%02x)", what,
		       rsp->bhs[1]);
		return -1;
	}
	c->exp_stat_sn = get(rsp->bhs + 24, 4) + 1;
	if (!tsih) {
		s->tsih = (uint16_t)get(rsp->bhs + 14, 2);
		s->cmd_sn = get(rsp->bhs + 28, 4);
		s->max_cmd_sn = get(rsp->bhs + 32, 4);
	} else if (sn_gt(get(rsp->bhs + 32, 4), s->max_cmd_sn)) {
		s->max_cmd_sn = get(rsp->bhs + 32, 4);
	}
	return 0;
}

/* A login that must fail with @want, after which the target closes it. */
static void login_refused(struct sess *s, uint16_t tsih, uint16_t cid, int want, const char *what)
{
	struct conn c;
	struct pdu p;
	int st = login(s, &c, tsih, cid, 0, &p, what);

	if (st >= 0 && check(st == want, "%s: status 0x%04x, want 0x%04x", what, (unsigned int)st,
			     (unsigned int)want))
		closed_by_target(&c, what);
	drop(&c);
}

/* The value of @key in a Login Response, or NULL. */
static const char *key_value(const struct pdu *p, const char *key)
{
	size_t klen = strlen(key), off;
	const char *kv;

	for (off = 0; off < p->len; off += strlen(kv) + 1) {
		kv = (const char *)p->data + off;
		if (!strncmp(kv, key, klen) && kv[klen] == '=')
			return kv + klen + 1;
	}
	return NULL;
}

/* A Logout Request (RFC 7143 §11.14), immediate: reason 0 closes the
 * session, 1 the connection @cid. Returns the response (§11.15.1) or -1. */
static int logout(struct conn *c, uint8_t reason, uint16_t cid)
{
	uint8_t b[BHS_LEN] = {OP_LOGOUT_REQ | OP_IMMEDIATE, (uint8_t)(0x80 | reason)};
	uint32_t itt = next_itt++;
	uint64_t deadline = now_ms() + 3000;
	struct pdu p;

	put(b + 16, itt, 4);
	put(b + 20, cid, 2);
	put(b + 24, c->s->cmd_sn, 4);
	put(b + 28, c->exp_stat_sn, 4);
	send_all(c->fd, b, BHS_LEN);
	while (recv_pdu(c, &p, deadline) > 0)
		if (op_of(&p) == OP_LOGOUT_RSP && get(p.bhs + 16, 4) == itt)
			return p.bhs[2];
	return -1;
}

/* SCSI */

/* A SCSI Command (RFC 7143 §11.3) to LUN 0, SIMPLE, taking CmdSN @cmd_sn:
 * @op 0 (TEST UNIT READY) or a READ(10)/WRITE(10) of @blocks at LBA; a
 * WRITE (@data) carries all its data as immediate data. */
static void scsi_cmd(struct conn *c, uint32_t itt, uint32_t cmd_sn, uint8_t op, uint32_t blocks,
		     const uint8_t *data)
{
	uint8_t b[BHS_LEN + 8 * BLOCK] = {OP_SCSI_CMD};
	uint32_t edtl = op ? blocks * BLOCK : 0, len = data ? edtl : 0;

	b[1] = 0x80 | (data ? 0x20 : edtl ? 0x40 : 0) | 1; /* F, W or R, ATTR */
	put(b + 5, len, 3);
	put(b + 16, itt, 4);
	put(b + 20, edtl, 4);
	put(b + 24, cmd_sn, 4);
	put(b + 28, c->exp_stat_sn, 4);
	b[32] = op; /* WRITE(10), READ(10) or TEST UNIT READY */
	if (op) {
		put(b + 34, LBA, 4);
		put(b + 39, blocks, 2);
	}
	if (len)
		memcpy(b + BHS_LEN, data, len); /* whole blocks: no padding */
	send_all(c->fd, b, BHS_LEN + len);
}

/*
 * The status of @itt, which must come on @c, the connection the command
 * went on: in a SCSI Response or in the last Data-In (S bit, RFC 7143
 * §11.7.3), the Data-In before it gathered into @buf. -1 if none came.
 */
static int scsi_status(struct conn *c, uint32_t itt, uint8_t *buf, const char *what)
{
	uint64_t deadline = now_ms() + 3000;
	uint32_t got = 0;
	struct pdu p;
	int ret;

	while ((ret = recv_pdu(c, &p, deadline)) > 0) {
		if (op_of(&p) != OP_SCSI_RSP && op_of(&p) != OP_DATA_IN)
			continue;
		if (get(p.bhs + 16, 4) != itt) {
			not_ok("%s: CID %u got a response to ITT 0x%x, sent elsewhere", what,
			       c->cid, get(p.bhs + 16, 4));
			continue;
		}
		if (op_of(&p) == OP_DATA_IN) {
			if (!buf || get(p.bhs + 40, 4) != got || p.len > 8 * BLOCK - got) {
				not_ok("%s: unexpected Data-In (offset %u, %u bytes)", what,
				       get(p.bhs + 40, 4), p.len);
				return -1;
			}
			memcpy(buf + got, p.data, p.len);
			got += p.len;
			if (!(p.bhs[1] & 1))
				continue;
		} else if (p.bhs[2]) {
			not_ok("%s: iSCSI response 0x%02x", what, p.bhs[2]);
			return -1;
		}
		return p.bhs[3];
	}
	not_ok("%s: no status on CID %u (%s)", what, c->cid, ret ? "timeout" : "closed");
	return -1;
}

/* The steps */

/* 1. The leading login: MaxConnections=N, 2 <= N <= 4 (RFC 7143 §13.2).
 * Returns whether the target offers MC/S at all. */
static bool step_leading(struct sess *s, struct conn *a)
{
	const char *v;
	struct pdu p;
	int st = login(s, a, 0, 0, 0, &p, "leading login");

	if (st || !s->tsih)
		bail("the leading login (CID 0) failed: status 0x%04x, TSIH %u", (unsigned int)st,
		     s->tsih);
	v = key_value(&p, "MaxRecvDataSegmentLength");
	s->mrdsl = v ? (uint32_t)strtoul(v, NULL, 10) : 8192; /* §13.12: the default */
	v = key_value(&p, "ImmediateData");
	check(v && !strcmp(v, "Yes"), "leading login: ImmediateData=%s (Yes offered)",
	      v ? v : "absent");
	v = key_value(&p, "MaxConnections");
	s->max_conns = v ? (uint32_t)strtoul(v, NULL, 10) : 1; /* §13.2: the default */
	check(s->max_conns >= 2 && s->max_conns <= MAX_CONNS,
	      "leading login: TSIH %u, MaxConnections=%s answered to 4 (want 2 to 4)%s", s->tsih,
	      v ? v : "absent", s->max_conns < 2 ? ": no MC/S, steps 2, 3, 6, 7 skipped" : "");
	return s->max_conns >= 2;
}

/* 2. A second connection joins: same ISID and TSIH, CID 1 (§6.3.4). */
static bool step_join(struct sess *s, struct conn *b)
{
	struct pdu p;
	int st = login(s, b, s->tsih, 1, 0, &p, "joining with CID 1");

	if (st >= 0 && check(!st && get(p.bhs + 14, 2) == s->tsih,
			     "a login with TSIH %u, CID 1 joins: status 0x%04x, TSIH %u", s->tsih,
			     (unsigned int)st, get(p.bhs + 14, 2)))
		return true;
	drop(b);
	return false;
}

/* 3. One CmdSN sequence over two connections, sent out of order. */
static void step_cmdsn(struct sess *s, struct conn *a, struct conn *b)
{
	uint8_t out[8 * BLOCK], in[8 * BLOCK];
	uint32_t c0, blocks, i, exp = 0, itt_w = next_itt++, itt_t = next_itt++;
	int st_w = -2, st_t, st;
	struct pdu p;
	bool same;

	/* The first command of a new I_T nexus gets UNIT ATTENTION (POWER ON
	 * OCCURRED): taken here, so that it cannot fail the commands below. */
	for (i = 0, st = 2; i < 3 && st == 2; i++) {
		scsi_cmd(a, next_itt, s->cmd_sn++, 0, 0, NULL); /* TEST UNIT READY */
		st = scsi_status(a, next_itt++, NULL, "TEST UNIT READY before the test");
	}
	if (st > 0)
		not_ok("TEST UNIT READY on CID 0: status 0x%02x three times", (unsigned int)st);
	if (st || !ping(b, "CmdSN, before", NULL))
		return;
	c0 = s->cmd_sn;
	blocks = s->mrdsl / BLOCK < 8 ? s->mrdsl / BLOCK : 8;
	if (!sn_gt(s->max_cmd_sn, c0) || !blocks) {
		not_ok("CmdSN: window [%u, %u], MaxRecvDataSegmentLength %u: no room to test", c0,
		       s->max_cmd_sn, s->mrdsl);
		return;
	}
	for (i = 0; i < blocks * BLOCK; i++)
		out[i] = (uint8_t)(i * 7 + i / BLOCK + 1);

	scsi_cmd(b, itt_w, c0 + 1, 0x2a, blocks, out); /* WRITE(10) */
	/* RFC 7143 §4.2.2.1: the target delivers non-immediate commands in
	 * CmdSN order, so C+1 cannot be answered before C was even sent. */
	st = recv_pdu(b, &p, now_ms() + 500);
	if (st > 0 && op_of(&p) == OP_SCSI_RSP && get(p.bhs + 16, 4) == itt_w)
		st_w = p.bhs[2] ? -1 : p.bhs[3];
	if (st >= 0 && st_w == -2)
		not_ok("CmdSN: CID 1 %s after the WRITE (C+1)", st ? "sent another PDU" : "closed");
	else
		check(st_w == -2, "CmdSN: the WRITE with C+1 on CID 1 is not answered before C "
				  "is sent (RFC 7143 §4.2.2.1: delivery in CmdSN order)");

	scsi_cmd(a, itt_t, c0, 0, 0, NULL); /* TEST UNIT READY */
	st_t = scsi_status(a, itt_t, NULL, "TEST UNIT READY (C, CID 0)");
	if (st_w == -2)
		st_w = scsi_status(b, itt_w, NULL, "WRITE(10) (C+1, CID 1)");
	s->cmd_sn = c0 + 2;
	if (st_t >= 0 && st_w >= 0)
		check(!st_t && !st_w,
		      "CmdSN: TEST UNIT READY (C, CID 0) status 0x%02x, WRITE (C+1, CID 1) "
		      "status 0x%02x, want GOOD",
		      (unsigned int)st_t, (unsigned int)st_w);
	if (ping(a, "CmdSN, after", &exp))
		check(!sn_gt(c0 + 2, exp), "CmdSN: ExpCmdSN %u after C=%u and C+1, want %u", exp,
		      c0, c0 + 2);

	if (!sn_gt(s->max_cmd_sn, c0 + 1)) {
		not_ok("CmdSN: window [%u, %u], no room for the READ", c0 + 2, s->max_cmd_sn);
		return;
	}
	scsi_cmd(a, next_itt, c0 + 2, 0x28, blocks, NULL); /* READ(10) */
	s->cmd_sn = c0 + 3;
	memset(in, 0, sizeof(in));
	st = scsi_status(a, next_itt++, in, "READ(10) (C+2, CID 0)");
	same = !memcmp(in, out, blocks * BLOCK);
	if (st >= 0)
		check(!st && same,
		      "READ(10) on CID 0: status 0x%02x, data %s the %u bytes written "
		      "on CID 1",
		      (unsigned int)st, same ? "equal to" : "differ from", blocks * BLOCK);
}

/*
 * 3b. ABORT TASK of a command held for CmdSN order (§11.5.1): a WRITE with
 * C+1 on CID 1, then ABORT TASK of it (immediate) on CID 0: "Function
 * complete"; then C on CID 0. The WRITE never runs (no response, its data
 * not on the LUN) and its CmdSN still counts (ExpCmdSN reaches C+2).
 */
static void step_abort_held(struct sess *s, struct conn *a, struct conn *b)
{
	uint8_t out[8 * BLOCK], in[8 * BLOCK], t[BHS_LEN] = {OP_TMF_REQ | OP_IMMEDIATE};
	uint32_t c0 = s->cmd_sn, blocks, i, exp = 0, itt_w = next_itt++, itt_m = next_itt++;
	uint64_t deadline = now_ms() + 3000;
	int st, rsp = -1;
	struct pdu p;

	blocks = s->mrdsl / BLOCK < 8 ? s->mrdsl / BLOCK : 8;
	if (!sn_gt(s->max_cmd_sn, c0 + 1) || !blocks) {
		not_ok("ABORT TASK: window [%u, %u]: no room to test", c0, s->max_cmd_sn);
		return;
	}
	for (i = 0; i < blocks * BLOCK; i++)
		out[i] = (uint8_t)(0xa5 ^ i);
	scsi_cmd(b, itt_w, c0 + 1, 0x2a, blocks, out); /* WRITE(10), held */
	t[1] = 0x80 | 1;			       /* F, ABORT TASK */
	put(t + 16, itt_m, 4);
	put(t + 20, itt_w, 4); /* Referenced Task Tag */
	put(t + 24, c0, 4);
	put(t + 28, a->exp_stat_sn, 4);
	put(t + 32, c0 + 1, 4); /* RefCmdSN */
	send_all(a->fd, t, BHS_LEN);
	while (rsp < 0 && recv_pdu(a, &p, deadline) > 0)
		if (op_of(&p) == OP_TMF_RSP && get(p.bhs + 16, 4) == itt_m)
			rsp = p.bhs[2];
	check(rsp == 0, "ABORT TASK of the WRITE held with C+1: response %d, want 0", rsp);

	scsi_cmd(a, next_itt, c0, 0, 0, NULL); /* TEST UNIT READY */
	st = scsi_status(a, next_itt++, NULL, "TEST UNIT READY (C, after ABORT TASK)");
	check(st == 0, "TEST UNIT READY with C after the abort: status %d", st);
	st = recv_pdu(b, &p, now_ms() + 500);
	check(st<0, "ABORT TASK: CID 1 %s after the aborted WRITE, want nothing", st> 0
		      ? "got a PDU"
	      : st < 0 ? "got nothing"
		       : "was closed");
	s->cmd_sn = c0 + 2;
	if (ping(a, "ABORT TASK, after", &exp))
		check(!sn_gt(c0 + 2, exp),
		      "ABORT TASK: ExpCmdSN %u, want %u: the aborted CmdSN "
		      "counts",
		      exp, c0 + 2);
	scsi_cmd(a, next_itt, c0 + 2, 0x28, blocks, NULL); /* READ(10) */
	s->cmd_sn = c0 + 3;
	memset(in, 0, sizeof(in));
	st = scsi_status(a, next_itt++, in, "READ(10) after ABORT TASK");
	if (st >= 0)
		check(!st && memcmp(in, out, blocks * BLOCK),
		      "ABORT TASK: READ status 0x%02x, the aborted WRITE's data %s",
		      (unsigned int)st,
		      memcmp(in, out, blocks * BLOCK) ? "is not on the LUN" : "IS on the LUN");
}

/*
 * 3c. ABORT TASK of a WRITE whose Data-Out is arriving on the other
 * connection: the target receives a large data segment straight into the
 * task's buffer, so the task must outlive the abort until that PDU is in
 * (a use after free otherwise, which the ASan build reports). The WRITE
 * (CID 1) sends 32 KiB unsolicited (InitialR2T=No, FirstBurstLength 64 KiB
 * by default), its header and 1000 bytes first; the abort comes on CID 0,
 * then the rest of the data. The abort is answered, both connections
 * stay up, and the WRITE gets no response (RFC 7143 §4.2.3.3).
 */
static void step_abort_placing(struct sess *s, struct conn *a, struct conn *b)
{
	enum { LEN = 32768, FIRST = 1000 };
	uint8_t w[BHS_LEN] = {OP_SCSI_CMD}, d[BHS_LEN + LEN] = {0x05, 0x80};
	uint8_t t[BHS_LEN] = {OP_TMF_REQ | OP_IMMEDIATE};
	uint32_t c0 = s->cmd_sn, itt_w = next_itt++, itt_m = next_itt++, i, exp = 0;
	uint64_t deadline = now_ms() + 3000;
	int rsp = -1, st;
	struct pdu p;

	w[1] = 0x20 | 1; /* W, SIMPLE; not F: unsolicited Data-Out follows */
	put(w + 16, itt_w, 4);
	put(w + 20, LEN, 4);
	put(w + 24, c0, 4);
	put(w + 28, b->exp_stat_sn, 4);
	w[32] = 0x2a; /* WRITE(10) of 64 blocks at LBA 64 */
	put(w + 34, 64, 4);
	put(w + 39, LEN / BLOCK, 2);
	put(d + 5, LEN, 3); /* Data-Out, F: DataSN 0, offset 0 */
	put(d + 16, itt_w, 4);
	put(d + 20, RSVD, 4);
	put(d + 28, b->exp_stat_sn, 4);
	for (i = 0; i < LEN; i++)
		d[BHS_LEN + i] = (uint8_t)(0x3c ^ i);
	send_all(b->fd, w, BHS_LEN);
	send_all(b->fd, d, BHS_LEN + FIRST);
	usleep(300 * 1000); /* the target reads the header and starts */
	t[1] = 0x80 | 1;    /* F, ABORT TASK */
	put(t + 16, itt_m, 4);
	put(t + 20, itt_w, 4);
	put(t + 24, c0 + 1, 4);
	put(t + 28, a->exp_stat_sn, 4);
	put(t + 32, c0, 4); /* RefCmdSN */
	send_all(a->fd, t, BHS_LEN);
	while (rsp < 0 && recv_pdu(a, &p, deadline) > 0)
		if (op_of(&p) == OP_TMF_RSP && get(p.bhs + 16, 4) == itt_m)
			rsp = p.bhs[2];
	check(rsp == 0,
	      "ABORT TASK of a WRITE receiving its Data-Out on CID 1: response %d, want 0", rsp);
	send_all(b->fd, d + BHS_LEN + FIRST, LEN - FIRST);
	s->cmd_sn = c0 + 1;
	if (ping(b, "ABORT TASK while the Data-Out arrives, CID 1", &exp))
		check(exp == c0 + 1, "ABORT TASK while the Data-Out arrives: ExpCmdSN %u, want %u",
		      exp, c0 + 1);
	ping(a, "ABORT TASK while the Data-Out arrives, CID 0", NULL);
	st = recv_pdu(b, &p, now_ms() + 300);
	check(st <= 0 || op_of(&p) != OP_SCSI_RSP,
	      "ABORT TASK while the Data-Out arrives: the aborted WRITE %s",
	      st > 0 ? "got a response" : "got none");
	check(target_alive(), "iser-target alive after the abort of a WRITE receiving data");
}

/* 4. Up to N connections, then one more gets 0x0206 (§11.13.5, §13.2).
 * @conns[0..@have-1] are logged in; those added here log out again. */
static void step_too_many(struct sess *s, struct conn *conns, uint16_t have)
{
	struct pdu p;
	uint16_t cid;
	int st;

	if (s->max_conns > MAX_CONNS) {
		printf("# step 4 skipped: MaxConnections=%u\n", s->max_conns);
		return;
	}
	for (cid = have; cid < s->max_conns; cid++) {
		st = login(s, &conns[cid], s->tsih, cid, 0, &p, "a connection up to N");
		if (st > 0)
			not_ok("connection %u of MaxConnections=%u: status 0x%04x", cid + 1,
			       s->max_conns, (unsigned int)st);
		if (st) {
			drop(&conns[cid]);
			return;
		}
	}
	login_refused(s, s->tsih, cid, LS_TOO_MANY_CONNECTIONS,
		      "a connection more than MaxConnections");
	for (cid = have; cid < s->max_conns; cid++) {
		check(logout(&conns[cid], 1, cid) == 0, "Logout reason 1 of CID %u on itself", cid);
		closed_by_target(&conns[cid], "its own Logout");
	}
}

/* 6. A login with CID 1 again reinstates it: the old one ends (§6.3.4). */
static void step_reinstate(struct sess *s, struct conn *b)
{
	struct conn nb;
	struct pdu p;
	int st = login(s, &nb, s->tsih, b->cid, b->exp_stat_sn, &p, "reinstating CID 1");

	if (st < 0 || !check(!st && get(p.bhs + 14, 2) == s->tsih,
			     "a new login with CID 1: status 0x%04x, TSIH %u%s", (unsigned int)st,
			     get(p.bhs + 14, 2),
			     st == LS_TOO_MANY_CONNECTIONS ? " (a reinstatement replaces a "
							     "connection, it adds none)"
							   : "")) {
		drop(&nb);
		drop(b);
		return;
	}
	closed_by_target(b, "reinstatement, the old CID 1");
	*b = nb;
	ping(b, "reinstatement, the new CID 1", NULL);
}

/* 7. Logout reason 1 of another connection, then of an unknown CID. */
static void step_logout_other(struct conn *a, struct conn *b)
{
	int r = logout(a, 1, b->cid);

	check(r == 0, "Logout reason 1 for CID 1, sent on CID 0: response %d, want 0", r);
	closed_by_target(b, "Logout reason 1 from CID 0");
	ping(a, "after logging CID 1 out", NULL);
	r = logout(a, 1, 42);
	check(r == 1, "Logout reason 1 for CID 42, which no connection has: response %d, want 1",
	      r);
	ping(a, "after the Logout of an unknown CID", NULL);
}

/* 8. Logout reason 0 ends the session: all its connections close. */
static void step_logout_session(struct sess *s, struct conn *a, bool mcs)
{
	struct conn d = {.fd = -1};
	struct pdu p;
	int r = mcs ? login(s, &d, s->tsih, 2, 0, &p, "joining with CID 2") : 0;

	if (r > 0)
		not_ok("joining with CID 2 before the session's Logout: status 0x%04x",
		       (unsigned int)r);
	if (r)
		drop(&d);
	r = logout(a, 0, a->cid);
	check(r == 0, "Logout reason 0 on CID 0: response %d, want 0", r);
	closed_by_target(a, "Logout reason 0, its own connection");
	if (d.fd >= 0)
		closed_by_target(&d, "Logout reason 0, the other connection");
}

/* 9. The daemon still serves a new session. */
static void step_new_session(void)
{
	struct sess s = {.isid = {0x80, 0x00, 0x4d, 0x43, 0x53, 0x02}};
	struct conn c;
	struct pdu p;
	int st;

	if (!target_alive())
		bail("iser-target died during the MC/S steps");
	st = login(&s, &c, 0, 0, 0, &p, "a new session");
	if (st >= 0 && check(!st, "a new session logs in: status 0x%04x", (unsigned int)st) &&
	    ping(&c, "a new session", NULL))
		check(logout(&c, 0, 0) == 0, "a new session logs out");
	drop(&c);
}

int main(int argc, char **argv)
{
	/* ISID of the random type; the initial CmdSN is ours to choose. */
	struct sess s = {.isid = {0x80, 0x00, 0x4d, 0x43, 0x53, 0x01}, .cmd_sn = 0x100};
	struct conn conns[MAX_CONNS];
	bool mcs, joined = false;
	uint16_t bogus;
	int i;

	if (argc != 2) {
		fprintf(stderr, "usage: target_mcs ISER-TARGET\n");
		return 1;
	}
	for (i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;
	if (access(argv[1], X_OK)) {
		printf("SKIP: %s: %s\n", argv[1], strerror(errno));
		return 77;
	}
	setup("/tmp/iserkit-mcs.XXXXXX", 0); /* a short log: all of it */
	/* No keepalive pings (nop-interval 0): a connection closes only when a
	 * step closes it. */
	if (!start_target(argv[1], IQN, "nop-interval = 0\n", 47))
		bail("iser-target did not start");

	mcs = step_leading(&s, &conns[0]);
	if (mcs)
		joined = step_join(&s, &conns[1]);
	if (joined) {
		step_cmdsn(&s, &conns[0], &conns[1]);
		step_abort_held(&s, &conns[0], &conns[1]);
		step_abort_placing(&s, &conns[0], &conns[1]);
	}
	step_too_many(&s, conns, joined ? 2 : 1);
	bogus = (uint16_t)(s.tsih + 100);
	login_refused(&s, bogus ? bogus : 1, 9, LS_SESSION_NOT_FOUND,
		      "a login naming a TSIH no session has");
	if (joined)
		step_reinstate(&s, &conns[1]);
	if (conns[1].fd >= 0)
		step_logout_other(&conns[0], &conns[1]);
	step_logout_session(&s, &conns[0], mcs);
	step_new_session();
	stop_target();
	sanitizer_clean();
	return fails ? 1 : 0;
}
