/*
 * iser: the target's iSER side (RFC 7145, DESIGN §5): the RDMA device and
 * its connection events, the registered task buffers, the listeners, and
 * for a portal on the soft provider the one-port split: a connection that
 * opens with an MPA Request is iWARP and goes to iSER, anything else is
 * iSCSI/TCP.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/iwarp.h"
#include "common/log.h"
#include "common/rbuf.h"
#include "common/rdma.h"
#include "common/xport/iser.h"
#include "config.h"
#include "tgt.h"

#define ISER_RX_DEPTH 512 /* commands in the window, immediate PDUs, NOPs */
#define ISER_TX_DEPTH 256
#define SNIFF_TIMEOUT_NS (10ull * 1000000000)

/* Connections */

static void cb_recv(struct iser_conn *ic, const struct pdu *p, const struct iser_hdr_ctrl *ctrl)
{
	conn_iser_recv(iser_conn_ctx(ic), p, ctrl);
}

static void cb_done(struct iser_conn *ic, void *ref, int err)
{
	conn_iser_done(iser_conn_ctx(ic), ref, err);
}

static void cb_up(struct iser_conn *ic)
{
	struct conn *c = iser_conn_ctx(ic);

	log_debug("iSER connection %s established", c->peer);
}

static void cb_down(struct iser_conn *ic, int err, const char *why)
{
	struct conn *c = iser_conn_ctx(ic);
	char buf[96];

	if (c->lingering)
		snprintf(buf, sizeof(buf), "logged out");
	else if (err && err != -ECONNRESET)
		snprintf(buf, sizeof(buf), "%s (%s)", why, strerror(-err));
	else
		snprintf(buf, sizeof(buf), "closed by the initiator");
	conn_close(c, buf);
}

static const struct iser_conn_cb tgt_iser_cb = {
	.recv = cb_recv,
	.done = cb_done,
	.up = cb_up,
	.down = cb_down,
};

static void connect_request(struct tgt *t, const struct rdma_event *ev)
{
	struct iser_conn_attr a = {
		.rx_depth = ISER_RX_DEPTH,
		.tx_depth = ISER_TX_DEPTH,
		.recv_dsl = ISER_DEFAULT_DSL,
		.send_dsl = ISER_DEFAULT_DSL,
		.arm_delay = t->cfg->arm_delay,
	};
	struct iser_conn *ic;
	struct conn *c;
	char peer[64];
	int err;

	++t->rdma.next_id;
	if (ev->peer.ss_family == AF_UNSPEC)
		snprintf(peer, sizeof(peer), "iser#%u", t->rdma.next_id);
	else
		conn_peer_name((const struct sockaddr *)&ev->peer, peer, sizeof(peer));
	if (t->stopping || conn_create_iser(t, peer, &c)) {
		rdma_conn_reject(ev->conn, NULL, 0);
		rdma_conn_destroy(ev->conn);
		return;
	}
	err = iser_conn_create(t->sched, t->rdma.dev, t->rdma.pd, &a, &tgt_iser_cb, c, &ic);
	if (err) {
		rdma_conn_reject(ev->conn, NULL, 0);
		rdma_conn_destroy(ev->conn);
		conn_close(c, strerror(-err));
		return;
	}
	c->iser = ic;
	err = iser_conn_accept(ic, ev->conn, ev);
	if (err)
		conn_close(c, err == -EPROTO
				      ? "no iSER CM header, or zero-based addresses asked for"
				      : strerror(-err));
}

static void rdma_events(struct sched_fd *sfd, uint32_t events)
{
	struct tgt *t = (struct tgt *)((char *)sfd - offsetof(struct tgt, rdma.sfd));
	struct rdma_event ev;
	struct iser_conn *ic;

	(void)events;
	while (!rdma_get_event(t->rdma.dev, &ev)) {
		if (ev.type == RDMA_EV_CONNECT_REQUEST) {
			connect_request(t, &ev);
			continue;
		}
		ic = iser_conn_of(&ev);
		if (ic)
			iser_conn_event(ic, &ev);
	}
}

/* The device */

static const char *fabric_name(enum config_fabric f)
{
	return f == CONFIG_FABRIC_VERBS ? "verbs" : f == CONFIG_FABRIC_SOFT ? "soft" : "auto";
}

