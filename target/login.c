/*
 * login: the target side of the iSCSI login phase (RFC 7143 §6.3, §11.12,
 * §11.13): stages, key negotiation through text.h, continuation of long
 * key lists over several PDUs, the checks on names and ACLs, and the
 * hand-over to a session when the initiator reaches the full feature phase.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chap.h"
#include "common/log.h"
#include "common/xport/iser.h"
#include "config.h"
#include "tgt.h"

#define LOGIN_KEYS_MAX (64 * 1024) /* a whole key list, over continuations */
#define LOGIN_RSP_MAX 8192	   /* RFC 7143 §13.12: MaxRecvDSL during login */

/* Login Response status (RFC 7143 §11.13.5), class << 8 | detail. */
#define LS_SUCCESS 0x0000
#define LS_INITIATOR_ERROR 0x0200
#define LS_AUTH_FAILURE 0x0201
#define LS_AUTHZ_FAILURE 0x0202
#define LS_NOT_FOUND 0x0203
#define LS_UNSUPPORTED_VERSION 0x0205
#define LS_TOO_MANY_CONNECTIONS 0x0206
#define LS_MISSING_PARAMETER 0x0207
#define LS_SESSION_NOT_FOUND 0x020a
#define LS_INVALID_DURING_LOGIN 0x020b
#define LS_TARGET_ERROR 0x0300
#define LS_OUT_OF_RESOURCES 0x0302

enum { STAGE_SECURITY = 0, STAGE_OPERATIONAL = 1, STAGE_FFP = 3 };

struct login {
	bool started;
	bool seen; /* a Login Request arrived: isid, tsih, stage are set */
	uint8_t isid[6];
	uint16_t tsih;
	uint16_t cid;
	uint32_t cmd_sn;     /* the first command will take it */
	uint8_t stage;	     /* CSG we are in */
	uint8_t neg_stage;   /* the stage text_neg is in */
	bool declared;	     /* TargetPortalGroupTag & co. sent */
	bool declared_mrdsl; /* MaxRecvDataSegmentLength sent */
	bool discovery;
	struct tgt_target *target;
	char initiator[TEXT_NAME_MAX + 1];
	const struct config_chap *account, *mutual; /* CHAP required if set */
	struct chap_target chap;
	bool authenticated;
	uint8_t *keys; /* a key list being continued (C bit) */
	uint32_t keys_len;
};

void login_free(struct conn *c)
{
	if (!c->login)
		return;
	free(c->login->keys);
	free(c->login);
	c->login = NULL;
}

static void login_respond(struct conn *c, const struct pdu_bhs *req, bool transit, uint8_t nsg,
			  uint16_t status, uint8_t *data, uint32_t len)
{
	struct login *l = c->login;
	struct pdu_bhs rsp = {
		.opcode = PDU_OP_LOGIN_RSP,
		.itt = req->itt,
		.stat_sn = c->stat_sn++,
		.exp_cmd_sn = req->cmd_sn,
		.max_cmd_sn = req->cmd_sn,
	};

	rsp.login.transit = transit;
	rsp.login.csg = req->login.csg;
	rsp.login.nsg = transit ? nsg : 0;
	rsp.login.version_max = 0;
	rsp.login.version_active = 0;
	memcpy(rsp.login.isid, l->isid, sizeof(l->isid));
	rsp.login.tsih = l->tsih;
	if (c->session) {
		/* The final response: the session's window, which a login
		 * joining a session with commands in flight must not undo.
		 * (session_fill_sn() also writes StatSN, taken above.) */
		uint32_t stat_sn = rsp.stat_sn;

		session_fill_sn(c, &rsp);
		rsp.stat_sn = stat_sn;
	}
	rsp.login.status_class = (uint8_t)(status >> 8);
	rsp.login.status_detail = (uint8_t)status;
	conn_send(c, &rsp, data, len, data, NULL);
}

/* Answer with an error status and end the connection once it is sent
 * (RFC 7143 §6.3: the target closes after a failed login). */
static void login_fail(struct conn *c, const struct pdu_bhs *req, uint16_t status, const char *why)
{
	log_warn("login from %s (%s) refused: %s", c->peer,
		 c->login && c->login->initiator[0] ? c->login->initiator : "?", why);
	login_respond(c, req, false, 0, status, NULL, 0);
	c->phase = CONN_LOGOUT; /* close when the response is out */
}

