/*
 * Unit tests for fuse/blkio over a fake LUN: an in-memory disk that runs
 * each command when it completes it, in random order among the commands
 * in flight, as a target with many commands queued may. A read-modify-
 * write that is not protected from an overlapping write loses data here.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blkio.h"
#include "common/be.h"
#include "common/rbuf.h"

#define BS 512u
#define NBLOCKS 256u
#define SIZE (BS * NBLOCKS)
#define MAX_PENDING 4096

struct fake {
	uint8_t disk[SIZE];
	struct ini_cmd *pending[MAX_PENDING];
	size_t npending, max_inflight;
	unsigned int seed;
	uint32_t max_len; /* largest READ/WRITE seen */
	unsigned int unmaps, syncs;
	const struct rbuf *reg; /* every READ's cmd->reg must be this */
	uint8_t fail_opcode;	/* fail commands with this opcode... */
	int fail_err;		/* ...with this error */
	bool unmap_residual;	/* answer UNMAP GOOD, residual = its length */
};

static struct fake f;
static struct blkio_dev d;

static void fake_submit(void *ctx, struct ini_cmd *c)
{
	struct fake *fk = ctx;

	ck_assert_uint_lt(fk->npending, MAX_PENDING);
	fk->pending[fk->npending++] = c;
	if (fk->npending > fk->max_inflight)
		fk->max_inflight = fk->npending;
}

static void fake_rw(struct fake *fk, struct ini_cmd *c)
{
	uint64_t lba = be_get64(c->cdb + 2);
	uint32_t n = be_get32(c->cdb + 10);

	ck_assert_uint_eq(c->cdb_len, 16);
	ck_assert_uint_le(lba + n, NBLOCKS);
	ck_assert_uint_eq(c->len, n * BS);
	if (c->len > fk->max_len)
		fk->max_len = c->len;
	if (c->cdb[0] == 0x88) {
		ck_assert_ptr_eq(c->reg, fk->reg);
		memcpy(c->buf, fk->disk + lba * BS, c->len);
	} else {
		memcpy(fk->disk + lba * BS, c->buf, c->len);
	}
}

static void fake_unmap(struct fake *fk, struct ini_cmd *c)
{
	const uint8_t *p = c->buf;
	uint64_t lba = be_get64(p + 8);
	uint32_t n = be_get32(p + 16);

	ck_assert_uint_eq(c->len, 24);
	ck_assert_uint_eq(be_get16(p + 2), 16);
	ck_assert_uint_le(lba + n, NBLOCKS);
	ck_assert_uint_le(n, d.max_unmap);
	memset(fk->disk + lba * BS, 0, (size_t)n * BS);
	fk->unmaps++;
}

/* Complete one command in flight, picked at random. */
static bool fake_step(struct fake *fk)
{
	struct ini_cmd *c;
	size_t i;

	if (!fk->npending)
		return false;
	i = (size_t)rand_r(&fk->seed) % fk->npending;
	c = fk->pending[i];
	fk->pending[i] = fk->pending[--fk->npending];
	c->err = 0;
	c->residual = 0;
	if (fk->fail_opcode && c->cdb[0] == fk->fail_opcode)
		c->err = fk->fail_err;
	else if (c->cdb[0] == 0x88 || c->cdb[0] == 0x8a)
		fake_rw(fk, c);
	else if (c->cdb[0] == 0x42) {
		fake_unmap(fk, c);
		if (fk->unmap_residual)
			c->residual = c->len;
	} else if (c->cdb[0] == 0x91)
		fk->syncs++;
	else
		ck_abort_msg("unexpected opcode 0x%02x", c->cdb[0]);
	c->done(c);
	return true;
}

static void fake_run(void)
{
	while (fake_step(&f))
		;
}

struct result {
	bool done;
	ssize_t res;
	const void *ptr; /* the data pointer the callback got */
	uint8_t data[SIZE];
};

