/*
 * soft_cm: the soft provider's connection management (see soft_priv.h):
 * the MPA Request and Reply with RFC 6581's IRD/ORD and RTR, a
 * connection's socket and timers, connect, accept, reject, disconnect,
 * and listeners.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/soft/soft_priv.h"

/* Connection management: MPA (RFC 5044 §7.1, RFC 6581) */

static uint16_t clamp16(uint32_t v, uint32_t max)
{
	return (uint16_t)(v < max ? v : max);
}

/* Our MULPDU (RFC 5044): an FPDU fits one TCP segment, up to 16 KiB, or the
 * configured size. */
static uint32_t mulpdu(struct soft_conn *c)
{
	uint32_t v = c->dev->opts.max_ulpdu;
	int mss = 0;
	socklen_t sl = sizeof(mss);

	if (!v) {
		v = SOFT_MULPDU_DEFAULT;
		/* Header, ULPDU and CRC in one segment, with no PAD. */
		if (!getsockopt(c->fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &sl) && mss > 512 &&
		    (((uint32_t)mss - 8) & ~3u) + 2 < v)
			v = (((uint32_t)mss - 8) & ~3u) + 2;
	}
	if (v > IWARP_ULPDU_MAX)
		v = IWARP_ULPDU_MAX;
	return v < SOFT_ULPDU_MIN ? SOFT_ULPDU_MIN : v;
}

static int mpa_push(struct soft_conn *c, const struct iwarp_mpa *m)
{
	uint8_t *buf = malloc(IWARP_MPA_FRAME_MAX);
	int n;

	if (!buf)
		return -ENOMEM;
	n = iwarp_mpa_encode(m, buf, IWARP_MPA_FRAME_MAX);
	if (n < 0) {
		free(buf);
		return n;
	}
	return soft_tx_push_raw(c, buf, (size_t)n);
}

void soft_connect_end(struct soft_conn *c, enum rdma_event_type type, int status, const void *pdata,
		      size_t len)
{
	c->state = S_ERROR;
	soft_qp_flush(c);
	soft_close_fd(c);
	soft_ev_queue(c, &c->ev_end, type, status, pdata, len);
}

/* The Request is being read (passive). Returns as rx_fpdu(). */
int soft_rx_mpa_request(struct soft_conn *c, const uint8_t *b, size_t n)
{
	struct iwarp_mpa m;
	int r;

	/* DESIGN §5: a listener takes only MPA; anything else is dropped. */
	r = iwarp_mpa_is_request(b, n);
	if (r == -ENODATA)
		return 0;
	r = r ? iwarp_mpa_decode(b, n, &m) : -EPROTO;
	if (r == -ENODATA)
		return 0;
	/* RFC 5044 §7.1: a frame we cannot use closes the connection; markers
	 * are declined with a rejecting Reply. */
	if (r < 0 || m.markers) {
		if (r > 0) {
			struct iwarp_mpa rep = {.reply = true, .reject = true, .rev = m.rev};

			soft_conn_error(c, -EPROTO);
			mpa_push(c, &rep);
			return -1;
		}
		soft_close_fd(c);
		return -1;
	}
	c->peer = (struct soft_peer_req){
		.crc = m.crc,
		.enhanced = m.enhanced,
		.p2p = m.p2p,
		.rev = m.rev,
		.rtr = m.rtr,
		.ird = m.ird,
		.ord = m.ord,
	};
	c->state = S_REQ_RCVD;
	soft_fd_set_events(c, 0);
	sched_timer_cancel(c->dev->sched, &c->timer);
	c->ord = m.ord;
	c->ird = m.ird;
	soft_ev_queue(c, &c->ev_setup, RDMA_EV_CONNECT_REQUEST, 0, m.pdata, m.pdata_len);
	c->ord = c->ird = 0;
	return r;
}

/* RFC 6581: the RTR a responder picks among those offered. */
static uint8_t rtr_pick(uint8_t offered)
{
	if (offered & IWARP_MPA_RTR_WRITE)
		return IWARP_MPA_RTR_WRITE;
	if (offered & IWARP_MPA_RTR_READ)
		return IWARP_MPA_RTR_READ;
	return offered & IWARP_MPA_RTR_SEND;
}