static bool key_value(const struct text_list *keys, const char *name, const char **val, size_t *len)
{
	const struct text_pair *p = text_list_find(keys, name);

	if (!p)
		return false;
	*val = p->value;
	*len = p->value_len;
	return true;
}

/* What the target supports, before anything is negotiated. */
static void login_local_params(struct conn *c, const struct config_target *t)
{
	struct text_params *p = &c->neg.local;

	p->header_digest = c->tgt->cfg->header_digest;
	p->data_digest = c->tgt->cfg->data_digest;
	p->auth_method = c->login->account ? TEXT_AUTH_CHAP : TEXT_AUTH_NONE;
	p->max_recv_dsl = conn_default_max_recv_dsl();
	/* Over iSER one connection per session, as Linux's isert. */
	p->max_connections = c->iser ? 1 : SESSION_MAX_CONNS;
	p->max_burst_length = 16 * 1024 * 1024;
	p->first_burst_length = 16 * 1024 * 1024;
	p->max_outstanding_r2t = 16;
	p->initial_r2t = false;
	p->immediate_data = true;
	if (c->iser) {
		/* RFC 7145 §6.3-6.6. InitialR2T=Yes: write data beyond the
		 * immediate data is pulled with RDMA READ, so no unsolicited
		 * Data-Out can overrun the receives posted. */
		p->rdma_extensions = true;
		p->header_digest = p->data_digest = TEXT_DIGEST_NONE; /* §6.3 */
		p->initial_r2t = true;
		p->target_recv_dsl = ISER_DEFAULT_DSL;
		p->initiator_recv_dsl = ISER_DEFAULT_DSL;
	}
	p->error_recovery_level = 0;
	p->target_portal_group_tag = 1;
	if (t) {
		snprintf(p->target_name, sizeof(p->target_name), "%s", t->name);
		snprintf(p->target_alias, sizeof(p->target_alias), "%s", t->alias);
	}
}

/*
 * The first Login Request names the initiator, the session type and, for
 * a normal session, the target (RFC 7143 §13.4, §13.5, §13.21).
 */
static uint16_t login_first(struct conn *c, const struct pdu_bhs *req, const struct text_list *keys,
			    const char **why)
{
	struct login *l = c->login;
	const char *v;
	size_t len;
	char name[TEXT_NAME_MAX + 1];

	if (req->login.version_min > 0) {
		*why = "unsupported iSCSI version";
		return LS_UNSUPPORTED_VERSION;
	}
	if (!key_value(keys, "InitiatorName", &v, &len) || !len || len > TEXT_NAME_MAX) {
		*why = "no InitiatorName in the first Login Request";
		return LS_MISSING_PARAMETER;
	}
	memcpy(l->initiator, v, len);
	l->initiator[len] = '\0';
	if (key_value(keys, "SessionType", &v, &len) && len == 9 && !memcmp(v, "Discovery", 9))
		l->discovery = true;
	if (l->discovery)
		return LS_SUCCESS;
	if (!key_value(keys, "TargetName", &v, &len) || !len || len > TEXT_NAME_MAX) {
		*why = "no TargetName for a normal session";
		return LS_MISSING_PARAMETER;
	}
	memcpy(name, v, len);
	name[len] = '\0';
	l->target = tgt_find_target(c->tgt, name);
	if (!l->target) {
		*why = "no such target";
		return LS_NOT_FOUND;
	}
	if (!config_allows(l->target->cfg, l->initiator)) {
		*why = "initiator not in the target's allow list";
		return LS_AUTHZ_FAILURE;
	}
	return LS_SUCCESS;
}

/* Gather a key list continued over several PDUs (C bit, RFC 7143 §6.3).
 * Returns the whole list once complete (an empty one for a request with
 * no data, RFC 7143 §6.3.3), or NULL (waiting, or failed). */
