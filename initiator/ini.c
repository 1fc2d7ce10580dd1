/*
 * ini: sessions, the command window and recovery. See ini.h.
 *
 * Commands live on two lists: queued (not on the wire) and inflight
 * (sent, no response yet). A lost connection moves every inflight
 * command back to the front of queued, in CmdSN order; a new login
 * (same ISID, so the target reinstates the session, RFC 7143 §6.3.5)
 * sends them again.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/rbuf.h"
#include "ini_priv.h"
#include "iser_hdr.h"
#include "scsierr.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define LOGOUT_TIMEOUT_S 5
#define RETRIES_MAX 5 /* for BUSY, UNIT ATTENTION, ABORTED COMMAND... */
#define TMF_ABORT_TASK 1
#define TMF_LUN_RESET 5

#define sess_of(ptr, member) \
	((struct ini_session *)((char *)(ptr)-offsetof(struct ini_session, member)))

static void sess_pump(struct ini_session *sess);

/* Lists */

static void list_init(struct ini_cmd *head)
{
	head->next = head->prev = head;
}

static bool list_empty(const struct ini_cmd *head)
{
	return head->next == head;
}

static void list_del(struct ini_cmd *c)
{
	c->prev->next = c->next;
	c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static void list_add_tail(struct ini_cmd *head, struct ini_cmd *c)
{
	c->prev = head->prev;
	c->next = head;
	head->prev->next = c;
	head->prev = c;
}

void sess_error(struct ini_session *sess, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sess->err, sizeof(sess->err), fmt, ap);
	va_end(ap);
}

/* Completion */

static void cmd_complete(struct ini_session *sess, struct ini_cmd *cmd, int err)
{
	uint64_t lat = sched_now(sess->sched) - cmd->start_ns;

	rbuf_put(cmd->xbuf);
	cmd->xbuf = NULL;
	cmd->err = err;
	sess->st.cmds++;
	sess->st.inflight--;
	if (err)
		sess->st.errors++;
	sess->st.lat_ns_sum += lat;
	if (lat > sess->st.lat_ns_max)
		sess->st.lat_ns_max = lat;
	cmd->done(cmd);
}

/* Complete commands failed outside the scheduler's handlers from an event,
 * so that done() never runs inside ini_submit(). */
static void sess_fail_ev(struct sched_event *ev)
{
	struct ini_session *sess = sess_of(ev, fail_ev);
	struct ini_cmd *cmd;

	while (!list_empty(&sess->failed)) {
		cmd = sess->failed.next;
		list_del(cmd);
		cmd_complete(sess, cmd, cmd->err);
	}
}

static void cmd_fail_later(struct ini_session *sess, struct ini_cmd *cmd, int err)
{
	cmd->err = err;
	list_add_tail(&sess->failed, cmd);
	sched_schedule(sess->sched, &sess->fail_ev);
}

static struct ini_cmd *cmd_find(struct ini_session *sess, uint32_t itt)
{
	struct ini_cmd *c;

	for (c = sess->inflight.next; c != &sess->inflight; c = c->next)
		if (c->itt == itt)
			return c;
	return NULL;
}

/* Sequence numbers */

void sess_update_sn(struct ini_session *sess, const struct pdu_bhs *bhs)
{
	/* RFC 7143 §4.2.2.1: MaxCmdSN < ExpCmdSN - 1 means both are stale. */
	if (pdu_sn_lt(bhs->max_cmd_sn, bhs->exp_cmd_sn - 1))
		return;
	if (pdu_sn_gt(bhs->exp_cmd_sn, sess->exp_cmd_sn))
		sess->exp_cmd_sn = bhs->exp_cmd_sn;
	if (pdu_sn_gt(bhs->max_cmd_sn, sess->max_cmd_sn))
		sess->max_cmd_sn = bhs->max_cmd_sn;
}

/* StatSN of a response that carries status (§11.4.5...). */
static void sess_stat_sn(struct ini_session *sess, uint32_t stat_sn)
{
	if (pdu_sn_ge(stat_sn, sess->exp_stat_sn))
		sess->exp_stat_sn = stat_sn + 1;
}

void sess_fill_sn(struct ini_session *sess, struct pdu_bhs *bhs, bool immediate)
{
	bhs->immediate = immediate;
	bhs->cmd_sn = sess->cmd_sn;
	bhs->exp_stat_sn = sess->exp_stat_sn;
	if (!immediate)
		sess->cmd_sn++;
}

/*
 * May the next command go? RFC 7143 §4.2.2.1 bounds it by MaxCmdSN only:
 * a CmdSN below ExpCmdSN is not ours to refuse. tgt 1.0.85's iSER login
 * answers the leading login with ExpCmdSN one past the login's CmdSN (its
 * NOP-Ins then say the login's CmdSN again, which is what it waits for):
 * holding the first command back until ExpCmdSN caught up would wait
 * forever. Linux's initiator checks MaxCmdSN alone too.
 */
