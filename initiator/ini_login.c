/*
 * ini_login: the initiator's side of login (RFC 7143 §6.3, §7.1):
 * the security stage with AuthMethod and CHAP (§12.1.3), the operational
 * stage with the keys of text.h, then the full feature phase; and
 * SendTargets discovery (Appendix C) on a discovery session.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xport/iser.h"
#include "ini_priv.h"

#define LOGIN_ACC_MAX (64 * 1024) /* response text over C=1 PDUs */
#define DISC_MAX (1024 * 1024)	  /* a SendTargets answer */
#define DEFAULT_INITIATOR "iqn.2026-11.org.iserkit:initiator"

static const char *login_status_text(uint8_t cls, uint8_t detail)
{
	switch (cls << 8 | detail) {
	case 0x0101:
	case 0x0102:
		return "target moved (redirection is not supported)";
	case 0x0201:
		return "authentication failed";
	case 0x0202:
		return "not authorised for this target";
	case 0x0203:
		return "no such target";
	case 0x0204:
		return "target removed";
	case 0x0205:
		return "unsupported iSCSI version";
	case 0x0206:
		return "too many connections";
	case 0x0207:
		return "missing parameter";
	case 0x0209:
		return "session type not supported";
	case 0x0301:
		return "target service unavailable";
	case 0x0302:
		return "target out of resources";
	}
	return cls == 2 ? "initiator error" : "target error";
}

static int login_status_errno(uint8_t cls, uint8_t detail)
{
	if (cls == 2 && (detail == 1 || detail == 2))
		return -EACCES;
	if (cls == 2 && (detail == 3 || detail == 4))
		return -ENOENT;
	if (cls == 1)
		return -EREMOTE;
	if (cls == 3)
		return -EAGAIN;
	return -EPROTO;
}

void login_reset(struct ini_session *sess)
{
	struct ini_login *l = &sess->login;

	free(l->acc);
	l->acc = NULL;
	l->acc_len = 0;
	l->stage = 0;
	l->chap_step = 0;
	l->transit = false;
}

static void login_params(struct ini_session *sess, struct text_params *p)
{
	snprintf(p->initiator_name, sizeof(p->initiator_name), "%s",
		 sess->initiator ? sess->initiator : DEFAULT_INITIATOR);
	if (!sess->discovery)
		snprintf(p->target_name, sizeof(p->target_name), "%s", sess->target);
	p->session_type = sess->discovery ? TEXT_SESSION_DISCOVERY : TEXT_SESSION_NORMAL;
	p->auth_method = sess->user ? TEXT_AUTH_CHAP : TEXT_AUTH_NONE;
	p->header_digest = sess->o.header_digest ? TEXT_DIGEST_CRC32C : TEXT_DIGEST_NONE;
	p->data_digest = sess->o.data_digest ? TEXT_DIGEST_CRC32C : TEXT_DIGEST_NONE;
	p->max_recv_dsl = INI_MAX_RECV_DSL;
	/* Ask for large bursts and unsolicited data; the target's answer
	 * (Minimum, and OR for InitialR2T) decides. */
	p->max_burst_length = 16 * 1024 * 1024 - 512;
	p->first_burst_length = 16 * 1024 * 1024 - 512;
	p->initial_r2t = false;
	p->immediate_data = true;
	if (sess->o.iser) {
		/* RFC 7145 §6.3: digests are not used; write data past the
		 * immediate data is read by the target from our buffer. */
		p->rdma_extensions = true;
		p->header_digest = p->data_digest = TEXT_DIGEST_NONE;
		p->initial_r2t = true;
		p->initiator_recv_dsl = ISER_DEFAULT_DSL;
		p->target_recv_dsl = ISER_DEFAULT_DSL;
		/* what our receive ring holds beyond the responses; it was
		 * 0, "no limit", which it is not */
		p->max_outstanding_unexp_pdus = INI_ISER_UNEXPECTED;
	}
}

