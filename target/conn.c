/*
 * conn: one iSCSI/TCP connection of the target: framing PDUs out of the
 * byte stream (RFC 7143 §11), digests (§13.1), the send queue, and the
 * dispatch to login (login phase) or the session (full feature phase).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "config.h"
#include "digest.h"
#include "tgt.h"

#define CONN_RX_BUDGET 16  /* PDUs handled per readiness event */
#define CONN_TX_IOV 64	   /* iovecs per writev */
#define LOGIN_MAX_DSL 8192 /* RFC 7143 §13.12: the limit during login */
#define CONN_MAX_RECV_DSL (256 * 1024)
#define NS 1000000000ull

#define conn_of(ptr, member) ((struct conn *)((char *)(ptr)-offsetof(struct conn, member)))

static void conn_readable(struct sched_fd *sfd, uint32_t events);
static void conn_free_ev(struct sched_event *ev);
static void conn_flush_ev(struct sched_event *ev);
static void conn_timer(struct sched_timer *t);

static void peer_name(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%u", host, port);
	} else {
		snprintf(buf, len, "?");
	}
}

int conn_create(struct tgt *t, int fd, const struct sockaddr *peer, socklen_t peerlen)
{
	struct conn *c = calloc(1, sizeof(*c));
	int err;

	(void)peerlen;
	if (!c)
		return -ENOMEM;
	c->tgt = t;
	c->fd = fd;
	c->phase = CONN_LOGIN;
	c->max_recv_dsl = LOGIN_MAX_DSL;
	c->max_send_dsl = LOGIN_MAX_DSL;
	peer_name(peer, c->peer, sizeof(c->peer));
	{
		struct sockaddr_storage local;
		socklen_t llen = sizeof(local);

		if (!getsockname(fd, (struct sockaddr *)&local, &llen))
			peer_name((struct sockaddr *)&local, c->local, sizeof(c->local));
	}
	sched_event_init(&c->close_ev, conn_free_ev);
	sched_event_init(&c->tx_ev, conn_flush_ev);
	c->rx_cap = PDU_BHS_LEN + PDU_DIGEST_LEN + LOGIN_MAX_DSL + 8;
	c->rx = malloc(c->rx_cap);
	if (!c->rx) {
		free(c);
		return -ENOMEM;
	}
	err = sched_fd_add(t->sched, &c->sfd, fd, EPOLLIN, conn_readable);
	if (err) {
		free(c->rx);
		free(c);
		return err;
	}
	c->next = t->conns;
	t->conns = c;
	c->last_rx_ns = sched_now(t->sched);
	sched_timer_init(&c->timer, conn_timer);
	sched_timer_arm(t->sched, &c->timer, c->last_rx_ns + t->cfg->login_timeout * NS);
	log_info("connection from %s", c->peer);
	return 0;
}

/* Free once nothing refers to it: tasks still in the SCSI layer hold it. */
static void conn_free_ev(struct sched_event *ev)
{
	struct conn *c = conn_of(ev, close_ev);
	struct conn **pp;
	struct txpdu *tx;

	if (c->nexec)
		return; /* the last task's completion reschedules us */
	for (pp = &c->tgt->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	while ((tx = c->tx_head)) {
		c->tx_head = tx->next;
		if (tx->task)
			tx->task->sending--;
		free(tx->owned);
		free(tx);
	}
	session_conn_gone(c);
	sched_cancel(c->tgt->sched, &c->tx_ev);
	sched_timer_cancel(c->tgt->sched, &c->timer);
	free(c->rx);
	free(c);
}

void conn_close(struct conn *c, const char *why)
{
	if (c->phase == CONN_CLOSING)
		return;
	if (why)
		log_info("connection %s closed: %s", c->peer, why);
	c->phase = CONN_CLOSING;
	sched_timer_cancel(c->tgt->sched, &c->timer);
	sched_fd_del(c->tgt->sched, &c->sfd);
	close(c->fd);
	c->fd = -1;
	sched_schedule(c->tgt->sched, &c->close_ev);
}

void conn_destroy_all(struct tgt *t)
{
	struct conn *c;

	for (c = t->conns; c; c = c->next)
		conn_close(c, NULL);
}

/* What to watch: nothing new is read once the target is stopping, so a
 * busy initiator cannot keep the drain going; EPOLLOUT while blocked. */
static uint32_t conn_events(const struct conn *c)
{
	return (c->tgt->stopping ? 0 : EPOLLIN) | (c->tx_blocked ? EPOLLOUT : 0);
}

/* The target is stopping: read no more commands from @c. */
void conn_quiesce(struct conn *c)
{
	if (c->phase != CONN_CLOSING)
		sched_fd_mod(c->tgt->sched, &c->sfd, conn_events(c));
}

/* Send */

static void tx_release(struct conn *c, struct txpdu *tx)
{
	if (tx->task) {
		tx->task->sending--;
		if (!tx->task->sending && tx->task->state == TASK_SENDING)
			task_put(tx->task);
	}
	free(tx->owned);
	free(tx);
	(void)c;
}

/* Gather what is queued into iovecs, skipping what is already written. */
static int tx_gather(struct conn *c, struct iovec *iov)
{
	struct txpdu *tx;
	int n = 0;

	for (tx = c->tx_head; tx && n <= CONN_TX_IOV - 3; tx = tx->next) {
		uint32_t skip = tx->done;
		const uint8_t *part[3] = {tx->hdr, tx->data, tx->trail};
		uint32_t len[3] = {tx->hdr_len, tx->data_len, tx->trail_len};
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

static void conn_flush(struct conn *c)
{
	struct iovec iov[CONN_TX_IOV];
	struct txpdu *tx;
	ssize_t n;
	int cnt;

	while (c->tx_head && c->phase != CONN_CLOSING) {
		cnt = tx_gather(c, iov);
		n = writev(c->fd, iov, cnt);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!c->tx_blocked) {
					c->tx_blocked = true;
					sched_fd_mod(c->tgt->sched, &c->sfd, conn_events(c));
				}
				return;
			}
			if (errno == EINTR)
				continue;
			conn_close(c, strerror(errno));
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
			tx_release(c, tx);
		}
	}
	if (c->tx_blocked && !c->tx_head) {
		c->tx_blocked = false;
		sched_fd_mod(c->tgt->sched, &c->sfd, conn_events(c));
	}
	if (c->phase == CONN_LOGOUT && !c->tx_head)
		conn_close(c, "logged out");
}