static bool window_open(const struct ini_session *sess)
{
	return pdu_sn_le(sess->cmd_sn, sess->max_cmd_sn) &&
	       pdu_sn_ge(sess->max_cmd_sn + 1, sess->exp_cmd_sn);
}

/* Sending commands */

static uint64_t lun_field(uint64_t lun)
{
	/* SAM-5 §4.7: peripheral addressing below 256, flat space above. */
	if (lun < 256)
		return lun << 48;
	return (0x4000ull | (lun & 0x3fff)) << 48;
}

/* Data-Out PDUs for [@off, @off + @len) of @cmd, for one R2T (@ttt) or the
 * unsolicited burst (reserved TTT). */
static int send_data_out(struct ini_session *sess, struct ini_cmd *cmd, uint32_t ttt, uint32_t off,
			 uint32_t len)
{
	uint32_t max = sess->conn.max_send_dsl, sn = 0;
	int err = 0;

	while (len && !err) {
		struct pdu_bhs bhs = {.opcode = PDU_OP_DATA_OUT};
		uint32_t n = len < max ? len : max;

		bhs.final = n == len;
		bhs.lun = lun_field(cmd->lun);
		bhs.itt = cmd->itt;
		bhs.exp_stat_sn = sess->exp_stat_sn;
		bhs.data_out.ttt = ttt;
		bhs.data_out.data_sn = sn++;
		bhs.data_out.buffer_offset = off;
		err = conn_send(sess, &bhs, (uint8_t *)cmd->buf + off, n, NULL);
		off += n;
		len -= n;
		sess->st.write_bytes += n;
	}
	return err;
}

/*
 * iSER (RFC 7145 §7.3.1, §9.2): the data goes through the command's
 * registered buffer, whose STag and address the header advertises: the
 * target writes read data into it, and reads write data beyond the
 * immediate data from it (from the first byte not sent, as Linux's
 * ib_iser advertises it). Returns 0 or -errno.
 */
static int cmd_iser_buf(struct ini_session *sess, struct ini_cmd *cmd, uint32_t imm,
			struct iser_hdr_ctrl *ctrl)
{
	int err;

	const struct rbuf *b = cmd->reg;
	uintptr_t va = (uintptr_t)cmd->buf;

	if (cmd->dir == INI_DIR_NONE || !cmd->len || (cmd->dir == INI_DIR_WRITE && imm == cmd->len))
		return 0;
	/* The caller's registered buffer, or a copy through one of ours. */
	if (!b || va < (uintptr_t)b->addr || va - (uintptr_t)b->addr > b->cap ||
	    cmd->len > b->cap - (va - (uintptr_t)b->addr)) {
		if (!cmd->xbuf) {
			err = rbuf_get(sess->conn.pool, cmd->len, &cmd->xbuf);
			if (err)
				return err;
			sess->st.bounced++;
		}
		b = cmd->xbuf;
		va = (uintptr_t)b->addr;
		if (cmd->dir == INI_DIR_WRITE)
			memcpy(b->addr + imm, (uint8_t *)cmd->buf + imm, cmd->len - imm);
	}
	if (cmd->dir == INI_DIR_WRITE) {
		ctrl->wsv = true;
		ctrl->write_stag = b->rkey;
		ctrl->write_va = va + imm;
	} else {
		ctrl->rsv = true;
		ctrl->read_stag = b->rkey;
		ctrl->read_va = va;
	}
	return 0;
}

static int cmd_send(struct ini_session *sess, struct ini_cmd *cmd)
{
	const struct text_params *r = &sess->params;
	struct pdu_bhs bhs = {.opcode = PDU_OP_SCSI_CMD};
	struct iser_hdr_ctrl ctrl = {0};
	uint32_t imm = 0, unsol = 0;
	int err;

	cmd->itt = sess->next_itt++;
	if (sess->next_itt == PDU_RSVD_TAG)
		sess->next_itt = 0;
	if (cmd->dir == INI_DIR_WRITE) {
		uint32_t first =
			r->first_burst_length < cmd->len ? r->first_burst_length : cmd->len;

		if (r->immediate_data)
			imm = first < sess->conn.max_send_dsl ? first : sess->conn.max_send_dsl;
		if (!r->initial_r2t && !sess->o.iser)
			unsol = first - imm;
	}
	if (sess->o.iser && (err = cmd_iser_buf(sess, cmd, imm, &ctrl)))
		return err;
	bhs.final = unsol == 0;
	bhs.lun = lun_field(cmd->lun);
	bhs.itt = cmd->itt;
	bhs.scsi_cmd.read = cmd->dir == INI_DIR_READ;
	bhs.scsi_cmd.write = cmd->dir == INI_DIR_WRITE;
	bhs.scsi_cmd.attr = 1; /* SIMPLE */
	bhs.scsi_cmd.exp_xfer_len = cmd->dir == INI_DIR_NONE ? 0 : cmd->len;
	memcpy(bhs.scsi_cmd.cdb, cmd->cdb, sizeof(cmd->cdb));
	sess_fill_sn(sess, &bhs, false);
	cmd->cmd_sn = bhs.cmd_sn;
	cmd->xfer = 0;
	cmd->exp_data_sn = 0;
	cmd->residual = 0;
	cmd->sent_ns = sched_now(sess->sched);
	err = conn_send_cmd(sess, &bhs, sess->o.iser ? &ctrl : NULL, cmd->buf, imm);
	sess->st.write_bytes += sess->o.iser && cmd->dir == INI_DIR_WRITE ? cmd->len : imm;
	if (!err && unsol)
		err = send_data_out(sess, cmd, PDU_RSVD_TAG, imm, unsol);
	return err;
}