static void on_done(void *arg, ssize_t res, const void *data)
{
	struct result *r = arg;

	ck_assert(!r->done);
	r->done = true;
	r->res = res;
	r->ptr = data;
	if (res > 0 && data)
		memcpy(r->data, data, (size_t)res);
}

static void setup(void)
{
	memset(&f, 0, sizeof(f));
	f.seed = 1;
	blkio_init(&d, fake_submit, &f, 0, BS, NBLOCKS, 4 * BS, 8);
}

static void fill(uint8_t *p, size_t n, unsigned int *seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)rand_r(seed);
}

/* Writes and reads at any offset and length, one at a time, against a
 * model; the commands never exceed max_io. */
START_TEST(test_any_offset_matches_model)
{
	static uint8_t model[SIZE], buf[SIZE];
	static struct result r;
	unsigned int seed = 7, i;
	uint64_t off;
	size_t len;

	for (i = 0; i < 400; i++) {
		off = (uint64_t)rand_r(&seed) % SIZE;
		len = 1 + (size_t)rand_r(&seed) % (SIZE - off < 9000 ? SIZE - off : 9000);
		fill(buf, len, &seed);
		memset(&r, 0, sizeof(r));
		blkio_write(&d, off, buf, len, on_done, &r);
		fake_run();
		ck_assert(r.done);
		ck_assert_int_eq(r.res, (ssize_t)len);
		memcpy(model + off, buf, len);

		off = (uint64_t)rand_r(&seed) % SIZE;
		len = 1 + (size_t)rand_r(&seed) % (SIZE - off < 9000 ? SIZE - off : 9000);
		memset(&r, 0, sizeof(r));
		blkio_read(&d, off, len, on_done, &r);
		fake_run();
		ck_assert(r.done);
		ck_assert_int_eq(r.res, (ssize_t)len);
		ck_assert(!memcmp(r.data, model + off, len));
	}
	ck_assert(!memcmp(f.disk, model, SIZE));
	ck_assert_uint_le(f.max_len, 4 * BS);
	ck_assert_uint_gt(d.st.rmw, 0);
	ck_assert_uint_eq(d.st.inflight, 0);
}
END_TEST

/* Many sub-block writes to disjoint bytes of the same two blocks, all in
 * flight at once: none may undo another. */
START_TEST(test_concurrent_rmw_same_blocks)
{
	static struct result r[64];
	static uint8_t data[64][7];
	unsigned int seed = 3, i, round;

	for (round = 0; round < 50; round++) {
		f.seed = round + 1;
		memset(f.disk, 0xee, sizeof(f.disk));
		memset(r, 0, sizeof(r));
		for (i = 0; i < 64; i++) {
			fill(data[i], sizeof(data[i]), &seed);
			blkio_write(&d, BS / 2 + i * 13, data[i], sizeof(data[i]), on_done, &r[i]);
		}
		fake_run();
		for (i = 0; i < 64; i++) {
			ck_assert(r[i].done);
			ck_assert_int_eq(r[i].res, 7);
			ck_assert(!memcmp(f.disk + BS / 2 + i * 13, data[i], 7));
		}
		ck_assert_uint_eq(f.disk[BS / 2 - 1], 0xee);
		ck_assert_uint_eq(f.disk[BS / 2 + 63 * 13 + 7], 0xee);
	}
	ck_assert_uint_gt(d.st.waits, 0);
}
END_TEST

/* A whole-block write and an RMW of the same block, in flight together:
 * the bytes the RMW does not cover must be the whole-block write's. */
