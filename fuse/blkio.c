/*
 * blkio: byte ranges over block commands, with read-modify-write and
 * range locks. See blkio.h for the rules.
 *
 * A request runs in phases; each phase is up to three segments (block
 * ranges with one operation each) cut into commands of at most max_io
 * bytes (max_unmap blocks for UNMAP), sent in parallel through a few
 * command slots. The next phase starts when every command of this one
 * has completed; the first error ends the request after that.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "blkio.h"
#include "common/rbuf.h"
#include "common/be.h"

#define SLOTS_MAX 16 /* commands in flight per request */
#define UNMAP_PARAM_LEN 24

#define OP_READ16 0x88
#define OP_WRITE16 0x8a
#define OP_UNMAP 0x42
#define OP_SYNC16 0x91

enum seg_op {
	SEG_READ,
	SEG_WRITE,
	SEG_UNMAP,
	SEG_SYNC,
};

struct blkio_seg {
	enum seg_op op;
	uint64_t lba, nblocks;
	uint8_t *buf; /* READ, WRITE: the data of block @lba */
};

enum req_kind {
	REQ_READ,
	REQ_WRITE, /* whole blocks */
	REQ_RMW,   /* part of a block at one end or both */
	REQ_PUNCH,
	REQ_SYNC,
};

struct blkio_req;

struct blkio_slot {
	struct ini_cmd cmd;
	struct blkio_req *req;
	bool busy;
	uint8_t param[UNMAP_PARAM_LEN];
};

struct blkio_req {
	struct blkio_link link; /* on held or waiting */
	struct blkio_req *grant_next;
	struct blkio_dev *d;
	enum req_kind kind;
	bool excl;
	uint64_t off, len;     /* bytes asked, clamped to the size */
	uint64_t lba, nblocks; /* the blocks they touch */
	uint8_t *buf;	       /* owned: whole blocks (READ, RMW), edges (PUNCH) */
	bool lent;	       /* ... unless the caller lent it (and reg) */
	struct rbuf *reg;      /* holds buf when it came from d->buf_get */
	struct rbuf *src_reg;  /* holds src, if the caller said so */
	const uint8_t *src;    /* the caller's data (WRITE, RMW) */
	unsigned int phase;
	struct blkio_seg segs[3];
	unsigned int nseg, seg;
	uint64_t seg_off; /* blocks of segs[seg] already sent */
	unsigned int inflight, nslots;
	int err;
	void (*cb)(void *arg, ssize_t res, const void *data);
	void *arg;
	struct blkio_slot slots[];
};

#define req_of(l) ((struct blkio_req *)((char *)(l)-offsetof(struct blkio_req, link)))

static void req_next_phase(struct blkio_req *r);
static void slot_done(struct ini_cmd *c);

/* Lists */

static void link_init(struct blkio_link *h)
{
	h->next = h->prev = h;
}

static void link_add_tail(struct blkio_link *h, struct blkio_link *l)
{
	l->prev = h->prev;
	l->next = h;
	h->prev->next = l;
	h->prev = l;
}

static void link_del(struct blkio_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->next = l->prev = NULL;
}

/* Set-up */

void blkio_init(struct blkio_dev *d, void (*submit)(void *ctx, struct ini_cmd *cmd), void *ctx,
		uint64_t lun, uint32_t block_size, uint64_t nblocks, uint32_t max_io,
		uint32_t max_unmap)
{
	memset(d, 0, sizeof(*d));
	d->submit = submit;
	d->ctx = ctx;
	d->lun = lun;
	d->block_size = block_size;
	d->nblocks = nblocks;
	d->max_io = max_io / block_size * block_size;
	if (!d->max_io)
		d->max_io = block_size;
	d->max_unmap = max_unmap;
	link_init(&d->held);
	link_init(&d->waiting);
}

void blkio_set_bufs(struct blkio_dev *d, struct rbuf *(*get)(void *ctx, size_t len),
		    void (*put)(struct rbuf *b))
{
	d->buf_get = get;
	d->buf_put = put;
}

uint64_t blkio_size(const struct blkio_dev *d)
{
	return d->nblocks * d->block_size;
}

/* Commands */