/*
 * Commands in flight at most: the queue depth, and over iSER the target's
 * MaxOutstandingUnexpectedPDUs (RFC 7145 §6.7: the unexpected PDUs it has
 * receive buffers for; 0: no limit), less two for a NOP-Out and a task
 * management request, which are unexpected too.
 */
static unsigned int sess_depth(const struct ini_session *sess)
{
	uint32_t unexp = sess->params.max_outstanding_unexp_pdus;

	if (!sess->o.iser || !unexp)
		return sess->o.queue_depth;
	unexp = unexp > 3 ? unexp - 2 : 1;
	return unexp < sess->o.queue_depth ? unexp : sess->o.queue_depth;
}

/* Send what the window, the queue depth and the connection allow. */
static void sess_pump(struct ini_session *sess)
{
	struct ini_cmd *cmd;

	while (!list_empty(&sess->queued) && sess->conn.state == CONN_FFP &&
	       sess->nsent < sess_depth(sess) && window_open(sess)) {
		cmd = sess->queued.next;
		list_del(cmd);
		list_add_tail(&sess->inflight, cmd);
		cmd->state = CMD_SENT;
		if (++sess->nsent > sess->st.sent_max)
			sess->st.sent_max = sess->nsent;
		if (cmd_send(sess, cmd)) {
			sess_conn_lost(sess, -ENOMEM, "cannot queue a command");
			return;
		}
	}
}

void ini_submit(struct ini_session *sess, struct ini_cmd *cmd)
{
	cmd->start_ns = sched_now(sess->sched);
	cmd->sent_ns = 0;
	cmd->retries = 0;
	cmd->state = CMD_QUEUED;
	cmd->status = 0;
	cmd->sense_len = 0;
	cmd->residual = 0;
	sess->st.inflight++;
	if (sess->closing) {
		cmd_fail_later(sess, cmd, -ESHUTDOWN);
		return;
	}
	if (sess->failed_fast || (cmd->dir != INI_DIR_NONE && !cmd->buf) ||
	    (cmd->cdb_len != 6 && cmd->cdb_len != 10 && cmd->cdb_len != 12 && cmd->cdb_len != 16)) {
		cmd_fail_later(sess, cmd, sess->failed_fast ? -EIO : -EINVAL);
		return;
	}
	list_add_tail(&sess->queued, cmd);
	sess_pump(sess);
}

/* Responses */

static void cmd_finish(struct ini_session *sess, struct ini_cmd *cmd)
{
	int err = scsierr_to_errno(cmd->status, cmd->sense, cmd->sense_len);

	list_del(cmd);
	sess->nsent--;
	/* What the Linux midlayer retries: UNIT ATTENTION, BUSY, ABORTED
	 * COMMAND, becoming ready; send it again, at the back of the queue. */
	if (err == -EAGAIN && cmd->retries < RETRIES_MAX) {
		cmd->retries++;
		cmd->state = CMD_QUEUED;
		list_add_tail(&sess->queued, cmd);
	} else {
		if (cmd->dir == INI_DIR_READ)
			sess->st.read_bytes += cmd->xfer;
		cmd_complete(sess, cmd, err);
	}
	if (sess->closing && list_empty(&sess->inflight) && list_empty(&sess->queued))
		sched_timer_arm(sess->sched, &sess->tick, sched_now(sess->sched));
	sess_pump(sess);
}

static void rsp_scsi(struct ini_session *sess, const struct pdu *p)
{
	const struct pdu_scsi_rsp *r = &p->bhs.scsi_rsp;
	struct ini_cmd *cmd = cmd_find(sess, p->bhs.itt);

	sess_stat_sn(sess, p->bhs.stat_sn);
	if (!cmd)
		return;	   /* aborted, or already failed */
	if (r->response) { /* §11.4.3: the target failed the command */
		cmd->status = 0x02;
		cmd->sense_len = 0;
		list_del(cmd);
		sess->nsent--;
		cmd_complete(sess, cmd, -EIO);
		sess_pump(sess);
		return;
	}
	cmd->status = r->status;
	cmd->sense_len = 0;
	if (p->bhs.data_len >= 2) { /* §11.4.7: SenseLength, then sense */
		uint32_t n = (uint32_t)p->data[0] << 8 | p->data[1];

		if (n > p->bhs.data_len - 2)
			n = p->bhs.data_len - 2;
		if (n > INI_SENSE_MAX)
			n = INI_SENSE_MAX;
		memcpy(cmd->sense, p->data + 2, n);
		cmd->sense_len = (uint8_t)n;
	}
	cmd->residual = r->underflow ? r->residual : 0;
	if (sess->o.iser && cmd->dir == INI_DIR_READ) {
		/* iSER: the target's RDMA WRITEs completed before its Send. */
		cmd->xfer = cmd->residual < cmd->len ? cmd->len - cmd->residual : 0;
		if (cmd->xbuf)
			memcpy(cmd->buf, cmd->xbuf->addr, cmd->xfer);
	}
	cmd_finish(sess, cmd);
}