static int login_send(struct ini_session *sess, struct text_buf *tb, bool transit, int nsg)
{
	struct ini_login *l = &sess->login;
	struct pdu_bhs bhs = {.opcode = PDU_OP_LOGIN_REQ, .immediate = true};
	void *data = tb->len ? tb->data : NULL;

	bhs.login.transit = transit;
	bhs.login.csg = (uint8_t)l->stage;
	bhs.login.nsg = transit ? (uint8_t)nsg : 0;
	memcpy(bhs.login.isid, sess->isid, 6);
	bhs.login.tsih = 0;
	bhs.itt = l->itt;
	bhs.cmd_sn = sess->cmd_sn;
	bhs.exp_stat_sn = sess->exp_stat_sn;
	l->transit = transit;
	if (!data)
		free(tb->data);
	return conn_send(sess, &bhs, data, (uint32_t)tb->len, data);
}

static int tb_alloc(struct text_buf *tb)
{
	void *mem = malloc(INI_LOGIN_DSL);

	if (!mem)
		return -ENOMEM;
	text_buf_init(tb, mem, INI_LOGIN_DSL);
	return 0;
}

/* The first Login Request: names, SessionType and AuthMethod (§12). */
int login_start(struct ini_session *sess)
{
	struct ini_login *l = &sess->login;
	struct text_buf tb;
	int err;

	login_reset(sess);
	text_neg_init(&l->neg, TEXT_ROLE_INITIATOR, true);
	login_params(sess, &l->neg.local);
	if (sess->user) {
		uint32_t algs = CHAP_ALLOW(CHAP_A_MD5);

		if (!sess->o.chap_algs || (sess->o.chap_algs & INI_CHAP_SHA256))
			algs |= CHAP_ALLOW(CHAP_A_SHA256);
		err = chap_initiator_init(&l->chap, algs, sess->user, sess->secret, sess->tuser,
					  sess->tsecret);
		if (err) {
			sess_error(sess, "bad CHAP settings");
			return err;
		}
	}
	l->itt = sess->next_itt++;
	sess->exp_stat_sn = 0;
	/* A new session: its window comes with the Login Response. */
	sess->exp_cmd_sn = sess->cmd_sn;
	sess->max_cmd_sn = sess->cmd_sn - 1;
	err = tb_alloc(&tb);
	if (err)
		return err;
	text_neg_stage(&l->neg, TEXT_STAGE_SECURITY);
	err = text_offer(&l->neg, &tb);
	if (err) {
		free(tb.data);
		return err;
	}
	/* Without CHAP there is nothing more to do in this stage. */
	return login_send(sess, &tb, !sess->user, 1);
}

static void login_fail(struct ini_session *sess, int err, const char *msg)
{
	sess_error(sess, "%s", msg);
	sess_conn_lost(sess, err, NULL);
}

/* CHAP steps of the security stage; appends to @out. */
static int login_chap(struct ini_session *sess, const struct text_list *in, struct text_buf *out)
{
	struct ini_login *l = &sess->login;
	int err = 0;

	switch (l->chap_step) {
	case 0:
		err = chap_initiator_offer(&l->chap, out);
		break;
	case 1:
		err = chap_initiator_respond(&l->chap, in, out);
		break;
	case 2:
		err = chap_initiator_verify(&l->chap, in);
		if (err) {
			sess_error(sess, "the target failed mutual CHAP authentication");
			return -EACCES;
		}
		break;
	default:
		return 0;
	}
	if (err) {
		sess_error(sess, "CHAP exchange failed: %s", strerror(-err));
		return err == -ENOSPC ? err : -EPROTO;
	}
	l->chap_step++;
	return 0;
}

static void login_done(struct ini_session *sess, const struct pdu_bhs *bhs)
{
	struct ini_login *l = &sess->login;

	if (text_neg_check(&l->neg)) {
		login_fail(sess, -EPROTO, "the target agreed inconsistent parameters");
		return;
	}
	sess->tsih = bhs->login.tsih;
	sess->params = l->neg.result;
	login_reset(sess);
	conn_set_ffp(sess);
	sess_logged_in(sess);
}