static void conn_flush_ev(struct sched_event *ev)
{
	conn_flush(conn_of(ev, tx_ev));
}

/*
 * Queue a PDU. @data (@len bytes) must stay valid until sent: it is
 * @owned (freed then) or belongs to @task (whose send count holds it).
 * Writes are batched: one writev per scheduler pass for all queued PDUs.
 */
void conn_send(struct conn *c, struct pdu_bhs *bhs, const void *data, uint32_t len, void *owned,
	       struct task *task)
{
	struct txpdu *tx;
	uint32_t pad = PDU_PAD4(len) - len;

	if (c->phase == CONN_CLOSING) {
		free(owned);
		return;
	}
	tx = calloc(1, sizeof(*tx));
	if (!tx) {
		free(owned);
		conn_close(c, "out of memory");
		return;
	}
	bhs->data_len = len;
	pdu_bhs_encode(bhs, tx->hdr, PDU_BHS_LEN);
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
	tx->task = task;
	if (task)
		task->sending++;
	if (c->tx_tail)
		c->tx_tail->next = tx;
	else
		c->tx_head = tx;
	c->tx_tail = tx;
	if (!c->tx_blocked)
		sched_schedule(c->tgt->sched, &c->tx_ev);
}

/* Receive */

static bool digests_ok(struct conn *c, const struct pdu *p)
{
	struct pdu_bhs *bhs = (struct pdu_bhs *)&p->bhs;

	if (p->hdigest_off &&
	    digest_crc32c(c->rx, p->hdigest_off) != digest_load(c->rx + p->hdigest_off)) {
		/* RFC 7143 §7.8: without a trusted header the stream is lost. */
		conn_close(c, "header digest error");
		return false;
	}
	if (p->ddigest_off && digest_crc32c(c->rx + p->data_off, p->ddigest_off - p->data_off) !=
				      digest_load(c->rx + p->ddigest_off)) {
		struct pdu_bhs rej = {.opcode = PDU_OP_REJECT, .final = true};
		uint8_t *hdr = malloc(PDU_BHS_LEN);

		/* RFC 7143 §7.8: discard the PDU, Reject with "Data Digest
		 * Error"; the initiator retries or gives up the command. */
		log_warn("connection %s: data digest error in %s", c->peer,
			 pdu_op_name(bhs->opcode));
		if (hdr) {
			memcpy(hdr, c->rx, PDU_BHS_LEN);
			rej.itt = PDU_RSVD_TAG;
			rej.reject.reason = 0x02;
			session_fill_sn(c, &rej);
			conn_send(c, &rej, hdr, PDU_BHS_LEN, hdr, NULL);
		}
		return false;
	}
	return true;
}

static void conn_dispatch(struct conn *c, const struct pdu *p)
{
	if (!digests_ok(c, p))
		return;
	switch (c->phase) {
	case CONN_LOGIN:
		login_handle(c, p);
		break;
	case CONN_FFP:
	case CONN_LOGOUT:
		session_handle(c, p);
		break;
	case CONN_CLOSING:
		break;
	}
}

/* Read toward @want bytes in the receive buffer. Returns 1 when there,
 * 0 when the socket has no more now, -1 when the connection closed. */
static int rx_fill(struct conn *c, uint32_t want)
{
	ssize_t n;

	while (c->rx_len < want) {
		n = read(c->fd, c->rx + c->rx_len, want - c->rx_len);
		if (n > 0) {
			c->rx_len += (uint32_t)n;
			continue;
		}
		if (n == 0) {
			conn_close(c, c->phase == CONN_LOGIN
					      ? "closed by the initiator during login"
					      : "closed by the initiator");
			return -1;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == EINTR)
			continue;
		conn_close(c, strerror(errno));
		return -1;
	}
	return 1;
}