/* Data-In @p fits @cmd: in order, in its buffer. */
static bool data_in_fits(const struct ini_cmd *cmd, const struct pdu *p)
{
	const struct pdu_data_in *d = &p->bhs.data_in;

	return cmd->dir == INI_DIR_READ && d->buffer_offset <= cmd->len &&
	       p->bhs.data_len <= cmd->len - d->buffer_offset && d->data_sn == cmd->exp_data_sn;
}

/*
 * Where a large Data-In's data goes before it is all in (tcp_stream.place):
 * straight into the command's buffer, as rsp_data_in() would put it; this
 * saves copying every byte read. A command's buffer is only given back in
 * the stream's order (its response comes after its Data-In), or once the
 * connection and its stream are gone, so the place outlives the PDU.
 */
void *sess_place(struct ini_session *sess, const struct pdu *p)
{
	struct ini_cmd *cmd;

	if (p->bhs.opcode != PDU_OP_DATA_IN)
		return NULL;
	cmd = cmd_find(sess, p->bhs.itt);
	if (!cmd || !cmd->buf || !data_in_fits(cmd, p))
		return NULL;
	return (uint8_t *)cmd->buf + p->bhs.data_in.buffer_offset;
}

static void rsp_data_in(struct ini_session *sess, const struct pdu *p)
{
	const struct pdu_data_in *d = &p->bhs.data_in;
	struct ini_cmd *cmd = cmd_find(sess, p->bhs.itt);
	uint32_t len = p->bhs.data_len;
	uint8_t *dst;

	if (!cmd)
		return;
	if (!data_in_fits(cmd, p)) {
		sess_conn_lost(sess, -EPROTO, "Data-In out of order or beyond the buffer");
		return;
	}
	dst = (uint8_t *)cmd->buf + d->buffer_offset;
	if (len && p->data != dst) /* or received in place */
		memcpy(dst, p->data, len);
	cmd->xfer += len;
	cmd->exp_data_sn++;
	if (!d->status_present)
		return;
	sess_stat_sn(sess, p->bhs.stat_sn);
	cmd->status = d->status;
	cmd->sense_len = 0;
	cmd->residual = d->underflow ? d->residual : 0;
	cmd_finish(sess, cmd);
}

static void rsp_r2t(struct ini_session *sess, const struct pdu *p)
{
	const struct pdu_r2t *r = &p->bhs.r2t;
	struct ini_cmd *cmd = cmd_find(sess, p->bhs.itt);

	if (!cmd)
		return;
	if (cmd->dir != INI_DIR_WRITE || r->buffer_offset > cmd->len ||
	    r->desired_len > cmd->len - r->buffer_offset || !r->desired_len) {
		sess_conn_lost(sess, -EPROTO, "R2T beyond the command's buffer");
		return;
	}
	if (send_data_out(sess, cmd, r->ttt, r->buffer_offset, r->desired_len))
		sess_conn_lost(sess, -ENOMEM, "cannot queue Data-Out");
}

static void rsp_nop_in(struct ini_session *sess, const struct pdu *p)
{
	struct pdu_bhs nop = {.opcode = PDU_OP_NOP_OUT, .final = true};

	if (p->bhs.itt != PDU_RSVD_TAG) {
		sess_stat_sn(sess, p->bhs.stat_sn);
		if (p->bhs.itt == sess->ping_itt)
			sess->conn.ping_sent_ns = 0;
		return;
	}
	if (p->bhs.nop.ttt == PDU_RSVD_TAG)
		return;
	/* The target's ping: answer with its TTT, §11.18.3. */
	nop.itt = PDU_RSVD_TAG;
	nop.nop.ttt = p->bhs.nop.ttt;
	nop.lun = p->bhs.lun;
	sess_fill_sn(sess, &nop, true);
	conn_send(sess, &nop, NULL, 0, NULL);
}

static void rsp_tmf(struct ini_session *sess, const struct pdu *p)
{
	struct ini_cmd *cmd;

	sess_stat_sn(sess, p->bhs.stat_sn);
	if (p->bhs.itt != sess->tmf_itt)
		return;
	sess->tmf_itt = PDU_RSVD_TAG;
	sess->st.tmf_rsps++;
	/* The aborted or reset commands will get no response (§4.2.3.3):
	 * send them again. */
	for (cmd = sess->inflight.next; cmd != &sess->inflight;) {
		struct ini_cmd *next = cmd->next;

		if (cmd->state == CMD_ABORTING) {
			list_del(cmd);
			sess->nsent--;
			if (++cmd->retries > RETRIES_MAX) {
				cmd_complete(sess, cmd, -EIO);
			} else {
				cmd->state = CMD_QUEUED;
				list_add_tail(&sess->queued, cmd);
			}
		}
		cmd = next;
	}
	sess_pump(sess);
}

