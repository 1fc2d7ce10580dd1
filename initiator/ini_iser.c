/*
 * ini_iser: the initiator's connection over iSER (RFC 7145, DESIGN §5):
 * the RDMA device of the session, kept with its registered buffers across
 * reconnects, and the iser_conn that replaces the TCP stream. Commands'
 * data moves by the target's RDMA READ and WRITE from and to a registered
 * buffer of each command (ini_cmd.xbuf, from common/rbuf).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/rbuf.h"
#include "common/rdma.h"
#include "common/xport/iser.h"
#include "ini_priv.h"

#define sess_of(ptr, member) \
	((struct ini_session *)((char *)(ptr)-offsetof(struct ini_session, member)))

static bool current(const struct iser_conn *ic)
{
	struct ini_session *sess = iser_conn_ctx(ic);

	return sess->conn.iser == ic;
}

static void cb_recv(struct iser_conn *ic, const struct pdu *p, const struct iser_hdr_ctrl *ctrl)
{
	(void)ctrl;
	if (current(ic))
		conn_rx_pdu(iser_conn_ctx(ic), p);
}

static void cb_done(struct iser_conn *ic, void *ref, int err)
{
	(void)ic, (void)ref, (void)err; /* nothing is posted with a ref */
}

static void cb_up(struct iser_conn *ic)
{
	struct ini_session *sess = iser_conn_ctx(ic);

	if (!current(ic))
		return;
	sess->conn.state = CONN_LOGIN;
	sess->conn.last_rx_ns = sched_now(sess->sched);
	sess_connected(sess);
}

static void cb_down(struct iser_conn *ic, int err, const char *why)
{
	struct ini_session *sess = iser_conn_ctx(ic);
	char buf[96];

	if (!current(ic))
		return;
	if (err == -ECONNREFUSED && sess->conn.state == CONN_CONNECTING)
		snprintf(buf, sizeof(buf), "iSER connection refused");
	else if (err == -ETIMEDOUT && sess->conn.state == CONN_CONNECTING)
		snprintf(buf, sizeof(buf),
			 "no iSER answer (an iSCSI/TCP portal, not an iSER one, stays silent)");
	else if (err && err != -ECONNRESET)
		snprintf(buf, sizeof(buf), "%s (%s)", why, strerror(-err));
	else
		snprintf(buf, sizeof(buf), "connection closed by the target");
	sess_conn_lost(sess, err ? err : -ECONNRESET, buf);
}

static const struct iser_conn_cb ini_iser_cb = {
	.recv = cb_recv,
	.done = cb_done,
	.up = cb_up,
	.down = cb_down,
};

static void rdma_events(struct sched_fd *sfd, uint32_t events)
{
	struct ini_session *sess = sess_of(sfd, conn.rdma_sfd);
	struct rdma_event ev;
	struct iser_conn *ic;

	(void)events;
	while (sess->conn.rdma && !rdma_get_event(sess->conn.rdma, &ev)) {
		if (ev.type == RDMA_EV_CONNECT_REQUEST) {
			rdma_conn_destroy(ev.conn); /* we listen nowhere */
			continue;
		}
		ic = iser_conn_of(&ev);
		if (ic)
			iser_conn_event(ic, &ev);
	}
}

static void reap_ev(struct sched_event *ev)
{
	struct ini_session *sess = sess_of(ev, conn.reap_ev);

	iser_conn_destroy(sess->conn.dead);
	sess->conn.dead = NULL;
}

void conn_iser_init(struct ini_session *sess)
{
	sched_event_init(&sess->conn.reap_ev, reap_ev);
}

/* The device, once per session: on verbs, the one that reaches the target
 * at @sa; "auto" says in the log when it is soft. */