/* Initiator, p2p: the zero-length RDMA Write RTR, before anything else. */
static void rtr_push(struct soft_conn *c)
{
	struct iwarp_hdr h = {.tagged = true, .last = true, .opcode = IWARP_OP_WRITE};
	struct soft_frame *f = soft_frame_new(c, SOFT_TX_FRAMES);

	if (f)
		soft_frame_fpdu(c, f, &h, 0, 0, 0);
}

static void establish(struct soft_conn *c)
{
	c->state = S_RTS;
	c->max_ulpdu = mulpdu(c);
	c->st.crc = c->crc;
	c->st.ird = c->ird;
	c->st.ord = c->ord;
	c->st.max_ulpdu = c->max_ulpdu;
	soft_fd_set_events(c, EPOLLIN);
	soft_tx_kick(c);
}

/* The Reply is being read (active). Returns as rx_fpdu(). */
int soft_rx_mpa_reply(struct soft_conn *c, const uint8_t *b, size_t n)
{
	struct iwarp_mpa m;
	int r = iwarp_mpa_decode(b, n, &m);

	if (r == -ENODATA)
		return 0;
	if (r < 0 || !m.reply || m.markers ||
	    (m.enhanced && m.p2p && m.rtr && m.rtr != IWARP_MPA_RTR_WRITE)) {
		soft_connect_end(c, RDMA_EV_CONNECT_ERROR, -EPROTO, NULL, 0);
		return -1;
	}
	if (m.reject) {
		soft_connect_end(c, RDMA_EV_REJECTED, 0, m.pdata, m.pdata_len);
		return -1;
	}
	sched_timer_cancel(c->dev->sched, &c->timer);
	/* RFC 5044 §7.1: CRC is used if either side asked for it. */
	c->crc = c->crc || m.crc;
	c->ord = c->want_ord;
	c->ird = c->want_ird;
	if (m.enhanced) {
		/* RFC 6581: our ORD no more than the responder's IRD; we
		 * serve as many Reads as the responder's ORD. */
		c->ord = clamp16(c->ord < m.ird ? c->ord : m.ird, SOFT_ORD_MAX);
		c->ird = clamp16(c->ird > m.ord ? c->ird : m.ord, SOFT_IRD_MAX);
	}
	establish(c);
	if (m.enhanced && m.p2p && m.rtr)
		rtr_push(c);
	soft_ev_queue(c, &c->ev_setup, RDMA_EV_ESTABLISHED, 0, m.pdata, m.pdata_len);
	return r;
}

static void conn_timer(struct sched_timer *t)
{
	struct soft_conn *c = container_of(t, struct soft_conn, timer);

	switch (c->state) {
	case S_CONNECTING:
	case S_REP_WAIT:
		soft_connect_end(c, RDMA_EV_CONNECT_ERROR, -ETIMEDOUT, NULL, 0);
		break;
	default:
		/* A Request that never came, or a peer that never closed. */
		soft_close_fd(c);
		break;
	}
}

static void connect_done(struct soft_conn *c)
{
	int err = 0;
	socklen_t sl = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
		err = errno;
	if (err) {
		soft_connect_end(c, RDMA_EV_CONNECT_ERROR, -err, NULL, 0);
		return;
	}
	c->state = S_REP_WAIT;
	soft_fd_set_events(c, EPOLLIN);
	soft_tx_run(c);
}