static const uint8_t *login_gather(struct conn *c, const struct pdu *p, uint32_t *len)
{
	static const uint8_t empty[1];
	struct login *l = c->login;
	uint8_t *nk;

	if (!p->bhs.login.cont && !l->keys) {
		*len = p->bhs.data_len;
		return p->data ? p->data : empty;
	}
	if (l->keys_len + p->bhs.data_len > LOGIN_KEYS_MAX) {
		login_fail(c, &p->bhs, LS_OUT_OF_RESOURCES, "key list too long");
		return NULL;
	}
	nk = realloc(l->keys, l->keys_len + p->bhs.data_len + 1);
	if (!nk) {
		login_fail(c, &p->bhs, LS_OUT_OF_RESOURCES, "out of memory");
		return NULL;
	}
	if (p->bhs.data_len)
		memcpy(nk + l->keys_len, p->data, p->bhs.data_len);
	l->keys = nk;
	l->keys_len += p->bhs.data_len;
	if (p->bhs.login.cont) {
		/* RFC 7143 §11.13: an empty response asks for the rest. */
		login_respond(c, &p->bhs, false, 0, LS_SUCCESS, NULL, 0);
		return NULL;
	}
	*len = l->keys_len;
	return l->keys;
}

/* Declarations the target makes once (RFC 7143 §13.9, §13.6, §13.12). */
static int login_declare(struct conn *c, struct text_buf *out, uint8_t stage)
{
	struct login *l = c->login;
	char num[16];
	int err = 0;

	if (!l->declared && !l->discovery) {
		snprintf(num, sizeof(num), "%u", c->neg.local.target_portal_group_tag);
		err = text_append(out, "TargetPortalGroupTag", num);
		if (!err && c->neg.local.target_alias[0])
			err = text_append(out, "TargetAlias", c->neg.local.target_alias);
		l->declared = true;
	}
	/* RFC 7145 §6.2: MaxRecvDataSegmentLength is not used over iSER;
	 * §6.7: the unexpected PDUs we have receive buffers for, declared
	 * only to an initiator that declared its own: open-iscsi (iscsid
	 * 2.1.8) fails a login with a key it does not know, this one among
	 * them, and Linux's ib_iser stays within its own cmds_max anyway. */
	if (!err && stage == STAGE_OPERATIONAL && !l->declared_mrdsl && !c->iser) {
		snprintf(num, sizeof(num), "%u", c->neg.local.max_recv_dsl);
		err = text_append(out, "MaxRecvDataSegmentLength", num);
		l->declared_mrdsl = true;
	}
	if (!err && stage == STAGE_OPERATIONAL && !l->declared_mrdsl && c->iser && !l->discovery &&
	    text_neg_recvd(&c->neg, "MaxOutstandingUnexpectedPDUs")) {
		snprintf(num, sizeof(num), "%u", conn_iser_max_unexpected());
		err = text_append(out, "MaxOutstandingUnexpectedPDUs", num);
		l->declared_mrdsl = true;
	}
	return err;
}

/* The initiator asked to reach the full feature phase and may. */
static void login_complete(struct conn *c, const struct pdu_bhs *req, uint8_t *rsp, uint32_t len)
{
	struct login *l = c->login;
	int err;

	err = session_attach(c, l->target, l->discovery, l->isid, l->tsih, l->initiator, l->cmd_sn);
	if (err) {
		free(rsp);
		login_fail(c, req, err == -ENOENT ? LS_SESSION_NOT_FOUND : LS_TOO_MANY_CONNECTIONS,
			   err == -ENOENT ? "no session with that TSIH" : "too many connections");
		return;
	}
	l->tsih = c->session->tsih;
	login_respond(c, req, true, STAGE_FFP, LS_SUCCESS, rsp, len);
	log_info("login from %s (%s) to %s: session %u, connection %u%s%s", c->peer, l->initiator,
		 l->discovery ? "discovery" : l->target->cfg->name, l->tsih, c->cid,
		 c->neg.result.header_digest == TEXT_DIGEST_CRC32C ? ", header digest CRC32C" : "",
		 c->neg.result.data_digest == TEXT_DIGEST_CRC32C ? ", data digest CRC32C" : "");
	conn_enter_ffp(c);
	login_free(c);
}

/*
 * RFC 7143 §6.3: a request is in the security or the operational stage,
 * the one the login is in (only an exchange with T=1 moves it on), and
 * asks for a later stage; §11.12.2: C=1 only with T=0.
 */
static bool login_stage_ok(const struct login *l, const struct pdu_bhs *req)
{
	uint8_t csg = req->login.csg, nsg = req->login.nsg;

	if (csg != STAGE_SECURITY && csg != STAGE_OPERATIONAL)
		return false;
	if (csg != l->stage)
		return false;
	if (req->login.transit && (req->login.cont || nsg == 2 || nsg <= csg))
		return false;
	return true;
}