static int dev_open(struct ini_session *sess, const struct sockaddr *sa)
{
	struct ini_conn *c = &sess->conn;
	const char *name = sess->o.fabric ? sess->o.fabric : "auto";
	int err;

	/* Like siw (mpa_crc_required=0), soft does not ask for MPA CRC
	 * unless told: TCP's checksum is what iSCSI/TCP without digests
	 * has too. A peer that asks gets it (RFC 5044 §7.1). */
	struct rdma_dev_opts dopts = {.no_crc = !sess->o.mpa_crc, .route_to = sa};

	err = rdma_dev_create(sess->sched, name, &dopts, &c->rdma);
	if (err) {
		sess_error(sess, "RDMA provider '%s': %s", name,
			   err == -ENOENT   ? "not built in (rdma-core missing at build time)"
			   : err == -ENODEV ? "no RDMA device"
					    : strerror(-err));
		return err;
	}
	err = rdma_pd_create(c->rdma, &c->pd);
	if (!err)
		err = rbuf_pool_create(c->pd, RDMA_ACCESS_REMOTE_READ | RDMA_ACCESS_REMOTE_WRITE,
				       &c->pool);
	if (!err)
		err = sched_fd_add(sess->sched, &c->rdma_sfd, rdma_event_fd(c->rdma), EPOLLIN,
				   rdma_events);
	if (err) {
		sess_error(sess, "RDMA set-up: %s", strerror(-err));
		rbuf_pool_destroy(c->pool);
		rdma_pd_destroy(c->pd);
		rdma_dev_destroy(c->rdma);
		c->pool = NULL;
		c->pd = NULL;
		c->rdma = NULL;
	}
	return err;
}

/* Connect; cb_up() or cb_down() follows. */
int conn_iser_open(struct ini_session *sess, const struct sockaddr *sa, socklen_t salen)
{
	struct ini_conn *c = &sess->conn;
	struct iser_conn_attr a = {
		.rx_depth = sess->o.queue_depth + INI_ISER_UNEXPECTED, /* + responses */
		.tx_depth = sess->o.queue_depth + 16,
		.recv_dsl = ISER_DEFAULT_DSL,
		.send_dsl = ISER_DEFAULT_DSL,
		.arm_delay = sess->o.arm_delay < 0 ? ISER_ARM_DELAY_DEFAULT
						   : (unsigned int)sess->o.arm_delay,
	};
	int err;

	if (!c->rdma && (err = dev_open(sess, sa)))
		return err;
	err = iser_conn_create(sess->sched, c->rdma, c->pd, &a, &ini_iser_cb, sess, &c->iser);
	if (!err) {
		err = iser_conn_connect(c->iser, sa, salen);
		if (err) {
			iser_conn_destroy(c->iser);
			c->iser = NULL;
		}
	}
	if (err) {
		sess_error(sess, "iSER connect: %s", strerror(-err));
		return err;
	}
	c->max_send_dsl = ISER_DEFAULT_DSL; /* RFC 7143 §13.12, during login */
	c->state = CONN_CONNECTING;
	return 0;
}

/* Disconnect; the connection is destroyed from an event, outside any of
 * its callbacks. */
void conn_iser_shut(struct ini_session *sess)
{
	struct ini_conn *c = &sess->conn;

	if (!c->iser)
		return;
	iser_conn_disconnect(c->iser);
	iser_conn_destroy(c->dead); /* an older one, not in a callback now */
	c->dead = c->iser;
	c->iser = NULL;
	sched_schedule(sess->sched, &c->reap_ev);
}

int conn_iser_send(struct ini_session *sess, struct pdu_bhs *bhs, const struct iser_hdr_ctrl *ctrl,
		   const void *data, uint32_t len)
{
	int err = iser_conn_send(sess->conn.iser, bhs, ctrl, data, len, NULL);

	if (!err)
		sess->st.tx_pdus++;
	return err;
}

/* The session ends: everything, after every command completed. */
void conn_fini(struct ini_session *sess)
{
	struct ini_conn *c = &sess->conn;

	conn_iser_shut(sess);
	sched_cancel(sess->sched, &c->reap_ev);
	iser_conn_destroy(c->dead);
	c->dead = NULL;
	if (c->rdma)
		sched_fd_del(sess->sched, &c->rdma_sfd);
	rbuf_pool_destroy(c->pool);
	rdma_pd_destroy(c->pd);
	rdma_dev_destroy(c->rdma);
	c->pool = NULL;
	c->pd = NULL;
	c->rdma = NULL;
}

const char *ini_session_transport(const struct ini_session *sess)
{
	if (!sess->o.iser)
		return "tcp";
	return sess->conn.rdma ? rdma_dev_provider(sess->conn.rdma) : "iser";
}

struct rbuf *ini_buf_get(struct ini_session *sess, size_t len)
{
	struct rbuf *b;

	if (!sess->o.iser || !sess->conn.pool || rbuf_get(sess->conn.pool, len, &b))
		return NULL;
	return b;
}

struct rbuf *ini_buf_wrap(struct ini_session *sess, void *addr, size_t len)
{
	struct rbuf *b;

	if (!sess->o.iser || !sess->conn.pool || rbuf_wrap(sess->conn.pool, addr, len, &b))
		return NULL;
	return b;
}

void ini_buf_put(struct rbuf *b)
{
	rbuf_put(b);
}
