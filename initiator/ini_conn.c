/*
 * ini_conn: the initiator's iSCSI/TCP connection: a non-blocking connect,
 * PDU framing out of the byte stream (RFC 7143 §11) with digests (§13.1),
 * and a send queue written with one writev per scheduler pass. The socket
 * is a completion source of the budgeted poller (DESIGN §4) in edge mode:
 * EPOLLIN|EPOLLET, each poll reads until EAGAIN, no re-arm needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/xport/iser.h"
#include "ini_priv.h"

#define sess_of(ptr, member) \
	((struct ini_session *)((char *)(ptr)-offsetof(struct ini_session, member)))

static void conn_writable(struct sched_fd *sfd, uint32_t events);

/* Watch the send side (wfd) for EPOLLOUT, or stop watching it. */
static int conn_watch_out(struct ini_session *sess, bool on)
{
	struct ini_conn *c = &sess->conn;

	if (on == c->tx_blocked)
		return 0;
	c->tx_blocked = on;
	if (on)
		return sched_fd_add(sess->sched, &c->wsfd, c->wfd, EPOLLOUT, conn_writable);
	return sched_fd_del(sess->sched, &c->wsfd);
}

/* Send */

static void conn_flush(struct ini_session *sess)
{
	int err = tcp_flush(&sess->conn.tcp);

	if (err == -EAGAIN) {
		conn_watch_out(sess, true);
		return;
	}
	if (err) {
		sess_conn_lost(sess, err, strerror(-err));
		return;
	}
	conn_watch_out(sess, false);
}

static void conn_flush_ev(struct sched_event *ev)
{
	struct ini_session *sess = sess_of(ev, conn.tx_ev);

	if (sess->conn.state >= CONN_LOGIN)
		conn_flush(sess);
}

/*
 * Queue a PDU; @data (@len bytes) stays valid until sent: @owned (freed
 * then) or a command's buffer (commands outlive their PDUs: a command
 * completes only on a response, which follows its last Data-Out). One
 * flush per scheduler pass writes everything queued.
 */
int conn_send(struct ini_session *sess, struct pdu_bhs *bhs, const void *data, uint32_t len,
	      void *owned)
{
	struct ini_conn *c = &sess->conn;
	int err;

	if (c->state < CONN_LOGIN) {
		free(owned);
		return -ENOTCONN;
	}
	if (c->iser) {
		err = conn_iser_send(sess, bhs, NULL, data, len);
		free(owned);
		return err;
	}
	err = tcp_send(&c->tcp, bhs, data, len, owned, NULL);
	if (err)
		return err;
	sess->st.tx_pdus++;
	if (!c->tx_blocked)
		sched_schedule(sess->sched, &c->tx_ev);
	return 0;
}

/* A SCSI Command with the iSER header's STags (@ctrl; NULL over TCP). */
int conn_send_cmd(struct ini_session *sess, struct pdu_bhs *bhs, const struct iser_hdr_ctrl *ctrl,
		  const void *data, uint32_t len)
{
	if (sess->conn.iser && sess->conn.state >= CONN_LOGIN)
		return conn_iser_send(sess, bhs, ctrl, data, len);
	return conn_send(sess, bhs, data, len, NULL);
}

/* Receive */

/* One PDU from the target, over either transport. */
void conn_rx_pdu(struct ini_session *sess, const struct pdu *p)
{
	sess->st.rx_pdus++;
	sess->conn.last_rx_ns = sched_now(sess->sched);
	if (sess->conn.state == CONN_LOGIN)
		login_rsp(sess, p);
	else
		sess_pdu(sess, p);
}

static const char *rx_error(int err)
{
	switch (err) {
	case -ECONNRESET:
		return "connection closed by the target";
	case -EBADMSG:
		return "header digest error";
	case -EILSEQ:
		/* At ErrorRecoveryLevel 0 a lost data segment cannot be
		 * asked for again (RFC 7143 §7.8): reissue on a new one. */
		return "data digest error";
	case -ENOMEM:
		return "out of memory";
	default:
		return err == -EPROTO || err == -E2BIG || err == -EMSGSIZE || err == -EOVERFLOW
			       ? "malformed PDU from the target"
			       : strerror(-err);
	}
}

static int conn_poll(struct poller *pl, int budget)
{
	struct ini_session *sess = sess_of(pl, conn.poller);
	struct ini_conn *c = &sess->conn;
	enum conn_state state = c->state;
	struct pdu p;
	int n = 0, r;

	while (n < budget) {
		r = tcp_recv(&c->tcp, &p);
		if (r < 0) {
			sess_conn_lost(sess, r, rx_error(r));
			return n;
		}
		if (r == 0)
			return n;
		n++;
		conn_rx_pdu(sess, &p);
		/* The handler may have closed the connection (the poller is
		 * off then) or ended login: poll again, the socket may hold
		 * more and its edge is spent (edge mode, poller.h). */
		if (c->state != state)
			return budget;
	}
	return n;
}

/* Edge mode (poller_set_edge()): the poller never arms this source. */
static int conn_arm(struct poller *pl)
{
	(void)pl;
	return -EOPNOTSUPP;
}

static int conn_ack(struct poller *pl)
{
	(void)pl;
	return 1;
}

static const struct poller_ops conn_poller_ops = {
	.poll = conn_poll,
	.arm = conn_arm,
	.ack = conn_ack,
};

/* Connect */