static void rsp_logout(struct ini_session *sess, const struct pdu *p)
{
	void (*cb)(struct ini_session *, int, void *) = sess->logout_cb;

	if (p->bhs.itt != sess->logout_itt)
		return;
	conn_shut(sess);
	sess->logout_cb = NULL;
	sched_wake(sess->sched);
	if (cb)
		cb(sess, p->bhs.logout_rsp.response ? -EIO : 0, sess->logout_arg);
}

static void rsp_reject(struct ini_session *sess, const struct pdu *p)
{
	struct pdu_bhs bad;
	struct ini_cmd *cmd;

	sess_stat_sn(sess, p->bhs.stat_sn);
	if (p->bhs.data_len < PDU_BHS_LEN || pdu_bhs_decode(p->data, PDU_BHS_LEN, &bad))
		return;
	cmd = cmd_find(sess, bad.itt);
	if (!cmd || bad.opcode != PDU_OP_SCSI_CMD)
		return;
	/* The target could not take the command: reissuing it would be
	 * rejected again. */
	list_del(cmd);
	sess->nsent--;
	cmd_complete(sess, cmd, -EIO);
	sess_pump(sess);
}

void sess_pdu(struct ini_session *sess, const struct pdu *p)
{
	sess_update_sn(sess, &p->bhs);
	switch (p->bhs.opcode) {
	case PDU_OP_SCSI_RSP:
		rsp_scsi(sess, p);
		break;
	case PDU_OP_DATA_IN:
		rsp_data_in(sess, p);
		break;
	case PDU_OP_R2T:
		rsp_r2t(sess, p);
		break;
	case PDU_OP_NOP_IN:
		rsp_nop_in(sess, p);
		break;
	case PDU_OP_TMF_RSP:
		rsp_tmf(sess, p);
		break;
	case PDU_OP_TEXT_RSP:
		sess_stat_sn(sess, p->bhs.stat_sn);
		disc_text_rsp(sess, p);
		break;
	case PDU_OP_LOGOUT_RSP:
		sess_stat_sn(sess, p->bhs.stat_sn);
		rsp_logout(sess, p);
		break;
	case PDU_OP_REJECT:
		rsp_reject(sess, p);
		break;
	case PDU_OP_ASYNC:
		sess_stat_sn(sess, p->bhs.stat_sn);
		/* §11.9.1: 1 asks for a logout, 2 and 3 announce a drop; a
		 * new login is the answer to all three at ERL 0. */
		if (p->bhs.async.event >= 1 && p->bhs.async.event <= 3)
			sess_conn_lost(sess, -ECONNRESET, "the target asked to log out");
		break;
	default:
		sess_conn_lost(sess, -EPROTO, "unexpected PDU from the target");
		break;
	}
}

/* Task management after a timeout: ABORT TASK, then LOGICAL UNIT RESET,
 * then a new connection (recovery). */
static void tmf_send(struct ini_session *sess, uint8_t function, struct ini_cmd *ref)
{
	struct pdu_bhs bhs = {.opcode = PDU_OP_TMF_REQ, .final = true};

	bhs.itt = sess->next_itt++;
	bhs.lun = lun_field(ref->lun);
	bhs.tmf_req.function = function;
	bhs.tmf_req.ref_task_tag = function == TMF_ABORT_TASK ? ref->itt : PDU_RSVD_TAG;
	bhs.tmf_req.ref_cmd_sn = ref->cmd_sn;
	sess_fill_sn(sess, &bhs, true);
	sess->tmf_itt = bhs.itt;
	sess->tmf_function = function;
	sess->tmf_sent_ns = sched_now(sess->sched);
	if (function == TMF_ABORT_TASK)
		sess->st.aborts++;
	else
		sess->st.lun_resets++;
	conn_send(sess, &bhs, NULL, 0, NULL);
}

static void sess_timeouts(struct ini_session *sess, uint64_t now)
{
	uint64_t limit = (uint64_t)sess->o.cmd_timeout * NS;
	struct ini_cmd *cmd;

	if (sess->tmf_itt != PDU_RSVD_TAG) {
		if (now - sess->tmf_sent_ns < limit)
			return;
		if (sess->tmf_function == TMF_LUN_RESET) {
			sess_conn_lost(sess, -ETIMEDOUT, "no answer to a LUN reset");
			return;
		}
		for (cmd = sess->inflight.next; cmd != &sess->inflight; cmd = cmd->next)
			if (cmd->state == CMD_ABORTING)
				break;
		if (cmd == &sess->inflight) {
			sess->tmf_itt = PDU_RSVD_TAG;
			return;
		}
		/* Everything on that LUN is reset: send it all again after. */
		for (struct ini_cmd *c = sess->inflight.next; c != &sess->inflight; c = c->next)
			if (c->lun == cmd->lun)
				c->state = CMD_ABORTING;
		tmf_send(sess, TMF_LUN_RESET, cmd);
		return;
	}
	for (cmd = sess->inflight.next; cmd != &sess->inflight; cmd = cmd->next) {
		if (cmd->state == CMD_SENT && now - cmd->sent_ns >= limit) {
			sess->st.timeouts++;
			cmd->state = CMD_ABORTING;
			tmf_send(sess, TMF_ABORT_TASK, cmd);
			return;
		}
	}
}

