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
#include "common/xport/iser.h"
#include "config.h"
#include "tgt.h"

#define CONN_RX_BUDGET 16  /* PDUs handled per readiness event */
#define LOGIN_MAX_DSL 8192 /* RFC 7143 §13.12: the limit during login */
#define CONN_MAX_RECV_DSL (256 * 1024)
#define NS 1000000000ull
#define LOGOUT_LINGER_NS (2 * NS) /* iSER: the initiator disconnects first */

#define conn_of(ptr, member) ((struct conn *)((char *)(ptr)-offsetof(struct conn, member)))

static void conn_readable(struct sched_fd *sfd, uint32_t events);
static void conn_free_ev(struct sched_event *ev);
static void conn_flush_ev(struct sched_event *ev);
static void conn_timer(struct sched_timer *t);
static void conn_rx_ev(struct sched_event *ev);
static void tx_release(struct tcp_stream *s, void *ref);
static void *conn_place(struct tcp_stream *s, const struct pdu *p);

void conn_peer_name(const struct sockaddr *sa, char *buf, size_t len)
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

static struct conn *conn_alloc(struct tgt *t)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->tgt = t;
	c->fd = -1;
	c->phase = CONN_LOGIN;
	c->max_send_dsl = LOGIN_MAX_DSL;
	sched_event_init(&c->close_ev, conn_free_ev);
	sched_event_init(&c->tx_ev, conn_flush_ev);
	sched_event_init(&c->rx_ev, conn_rx_ev);
	sched_timer_init(&c->timer, conn_timer);
	return c;
}

/* Listed, with the login deadline running. */
static void conn_start(struct conn *c, const char *how)
{
	struct tgt *t = c->tgt;

	c->next = t->conns;
	t->conns = c;
	c->last_rx_ns = sched_now(t->sched);
	sched_timer_arm(t->sched, &c->timer, c->last_rx_ns + t->cfg->login_timeout * NS);
	log_info("connection from %s (%s)", c->peer, how);
}

int conn_create(struct tgt *t, int fd, const struct sockaddr *peer, socklen_t peerlen)
{
	struct conn *c = conn_alloc(t);
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	int err;

	(void)peerlen;
	if (!c)
		return -ENOMEM;
	c->fd = fd;
	conn_peer_name(peer, c->peer, sizeof(c->peer));
	if (!getsockname(fd, (struct sockaddr *)&local, &llen))
		conn_peer_name((struct sockaddr *)&local, c->local, sizeof(c->local));
	err = tcp_stream_init(&c->tcp, fd, tx_release);
	if (err) {
		free(c);
		return err;
	}
	c->tcp.place = conn_place;
	err = sched_fd_add(t->sched, &c->sfd, fd, EPOLLIN, conn_readable);
	if (err) {
		tcp_stream_fini(&c->tcp);
		free(c);
		return err;
	}
	conn_start(c, "iSCSI/TCP");
	return 0;
}

/* An iSER connection: the caller sets c->iser and accepts. */
int conn_create_iser(struct tgt *t, const char *peer, struct conn **ret)
{
	struct conn *c = conn_alloc(t);

	if (!c)
		return -ENOMEM;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	conn_start(c, "iSER");
	*ret = c;
	return 0;
}

