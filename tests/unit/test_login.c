/*
 * Unit tests for the target's login state machine (target/login.c, driven
 * through target/conn.c): a fake initiator writes Login Requests into one
 * end of a socketpair whose other end is a target connection, runs the
 * scheduler without ever blocking, and checks each Login Response against
 * RFC 7143 (§6.3 login phase, §11.12 / §11.13 PDU layout and status
 * codes, §12.1.3 CHAP, §13 keys); then, where the login succeeds, that the
 * full feature phase works (SCSI TEST UNIT READY, SendTargets).
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chap.h"
#include "common/ioq.h"
#include "common/log.h"
#include "config.h"
#include "digest.h"
#include "tgt.h"

#define TARGET "iqn.2026-11.org.iserkit:disk"
#define INITIATOR "iqn.2026-11.org.iserkit:client"
#define OTHER_INITIATOR "iqn.2026-11.org.iserkit:intruder"
#define CHAP_USER "client"
#define CHAP_SECRET "initiator-secret-1"
#define MUTUAL_USER "disk"
#define MUTUAL_SECRET "target-secret-22"
#define PORTAL "127.0.0.1:3260"

#define ROUNDS 2000 /* scheduler passes before giving up */
#define NS 1000000000ull
#define RX_MAX (PDU_BHS_LEN + 65536) /* a whole PDU, digests included */

/* Login Request flags for login_step() */
#define T_BIT 0x1
#define C_BIT 0x2

/* Stage codes, RFC 7143 §11.12.3 */
#define SEC 0
#define OP 1
#define FFP 3

/* Login status, class << 8 | detail (RFC 7143 §11.13.5) */
#define ST_INITIATOR_ERROR 0x0200
#define ST_AUTH_FAILURE 0x0201
#define ST_AUTHZ_FAILURE 0x0202
#define ST_NOT_FOUND 0x0203
#define ST_UNSUPPORTED_VERSION 0x0205
#define ST_MISSING_PARAMETER 0x0207
#define ST_NO_SESSION 0x020a
#define ST_INVALID_DURING_LOGIN 0x020b

/*
 * One initiator connection: our end of the socketpair, the fields a
 * login keeps (RFC 7143 §11.12: ISID, TSIH, ITT, CID, CmdSN stay the
 * same), and the last PDU received with its keys.
 */
struct ini {
	int fd;
	uint8_t isid[6];
	uint16_t tsih;
	uint16_t cid;
	uint32_t itt;
	uint32_t cmd_sn;
	uint32_t exp_stat_sn;
	unsigned int digests; /* PDU_HDIGEST once negotiated */
	uint8_t rx[RX_MAX];   /* bytes read, not yet a whole PDU */
	size_t rx_len;
	uint8_t last[RX_MAX]; /* the last whole PDU; rsp points into it */
	struct pdu rsp;
	struct text_list keys; /* its data segment, for Login and Text */
};

static struct tgt t;
static struct tgt_target tt;
static struct lun *lun;
static struct tgt_portal portal;
static char conf_path[64], lun_path[64];
static struct ini ini_a, ini_b, ini_c;
static char kmem[8192];
static struct text_buf kb;
static uint64_t now_ns; /* the scheduler's clock: time moves when a test says */

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return now_ns;
}

/* Target */

/* Start a target from a config file made of @global lines and @target
 * lines (CHAP accounts, ACLs), as the daemon does, with one 1 MiB LUN on
 * a sparse file and the synchronous backing store. */