START_TEST(test_whole_block_write_ordered_with_rmw)
{
	static uint8_t whole[BS], part[100];
	static struct result a, b;
	unsigned int round;

	memset(whole, 'A', sizeof(whole));
	memset(part, 'B', sizeof(part));
	for (round = 0; round < 200; round++) {
		f.seed = round + 1;
		memset(f.disk, 0, sizeof(f.disk));
		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		if (round & 1) {
			blkio_write(&d, 0, whole, BS, on_done, &a);
			blkio_write(&d, 100, part, sizeof(part), on_done, &b);
		} else {
			blkio_write(&d, 100, part, sizeof(part), on_done, &b);
			blkio_write(&d, 0, whole, BS, on_done, &a);
		}
		fake_run();
		ck_assert(a.done && b.done);
		ck_assert(!memcmp(f.disk, whole, 100));
		ck_assert(!memcmp(f.disk + 200, whole, BS - 200));
		ck_assert(!memcmp(f.disk + 100, part, 100) || !memcmp(f.disk + 100, whole, 100));
	}
}
END_TEST

/* A write waiting for an RMW is not overtaken by a later whole-block
 * write that only conflicts with the RMW (FIFO, no starvation). */
START_TEST(test_waiters_fifo)
{
	static uint8_t w1[BS], w2[BS], part[10];
	static struct result a, b, c;

	memset(w1, '1', BS);
	memset(w2, '2', BS);
	memset(part, 'p', sizeof(part));
	blkio_write(&d, 0, w1, BS, on_done, &a);
	blkio_write(&d, 5, part, sizeof(part), on_done, &b);
	blkio_write(&d, 0, w2, BS, on_done, &c);
	ck_assert_uint_eq(f.npending, 1); /* only w1 runs */
	ck_assert_uint_eq(d.st.waits, 2);
	fake_run();
	ck_assert(a.done && b.done && c.done);
	ck_assert(!memcmp(f.disk, w2, BS));
}
END_TEST

START_TEST(test_end_of_lun)
{
	static uint8_t buf[100];
	static struct result r;

	blkio_read(&d, SIZE, 10, on_done, &r);
	ck_assert(r.done); /* nothing to ask the target */
	ck_assert_int_eq(r.res, 0);
	memset(&r, 0, sizeof(r));
	blkio_read(&d, SIZE - 10, 100, on_done, &r);
	fake_run();
	ck_assert_int_eq(r.res, 10);
	memset(&r, 0, sizeof(r));
	blkio_write(&d, SIZE, buf, 1, on_done, &r);
	ck_assert(r.done);
	ck_assert_int_eq(r.res, -ENOSPC);
	memset(&r, 0, sizeof(r));
	memset(buf, 'z', sizeof(buf));
	blkio_write(&d, SIZE - 3, buf, sizeof(buf), on_done, &r);
	fake_run();
	ck_assert_int_eq(r.res, 3);
	ck_assert(!memcmp(f.disk + SIZE - 3, "zzz", 3));
}
END_TEST

START_TEST(test_punch_zeroes_exactly)
{
	static struct result r;
	uint64_t off = 100, len = 20 * BS + 50, i;

	memset(f.disk, 0xff, sizeof(f.disk));
	blkio_punch(&d, off, len, on_done, &r);
	fake_run();
	ck_assert(r.done);
	ck_assert_int_eq(r.res, 0);
	for (i = 0; i < SIZE; i++)
		ck_assert_uint_eq(f.disk[i], i >= off && i < off + len ? 0 : 0xff);
	/* 19 whole blocks, at most 8 per UNMAP */
	ck_assert_uint_eq(f.unmaps, 3);
	ck_assert_uint_eq(d.st.unmaps, 3);
}
END_TEST

START_TEST(test_punch_inside_one_block)
{
	static struct result r;
	uint64_t i;

	memset(f.disk, 0xff, sizeof(f.disk));
	blkio_punch(&d, BS + 10, 20, on_done, &r);
	fake_run();
	ck_assert_int_eq(r.res, 0);
	for (i = 0; i < SIZE; i++)
		ck_assert_uint_eq(f.disk[i], i >= BS + 10 && i < BS + 30 ? 0 : 0xff);
	ck_assert_uint_eq(f.unmaps, 0);
}
END_TEST