/* A wildcard address reaches no device in particular. */
static bool wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* On verbs, the device is the one of the first iSER portal's address @sa
 * (the first device for a wildcard): every iSER portal must be on it. */
int tgt_rdma_open(struct tgt *t, const struct sockaddr *sa, char *err, size_t errlen)
{
	struct tgt_rdma *r = &t->rdma;
	struct rdma_dev_opts opts = {.route_to = wildcard(sa) ? NULL : sa};
	int ret;

	ret = rdma_dev_create(t->sched, fabric_name(t->cfg->fabric), &opts, &r->dev);
	if (ret) {
		snprintf(err, errlen, "RDMA provider '%s': %s", fabric_name(t->cfg->fabric),
			 ret == -ENOENT	  ? "not built in (rdma-core missing at build time)"
			 : ret == -ENODEV ? "no RDMA device"
					  : strerror(-ret));
		return ret;
	}
	if (t->cfg->fabric == CONFIG_FABRIC_AUTO)
		log_info("fabric auto: using the %s RDMA provider%s", rdma_dev_provider(r->dev),
			 strcmp(rdma_dev_provider(r->dev), "soft") ? ""
								   : " (no RDMA device found)");
	ret = rdma_pd_create(r->dev, &r->pd);
	if (!ret)
		ret = rbuf_pool_create(r->pd, RDMA_ACCESS_REMOTE_READ | RDMA_ACCESS_REMOTE_WRITE,
				       &r->pool);
	if (!ret && !strcmp(rdma_dev_provider(r->dev), "soft"))
		ret = rdma_listener_create(r->dev, NULL, 0, 0, t, &r->adopt);
	if (!ret)
		ret = sched_fd_add(t->sched, &r->sfd, rdma_event_fd(r->dev), EPOLLIN, rdma_events);
	if (ret) {
		snprintf(err, errlen, "RDMA set-up: %s", strerror(-ret));
		tgt_rdma_close(t);
	}
	return ret;
}

void tgt_rdma_close(struct tgt *t)
{
	struct tgt_rdma *r = &t->rdma;

	if (!r->dev)
		return;
	sched_fd_del(t->sched, &r->sfd);
	rdma_listener_destroy(r->adopt);
	rbuf_pool_destroy(r->pool);
	rdma_pd_destroy(r->pd);
	rdma_dev_destroy(r->dev);
	memset(r, 0, sizeof(*r));
}

/* An iSER portal: on soft, the portal's own socket (see sniff below); on
 * verbs, an RDMA CM listener. */
int tgt_rdma_listen(struct tgt *t, struct tgt_portal *p, const struct sockaddr *sa, socklen_t salen)
{
	if (t->rdma.adopt) {
		p->mpa = true;
		return 1; /* the caller opens the TCP socket */
	}
	return rdma_listener_create(t->rdma.dev, sa, salen, 128, p, &p->rl);
}

/* The one-port split (DESIGN §5): peek at the first bytes. */

struct sniff {
	struct sched_fd sfd;
	struct sched_timer timer;
	struct tgt_portal *p;
	int fd;
	struct sockaddr_storage peer;
	socklen_t peerlen;
};

static void sniff_end(struct sniff *sn, bool close_fd)
{
	struct sched *s = sn->p->tgt->sched;

	sched_fd_del(s, &sn->sfd);
	sched_timer_cancel(s, &sn->timer);
	if (close_fd)
		close(sn->fd);
	free(sn);
}

static void sniff_readable(struct sched_fd *sfd, uint32_t events)
{
	struct sniff *sn = (struct sniff *)sfd;
	struct tgt *t = sn->p->tgt;
	uint8_t buf[IWARP_MPA_KEY_LEN];
	ssize_t n;
	int fd = sn->fd, mpa;

	(void)events;
	n = recv(fd, buf, sizeof(buf), MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || t->stopping) {
		sniff_end(sn, true);
		return;
	}
	mpa = iwarp_mpa_is_request(buf, (size_t)n);
	if (mpa == -ENODATA)
		return; /* edge-triggered: more bytes raise a new edge */
	if (mpa == 1) {
		const char *name = sn->p->name;

		sniff_end(sn, false);
		if (rdma_listener_adopt(t->rdma.adopt, fd, NULL, 0))
			log_warn("portal %s: cannot take an iWARP connection", name);
		return;
	}
	/* iSCSI/TCP: the connection watches the fd from now on. */
	{
		struct sockaddr_storage peer = sn->peer;
		socklen_t plen = sn->peerlen;

		sniff_end(sn, false);
		if (conn_create(t, fd, (struct sockaddr *)&peer, plen))
			close(fd);
	}
}