static void cdb_rw16(struct ini_cmd *c, uint8_t op, uint64_t lba, uint32_t n)
{
	c->cdb[0] = op;
	be_put64(c->cdb + 2, lba);
	be_put32(c->cdb + 10, n);
	c->cdb_len = 16;
}

/* SBC-3 §5.28: one block descriptor per command. */
static void cdb_unmap(struct ini_cmd *c, uint8_t *param, uint64_t lba, uint32_t n)
{
	memset(param, 0, UNMAP_PARAM_LEN);
	be_put16(param, UNMAP_PARAM_LEN - 2);
	be_put16(param + 2, 16);
	be_put64(param + 8, lba);
	be_put32(param + 16, n);
	c->cdb[0] = OP_UNMAP;
	be_put16(c->cdb + 7, UNMAP_PARAM_LEN);
	c->cdb_len = 10;
	c->dir = INI_DIR_WRITE;
	c->buf = param;
	c->len = UNMAP_PARAM_LEN;
}

static void cmd_fill(struct blkio_req *r, struct blkio_slot *sl, const struct blkio_seg *sg,
		     uint64_t lba, uint32_t n)
{
	struct ini_cmd *c = &sl->cmd;
	uint32_t bs = r->d->block_size;

	memset(c, 0, sizeof(*c));
	c->lun = r->d->lun;
	c->done = slot_done;
	c->priv = sl;
	switch (sg->op) {
	case SEG_READ:
	case SEG_WRITE:
		cdb_rw16(c, sg->op == SEG_READ ? OP_READ16 : OP_WRITE16, lba, n);
		c->dir = sg->op == SEG_READ ? INI_DIR_READ : INI_DIR_WRITE;
		c->buf = sg->buf + (lba - sg->lba) * bs;
		c->len = n * bs;
		/* The library checks that buf is inside. */
		c->reg = sg->buf == r->src ? r->src_reg : r->reg;
		break;
	case SEG_UNMAP:
		cdb_unmap(c, sl->param, lba, n);
		break;
	case SEG_SYNC:
		c->cdb[0] = OP_SYNC16; /* LBA 0, 0 blocks: the whole LUN */
		c->cdb_len = 16;
		break;
	}
}

static uint64_t seg_max(const struct blkio_dev *d, enum seg_op op)
{
	return op == SEG_UNMAP ? d->max_unmap : d->max_io / d->block_size;
}

static struct blkio_slot *slot_get(struct blkio_req *r)
{
	unsigned int i;

	for (i = 0; i < r->nslots; i++)
		if (!r->slots[i].busy)
			return &r->slots[i];
	return NULL;
}

static void req_pump(struct blkio_req *r)
{
	struct blkio_dev *d = r->d;
	const struct blkio_seg *sg;
	struct blkio_slot *sl;
	uint64_t n;

	while (!r->err && r->seg < r->nseg && (sl = slot_get(r))) {
		sg = &r->segs[r->seg];
		n = sg->nblocks - r->seg_off;
		if (n > seg_max(d, sg->op))
			n = seg_max(d, sg->op);
		cmd_fill(r, sl, sg, sg->lba + r->seg_off, (uint32_t)n);
		r->seg_off += n;
		if (r->seg_off >= sg->nblocks) {
			r->seg++;
			r->seg_off = 0;
		}
		sl->busy = true;
		r->inflight++;
		d->st.inflight++;
		d->submit(d->ctx, &sl->cmd);
	}
}

static void account(struct blkio_dev *d, const struct ini_cmd *c, int err)
{
	d->st.cmds++;
	if (c->cdb[0] == OP_UNMAP)
		d->st.unmaps++;
	else if (c->cdb[0] == OP_SYNC16)
		d->st.syncs++;
	if (err)
		d->st.cmd_errors++;
	else if (c->cdb[0] == OP_READ16)
		d->st.read_bytes += c->len;
	else if (c->cdb[0] == OP_WRITE16)
		d->st.write_bytes += c->len;
}

static void slot_done(struct ini_cmd *c)
{
	struct blkio_slot *sl = c->priv;
	struct blkio_req *r = sl->req;
	int err = c->err;

	/* A disk moves every block asked or fails: a short transfer would
	 * hand the application stale bytes as data. Not so UNMAP's parameter
	 * list: tgt answers GOOD with all of it as residual, having unmapped
	 * (Linux's sd ignores a discard's residual too). */
	if (!err && c->dir != INI_DIR_NONE && c->residual && c->cdb[0] != OP_UNMAP)
		err = -EIO;
	account(r->d, c, err);
	sl->busy = false;
	r->inflight--;
	r->d->st.inflight--;
	if (err && !r->err)
		r->err = err;
	req_pump(r);
	if (!r->inflight && (r->err || r->seg == r->nseg))
		req_next_phase(r);
}