/* The first Login Request names the session and starts the numbering
 * (RFC 7143 §11.12.5-8, §11.13.4); the others of the login carry the same
 * ISID and TSIH (§11.12.6). */
static bool login_same_session(struct conn *c, const struct pdu_bhs *req)
{
	struct login *l = c->login;

	if (l->seen)
		return !memcmp(l->isid, req->login.isid, sizeof(l->isid)) &&
		       l->tsih == req->login.tsih;
	l->seen = true;
	l->stage = req->login.csg;
	memcpy(l->isid, req->login.isid, sizeof(l->isid));
	l->tsih = req->login.tsih;
	l->cid = req->login.cid;
	c->cid = l->cid;
	c->stat_sn = req->exp_stat_sn;
	l->cmd_sn = req->cmd_sn;
	return true;
}

/* Debug: the keys of a login PDU, NULs shown as spaces. */
static void login_log_keys(struct conn *c, const char *dir, const uint8_t *data, uint32_t len)
{
	char line[512];
	uint32_t i, n = len < sizeof(line) - 1 ? len : (uint32_t)sizeof(line) - 1;

	for (i = 0; i < n; i++)
		line[i] = data[i] && data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : ' ';
	line[n] = '\0';
	log_debug("login %s %s %s", c->peer, dir, line);
}

/* Which CHAP account, if any, this login must prove it knows. */
static uint16_t login_accounts(struct conn *c, const char **why)
{
	struct login *l = c->login;
	const struct config *cfg = c->tgt->cfg;
	const struct config_chap *acc, *mut;

	acc = l->discovery ? &cfg->discovery_chap : &l->target->cfg->chap;
	mut = l->discovery ? &cfg->discovery_mutual_chap : &l->target->cfg->mutual_chap;
	if (!acc->set)
		return LS_SUCCESS;
	l->account = acc;
	l->mutual = mut->set ? mut : NULL;
	if (chap_target_init(&l->chap, CHAP_ALLOW_ALL, acc->user, acc->secret,
			     l->mutual ? l->mutual->user : NULL,
			     l->mutual ? l->mutual->secret : NULL)) {
		*why = "the configured CHAP account is not usable (secrets must differ)";
		return LS_TARGET_ERROR;
	}
	return LS_SUCCESS;
}

/*
 * RFC 7143 §12.1.3: CHAP_A from the initiator, our CHAP_A, CHAP_I and
 * CHAP_C; then its CHAP_N and CHAP_R (and, mutual, its CHAP_I and CHAP_C,
 * answered with ours).
 */
static uint16_t login_chap(struct conn *c, const struct text_list *keys, struct text_buf *out,
			   const char **why)
{
	struct login *l = c->login;
	int err = 0;

	if (l->authenticated)
		return LS_SUCCESS;
	if (text_list_find(keys, "CHAP_A")) {
		err = chap_target_challenge(&l->chap, keys, out);
		if (err == -ENOTSUP)
			text_append(out, "CHAP_A", "Reject");
	} else if (text_list_find(keys, "CHAP_R") || l->chap.state == CHAP_S_SENT) {
		/* RFC 7143 §12.1.3: the initiator MUST continue with CHAP_N
		 * and CHAP_R (-ENOENT without them). */
		err = chap_target_verify(&l->chap, keys, out);
		if (!err)
			l->authenticated = true;
	}
	if (!err)
		return LS_SUCCESS;
	*why = err == -ENOTSUP	? "no CHAP algorithm in common"
	       : err == -EPERM	? "wrong CHAP user name"
	       : err == -EACCES ? "wrong CHAP response (secret)"
	       : err == -ELOOP	? "initiator reflected our CHAP challenge"
	       : err == -ENOKEY ? "mutual CHAP asked but no mutual-chap account configured"
				: "malformed CHAP exchange";
	return err == -ENOSPC ? LS_TARGET_ERROR : LS_AUTH_FAILURE;
}

