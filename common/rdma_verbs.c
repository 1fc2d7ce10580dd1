/*
 * rdma_verbs: the verbs provider (DESIGN §5): libibverbs and librdmacm,
 * for real NICs and the kernel's rxe and siw. Each operation is one verbs
 * call, translated: -errno for verbs' positive errno (converted here, in
 * one place per call), our structs for theirs.
 *
 * Protection domains and completion queues live on one RDMA device: the
 * one that reaches rdma_dev_opts.route_to (rdma_resolve_addr()), else the
 * first that rdma_get_devices() lists. A connection whose route leads to
 * another device fails with -EXDEV when its queue pair is created.
 *
 * Built only when rdma-core is found (meson's have_rdma). Not tested on
 * this host, whose kernel has no RDMA device; the kernel-RDMA lane runs it.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "common/rdma.h"

#define VERBS_RESOLVE_MS 2000
#define VERBS_POST_BATCH 16
#define VERBS_PDATA_MAX 255 /* struct rdma_conn_param's private_data_len */
#define VERBS_RNR_RETRY_INFINITE 7
#define IB_CM_REJ_CONSUMER_DEFINED 28 /* an rdma_reject() (IBA 12.6.7.2) */

/* Our SGEs and access flags are theirs, so they pass through. */
static_assert(sizeof(struct rdma_sge) == sizeof(struct ibv_sge), "rdma_sge is ibv_sge");
static_assert(offsetof(struct rdma_sge, lkey) == offsetof(struct ibv_sge, lkey),
	      "rdma_sge is ibv_sge");
static_assert(RDMA_ACCESS_LOCAL_WRITE == IBV_ACCESS_LOCAL_WRITE &&
		      RDMA_ACCESS_REMOTE_WRITE == IBV_ACCESS_REMOTE_WRITE &&
		      RDMA_ACCESS_REMOTE_READ == IBV_ACCESS_REMOTE_READ,
	      "access flags are ibv_access_flags");

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct verbs_dev {
	struct rdma_dev base;
	struct rdma_event_channel *ch;
	struct ibv_context **ctxs;
	int n_ctxs;
	struct ibv_context *ctx; /* the one PDs and CQs are made on */
};

struct verbs_pd {
	struct rdma_pd base;
	struct ibv_pd *pd;
};

struct verbs_mr {
	struct rdma_mr base;
	struct ibv_mr *mr;
};

struct verbs_cq {
	struct rdma_cq base;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
};

/* An rdma_cm_id's context is one of these two; @is_listener tells which. */
struct verbs_listener {
	bool is_listener;
	struct rdma_listener base;
	struct rdma_cm_id *id;
};

struct verbs_conn {
	bool is_listener;
	struct rdma_conn base;
	struct rdma_cm_id *id;
	/* Active side: what to create and send once the route is known. */
	struct ibv_pd *pd;
	struct ibv_qp_init_attr init;
	struct rdma_conn_param cp;
	uint8_t pdata[VERBS_PDATA_MAX];
};

static struct verbs_dev *to_dev(struct rdma_dev *d)
{
	return container_of(d, struct verbs_dev, base);
}

static struct verbs_conn *to_conn(struct rdma_conn *c)
{
	return container_of(c, struct verbs_conn, base);
}

static struct verbs_cq *to_cq(struct rdma_cq *cq)
{
	return container_of(cq, struct verbs_cq, base);
}