static void conn_fd_cb(struct sched_fd *sfd, uint32_t events)
{
	struct soft_conn *c = container_of(sfd, struct soft_conn, sfd);

	switch (c->state) {
	case S_CONNECTING:
		connect_done(c);
		return;
	case S_REQ_RCVD:
		/* Not reading until accepted; the reply will find the error. */
		if (events & (EPOLLERR | EPOLLHUP))
			soft_fd_unwatch(c);
		return;
	case S_ERROR:
		if (events & (EPOLLERR | EPOLLHUP)) {
			soft_close_fd(c);
			return;
		}
		break;
	default:
		break;
	}
	if (events & EPOLLOUT)
		soft_tx_run(c);
	if (c->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		soft_rx_run(c);
}

static void conn_free(struct soft_conn *c)
{
	struct soft_dev *d = c->dev;

	soft_ev_unlink(d, &c->ev_setup);
	soft_ev_unlink(d, &c->ev_end);
	soft_listener_unlink(c);
	soft_close_fd(c);
	sched_cancel(d->sched, &c->reap_ev);
	sched_cancel(d->sched, &c->tx_ev);
	sched_timer_cancel(d->sched, &c->timer);
	if (c->has_qp) {
		/* Dropped with no completion: give their CQ slots back. */
		soft_cq_release(c->scq, (uint32_t)(c->sq_tail - c->sq_head));
		soft_cq_release(c->rcq, (uint32_t)(c->rq_tail - c->rq_head));
	}
	free(c->sq);
	free(c->rq);
	free(c->irq);
	free(c->rx);
	free(c->ahead);
	free(c);
}

static void conn_reap(struct sched_event *ev)
{
	conn_free(container_of(ev, struct soft_conn, reap_ev));
}

/* A connection on socket @fd (owned: closed on failure). */
static int conn_new(struct soft_dev *d, int fd, enum soft_state state, uint32_t events,
		    struct soft_conn **ret)
{
	struct soft_conn *c = calloc(1, sizeof(*c));
	int one = 1, err;

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->base.dev = &d->base;
	c->dev = d;
	c->fd = fd;
	c->state = state;
	c->max_ulpdu = SOFT_ULPDU_MIN;
	c->tx_msn[0] = c->tx_msn[1] = c->tx_msn[2] = 1;
	c->rx_msn[0] = c->rx_msn[1] = c->rx_msn[2] = 1;
	sched_event_init(&c->tx_ev, soft_tx_event);
	sched_event_init(&c->reap_ev, conn_reap);
	sched_timer_init(&c->timer, conn_timer);
	c->rx = malloc(SOFT_RX_CAP);
	c->irq = calloc(SOFT_IRD_MAX, sizeof(*c->irq));
	if (!c->rx || !c->irq) {
		err = -ENOMEM;
		goto err_free;
	}
	/* Latency over batching: every FPDU goes out at once. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	err = sched_fd_add(d->sched, &c->sfd, fd, events, conn_fd_cb);
	if (err)
		goto err_free;
	c->watched = true;
	c->fd_events = events;
	sched_timer_arm(d->sched, &c->timer, sched_now(d->sched) + SOFT_MPA_TIMEOUT_NS);
	*ret = c;
	return 0;

err_free:
	close(fd);
	free(c->irq);
	free(c->rx);
	free(c);
	return err;
}

int soft_qp_create(struct rdma_conn *rc, const struct rdma_qp_attr *a)
{
	struct soft_conn *c = to_conn(rc);

	if (c->has_qp)
		return -EALREADY;
	if (!a || !a->pd || !a->send_cq || !a->recv_cq || !a->max_send_wr || !a->max_recv_wr ||
	    !a->max_send_sge || !a->max_recv_sge || a->max_send_sge > SOFT_MAX_SGE ||
	    a->max_recv_sge > SOFT_MAX_SGE || a->max_send_wr > (1u << 20) ||
	    a->max_recv_wr > (1u << 20))
		return -EINVAL;
	c->sq = calloc(a->max_send_wr, sizeof(*c->sq));
	c->rq = calloc(a->max_recv_wr, sizeof(*c->rq));
	if (!c->sq || !c->rq) {
		free(c->sq);
		free(c->rq);
		c->sq = NULL;
		c->rq = NULL;
		return -ENOMEM;
	}
	c->pd = to_pd(a->pd);
	c->scq = to_cq(a->send_cq);
	c->rcq = to_cq(a->recv_cq);
	c->sq_size = a->max_send_wr;
	c->rq_size = a->max_recv_wr;
	c->max_send_sge = a->max_send_sge;
	c->max_recv_sge = a->max_recv_sge;
	c->has_qp = true;
	return 0;
}

static int pdata_check(const struct rdma_conn_attr *p)
{
	if (p->pdata_len > SOFT_PDATA_MAX)
		return -EMSGSIZE;
	if (p->pdata_len && !p->pdata)
		return -EINVAL;
	return 0;
}

int soft_connect(struct rdma_dev *rd, const struct sockaddr *sa, socklen_t salen,
		 const struct rdma_qp_attr *attr, const struct rdma_conn_attr *p,
		 struct rdma_conn **ret)
{
	struct soft_dev *d = to_dev(rd);
	struct iwarp_mpa m = {.rev = IWARP_MPA_REV2, .enhanced = true, .p2p = true};
	struct soft_conn *c;
	int fd, err, cerr;

	err = pdata_check(p);
	if (err)
		return err;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	cerr = connect(fd, sa, salen) < 0 && errno != EINPROGRESS ? -errno : 0;
	if (cerr == -EINVAL || cerr == -EAFNOSUPPORT) {
		close(fd);
		return cerr;
	}
	err = conn_new(d, fd, S_CONNECTING, EPOLLOUT, &c);
	if (err)
		return err;
	err = soft_qp_create(&c->base, attr);
	if (err)
		goto err_free;
	c->want_ord = clamp16(p->initiator_depth, SOFT_ORD_MAX);
	c->want_ird = clamp16(p->responder_resources, SOFT_IRD_MAX);
	c->crc = !d->opts.no_crc;
	/* RFC 6581: IRD/ORD, and the zero-length Write as the RTR we send. */
	m.crc = c->crc;
	m.rtr = IWARP_MPA_RTR_WRITE;
	m.ird = c->want_ird;
	m.ord = c->want_ord;
	m.pdata = p->pdata;
	m.pdata_len = (uint16_t)p->pdata_len;
	err = mpa_push(c, &m);
	if (err)
		goto err_free;
	/* As rdma_cm: a peer that refuses is an event, not a return. */
	if (cerr)
		soft_connect_end(c, RDMA_EV_CONNECT_ERROR, cerr, NULL, 0);
	*ret = &c->base;
	return 0;

err_free:
	conn_free(c);
	return err;
}

int soft_accept(struct rdma_conn *rc, const struct rdma_conn_attr *p)
{
	struct soft_conn *c = to_conn(rc);
	struct iwarp_mpa m = {.reply = true, .rev = c->peer.rev, .enhanced = c->peer.enhanced};
	uint16_t ord = p->initiator_depth, ird = p->responder_resources;
	int err;

	if (c->state != S_REQ_RCVD || !c->has_qp)
		return -EINVAL;
	err = pdata_check(p);
	if (err)
		return err;
	if (c->peer.enhanced) {
		/* RFC 6581: our ORD within the initiator's IRD; our IRD up to
		 * its ORD, so that its Reads are not refused. */
		ord = ord < c->peer.ird ? ord : c->peer.ird;
		ird = ird > c->peer.ord ? ird : c->peer.ord;
		m.p2p = c->peer.p2p && rtr_pick(c->peer.rtr);
		m.rtr = m.p2p ? rtr_pick(c->peer.rtr) : 0;
	}
	c->ord = clamp16(ord, SOFT_ORD_MAX);
	c->ird = clamp16(ird, SOFT_IRD_MAX);
	m.ird = c->ird;
	m.ord = c->ord;
	/* Follow the initiator: CRC if it asked (RFC 5044 §7.1). */
	c->crc = c->peer.crc;
	m.crc = c->crc;
	m.pdata = p->pdata;
	m.pdata_len = (uint16_t)p->pdata_len;
	err = mpa_push(c, &m);
	if (err)
		return err;
	/* RFC 5044 §7.1.2: the responder sends nothing before the
	 * initiator's first FPDU (with p2p: its RTR). */
	c->tx_hold = true;
	c->rtr_send_pending = m.rtr == IWARP_MPA_RTR_SEND;
	establish(c);
	soft_ev_queue(c, &c->ev_setup, RDMA_EV_ESTABLISHED, 0, NULL, 0);
	if (!c->watched)
		/* The socket broke while the request waited. */
		soft_conn_error(c, -ECONNRESET);
	else
		/* FPDUs that came with the Request raise no more readiness. */
		soft_rx_process(c);
	return 0;
}

int soft_reject(struct rdma_conn *rc, const void *pdata, size_t len)
{
	struct soft_conn *c = to_conn(rc);
	struct iwarp_mpa m = {
		.reply = true,
		.reject = true,
		.rev = c->peer.rev,
		.enhanced = c->peer.enhanced,
		.pdata = pdata,
		.pdata_len = (uint16_t)len,
	};
	int err;

	if (c->state != S_REQ_RCVD)
		return -EINVAL;
	if (len > SOFT_PDATA_MAX)
		return -EMSGSIZE;
	soft_conn_error(c, 0);
	err = mpa_push(c, &m);
	/* Out now: the caller destroys the connection next. */
	soft_tx_run(c);
	return err;
}

int soft_disconnect(struct rdma_conn *rc)
{
	struct soft_conn *c = to_conn(rc);

	switch (c->state) {
	case S_CONNECTING:
	case S_REP_WAIT:
		soft_connect_end(c, RDMA_EV_CONNECT_ERROR, -ECONNABORTED, NULL, 0);
		return 0;
	case S_REQ_WAIT:
	case S_REQ_RCVD:
		return -EINVAL;
	default:
		soft_conn_error(c, 0);
		return 0;
	}
}

void soft_conn_destroy(struct rdma_conn *rc)
{
	conn_free(to_conn(rc));
}

int soft_conn_get_stats(const struct rdma_conn *rc, struct rdma_conn_stats *st)
{
	*st = to_cconn(rc)->st;
	return 0;
}

/* Listeners */

static int listener_take(struct soft_listener *l, int fd, const void *buf, size_t len)
{
	struct soft_conn *c;
	int err;

	if (len > SOFT_RX_CAP) {
		close(fd);
		return -EMSGSIZE;
	}
	err = conn_new(l->dev, fd, S_REQ_WAIT, EPOLLIN, &c);
	if (err)
		return err;
	c->listener = l;
	c->l_next = l->pending;
	if (l->pending)
		l->pending->l_prev = c;
	l->pending = c;
	if (len) {
		memcpy(c->rx, buf, len);
		c->rx_len = len;
		soft_rx_process(c);
	}
	return 0;
}

static void listener_cb(struct sched_fd *sfd, uint32_t events)
{
	struct soft_listener *l = container_of(sfd, struct soft_listener, sfd);
	int i, fd;

	(void)events;
	for (i = 0; i < SOFT_ACCEPT_BATCH; i++) {
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		listener_take(l, fd, NULL, 0);
	}
}

int soft_listen(struct rdma_dev *rd, const struct sockaddr *sa, socklen_t salen, int backlog,
		struct rdma_listener **ret)
{
	struct soft_listener *l = calloc(1, sizeof(*l));
	int one = 1, err;

	if (!l)
		return -ENOMEM;
	l->base.dev = rd;
	l->dev = to_dev(rd);
	l->fd = -1;
	if (!sa) {
		*ret = &l->base;
		return 0;
	}
	l->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		err = -errno;
		goto err_free;
	}
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, sa, salen) < 0 || listen(l->fd, backlog > 0 ? backlog : 128) < 0) {
		err = -errno;
		goto err_close;
	}
	err = sched_fd_add(l->dev->sched, &l->sfd, l->fd, EPOLLIN, listener_cb);
	if (err)
		goto err_close;
	*ret = &l->base;
	return 0;

err_close:
	close(l->fd);
err_free:
	free(l);
	return err;
}

void soft_listener_destroy(struct rdma_listener *rl)
{
	struct soft_listener *l = to_listener(rl);

	/* Connections no caller has seen yet go with it. */
	while (l->pending)
		conn_free(l->pending);
	if (l->fd >= 0) {
		sched_fd_del(l->dev->sched, &l->sfd);
		close(l->fd);
	}
	free(l);
}

int soft_listener_addr(const struct rdma_listener *rl, struct sockaddr_storage *ss)
{
	const struct soft_listener *l = container_of(rl, const struct soft_listener, base);
	socklen_t sl = sizeof(*ss);

	if (l->fd < 0)
		return -ENOTCONN;
	if (getsockname(l->fd, (struct sockaddr *)ss, &sl) < 0)
		return -errno;
	return 0;
}

int soft_listener_adopt(struct rdma_listener *rl, int fd, const void *buf, size_t len)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		return -EBADF;
	}
	return listener_take(to_listener(rl), fd, buf, len);
}
