/*
 * soft_verbs: the soft provider's objects and work (see soft_priv.h): the
 * device and its events, completion queues, protection domains and memory
 * regions with their STag checks, the work queues and their completions,
 * posting, and the ops table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/soft/soft_priv.h"

static void efd_signal(int fd)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: it is readable then. */
	if (write(fd, &one, sizeof(one)) < 0)
		return;
}

static uint64_t efd_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* Completion queues */

static bool cq_reserve(struct soft_cq *cq)
{
	if (cq->reserved >= cq->cap)
		return false;
	cq->reserved++;
	return true;
}

void soft_cq_release(struct soft_cq *cq, uint32_t n)
{
	cq->reserved -= n;
}

/* Add a completion whose slot was reserved; notify once if armed. */
static void cq_push(struct soft_cq *cq, const struct rdma_wc *wc)
{
	cq->ring[(cq->head + cq->count) % cq->cap] = *wc;
	cq->count++;
	/* ibv_req_notify_cq(3): one-shot, and only for entries added after
	 * the arm; the poller's drain finds those added before it. */
	if (cq->armed) {
		cq->armed = false;
		if (cq->notify)
			cq->notify(cq->notify_arg);
		else
			efd_signal(cq->base.fd);
	}
}

static int soft_cq_create(struct rdma_dev *d, int cqe, struct rdma_cq **ret)
{
	struct soft_cq *cq;
	int err;

	cq = calloc(1, sizeof(*cq));
	if (!cq)
		return -ENOMEM;
	cq->cap = (uint32_t)cqe;
	cq->ring = calloc(cq->cap, sizeof(*cq->ring));
	if (!cq->ring) {
		err = -ENOMEM;
		goto err_free_cq;
	}
	cq->base.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (cq->base.fd < 0) {
		err = -errno;
		goto err_free_ring;
	}
	cq->base.dev = d;
	*ret = &cq->base;
	return 0;

err_free_ring:
	free(cq->ring);
err_free_cq:
	free(cq);
	return err;
}

static void soft_cq_destroy(struct rdma_cq *rcq)
{
	struct soft_cq *cq = to_cq(rcq);

	close(cq->base.fd);
	free(cq->ring);
	free(cq);
}

static int soft_cq_poll(struct rdma_cq *rcq, struct rdma_wc *wc, int n)
{
	struct soft_cq *cq = to_cq(rcq);
	int i;

	if (n < 0)
		return -EINVAL;
	for (i = 0; i < n && cq->count; i++) {
		wc[i] = cq->ring[cq->head];
		cq->head = (cq->head + 1) % cq->cap;
		cq->count--;
		cq->reserved--;
	}
	return i;
}

static int soft_cq_arm(struct rdma_cq *rcq)
{
	to_cq(rcq)->armed = true;
	return 0;
}

static int soft_cq_set_notify(struct rdma_cq *rcq, void (*fn)(void *arg), void *arg)
{
	struct soft_cq *cq = to_cq(rcq);

	cq->notify = fn;
	cq->notify_arg = arg;
	return 0;
}

static int soft_cq_ack(struct rdma_cq *rcq)
{
	uint64_t v = efd_drain(rcq->fd);

	if (!v)
		return -EAGAIN;
	return v > INT32_MAX ? INT32_MAX : (int)v;
}

/* Events: a queue whose eventfd is readable exactly while it is not empty */

void soft_ev_unlink(struct soft_dev *d, struct soft_evq *q)
{
	if (!q->queued)
		return;
	if (q->prev)
		q->prev->next = q->next;
	else
		d->ev_head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		d->ev_tail = q->prev;
	q->queued = false;
	q->next = q->prev = NULL;
	if (!d->ev_head)
		efd_drain(d->base.event_fd);
}

void soft_ev_queue(struct soft_conn *c, struct soft_evq *q, enum rdma_event_type type, int status,
		   const void *pdata, size_t len)
{
	struct soft_dev *d = c->dev;
	socklen_t plen;

	soft_ev_unlink(d, q);
	q->conn = c;
	q->ev.type = type;
	q->ev.conn = &c->base;
	q->ev.listener = c->listener ? &c->listener->base : NULL;
	q->ev.status = status;
	q->ev.initiator_depth = c->ord;
	q->ev.responder_resources = c->ird;
	plen = sizeof(q->ev.peer);
	if (c->fd < 0 || getpeername(c->fd, (struct sockaddr *)&q->ev.peer, &plen))
		q->ev.peer.ss_family = AF_UNSPEC;
	q->ev.pdata_len = (uint16_t)min_u64(len, RDMA_PDATA_MAX);
	if (q->ev.pdata_len)
		memcpy(q->ev.pdata, pdata, q->ev.pdata_len);
	q->next = NULL;
	q->prev = d->ev_tail;
	if (d->ev_tail)
		d->ev_tail->next = q;
	else
		d->ev_head = q;
	d->ev_tail = q;
	q->queued = true;
	if (!q->prev)
		efd_signal(d->base.event_fd);
}