static int neg_errno(void)
{
	return errno ? -errno : -EIO;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* The device */

static bool verbs_probe(void)
{
	struct ibv_device **list;
	int n = 0;

	list = ibv_get_device_list(&n);
	if (list)
		ibv_free_device_list(list);
	return n > 0;
}

/* The device that reaches @sa: what rdma_resolve_addr() binds an id to
 * (for one of our own addresses, the device of its netdev). */
static int route_ctx(const struct sockaddr *sa, struct ibv_context **ret)
{
	struct rdma_event_channel *ch = rdma_create_event_channel();
	struct rdma_cm_event *ev = NULL;
	struct rdma_cm_id *id = NULL;
	int err = 0;

	if (!ch)
		return neg_errno();
	if (rdma_create_id(ch, &id, NULL, RDMA_PS_TCP) ||
	    rdma_resolve_addr(id, NULL, (struct sockaddr *)sa, VERBS_RESOLVE_MS) ||
	    rdma_get_cm_event(ch, &ev))
		err = neg_errno();
	else if (ev->event != RDMA_CM_EVENT_ADDR_RESOLVED || !id->verbs)
		err = ev->status < 0 ? ev->status : -EHOSTUNREACH;
	else
		*ret = id->verbs;
	if (ev)
		rdma_ack_cm_event(ev);
	if (id)
		rdma_destroy_id(id);
	rdma_destroy_event_channel(ch);
	return err;
}

static int verbs_dev_create(struct sched *s, const struct rdma_dev_opts *opts,
			    struct rdma_dev **ret)
{
	struct verbs_dev *d = calloc(1, sizeof(*d));
	int err;

	(void)s;
	if (!d)
		return -ENOMEM;
	d->ch = rdma_create_event_channel();
	if (!d->ch) {
		err = neg_errno();
		goto err_free;
	}
	err = set_nonblock(d->ch->fd);
	if (err)
		goto err_destroy_ch;
	d->ctxs = rdma_get_devices(&d->n_ctxs);
	if (!d->ctxs || !d->n_ctxs) {
		err = -ENODEV;
		goto err_free_devices;
	}
	d->ctx = d->ctxs[0];
	if (opts && opts->route_to) {
		struct ibv_context *ctx = NULL;

		err = route_ctx(opts->route_to, &ctx);
		if (err)
			goto err_free_devices;
		/* librdmacm hands out one context per device, to ids and to
		 * rdma_get_devices() alike. */
		for (int i = 0; i < d->n_ctxs; i++)
			if (d->ctxs[i] == ctx || d->ctxs[i]->device == ctx->device)
				d->ctx = d->ctxs[i];
		if (d->ctx->device != ctx->device) {
			err = -ENODEV;
			goto err_free_devices;
		}
	}
	d->base.ops = &rdma_verbs_ops;
	d->base.event_fd = d->ch->fd;
	*ret = &d->base;
	return 0;

err_free_devices:
	if (d->ctxs)
		rdma_free_devices(d->ctxs);
err_destroy_ch:
	rdma_destroy_event_channel(d->ch);
err_free:
	free(d);
	return err;
}

static void verbs_dev_destroy(struct rdma_dev *rd)
{
	struct verbs_dev *d = to_dev(rd);

	rdma_free_devices(d->ctxs);
	rdma_destroy_event_channel(d->ch);
	free(d);
}

/* Protection domains, memory regions */

static int verbs_pd_create(struct rdma_dev *rd, struct rdma_pd **ret)
{
	struct verbs_pd *pd = calloc(1, sizeof(*pd));

	if (!pd)
		return -ENOMEM;
	pd->pd = ibv_alloc_pd(to_dev(rd)->ctx);
	if (!pd->pd) {
		free(pd);
		return -ENOMEM;
	}
	pd->base.dev = rd;
	*ret = &pd->base;
	return 0;
}

static void verbs_pd_destroy(struct rdma_pd *rpd)
{
	struct verbs_pd *pd = container_of(rpd, struct verbs_pd, base);

	ibv_dealloc_pd(pd->pd);
	free(pd);
}

static int verbs_mr_create(struct rdma_pd *rpd, void *addr, size_t len, unsigned int access,
			   struct rdma_mr **ret)
{
	struct verbs_mr *mr = calloc(1, sizeof(*mr));

	if (!mr)
		return -ENOMEM;
	mr->mr = ibv_reg_mr(container_of(rpd, struct verbs_pd, base)->pd, addr, len, (int)access);
	if (!mr->mr) {
		free(mr);
		return neg_errno();
	}
	mr->base.pd = rpd;
	mr->base.lkey = mr->mr->lkey;
	mr->base.rkey = mr->mr->rkey;
	*ret = &mr->base;
	return 0;
}

static void verbs_mr_destroy(struct rdma_mr *rmr)
{
	struct verbs_mr *mr = container_of(rmr, struct verbs_mr, base);

	ibv_dereg_mr(mr->mr);
	free(mr);
}

/* Completion queues */

static int verbs_cq_create(struct rdma_dev *rd, int cqe, struct rdma_cq **ret)
{
	struct ibv_context *ctx = to_dev(rd)->ctx;
	struct verbs_cq *cq = calloc(1, sizeof(*cq));
	int err;

	if (!cq)
		return -ENOMEM;
	cq->ch = ibv_create_comp_channel(ctx);
	if (!cq->ch) {
		err = neg_errno();
		goto err_free;
	}
	/* ibv_get_cq_event() must not block the scheduler. */
	err = set_nonblock(cq->ch->fd);
	if (err)
		goto err_destroy_ch;
	cq->cq = ibv_create_cq(ctx, cqe, cq, cq->ch, 0);
	if (!cq->cq) {
		err = neg_errno();
		goto err_destroy_ch;
	}
	cq->base.dev = rd;
	cq->base.fd = cq->ch->fd;
	*ret = &cq->base;
	return 0;

err_destroy_ch:
	ibv_destroy_comp_channel(cq->ch);
err_free:
	free(cq);
	return err;
}

static void verbs_cq_destroy(struct rdma_cq *rcq)
{
	struct verbs_cq *cq = to_cq(rcq);

	ibv_destroy_cq(cq->cq);
	ibv_destroy_comp_channel(cq->ch);
	free(cq);
}

static enum rdma_wc_status wc_status(enum ibv_wc_status st)
{
	switch (st) {
	case IBV_WC_SUCCESS:
		return RDMA_WC_SUCCESS;
	case IBV_WC_LOC_LEN_ERR:
		return RDMA_WC_LOC_LEN_ERR;
	case IBV_WC_LOC_PROT_ERR:
		return RDMA_WC_LOC_PROT_ERR;
	case IBV_WC_WR_FLUSH_ERR:
		return RDMA_WC_WR_FLUSH_ERR;
	case IBV_WC_REM_ACCESS_ERR:
		return RDMA_WC_REM_ACCESS_ERR;
	case IBV_WC_REM_OP_ERR:
		return RDMA_WC_REM_OP_ERR;
	case IBV_WC_RNR_RETRY_EXC_ERR:
		return RDMA_WC_RNR_RETRY_EXC_ERR;
	default:
		return RDMA_WC_GENERAL_ERR;
	}
}

static enum rdma_wc_opcode wc_opcode(enum ibv_wc_opcode op)
{
	switch (op) {
	case IBV_WC_RDMA_WRITE:
		return RDMA_WC_RDMA_WRITE;
	case IBV_WC_RDMA_READ:
		return RDMA_WC_RDMA_READ;
	case IBV_WC_RECV:
	case IBV_WC_RECV_RDMA_WITH_IMM:
		return RDMA_WC_RECV;
	default:
		return RDMA_WC_SEND;
	}
}

static int verbs_cq_poll(struct rdma_cq *rcq, struct rdma_wc *wc, int n)
{
	struct ibv_wc w[VERBS_POST_BATCH];
	int got = 0, k, i;

	while (got < n) {
		k = ibv_poll_cq(to_cq(rcq)->cq,
				n - got < VERBS_POST_BATCH ? n - got : VERBS_POST_BATCH, w);
		if (k < 0)
			return got ? got : -EIO;
		for (i = 0; i < k; i++) {
			wc[got + i] = (struct rdma_wc){
				.wr_id = w[i].wr_id,
				.status = wc_status(w[i].status),
				.opcode = wc_opcode(w[i].opcode),
				.byte_len = w[i].byte_len,
				.flags = (w[i].wc_flags & IBV_WC_WITH_INV) ? RDMA_WC_WITH_INV : 0,
				.invalidated_rkey = (w[i].wc_flags & IBV_WC_WITH_INV)
							    ? w[i].invalidated_rkey
							    : 0,
			};
		}
		got += k;
		if (k < VERBS_POST_BATCH)
			break;
	}
	return got;
}

static int verbs_cq_arm(struct rdma_cq *rcq)
{
	return -ibv_req_notify_cq(to_cq(rcq)->cq, 0);
}

static int verbs_cq_ack(struct rdma_cq *rcq)
{
	struct verbs_cq *cq = to_cq(rcq);
	struct ibv_cq *ev_cq;
	void *ev_ctx;
	unsigned int n = 0;

	while (ibv_get_cq_event(cq->ch, &ev_cq, &ev_ctx) == 0)
		n++;
	if (!n)
		return -EAGAIN;
	ibv_ack_cq_events(cq->cq, n);
	return (int)n;
}

/* Connection management */

static int verbs_listen(struct rdma_dev *rd, const struct sockaddr *sa, socklen_t salen,
			int backlog, struct rdma_listener **ret)
{
	struct verbs_listener *l;
	int err;

	(void)salen;
	/* A listener fed by the iSCSI portal's socket is the soft one's. */
	if (!sa)
		return -EOPNOTSUPP;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->is_listener = true;
	if (rdma_create_id(to_dev(rd)->ch, &l->id, l, RDMA_PS_TCP)) {
		err = neg_errno();
		goto err_free;
	}
	if (rdma_bind_addr(l->id, (struct sockaddr *)sa) ||
	    rdma_listen(l->id, backlog > 0 ? backlog : 128)) {
		err = neg_errno();
		goto err_destroy_id;
	}
	l->base.dev = rd;
	*ret = &l->base;
	return 0;

err_destroy_id:
	rdma_destroy_id(l->id);
err_free:
	free(l);
	return err;
}

static void verbs_listener_destroy(struct rdma_listener *rl)
{
	struct verbs_listener *l = container_of(rl, struct verbs_listener, base);

	rdma_destroy_id(l->id);
	free(l);
}

static int verbs_listener_addr(const struct rdma_listener *rl, struct sockaddr_storage *ss)
{
	const struct verbs_listener *l = container_of(rl, const struct verbs_listener, base);
	const struct sockaddr *sa = rdma_get_local_addr(l->id);

	memset(ss, 0, sizeof(*ss));
	memcpy(ss, sa,
	       sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in));
	return 0;
}