static void sniff_timeout(struct sched_timer *tm)
{
	struct sniff *sn = (struct sniff *)((char *)tm - offsetof(struct sniff, timer));

	sniff_end(sn, true);
}

void tgt_rdma_sniff(struct tgt_portal *p, int fd, const struct sockaddr *peer, socklen_t len)
{
	struct sched *s = p->tgt->sched;
	struct sniff *sn = calloc(1, sizeof(*sn));

	if (!sn || len > sizeof(sn->peer)) {
		free(sn);
		close(fd);
		return;
	}
	sn->p = p;
	sn->fd = fd;
	memcpy(&sn->peer, peer, len);
	sn->peerlen = len;
	if (sched_fd_add(s, &sn->sfd, fd, EPOLLIN | EPOLLET, sniff_readable)) {
		free(sn);
		close(fd);
		return;
	}
	sched_timer_init(&sn->timer, sniff_timeout);
	sched_timer_arm(s, &sn->timer, sched_now(s) + SNIFF_TIMEOUT_NS);
}

/* RFC 7145 §6.7: the unexpected PDUs an initiator may have outstanding;
 * half the receives, the rest for the immediate PDUs around them. */
unsigned int conn_iser_max_unexpected(void)
{
	return ISER_RX_DEPTH / 2;
}

/* Data movement for the session: RFC 7145 §7.3.3, §7.3.5 */

int conn_rdma_read(struct conn *c, struct task *task)
{
	uint32_t off = task->r2t_offset, len = task->edtl - off;
	int err;

	if (!task->wsv) {
		conn_close(c, "a write with solicited data but no Write STag");
		return -EPROTO;
	}
	/* Linux's ib_iser advertises the address of the first byte it did
	 * not send unsolicited; isert and tgt read from there, as we do. */
	err = iser_conn_rdma_read(c->iser, task->rb, off, len, task->write_stag,
				  task->write_va + (off - task->unsolicited), task);
	if (err) {
		conn_close(c, strerror(-err));
		return err;
	}
	task->r2t_offset = task->edtl;
	task->rdma_reading = true;
	c->nexec++; /* holds the connection, as the SCSI layer does */
	return 0;
}

int conn_rdma_write(struct conn *c, struct task *task)
{
	const struct scsi_cmd *cmd = &task->cmd;
	int err;

	if (!task->rsv) {
		conn_close(c, "a read with no Read STag");
		return -EPROTO;
	}
	err = iser_conn_rdma_write(c->iser, task->rb, 0, cmd->data_len, task->read_stag,
				   task->read_va, NULL);
	if (err)
		conn_close(c, strerror(-err));
	return err;
}

int task_buf_alloc(struct conn *c, struct task *task)
{
	int err;

	if (!c->iser) {
		task->cmd.buf = malloc(task->edtl);
		return task->cmd.buf ? 0 : -ENOMEM;
	}
	err = rbuf_get(c->tgt->rdma.pool, task->edtl, &task->rb);
	if (!err)
		task->cmd.buf = task->rb->addr;
	return err;
}

/*
 * A write over iSER whose data all came with the command: its buffer is
 * the receive the data is in, kept until the task ends, so that the disk
 * write takes it from where the wire put it (no copy; isert does the
 * same). Not for a PDU held back for its CmdSN, which was copied.
 */
bool task_buf_in_place(struct conn *c, struct task *task, const uint8_t *data)
{
	int h = c->iser ? iser_conn_rx_hold(c->iser, data) : -1;

	if (h < 0)
		return false;
	task->rx_kept = h + 1;
	task->cmd.buf = (uint8_t *)data; /* ours until released */
	return true;
}

void task_buf_free(struct task *task)
{
	if (task->rx_kept) {
		/* Gone: the receive buffers went with the iSER connection. */
		if (task->conn->phase != CONN_GONE)
			iser_conn_rx_release(task->conn->iser, task->rx_kept - 1);
		task->rx_kept = 0;
	} else if (task->rb) {
		rbuf_put(task->rb);
	} else {
		free(task->cmd.buf);
	}
	task->rb = NULL;
	task->cmd.buf = NULL;
}