/* Phases */

static void seg_add(struct blkio_req *r, enum seg_op op, uint64_t lba, uint64_t n, uint8_t *buf)
{
	r->segs[r->nseg++] = (struct blkio_seg){.op = op, .lba = lba, .nblocks = n, .buf = buf};
}

/* The blocks that [off, off + len) covers only in part: at most two. */
static unsigned int edge_blocks(const struct blkio_req *r, uint64_t edge[2])
{
	uint64_t bs = r->d->block_size, end = r->off + r->len;
	unsigned int n = 0;

	if (r->off % bs)
		edge[n++] = r->off / bs;
	if (end % bs && (!n || end / bs != edge[0]))
		edge[n++] = end / bs;
	return n;
}

static bool rmw_phase(struct blkio_req *r)
{
	uint64_t bs = r->d->block_size, edge[2];
	unsigned int i, n;

	switch (r->phase) {
	case 0: /* read the blocks the write covers in part */
		n = edge_blocks(r, edge);
		for (i = 0; i < n; i++)
			seg_add(r, SEG_READ, edge[i], 1, r->buf + (edge[i] - r->lba) * bs);
		return true;
	case 1: /* merge, write back whole blocks */
		memcpy(r->buf + (r->off - r->lba * bs), r->src, r->len);
		seg_add(r, SEG_WRITE, r->lba, r->nblocks, r->buf);
		return true;
	}
	return false;
}

/* Zero the part of edge block @blk (its copy at @buf) inside the hole. */
static void zero_part(const struct blkio_req *r, uint64_t blk, uint8_t *buf)
{
	uint64_t bs = r->d->block_size, start = blk * bs, end = start + bs;
	uint64_t from = r->off > start ? r->off : start;
	uint64_t to = r->off + r->len < end ? r->off + r->len : end;

	memset(buf + (from - start), 0, to - from);
}

static bool punch_phase(struct blkio_req *r)
{
	uint64_t bs = r->d->block_size, edge[2], first, last;
	unsigned int i, n = edge_blocks(r, edge);

	switch (r->phase) {
	case 0:
		for (i = 0; i < n; i++)
			seg_add(r, SEG_READ, edge[i], 1, r->buf + i * bs);
		return true;
	case 1: /* edges and middle are disjoint: all at once */
		for (i = 0; i < n; i++) {
			zero_part(r, edge[i], r->buf + i * bs);
			seg_add(r, SEG_WRITE, edge[i], 1, r->buf + i * bs);
		}
		first = (r->off + bs - 1) / bs;
		last = (r->off + r->len) / bs;
		if (last > first)
			seg_add(r, SEG_UNMAP, first, last - first, NULL);
		return true;
	}
	return false;
}

/* Set up the segments of r->phase; false when there are no more phases. */
static bool req_phase(struct blkio_req *r)
{
	switch (r->kind) {
	case REQ_READ:
		if (r->phase == 0)
			seg_add(r, SEG_READ, r->lba, r->nblocks, r->buf);
		return r->phase == 0;
	case REQ_WRITE:
		/* ini_cmd.buf is not const; a WRITE only reads it */
		if (r->phase == 0)
			seg_add(r, SEG_WRITE, r->lba, r->nblocks, (uint8_t *)r->src);
		return r->phase == 0;
	case REQ_RMW:
		return rmw_phase(r);
	case REQ_PUNCH:
		return punch_phase(r);
	case REQ_SYNC:
		if (r->phase == 0)
			seg_add(r, SEG_SYNC, 0, 0, NULL);
		return r->phase == 0;
	}
	return false;
}

/* Range locks */

static bool conflicts(const struct blkio_req *a, const struct blkio_req *b)
{
	return (a->excl || b->excl) && a->lba < b->lba + b->nblocks && b->lba < a->lba + a->nblocks;
}