static int conn_param(struct verbs_conn *c, const struct rdma_conn_attr *p)
{
	if (p->pdata_len > VERBS_PDATA_MAX)
		return -EMSGSIZE;
	if (p->pdata_len)
		memcpy(c->pdata, p->pdata, p->pdata_len);
	c->cp = (struct rdma_conn_param){
		.private_data = p->pdata_len ? c->pdata : NULL,
		.private_data_len = (uint8_t)p->pdata_len,
		.initiator_depth = p->initiator_depth > 255 ? 255 : (uint8_t)p->initiator_depth,
		.responder_resources =
			p->responder_resources > 255 ? 255 : (uint8_t)p->responder_resources,
		.retry_count = 7,
		.rnr_retry_count = VERBS_RNR_RETRY_INFINITE,
	};
	return 0;
}

static void qp_init_attr(struct verbs_conn *c, const struct rdma_qp_attr *a)
{
	c->pd = container_of(a->pd, struct verbs_pd, base)->pd;
	c->init = (struct ibv_qp_init_attr){
		.send_cq = to_cq(a->send_cq)->cq,
		.recv_cq = to_cq(a->recv_cq)->cq,
		.cap =
			{
				.max_send_wr = a->max_send_wr,
				.max_recv_wr = a->max_recv_wr,
				.max_send_sge = a->max_send_sge,
				.max_recv_sge = a->max_recv_sge,
			},
		.qp_type = IBV_QPT_RC,
	};
}

