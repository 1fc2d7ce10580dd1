/*
 * rbuf: registered buffers in power-of-two classes, kept registered on
 * free lists (see rbuf.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/rbuf.h"
#include "common/rdma.h"

#define RBUF_CLASSES (RBUF_MAX_SHIFT - RBUF_MIN_SHIFT + 1)

struct rbuf_pool {
	struct rdma_pd *pd;
	unsigned int access;
	struct rbuf *free[RBUF_CLASSES];
	struct rbuf *all;
	unsigned int out; /* buffers handed out */
	struct rbuf_stats st;
};

int rbuf_pool_create(struct rdma_pd *pd, unsigned int access, struct rbuf_pool **ret)
{
	struct rbuf_pool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return -ENOMEM;
	pool->pd = pd;
	pool->access = access | RDMA_ACCESS_LOCAL_WRITE;
	*ret = pool;
	return 0;
}

static void rbuf_free(struct rbuf *b)
{
	rdma_mr_destroy(b->mr);
	if (!b->wrapped)
		free(b->addr);
	free(b);
}

void rbuf_pool_destroy(struct rbuf_pool *pool)
{
	struct rbuf *b, *next;

	if (!pool)
		return;
	for (b = pool->all; b; b = next) {
		next = b->all;
		if (!b->out) {
			rbuf_free(b);
			continue;
		}
		/* Its holder gives it back later: no registration by then,
		 * the protection domain goes next. */
		rdma_mr_destroy(b->mr);
		b->mr = NULL;
		b->pool = NULL;
	}
	free(pool);
}

static int rbuf_class(size_t len)
{
	int c = 0;

	while (((size_t)1 << (RBUF_MIN_SHIFT + c)) < len)
		c++;
	return c;
}

static int rbuf_new(struct rbuf_pool *pool, int cls, struct rbuf **ret)
{
	struct rbuf *b = calloc(1, sizeof(*b));
	int err = -ENOMEM;

	if (!b)
		return -ENOMEM;
	b->pool = pool;
	b->cap = 1u << (RBUF_MIN_SHIFT + cls);
	if (posix_memalign((void **)&b->addr, 4096, b->cap))
		goto err_free;
	err = rdma_mr_create(pool->pd, b->addr, b->cap, pool->access, &b->mr);
	if (err)
		goto err_free_addr;
	b->lkey = rdma_mr_lkey(b->mr);
	b->rkey = rdma_mr_rkey(b->mr);
	pool->st.registrations++;
	pool->st.bytes_registered += b->cap;
	b->all = pool->all;
	pool->all = b;
	*ret = b;
	return 0;

err_free_addr:
	free(b->addr);
err_free:
	free(b);
	return err;
}

int rbuf_get(struct rbuf_pool *pool, size_t len, struct rbuf **ret)
{
	struct rbuf *b;
	int cls, err;

	if (!len || len > RBUF_MAX)
		return -EINVAL;
	cls = rbuf_class(len);
	b = pool->free[cls];
	if (b) {
		pool->free[cls] = b->next;
	} else {
		err = rbuf_new(pool, cls, &b);
		if (err)
			return err;
	}
	b->next = NULL;
	b->out = true;
	pool->out++;
	pool->st.gets++;
	*ret = b;
	return 0;
}

int rbuf_wrap(struct rbuf_pool *pool, void *addr, size_t len, struct rbuf **ret)
{
	struct rbuf *b;
	int err;

	if (!len || len > UINT32_MAX)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	err = rdma_mr_create(pool->pd, addr, len, pool->access, &b->mr);
	if (err) {
		free(b);
		return err;
	}
	b->pool = pool;
	b->wrapped = true;
	b->out = true;
	b->addr = addr;
	b->cap = (uint32_t)len;
	b->lkey = rdma_mr_lkey(b->mr);
	b->rkey = rdma_mr_rkey(b->mr);
	pool->st.registrations++;
	pool->st.bytes_registered += len;
	b->all = pool->all;
	pool->all = b;
	pool->out++;
	*ret = b;
	return 0;
}

/* A wrapped buffer given back: off the pool's list, deregistered. */
static void unwrap(struct rbuf_pool *pool, struct rbuf *b)
{
	struct rbuf **pp;

	for (pp = &pool->all; *pp != b; pp = &(*pp)->all)
		;
	*pp = b->all;
	pool->out--;
	pool->st.bytes_registered -= b->cap;
	rbuf_free(b);
}

void rbuf_put(struct rbuf *b)
{
	struct rbuf_pool *pool;
	int cls;

	if (!b)
		return;
	pool = b->pool;
	if (!pool) {
		rbuf_free(b); /* its pool is gone */
		return;
	}
	if (b->wrapped) {
		unwrap(pool, b);
		return;
	}
	b->out = false;
	cls = rbuf_class(b->cap);
	b->next = pool->free[cls];
	pool->free[cls] = b;
	pool->out--;
}

void rbuf_pool_stats(const struct rbuf_pool *pool, struct rbuf_stats *st)
{
	*st = pool->st;
}