void soft_listener_unlink(struct soft_conn *c)
{
	struct soft_listener *l = c->listener;

	if (!l)
		return;
	if (c->l_prev)
		c->l_prev->l_next = c->l_next;
	else
		l->pending = c->l_next;
	if (c->l_next)
		c->l_next->l_prev = c->l_prev;
	c->listener = NULL;
	c->l_next = c->l_prev = NULL;
}

static int soft_get_event(struct rdma_dev *rd, struct rdma_event *ev)
{
	struct soft_dev *d = to_dev(rd);
	struct soft_evq *q = d->ev_head;

	if (!q)
		return -EAGAIN;
	*ev = q->ev;
	soft_ev_unlink(d, q);
	/* Taken: from now on the caller owns the connection. */
	if (ev->type == RDMA_EV_CONNECT_REQUEST)
		soft_listener_unlink(q->conn);
	return 0;
}

/* Protection domains and memory regions */

static int soft_pd_create(struct rdma_dev *d, struct rdma_pd **ret)
{
	struct soft_pd *pd = calloc(1, sizeof(*pd));

	if (!pd)
		return -ENOMEM;
	pd->base.dev = d;
	*ret = &pd->base;
	return 0;
}

static void soft_pd_destroy(struct rdma_pd *pd)
{
	free(to_pd(pd));
}

struct soft_mr *soft_mr_find(struct soft_dev *d, uint32_t stag)
{
	uint32_t idx = stag >> 8;
	struct soft_mr *mr;

	if (idx >= d->n_mrs)
		return NULL;
	mr = d->mrs[idx];
	return mr && mr->base.lkey == stag ? mr : NULL;
}

static int mr_slot(struct soft_dev *d, uint32_t *idx)
{
	struct soft_mr **mrs;
	uint32_t i, n;

	for (i = 1; i < d->n_mrs; i++) {
		if (!d->mrs[i]) {
			*idx = i;
			return 0;
		}
	}
	n = d->n_mrs ? d->n_mrs * 2 : 64;
	if (n > (1u << 24))
		return -ENOSPC;
	mrs = realloc(d->mrs, n * sizeof(*mrs));
	if (!mrs)
		return -ENOMEM;
	memset(mrs + d->n_mrs, 0, (n - d->n_mrs) * sizeof(*mrs));
	*idx = d->n_mrs ? d->n_mrs : 1;
	d->mrs = mrs;
	d->n_mrs = n;
	return 0;
}

static int soft_mr_create(struct rdma_pd *rpd, void *addr, size_t len, unsigned int access,
			  struct rdma_mr **ret)
{
	struct soft_dev *d = to_dev(rpd->dev);
	struct soft_mr *mr;
	uint32_t idx;
	int err;

	if ((uint64_t)(uintptr_t)addr > UINT64_MAX - len)
		return -EINVAL;
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return -ENOMEM;
	err = mr_slot(d, &idx);
	if (err) {
		free(mr);
		return err;
	}
	/* A new key for a reused index: an old rkey does not match. */
	d->key++;
	mr->base.pd = rpd;
	mr->base.lkey = mr->base.rkey = idx << 8 | d->key;
	mr->pd = to_pd(rpd);
	mr->addr = (uint64_t)(uintptr_t)addr;
	mr->len = len;
	mr->access = access;
	mr->valid = true;
	d->mrs[idx] = mr;
	*ret = &mr->base;
	return 0;
}

static void soft_mr_destroy(struct rdma_mr *rmr)
{
	struct soft_mr *mr = to_mr(rmr);
	struct soft_dev *d = to_dev(rmr->pd->dev);

	d->mrs[mr->base.lkey >> 8] = NULL;
	free(mr);
}

/* The checks of an STag before anything is placed, in siw's order. */
enum mem_err soft_mem_check(struct soft_conn *c, uint32_t stag, uint64_t addr, uint64_t len,
			    unsigned int access)
{
	struct soft_mr *mr = soft_mr_find(c->dev, stag);

	if (!mr || !mr->valid)
		return MEM_STAG;
	if (mr->pd != c->pd)
		return MEM_PD;
	if ((mr->access & access) != access)
		return MEM_ACCESS;
	if (addr > UINT64_MAX - len)
		return MEM_WRAP;
	if (addr < mr->addr || len > mr->len || addr - mr->addr > mr->len - len)
		return MEM_BOUNDS;
	return MEM_OK;
}

/* Work queues */