static int qp_make(struct verbs_conn *c)
{
	if (c->id->verbs != c->pd->context)
		return -EXDEV;
	if (rdma_create_qp(c->id, c->pd, &c->init))
		return neg_errno();
	return 0;
}

static int verbs_connect(struct rdma_dev *rd, const struct sockaddr *sa, socklen_t salen,
			 const struct rdma_qp_attr *attr, const struct rdma_conn_attr *p,
			 struct rdma_conn **ret)
{
	struct verbs_conn *c = calloc(1, sizeof(*c));
	int err;

	(void)salen;
	if (!c)
		return -ENOMEM;
	err = conn_param(c, p);
	if (err)
		goto err_free;
	qp_init_attr(c, attr);
	if (rdma_create_id(to_dev(rd)->ch, &c->id, c, RDMA_PS_TCP)) {
		err = neg_errno();
		goto err_free;
	}
	/* ADDR_RESOLVED, then ROUTE_RESOLVED, come through get_event. */
	if (rdma_resolve_addr(c->id, NULL, (struct sockaddr *)sa, VERBS_RESOLVE_MS)) {
		err = neg_errno();
		goto err_destroy_id;
	}
	c->base.dev = rd;
	*ret = &c->base;
	return 0;

err_destroy_id:
	rdma_destroy_id(c->id);
err_free:
	free(c);
	return err;
}