/* Gather the text of a response sent over several PDUs (C=1, §6.4). */
static int login_gather(struct ini_session *sess, const struct pdu *p)
{
	struct ini_login *l = &sess->login;
	uint8_t *acc;

	if (!p->bhs.data_len)
		return 0;
	if (l->acc_len + p->bhs.data_len > LOGIN_ACC_MAX)
		return -E2BIG;
	acc = realloc(l->acc, l->acc_len + p->bhs.data_len);
	if (!acc)
		return -ENOMEM;
	memcpy(acc + l->acc_len, p->data, p->bhs.data_len);
	l->acc = acc;
	l->acc_len += p->bhs.data_len;
	return 0;
}

static int login_next(struct ini_session *sess, struct text_buf *out)
{
	struct ini_login *l = &sess->login;
	struct text_list in;
	int err;

	/* the pairs point into l->acc: free it only after */
	err = text_parse(l->acc, l->acc_len, 0, &in);
	if (err) {
		sess_error(sess, "malformed login text from the target");
		return -EPROTO;
	}
	err = text_resolve(&l->neg, &in);
	if (!err)
		err = text_respond(&l->neg, &in, out);
	if (err && (sess->o.header_digest || sess->o.data_digest))
		sess_error(sess, "login negotiation failed: the target's answers break the "
				 "rules (does it refuse CRC32C digests?)");
	else if (err)
		sess_error(sess, "login negotiation failed: the target's answers break the rules");
	if (err)
		return err;
	if (l->stage == 0 && l->neg.result.auth_method == TEXT_AUTH_CHAP) {
		if (!sess->user) {
			sess_error(sess, "the target requires CHAP and no user was given");
			return -EACCES;
		}
		return login_chap(sess, &in, out);
	}
	if (l->stage == 0 && sess->user) {
		sess_error(sess, "the target refused CHAP authentication");
		return -EACCES;
	}
	return 0;
}

/* One Login Response. */
void login_rsp(struct ini_session *sess, const struct pdu *p)
{
	struct ini_login *l = &sess->login;
	const struct pdu_bhs *bhs = &p->bhs;
	struct text_buf out;
	bool transit;
	int err, nsg;

	if (bhs->opcode != PDU_OP_LOGIN_RSP || bhs->itt != l->itt) {
		login_fail(sess, -EPROTO, "unexpected PDU during login");
		return;
	}
	if (bhs->login.status_class) {
		sess_error(sess, "login rejected: %s",
			   login_status_text(bhs->login.status_class, bhs->login.status_detail));
		sess_conn_lost(
			sess, login_status_errno(bhs->login.status_class, bhs->login.status_detail),
			NULL);
		return;
	}
	sess->exp_stat_sn = bhs->stat_sn + 1;
	sess_update_sn(sess, bhs);
	err = login_gather(sess, p);
	if (err) {
		login_fail(sess, err, "login text from the target too long");
		return;
	}
	if (tb_alloc(&out)) {
		login_fail(sess, -ENOMEM, "out of memory");
		return;
	}
	if (bhs->login.cont) { /* more text follows: ask for it (§6.4) */
		login_send(sess, &out, false, 0);
		return;
	}
	err = login_next(sess, &out);
	free(l->acc);
	l->acc = NULL;
	l->acc_len = 0;
	if (err) {
		free(out.data);
		sess_conn_lost(sess, err, NULL);
		return;
	}
	if (bhs->login.transit && l->transit) {
		if (bhs->login.nsg == 3) {
			free(out.data);
			login_done(sess, bhs);
			return;
		}
		l->stage = bhs->login.nsg;
		text_neg_stage(&l->neg, TEXT_STAGE_OPERATIONAL);
		err = text_offer(&l->neg, &out);
	}
	if (err) {
		free(out.data);
		login_fail(sess, err, "cannot build the login offer");
		return;
	}
	/* Transit once authentication is over and our offers are answered. */
	if (l->stage == 0) {
		transit = !sess->user || l->chap_step >= 2;
		nsg = 1;
	} else {
		transit = true;
		nsg = 3;
	}
	login_send(sess, &out, transit, nsg);
}