static enum rdma_wc_opcode wc_opcode(enum rdma_wr_opcode op)
{
	switch (op) {
	case RDMA_WR_RDMA_WRITE:
		return RDMA_WC_RDMA_WRITE;
	case RDMA_WR_RDMA_READ:
		return RDMA_WC_RDMA_READ;
	default:
		return RDMA_WC_SEND;
	}
}

static void sq_complete(struct soft_conn *c, struct soft_swqe *w, enum rdma_wc_status status)
{
	struct rdma_wc wc = {
		.wr_id = w->wr_id,
		.status = status,
		.opcode = wc_opcode(w->opcode),
		.byte_len = (uint32_t)w->len,
	};

	/* Verbs: an error completes even an unsignaled request. */
	if (w->signaled || status != RDMA_WC_SUCCESS)
		cq_push(c->scq, &wc);
	else
		soft_cq_release(c->scq, 1);
}

/* Complete, in posting order, the finished requests at the head. */
void soft_sq_retire(struct soft_conn *c)
{
	struct soft_swqe *w;

	while (c->sq_head != c->sq_tx) {
		w = sq_at(c, c->sq_head);
		if (!w->done)
			break;
		sq_complete(c, w, w->status);
		c->sq_head++;
	}
}

void soft_rq_complete(struct soft_conn *c, struct soft_rwqe *r, enum rdma_wc_status status,
		      unsigned int flags, uint32_t inv)
{
	struct rdma_wc wc = {
		.wr_id = r->wr_id,
		.status = status,
		.opcode = RDMA_WC_RECV,
		.byte_len = (uint32_t)c->rx_msg_off,
		.flags = flags,
		.invalidated_rkey = inv,
	};

	cq_push(c->rcq, &wc);
}

/* Error: everything outstanding completes, the finished with their own
 * status, the rest flushed (verbs: a QP in the Error state). */
void soft_qp_flush(struct soft_conn *c)
{
	struct soft_swqe *w;
	struct soft_rwqe *r;

	if (!c->has_qp)
		return;
	for (; c->sq_head != c->sq_tail; c->sq_head++) {
		w = sq_at(c, c->sq_head);
		sq_complete(c, w, w->done ? w->status : RDMA_WC_WR_FLUSH_ERR);
	}
	c->sq_tx = c->sq_tail;
	c->tx_off = 0;
	c->tx_sge = 0;
	c->tx_sge_off = 0;
	c->orq_count = 0;
	for (; c->rq_head != c->rq_tail; c->rq_head++) {
		r = rq_at(c, c->rq_head);
		soft_rq_complete(c, r, r->done ? r->status : RDMA_WC_WR_FLUSH_ERR, 0, 0);
		c->rx_msg_off = 0;
	}
	c->rx_in_msg = false;
	c->irq_count = 0;
}

/* Posting work */

static bool conn_dead(const struct soft_conn *c)
{
	return c->state == S_ERROR || c->state == S_CLOSED;
}

/* Check SGEs against their MRs, as the peer checks STags. */
static enum rdma_wc_status sge_check(struct soft_conn *c, const struct rdma_sge *sg, int n,
				     unsigned int access, uint64_t *len)
{
	int i;

	*len = 0;
	for (i = 0; i < n; i++) {
		*len += sg[i].length;
		if (sg[i].length &&
		    soft_mem_check(c, sg[i].lkey, sg[i].addr, sg[i].length, access) != MEM_OK)
			return RDMA_WC_LOC_PROT_ERR;
	}
	return *len > UINT32_MAX ? RDMA_WC_LOC_LEN_ERR : RDMA_WC_SUCCESS;
}