static void conn_established(struct ini_session *sess)
{
	struct ini_conn *c = &sess->conn;
	int one = 1, err;

	conn_watch_out(sess, false);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = CONN_LOGIN;
	c->last_rx_ns = sched_now(sess->sched);
	poller_init(&c->poller, sess->sched, &conn_poller_ops, c->fd, POLLER_DEFAULT_WEIGHT);
	poller_set_edge(&c->poller);
	err = poller_enable(&c->poller);
	if (err) {
		sess_conn_lost(sess, err, "cannot watch the socket");
		return;
	}
	sess_connected(sess);
}

static void conn_writable(struct sched_fd *sfd, uint32_t events)
{
	struct ini_session *sess = sess_of(sfd, conn.wsfd);
	struct ini_conn *c = &sess->conn;
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (c->state != CONN_CONNECTING) {
		conn_flush(sess);
		return;
	}
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr) {
		sess_conn_lost(sess, -soerr, strerror(soerr));
		return;
	}
	(void)events;
	conn_established(sess);
}

static int conn_socket(struct ini_session *sess, const struct addrinfo *ai)
{
	struct ini_conn *c = &sess->conn;
	int fd;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	c->wfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (c->wfd < 0) {
		close(fd);
		return -EMFILE;
	}
	c->fd = fd;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	return errno == EINPROGRESS ? -EINPROGRESS : -errno;
}

/* A large Data-In goes straight into its command's buffer (sess_place()). */
static void *conn_place(struct tcp_stream *s, const struct pdu *p)
{
	struct ini_session *sess = sess_of(s, conn.tcp);

	return sess->conn.state == CONN_FFP ? sess_place(sess, p) : NULL;
}

/*
 * Start connecting to the session's portal. Returns 0 (the connection
 * will call sess_connected() or sess_conn_lost()), or -errno at once:
 * -ENOENT for a host name that does not resolve.
 */
int conn_open(struct ini_session *sess)
{
	struct ini_conn *c = &sess->conn;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	char port[8];
	int err;

	snprintf(port, sizeof(port), "%u", sess->o.port);
	err = getaddrinfo(sess->host, port, &hints, &res);
	if (err) {
		sess_error(sess, "%s: %s", sess->host, gai_strerror(err));
		return -ENOENT;
	}
	if (sess->o.iser) {
		err = conn_iser_open(sess, res->ai_addr, res->ai_addrlen);
		freeaddrinfo(res);
		return err;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		err = conn_socket(sess, ai);
		if (err == 0 || err == -EINPROGRESS)
			break;
		conn_shut(sess);
	}
	freeaddrinfo(res);
	if (err && err != -EINPROGRESS) {
		sess_error(sess, "connect: %s", strerror(-err));
		return err;
	}
	c->max_send_dsl = INI_LOGIN_DSL;
	if (tcp_stream_init(&c->tcp, c->fd, NULL)) {
		conn_shut(sess);
		return -ENOMEM;
	}
	c->tcp.max_recv_dsl = INI_MAX_RECV_DSL;
	c->tcp.place = conn_place;
	if (!err) {
		conn_established(sess);
		return 0;
	}
	c->state = CONN_CONNECTING;
	return conn_watch_out(sess, true);
}

void conn_init(struct ini_session *sess)
{
	sess->conn.fd = sess->conn.wfd = -1;
	sched_event_init(&sess->conn.tx_ev, conn_flush_ev);
	conn_iser_init(sess);
}

/* Close the socket and drop what was queued to send. Idempotent. */
void conn_shut(struct ini_session *sess)
{
	struct ini_conn *c = &sess->conn;

	if (c->iser) {
		conn_iser_shut(sess);
		c->ping_sent_ns = 0;
		c->state = CONN_IDLE;
		return;
	}
	if (c->state >= CONN_LOGIN)
		poller_disable(&c->poller);
	conn_watch_out(sess, false);
	sched_cancel(sess->sched, &c->tx_ev);
	if (c->state != CONN_IDLE)
		tcp_stream_fini(&c->tcp);
	if (c->wfd >= 0)
		close(c->wfd);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = c->wfd = -1;
	c->ping_sent_ns = 0;
	c->state = CONN_IDLE;
}

/* The limits of the full feature phase, once login has agreed them. */
void conn_set_ffp(struct ini_session *sess)
{
	struct ini_conn *c = &sess->conn;
	const struct text_params *r = &sess->login.neg.result;

	c->state = CONN_FFP;
	if (c->iser) {
		/* RFC 7145 §6.4: TargetRecvDataSegmentLength bounds what we
		 * send; our send buffers bound it too. */
		c->max_send_dsl = text_max_send_dsl(&sess->login.neg);
		if (!c->max_send_dsl || c->max_send_dsl > ISER_DEFAULT_DSL)
			c->max_send_dsl = ISER_DEFAULT_DSL;
		return;
	}
	c->tcp.digests = (r->header_digest == TEXT_DIGEST_CRC32C ? PDU_HDIGEST : 0) |
			 (r->data_digest == TEXT_DIGEST_CRC32C ? PDU_DDIGEST : 0);
	c->max_send_dsl = text_max_send_dsl(&sess->login.neg);
	if (!c->max_send_dsl)
		c->max_send_dsl = INI_LOGIN_DSL;
}

const struct poller *conn_poller(const struct ini_session *sess)
{
	if (sess->o.iser)
		return sess->conn.iser ? iser_conn_poller(sess->conn.iser) : NULL;
	return &sess->conn.poller;
}