START_TEST(test_punch_unsupported)
{
	static struct result r;

	blkio_init(&d, fake_submit, &f, 0, BS, NBLOCKS, 4 * BS, 0);
	blkio_punch(&d, 0, BS, on_done, &r);
	ck_assert(r.done);
	ck_assert_int_eq(r.res, -EOPNOTSUPP);
	ck_assert_uint_eq(f.npending, 0);
}
END_TEST

/* A failed command fails its request, and its range is released. */
START_TEST(test_error_releases_range)
{
	static uint8_t buf[BS];
	static struct result a, b;

	f.fail_opcode = 0x8a;
	f.fail_err = -EIO;
	blkio_write(&d, 10, buf, 20, on_done, &a);
	fake_run();
	ck_assert_int_eq(a.res, -EIO);
	f.fail_opcode = 0;
	memset(buf, 'q', sizeof(buf));
	blkio_write(&d, 0, buf, BS, on_done, &b);
	fake_run();
	ck_assert_int_eq(b.res, BS);
	ck_assert_uint_eq(d.st.cmd_errors, 1);
	ck_assert_uint_eq(f.disk[0], 'q');
}
END_TEST

/* A short read is an error, not stale bytes handed over as data. */
static void short_step(void)
{
	struct ini_cmd *c = f.pending[--f.npending];

	c->err = 0;
	c->residual = BS;
	c->done(c);
}

START_TEST(test_short_transfer_is_eio)
{
	static struct result r;

	blkio_read(&d, 0, 2 * BS, on_done, &r);
	ck_assert_uint_eq(f.npending, 1);
	short_step();
	ck_assert(r.done);
	ck_assert_int_eq(r.res, -EIO);
}
END_TEST

/* tgt 1.0.85 answers UNMAP GOOD with a residual of the whole parameter
 * list, having unmapped: not a short transfer. Linux's sd ignores the
 * residual of a discard too. */
START_TEST(test_unmap_residual_ignored)
{
	static struct result r;
	uint64_t i;

	memset(f.disk, 0xff, sizeof(f.disk));
	f.unmap_residual = true;
	blkio_punch(&d, 0, 4 * BS, on_done, &r);
	fake_run();
	ck_assert(r.done);
	ck_assert_int_eq(r.res, 0);
	ck_assert_uint_eq(f.unmaps, 1);
	ck_assert_uint_eq(d.st.cmd_errors, 0);
	for (i = 0; i < 4 * BS; i++)
		ck_assert_uint_eq(f.disk[i], 0);
}
END_TEST

START_TEST(test_sync_whole_lun)
{
	static struct result r;

	blkio_sync(&d, on_done, &r);
	ck_assert_uint_eq(f.npending, 1);
	ck_assert_uint_eq(f.pending[0]->cdb[0], 0x91);
	ck_assert_uint_eq(be_get64(f.pending[0]->cdb + 2), 0);
	ck_assert_uint_eq(be_get32(f.pending[0]->cdb + 10), 0);
	fake_run();
	ck_assert_int_eq(r.res, 0);
	ck_assert_uint_eq(f.syncs, 1);
}
END_TEST

/* A large request runs its commands in parallel. */
START_TEST(test_large_request_parallel)
{
	static uint8_t buf[64 * BS];
	static struct result r;

	blkio_write(&d, 0, buf, sizeof(buf), on_done, &r);
	ck_assert_uint_eq(f.npending, 16); /* 64 blocks, 4 per command */
	fake_run();
	ck_assert_int_eq(r.res, (ssize_t)sizeof(buf));
}
END_TEST

/* Buffers for test_read_into: none to give, and the lent one's rbuf must
 * never come back (it is the caller's). */
static struct rbuf lent_reg;

static struct rbuf *no_buf(void *ctx, size_t len)
{
	(void)ctx, (void)len;
	return NULL;
}

static void put_not_lent(struct rbuf *b)
{
	ck_assert_ptr_ne(b, &lent_reg);
}

/* A read into the caller's buffer: whole blocks land there, in commands
 * of max_io that carry its registration, and the callback's data is that
 * buffer, which is neither freed nor given back, also when a command
 * fails; a read of part of a block, or one larger than the buffer, goes
 * through blkio's own, and the caller's is left alone. */