static int verbs_qp_create(struct rdma_conn *rc, const struct rdma_qp_attr *attr)
{
	struct verbs_conn *c = to_conn(rc);

	if (c->id->qp)
		return -EALREADY;
	qp_init_attr(c, attr);
	return qp_make(c);
}

static int verbs_accept(struct rdma_conn *rc, const struct rdma_conn_attr *p)
{
	struct verbs_conn *c = to_conn(rc);
	int err;

	if (!c->id->qp)
		return -EINVAL;
	err = conn_param(c, p);
	if (err)
		return err;
	return rdma_accept(c->id, &c->cp) ? neg_errno() : 0;
}

static int verbs_reject(struct rdma_conn *rc, const void *pdata, size_t len)
{
	if (len > VERBS_PDATA_MAX)
		return -EMSGSIZE;
	return rdma_reject(to_conn(rc)->id, pdata, (uint8_t)len) ? neg_errno() : 0;
}

static int verbs_disconnect(struct rdma_conn *rc)
{
	return rdma_disconnect(to_conn(rc)->id) ? neg_errno() : 0;
}

static void verbs_conn_destroy(struct rdma_conn *rc)
{
	struct verbs_conn *c = to_conn(rc);

	if (c->id->qp)
		rdma_destroy_qp(c->id);
	rdma_destroy_id(c->id);
	free(c);
}

/* Events */

static void ev_fill(struct rdma_event *ev, enum rdma_event_type type, struct verbs_conn *c,
		    const struct rdma_cm_event *cev, int status)
{
	const struct rdma_conn_param *cp = &cev->param.conn;
	const struct sockaddr *pa;

	memset(ev, 0, offsetof(struct rdma_event, pdata));
	ev->type = type;
	ev->conn = &c->base;
	ev->status = status;
	ev->initiator_depth = cp->initiator_depth;
	ev->responder_resources = cp->responder_resources;
	pa = rdma_get_peer_addr(cev->id);
	if (pa && pa->sa_family == AF_INET)
		memcpy(&ev->peer, pa, sizeof(struct sockaddr_in));
	else if (pa && pa->sa_family == AF_INET6)
		memcpy(&ev->peer, pa, sizeof(struct sockaddr_in6));
	if (cp->private_data && cp->private_data_len) {
		ev->pdata_len = cp->private_data_len;
		memcpy(ev->pdata, cp->private_data, cp->private_data_len);
	}
}

/* ESTABLISHED: our ORD and IRD are what we connected or accepted with.
 * Neither the event nor the queue pair says so reliably: on IB and RoCE
 * the passive side's event has zeros (an RTU carries none), rdma_cm maps
 * an iWARP ESTABLISHED's IRD to initiator_depth, and siw's query_qp
 * (Linux 6.1, siw_verbs.c) swaps max_rd_atomic and max_dest_rd_atomic. */
static void established_depths(struct verbs_conn *c, struct rdma_event *ev)
{
	ev->initiator_depth = c->cp.initiator_depth;
	ev->responder_resources = c->cp.responder_resources;
}

/* A new connection from a listener's request. */
static int ev_request(struct verbs_dev *d, const struct rdma_cm_event *cev, struct rdma_event *ev)
{
	struct verbs_listener *l = cev->listen_id->context;
	struct verbs_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		/* Nobody will see it: refused, destroyed once acknowledged. */
		rdma_reject(cev->id, NULL, 0);
		return -ENOMEM;
	}
	c->id = cev->id;
	c->id->context = c;
	c->base.dev = &d->base;
	ev_fill(ev, RDMA_EV_CONNECT_REQUEST, c, cev, 0);
	/* rdma_cm gives the request's depths from our side (what we may
	 * use: ib_cm and iw_cm swap them); rdma.h gives the peer's. */
	ev->initiator_depth = cev->param.conn.responder_resources;
	ev->responder_resources = cev->param.conn.initiator_depth;
	ev->listener = &l->base;
	return 0;
}