/* Whether @r must wait: a held range, or a waiter ahead of it (@stop),
 * conflicts. Checking the waiters keeps FIFO order, so that a stream of
 * whole-block writes cannot starve an RMW. */
static bool blocked(const struct blkio_dev *d, const struct blkio_req *r,
		    const struct blkio_link *stop)
{
	const struct blkio_link *l;

	for (l = d->held.next; l != &d->held; l = l->next)
		if (conflicts(r, req_of(l)))
			return true;
	for (l = d->waiting.next; l != stop; l = l->next)
		if (conflicts(r, req_of(l)))
			return true;
	return false;
}

static void req_lock(struct blkio_req *r)
{
	struct blkio_dev *d = r->d;

	if (blocked(d, r, &d->waiting)) {
		d->st.waits++;
		link_add_tail(&d->waiting, &r->link);
		return;
	}
	link_add_tail(&d->held, &r->link);
	req_next_phase(r);
}

static void req_unlock(struct blkio_req *r)
{
	struct blkio_dev *d = r->d;
	struct blkio_req *grant = NULL, **tail = &grant, *w;
	struct blkio_link *l, *next;

	link_del(&r->link);
	/* Grant first, start after: starting may end a request, which
	 * would change the lists under this walk. */
	for (l = d->waiting.next; l != &d->waiting; l = next) {
		next = l->next;
		w = req_of(l);
		if (blocked(d, w, l))
			continue;
		link_del(l);
		link_add_tail(&d->held, l);
		w->grant_next = NULL;
		*tail = w;
		tail = &w->grant_next;
	}
	while (grant) {
		w = grant;
		grant = w->grant_next;
		req_next_phase(w);
	}
}

/* Requests */

static void req_finish(struct blkio_req *r)
{
	ssize_t res = r->err;
	const void *data = NULL;

	if (r->link.next)
		req_unlock(r);
	if (!r->err && (r->kind == REQ_READ || r->kind == REQ_WRITE || r->kind == REQ_RMW))
		res = (ssize_t)r->len;
	if (!r->err && r->kind == REQ_READ)
		data = r->buf + (r->off - r->lba * r->d->block_size);
	r->cb(r->arg, res, data);
	if (!r->lent) { /* else the caller's */
		if (r->reg)
			r->d->buf_put(r->reg);
		else
			free(r->buf);
	}
	free(r);
}

static void req_next_phase(struct blkio_req *r)
{
	for (;;) {
		r->nseg = r->seg = 0;
		r->seg_off = 0;
		if (r->err || !req_phase(r)) {
			req_finish(r);
			return;
		}
		r->phase++;
		if (r->nseg) {
			req_pump(r);
			return;
		}
	}
}

static unsigned int slots_for(const struct blkio_dev *d, enum req_kind kind, uint64_t nblocks)
{
	uint64_t per = d->max_io / d->block_size, n;

	switch (kind) {
	case REQ_SYNC:
		return 1;
	case REQ_PUNCH: /* two edges, then UNMAPs */
		n = 2 + nblocks / d->max_unmap + 1;
		break;
	case REQ_RMW: /* two edge reads at once */
		n = (nblocks + per - 1) / per;
		n = n < 2 ? 2 : n;
		break;
	default:
		n = (nblocks + per - 1) / per;
		break;
	}
	return n > SLOTS_MAX ? SLOTS_MAX : (unsigned int)n;
}

static struct blkio_req *req_new(struct blkio_dev *d, enum req_kind kind, uint64_t off,
				 uint64_t len, void (*cb)(void *, ssize_t, const void *), void *arg)
{
	uint64_t bs = d->block_size;
	struct blkio_req *r;
	unsigned int n, i;

	n = slots_for(d, kind, len ? (off + len + bs - 1) / bs - off / bs : 0);
	r = calloc(1, sizeof(*r) + n * sizeof(r->slots[0]));
	if (!r)
		return NULL;
	r->d = d;
	r->kind = kind;
	r->off = off;
	r->len = len;
	r->lba = off / bs;
	r->nblocks = len ? (off + len + bs - 1) / bs - r->lba : 0;
	r->nslots = n;
	r->cb = cb;
	r->arg = arg;
	for (i = 0; i < n; i++)
		r->slots[i].req = r;
	return r;
}

/* A request with a buffer of @nbuf blocks (0: none). NULL: out of memory,
 * and @cb has been told. */