static void sess_keepalive(struct ini_session *sess, uint64_t now)
{
	struct ini_conn *c = &sess->conn;
	uint64_t interval = (uint64_t)sess->o.nop_interval * NS;
	struct pdu_bhs nop = {.opcode = PDU_OP_NOP_OUT, .final = true};

	if (c->ping_sent_ns) {
		if (now - c->ping_sent_ns >= 2 * interval) {
			sess->st.ping_fails++;
			sess_conn_lost(sess, -ETIMEDOUT, "no answer to a NOP-Out ping");
		}
		return;
	}
	if (now - c->last_rx_ns < interval)
		return;
	sess->ping_itt = sess->next_itt++;
	nop.itt = sess->ping_itt;
	nop.nop.ttt = PDU_RSVD_TAG;
	sess_fill_sn(sess, &nop, true);
	c->ping_sent_ns = now;
	sess->st.pings++;
	conn_send(sess, &nop, NULL, 0, NULL);
}

static void logout_finish(struct ini_session *sess, int err)
{
	void (*cb)(struct ini_session *, int, void *) = sess->logout_cb;

	conn_shut(sess);
	sess->logout_cb = NULL;
	sched_wake(sess->sched);
	if (cb)
		cb(sess, err, sess->logout_arg);
}

/* Closing: once nothing is in flight, send the Logout Request (§11.14). */
static void sess_logout_step(struct ini_session *sess, uint64_t now)
{
	struct pdu_bhs bhs = {.opcode = PDU_OP_LOGOUT_REQ, .final = true};

	if (!sess->logout_cb)
		return;
	if (sess->conn.state != CONN_FFP) {
		logout_finish(sess, 0);
		return;
	}
	if (sess->logout_sent_ns) {
		if (now - sess->logout_sent_ns >= LOGOUT_TIMEOUT_S * NS)
			logout_finish(sess, -ETIMEDOUT);
		return;
	}
	if (!list_empty(&sess->inflight) || !list_empty(&sess->queued))
		return;
	sess->logout_itt = sess->next_itt++;
	bhs.itt = sess->logout_itt;
	bhs.logout_req.reason = 0; /* close the session */
	sess_fill_sn(sess, &bhs, true);
	sess->logout_sent_ns = now;
	conn_send(sess, &bhs, NULL, 0, NULL);
}

static void fail_list(struct ini_session *sess, struct ini_cmd *head, int err)
{
	struct ini_cmd *cmd;

	while (!list_empty(head)) {
		cmd = head->next;
		list_del(cmd);
		cmd_complete(sess, cmd, err);
	}
}

static void sess_tick(struct sched_timer *t)
{
	struct ini_session *sess = sess_of(t, tick);
	uint64_t now = sched_now(sess->sched);

	sched_timer_arm(sess->sched, &sess->tick, now + NS);
	if (sess->closing) {
		sess_logout_step(sess, now);
		if (sess->conn.state != CONN_FFP)
			return;
	}
	switch (sess->conn.state) {
	case CONN_CONNECTING:
	case CONN_LOGIN:
		if (now >= sess->login_deadline_ns) {
			sess_error(sess, "%s:%u: no login within %u s", sess->host, sess->o.port,
				   sess->o.login_timeout);
			sess_conn_lost(sess, -ETIMEDOUT, NULL);
		}
		break;
	case CONN_FFP:
		sess_keepalive(sess, now);
		if (sess->conn.state == CONN_FFP)
			sess_timeouts(sess, now);
		break;
	default:
		break;
	}
	if (sess->recovering && sess->o.recovery_timeout && !sess->failed_fast &&
	    now - sess->recovery_start_ns >= (uint64_t)sess->o.recovery_timeout * NS) {
		/* Give up on what is waiting; keep trying to reconnect. */
		sess->failed_fast = true;
		fail_list(sess, &sess->queued, -EIO);
	}
}

/* Connection life */

static void sess_reconnect(struct sched_timer *t)
{
	struct ini_session *sess = sess_of(t, reconnect_timer);
	int err;

	if (sess->closing)
		return;
	sess->login_deadline_ns = sched_now(sess->sched) + (uint64_t)sess->o.login_timeout * NS;
	err = conn_open(sess);
	if (err)
		sess_conn_lost(sess, err, NULL);
}

void sess_connected(struct ini_session *sess)
{
	int err = login_start(sess);

	if (err)
		sess_conn_lost(sess, err, NULL);
}