START_TEST(test_read_into)
{
	static uint8_t dst[16 * BS], fresh[16 * BS];
	static struct result r;
	unsigned int seed = 11;

	blkio_set_bufs(&d, no_buf, put_not_lent);
	fill(f.disk, SIZE, &seed);
	memset(dst, 0xee, sizeof(dst));
	f.reg = &lent_reg;
	blkio_read_into(&d, 8 * BS, 16 * BS, dst, sizeof(dst), &lent_reg, on_done, &r);
	ck_assert_uint_eq(f.npending, 4); /* 16 blocks, 4 per command */
	fake_run();
	ck_assert_int_eq(r.res, 16 * BS);
	ck_assert_ptr_eq(r.ptr, dst);
	ck_assert(!memcmp(dst, f.disk + 8 * BS, 16 * BS));

	/* The last blocks: clamped to the size, still into the buffer. */
	memset(&r, 0, sizeof(r));
	blkio_read_into(&d, SIZE - 2 * BS, 8 * BS, dst, sizeof(dst), &lent_reg, on_done, &r);
	fake_run();
	ck_assert_int_eq(r.res, 2 * BS);
	ck_assert_ptr_eq(r.ptr, dst);
	ck_assert(!memcmp(dst, f.disk + SIZE - 2 * BS, 2 * BS));

	/* A command fails: the error, and the buffer still the caller's. */
	f.fail_opcode = 0x88;
	f.fail_err = -EIO;
	memset(&r, 0, sizeof(r));
	blkio_read_into(&d, 0, 8 * BS, dst, sizeof(dst), &lent_reg, on_done, &r);
	fake_run();
	ck_assert_int_eq(r.res, -EIO);
	f.fail_opcode = 0;

	f.reg = NULL;
	memset(dst, 0xee, sizeof(dst));
	memset(fresh, 0xee, sizeof(fresh));
	memset(&r, 0, sizeof(r));
	blkio_read_into(&d, 100, 3 * BS, dst, sizeof(dst), &lent_reg, on_done, &r);
	fake_run();
	ck_assert_int_eq(r.res, 3 * BS);
	ck_assert_ptr_ne(r.ptr, dst);
	ck_assert(!memcmp(r.data, f.disk + 100, 3 * BS));
	ck_assert(!memcmp(dst, fresh, sizeof(dst)));

	memset(&r, 0, sizeof(r));
	blkio_read_into(&d, 0, 16 * BS, dst, 8 * BS, &lent_reg, on_done, &r);
	fake_run();
	ck_assert_int_eq(r.res, 16 * BS);
	ck_assert_ptr_ne(r.ptr, dst);
	ck_assert(!memcmp(r.data, f.disk, 16 * BS));
	ck_assert(!memcmp(dst, fresh, sizeof(dst)));
	ck_assert_uint_eq(d.st.inflight, 0);
}
END_TEST

static Suite *blkio_suite(void)
{
	Suite *su = suite_create("blkio");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_any_offset_matches_model);
	tcase_add_test(tc, test_concurrent_rmw_same_blocks);
	tcase_add_test(tc, test_whole_block_write_ordered_with_rmw);
	tcase_add_test(tc, test_waiters_fifo);
	tcase_add_test(tc, test_end_of_lun);
	tcase_add_test(tc, test_punch_zeroes_exactly);
	tcase_add_test(tc, test_punch_inside_one_block);
	tcase_add_test(tc, test_punch_unsupported);
	tcase_add_test(tc, test_error_releases_range);
	tcase_add_test(tc, test_short_transfer_is_eio);
	tcase_add_test(tc, test_unmap_residual_ignored);
	tcase_add_test(tc, test_sync_whole_lun);
	tcase_add_test(tc, test_large_request_parallel);
	tcase_add_test(tc, test_read_into);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(blkio_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
