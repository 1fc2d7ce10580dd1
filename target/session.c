/*
 * session: the full feature phase of the target (RFC 7143 §4, §11): the
 * CmdSN window, SCSI commands and their data (immediate, unsolicited,
 * R2T and Data-Out; Data-In), responses, NOP, Text (SendTargets), task
 * management and Logout, at ErrorRecoveryLevel 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/log.h"
#include "iser_hdr.h"
#include "config.h"
#include "sense.h"
#include "tgt.h"

#define SESSION_DEPTH 128		 /* commands in flight per session */
#define TASK_BUF_MAX (32u * 1024 * 1024) /* largest transfer of one command */
#define HELD_MAX (64u * 1024 * 1024)	 /* bytes held on one connection */

/* Reject reasons, RFC 7143 §11.17.1 */
#define REJECT_DATA_DIGEST 0x02
#define REJECT_SNACK 0x04
#define REJECT_PROTOCOL 0x04
#define REJECT_NOT_SUPPORTED 0x05
#define REJECT_INVALID_FIELD 0x09

/* Logout reasons and responses, RFC 7143 §11.14.1, §11.15.1 */
#define LOGOUT_CLOSE_SESSION 0
#define LOGOUT_CLOSE_CONNECTION 1
#define LOGOUT_RSP_OK 0
#define LOGOUT_RSP_NO_CID 1
#define LOGOUT_RSP_NO_RECOVERY 2

/* TMF functions and responses, RFC 7143 §11.5.1, §11.6.1 */
#define TMF_ABORT_TASK 1
#define TMF_ABORT_TASK_SET 2
#define TMF_CLEAR_ACA 3
#define TMF_CLEAR_TASK_SET 4
#define TMF_LUN_RESET 5
#define TMF_TARGET_WARM_RESET 6
#define TMF_TARGET_COLD_RESET 7
#define TMF_TASK_REASSIGN 8
#define TMF_RSP_COMPLETE 0
#define TMF_RSP_NO_TASK 1
#define TMF_RSP_NO_LUN 2
#define TMF_RSP_REASSIGN_UNSUPPORTED 4
#define TMF_RSP_NOT_SUPPORTED 5

static void task_exec(struct task *task);
static void task_fail(struct conn *c, struct task *task, struct sense sn);
static void send_tmf_rsp(struct conn *c, uint32_t itt, uint8_t response);

struct tgt_target *tgt_find_target(struct tgt *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->ntargets; i++)
		if (!strcmp(t->targets[i].cfg->name, name))
			return &t->targets[i];
	return NULL;
}

/* Sequence numbers */

/* The window: at most SESSION_DEPTH commands outstanding, and MaxCmdSN
 * never goes back (RFC 7143 §4.2.2.1). */
static void session_window(struct session *s)
{
	uint32_t max = s->exp_cmd_sn - 1 + (SESSION_DEPTH - s->ntasks);

	if (pdu_sn_gt(max, s->max_cmd_sn))
		s->max_cmd_sn = max;
}

/* Fill StatSN, ExpCmdSN, MaxCmdSN; @status PDUs take a StatSN. */
static void fill_sn(struct conn *c, struct pdu_bhs *bhs, bool status)
{
	struct session *s = c->session;

	bhs->stat_sn = status ? c->stat_sn++ : c->stat_sn;
	if (s) {
		session_window(s);
		bhs->exp_cmd_sn = s->exp_cmd_sn;
		bhs->max_cmd_sn = s->max_cmd_sn;
	}
}

void session_fill_sn(struct conn *c, struct pdu_bhs *bhs)
{
	fill_sn(c, bhs, false);
}

/*
 * RFC 7143 §4.2.2.1: a non-immediate command outside the window is
 * ignored; in it, it takes the next CmdSN. One that comes before the
 * commands ahead of it (on another connection of the session) is held
 * until they came (hold()), so that this sees CmdSNs in order.
 */
static bool cmd_sn_accept(struct session *s, const struct pdu_bhs *bhs)
{
	if (bhs->immediate)
		return true;
	if (!pdu_sn_in_window(bhs->cmd_sn, s->exp_cmd_sn, s->max_cmd_sn))
		return false;
	if (bhs->cmd_sn == s->exp_cmd_sn)
		s->exp_cmd_sn++;
	return true;
}

static void send_reject(struct conn *c, const struct pdu_bhs *bad, uint8_t reason)
{
	struct pdu_bhs rej = {.opcode = PDU_OP_REJECT, .final = true, .itt = PDU_RSVD_TAG};
	uint8_t *hdr = malloc(PDU_BHS_LEN);

	if (!hdr) {
		conn_close(c, "out of memory");
		return;
	}
	pdu_bhs_encode(bad, hdr, PDU_BHS_LEN);
	rej.reject.reason = reason;
	fill_sn(c, &rej, false);
	conn_send(c, &rej, hdr, PDU_BHS_LEN, hdr, NULL);
}

/* Sessions */