static uint32_t conn_rx_limit(const struct conn *c)
{
	return c->phase == CONN_LOGIN ? LOGIN_MAX_DSL : c->max_recv_dsl;
}

/* One PDU, if the socket has all of it. Returns 1 (handled), 0 (wait), -1. */
static int conn_rx_one(struct conn *c)
{
	unsigned int flags = c->digests;
	uint32_t hdr = PDU_BHS_LEN + ((flags & PDU_HDIGEST) ? PDU_DIGEST_LEN : 0);
	struct pdu p;
	int ret, total;

	ret = rx_fill(c, hdr);
	if (ret <= 0)
		return ret;
	total = pdu_total_len(c->rx, c->rx_len, flags, conn_rx_limit(c));
	if (total < 0) {
		char why[96];

		snprintf(why, sizeof(why), "bad PDU header (%s, opcode 0x%02x, %u data bytes)",
			 strerror(-total), c->rx[0] & 0x3f,
			 (unsigned int)c->rx[5] << 16 | (unsigned int)c->rx[6] << 8 | c->rx[7]);
		conn_close(c, why);
		return -1;
	}
	if ((uint32_t)total > c->rx_cap) {
		uint8_t *nrx = realloc(c->rx, (size_t)total);

		if (!nrx) {
			conn_close(c, "out of memory");
			return -1;
		}
		c->rx = nrx;
		c->rx_cap = (uint32_t)total;
	}
	ret = rx_fill(c, (uint32_t)total);
	if (ret <= 0)
		return ret;
	ret = pdu_parse(c->rx, c->rx_len, flags, conn_rx_limit(c), &p);
	c->rx_len = 0;
	if (ret < 0) {
		conn_close(c, "malformed PDU");
		return -1;
	}
	c->last_rx_ns = sched_now(c->tgt->sched);
	conn_dispatch(c, &p);
	return c->phase == CONN_CLOSING ? -1 : 1;
}

static void conn_readable(struct sched_fd *sfd, uint32_t events)
{
	struct conn *c = conn_of(sfd, sfd);
	int i;

	if (events & EPOLLOUT)
		conn_flush(c);
	if (c->phase == CONN_CLOSING || c->tgt->stopping ||
	    !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (i = 0; i < CONN_RX_BUDGET; i++)
		if (conn_rx_one(c) <= 0)
			return;
}

/* A NOP-In that asks for an answer (RFC 7143 §11.19: TTT not reserved). */
static void conn_ping(struct conn *c, uint64_t now)
{
	struct pdu_bhs nop = {.opcode = PDU_OP_NOP_IN, .final = true, .itt = PDU_RSVD_TAG};

	c->ping_ttt = (c->ping_ttt + 1) & 0x7fffffff;
	nop.nop.ttt = c->ping_ttt;
	session_fill_sn(c, &nop);
	conn_send(c, &nop, NULL, 0, NULL, NULL);
	c->ping_sent_ns = now;
}

/*
 * The login deadline, then keepalive: a connection silent for nop-interval
 * gets a NOP-In; one that does not answer within nop-timeout is dead
 * (a peer gone without a FIN) and is closed.
 */
static void conn_timer(struct sched_timer *t)
{
	struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, timer));
	const struct config *cfg = c->tgt->cfg;
	uint64_t now = sched_now(c->tgt->sched);
	char why[80];

	if (c->phase == CONN_LOGIN) {
		snprintf(why, sizeof(why), "login not finished within %u s", cfg->login_timeout);
		conn_close(c, why);
		return;
	}
	if (c->phase != CONN_FFP || !cfg->nop_interval)
		return;
	if (c->ping_sent_ns && c->last_rx_ns < c->ping_sent_ns &&
	    now - c->ping_sent_ns >= cfg->nop_timeout * NS) {
		snprintf(why, sizeof(why), "no answer to a NOP-In ping within %u s",
			 cfg->nop_timeout);
		conn_close(c, why);
		return;
	}
	if (c->ping_sent_ns && c->last_rx_ns >= c->ping_sent_ns)
		c->ping_sent_ns = 0; /* alive: traffic since the ping */
	if (!c->ping_sent_ns && now - c->last_rx_ns >= cfg->nop_interval * NS)
		conn_ping(c, now);
	sched_timer_arm(c->tgt->sched, &c->timer, now + NS);
}

/* The limits of the full feature phase, once login has agreed them. */
void conn_enter_ffp(struct conn *c)
{
	const struct text_params *r = &c->neg.result;

	c->phase = CONN_FFP;
	c->digests = (r->header_digest == TEXT_DIGEST_CRC32C ? PDU_HDIGEST : 0) |
		     (r->data_digest == TEXT_DIGEST_CRC32C ? PDU_DDIGEST : 0);
	c->max_recv_dsl = c->neg.local.max_recv_dsl;
	c->max_send_dsl = r->max_recv_dsl;
	sched_timer_arm(c->tgt->sched, &c->timer, sched_now(c->tgt->sched) + NS);
}

uint32_t conn_default_max_recv_dsl(void)
{
	return CONN_MAX_RECV_DSL;
}
