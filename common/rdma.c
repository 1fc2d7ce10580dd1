/*
 * rdma: the provider registry and the calls that dispatch to a provider's
 * ops table. Nothing here knows a provider's objects beyond their heads.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/rdma.h"

/* In the order "auto" tries them: real hardware first. */
static const struct rdma_ops *const providers[] = {
#ifdef ISERKIT_HAVE_VERBS
	&rdma_verbs_ops,
#endif
	&rdma_soft_ops,
};

#define N_PROVIDERS (sizeof(providers) / sizeof(providers[0]))

static const struct rdma_ops *provider_find(const char *name)
{
	size_t i;

	for (i = 0; i < N_PROVIDERS; i++)
		if (!strcmp(providers[i]->name, name))
			return providers[i];
	return NULL;
}

static bool is_auto(const char *name)
{
	return !name || !strcmp(name, "auto");
}

bool rdma_provider_available(const char *name)
{
	const struct rdma_ops *ops = provider_find(name);

	return ops && ops->probe();
}

int rdma_dev_create(struct sched *s, const char *name, const struct rdma_dev_opts *opts,
		    struct rdma_dev **ret)
{
	static const struct rdma_dev_opts defaults;
	const struct rdma_ops *ops = NULL;
	size_t i;

	if (!opts)
		opts = &defaults;
	if (is_auto(name)) {
		for (i = 0; i < N_PROVIDERS && !ops; i++)
			if (providers[i]->probe())
				ops = providers[i];
		if (!ops)
			return -ENODEV;
	} else {
		ops = provider_find(name);
		if (!ops)
			return -ENOENT;
		if (!ops->probe())
			return -ENODEV;
	}
	return ops->dev_create(s, opts, ret);
}

void rdma_dev_destroy(struct rdma_dev *dev)
{
	if (dev)
		dev->ops->dev_destroy(dev);
}

const char *rdma_dev_provider(const struct rdma_dev *dev)
{
	return dev->ops->name;
}

int rdma_event_fd(const struct rdma_dev *dev)
{
	return dev->event_fd;
}

int rdma_get_event(struct rdma_dev *dev, struct rdma_event *ev)
{
	return dev->ops->get_event(dev, ev);
}

int rdma_listener_create(struct rdma_dev *dev, const struct sockaddr *sa, socklen_t salen,
			 int backlog, void *context, struct rdma_listener **ret)
{
	struct rdma_listener *l;
	int err;

	err = dev->ops->listen(dev, sa, salen, backlog, &l);
	if (err)
		return err;
	l->context = context;
	*ret = l;
	return 0;
}

void rdma_listener_destroy(struct rdma_listener *l)
{
	if (l)
		l->dev->ops->listener_destroy(l);
}

void *rdma_listener_context(const struct rdma_listener *l)
{
	return l->context;
}

int rdma_listener_addr(const struct rdma_listener *l, struct sockaddr_storage *ss)
{
	return l->dev->ops->listener_addr(l, ss);
}

int rdma_listener_adopt(struct rdma_listener *l, int fd, const void *buf, size_t len)
{
	return l->dev->ops->listener_adopt(l, fd, buf, len);
}

int rdma_conn_create(struct rdma_dev *dev, const struct sockaddr *sa, socklen_t salen,
		     const struct rdma_qp_attr *attr, const struct rdma_conn_attr *param,
		     void *context, struct rdma_conn **ret)
{
	struct rdma_conn *conn;
	int err;

	if (!sa || !attr || !param)
		return -EINVAL;
	err = dev->ops->connect(dev, sa, salen, attr, param, &conn);
	if (err)
		return err;
	conn->context = context;
	*ret = conn;
	return 0;
}

int rdma_qp_create(struct rdma_conn *conn, const struct rdma_qp_attr *attr)
{
	return conn->dev->ops->qp_create(conn, attr);
}

int rdma_conn_accept(struct rdma_conn *conn, const struct rdma_conn_attr *param)
{
	static const struct rdma_conn_attr defaults;

	return conn->dev->ops->accept(conn, param ? param : &defaults);
}

int rdma_conn_reject(struct rdma_conn *conn, const void *pdata, size_t len)
{
	if (len && !pdata)
		return -EINVAL;
	return conn->dev->ops->reject(conn, pdata, len);
}

