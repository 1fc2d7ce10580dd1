/*
 * rbuf: data buffers registered once with an RDMA protection domain and
 * reused, so that the I/O path never registers memory (DESIGN §7, RFC 7145
 * §1.5: the STag of a buffer is what the peer reads from or writes to).
 *
 * A pool hands out buffers in power-of-two size classes, from 4 KiB up to
 * RBUF_MAX. A buffer freed goes back to its class's free list, still
 * registered; a class with none free allocates and registers a new one.
 * So registration happens while the pool grows to the peak in-flight
 * working set, never in the steady state.
 *
 * Everything runs on the thread of the pool's scheduler. The pool is
 * destroyed before its protection domain; a buffer still out then loses
 * its registration and is freed when it is given back.
 */
#ifndef ISERKIT_RBUF_H
#define ISERKIT_RBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rdma_pd;
struct rdma_mr;
struct rbuf_pool;

#define RBUF_MIN_SHIFT 12
#define RBUF_MAX_SHIFT 25
#define RBUF_MAX (1u << RBUF_MAX_SHIFT) /* 32 MiB: the largest buffer */

struct rbuf {
	struct rbuf *next;	/* on the free list; the holder's to use otherwise */
	struct rbuf *all;	/* every buffer of the pool */
	struct rbuf_pool *pool; /* NULL: the pool is gone */
	bool out;
	bool wrapped; /* the memory is the caller's (rbuf_wrap()) */
	uint8_t *addr;
	uint32_t cap; /* bytes at @addr */
	uint32_t lkey, rkey;
	struct rdma_mr *mr;
};

struct rbuf_stats {
	uint64_t gets, registrations;
	uint64_t bytes_registered; /* now */
};

/*
 * A pool on @pd whose buffers allow RDMA_ACCESS_* @access (LOCAL_WRITE is
 * always added). Returns 0 or -ENOMEM.
 */
int rbuf_pool_create(struct rdma_pd *pd, unsigned int access, struct rbuf_pool **ret);

/* Deregister every buffer and free those in the pool; NULL allowed. One
 * still out is freed by rbuf_put(), and must not be used for RDMA. */
void rbuf_pool_destroy(struct rbuf_pool *pool);

/*
 * A buffer of at least @len (1..RBUF_MAX) bytes. Returns 0, -EINVAL (@len
 * out of range), -ENOMEM, or the -errno of rdma_mr_create().
 */
int rbuf_get(struct rbuf_pool *pool, size_t len, struct rbuf **ret);

/*
 * Register @len bytes of the caller's memory at @addr, which stays the
 * caller's: for memory another API hands out (a FUSE ring entry) and
 * reuses, registered once on first use. rbuf_put() deregisters it and
 * frees only the rbuf; so does rbuf_pool_destroy(), after which the
 * rbuf_put() still comes. Returns 0, -EINVAL (@len 0 or over 4 GiB - 1),
 * -ENOMEM, or the -errno of rdma_mr_create().
 */
int rbuf_wrap(struct rbuf_pool *pool, void *addr, size_t len, struct rbuf **ret);

/* Give @b (NULL allowed) back to its pool; a wrapped one is let go. */
void rbuf_put(struct rbuf *b);

void rbuf_pool_stats(const struct rbuf_pool *pool, struct rbuf_stats *st);

#endif