static void target_start(const char *global, const char *target)
{
	char text[2048], err[CONFIG_ERR_MAX];
	FILE *f;
	int fd;

	snprintf(lun_path, sizeof(lun_path), "/tmp/test_login_lun.XXXXXX");
	fd = mkstemp(lun_path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	unlink(lun_path); /* lun_open creates it sparse */
	snprintf(conf_path, sizeof(conf_path), "/tmp/test_login_conf.XXXXXX");
	fd = mkstemp(conf_path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	snprintf(text, sizeof(text),
		 "[global]\nportal = %s\n%s\n[target %s]\n%s\n[lun 0]\npath = %s\nsize = 1M\n",
		 PORTAL, global, TARGET, target, lun_path);
	fputs(text, f);
	fclose(f);

	ini_a.fd = ini_b.fd = ini_c.fd = -1;
	memset(&t, 0, sizeof(t));
	t.next_tsih = 1;
	ck_assert_int_eq(config_create(&t.cfg), 0);
	ck_assert_msg(!config_load(t.cfg, conf_path, err, sizeof(err)), "%s", err);
	ck_assert_msg(!config_finish(t.cfg, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(sched_create(&t.sched), 0);
	now_ns = 1000 * NS;
	sched_set_clock(t.sched, fake_clock, NULL);
	ck_assert_int_eq(ioq_create(t.sched, 64, IOQ_FORCE_SYNC, &t.ioq), 0);
	ck_assert_int_eq(lun_open(&t.cfg->targets[0].luns[0], t.ioq, &lun), 0);
	tt = (struct tgt_target){
		.cfg = &t.cfg->targets[0],
		.luns = &lun,
		.nluns = 1,
		.scsi = {.luns = &lun, .nluns = 1, .name = TARGET, .tpgt = 1},
	};
	t.targets = &tt;
	t.ntargets = 1;
	/* A portal as SendTargets reports it; nothing listens on it. */
	portal = (struct tgt_portal){.tgt = &t, .fd = -1, .name = PORTAL};
	t.portals = &portal;
	t.nportals = 1;
}

/* One scheduler pass that never blocks: a stop request makes the wait
 * non-blocking, and everything here is a socketpair or synchronous. */
static void run_once(void)
{
	sched_stop(t.sched);
	sched_run_once(t.sched);
}

/* The target's refusals are expected here; TEST_LOGIN_LOG=1 shows them
 * and the keys exchanged. */
static void quiet_log(void)
{
	log_init("test_login", getenv("TEST_LOGIN_LOG") ? LOG_LVL_DEBUG : LOG_LVL_ERR, false);
}

static void setup_plain(void)
{
	quiet_log();
	target_start("", "");
}

static void setup_chap(void)
{
	quiet_log();
	target_start("", "chap = " CHAP_USER " " CHAP_SECRET "\n");
}

static void setup_mutual_chap(void)
{
	quiet_log();
	target_start("", "chap = " CHAP_USER " " CHAP_SECRET "\n"
			 "mutual-chap = " MUTUAL_USER " " MUTUAL_SECRET "\n");
}

static void setup_acl(void)
{
	quiet_log();
	target_start("", "allow = " INITIATOR "\n");
}

static void setup_discovery_chap(void)
{
	quiet_log();
	target_start("discovery-chap = " CHAP_USER " " CHAP_SECRET "\n", "");
}

static void ini_close(struct ini *ini)
{
	if (ini->fd >= 0)
		close(ini->fd);
	ini->fd = -1;
}

/* Close everything and let the target free it, so that ASan sees no leak. */
static void teardown(void)
{
	int i;

	ini_close(&ini_a);
	ini_close(&ini_b);
	ini_close(&ini_c);
	conn_destroy_all(&t);
	for (i = 0; t.conns && i < ROUNDS; i++)
		run_once();
	ck_assert_ptr_null(t.conns);
	ck_assert_ptr_null(t.sessions);
	lun_close(lun);
	ioq_destroy(t.ioq);
	sched_destroy(t.sched);
	config_destroy(t.cfg);
	unlink(lun_path);
	unlink(conf_path);
}

/* Initiator */

/* A new connection to the target; @qualifier is the ISID's last byte. */
static void ini_connect(struct ini *ini, uint8_t qualifier)
{
	int sv[2];

	memset(ini, 0, sizeof(*ini));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	ck_assert_int_eq(conn_create(&t, sv[0], &(struct sockaddr){.sa_family = AF_UNIX},
				     sizeof(struct sockaddr)),
			 0);
	ini->fd = sv[1];
	/* RFC 7143 §11.12.5: T=10b "Random" format, then a qualifier. */
	ini->isid[0] = 0x80;
	ini->isid[1] = 0x12;
	ini->isid[2] = 0x34;
	ini->isid[3] = 0x56;
	ini->isid[5] = qualifier;
	ini->itt = 0x1000u + qualifier;
	ini->cid = 1;
	ini->cmd_sn = 0x100;
	ini->exp_stat_sn = 0x4000;
}

static void write_all(struct ini *ini, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int i;

	for (i = 0; len && i < ROUNDS; i++) {
		ssize_t n = write(ini->fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else {
			ck_assert_msg(errno == EAGAIN, "write: %s", strerror(errno));
			run_once();
		}
	}
	ck_assert_msg(!len, "the target does not read");
}

/* Send one PDU: header (+ header digest if negotiated), data, padding. */
static void send_pdu(struct ini *ini, struct pdu_bhs *bhs, const void *data, uint32_t len)
{
	uint8_t hdr[PDU_BHS_LEN + PDU_DIGEST_LEN];
	static const uint8_t pad[3];
	size_t hlen = PDU_BHS_LEN;

	bhs->data_len = len;
	ck_assert_int_eq(pdu_bhs_encode(bhs, hdr, PDU_BHS_LEN), 0);
	if (ini->digests & PDU_HDIGEST) {
		digest_store(hdr + PDU_BHS_LEN, digest_crc32c(hdr, PDU_BHS_LEN));
		hlen += PDU_DIGEST_LEN;
	}
	write_all(ini, hdr, hlen);
	if (len) {
		write_all(ini, data, len);
		if (PDU_PAD4(len) != len)
			write_all(ini, pad, PDU_PAD4(len) - len);
	}
}

/*
 * Read exactly one PDU from the target into ini->rsp, running the
 * scheduler while there is nothing to read. Returns 0, -EPIPE when the
 * target closed the connection first, or -ETIMEDOUT.
 */
static int recv_pdu(struct ini *ini)
{
	int i, total;

	for (i = 0; i < ROUNDS; i++) {
		ssize_t n;

		total = pdu_total_len(ini->rx, ini->rx_len, ini->digests, PDU_DSL_MAX);
		if (total > 0 && ini->rx_len >= (size_t)total) {
			memcpy(ini->last, ini->rx, (size_t)total);
			ini->rx_len -= (size_t)total;
			memmove(ini->rx, ini->rx + total, ini->rx_len);
			ck_assert_int_eq(pdu_parse(ini->last, (size_t)total, ini->digests,
						   PDU_DSL_MAX, &ini->rsp),
					 total);
			return 0;
		}
		ck_assert_int_lt(ini->rx_len, RX_MAX);
		n = read(ini->fd, ini->rx + ini->rx_len, RX_MAX - ini->rx_len);
		if (n > 0) {
			ini->rx_len += (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE;
		ck_assert_msg(errno == EAGAIN, "read: %s", strerror(errno));
		run_once();
	}
	return -ETIMEDOUT;
}

/* The connection ends, with nothing more from the target. */
static void expect_closed(struct ini *ini)
{
	int ret = recv_pdu(ini);

	ck_assert_msg(ret == -EPIPE, "the target did not close the connection (%s, opcode 0x%02x)",
		      ret ? strerror(-ret) : "a PDU", ret ? 0 : ini->rsp.bhs.opcode);
}

/* Key lists */

static struct text_buf *keys_begin(void)
{
	text_buf_init(&kb, kmem, sizeof(kmem));
	return &kb;
}

static void keys_add(const char *key, const char *value)
{
	ck_assert_int_eq(text_append(&kb, key, value), 0);
}

/* A key list of NULL-terminated key, value pairs. */
static struct text_buf *keys(const char *key, ...)
{
	va_list ap;

	keys_begin();
	va_start(ap, key);
	for (; key; key = va_arg(ap, const char *))
		keys_add(key, va_arg(ap, const char *));
	va_end(ap);
	return &kb;
}

/* The value the last response gave @key, or NULL. */
static const char *value_of(const struct ini *ini, const char *key)
{
	const struct text_pair *p = text_list_find(&ini->keys, key);

	return p ? p->value : NULL;
}

static void expect_key(const struct ini *ini, const char *key, const char *value)
{
	const char *v = value_of(ini, key);

	ck_assert_msg(v, "no %s in the response", key);
	ck_assert_str_eq(v, value);
}

/* Login */

static struct pdu_bhs login_bhs(const struct ini *ini, uint8_t csg, uint8_t nsg, unsigned int flags)
{
	struct pdu_bhs bhs = {
		.opcode = PDU_OP_LOGIN_REQ,
		.immediate = true,
		.itt = ini->itt,
		.cmd_sn = ini->cmd_sn,
		.exp_stat_sn = ini->exp_stat_sn,
	};

	bhs.login.transit = flags & T_BIT;
	bhs.login.cont = flags & C_BIT;
	bhs.login.csg = csg;
	bhs.login.nsg = nsg;
	memcpy(bhs.login.isid, ini->isid, sizeof(ini->isid));
	bhs.login.tsih = ini->tsih;
	bhs.login.cid = ini->cid;
	return bhs;
}

/*
 * Read a Login Response. Returns its status (class << 8 | detail), or
 * -EPIPE / -ETIMEDOUT. A successful one moves ExpStatSN on and must
 * carry our ITT and ISID and a well-formed key list.
 */
static int login_recv(struct ini *ini)
{
	const struct pdu_bhs *r = &ini->rsp.bhs;
	int ret = recv_pdu(ini);

	if (ret)
		return ret;
	ck_assert_int_eq(r->opcode, PDU_OP_LOGIN_RSP);
	if (r->login.status_class)
		return r->login.status_class << 8 | r->login.status_detail;
	ck_assert_uint_eq(r->itt, ini->itt);
	ck_assert_mem_eq(r->login.isid, ini->isid, sizeof(ini->isid));
	ck_assert_int_eq(text_parse(ini->rsp.data, r->data_len, 0, &ini->keys), 0);
	ini->exp_stat_sn = r->stat_sn + 1;
	return 0;
}

/* Send one Login Request with the keys in @k (NULL: none) and read the
 * response; returns as login_recv(). */
static int login_step(struct ini *ini, uint8_t csg, uint8_t nsg, unsigned int flags,
		      const struct text_buf *k)
{
	struct pdu_bhs bhs = login_bhs(ini, csg, nsg, flags);

	send_pdu(ini, &bhs, k ? k->data : NULL, k ? (uint32_t)k->len : 0);
	return login_recv(ini);
}

/* RFC 7143 §11.13.5: a login refused with a status class other than 0
 * is followed by the target closing the connection. */
static void expect_refused(struct ini *ini, int ret, int status)
{
	ck_assert_msg(ret == status, "login status 0x%04x (%d), expected 0x%04x", ret, ret, status);
	expect_closed(ini);
}

/*
 * A protocol error during login (RFC 7143 §7.7, §7.13): the target
 * answers an initiator error (class 2) and closes, or just closes. It
 * must not go on with the login.
 */
static void expect_login_ends(struct ini *ini, int ret)
{
	ck_assert_msg(ret == -EPIPE || (ret >> 8) == 2,
		      "the login went on: status 0x%04x (%d), T=%d, NSG=%d", ret, ret,
		      ini->rsp.bhs.login.transit, ini->rsp.bhs.login.nsg);
	if (ret != -EPIPE)
		expect_closed(ini);
}

/* The names of a normal session. */
static struct text_buf *normal_keys(void)
{
	return keys("InitiatorName", INITIATOR, "TargetName", TARGET, "SessionType", "Normal",
		    NULL);
}

/* A declaration allowed in any stage, to make a request that is not
 * empty but settles nothing (RFC 7143 §13.7). */
static struct text_buf *alias(void)
{
	return keys("InitiatorAlias", "test", NULL);
}

/* Operational stage straight to full feature phase, all defaults. */
static void login_normal(struct ini *ini)
{
	ck_assert_int_eq(login_step(ini, OP, FFP, T_BIT, normal_keys()), 0);
	ck_assert(ini->rsp.bhs.login.transit);
	ck_assert_uint_eq(ini->rsp.bhs.login.nsg, FFP);
	ck_assert_uint_ne(ini->rsp.bhs.login.tsih, 0);
	ini->tsih = ini->rsp.bhs.login.tsih;
}

/* Full feature phase */

/* TEST UNIT READY on LUN 0; returns the SCSI status. */
static int scsi_tur(struct ini *ini)
{
	struct pdu_bhs bhs = {
		.opcode = PDU_OP_SCSI_CMD,
		.final = true,
		.itt = ++ini->itt,
		.cmd_sn = ini->cmd_sn++,
		.exp_stat_sn = ini->exp_stat_sn,
	};
	const struct pdu_bhs *r = &ini->rsp.bhs;

	send_pdu(ini, &bhs, NULL, 0);
	ck_assert_int_eq(recv_pdu(ini), 0);
	ck_assert_int_eq(r->opcode, PDU_OP_SCSI_RSP);
	ck_assert_uint_eq(r->itt, bhs.itt);
	ck_assert_uint_eq(r->stat_sn, ini->exp_stat_sn);
	ck_assert_uint_eq(r->scsi_rsp.response, 0); /* Command Completed at Target */
	ini->exp_stat_sn = r->stat_sn + 1;
	return r->scsi_rsp.status;
}

/* The sense key of a CHECK CONDITION response: its data segment is
 * SenseLength, then fixed or descriptor sense data (RFC 7143 §11.4.7). */
static int sense_key(const struct ini *ini)
{
	const uint8_t *d = ini->rsp.data;

	ck_assert_uint_ge(ini->rsp.bhs.data_len, 2 + 3);
	return (d[2] & 0x7f) >= 0x72 ? d[3] & 0x0f : d[4] & 0x0f;
}

/* The LUN answers: a new I_T nexus may first get a UNIT ATTENTION (the
 * power-on reset), then GOOD. */
static void expect_lun_ready(struct ini *ini)
{
	int status = scsi_tur(ini);

	if (status == 2) /* CHECK CONDITION */
		ck_assert_int_eq(sense_key(ini), 6);
	else
		ck_assert_int_eq(status, 0);
	if (status)
		ck_assert_int_eq(scsi_tur(ini), 0);
}

/* Text Request SendTargets=@which; leaves the answer in ini->keys. */
static void send_targets(struct ini *ini, const char *which)
{
	struct pdu_bhs bhs = {
		.opcode = PDU_OP_TEXT_REQ,
		.final = true,
		.itt = ++ini->itt,
		.cmd_sn = ini->cmd_sn++,
		.exp_stat_sn = ini->exp_stat_sn,
	};
	const struct pdu_bhs *r = &ini->rsp.bhs;
	struct text_buf *k = keys("SendTargets", which, NULL);

	bhs.text.ttt = PDU_RSVD_TAG;
	send_pdu(ini, &bhs, k->data, (uint32_t)k->len);
	ck_assert_int_eq(recv_pdu(ini), 0);
	ck_assert_int_eq(r->opcode, PDU_OP_TEXT_RSP);
	ck_assert_uint_eq(r->itt, bhs.itt);
	ck_assert(r->final);
	ck_assert_int_eq(text_parse(ini->rsp.data, r->data_len, TEXT_PARSE_SENDTARGETS, &ini->keys),
			 0);
	ini->exp_stat_sn = r->stat_sn + 1;
}

/* CHAP (RFC 7143 §12.1.3) up to the target's challenge: AuthMethod, then
 * CHAP_A. Leaves the challenge in ini->keys. */
static void chap_until_challenge(struct ini *ini, struct chap_initiator *ci)
{
	ck_assert_int_eq(login_step(ini, SEC, 0, 0,
				    keys("InitiatorName", INITIATOR, "TargetName", TARGET,
					 "SessionType", "Normal", "AuthMethod", "CHAP,None", NULL)),
			 0);
	ck_assert(!ini->rsp.bhs.login.transit);
	expect_key(ini, "AuthMethod", "CHAP");
	ck_assert_int_eq(chap_initiator_offer(ci, keys_begin()), 0);
	ck_assert_int_eq(login_step(ini, SEC, 0, 0, &kb), 0);
	ck_assert_ptr_nonnull(value_of(ini, "CHAP_A"));
	ck_assert_ptr_nonnull(value_of(ini, "CHAP_I"));
	ck_assert_ptr_nonnull(value_of(ini, "CHAP_C"));
}

/* Answer the challenge and ask to leave the security stage; returns the
 * login status. */
static int chap_answer(struct ini *ini, struct chap_initiator *ci)
{
	ck_assert_int_eq(chap_initiator_respond(ci, &ini->keys, keys_begin()), 0);
	return login_step(ini, SEC, OP, T_BIT, &kb);
}

/* Tests: successful logins */

/* RFC 7143 §6.3.1: no security, default parameters, one exchange. */
START_TEST(test_operational_straight_to_ffp)
{
	const struct pdu_bhs *r = &ini_a.rsp.bhs;

	ini_connect(&ini_a, 1);
	ck_assert_int_eq(login_step(&ini_a, OP, FFP, T_BIT, normal_keys()), 0);
	/* §11.13: Login Final-Response: T=1, CSG as asked, NSG=FFP */
	ck_assert(r->login.transit);
	ck_assert(!r->login.cont);
	ck_assert_uint_eq(r->login.csg, OP);
	ck_assert_uint_eq(r->login.nsg, FFP);
	ck_assert_uint_ne(r->login.tsih, 0); /* §11.13.3 */
	ck_assert_uint_eq(r->login.version_max, 0);
	ck_assert_uint_eq(r->login.version_active, 0);	/* §11.12.4 */
	ck_assert_uint_eq(r->exp_cmd_sn, ini_a.cmd_sn); /* §11.12.8 */
	ck_assert(pdu_sn_le(r->exp_cmd_sn, r->max_cmd_sn));
	/* §6.3.1: TargetPortalGroupTag in the first response */
	expect_key(&ini_a, "TargetPortalGroupTag", "1");
	ini_a.tsih = r->login.tsih;
	expect_lun_ready(&ini_a);
}
END_TEST

/* RFC 7143 §6.3.1, §12.1: AuthMethod=None, then operational, then FFP;
 * StatSN counts up by one per response (§11.13.4). */
START_TEST(test_security_none_then_operational)
{
	const struct pdu_bhs *r = &ini_a.rsp.bhs;
	uint32_t first_sn;

	ini_connect(&ini_a, 1);
	ck_assert_int_eq(login_step(&ini_a, SEC, OP, T_BIT,
				    keys("InitiatorName", INITIATOR, "TargetName", TARGET,
					 "SessionType", "Normal", "AuthMethod", "None", NULL)),
			 0);
	expect_key(&ini_a, "AuthMethod", "None");
	expect_key(&ini_a, "TargetPortalGroupTag", "1");
	ck_assert(r->login.transit);
	ck_assert_uint_eq(r->login.csg, SEC);
	ck_assert_uint_eq(r->login.nsg, OP);
	ck_assert_uint_eq(r->login.tsih, 0); /* §11.13.3: only in the final response */
	first_sn = r->stat_sn;

	ck_assert_int_eq(login_step(&ini_a, OP, FFP, T_BIT, keys("HeaderDigest", "None", NULL)), 0);
	expect_key(&ini_a, "HeaderDigest", "None");
	ck_assert(r->login.transit);
	ck_assert_uint_eq(r->login.csg, OP);
	ck_assert_uint_eq(r->login.nsg, FFP);
	ck_assert_uint_eq(r->stat_sn, first_sn + 1);
	ck_assert_uint_ne(r->login.tsih, 0);
	ini_a.tsih = r->login.tsih;
	expect_lun_ready(&ini_a);
}
END_TEST

/* RFC 7143 §6.3 table: Security -> FullFeature directly is allowed. */
START_TEST(test_security_straight_to_ffp)
{
	ini_connect(&ini_a, 1);
	ck_assert_int_eq(login_step(&ini_a, SEC, FFP, T_BIT,
				    keys("InitiatorName", INITIATOR, "TargetName", TARGET,
					 "AuthMethod", "None", NULL)),
			 0);
	expect_key(&ini_a, "AuthMethod", "None");
	ck_assert(ini_a.rsp.bhs.login.transit);
	ck_assert_uint_eq(ini_a.rsp.bhs.login.nsg, FFP);
	ck_assert_uint_ne(ini_a.rsp.bhs.login.tsih, 0);
	expect_lun_ready(&ini_a);
}
END_TEST

/* RFC 7143 §6.3: a Discovery session needs no TargetName; SendTargets
 * (Appendix C) then lists the target and its portal. */
START_TEST(test_discovery_send_targets)
{
	ini_connect(&ini_a, 1);
	ck_assert_int_eq(
		login_step(&ini_a, OP, FFP, T_BIT,
			   keys("InitiatorName", INITIATOR, "SessionType", "Discovery", NULL)),
		0);
	ck_assert(ini_a.rsp.bhs.login.transit);
	ck_assert_uint_ne(ini_a.rsp.bhs.login.tsih, 0);
	send_targets(&ini_a, "All");
	expect_key(&ini_a, "TargetName", TARGET);
	expect_key(&ini_a, "TargetAddress", PORTAL ",1");
}
END_TEST

/* RFC 7143 §13: operational keys are answered and take effect: with
 * HeaderDigest=CRC32C agreed, FFP PDUs carry a header digest. */
START_TEST(test_operational_keys_answered)
{
	ini_connect(&ini_a, 1);
	ck_assert_int_eq(login_step(&ini_a, OP, 0, 0,
				    keys("InitiatorName", INITIATOR, "TargetName", TARGET,
					 "HeaderDigest", "CRC32C,None", "MaxBurstLength", "65536",
					 "InitialR2T", "Yes", NULL)),
			 0);
	ck_assert(!ini_a.rsp.bhs.login.transit); /* §11.13.6: T=0 asked, T=0 answered */
	expect_key(&ini_a, "HeaderDigest", "CRC32C");
	expect_key(&ini_a, "MaxBurstLength", "65536"); /* §13.13: Minimum */
	expect_key(&ini_a, "InitialR2T", "Yes");       /* §13.10: OR */
	ck_assert_int_eq(login_step(&ini_a, OP, FFP, T_BIT, keys("ImmediateData", "No", NULL)), 0);
	expect_key(&ini_a, "ImmediateData", "No"); /* §13.11: AND */
	ck_assert(ini_a.rsp.bhs.login.transit);
	ini_a.digests = PDU_HDIGEST;
	expect_lun_ready(&ini_a);
}
END_TEST

/* RFC 7143 §6.2: an unknown key is answered NotUnderstood and the login
 * goes on. */
START_TEST(test_unknown_key_not_understood)
{
	ini_connect(&ini_a, 1);
	ck_assert_int_eq(login_step(&ini_a, OP, FFP, T_BIT,
				    keys("InitiatorName", INITIATOR, "TargetName", TARGET,
					 "X-org.example.frobnicate", "7", NULL)),
			 0);
	expect_key(&ini_a, "X-org.example.frobnicate", "NotUnderstood");
	ck_assert(ini_a.rsp.bhs.login.transit);
	ck_assert_uint_ne(ini_a.rsp.bhs.login.tsih, 0);
}
END_TEST

/* RFC 7143 §6.2, §11.12.2: keys split over two Login Requests (C bit),
 * even inside one pair, are taken together; the target answers the
 * first with an empty response (§6.2) and does not move on. */
START_TEST(test_continued_keys)
{
	static const char part1[] = "InitiatorName=" INITIATOR "\0TargetName=iqn.2026-11.org";
	static const char part2[] = ".iserkit:disk\0SessionType=Normal\0MaxBurstLength=131072";
	const struct pdu_bhs *r = &ini_a.rsp.bhs;
	struct pdu_bhs bhs;
	uint32_t first_sn;

	ini_connect(&ini_a, 1);
	bhs = login_bhs(&ini_a, OP, 0, C_BIT);
	send_pdu(&ini_a, &bhs, part1, sizeof(part1) - 1);
	/* read as is: the header is checked in test_continued_response_header */
	ck_assert_int_eq(recv_pdu(&ini_a), 0);
	ck_assert_int_eq(r->opcode, PDU_OP_LOGIN_RSP);
	ck_assert_uint_eq(r->login.status_class, 0);
	ck_assert_uint_eq(r->data_len, 0);
	ck_assert(!r->login.transit);
	ck_assert(!r->login.cont);
	ck_assert_uint_eq(r->login.tsih, 0);
	first_sn = r->stat_sn;
	ini_a.exp_stat_sn = first_sn + 1;

	bhs = login_bhs(&ini_a, OP, FFP, T_BIT);
	send_pdu(&ini_a, &bhs, part2, sizeof(part2));
	ck_assert_int_eq(login_recv(&ini_a), 0);
	ck_assert_uint_eq(r->stat_sn, first_sn + 1);
	expect_key(&ini_a, "MaxBurstLength", "131072");
	expect_key(&ini_a, "TargetPortalGroupTag", "1");
	ck_assert(r->login.transit);
	ck_assert_uint_eq(r->login.nsg, FFP);
	ck_assert_uint_ne(r->login.tsih, 0);
	expect_lun_ready(&ini_a);
}
END_TEST

/* The answer to a continued request is a Login Response like any
 * other: it carries the ISID of the login and our ITT (RFC 7143 §11.13,
 * §6.3: the login is one task with one ITT). */
START_TEST(test_continued_response_header)
{
	static const char part1[] = "InitiatorName=" INITIATOR;
	struct pdu_bhs bhs;

	ini_connect(&ini_a, 1);
	bhs = login_bhs(&ini_a, OP, 0, C_BIT);
	send_pdu(&ini_a, &bhs, part1, sizeof(part1));
	ck_assert_int_eq(login_recv(&ini_a), 0);
	ck_assert_uint_eq(ini_a.rsp.bhs.data_len, 0);
}
END_TEST

/* RFC 7143 §6.3.5: a leading login (TSIH 0) with the ISID and
 * InitiatorName of a live session ends that session; another ISID does
 * not. */
START_TEST(test_session_reinstatement)
{
	ini_connect(&ini_a, 1);
	login_normal(&ini_a);
	expect_lun_ready(&ini_a);

	ini_connect(&ini_c, 2); /* another ISID: a second session */
	login_normal(&ini_c);
	ck_assert_uint_ne(ini_c.tsih, ini_a.tsih);
	expect_lun_ready(&ini_c);
	ck_assert_int_eq(scsi_tur(&ini_a), 0); /* the first still works */

	ini_connect(&ini_b, 1); /* same ISID as the first */
	login_normal(&ini_b);
	ck_assert_uint_ne(ini_b.tsih, ini_a.tsih);
	expect_closed(&ini_a);
	expect_lun_ready(&ini_b);
	ck_assert_int_eq(scsi_tur(&ini_c), 0);
}
END_TEST

/* Tests: refused logins (RFC 7143 §11.13.5) */

START_TEST(test_unknown_target)
{
	ini_connect(&ini_a, 1);
	expect_refused(&ini_a,
		       login_step(&ini_a, OP, FFP, T_BIT,
				  keys("InitiatorName", INITIATOR, "TargetName",
				       "iqn.2026-11.org.iserkit:nosuch", NULL)),
		       ST_NOT_FOUND);
}
END_TEST

/* RFC 7143 §6.3: the first Login Request must name the initiator. */
START_TEST(test_missing_initiator_name)
{
	ini_connect(&ini_a, 1);
	expect_refused(&ini_a, login_step(&ini_a, OP, FFP, T_BIT, keys("TargetName", TARGET, NULL)),
		       ST_MISSING_PARAMETER);
}
END_TEST

/* RFC 7143 §6.3: and, for a normal session, the target. */
START_TEST(test_missing_target_name)
{
	ini_connect(&ini_a, 1);
	expect_refused(&ini_a,
		       login_step(&ini_a, OP, FFP, T_BIT,
				  keys("InitiatorName", INITIATOR, "SessionType", "Normal", NULL)),
		       ST_MISSING_PARAMETER);
}
END_TEST

/* RFC 7143 §11.12.4, §11.13.2: version 0 only; the refusal says which
 * version the target has. */
START_TEST(test_unsupported_version)
{
	struct pdu_bhs bhs;
	struct text_buf *k = normal_keys();

	ini_connect(&ini_a, 1);
	bhs = login_bhs(&ini_a, OP, FFP, T_BIT);
	bhs.login.version_max = 2;
	bhs.login.version_min = 1;
	send_pdu(&ini_a, &bhs, k->data, (uint32_t)k->len);
	expect_refused(&ini_a, login_recv(&ini_a), ST_UNSUPPORTED_VERSION);
	ck_assert_uint_eq(ini_a.rsp.bhs.login.version_active, 0);
}
END_TEST

/* An initiator outside the target's allow list gets "Authorization
 * failure"; the one in it logs in. */
START_TEST(test_acl)
{
	ini_connect(&ini_a, 1);
	expect_refused(
		&ini_a,
		login_step(&ini_a, OP, FFP, T_BIT,
			   keys("InitiatorName", OTHER_INITIATOR, "TargetName", TARGET, NULL)),
		ST_AUTHZ_FAILURE);
	ini_connect(&ini_b, 2);
	login_normal(&ini_b);
	expect_lun_ready(&ini_b);
}
END_TEST

/* RFC 7143 §6.3.1: a non-zero TSIH that names no session fails the
 * login with "Session does not exist". */
START_TEST(test_unknown_tsih)
{
	ini_connect(&ini_a, 1);
	ini_a.tsih = 0x4242;
	/* no SessionType: it is for leading logins only (§13.21) */
	expect_refused(&ini_a,
		       login_step(&ini_a, OP, FFP, T_BIT,
				  keys("InitiatorName", INITIATOR, "TargetName", TARGET, NULL)),
		       ST_NO_SESSION);
}
END_TEST

/* Tests: CHAP (RFC 7143 §12.1.3) */

START_TEST(test_chap_one_way)
{
	struct chap_initiator ci;
	const struct pdu_bhs *r = &ini_a.rsp.bhs;

	ck_assert_int_eq(
		chap_initiator_init(&ci, CHAP_ALLOW_ALL, CHAP_USER, CHAP_SECRET, NULL, NULL), 0);
	ini_connect(&ini_a, 1);
	chap_until_challenge(&ini_a, &ci);
	ck_assert_int_eq(chap_answer(&ini_a, &ci), 0);
	ck_assert(r->login.transit);
	ck_assert_uint_eq(r->login.csg, SEC);
	ck_assert_uint_eq(r->login.nsg, OP);
	ck_assert_ptr_null(value_of(&ini_a, "CHAP_R")); /* not asked to prove itself */
	ck_assert_int_eq(login_step(&ini_a, OP, FFP, T_BIT, keys("DataDigest", "None", NULL)), 0);
	ck_assert(r->login.transit);
	ck_assert_uint_eq(r->login.nsg, FFP);
	ck_assert_uint_ne(r->login.tsih, 0);
	expect_lun_ready(&ini_a);
}
END_TEST

/* Mutual CHAP: the target proves it knows its own secret. */
START_TEST(test_chap_mutual)
{
	struct chap_initiator ci;

	ck_assert_int_eq(chap_initiator_init(&ci, CHAP_ALLOW_ALL, CHAP_USER, CHAP_SECRET,
					     MUTUAL_USER, MUTUAL_SECRET),
			 0);
	ini_connect(&ini_a, 1);
	chap_until_challenge(&ini_a, &ci);
	ck_assert_int_eq(chap_answer(&ini_a, &ci), 0);
	expect_key(&ini_a, "CHAP_N", MUTUAL_USER);
	ck_assert_int_eq(chap_initiator_verify(&ci, &ini_a.keys), 0);
	ck_assert(ini_a.rsp.bhs.login.transit);
	ck_assert_int_eq(login_step(&ini_a, OP, FFP, T_BIT, keys("DataDigest", "None", NULL)), 0);
	ck_assert_uint_ne(ini_a.rsp.bhs.login.tsih, 0);
	expect_lun_ready(&ini_a);
}
END_TEST

/* The initiator expects another secret for the target: mutual CHAP
 * fails on the initiator's side, as it must detect. */
START_TEST(test_chap_mutual_wrong_target_secret)
{
	struct chap_initiator ci;

	ck_assert_int_eq(chap_initiator_init(&ci, CHAP_ALLOW_ALL, CHAP_USER, CHAP_SECRET,
					     MUTUAL_USER, "not-the-target-secret"),
			 0);
	ini_connect(&ini_a, 1);
	chap_until_challenge(&ini_a, &ci);
	ck_assert_int_eq(chap_answer(&ini_a, &ci), 0);
	ck_assert_int_eq(chap_initiator_verify(&ci, &ini_a.keys), -EACCES);
}
END_TEST

START_TEST(test_chap_wrong_secret)
{
	struct chap_initiator ci;

	ck_assert_int_eq(chap_initiator_init(&ci, CHAP_ALLOW_ALL, CHAP_USER, "not-the-right-secret",
					     NULL, NULL),
			 0);
	ini_connect(&ini_a, 1);
	chap_until_challenge(&ini_a, &ci);
	expect_refused(&ini_a, chap_answer(&ini_a, &ci), ST_AUTH_FAILURE);
}
END_TEST

START_TEST(test_chap_wrong_user)
{
	struct chap_initiator ci;

	ck_assert_int_eq(
		chap_initiator_init(&ci, CHAP_ALLOW_ALL, "someone", CHAP_SECRET, NULL, NULL), 0);
	ini_connect(&ini_a, 1);
	chap_until_challenge(&ini_a, &ci);
	expect_refused(&ini_a, chap_answer(&ini_a, &ci), ST_AUTH_FAILURE);
}
END_TEST

/* RFC 7143 §6.2.1, §7.12: CHAP required and only None offered: no
 * method in common ends the login with "Authentication failure". */
START_TEST(test_chap_required_none_offered)
{
	ini_connect(&ini_a, 1);
	expect_refused(&ini_a,
		       login_step(&ini_a, SEC, OP, T_BIT,
				  keys("InitiatorName", INITIATOR, "TargetName", TARGET,
				       "AuthMethod", "None", NULL)),
		       ST_AUTH_FAILURE);
}
END_TEST

/* RFC 7143 §6.3.1: skipping the security stage where the target needs
 * it: "Authentication failure". */
START_TEST(test_chap_required_security_skipped)
{
	ini_connect(&ini_a, 1);
	expect_refused(&ini_a, login_step(&ini_a, OP, FFP, T_BIT, normal_keys()), ST_AUTH_FAILURE);
}
END_TEST

/* RFC 7143 §12.1.3: after the challenge the initiator must answer with
 * CHAP_N and CHAP_R. Asking to leave the security stage instead (for the
 * operational stage, or for FFP) must not get it in. */
START_TEST(test_chap_transit_without_response)
{
	static const uint8_t nsg[] = {OP, FFP};
	struct chap_initiator ci;
	unsigned int i;

	for (i = 0; i < 2; i++) {
		struct ini *ini = i ? &ini_b : &ini_a;

		ck_assert_int_eq(chap_initiator_init(&ci, CHAP_ALLOW_ALL, CHAP_USER, CHAP_SECRET,
						     NULL, NULL),
				 0);
		ini_connect(ini, (uint8_t)(i + 1));
		chap_until_challenge(ini, &ci);
		expect_login_ends(ini, login_step(ini, SEC, nsg[i], T_BIT, alias()));
	}
}
END_TEST

/* Moving to the operational stage without a transition, in the middle
 * of CHAP, is no way around it. */
START_TEST(test_chap_csg_jump)
{
	struct chap_initiator ci;

	ck_assert_int_eq(
		chap_initiator_init(&ci, CHAP_ALLOW_ALL, CHAP_USER, CHAP_SECRET, NULL, NULL), 0);
	ini_connect(&ini_a, 1);
	chap_until_challenge(&ini_a, &ci);
	expect_login_ends(&ini_a, login_step(&ini_a, OP, FFP, T_BIT, alias()));
}
END_TEST

/* RFC 7143 §6.3.2: with no method in common the target answers
 * AuthMethod=Reject; leaving the security stage then is refused with
 * "Authentication failure" (§6.3.1). */
START_TEST(test_chap_required_none_then_transit)
{
	ini_connect(&ini_a, 1);
	ck_assert_int_eq(login_step(&ini_a, SEC, 0, 0,
				    keys("InitiatorName", INITIATOR, "TargetName", TARGET,
					 "AuthMethod", "None", NULL)),
			 0);
	expect_key(&ini_a, "AuthMethod", "Reject");
	ck_assert(!ini_a.rsp.bhs.login.transit);
	expect_refused(&ini_a, login_step(&ini_a, SEC, OP, T_BIT, alias()), ST_AUTH_FAILURE);
}
END_TEST

/* Discovery CHAP applies to discovery sessions. */
START_TEST(test_discovery_chap_required)
{
	ini_connect(&ini_a, 1);
	expect_refused(&ini_a,
		       login_step(&ini_a, SEC, OP, T_BIT,
				  keys("InitiatorName", INITIATOR, "SessionType", "Discovery",
				       "AuthMethod", "None", NULL)),
		       ST_AUTH_FAILURE);
	/* a normal session to a target without CHAP needs none */
	ini_connect(&ini_b, 2);
	login_normal(&ini_b);
}
END_TEST

/* Tests: protocol errors (RFC 7143 §6.3, §7.7, §7.13) */

/* NSG=2 is reserved (§11.12.3). */
START_TEST(test_nsg_reserved)
{
	ini_connect(&ini_a, 1);
	expect_login_ends(&ini_a, login_step(&ini_a, SEC, 2, T_BIT,
					     keys("InitiatorName", INITIATOR, "TargetName", TARGET,
						  "AuthMethod", "None", NULL)));
}
END_TEST

/* §6.3 table: no transition back, nor to the same stage. */
START_TEST(test_nsg_not_after_csg)
{
	ini_connect(&ini_a, 1);
	expect_login_ends(&ini_a, login_step(&ini_a, OP, SEC, T_BIT, normal_keys()));
	ini_connect(&ini_b, 2);
	expect_login_ends(&ini_b, login_step(&ini_b, OP, OP, T_BIT, normal_keys()));
}
END_TEST

/* §6.3: a Login Request's CSG is the security or the operational
 * stage; FullFeaturePhase is no stage to negotiate in. */
START_TEST(test_csg_ffp)
{
	ini_connect(&ini_a, 1);
	expect_login_ends(&ini_a, login_step(&ini_a, FFP, 0, 0, normal_keys()));
}
END_TEST

/* §6.3: once the target moved the login to the operational stage, a
 * request for the security stage is out of sequence. */
START_TEST(test_csg_back_to_security)
{
	ini_connect(&ini_a, 1);
	ck_assert_int_eq(login_step(&ini_a, SEC, OP, T_BIT,
				    keys("InitiatorName", INITIATOR, "TargetName", TARGET,
					 "AuthMethod", "None", NULL)),
			 0);
	ck_assert(ini_a.rsp.bhs.login.transit);
	expect_login_ends(&ini_a, login_step(&ini_a, SEC, OP, T_BIT, alias()));
}
END_TEST

/* §6.3: "Stage transition is performed through a command exchange
 * (request/response) that carries the T bit and the same CSG code";
 * the target answered T=0, so the login is still in the security stage
 * and a request for the operational stage is out of sequence. */
START_TEST(test_csg_jump_without_transit)
{
	ini_connect(&ini_a, 1);
	ck_assert_int_eq(login_step(&ini_a, SEC, 0, 0,
				    keys("InitiatorName", INITIATOR, "TargetName", TARGET,
					 "AuthMethod", "None", NULL)),
			 0);
	ck_assert(!ini_a.rsp.bhs.login.transit);
	expect_login_ends(&ini_a, login_step(&ini_a, OP, FFP, T_BIT, alias()));
}
END_TEST

/* §11.12.2, §6.2: a Login Request with C=1 must have T=0; both set is
 * inconsistent field contents, a format error (§7.7). */
START_TEST(test_c_and_t_bits)
{
	ini_connect(&ini_a, 1);
	expect_login_ends(&ini_a, login_step(&ini_a, OP, FFP, T_BIT | C_BIT, normal_keys()));
}
END_TEST

/* §6.3.1: the first request's ISID decides which session the login is
 * for. The RFC says "same" outright only for TSIH, CID, Version and ITT
 * (§11.12), but a login whose ISID changes halfway is out of sequence
 * (§7.13) and the target must not go on as if it had not. */
START_TEST(test_isid_changed)
{
	ini_connect(&ini_a, 1);
	ck_assert_int_eq(login_step(&ini_a, OP, 0, 0, normal_keys()), 0);
	ini_a.isid[5] = 0x77;
	expect_login_ends(&ini_a, login_step(&ini_a, OP, FFP, T_BIT, alias()));
}
END_TEST

/* §11.12.6: all Login Requests of a login carry the same TSIH. */
START_TEST(test_tsih_changed)
{
	ini_connect(&ini_a, 1);
	ck_assert_int_eq(login_step(&ini_a, OP, 0, 0, normal_keys()), 0);
	ini_a.tsih = 0x4242;
	expect_login_ends(&ini_a, login_step(&ini_a, OP, FFP, T_BIT, alias()));
}
END_TEST

/* §11.13.5: "Invalid request type during login" for anything but a
 * Login Request before the login completes, first PDU or later. */
START_TEST(test_scsi_command_during_login)
{
	struct pdu_bhs cmd = {.opcode = PDU_OP_SCSI_CMD, .final = true, .itt = 9};

	ini_connect(&ini_a, 1);
	send_pdu(&ini_a, &cmd, NULL, 0);
	expect_refused(&ini_a, login_recv(&ini_a), ST_INVALID_DURING_LOGIN);

	ini_connect(&ini_b, 2);
	ck_assert_int_eq(login_step(&ini_b, OP, 0, 0, normal_keys()), 0);
	cmd.cmd_sn = ini_b.cmd_sn;
	send_pdu(&ini_b, &cmd, NULL, 0);
	expect_refused(&ini_b, login_recv(&ini_b), ST_INVALID_DURING_LOGIN);
}
END_TEST

/* A login that does not finish within login-timeout (15 s by default)
 * is closed; one that finishes is not. */
START_TEST(test_login_timeout)
{
	ini_connect(&ini_a, 1);
	ini_connect(&ini_b, 2);
	ck_assert_int_eq(login_step(&ini_a, OP, 0, 0, normal_keys()), 0);
	login_normal(&ini_b);
	now_ns += 14 * NS;
	ck_assert_int_eq(recv_pdu(&ini_a), -ETIMEDOUT); /* still open, nothing sent */
	now_ns += 2 * NS;
	expect_closed(&ini_a);
	/* the finished login is kept, and pinged as idle (nop-interval) */
	ck_assert_int_eq(recv_pdu(&ini_b), 0);
	ck_assert_int_eq(ini_b.rsp.bhs.opcode, PDU_OP_NOP_IN);
	expect_lun_ready(&ini_b);
}
END_TEST

/* RFC 7143 §6.3.3: the initiator keeps T=1 "in subsequent Login
 * Requests (even empty requests)"; §6.2 makes empty requests the answer
 * to a continued response. An empty Login Request is answered. */
START_TEST(test_empty_request)
{
	ini_connect(&ini_a, 1);
	ck_assert_int_eq(login_step(&ini_a, OP, 0, 0, normal_keys()), 0);
	ck_assert(!ini_a.rsp.bhs.login.transit);
	ck_assert_int_eq(login_step(&ini_a, OP, FFP, T_BIT, NULL), 0);
	ck_assert(ini_a.rsp.bhs.login.transit);
	ck_assert_uint_eq(ini_a.rsp.bhs.login.nsg, FFP);
	ck_assert_uint_ne(ini_a.rsp.bhs.login.tsih, 0);
	expect_lun_ready(&ini_a);
}
END_TEST

/* §6.3: a key negotiated twice in one login is an initiator error:
 * twice in one request... */
START_TEST(test_key_twice_in_one_request)
{
	ini_connect(&ini_a, 1);
	expect_refused(&ini_a,
		       login_step(&ini_a, OP, FFP, T_BIT,
				  keys("InitiatorName", INITIATOR, "TargetName", TARGET,
				       "MaxBurstLength", "65536", "MaxBurstLength", "65536", NULL)),
		       ST_INITIATOR_ERROR);
}
END_TEST

/* ...or in two requests of the same stage. */
START_TEST(test_key_twice_in_one_login)
{
	ini_connect(&ini_a, 1);
	ck_assert_int_eq(login_step(&ini_a, OP, 0, 0,
				    keys("InitiatorName", INITIATOR, "TargetName", TARGET,
					 "MaxBurstLength", "65536", NULL)),
			 0);
	expect_key(&ini_a, "MaxBurstLength", "65536");
	expect_refused(&ini_a,
		       login_step(&ini_a, OP, FFP, T_BIT, keys("MaxBurstLength", "65536", NULL)),
		       ST_INITIATOR_ERROR);
}
END_TEST

/* §12: a key of the operational stage in the security stage is a
 * protocol error. */
START_TEST(test_operational_key_in_security_stage)
{
	ini_connect(&ini_a, 1);
	expect_login_ends(&ini_a,
			  login_step(&ini_a, SEC, OP, T_BIT,
				     keys("InitiatorName", INITIATOR, "TargetName", TARGET,
					  "AuthMethod", "None", "MaxBurstLength", "65536", NULL)));
}
END_TEST

static TCase *tcase(Suite *s, const char *name, void (*setup)(void))
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *login_suite(void)
{
	Suite *s = suite_create("login");
	TCase *tc;

	tc = tcase(s, "success", setup_plain);
	tcase_add_test(tc, test_operational_straight_to_ffp);
	tcase_add_test(tc, test_security_none_then_operational);
	tcase_add_test(tc, test_security_straight_to_ffp);
	tcase_add_test(tc, test_discovery_send_targets);
	tcase_add_test(tc, test_operational_keys_answered);
	tcase_add_test(tc, test_unknown_key_not_understood);
	tcase_add_test(tc, test_continued_keys);
	tcase_add_test(tc, test_session_reinstatement);
	tcase_add_test(tc, test_login_timeout);

	tc = tcase(s, "refused", setup_plain);
	tcase_add_test(tc, test_unknown_target);
	tcase_add_test(tc, test_missing_initiator_name);
	tcase_add_test(tc, test_missing_target_name);
	tcase_add_test(tc, test_unsupported_version);
	tcase_add_test(tc, test_unknown_tsih);

	tc = tcase(s, "acl", setup_acl);
	tcase_add_test(tc, test_acl);

	tc = tcase(s, "chap", setup_chap);
	tcase_add_test(tc, test_chap_one_way);
	tcase_add_test(tc, test_chap_wrong_secret);
	tcase_add_test(tc, test_chap_wrong_user);
	tcase_add_test(tc, test_chap_required_none_offered);
	tcase_add_test(tc, test_chap_required_none_then_transit);
	tcase_add_test(tc, test_chap_required_security_skipped);
	tcase_add_test(tc, test_chap_csg_jump);

	tc = tcase(s, "mutual_chap", setup_mutual_chap);
	tcase_add_test(tc, test_chap_mutual);
	tcase_add_test(tc, test_chap_mutual_wrong_target_secret);

	tc = tcase(s, "discovery_chap", setup_discovery_chap);
	tcase_add_test(tc, test_discovery_chap_required);

	tc = tcase(s, "protocol_errors", setup_plain);
	tcase_add_test(tc, test_nsg_reserved);
	tcase_add_test(tc, test_nsg_not_after_csg);
	tcase_add_test(tc, test_csg_back_to_security);
	tcase_add_test(tc, test_scsi_command_during_login);
	tcase_add_test(tc, test_key_twice_in_one_request);
	tcase_add_test(tc, test_key_twice_in_one_login);
	tcase_add_test(tc, test_operational_key_in_security_stage);

	tc = tcase(s, "sequence", setup_plain);
	tcase_add_test(tc, test_empty_request);
	tcase_add_test(tc, test_continued_response_header);
	tcase_add_test(tc, test_csg_ffp);
	tcase_add_test(tc, test_csg_jump_without_transit);
	tcase_add_test(tc, test_c_and_t_bits);
	tcase_add_test(tc, test_isid_changed);
	tcase_add_test(tc, test_tsih_changed);

	tc = tcase(s, "chap_sequence", setup_chap);
	tcase_add_test(tc, test_chap_transit_without_response);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(login_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