static struct blkio_req *req_alloc(struct blkio_dev *d, enum req_kind kind, uint64_t off,
				   uint64_t len, uint64_t nbuf,
				   void (*cb)(void *, ssize_t, const void *), void *arg)
{
	struct blkio_req *r = req_new(d, kind, off, len, cb, arg);

	if (r && nbuf && nbuf <= SIZE_MAX / d->block_size) {
		r->reg = d->buf_get ? d->buf_get(d->ctx, nbuf * d->block_size) : NULL;
		r->buf = r->reg ? r->reg->addr : malloc(nbuf * d->block_size);
	}
	if (r && nbuf) {
		if (!r->buf) {
			free(r);
			r = NULL;
		}
	}
	if (!r)
		cb(arg, -ENOMEM, NULL);
	return r;
}

void blkio_read_into(struct blkio_dev *d, uint64_t off, size_t len, void *dst, size_t cap,
		     struct rbuf *reg, void (*cb)(void *arg, ssize_t res, const void *data),
		     void *arg)
{
	uint64_t size = blkio_size(d), bs = d->block_size;
	struct blkio_req *r;

	if (off >= size || !len) {
		cb(arg, 0, "");
		return;
	}
	if (len > size - off)
		len = size - off;
	if (!dst || off % bs || len % bs || len > cap) {
		/* Into a buffer of ours, of whole blocks. */
		r = req_alloc(d, REQ_READ, off, len, (off + len + bs - 1) / bs - off / bs, cb, arg);
	} else {
		r = req_new(d, REQ_READ, off, len, cb, arg);
		if (r) {
			r->buf = dst;
			r->reg = reg;
			r->lent = true;
		} else {
			cb(arg, -ENOMEM, NULL);
		}
	}
	if (r)
		req_next_phase(r);
}

void blkio_read(struct blkio_dev *d, uint64_t off, size_t len,
		void (*cb)(void *arg, ssize_t res, const void *data), void *arg)
{
	blkio_read_into(d, off, len, NULL, 0, NULL, cb, arg);
}

void blkio_write(struct blkio_dev *d, uint64_t off, const void *buf, size_t len,
		 void (*cb)(void *arg, ssize_t res, const void *data), void *arg)
{
	blkio_write_reg(d, off, buf, len, NULL, cb, arg);
}

void blkio_write_reg(struct blkio_dev *d, uint64_t off, const void *buf, size_t len,
		     struct rbuf *reg, void (*cb)(void *arg, ssize_t res, const void *data),
		     void *arg)
{
	uint64_t size = blkio_size(d), bs = d->block_size;
	struct blkio_req *r;
	bool whole;

	if (!len) {
		cb(arg, 0, NULL);
		return;
	}
	if (off >= size) {
		cb(arg, -ENOSPC, NULL);
		return;
	}
	if (len > size - off)
		len = size - off;
	whole = off % bs == 0 && len % bs == 0;
	r = req_alloc(d, whole ? REQ_WRITE : REQ_RMW, off, len,
		      whole ? 0 : (off + len + bs - 1) / bs - off / bs, cb, arg);
	if (!r)
		return;
	r->src = buf;
	r->src_reg = reg;
	r->excl = !whole;
	if (!whole)
		d->st.rmw++;
	req_lock(r);
}

void blkio_punch(struct blkio_dev *d, uint64_t off, uint64_t len,
		 void (*cb)(void *arg, ssize_t res, const void *data), void *arg)
{
	uint64_t size = blkio_size(d);
	struct blkio_req *r;

	if (!d->max_unmap) {
		cb(arg, -EOPNOTSUPP, NULL);
		return;
	}
	if (off >= size || !len) {
		cb(arg, 0, NULL);
		return;
	}
	if (len > size - off)
		len = size - off;
	r = req_alloc(d, REQ_PUNCH, off, len, 2, cb, arg);
	if (!r)
		return;
	r->excl = true;
	req_lock(r);
}

void blkio_sync(struct blkio_dev *d, void (*cb)(void *arg, ssize_t res, const void *data),
		void *arg)
{
	struct blkio_req *r = req_alloc(d, REQ_SYNC, 0, 0, 0, cb, arg);

	if (r)
		req_next_phase(r);
}