/* Free once nothing refers to it: tasks still in the SCSI layer hold it. */
static void conn_free_ev(struct sched_event *ev)
{
	struct conn *c = conn_of(ev, close_ev);
	struct conn **pp;

	if (c->nexec)
		return; /* the last task's completion reschedules us */
	for (pp = &c->tgt->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	c->phase = CONN_GONE; /* the queue's tasks go with the connection */
	if (c->iser)
		iser_conn_destroy(c->iser); /* before the buffers it may touch */
	else
		tcp_stream_fini(&c->tcp);
	free(c->rx_prebuf);
	session_conn_gone(c);
	sched_cancel(c->tgt->sched, &c->tx_ev);
	sched_cancel(c->tgt->sched, &c->rx_ev);
	sched_timer_cancel(c->tgt->sched, &c->timer);
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
	if (c->fd >= 0) {
		sched_fd_del(c->tgt->sched, &c->sfd);
		close(c->fd);
		c->fd = -1;
	}
	/* iSER: outstanding work is flushed, RDMA READs included, and
	 * their completions release what they hold. */
	if (c->iser)
		iser_conn_disconnect(c->iser);
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
	if (c->phase != CONN_CLOSING && !c->iser)
		sched_fd_mod(c->tgt->sched, &c->sfd, conn_events(c));
}

/* Send */

/* A PDU of @ref's task was sent (or dropped with the connection). */
static void tx_release(struct tcp_stream *s, void *ref)
{
	struct task *task = ref;
	struct conn *c = (struct conn *)((char *)s - offsetof(struct conn, tcp));

	task->sending--;
	if (c->phase != CONN_GONE && !task->sending && task->state == TASK_SENDING)
		task_put(task);
}

static void conn_flush(struct conn *c)
{
	int err;

	if (c->phase == CONN_CLOSING)
		return;
	err = tcp_flush(&c->tcp);
	if (err && err != -EAGAIN) {
		conn_close(c, strerror(-err));
		return;
	}
	if (c->tx_blocked != (err == -EAGAIN)) {
		c->tx_blocked = err == -EAGAIN;
		sched_fd_mod(c->tgt->sched, &c->sfd, conn_events(c));
	}
	if (c->phase == CONN_LOGOUT && !err)
		conn_close(c, "logged out");
}

static void conn_flush_ev(struct sched_event *ev)
{
	conn_flush(conn_of(ev, tx_ev));
}

/*
 * Queue a PDU. @data (@len bytes) must stay valid until sent: it is
 * @owned (freed then) or belongs to @task (whose send count holds it).
 * Writes are batched: one sendmsg per scheduler pass for all queued PDUs.
 */
void conn_send(struct conn *c, struct pdu_bhs *bhs, const void *data, uint32_t len, void *owned,
	       struct task *task)
{
	if (c->phase == CONN_CLOSING) {
		free(owned);
		return;
	}
	if (task)
		task->sending++;
	if (c->iser) {
		/* Copied into a registered send buffer: @owned goes now. */
		int err = iser_conn_send(c->iser, bhs, NULL, data, len,
					 task ? (void *)task : (void *)c);

		free(owned);
		if (err)
			conn_close(c, strerror(-err));
		return;
	}
	if (tcp_send(&c->tcp, bhs, data, len, owned, task)) {
		conn_close(c, "out of memory");
		return;
	}
	if (!c->tx_blocked)
		sched_schedule(c->tgt->sched, &c->tx_ev);
}

bool conn_tx_pending(const struct conn *c)
{
	return c->iser ? iser_conn_tx_pending(c->iser) : tcp_tx_pending(&c->tcp);
}

/* iSER: a Send or an RDMA READ of @ref's finished: a task's, or the
 * connection's own PDUs (@ref is @c itself). */
void conn_iser_done(struct conn *c, void *ref, int err)
{
	struct task *task = ref;

	if (ref == c) {
		/* A Logout or a refused login's response has left. After a
		 * Logout the initiator ends the RDMA connection (RFC 7145
		 * §5.2.1): wait for it a little, as ending it from both sides
		 * at once races with its teardown (libiscsi 1.19 frees its
		 * context under its CM event thread: valgrind, tests/vm). */
		if (c->phase != CONN_LOGOUT || err || iser_conn_tx_pending(c->iser))
			return;
		if (!c->session) {
			conn_close(c, "login refused");
			return;
		}
		c->lingering = true;
		sched_timer_arm(c->tgt->sched, &c->timer,
				sched_now(c->tgt->sched) + LOGOUT_LINGER_NS);
		return;
	}
	if (task->rdma_reading) {
		task_pulled(task, err);
		return;
	}
	task->sending--;
	if (c->phase != CONN_GONE && !task->sending && task->state == TASK_SENDING)
		task_put(task);
}

/* Receive */

/* RFC 7143 §7.8: a data digest error discards the PDU; answer with a
 * Reject ("Data Digest Error"), the initiator retries or gives up. */
static void conn_data_digest_error(struct conn *c, const struct pdu *p)
{
	struct pdu_bhs rej = {.opcode = PDU_OP_REJECT, .final = true};
	uint8_t *hdr = malloc(PDU_BHS_LEN);

	log_warn("connection %s: data digest error in %s", c->peer, pdu_op_name(p->bhs.opcode));
	if (!hdr)
		return;
	/* The header as received: its data may not follow it in memory. */
	if (pdu_bhs_encode(&p->bhs, hdr, PDU_BHS_LEN)) {
		free(hdr);
		return;
	}
	rej.itt = PDU_RSVD_TAG;
	rej.reject.reason = 0x02;
	session_fill_sn(c, &rej);
	conn_send(c, &rej, hdr, PDU_BHS_LEN, hdr, NULL);
}

static void conn_dispatch(struct conn *c, const struct pdu *p)
{
	switch (c->phase) {
	case CONN_LOGIN:
		login_handle(c, p);
		break;
	case CONN_FFP:
	case CONN_LOGOUT:
		session_handle(c, p);
		break;
	default:
		break;
	}
}

static const char *rx_error(const struct conn *c, int err, char *buf, size_t len)
{
	switch (err) {
	case -ECONNRESET:
		return c->phase == CONN_LOGIN ? "closed by the initiator during login"
					      : "closed by the initiator";
	case -EBADMSG:
		return "header digest error";
	case -ENOMEM:
		return "out of memory";
	case -EPROTO:
	case -E2BIG:
	case -EMSGSIZE:
	case -EOVERFLOW:
	case -ENODATA:
		snprintf(buf, len, "bad PDU (%s)", strerror(-err));
		return buf;
	}
	return strerror(-err);
}

/* Handle up to a budget of PDUs; what is left in the buffer after it is
 * handled from an event, since no readiness will come for it. */
static void conn_rx(struct conn *c)
{
	char why[64];
	struct pdu p;
	int i, ret;

	for (i = 0; i < CONN_RX_BUDGET; i++) {
		if (c->phase == CONN_CLOSING || c->tgt->stopping)
			return;
		ret = tcp_recv(&c->tcp, &p);
		if (ret == 0)
			return;
		if (ret < 0 && ret != -EILSEQ) {
			conn_close(c, rx_error(c, ret, why, sizeof(why)));
			return;
		}
		c->last_rx_ns = sched_now(c->tgt->sched);
		session_place_end(c);
		if (ret == -EILSEQ)
			conn_data_digest_error(c, &p);
		else
			conn_dispatch(c, &p);
		free(c->rx_prebuf); /* not taken by a task */
		c->rx_prebuf = NULL;
	}
	if (c->phase != CONN_CLOSING && tcp_rx_pending(&c->tcp))
		sched_schedule(c->tgt->sched, &c->rx_ev);
}

/* Where a large data segment goes before it is all in (tcp_stream.place):
 * straight into the task's buffer, when the session will take it there.
 * This saves the copy out of the stream's buffer, the largest cost of a
 * write but the disk's (perf: a fifth of the target's CPU at 1 MiB). */
static void *conn_place(struct tcp_stream *s, const struct pdu *p)
{
	struct conn *c = conn_of(s, tcp);

	if (c->phase != CONN_FFP || c->tgt->stopping)
		return NULL;
	return session_place(c, p);
}

/* iSER: a PDU in a Send (the transport checked its framing). */
void conn_iser_recv(struct conn *c, const struct pdu *p, const struct iser_hdr_ctrl *ctrl)
{
	if (c->phase == CONN_CLOSING || c->tgt->stopping)
		return;
	c->last_rx_ns = sched_now(c->tgt->sched);
	c->rx_ctrl = ctrl;
	conn_dispatch(c, p);
	c->rx_ctrl = NULL;
}

static void conn_rx_ev(struct sched_event *ev)
{
	conn_rx(conn_of(ev, rx_ev));
}

static void conn_readable(struct sched_fd *sfd, uint32_t events)
{
	struct conn *c = conn_of(sfd, sfd);

	if (events & EPOLLOUT)
		conn_flush(c);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_rx(c);
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

	if (c->phase == CONN_LOGOUT) {
		if (c->lingering)
			conn_close(c, "logged out");
		return;
	}
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
	if (c->iser) {
		/* RFC 7145 §6.5: InitiatorRecvDataSegmentLength bounds what we
		 * send; our send buffers bound it too. */
		c->max_send_dsl = text_max_send_dsl(&c->neg);
		if (c->max_send_dsl > ISER_DEFAULT_DSL)
			c->max_send_dsl = ISER_DEFAULT_DSL;
		sched_timer_arm(c->tgt->sched, &c->timer, sched_now(c->tgt->sched) + NS);
		return;
	}
	c->tcp.digests = (r->header_digest == TEXT_DIGEST_CRC32C ? PDU_HDIGEST : 0) |
			 (r->data_digest == TEXT_DIGEST_CRC32C ? PDU_DDIGEST : 0);
	c->tcp.max_recv_dsl = c->neg.local.max_recv_dsl;
	c->max_send_dsl = r->max_recv_dsl;
	sched_timer_arm(c->tgt->sched, &c->timer, sched_now(c->tgt->sched) + NS);
}

uint32_t conn_default_max_recv_dsl(void)
{
	return CONN_MAX_RECV_DSL;
}

/* SIGUSR1: one line per connection; over iSER with its completion queue's
 * poller counters (DESIGN §4): notifications per command is the figure of
 * tgt's 2008 iSER polling patch. */
void conn_log_stats(struct tgt *t)
{
	struct iser_conn_stats is;
	const struct poller_stats *ps;
	struct conn *c;

	for (c = t->conns; c; c = c->next) {
		if (!c->iser) {
			log_info("stats %s: tcp commands=%llu", c->peer,
				 (unsigned long long)c->cmds);
			continue;
		}
		ps = &iser_conn_poller(c->iser)->stats;
		iser_conn_get_stats(c->iser, &is);
		log_info("stats %s: iser commands=%llu notifications=%llu polls=%llu "
			 "completions=%llu empty_polls=%llu arms=%llu notifications_per_cmd=%.3f "
			 "rdma_reads=%llu rdma_writes=%llu sends=%llu recvs=%llu backlogged=%llu "
			 "ord=%u reads_out=%u waiting=%u in_place=%llu",
			 c->peer, (unsigned long long)c->cmds,
			 (unsigned long long)ps->notifications, (unsigned long long)ps->polls,
			 (unsigned long long)ps->completions, (unsigned long long)ps->empty_polls,
			 (unsigned long long)ps->arms,
			 c->cmds ? (double)ps->notifications / (double)c->cmds : 0.0,
			 (unsigned long long)is.rdma_reads, (unsigned long long)is.rdma_writes,
			 (unsigned long long)is.sends, (unsigned long long)is.recvs,
			 (unsigned long long)is.backlogged, is.ord, is.reads_out, is.waiting,
			 (unsigned long long)is.rx_holds);
		if (is.has_rdma)
			log_info("stats %s: soft fpdus_in=%llu fpdus_out=%llu placed_bytes=%llu "
				 "ahead_fpdus=%llu ahead_misses=%llu",
				 c->peer, (unsigned long long)is.rdma.rx_fpdus,
				 (unsigned long long)is.rdma.tx_fpdus,
				 (unsigned long long)is.rdma.direct_bytes,
				 (unsigned long long)is.rdma.ahead_fpdus,
				 (unsigned long long)is.rdma.ahead_misses);
	}
}