/* Active side, the steps the caller does not see. Returns 0 when an
 * event is for the caller (@ev filled), -EAGAIN when not. */
static int ev_active_step(struct verbs_conn *c, const struct rdma_cm_event *cev,
			  struct rdma_event *ev)
{
	int err;

	if (cev->event == RDMA_CM_EVENT_ADDR_RESOLVED)
		err = rdma_resolve_route(c->id, VERBS_RESOLVE_MS) ? neg_errno() : 0;
	else if (!(err = qp_make(c)))
		err = rdma_connect(c->id, &c->cp) ? neg_errno() : 0;
	if (!err)
		return -EAGAIN;
	ev_fill(ev, RDMA_EV_CONNECT_ERROR, c, cev, err);
	return 0;
}

static int ev_translate(struct verbs_dev *d, const struct rdma_cm_event *cev, struct rdma_event *ev)
{
	struct verbs_conn *c = cev->id->context;
	int st = cev->status;

	switch (cev->event) {
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		return ev_request(d, cev, ev);
	case RDMA_CM_EVENT_ADDR_RESOLVED:
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		return ev_active_step(c, cev, ev);
	case RDMA_CM_EVENT_ESTABLISHED:
		ev_fill(ev, RDMA_EV_ESTABLISHED, c, cev, 0);
		established_depths(c, ev);
		return 0;
	case RDMA_CM_EVENT_REJECTED:
		/* An rdma_reject() (IB) or an MPA reject (iWARP), or no
		 * listener at all, which is a refusal. */
		if (st == IB_CM_REJ_CONSUMER_DEFINED || st == -ECONNREFUSED)
			ev_fill(ev, RDMA_EV_REJECTED, c, cev, 0);
		else
			ev_fill(ev, RDMA_EV_CONNECT_ERROR, c, cev, -ECONNREFUSED);
		return 0;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
		ev_fill(ev, RDMA_EV_CONNECT_ERROR, c, cev, st < 0 ? st : -EHOSTUNREACH);
		return 0;
	case RDMA_CM_EVENT_DISCONNECTED:
		ev_fill(ev, RDMA_EV_DISCONNECTED, c, cev, 0);
		return 0;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		ev_fill(ev, RDMA_EV_DISCONNECTED, c, cev, -ENODEV);
		return 0;
	default:
		/* TIMEWAIT_EXIT, ADDR_CHANGE...: nothing for the caller. */
		return -EAGAIN;
	}
}

static int verbs_get_event(struct rdma_dev *rd, struct rdma_event *ev)
{
	struct verbs_dev *d = to_dev(rd);
	struct rdma_cm_event *cev;
	struct rdma_cm_id *id;
	int err;

	for (;;) {
		if (rdma_get_cm_event(d->ch, &cev))
			return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : neg_errno();
		id = cev->id;
		/* A listener's own events (device removal...): no connection. */
		if (cev->event != RDMA_CM_EVENT_CONNECT_REQUEST && *(bool *)id->context) {
			rdma_ack_cm_event(cev);
			continue;
		}
		err = ev_translate(d, cev, ev);
		/* Copied: acknowledged at once, so destroy never waits. */
		rdma_ack_cm_event(cev);
		if (err == -ENOMEM)
			rdma_destroy_id(id);
		else if (err != -EAGAIN)
			return err;
	}
}

/* Work requests */

static int send_opcode(const struct rdma_send_wr *wr, struct ibv_send_wr *w)
{
	switch (wr->opcode) {
	case RDMA_WR_SEND:
		w->opcode = IBV_WR_SEND;
		return 0;
	case RDMA_WR_SEND_WITH_INV:
		w->opcode = IBV_WR_SEND_WITH_INV;
		w->invalidate_rkey = wr->invalidate_rkey;
		return 0;
	case RDMA_WR_RDMA_WRITE:
		w->opcode = IBV_WR_RDMA_WRITE;
		break;
	case RDMA_WR_RDMA_READ:
		w->opcode = IBV_WR_RDMA_READ;
		break;
	default:
		return -EINVAL;
	}
	w->wr.rdma.remote_addr = wr->remote_addr;
	w->wr.rdma.rkey = wr->rkey;
	return 0;
}