static int send_wr_valid(const struct soft_conn *c, const struct rdma_send_wr *wr)
{
	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > c->max_send_sge ||
	    (wr->num_sge && !wr->sg_list) || (wr->flags & ~RDMA_SEND_SIGNALED))
		return -EINVAL;
	switch (wr->opcode) {
	case RDMA_WR_SEND:
	case RDMA_WR_SEND_WITH_INV:
	case RDMA_WR_RDMA_WRITE:
		return 0;
	case RDMA_WR_RDMA_READ:
		/* iWARP: one Data Sink STag per Read Request (RFC 5040 §4.4). */
		return wr->num_sge == 1 ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

static int post_one_send(struct soft_conn *c, const struct rdma_send_wr *wr)
{
	struct soft_swqe *w;
	int err = send_wr_valid(c, wr);

	if (err)
		return err;
	if (c->sq_tail - c->sq_head >= c->sq_size || !cq_reserve(c->scq))
		return -ENOMEM;
	w = sq_at(c, c->sq_tail);
	memset(w, 0, offsetof(struct soft_swqe, sge));
	w->wr_id = wr->wr_id;
	w->opcode = wr->opcode;
	w->signaled = wr->flags & RDMA_SEND_SIGNALED;
	w->num_sge = wr->num_sge;
	memcpy(w->sge, wr->sg_list, (size_t)wr->num_sge * sizeof(w->sge[0]));
	w->remote_addr = wr->remote_addr;
	w->rkey = wr->rkey;
	w->inv_rkey = wr->invalidate_rkey;
	w->status =
		sge_check(c, w->sge, w->num_sge,
			  wr->opcode == RDMA_WR_RDMA_READ ? RDMA_ACCESS_LOCAL_WRITE : 0, &w->len);
	if (conn_dead(c)) {
		sq_complete(c, w, RDMA_WC_WR_FLUSH_ERR);
		return 0;
	}
	c->sq_tail++;
	return 0;
}

static int soft_post_send(struct rdma_conn *rc, struct rdma_send_wr *wr,
			  struct rdma_send_wr **bad_wr)
{
	struct soft_conn *c = to_conn(rc);
	int err = 0;

	if (!c->has_qp) {
		*bad_wr = wr;
		return -EINVAL;
	}
	for (; wr; wr = wr->next) {
		err = post_one_send(c, wr);
		if (err) {
			*bad_wr = wr;
			break;
		}
	}
	/* The doorbell: one write for all that was posted this pass. */
	soft_tx_kick(c);
	return err;
}

static int post_one_recv(struct soft_conn *c, const struct rdma_recv_wr *wr)
{
	struct soft_rwqe *r;
	int i;

	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > c->max_recv_sge ||
	    (wr->num_sge && !wr->sg_list))
		return -EINVAL;
	if (c->rq_tail - c->rq_head >= c->rq_size || !cq_reserve(c->rcq))
		return -ENOMEM;
	r = rq_at(c, c->rq_tail);
	r->wr_id = wr->wr_id;
	r->done = false;
	r->num_sge = wr->num_sge;
	for (i = 0; i < wr->num_sge; i++)
		r->seg[i] = (struct soft_seg){ptr_of(wr->sg_list[i].addr), wr->sg_list[i].length};
	r->status = sge_check(c, wr->sg_list, wr->num_sge, RDMA_ACCESS_LOCAL_WRITE, &r->len);
	if (conn_dead(c)) {
		soft_rq_complete(c, r, RDMA_WC_WR_FLUSH_ERR, 0, 0);
		return 0;
	}
	c->rq_tail++;
	return 0;
}

static int soft_post_recv(struct rdma_conn *rc, struct rdma_recv_wr *wr,
			  struct rdma_recv_wr **bad_wr)
{
	struct soft_conn *c = to_conn(rc);
	int err;

	if (!c->has_qp) {
		*bad_wr = wr;
		return -EINVAL;
	}
	for (; wr; wr = wr->next) {
		err = post_one_recv(c, wr);
		if (err) {
			*bad_wr = wr;
			return err;
		}
	}
	return 0;
}

/* The device */

static bool soft_probe(void)
{
	return true;
}

static int soft_dev_create(struct sched *s, const struct rdma_dev_opts *opts, struct rdma_dev **ret)
{
	struct soft_dev *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->base.event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->base.event_fd < 0) {
		free(d);
		return -errno;
	}
	d->base.ops = &rdma_soft_ops;
	d->sched = s;
	d->opts = *opts;
	*ret = &d->base;
	return 0;
}

static void soft_dev_destroy(struct rdma_dev *rd)
{
	struct soft_dev *d = to_dev(rd);

	close(d->base.event_fd);
	free(d->mrs);
	free(d);
}

const struct rdma_ops rdma_soft_ops = {
	.name = "soft",
	.probe = soft_probe,
	.dev_create = soft_dev_create,
	.dev_destroy = soft_dev_destroy,
	.get_event = soft_get_event,
	.pd_create = soft_pd_create,
	.pd_destroy = soft_pd_destroy,
	.mr_create = soft_mr_create,
	.mr_destroy = soft_mr_destroy,
	.cq_create = soft_cq_create,
	.cq_destroy = soft_cq_destroy,
	.cq_poll = soft_cq_poll,
	.cq_arm = soft_cq_arm,
	.cq_ack = soft_cq_ack,
	.cq_set_notify = soft_cq_set_notify,
	.listen = soft_listen,
	.listener_destroy = soft_listener_destroy,
	.listener_addr = soft_listener_addr,
	.listener_adopt = soft_listener_adopt,
	.connect = soft_connect,
	.qp_create = soft_qp_create,
	.accept = soft_accept,
	.reject = soft_reject,
	.disconnect = soft_disconnect,
	.conn_destroy = soft_conn_destroy,
	.conn_get_stats = soft_conn_get_stats,
	.post_send = soft_post_send,
	.post_recv = soft_post_recv,
};