int rdma_conn_disconnect(struct rdma_conn *conn)
{
	return conn->dev->ops->disconnect(conn);
}

void rdma_conn_destroy(struct rdma_conn *conn)
{
	if (conn)
		conn->dev->ops->conn_destroy(conn);
}

void *rdma_conn_context(const struct rdma_conn *conn)
{
	return conn->context;
}

void rdma_conn_set_context(struct rdma_conn *conn, void *context)
{
	conn->context = context;
}

int rdma_conn_get_stats(const struct rdma_conn *conn, struct rdma_conn_stats *st)
{
	return conn->dev->ops->conn_get_stats(conn, st);
}

int rdma_pd_create(struct rdma_dev *dev, struct rdma_pd **ret)
{
	return dev->ops->pd_create(dev, ret);
}

void rdma_pd_destroy(struct rdma_pd *pd)
{
	if (pd)
		pd->dev->ops->pd_destroy(pd);
}

int rdma_mr_create(struct rdma_pd *pd, void *addr, size_t len, unsigned int access,
		   struct rdma_mr **ret)
{
	const unsigned int all =
		RDMA_ACCESS_LOCAL_WRITE | RDMA_ACCESS_REMOTE_WRITE | RDMA_ACCESS_REMOTE_READ;

	/* ibv_reg_mr(3): remote write needs local write. */
	if (!len || !addr || (access & ~all) ||
	    ((access & RDMA_ACCESS_REMOTE_WRITE) && !(access & RDMA_ACCESS_LOCAL_WRITE)))
		return -EINVAL;
	return pd->dev->ops->mr_create(pd, addr, len, access, ret);
}

void rdma_mr_destroy(struct rdma_mr *mr)
{
	if (mr)
		mr->pd->dev->ops->mr_destroy(mr);
}

uint32_t rdma_mr_lkey(const struct rdma_mr *mr)
{
	return mr->lkey;
}

uint32_t rdma_mr_rkey(const struct rdma_mr *mr)
{
	return mr->rkey;
}

int rdma_cq_create(struct rdma_dev *dev, int cqe, struct rdma_cq **ret)
{
	if (cqe <= 0)
		return -EINVAL;
	return dev->ops->cq_create(dev, cqe, ret);
}

void rdma_cq_destroy(struct rdma_cq *cq)
{
	if (cq)
		cq->dev->ops->cq_destroy(cq);
}

int rdma_cq_fd(const struct rdma_cq *cq)
{
	return cq->fd;
}

int rdma_cq_poll(struct rdma_cq *cq, struct rdma_wc *wc, int n)
{
	return cq->dev->ops->cq_poll(cq, wc, n);
}

int rdma_cq_arm(struct rdma_cq *cq)
{
	return cq->dev->ops->cq_arm(cq);
}

int rdma_cq_ack(struct rdma_cq *cq)
{
	return cq->dev->ops->cq_ack(cq);
}

int rdma_cq_set_notify(struct rdma_cq *cq, void (*fn)(void *arg), void *arg)
{
	return cq->dev->ops->cq_set_notify(cq, fn, arg);
}

int rdma_conn_post_send(struct rdma_conn *conn, struct rdma_send_wr *wr,
			struct rdma_send_wr **bad_wr)
{
	return conn->dev->ops->post_send(conn, wr, bad_wr);
}

int rdma_conn_post_recv(struct rdma_conn *conn, struct rdma_recv_wr *wr,
			struct rdma_recv_wr **bad_wr)
{
	return conn->dev->ops->post_recv(conn, wr, bad_wr);
}

int rdma_nosup_listener_adopt(struct rdma_listener *l, int fd, const void *buf, size_t len)
{
	(void)l;
	(void)buf;
	(void)len;
	/* The fd is ours even on failure (rdma.h). */
	close(fd);
	return -EOPNOTSUPP;
}

int rdma_nosup_conn_get_stats(const struct rdma_conn *conn, struct rdma_conn_stats *st)
{
	(void)conn;
	(void)st;
	return -EOPNOTSUPP;
}

int rdma_nosup_cq_set_notify(struct rdma_cq *cq, void (*fn)(void *arg), void *arg)
{
	(void)cq;
	(void)fn;
	(void)arg;
	return -EOPNOTSUPP;
}