/* Up to VERBS_POST_BATCH requests of the chain at @wr, one ibv_post_send. */
static int post_send_batch(struct verbs_conn *c, struct rdma_send_wr **wr,
			   struct rdma_send_wr **bad_wr)
{
	struct ibv_send_wr w[VERBS_POST_BATCH], *bad = NULL;
	struct rdma_send_wr *src[VERBS_POST_BATCH], *r = *wr;
	int n = 0, i, err;

	for (; r && n < VERBS_POST_BATCH; r = r->next, n++) {
		if (r->flags & ~RDMA_SEND_SIGNALED)
			break;
		memset(&w[n], 0, sizeof(w[n]));
		if (send_opcode(r, &w[n]))
			break;
		w[n].wr_id = r->wr_id;
		w[n].sg_list = (struct ibv_sge *)r->sg_list;
		w[n].num_sge = r->num_sge;
		w[n].send_flags = (r->flags & RDMA_SEND_SIGNALED) ? IBV_SEND_SIGNALED : 0;
		w[n].next = NULL;
		if (n)
			w[n - 1].next = &w[n];
		src[n] = r;
	}
	if (n) {
		err = ibv_post_send(c->id->qp, w, &bad);
		if (err) {
			for (i = 0; i < n && &w[i] != bad; i++)
				;
			*bad_wr = i < n ? src[i] : src[0];
			return -err;
		}
	}
	if (r && n < VERBS_POST_BATCH) {
		*bad_wr = r;
		return -EINVAL;
	}
	*wr = r;
	return 0;
}

static int verbs_post_send(struct rdma_conn *rc, struct rdma_send_wr *wr,
			   struct rdma_send_wr **bad_wr)
{
	struct verbs_conn *c = to_conn(rc);
	int err;

	if (!c->id->qp) {
		*bad_wr = wr;
		return -EINVAL;
	}
	while (wr) {
		err = post_send_batch(c, &wr, bad_wr);
		if (err)
			return err;
	}
	return 0;
}

static int verbs_post_recv(struct rdma_conn *rc, struct rdma_recv_wr *wr,
			   struct rdma_recv_wr **bad_wr)
{
	struct verbs_conn *c = to_conn(rc);
	struct ibv_recv_wr w, *bad;
	int err;

	if (!c->id->qp) {
		*bad_wr = wr;
		return -EINVAL;
	}
	/* One at a time: a receive is posted per message, rarely chained. */
	for (; wr; wr = wr->next) {
		w = (struct ibv_recv_wr){
			.wr_id = wr->wr_id,
			.sg_list = (struct ibv_sge *)wr->sg_list,
			.num_sge = wr->num_sge,
		};
		err = ibv_post_recv(c->id->qp, &w, &bad);
		if (err) {
			*bad_wr = wr;
			return -err;
		}
	}
	return 0;
}

const struct rdma_ops rdma_verbs_ops = {
	.name = "verbs",
	.probe = verbs_probe,
	.dev_create = verbs_dev_create,
	.dev_destroy = verbs_dev_destroy,
	.get_event = verbs_get_event,
	.pd_create = verbs_pd_create,
	.pd_destroy = verbs_pd_destroy,
	.mr_create = verbs_mr_create,
	.mr_destroy = verbs_mr_destroy,
	.cq_create = verbs_cq_create,
	.cq_destroy = verbs_cq_destroy,
	.cq_poll = verbs_cq_poll,
	.cq_arm = verbs_cq_arm,
	.cq_ack = verbs_cq_ack,
	.cq_set_notify = rdma_nosup_cq_set_notify,
	.listen = verbs_listen,
	.listener_destroy = verbs_listener_destroy,
	.listener_addr = verbs_listener_addr,
	.listener_adopt = rdma_nosup_listener_adopt,
	.connect = verbs_connect,
	.qp_create = verbs_qp_create,
	.accept = verbs_accept,
	.reject = verbs_reject,
	.disconnect = verbs_disconnect,
	.conn_destroy = verbs_conn_destroy,
	.conn_get_stats = rdma_nosup_conn_get_stats,
	.post_send = verbs_post_send,
	.post_recv = verbs_post_recv,
};
