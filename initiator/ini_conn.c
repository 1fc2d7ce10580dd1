/*
 * ini_conn: the initiator's iSCSI/TCP connection: a non-blocking connect,
 * PDU framing out of the byte stream (RFC 7143 §11) with digests (§13.1),
 * and a send queue written with one writev per scheduler pass. The socket
 * is a completion source of the budgeted poller (DESIGN §4): its
 * notification is EPOLLIN with EPOLLONESHOT, re-armed by the poller.
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
#include <sys/uio.h>
#include <unistd.h>

#include "digest.h"
#include "ini_priv.h"

#define TX_IOV 64
#define RX_MIN_CAP (128 * 1024)
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

static int tx_gather(struct ini_conn *c, struct iovec *iov)
{
	struct ini_tx *tx;
	int n = 0;

	for (tx = c->tx_head; tx && n <= TX_IOV - 3; tx = tx->next) {
		const uint8_t *part[3] = {tx->hdr, tx->data, tx->trail};
		uint32_t len[3] = {tx->hdr_len, tx->data_len, tx->trail_len};
		uint32_t skip = tx->done;
		int i;

		for (i = 0; i < 3; i++) {
			if (skip >= len[i]) {
				skip -= len[i];
				continue;
			}
			iov[n].iov_base = (void *)(part[i] + skip);
			iov[n].iov_len = len[i] - skip;
			skip = 0;
			n++;
		}
	}
	return n;
}

static void tx_free(struct ini_tx *tx)
{
	free(tx->owned);
	free(tx);
}

static void conn_flush(struct ini_session *sess)
{
	struct ini_conn *c = &sess->conn;
	struct iovec iov[TX_IOV];
	struct ini_tx *tx;
	ssize_t n;

	while (c->tx_head) {
		n = writev(c->fd, iov, tx_gather(c, iov));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_watch_out(sess, true);
				return;
			}
			sess_conn_lost(sess, -errno, strerror(errno));
			return;
		}
		while ((tx = c->tx_head) && n > 0) {
			uint32_t left = tx->hdr_len + tx->data_len + tx->trail_len - tx->done;

			if ((size_t)n < left) {
				tx->done += (uint32_t)n;
				break;
			}
			n -= left;
			c->tx_head = tx->next;
			if (!c->tx_head)
				c->tx_tail = NULL;
			tx_free(tx);
		}
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
 * completes only on a response, which follows its last Data-Out).
 */
int conn_send(struct ini_session *sess, struct pdu_bhs *bhs, const void *data, uint32_t len,
	      void *owned)
{
	struct ini_conn *c = &sess->conn;
	uint32_t pad = PDU_PAD4(len) - len;
	struct ini_tx *tx;

	if (c->state < CONN_LOGIN) {
		free(owned);
		return -ENOTCONN;
	}
	tx = calloc(1, sizeof(*tx));
	if (!tx) {
		free(owned);
		return -ENOMEM;
	}
	bhs->data_len = len;
	if (pdu_bhs_encode(bhs, tx->hdr, PDU_BHS_LEN)) {
		tx_free(tx);
		free(owned);
		return -EINVAL;
	}
	tx->hdr_len = PDU_BHS_LEN;
	if (c->digests & PDU_HDIGEST) {
		digest_store(tx->hdr + PDU_BHS_LEN, digest_crc32c(tx->hdr, PDU_BHS_LEN));
		tx->hdr_len += PDU_DIGEST_LEN;
	}
	tx->data = data;
	tx->data_len = len;
	tx->trail_len = pad;
	if (len && (c->digests & PDU_DDIGEST)) {
		struct digest_ctx d;

		digest_begin(&d);
		digest_update(&d, data, len);
		digest_update_pad(&d, len);
		digest_store(tx->trail + pad, digest_final(&d));
		tx->trail_len += PDU_DIGEST_LEN;
	}
	tx->owned = owned;
	if (c->tx_tail)
		c->tx_tail->next = tx;
	else
		c->tx_head = tx;
	c->tx_tail = tx;
	sess->st.tx_pdus++;
	if (!c->tx_blocked)
		sched_schedule(sess->sched, &c->tx_ev);
	return 0;
}

/* Receive */

/* Read what the socket has. Returns bytes read, 0 (nothing now) or -1
 * (the connection is gone; already reported). */