static void session_free(struct session *s)
{
	struct session **pp;
	size_t i;

	for (pp = &s->tgt->sessions; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	if (s->target)
		for (i = 0; i < s->target->nluns; i++)
			lun_nexus_gone(s->target->luns[i], s->nexus.id);
	free(s);
}

/* RFC 7143 §6.3.5: a leading login with the ISID of a live session of
 * the same initiator and target reinstates it: the old one ends. */
static void session_reinstate(struct tgt *t, const struct session *ns)
{
	struct conn *c;

	for (c = t->conns; c; c = c->next) {
		struct session *s = c->session;

		if (s && s != ns && s->target == ns->target && s->discovery == ns->discovery &&
		    !memcmp(s->isid, ns->isid, 6) && !strcmp(s->initiator, ns->initiator))
			conn_close(c, "session reinstated by a new login");
	}
}

/*
 * RFC 7143 §6.3.4, §6.3.5: a login with the TSIH of a live session adds a
 * connection to it, within its MaxConnections; with the CID of one of its
 * connections, it reinstates that one, which ends (at ERL 0 its tasks are
 * dropped). The session-wide keys were negotiated by the leading login.
 */
static int session_join(struct conn *c, struct tgt_target *target, bool discovery,
			const uint8_t isid[6], uint16_t tsih, const char *initiator)
{
	struct conn *oc, *old = NULL;
	struct session *s;
	unsigned int live = 0;

	for (s = c->tgt->sessions; s; s = s->next)
		if (s->tsih == tsih && !memcmp(s->isid, isid, 6) && s->target == target &&
		    s->discovery == discovery && !strcmp(s->initiator, initiator))
			break;
	if (!s)
		return -ENOENT;
	if (s->iser != (c->iser != NULL))
		return -EBUSY; /* one transport per session */
	for (oc = c->tgt->conns; oc; oc = oc->next) {
		if (oc->session != s || oc->phase == CONN_CLOSING || oc->phase == CONN_GONE)
			continue;
		if (oc->cid == c->cid)
			old = oc;
		else
			live++;
	}
	if (live >= s->params.max_connections)
		return -EBUSY;
	if (old)
		conn_close(old, "connection reinstated by a new login with its CID");
	s->nconns++;
	c->session = s;
	return 0;
}

int session_attach(struct conn *c, struct tgt_target *target, bool discovery, const uint8_t isid[6],
		   uint16_t tsih, const char *initiator, uint32_t cmd_sn)
{
	struct tgt *t = c->tgt;
	struct session *s;

	if (tsih)
		return session_join(c, target, discovery, isid, tsih, initiator);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->tgt = t;
	s->target = target;
	s->discovery = discovery;
	memcpy(s->isid, isid, 6);
	do
		s->tsih = t->next_tsih++;
	while (!s->tsih);
	snprintf(s->initiator, sizeof(s->initiator), "%s", initiator);
	s->nexus.id = ++t->next_nexus;
	snprintf(s->nexus.initiator, sizeof(s->nexus.initiator), "%s", initiator);
	memcpy(s->nexus.isid, isid, 6);
	s->params = c->neg.result;
	s->exp_cmd_sn = cmd_sn;
	s->max_cmd_sn = cmd_sn - 1;
	session_window(s);
	s->next = t->sessions;
	t->sessions = s;
	s->nconns = 1;
	s->iser = c->iser != NULL;
	c->session = s;
	session_reinstate(t, s);
	return 0;
}

static void held_free(struct conn *c);

void session_conn_gone(struct conn *c)
{
	struct session *s = c->session;
	struct task *task;

	while ((task = c->tasks)) {
		c->tasks = task->next;
		if (task->waiter && !--task->waiter->pending)
			free(task->waiter);
		/* its window slot, for a session that goes on (MC/S, a
		 * connection replaced or logged out alone) */
		if (s)
			s->ntasks--;
		task_buf_free(task);
		free(task);
	}
	held_free(c);
	if (s && !--s->nconns)
		session_free(s);
	c->session = NULL;
	login_free(c);
}

/* Tasks */

static struct task *task_find(struct conn *c, uint32_t itt)
{
	struct task *t;

	for (t = c->tasks; t; t = t->next)
		if (t->itt == itt)
			return t;
	return NULL;
}

/* ITTs are unique in a session, across its connections (RFC 7143 §3.2.5).
 * Every command looks its ITT up: with one connection, only that one. */
static struct task *session_task_find(struct conn *c, uint32_t itt)
{
	struct conn *oc;
	struct task *t;

	if (c->session->nconns == 1)
		return task_find(c, itt);
	for (oc = c->tgt->conns; oc; oc = oc->next)
		if (oc->session == c->session && (t = task_find(oc, itt)))
			return t;
	return NULL;
}

/* Done with a task: unlink and free it. */
void task_put(struct task *task)
{
	struct conn *c = task->conn;
	struct task **pp;

	for (pp = &c->tasks; *pp; pp = &(*pp)->next) {
		if (*pp == task) {
			*pp = task->next;
			break;
		}
	}
	if (c->session)
		c->session->ntasks--;
	task_buf_free(task);
	free(task);
}

static struct lun *session_lun(struct session *s, uint64_t lun_field)
{
	unsigned int lun;
	size_t i;

	/* SAM-5 §4.7: peripheral (00b) and flat (01b) single-level LUNs. */
	if (lun_field & 0x0000ffffffffffffull)
		return NULL;
	lun = (unsigned int)(lun_field >> 48) & 0x3fff;
	if (((lun_field >> 62) & 3) == 0 && lun > 255)
		return NULL;
	if ((lun_field >> 62) > 1)
		return NULL;
	for (i = 0; i < s->target->nluns; i++)
		if (lun_number(s->target->luns[i]) == lun)
			return s->target->luns[i];
	return NULL;
}

/* Responses */

static void send_scsi_rsp(struct conn *c, struct task *task)
{
	struct scsi_cmd *cmd = &task->cmd;
	struct pdu_bhs rsp = {.opcode = PDU_OP_SCSI_RSP, .final = true, .itt = task->itt};
	uint8_t *sense = NULL;
	uint32_t len = 0;

	rsp.scsi_rsp.status = cmd->status;
	rsp.scsi_rsp.overflow = cmd->overflow;
	rsp.scsi_rsp.underflow = cmd->underflow;
	rsp.scsi_rsp.residual = cmd->residual;
	if (cmd->sense_len) {
		/* RFC 7143 §11.4.7: SenseLength, then the sense data. */
		len = 2u + cmd->sense_len;
		sense = malloc(len);
		if (!sense) {
			conn_close(c, "out of memory");
			return;
		}
		sense[0] = 0;
		sense[1] = cmd->sense_len;
		memcpy(sense + 2, cmd->sense, cmd->sense_len);
	}
	fill_sn(c, &rsp, true);
	task->state = TASK_SENDING;
	conn_send(c, &rsp, sense, len, sense, task);
}

/*
 * Data-In: PDUs of at most the initiator's MaxRecvDataSegmentLength, in
 * sequences of at most MaxBurstLength whose last PDU has F (RFC 7143
 * §11.7.1). With good status and no sense, the last PDU carries the
 * status (S) and no SCSI Response follows (§11.7.3, phase collapse).
 */
static void send_data_in(struct conn *c, struct task *task)
{
	struct scsi_cmd *cmd = &task->cmd;
	uint32_t off = 0, seg, burst = 0, max_burst = c->session->params.max_burst_length;
	bool collapse = cmd->status == SCSI_STATUS_GOOD && !cmd->sense_len;

	if (c->iser) {
		/* RFC 7145 §7.3.5: no Data-In; an RDMA WRITE, then the
		 * response, whose Send completes after the Write. */
		task->state = TASK_SENDING;
		if (!conn_rdma_write(c, task))
			send_scsi_rsp(c, task);
		return;
	}
	task->state = TASK_SENDING;
	while (off < cmd->data_len) {
		struct pdu_bhs d = {.opcode = PDU_OP_DATA_IN, .itt = task->itt};

		seg = cmd->data_len - off;
		if (seg > c->max_send_dsl)
			seg = c->max_send_dsl;
		if (burst + seg > max_burst)
			seg = max_burst - burst;
		burst += seg;
		d.data_in.ttt = PDU_RSVD_TAG;
		d.data_in.data_sn = task->data_sn++;
		d.data_in.buffer_offset = off;
		d.final = burst == max_burst || off + seg == cmd->data_len;
		if (burst == max_burst)
			burst = 0;
		off += seg;
		if (off == cmd->data_len && collapse) {
			d.final = true;
			d.data_in.status_present = true;
			d.data_in.status = cmd->status;
			d.data_in.overflow = cmd->overflow;
			d.data_in.underflow = cmd->underflow;
			d.data_in.residual = cmd->residual;
			fill_sn(c, &d, true);
		} else {
			fill_sn(c, &d, false);
		}
		conn_send(c, &d, cmd->buf + off - seg, seg, NULL, task);
	}
	if (!collapse)
		send_scsi_rsp(c, task);
}

/* An aborted task is done with its buffer: free it, and answer the TMF
 * that waits for it if it was the last. */
static void task_put_aborted(struct conn *c, struct task *task)
{
	struct tmf_wait *w = task->waiter;

	task_put(task);
	if (w && !--w->pending) {
		send_tmf_rsp(c, w->itt, w->response);
		free(w);
	}
}

static void task_done(struct scsi_cmd *cmd)
{
	struct task *task = cmd->priv;
	struct conn *c = task->conn;

	c->nexec--;
	if (c->phase == CONN_CLOSING) {
		if (!c->nexec)
			sched_schedule(c->tgt->sched, &c->close_ev);
		return; /* freed with the connection */
	}
	if (task->aborted) {
		task_put_aborted(c, task);
		return;
	}
	if (cmd->data_len && cmd->dir == SCSI_DIR_READ)
		send_data_in(c, task);
	else
		send_scsi_rsp(c, task);
}

static void task_exec(struct task *task)
{
	struct conn *c = task->conn;

	task->state = TASK_EXEC;
	task->cmd.done = task_done;
	task->cmd.priv = task;
	c->nexec++;
	scsi_exec(&task->cmd);
}

/* iSER: the RDMA READ of @task's write data ended (conn_rdma_read()). */
void task_pulled(struct task *task, int err)
{
	struct conn *c = task->conn;

	task->rdma_reading = false;
	c->nexec--;
	if (c->phase == CONN_CLOSING || c->phase == CONN_GONE) {
		if (!c->nexec)
			sched_schedule(c->tgt->sched, &c->close_ev);
		return;
	}
	if (task->aborted) {
		task_put_aborted(c, task);
		return;
	}
	if (err)
		return; /* the connection is going down */
	task->received = task->edtl;
	task->cmd.buf_len = task->edtl;
	task_exec(task);
}

/* R2T, Data-Out */

/* Ask for more write data: one burst per R2T, up to MaxOutstandingR2T
 * (RFC 7143 §11.8, §13.17). */
static void send_r2ts(struct conn *c, struct task *task)
{
	const struct text_params *p = &c->session->params;

	if (c->iser) {
		/* RFC 7145 §7.3.3: no R2T; the target pulls the rest. */
		if (task->r2t_offset < task->edtl && !task->rdma_reading)
			conn_rdma_read(c, task);
		return;
	}
	while (task->r2t_offset < task->edtl && task->r2t_outstanding < p->max_outstanding_r2t) {
		struct pdu_bhs r = {.opcode = PDU_OP_R2T, .final = true, .itt = task->itt};
		uint32_t len = task->edtl - task->r2t_offset;

		if (len > p->max_burst_length)
			len = p->max_burst_length;
		r.lun = task->lun_field;
		r.r2t.ttt = task->ttt;
		r.r2t.r2t_sn = task->r2t_sn++;
		r.r2t.buffer_offset = task->r2t_offset;
		r.r2t.desired_len = len;
		task->r2t_offset += len;
		task->r2t_outstanding++;
		fill_sn(c, &r, false);
		conn_send(c, &r, NULL, 0, NULL, NULL);
	}
}

/* Data arrived for @task at @off: place it, run the command when whole. */
static int task_data(struct conn *c, struct task *task, uint32_t off, const uint8_t *data,
		     uint32_t len)
{
	/* DataPDUInOrder and DataSequenceInOrder are Yes: data comes in
	 * offset order, with no gap and no overlap (RFC 7143 §13.18-19). */
	if (off != task->received || len > task->edtl - off)
		return -EPROTO;
	if (len && data != task->cmd.buf + off) /* or received in place */
		memcpy(task->cmd.buf + off, data, len);
	task->received += len;
	task->cmd.buf_len = task->received;
	if (task->received == task->edtl)
		task_exec(task);
	else
		send_r2ts(c, task);
	return 0;
}

/* A write whose data went wrong ends with ABORTED COMMAND at once; Data-Out
 * PDUs still in flight for it are dropped while its response is queued. */
static void task_data_error(struct conn *c, struct task *task, uint16_t asc)
{
	task_fail(c, task, sense_make(SENSE_KEY_ABORTED_COMMAND, asc));
}

/* Why the Data-Out @bhs cannot go into @task's buffer: the ASC to fail
 * the task with, or 0 when it can. */
static uint16_t data_out_check(const struct task *task, const struct pdu_bhs *bhs)
{
	uint32_t off = bhs->data_out.buffer_offset;

	/* RFC 7143 §11.7.5: DataSN counts the PDUs of each sequence from 0. */
	if (bhs->data_out.data_sn != task->out_sn)
		return SENSE_DATA_PHASE_ERROR;
	if (bhs->data_out.ttt == PDU_RSVD_TAG) {
		if (task->received + bhs->data_len > task->unsolicited)
			return SENSE_UNEXPECTED_UNSOLICITED_DATA;
	} else if (bhs->data_out.ttt != task->ttt) {
		return SENSE_INVALID_TARGET_PORT_TRANSFER_TAG;
	}
	/* DataPDUInOrder and DataSequenceInOrder are Yes: data comes in
	 * offset order, with no gap and no overlap (RFC 7143 §13.18-19). */
	if (off != task->received)
		return SENSE_DATA_OFFSET_ERROR;
	if (bhs->data_len > task->edtl - off)
		return SENSE_TOO_MUCH_WRITE_DATA;
	return 0;
}

static void handle_data_out(struct conn *c, const struct pdu *p)
{
	const struct pdu_bhs *bhs = &p->bhs;
	struct task *task = task_find(c, bhs->itt);
	uint16_t asc;

	if (!task) {
		send_reject(c, bhs, REJECT_INVALID_FIELD);
		return;
	}
	if (task->state != TASK_DATA_OUT)
		return; /* aborted or failed already (§4.2.3.3) */
	if (task->aborted)
		return; /* freed when what writes into its buffer is done */
	asc = data_out_check(task, bhs);
	if (asc) {
		task_data_error(c, task, asc);
		return;
	}
	task->out_sn = bhs->final ? 0 : task->out_sn + 1;
	if (bhs->data_out.ttt != PDU_RSVD_TAG && bhs->final)
		task->r2t_outstanding--;
	task_data(c, task, bhs->data_out.buffer_offset, p->data, bhs->data_len);
}

/* The data segment session_place() put into a task's buffer is in: a
 * task aborted meanwhile (by a TMF from another connection, or one of
 * this connection's released from the hold queue) goes now. */
void session_place_end(struct conn *c)
{
	struct task *task = c->rx_place_task;

	c->rx_place_task = NULL;
	if (task && task->aborted)
		task_put_aborted(c, task);
}

void *session_place(struct conn *c, const struct pdu *p)
{
	const struct pdu_bhs *bhs = &p->bhs;
	uint32_t edtl = bhs->scsi_cmd.exp_xfer_len;
	struct task *task;

	/* With PDUs held here, another connection may release one for the
	 * task (and finish it) while its data is still coming: no place. */
	if (c->held)
		return NULL;
	switch (bhs->opcode) {
	case PDU_OP_DATA_OUT:
		task = task_find(c, bhs->itt);
		if (!task || task->state != TASK_DATA_OUT || task->aborted ||
		    data_out_check(task, bhs))
			return NULL; /* held, or an error answered once it is in */
		c->rx_place_task = task;
		return task->cmd.buf + bhs->data_out.buffer_offset;
	case PDU_OP_SCSI_CMD:
		if (!bhs->scsi_cmd.write || c->session->discovery || edtl > TASK_BUF_MAX ||
		    bhs->data_len > edtl || !c->session->params.immediate_data)
			return NULL;
		c->rx_prebuf = malloc(edtl);
		return c->rx_prebuf;
	default:
		return NULL;
	}
}

/* Answer at once, without the SCSI layer (no buffer, bad LUN field...). */
static void task_fail(struct conn *c, struct task *task, struct sense sn)
{
	struct scsi_cmd *cmd = &task->cmd;
	int n = sense_encode(&sn, 0, cmd->sense, sizeof(cmd->sense));

	cmd->status = SCSI_STATUS_CHECK_CONDITION;
	cmd->sense_len = n > 0 ? (uint8_t)n : 0;
	cmd->data_len = 0;
	send_scsi_rsp(c, task);
}

static int task_setup(struct conn *c, struct task *task, const struct pdu *p)
{
	const struct pdu_bhs *bhs = &p->bhs;
	struct scsi_cmd *cmd = &task->cmd;

	task->conn = c;
	task->itt = bhs->itt;
	task->cmd_sn = bhs->cmd_sn;
	task->lun_field = bhs->lun;
	task->edtl = bhs->scsi_cmd.exp_xfer_len;
	task->ttt = c->next_ttt++ & 0x7fffffff;
	memcpy(cmd->cdb, bhs->scsi_cmd.cdb, 16);
	cmd->cdb_len = 16;
	if (p->ahs.ext_cdb) {
		memcpy(cmd->cdb + 16, p->ahs.ext_cdb, p->ahs.ext_cdb_len);
		cmd->cdb_len = (uint16_t)(16 + p->ahs.ext_cdb_len);
	}
	cmd->lun = c->session->target ? session_lun(c->session, bhs->lun) : NULL;
	cmd->target = &c->session->target->scsi;
	cmd->nexus = &c->session->nexus;
	cmd->edtl = task->edtl;
	cmd->dir = bhs->scsi_cmd.write	? SCSI_DIR_WRITE
		   : bhs->scsi_cmd.read ? SCSI_DIR_READ
					: SCSI_DIR_NONE;
	if (task->edtl > TASK_BUF_MAX)
		return -E2BIG;
	if (c->iser && c->rx_ctrl) {
		task->wsv = c->rx_ctrl->wsv;
		task->write_stag = c->rx_ctrl->write_stag;
		task->write_va = c->rx_ctrl->write_va;
		task->rsv = c->rx_ctrl->rsv;
		task->read_stag = c->rx_ctrl->read_stag;
		task->read_va = c->rx_ctrl->read_va;
	}
	if (task->edtl && p->data && p->data == c->rx_prebuf) {
		task->cmd.buf = c->rx_prebuf; /* its immediate data is there */
		c->rx_prebuf = NULL;
		return 0;
	}
	/* Within the window only: immediate commands are not (§4.2.2.1),
	 * and each would keep one of the connection's receives. */
	if (cmd->dir == SCSI_DIR_WRITE && task->edtl && p->bhs.data_len == task->edtl &&
	    c->session->ntasks <= SESSION_DEPTH && task_buf_in_place(c, task, p->data))
		return 0;
	if (task->edtl)
		return task_buf_alloc(c, task);
	return 0;
}

/* Immediate data, then what the initiator may send unasked, then R2Ts
 * (RFC 7143 §3.2.4.2, §13.10, §13.11, §13.14). */
static void task_start_write(struct conn *c, struct task *task, const struct pdu *p)
{
	const struct text_params *prm = &c->session->params;
	uint32_t im = p->bhs.data_len, first = prm->first_burst_length;

	if (im > task->edtl || (im && !prm->immediate_data) || im > first) {
		task_data_error(c, task, SENSE_UNEXPECTED_UNSOLICITED_DATA);
		return;
	}
	task->unsolicited = im;
	if (!prm->initial_r2t && !p->bhs.final)
		task->unsolicited = task->edtl < first ? task->edtl : first;
	task->r2t_offset = task->unsolicited;
	task->state = TASK_DATA_OUT;
	if (task_data(c, task, 0, p->data, im))
		task_data_error(c, task, SENSE_TOO_MUCH_WRITE_DATA);
}

static void handle_scsi_cmd(struct conn *c, const struct pdu *p)
{
	const struct pdu_bhs *bhs = &p->bhs;
	struct task *task;
	int err;

	if (c->session->discovery) {
		send_reject(c, bhs, REJECT_NOT_SUPPORTED); /* §4.3: Text and Logout only */
		return;
	}
	if (!cmd_sn_accept(c->session, bhs))
		return;
	c->cmds++;
	if (session_task_find(c, bhs->itt)) {
		send_reject(c, bhs, REJECT_INVALID_FIELD); /* ITT in use */
		return;
	}
	task = calloc(1, sizeof(*task));
	if (!task) {
		conn_close(c, "out of memory");
		return;
	}
	task->next = c->tasks;
	c->tasks = task;
	c->session->ntasks++;
	err = task_setup(c, task, p);
	if (err) {
		task->edtl = 0;
		task_fail(c, task,
			  err == -E2BIG ? sense_invalid_cdb_field(0, -1)
					: sense_make(SENSE_KEY_HARDWARE_ERROR,
						     SENSE_INTERNAL_TARGET_FAILURE));
		return;
	}
	if (task->cmd.dir == SCSI_DIR_WRITE && task->edtl)
		task_start_write(c, task, p);
	else
		task_exec(task);
}

/* NOP-Out: a ping to answer, or the answer to ours (RFC 7143 §11.18). */
static void handle_nop_out(struct conn *c, const struct pdu *p)
{
	const struct pdu_bhs *bhs = &p->bhs;
	struct pdu_bhs rsp = {.opcode = PDU_OP_NOP_IN, .final = true, .itt = bhs->itt};
	uint8_t *echo = NULL;

	if (!cmd_sn_accept(c->session, bhs))
		return;
	if (bhs->itt == PDU_RSVD_TAG) {
		if (bhs->nop.ttt == c->ping_ttt)
			c->ping_sent_ns = 0; /* the answer to our ping */
		return;
	}
	if (bhs->data_len) {
		echo = malloc(bhs->data_len);
		if (!echo) {
			conn_close(c, "out of memory");
			return;
		}
		memcpy(echo, p->data, bhs->data_len);
	}
	rsp.lun = bhs->lun;
	rsp.nop.ttt = PDU_RSVD_TAG;
	fill_sn(c, &rsp, true);
	conn_send(c, &rsp, echo, bhs->data_len, echo, NULL);
}

/* SendTargets (RFC 7143 Appendix C): the targets this initiator may see,
 * each with the portals it is reachable at. */
static int send_targets(struct conn *c, const char *which, size_t wlen, struct text_buf *out)
{
	struct tgt *t = c->tgt;
	char addr[96];
	size_t i, j;
	int err = 0;

	for (i = 0; i < t->ntargets && !err; i++) {
		const struct config_target *ct = t->targets[i].cfg;

		if (!config_allows(ct, c->session->initiator))
			continue;
		if (!(wlen == 3 && !memcmp(which, "All", 3)) &&
		    !(strlen(ct->name) == wlen && !memcmp(which, ct->name, wlen)))
			continue;
		err = text_append(out, "TargetName", ct->name);
		for (j = 0; j < t->nportals && !err; j++) {
			/* RFC 7143 §13.8: domainname[:port],tpgt, with no
			 * transport prefix; a wildcard portal: the address
			 * the initiator reached. */
			const char *pn = t->portals[j].name;

			if (!strncmp(pn, "tcp:", 4))
				pn += 4;
			else if (!strncmp(pn, "iser:", 5))
				pn += 5;
			snprintf(addr, sizeof(addr), "%s,1", pn);
			if (!strncmp(addr, "0.0.0.0", 7) || !strncmp(addr, "[::]", 4) ||
			    !strncmp(addr, "::", 2))
				snprintf(addr, sizeof(addr), "%s,1", c->local);
			err = text_append(out, "TargetAddress", addr);
		}
	}
	return err;
}

static void handle_text(struct conn *c, const struct pdu *p)
{
	const struct pdu_bhs *bhs = &p->bhs;
	struct pdu_bhs rsp = {.opcode = PDU_OP_TEXT_RSP, .final = true, .itt = bhs->itt};
	const struct text_pair *st;
	struct text_list keys;
	struct text_buf out;
	uint8_t *buf;
	size_t cap = c->max_send_dsl;

	if (!cmd_sn_accept(c->session, bhs))
		return;
	if (bhs->text.cont || !bhs->final) {
		send_reject(c, bhs, REJECT_NOT_SUPPORTED); /* long Text sequences: not yet */
		return;
	}
	if (text_parse(p->data, bhs->data_len, 0, &keys)) {
		send_reject(c, bhs, REJECT_PROTOCOL);
		return;
	}
	buf = malloc(cap);
	if (!buf) {
		conn_close(c, "out of memory");
		return;
	}
	text_buf_init(&out, buf, cap);
	st = text_list_find(&keys, "SendTargets");
	if (st) {
		if (send_targets(c, st->value, st->value_len, &out))
			out.len = 0; /* does not fit one PDU: answer with none */
	} else {
		text_neg_stage(&c->neg, TEXT_STAGE_FFP);
		if (text_respond(&c->neg, &keys, &out)) {
			free(buf);
			send_reject(c, bhs, REJECT_PROTOCOL);
			return;
		}
	}
	rsp.lun = bhs->lun;
	rsp.text.ttt = PDU_RSVD_TAG;
	fill_sn(c, &rsp, true);
	conn_send(c, &rsp, buf, (uint32_t)out.len, buf, NULL);
}

static void handle_logout(struct conn *c, const struct pdu *p)
{
	const struct pdu_bhs *bhs = &p->bhs;
	struct pdu_bhs rsp = {.opcode = PDU_OP_LOGOUT_RSP, .final = true, .itt = bhs->itt};

	struct conn *oc, *next, *other = NULL;
	uint8_t reason = bhs->logout_req.reason;

	if (!cmd_sn_accept(c->session, bhs))
		return;
	/* RFC 7143 §11.14.1: reason 0 closes the session, every connection
	 * of it; 1 the connection CID, this one or another; 2 (removal for
	 * recovery) is ERL 2. §11.15.1: an unknown CID is response 1. */
	if (reason == LOGOUT_CLOSE_CONNECTION && bhs->logout_req.cid != c->cid) {
		for (oc = c->tgt->conns; oc; oc = oc->next)
			if (oc->session == c->session && oc->cid == bhs->logout_req.cid &&
			    oc->phase != CONN_CLOSING && oc->phase != CONN_GONE)
				other = oc;
		rsp.logout_rsp.response = other ? LOGOUT_RSP_OK : LOGOUT_RSP_NO_CID;
		fill_sn(c, &rsp, true);
		conn_send(c, &rsp, NULL, 0, NULL, NULL);
		if (other)
			conn_close(other, "logged out by another connection of its session");
		return;
	}
	if (reason > LOGOUT_CLOSE_CONNECTION) {
		rsp.logout_rsp.response = LOGOUT_RSP_NO_RECOVERY;
		fill_sn(c, &rsp, true);
		conn_send(c, &rsp, NULL, 0, NULL, NULL);
		c->phase = CONN_LOGOUT;
		return;
	}
	rsp.logout_rsp.response = LOGOUT_RSP_OK;
	fill_sn(c, &rsp, true);
	conn_send(c, &rsp, NULL, 0, NULL, NULL);
	c->phase = CONN_LOGOUT; /* closed once the response is out */
	if (reason == LOGOUT_CLOSE_SESSION)
		for (oc = c->tgt->conns; oc; oc = next) {
			next = oc->next;
			if (oc != c && oc->session == c->session)
				conn_close(oc, "its session logged out");
		}
}

/* Task management (RFC 7143 §11.5, §4.2.3; SAM-5 §7) */

static void send_tmf_rsp(struct conn *c, uint32_t itt, uint8_t response)
{
	struct pdu_bhs rsp = {.opcode = PDU_OP_TMF_RSP, .final = true, .itt = itt};

	rsp.tmf_rsp.response = response;
	fill_sn(c, &rsp, true);
	conn_send(c, &rsp, NULL, 0, NULL, NULL);
}

/* Abort @task: dropped at once unless the SCSI layer has it; then its
 * completion is dropped and, if it is @w's connection's, @w waits for it. */
static void task_abort(struct task *task, struct tmf_wait *w, struct conn *c)
{
	switch (task->state) {
	case TASK_DATA_OUT:
		if (!task->rdma_reading && task->conn->rx_place_task != task) {
			task_put(task);
			break;
		}
		/* an RDMA READ, or its connection's stream (a Data-Out being
		 * received in place, from this connection or another of the
		 * session), still writes into its buffer */
		__attribute__((fallthrough));
	case TASK_EXEC:
		if (task->aborted)
			break;
		task->aborted = true;
		if (w && task->conn == c) {
			task->waiter = w;
			w->pending++;
		}
		break;
	case TASK_SENDING:
		break;
	}
}

/* Abort the tasks of every connection of this target on @lun (NULL: all
 * LUNs); only this session's (this I_T nexus) when @own_only. */
static void abort_tasks(struct conn *c, struct lun *lun, bool own_only, struct tmf_wait *w)
{
	struct conn *oc;
	struct task *task, *next;

	for (oc = c->tgt->conns; oc; oc = oc->next) {
		if (!oc->session || oc->session->target != c->session->target)
			continue;
		if (own_only && oc->session != c->session)
			continue;
		for (task = oc->tasks; task; task = next) {
			next = task->next;
			if (!lun || task->cmd.lun == lun)
				task_abort(task, w, c);
		}
	}
}

static bool held_abort(struct conn *c, uint32_t itt);

static uint8_t tmf_abort_task(struct conn *c, const struct pdu_bhs *bhs, struct tmf_wait *w)
{
	struct task *task = session_task_find(c, bhs->tmf_req.ref_task_tag);
	struct session *s = c->session;

	/* A task whose response is already on its way has completed: it
	 * no longer exists to be aborted. */
	if (task && task->state != TASK_SENDING) {
		task_abort(task, w, c);
		return TMF_RSP_COMPLETE;
	}
	/* Received but held for CmdSN order: it will never run. */
	if (!task && held_abort(c, bhs->tmf_req.ref_task_tag))
		return TMF_RSP_COMPLETE;
	/* §11.5.1 b, c: a command not received yet but inside the window and
	 * before this request counts as received and aborted; otherwise the
	 * task does not exist (it completed, or never was). */
	if (!task && pdu_sn_in_window(bhs->tmf_req.ref_cmd_sn, s->exp_cmd_sn, s->max_cmd_sn) &&
	    pdu_sn_lt(bhs->tmf_req.ref_cmd_sn, bhs->cmd_sn))
		return TMF_RSP_COMPLETE;
	return TMF_RSP_NO_TASK;
}

static void handle_tmf(struct conn *c, const struct pdu *p)
{
	const struct pdu_bhs *bhs = &p->bhs;
	struct session *s = c->session;
	struct tmf_wait *w;
	struct lun *lun;
	uint8_t rsp = TMF_RSP_COMPLETE;
	size_t i;

	if (!cmd_sn_accept(s, bhs))
		return;
	if (s->discovery) {
		send_reject(c, bhs, REJECT_NOT_SUPPORTED);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		conn_close(c, "out of memory");
		return;
	}
	lun = session_lun(s, bhs->lun);
	switch (bhs->tmf_req.function) {
	case TMF_ABORT_TASK:
		rsp = tmf_abort_task(c, bhs, w);
		break;
	case TMF_ABORT_TASK_SET:
	case TMF_CLEAR_TASK_SET:
		if (!lun) {
			rsp = TMF_RSP_NO_LUN;
			break;
		}
		abort_tasks(c, lun, bhs->tmf_req.function == TMF_ABORT_TASK_SET, w);
		if (bhs->tmf_req.function == TMF_CLEAR_TASK_SET)
			lun_unit_attention(lun, s->nexus.id,
					   SENSE_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR);
		break;
	case TMF_LUN_RESET:
		if (!lun) {
			rsp = TMF_RSP_NO_LUN;
			break;
		}
		abort_tasks(c, lun, false, w);
		lun_reset(lun, 0, SENSE_BUS_DEVICE_RESET);
		break;
	case TMF_TARGET_WARM_RESET:
		abort_tasks(c, NULL, false, w);
		for (i = 0; i < s->target->nluns; i++)
			lun_reset(s->target->luns[i], 0, SENSE_POWER_ON_RESET);
		break;
	case TMF_TASK_REASSIGN:
		rsp = TMF_RSP_REASSIGN_UNSUPPORTED; /* ERL 0 */
		break;
	default:
		rsp = TMF_RSP_NOT_SUPPORTED; /* CLEAR ACA (no ACA), COLD RESET... */
		break;
	}
	/* Aborted tasks of this connection still in the backing store send
	 * nothing when they finish; the answer waits for the last of them. */
	w->itt = bhs->itt;
	w->response = rsp;
	if (w->pending)
		return;
	free(w);
	send_tmf_rsp(c, bhs->itt, rsp);
}

/* Dispatch */

static void session_dispatch(struct conn *c, const struct pdu *p)
{
	const struct pdu_bhs *bhs = &p->bhs;

	if (c->phase == CONN_LOGOUT)
		return; /* RFC 7143 §11.14: nothing more after a Logout */
	switch (bhs->opcode) {
	case PDU_OP_SCSI_CMD:
		handle_scsi_cmd(c, p);
		break;
	case PDU_OP_DATA_OUT:
		handle_data_out(c, p);
		break;
	case PDU_OP_NOP_OUT:
		handle_nop_out(c, p);
		break;
	case PDU_OP_TEXT_REQ:
		handle_text(c, p);
		break;
	case PDU_OP_LOGOUT_REQ:
		handle_logout(c, p);
		break;
	case PDU_OP_TMF_REQ:
		handle_tmf(c, p);
		break;
	case PDU_OP_SNACK:
		send_reject(c, bhs, REJECT_SNACK); /* ERL 0 */
		break;
	default:
		send_reject(c, bhs, REJECT_NOT_SUPPORTED);
		break;
	}
}

/* Held PDUs (RFC 7143 §3.2.2.1: commands are delivered in CmdSN order) */

struct held_pdu {
	struct held_pdu *next;
	bool aborted;  /* by ABORT TASK: its CmdSN counts, nothing runs */
	bool has_ctrl; /* iSER: its header's STags, in ctrl */
	uint32_t size; /* of buf[] */
	struct iser_hdr_ctrl ctrl;
	struct pdu pdu;
	uint8_t buf[]; /* the extended CDB, then the data segment */
};

static bool has_cmd_sn(uint8_t opcode)
{
	return opcode == PDU_OP_SCSI_CMD || opcode == PDU_OP_NOP_OUT || opcode == PDU_OP_TEXT_REQ ||
	       opcode == PDU_OP_LOGOUT_REQ || opcode == PDU_OP_TMF_REQ;
}

static struct held_pdu *held_cmd(struct conn *c, uint32_t itt)
{
	struct held_pdu *h;

	for (h = c->held; h; h = h->next)
		if (h->pdu.bhs.opcode == PDU_OP_SCSI_CMD && h->pdu.bhs.itt == itt)
			return h;
	return NULL;
}

/* ABORT TASK of a held command (RFC 7143 §11.5.1): with its Data-Out. */
static bool held_abort(struct conn *c, uint32_t itt)
{
	struct held_pdu *h;
	struct conn *oc;

	for (oc = c->tgt->conns; oc; oc = oc->next)
		if (oc->session == c->session && held_cmd(oc, itt))
			break;
	if (!oc)
		return false;
	for (h = oc->held; h; h = h->next)
		if (h->pdu.bhs.itt == itt)
			h->aborted = true;
	return true;
}

/* A non-immediate command of the window after the next one: it came on
 * this connection before the one before it came on another. Data-Out for
 * a held command waits behind it. */
static bool must_hold(struct conn *c, const struct pdu_bhs *bhs)
{
	struct session *s = c->session;

	if (bhs->opcode == PDU_OP_DATA_OUT)
		return held_cmd(c, bhs->itt) != NULL;
	return has_cmd_sn(bhs->opcode) && !bhs->immediate && bhs->cmd_sn != s->exp_cmd_sn &&
	       pdu_sn_in_window(bhs->cmd_sn, s->exp_cmd_sn, s->max_cmd_sn);
}

static void hold(struct conn *c, const struct pdu *p)
{
	uint32_t ext = p->ahs.ext_cdb ? p->ahs.ext_cdb_len : 0, len = p->bhs.data_len;
	struct held_pdu *h;

	if (c->held_bytes + ext + len > HELD_MAX) {
		conn_close(c, "too much held for CmdSN order");
		return;
	}
	h = malloc(sizeof(*h) + ext + len);
	if (!h) {
		conn_close(c, "out of memory");
		return;
	}
	h->next = NULL;
	h->aborted = false;
	/* A command's STags come with it, not with the PDU that releases it. */
	h->has_ctrl = c->rx_ctrl != NULL;
	if (c->rx_ctrl)
		h->ctrl = *c->rx_ctrl;
	h->size = ext + len;
	h->pdu = *p;
	if (ext) {
		memcpy(h->buf, p->ahs.ext_cdb, ext);
		h->pdu.ahs.ext_cdb = h->buf;
	}
	if (len) {
		memcpy(h->buf + ext, p->data, len);
		h->pdu.data = h->buf + ext;
	}
	if (p->bhs.opcode == PDU_OP_DATA_OUT)
		h->aborted = held_cmd(c, p->bhs.itt)->aborted;
	c->held_bytes += h->size;
	c->session->nheld++;
	if (c->held_last)
		c->held_last->next = h;
	else
		c->held = h;
	c->held_last = h;
}

/* Deliver what is held and now in order: a command whose CmdSN came up,
 * with the Data-Out behind it, on any connection of the session. */
static void session_release_held(struct session *s, struct tgt *t)
{
	struct conn *oc;
	struct held_pdu *h;
	bool progress = true;

	if (s->releasing)
		return;
	s->releasing = true;
	while (progress) {
		progress = false;
		for (oc = t->conns; oc; oc = oc->next) {
			while (oc->session == s && (h = oc->held) && oc->phase == CONN_FFP &&
			       (h->pdu.bhs.opcode == PDU_OP_DATA_OUT ||
				h->pdu.bhs.cmd_sn == s->exp_cmd_sn ||
				!pdu_sn_in_window(h->pdu.bhs.cmd_sn, s->exp_cmd_sn,
						  s->max_cmd_sn))) {
				oc->held = h->next;
				if (!oc->held)
					oc->held_last = NULL;
				oc->held_bytes -= h->size;
				s->nheld--;
				if (!h->aborted) {
					const struct iser_hdr_ctrl *was = oc->rx_ctrl;

					oc->rx_ctrl = h->has_ctrl ? &h->ctrl : NULL;
					session_dispatch(oc, &h->pdu);
					oc->rx_ctrl = was;
				} else if (h->pdu.bhs.opcode == PDU_OP_SCSI_CMD)
					cmd_sn_accept(s, &h->pdu.bhs);
				free(h);
				progress = true;
			}
		}
	}
	s->releasing = false;
}

static void held_free(struct conn *c)
{
	struct held_pdu *h;

	while ((h = c->held)) {
		c->held = h->next;
		c->session->nheld--;
		free(h);
	}
	c->held_last = NULL;
	c->held_bytes = 0;
}

void session_handle(struct conn *c, const struct pdu *p)
{
	struct session *s = c->session;

	c->exp_stat_sn = p->bhs.exp_stat_sn;
	if (c->phase == CONN_FFP && must_hold(c, &p->bhs)) {
		hold(c, p);
		return;
	}
	session_dispatch(c, p);
	if (s && s->nheld)
		session_release_held(s, c->tgt);
}