/* Negotiate one complete key list; fill @out with the answers. */
static uint16_t login_keys(struct conn *c, const struct pdu_bhs *req, const uint8_t *data,
			   uint32_t len, struct text_buf *out, const char **why)
{
	struct login *l = c->login;
	struct text_list keys;
	uint16_t status;

	if (log_enabled(LOG_LVL_DEBUG))
		login_log_keys(c, "<", data, len);
	if (text_parse(data, len, 0, &keys)) {
		*why = "malformed key list";
		return LS_INITIATOR_ERROR;
	}
	if (!l->started) {
		l->started = true;
		status = login_first(c, req, &keys, why);
		if (status)
			return status;
		status = login_accounts(c, why);
		if (status)
			return status;
		text_neg_init(&c->neg, TEXT_ROLE_TARGET, l->tsih == 0);
		login_local_params(c, l->target ? l->target->cfg : NULL);
	}
	l->stage = req->login.csg;
	if (l->neg_stage != l->stage) {
		l->neg_stage = l->stage;
		text_neg_stage(&c->neg, l->stage == STAGE_SECURITY ? TEXT_STAGE_SECURITY
								   : TEXT_STAGE_OPERATIONAL);
	}
	if (text_resolve(&c->neg, &keys) || text_respond(&c->neg, &keys, out)) {
		*why = "key negotiation failed";
		return LS_INITIATOR_ERROR;
	}
	if (l->stage == STAGE_SECURITY && l->account) {
		status = login_chap(c, &keys, out, why);
		if (status)
			return status;
	}
	if (login_declare(c, out, l->stage)) {
		*why = "response too long";
		return LS_TARGET_ERROR;
	}
	return LS_SUCCESS;
}

/* May the login move on to the stage the initiator asks for? */
static bool login_may_transit(struct conn *c)
{
	return !text_neg_pending(&c->neg) && (!c->login->account || c->login->authenticated);
}

void login_handle(struct conn *c, const struct pdu *p)
{
	const struct pdu_bhs *req = &p->bhs;
	const char *why = "";
	struct text_buf out;
	const uint8_t *data;
	uint8_t *rsp;
	uint32_t len;
	uint16_t status;
	bool transit;

	if (!c->login && !(c->login = calloc(1, sizeof(*c->login)))) {
		conn_close(c, "out of memory");
		return;
	}
	if (req->opcode != PDU_OP_LOGIN_REQ) {
		login_fail(c, req, LS_INVALID_DURING_LOGIN, pdu_op_name(req->opcode));
		return;
	}
	if (!login_same_session(c, req)) {
		login_fail(c, req, LS_INITIATOR_ERROR, "ISID or TSIH changed during login");
		return;
	}
	if (!login_stage_ok(c->login, req)) {
		login_fail(c, req, LS_INITIATOR_ERROR, "bad stage transition");
		return;
	}
	data = login_gather(c, p, &len);
	if (!data)
		return;
	rsp = malloc(LOGIN_RSP_MAX);
	if (!rsp) {
		login_fail(c, req, LS_OUT_OF_RESOURCES, "out of memory");
		return;
	}
	text_buf_init(&out, rsp, LOGIN_RSP_MAX);
	status = login_keys(c, req, data, len, &out, &why);
	free(c->login->keys);
	c->login->keys = NULL;
	c->login->keys_len = 0;
	if (status) {
		free(rsp);
		login_fail(c, req, status, why);
		return;
	}
	/* CHAP required: leaving the security stage, or skipping it, before
	 * the initiator proved itself ends the login (RFC 7143 §12.1). */
	if (c->login->account && !c->login->authenticated &&
	    (req->login.csg != STAGE_SECURITY ||
	     (req->login.transit && c->neg.result.auth_method != TEXT_AUTH_CHAP))) {
		free(rsp);
		login_fail(c, req, LS_AUTH_FAILURE, "CHAP required but not done");
		return;
	}
	transit = req->login.transit && login_may_transit(c);
	if (transit && req->login.nsg == STAGE_FFP) {
		if (text_neg_check(&c->neg)) {
			free(rsp);
			login_fail(c, req, LS_INITIATOR_ERROR, "inconsistent parameters");
			return;
		}
		if (log_enabled(LOG_LVL_DEBUG))
			login_log_keys(c, ">", rsp, (uint32_t)out.len);
		login_complete(c, req, rsp, (uint32_t)out.len);
		return;
	}
	if (log_enabled(LOG_LVL_DEBUG))
		login_log_keys(c, ">", rsp, (uint32_t)out.len);
	login_respond(c, req, transit, req->login.nsg, LS_SUCCESS, rsp, (uint32_t)out.len);
	if (transit)
		c->login->stage = req->login.nsg;
}