static int rx_read(struct ini_session *sess)
{
	struct ini_conn *c = &sess->conn;
	ssize_t n;

	if (c->rx_off && c->rx_cap - c->rx_len < RX_MIN_CAP / 2) {
		memmove(c->rx, c->rx + c->rx_off, c->rx_len - c->rx_off);
		c->rx_len -= c->rx_off;
		c->rx_off = 0;
	}
	for (;;) {
		n = recv(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, 0);
		if (n > 0) {
			c->rx_len += (uint32_t)n;
			return (int)n;
		}
		if (n == 0) {
			sess_conn_lost(sess, -ECONNRESET, "connection closed by the target");
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		sess_conn_lost(sess, -errno, strerror(errno));
		return -1;
	}
}

static bool rx_digests_ok(struct ini_session *sess, const uint8_t *buf, const struct pdu *p)
{
	if (p->hdigest_off &&
	    digest_crc32c(buf, p->hdigest_off) != digest_load(buf + p->hdigest_off)) {
		sess_conn_lost(sess, -EBADMSG, "header digest error");
		return false;
	}
	/* At ErrorRecoveryLevel 0 a lost data segment cannot be asked for
	 * again (RFC 7143 §7.8): recover the session and reissue. */
	if (p->ddigest_off && digest_crc32c(buf + p->data_off, p->ddigest_off - p->data_off) !=
				      digest_load(buf + p->ddigest_off)) {
		sess_conn_lost(sess, -EBADMSG, "data digest error");
		return false;
	}
	return true;
}

/* Frame the next PDU in the buffer. Returns 1 and fills @p, 0 when more
 * bytes are needed, -1 when the connection was dropped. */
static int rx_frame(struct ini_session *sess, struct pdu *p)
{
	struct ini_conn *c = &sess->conn;
	uint32_t have = c->rx_len - c->rx_off;
	int total;

	if (have < PDU_BHS_LEN)
		return 0;
	total = pdu_total_len(c->rx + c->rx_off, have, c->digests, INI_MAX_RECV_DSL);
	if (total < 0) {
		sess_conn_lost(sess, -EPROTO, "bad PDU header from the target");
		return -1;
	}
	if ((uint32_t)total > have) {
		if ((uint32_t)total > c->rx_cap - c->rx_off) {
			uint32_t cap = (uint32_t)total * 2;
			uint8_t *rx;

			memmove(c->rx, c->rx + c->rx_off, have);
			c->rx_len = have;
			c->rx_off = 0;
			if (cap > c->rx_cap) {
				rx = realloc(c->rx, cap);
				if (!rx) {
					sess_conn_lost(sess, -ENOMEM, "out of memory");
					return -1;
				}
				c->rx = rx;
				c->rx_cap = cap;
			}
		}
		return 0;
	}
	if (pdu_parse(c->rx + c->rx_off, have, c->digests, INI_MAX_RECV_DSL, p) < 0) {
		sess_conn_lost(sess, -EPROTO, "malformed PDU from the target");
		return -1;
	}
	if (!rx_digests_ok(sess, c->rx + c->rx_off, p))
		return -1;
	c->rx_off += (uint32_t)total;
	if (c->rx_off == c->rx_len)
		c->rx_off = c->rx_len = 0;
	return 1;
}

static int conn_poll(struct poller *pl, int budget)
{
	struct ini_session *sess = sess_of(pl, conn.poller);
	struct ini_conn *c = &sess->conn;
	enum conn_state state = c->state;
	struct pdu p;
	int n = 0, r;

	while (n < budget) {
		r = rx_frame(sess, &p);
		if (r < 0)
			return n;
		if (r == 0) {
			r = rx_read(sess);
			if (r <= 0)
				return n;
			continue;
		}
		n++;
		sess->st.rx_pdus++;
		c->last_rx_ns = sched_now(sess->sched);
		if (state == CONN_LOGIN)
			login_rsp(sess, &p);
		else
			sess_pdu(sess, &p);
		/* the handler may have closed the connection or ended login */
		if (c->state != state)
			return n;
	}
	return n;
}

static int conn_arm(struct poller *pl)
{
	return sched_fd_mod(pl->sched, &pl->notify, EPOLLIN | EPOLLONESHOT);
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
	c->digests = 0;
	c->max_send_dsl = INI_LOGIN_DSL;
	if (!c->rx) {
		c->rx = malloc(RX_MIN_CAP);
		if (!c->rx) {
			conn_shut(sess);
			return -ENOMEM;
		}
		c->rx_cap = RX_MIN_CAP;
	}
	c->rx_len = c->rx_off = 0;
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
}

/* Close the socket and drop what was queued to send. Idempotent. */
void conn_shut(struct ini_session *sess)
{
	struct ini_conn *c = &sess->conn;
	struct ini_tx *tx;

	if (c->state >= CONN_LOGIN)
		poller_disable(&c->poller);
	conn_watch_out(sess, false);
	sched_cancel(sess->sched, &c->tx_ev);
	while ((tx = c->tx_head)) {
		c->tx_head = tx->next;
		tx_free(tx);
	}
	c->tx_tail = NULL;
	if (c->wfd >= 0)
		close(c->wfd);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = c->wfd = -1;
	c->rx_len = c->rx_off = 0;
	c->ping_sent_ns = 0;
	c->state = CONN_IDLE;
}

/* The limits of the full feature phase, once login has agreed them. */
void conn_set_ffp(struct ini_session *sess)
{
	struct ini_conn *c = &sess->conn;
	const struct text_params *r = &sess->login.neg.result;

	c->state = CONN_FFP;
	c->digests = (r->header_digest == TEXT_DIGEST_CRC32C ? PDU_HDIGEST : 0) |
		     (r->data_digest == TEXT_DIGEST_CRC32C ? PDU_DDIGEST : 0);
	c->max_send_dsl = text_max_send_dsl(&sess->login.neg);
	if (!c->max_send_dsl)
		c->max_send_dsl = INI_LOGIN_DSL;
}