void sess_logged_in(struct ini_session *sess)
{
	void (*cb)(struct ini_session *, int, void *) = sess->login_cb;

	sess->backoff_ms = 0;
	sess->tmf_itt = PDU_RSVD_TAG;
	sess->st.connected = true;
	if (sess->recovering) {
		sess->st.reconnects++;
		sess->recovering = false;
		sess->failed_fast = false;
	}
	if (!sess->logged_in_once) {
		sess->logged_in_once = true;
		sess->login_cb = NULL;
		sched_wake(sess->sched); /* for a caller waiting in ini_wait() */
		if (cb)
			cb(sess, 0, sess->login_arg);
	}
	sess_pump(sess);
}

/* Put every command in flight back at the front of the queue, in order. */
static void sess_requeue(struct ini_session *sess)
{
	struct ini_cmd *cmd;

	while (!list_empty(&sess->inflight)) {
		cmd = sess->inflight.prev;
		list_del(cmd);
		cmd->state = CMD_QUEUED;
		cmd->next = sess->queued.next;
		cmd->prev = &sess->queued;
		sess->queued.next->prev = cmd;
		sess->queued.next = cmd;
		sess->st.reissued++;
	}
	sess->nsent = 0;
}

void sess_conn_lost(struct ini_session *sess, int err, const char *why)
{
	void (*cb)(struct ini_session *, int, void *) = sess->login_cb;
	uint64_t now = sched_now(sess->sched);

	if (why)
		sess_error(sess, "%s:%u: %s", sess->host, sess->o.port, why);
	conn_shut(sess);
	login_reset(sess);
	sess->st.connected = false;
	sess->tmf_itt = PDU_RSVD_TAG;
	disc_fail(sess, err);
	if (sess->logout_cb) {
		logout_finish(sess, 0);
		return;
	}
	if (sess->closing)
		return;
	if (!sess->logged_in_once) {
		sess->login_cb = NULL;
		sched_wake(sess->sched);
		if (cb)
			cb(sess, err, sess->login_arg);
		return;
	}
	sess_requeue(sess);
	if (!sess->recovering) {
		sess->recovering = true;
		sess->recovery_start_ns = now;
	}
	sess->backoff_ms = sess->backoff_ms ? sess->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (sess->backoff_ms > BACKOFF_MAX_MS)
		sess->backoff_ms = BACKOFF_MAX_MS;
	sched_timer_arm(sess->sched, &sess->reconnect_timer,
			now + (uint64_t)sess->backoff_ms * 1000000);
}

/* The API */

static char *dup_or_null(const char *s, bool *bad)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*bad = true;
	return d;
}

static void sess_free(struct ini_session *sess)
{
	free(sess->host);
	free(sess->target);
	free(sess->initiator);
	free(sess->user);
	free(sess->secret);
	free(sess->tuser);
	free(sess->tsecret);
	free(sess);
}

int ini_session_create(struct sched *s, const struct ini_opts *o, struct ini_session **ret)
{
	struct ini_session *sess;
	bool bad = false;

	if (!o->host || !*o->host || (o->secret && !o->user) || (o->user && !o->secret) ||
	    (!o->target_user != !o->target_secret) || (o->target_user && !o->user))
		return -EINVAL;
	sess = calloc(1, sizeof(*sess));
	if (!sess)
		return -ENOMEM;
	sess->sched = s;
	sess->o = *o;
	sess->host = dup_or_null(o->host, &bad);
	sess->target = dup_or_null(o->target, &bad);
	sess->initiator = dup_or_null(o->initiator, &bad);
	sess->user = dup_or_null(o->user, &bad);
	sess->secret = dup_or_null(o->secret, &bad);
	sess->tuser = dup_or_null(o->target_user, &bad);
	sess->tsecret = dup_or_null(o->target_secret, &bad);
	if (bad) {
		sess_free(sess);
		return -ENOMEM;
	}
	sess->discovery = !o->target;
	if (!sess->o.port)
		sess->o.port = INI_DEFAULT_PORT;
	if (!sess->o.queue_depth)
		sess->o.queue_depth = INI_DEFAULT_QUEUE_DEPTH;
	if (!sess->o.cmd_timeout)
		sess->o.cmd_timeout = INI_DEFAULT_CMD_TIMEOUT;
	if (!sess->o.nop_interval)
		sess->o.nop_interval = INI_DEFAULT_NOP_INTERVAL;
	if (!sess->o.login_timeout)
		sess->o.login_timeout = 15;
	/* ISID: type "random" (RFC 7143 §11.12.5), the same for every login
	 * of this session so that the target reinstates it. */
	if (getrandom(sess->isid, sizeof(sess->isid), 0) != sizeof(sess->isid))
		sess->isid[5] = (uint8_t)(uintptr_t)sess;
	sess->isid[0] = 0x80 | (sess->isid[0] & 0x3f);
	getrandom(&sess->cmd_sn, sizeof(sess->cmd_sn), 0);
	conn_init(sess);
	sess->tmf_itt = PDU_RSVD_TAG;
	sess->ping_itt = PDU_RSVD_TAG;
	list_init(&sess->queued);
	list_init(&sess->inflight);
	list_init(&sess->failed);
	sched_event_init(&sess->fail_ev, sess_fail_ev);
	sched_timer_init(&sess->tick, sess_tick);
	sched_timer_init(&sess->reconnect_timer, sess_reconnect);
	*ret = sess;
	return 0;
}