/* Discovery (RFC 7143 Appendix C) */

static void disc_finish(struct ini_session *sess, int err)
{
	void (*cb)(struct ini_session *, int, const struct ini_target *, size_t, void *);
	struct ini_target *t = NULL;
	size_t n = 0, pos = 0;
	struct text_pair pair;

	if (!err)
		t = calloc(256, sizeof(*t));
	if (!err && !t)
		err = -ENOMEM;
	while (!err && pos < sess->disc_len &&
	       text_next(sess->disc_buf, sess->disc_len, &pos, &pair) == 0) {
		if (pair.key_len == 10 && !memcmp(pair.key, "TargetName", 10) && n < 256) {
			snprintf(t[n].name, sizeof(t[n].name), "%.*s", pair.value_len, pair.value);
			n++;
		} else if (pair.key_len == 13 && !memcmp(pair.key, "TargetAddress", 13) && n &&
			   t[n - 1].naddr < 8) {
			struct ini_target *cur = &t[n - 1];

			snprintf(cur->addr[cur->naddr], sizeof(cur->addr[0]), "%.*s",
				 pair.value_len, pair.value);
			cur->naddr++;
		}
	}
	free(sess->disc_buf);
	sess->disc_buf = NULL;
	sess->disc_len = 0;
	cb = sess->disc_cb;
	sess->disc_cb = NULL;
	sched_wake(sess->sched); /* for a caller waiting in ini_wait() */
	if (cb)
		cb(sess, err, t, n, sess->disc_arg);
	free(t);
}

static int disc_send(struct ini_session *sess, uint32_t ttt, bool first)
{
	struct pdu_bhs bhs = {.opcode = PDU_OP_TEXT_REQ, .final = true, .immediate = true};
	static const char req[] = "SendTargets=All";
	char *data = NULL;
	uint32_t len = 0;

	if (first) {
		data = malloc(sizeof(req));
		if (!data)
			return -ENOMEM;
		memcpy(data, req, sizeof(req));
		len = sizeof(req);
	}
	bhs.itt = sess->disc_itt;
	bhs.text.ttt = ttt;
	sess_fill_sn(sess, &bhs, true);
	return conn_send(sess, &bhs, data, len, data);
}

void disc_text_rsp(struct ini_session *sess, const struct pdu *p)
{
	uint32_t len = p->bhs.data_len;
	uint8_t *buf;

	if (!sess->disc_cb || p->bhs.itt != sess->disc_itt)
		return;
	if (sess->disc_len + len > DISC_MAX) {
		disc_finish(sess, -E2BIG);
		return;
	}
	if (len) {
		buf = realloc(sess->disc_buf, sess->disc_len + len);
		if (!buf) {
			disc_finish(sess, -ENOMEM);
			return;
		}
		memcpy(buf + sess->disc_len, p->data, len);
		sess->disc_buf = buf;
		sess->disc_len += len;
	}
	if (p->bhs.text.cont || !p->bhs.final) { /* §11.11.2: ask for the rest */
		if (disc_send(sess, p->bhs.text.ttt, false))
			disc_finish(sess, -ENOMEM);
		return;
	}
	disc_finish(sess, 0);
}

void disc_fail(struct ini_session *sess, int err)
{
	if (sess->disc_cb)
		disc_finish(sess, err);
}

int ini_discover(struct ini_session *sess,
		 void (*cb)(struct ini_session *, int, const struct ini_target *, size_t, void *),
		 void *arg)
{
	int err;

	if (!sess->discovery || sess->conn.state != CONN_FFP)
		return -EINVAL;
	if (sess->disc_cb)
		return -EBUSY;
	sess->disc_cb = cb;
	sess->disc_arg = arg;
	sess->disc_itt = sess->next_itt++;
	err = disc_send(sess, PDU_RSVD_TAG, true);
	if (err)
		sess->disc_cb = NULL;
	return err;
}