void ini_session_destroy(struct ini_session *sess)
{
	if (!sess)
		return;
	sess->closing = true;
	sess->logout_cb = NULL;
	sess->login_cb = NULL;
	conn_shut(sess);
	login_reset(sess);
	disc_fail(sess, -ECANCELED);
	sched_timer_cancel(sess->sched, &sess->tick);
	sched_timer_cancel(sess->sched, &sess->reconnect_timer);
	sched_cancel(sess->sched, &sess->fail_ev);
	fail_list(sess, &sess->inflight, -ECANCELED);
	fail_list(sess, &sess->queued, -ECANCELED);
	while (!list_empty(&sess->failed)) {
		struct ini_cmd *cmd = sess->failed.next;

		list_del(cmd);
		cmd_complete(sess, cmd, cmd->err);
	}
	conn_fini(sess);
	sess_free(sess);
}

int ini_session_login(struct ini_session *sess, void (*cb)(struct ini_session *, int, void *),
		      void *arg)
{
	uint64_t now = sched_now(sess->sched);
	int err;

	if (sess->logged_in_once || sess->login_cb || sess->conn.state != CONN_IDLE)
		return -EALREADY;
	sess->login_cb = cb;
	sess->login_arg = arg;
	sess->login_deadline_ns = now + (uint64_t)sess->o.login_timeout * NS;
	sched_timer_arm(sess->sched, &sess->tick, now + NS);
	err = conn_open(sess);
	if (err) {
		sess->login_cb = NULL;
		sched_timer_cancel(sess->sched, &sess->tick);
	}
	return err;
}

int ini_session_logout(struct ini_session *sess, void (*cb)(struct ini_session *, int, void *),
		       void *arg)
{
	if (sess->closing)
		return -EALREADY;
	sess->closing = true;
	sess->logout_cb = cb;
	sess->logout_arg = arg;
	sched_timer_cancel(sess->sched, &sess->reconnect_timer);
	/* Nothing can be sent without a connection: what waits fails. */
	if (sess->conn.state != CONN_FFP)
		fail_list(sess, &sess->queued, -ESHUTDOWN);
	sched_timer_arm(sess->sched, &sess->tick, sched_now(sess->sched));
	return 0;
}

const char *ini_session_error(const struct ini_session *sess)
{
	return sess->err[0] ? sess->err : "no error";
}

void ini_session_stats(const struct ini_session *sess, struct ini_stats *st)
{
	const struct poller *pl = conn_poller(sess);

	*st = sess->st;
	if (pl) {
		st->notifications = pl->stats.notifications;
		st->polls = pl->stats.polls;
		st->completions = pl->stats.completions;
	}
}

uint32_t ini_session_max_burst(const struct ini_session *sess)
{
	return sess->logged_in_once ? sess->params.max_burst_length : 0;
}

/* Waiting, for start-up code */

struct wait_guard {
	struct sched_timer t;
	bool fired;
};

static void wait_fire(struct sched_timer *t)
{
	((struct wait_guard *)t)->fired = true;
}

int ini_wait(struct sched *s, const bool *done, unsigned int timeout_ms)
{
	struct wait_guard g = {.fired = false};
	int err = 0;

	sched_timer_init(&g.t, wait_fire);
	if (timeout_ms)
		sched_timer_arm(s, &g.t, sched_now(s) + (uint64_t)timeout_ms * 1000000);
	while (!*done && !g.fired && !err)
		err = sched_run_once(s);
	sched_timer_cancel(s, &g.t);
	if (*done)
		return 0;
	return err ? err : -ETIMEDOUT;
}

struct sync_state {
	bool done;
	int err;
	struct sched *sched;
};

static void sync_login_cb(struct ini_session *sess, int err, void *arg)
{
	struct sync_state *st = arg;

	(void)sess;
	st->err = err;
	st->done = true;
}

int ini_login_sync(struct ini_session *sess)
{
	struct sync_state st = {false, 0, sess->sched};
	int err;

	err = ini_session_login(sess, sync_login_cb, &st);
	if (err)
		return err;
	/* the session's own deadline ends the login; this is a backstop */
	err = ini_wait(sess->sched, &st.done, (sess->o.login_timeout + 5) * 1000);
	return err ? err : st.err;
}

static void sync_cmd_done(struct ini_cmd *cmd)
{
	struct sync_state *st = cmd->priv;

	st->done = true;
	sched_wake(st->sched);
}

int ini_cmd_sync(struct ini_session *sess, struct ini_cmd *cmd)
{
	struct sync_state st = {false, 0, sess->sched};

	cmd->done = sync_cmd_done;
	cmd->priv = &st;
	ini_submit(sess, cmd);
	ini_wait(sess->sched, &st.done, 0);
	return cmd->err;
}
