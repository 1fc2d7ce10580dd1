/*
 * Unit tests for common/ioq, in both modes (io_uring and the synchronous
 * fallback), on a temporary file, driven by a real scheduler.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/loop.h>
#include <linux/magic.h>
#include <sys/ioctl.h>

#include "common/ioq.h"
#include "common/poller.h"
#include "common/sched.h"

static struct sched *s;
static struct ioq *q;
static int fd;
static char path[64];
static unsigned int mode_flags;

struct op {
	struct ioq_req req;
	int res;
	bool done;
	struct iovec iov;
};

static void op_done(struct ioq_req *req, int res)
{
	struct op *o = (struct op *)req;

	ck_assert(!o->done);
	o->done = true;
	o->res = res;
}

static void setup(void)
{
	ck_assert_int_eq(sched_create(&s), 0);
	ck_assert_int_eq(ioq_create(s, 32, mode_flags, &q), 0);
	/* In memory where there is a tmpfs: an fsync of a file on a disk
	 * that other tests keep busy took over 20 s once (CI, the host's
	 * CPU half stolen), and the test timed out waiting for it. */
	snprintf(path, sizeof(path), "%s/iserkit-ioq-XXXXXX",
		 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
}

static void teardown(void)
{
	ioq_destroy(q);
	sched_destroy(s);
	close(fd);
	unlink(path);
}

static void guard_fn(struct sched_timer *t)
{
	(void)t;
}

/* Run the scheduler until every op of @ops is done (bounded). */
static void wait_all(struct op *ops, int n)
{
	int i, left, rounds = 0;
	struct sched_timer guard;

	do {
		left = 0;
		for (i = 0; i < n; i++)
			left += !ops[i].done;
		if (!left)
			return;
		/* An idle wait is bounded by a timer 10 ms ahead. */
		sched_timer_init(&guard, guard_fn);
		sched_timer_arm(s, &guard, sched_now(s) + 10000000);
		ck_assert_int_eq(sched_run_once(s), 0);
		sched_timer_cancel(s, &guard);
	} while (++rounds < 10000);
	ck_abort_msg("%d requests never completed", left);
}

static void op_init(struct op *o, void *buf, size_t len)
{
	memset(o, 0, sizeof(*o));
	o->req.done = op_done;
	o->iov.iov_base = buf;
	o->iov.iov_len = len;
}

START_TEST(test_mode)
{
	ck_assert_int_eq(ioq_is_async(q), !(mode_flags & IOQ_FORCE_SYNC));
	if (ioq_is_async(q))
		ck_assert_ptr_nonnull(ioq_poller(q));
	else
		ck_assert_ptr_null(ioq_poller(q));
}
END_TEST

START_TEST(test_write_read_back)
{
	char wbuf[8192], rbuf[8192];
	struct op w, r, f;
	size_t i;

	for (i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (char)(i * 7 + 3);
	op_init(&w, wbuf, sizeof(wbuf));
	ioq_writev(q, &w.req, fd, 0, &w.iov, 1, 4096);
	/* Never completed from inside the submitting call. */
	ck_assert(!w.done);
	wait_all(&w, 1);
	ck_assert_int_eq(w.res, (int)sizeof(wbuf));

	op_init(&f, NULL, 0);
	ioq_fsync(q, &f.req, fd, true);
	wait_all(&f, 1);
	ck_assert_int_eq(f.res, 0);

	memset(rbuf, 0, sizeof(rbuf));
	op_init(&r, rbuf, sizeof(rbuf));
	ioq_readv(q, &r.req, fd, 0, &r.iov, 1, 4096);
	ck_assert(!r.done);
	wait_all(&r, 1);
	ck_assert_int_eq(r.res, (int)sizeof(rbuf));
	ck_assert_mem_eq(rbuf, wbuf, sizeof(wbuf));
	/* And through the kernel's view of the file. */
	ck_assert_int_eq(pread(fd, rbuf, sizeof(rbuf), 4096), (ssize_t)sizeof(rbuf));
	ck_assert_mem_eq(rbuf, wbuf, sizeof(wbuf));
}
END_TEST

/* More requests than the queue's depth: the backlog drains, each block
 * lands where it was sent. */
START_TEST(test_more_than_depth)
{
	enum { N = 200, BS = 512 };
	static struct op ops[N];
	static char bufs[N][BS], back[BS];
	struct ioq_stats st;
	int i;

	for (i = 0; i < N; i++) {
		memset(bufs[i], i & 0xff, BS);
		op_init(&ops[i], bufs[i], BS);
		ioq_writev(q, &ops[i].req, fd, 0, &ops[i].iov, 1, (uint64_t)i * BS);
	}
	wait_all(ops, N);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(ops[i].res, BS);
		ck_assert_int_eq(pread(fd, back, BS, (off_t)i * BS), BS);
		ck_assert_mem_eq(back, bufs[i], BS);
	}
	ioq_get_stats(q, &st);
	ck_assert_uint_eq(st.submitted, N);
	ck_assert_uint_eq(st.completed, N);
	if (ioq_is_async(q)) {
		ck_assert_uint_le(st.inflight_max, 32);
		/* Polled in batches: far fewer wake-ups than completions. */
		ck_assert_uint_lt(ioq_poller(q)->stats.notifications, N / 2);
		ck_assert_uint_eq(ioq_poller(q)->stats.completions, N);
	}
}
END_TEST

START_TEST(test_errors_reported)
{
	char buf[512];
	struct op r;

	op_init(&r, buf, sizeof(buf));
	ioq_readv(q, &r.req, 987654, 0, &r.iov, 1, 0);
	wait_all(&r, 1);
	ck_assert_int_eq(r.res, -EBADF);
}
END_TEST

START_TEST(test_punch_hole)
{
	char buf[65536], back[4096], zero[4096] = {0};
	struct op w, p;
	off_t hole;

	memset(buf, 0xab, sizeof(buf));
	op_init(&w, buf, sizeof(buf));
	ioq_writev(q, &w.req, fd, 0, &w.iov, 1, 0);
	wait_all(&w, 1);
	ck_assert_int_eq(w.res, (int)sizeof(buf));

	op_init(&p, NULL, 0);
	ioq_fallocate(q, &p.req, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 16384, 16384);
	ck_assert(!p.done);
	wait_all(&p, 1);
	if (p.res == -EOPNOTSUPP)
		return; /* the file system of /tmp cannot punch holes */
	ck_assert_int_eq(p.res, 0);
	ck_assert_int_eq(pread(fd, back, sizeof(back), 16384), (ssize_t)sizeof(back));
	ck_assert_mem_eq(back, zero, sizeof(back));
	ck_assert_int_eq(pread(fd, back, sizeof(back), 12288), (ssize_t)sizeof(back));
	ck_assert_int_eq(back[0], (char)0xab);
	hole = lseek(fd, 0, SEEK_HOLE);
	ck_assert_int_le(hole, 16384);
}
END_TEST

/* A file of @len bytes of @c on a disk's file system (/var/tmp), written
 * through the page cache; its path in @p. */
static int disk_file(char *p, size_t plen, size_t len, int c)
{
	char buf[4096];
	size_t done;
	int f;

	snprintf(p, plen, "/var/tmp/iserkit-ioq-XXXXXX");
	f = mkstemp(p);
	ck_assert_int_ge(f, 0);
	memset(buf, c, sizeof(buf));
	for (done = 0; done < len; done += sizeof(buf))
		ck_assert_int_eq(write(f, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	return f;
}

static bool on_fs(int f, long magic)
{
	struct statfs sf;

	return !fstatfs(f, &sf) && (long)sf.f_type == magic;
}

/* tmpfs is run synchronously; ext4, which takes RWF_NOWAIT reads, tries
 * them first. Other file systems: whatever the probe says, not checked. */
START_TEST(test_fd_class)
{
	char p[64];
	int f;

	if (on_fs(fd, TMPFS_MAGIC))
		ck_assert_uint_eq(ioq_fd_class(fd), IOQ_FD_MEMORY);
	f = disk_file(p, sizeof(p), 8192, 1);
	if (on_fs(f, EXT4_SUPER_MAGIC))
		ck_assert_uint_eq(ioq_fd_class(f), IOQ_FD_NOWAIT);
	else
		fprintf(stderr, "test_fd_class: /var/tmp is not ext4, its class not checked\n");
	ck_assert_uint_eq(ioq_fd_class(-1), 0);
	close(f);
	unlink(p);
	/* Device nodes live on devtmpfs, which says TMPFS_MAGIC: never
	 * memory (a disk LUN /dev/sdb would run synchronously). */
	f = open("/dev/null", O_RDONLY);
	ck_assert_int_ge(f, 0);
	ck_assert_uint_eq(ioq_fd_class(f) & IOQ_FD_MEMORY, 0);
	close(f);
}
END_TEST

/* A block device (a loop device over a file in memory, as root where
 * loop devices exist): not memory, though its node is on devtmpfs, and
 * read correctly with its class. */
START_TEST(test_block_device)
{
	char dev[32], want[4096], back[4096];
	unsigned int cls;
	int ctl, n, bfd, f;
	struct op r;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		fprintf(stderr, "test_block_device: no /dev/loop-control (%s): skipped\n",
			strerror(errno));
		return;
	}
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	ck_assert_int_ge(n, 0);
	snprintf(dev, sizeof(dev), "/dev/loop%d", n);
	bfd = open(dev, O_RDWR | O_CLOEXEC);
	if (bfd < 0) {
		fprintf(stderr, "test_block_device: %s: %s: skipped\n", dev, strerror(errno));
		return;
	}
	memset(want, 0x77, sizeof(want));
	ck_assert_int_eq(pwrite(fd, want, sizeof(want), 8192), (ssize_t)sizeof(want));
	f = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(f, 0);
	if (ioctl(bfd, LOOP_SET_FD, f)) {
		fprintf(stderr, "test_block_device: LOOP_SET_FD %s: %s: skipped\n", dev,
			strerror(errno));
		close(f);
		close(bfd);
		return;
	}
	close(f);
	/* Detached at the last close, also when an assertion ends the test. */
	ck_assert_int_eq(ioctl(bfd, LOOP_SET_STATUS64,
			       &(struct loop_info64){.lo_flags = LO_FLAGS_AUTOCLEAR}),
			 0);
	cls = ioq_fd_class(bfd);
	ck_assert_uint_eq(cls & IOQ_FD_MEMORY, 0);
	op_init(&r, back, sizeof(back));
	ioq_readv(q, &r.req, bfd, cls, &r.iov, 1, 8192);
	wait_all(&r, 1);
	ck_assert_int_eq(r.res, (int)sizeof(back));
	ck_assert_mem_eq(back, want, sizeof(want));
	ck_assert_int_eq(ioctl(bfd, LOOP_CLR_FD, 0), 0);
	close(bfd);
}
END_TEST

/* Reads of a NOWAIT file: from the page cache without the ring, the rest
 * (pages dropped, the end of the file) through it, all correct. */
START_TEST(test_nowait_reads)
{
	enum { LEN = 256 * 1024 };
	static char back[LEN];
	char p[64], want[LEN];
	unsigned char vec[LEN / 4096];
	struct ioq_stats st0, st;
	struct op r, e;
	unsigned int cls;
	void *map;
	int f;

	f = disk_file(p, sizeof(p), LEN, 0x5a);
	cls = ioq_fd_class(f);
	if (!(cls & IOQ_FD_NOWAIT)) {
		fprintf(stderr, "test_nowait_reads: /var/tmp takes no RWF_NOWAIT reads: skipped\n");
		goto out;
	}
	memset(want, 0x5a, sizeof(want));

	/* Cached: the pages were just written. */
	ioq_get_stats(q, &st0);
	op_init(&r, back, 4096);
	ioq_readv(q, &r.req, f, cls, &r.iov, 1, 8192);
	ck_assert(!r.done); /* never from inside the submitting call */
	wait_all(&r, 1);
	ck_assert_int_eq(r.res, 4096);
	ck_assert_mem_eq(back, want, 4096);
	ioq_get_stats(q, &st);
	if (ioq_is_async(q))
		ck_assert_uint_eq(st.inline_reads, st0.inline_reads + 1);

	/* Past the end: short, as read(2) says. */
	op_init(&e, back, 8192);
	ioq_readv(q, &e.req, f, cls, &e.iov, 1, LEN - 4096);
	wait_all(&e, 1);
	ck_assert_int_eq(e.res, 4096);

	/* Not cached: dropped after a sync, when mincore() agrees. */
	ck_assert_int_eq(fdatasync(f), 0);
	ck_assert_int_eq(posix_fadvise(f, 0, LEN, POSIX_FADV_DONTNEED), 0);
	map = mmap(NULL, LEN, PROT_READ, MAP_SHARED, f, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	ck_assert_int_eq(mincore(map, LEN, vec), 0);
	munmap(map, LEN);
	ioq_get_stats(q, &st0);
	memset(back, 0, sizeof(back));
	op_init(&r, back, LEN);
	ioq_readv(q, &r.req, f, cls, &r.iov, 1, 0);
	wait_all(&r, 1);
	ck_assert_int_eq(r.res, LEN);
	ck_assert_mem_eq(back, want, LEN);
	ioq_get_stats(q, &st);
	if (ioq_is_async(q) && !(vec[0] & 1))
		ck_assert_uint_eq(st.inline_misses, st0.inline_misses + 1);
out:
	close(f);
	unlink(p);
}
END_TEST

/* A memory file's reads and writes never go through the ring. */
START_TEST(test_memory_class)
{
	char wbuf[4096], rbuf[4096];
	struct ioq_stats st;
	struct op w, r;
	uint64_t polled;

	if (!on_fs(fd, TMPFS_MAGIC)) {
		fprintf(stderr, "test_memory_class: no tmpfs at /dev/shm: skipped\n");
		return;
	}
	polled = ioq_is_async(q) ? ioq_poller(q)->stats.completions : 0;
	memset(wbuf, 0x3c, sizeof(wbuf));
	op_init(&w, wbuf, sizeof(wbuf));
	ioq_writev(q, &w.req, fd, IOQ_FD_MEMORY, &w.iov, 1, 65536);
	ck_assert(!w.done);
	wait_all(&w, 1);
	ck_assert_int_eq(w.res, (int)sizeof(wbuf));
	op_init(&r, rbuf, sizeof(rbuf));
	ioq_readv(q, &r.req, fd, IOQ_FD_MEMORY, &r.iov, 1, 65536);
	ck_assert(!r.done);
	wait_all(&r, 1);
	ck_assert_int_eq(r.res, (int)sizeof(rbuf));
	ck_assert_mem_eq(rbuf, wbuf, sizeof(wbuf));
	if (ioq_is_async(q)) {
		ck_assert_uint_eq(ioq_poller(q)->stats.completions, polled);
		ioq_get_stats(q, &st);
		ck_assert_uint_eq(st.memory_ops, 2);
	}
}
END_TEST

static Suite *ioq_suite(const char *name)
{
	Suite *su = suite_create(name);
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_mode);
	tcase_add_test(tc, test_write_read_back);
	tcase_add_test(tc, test_more_than_depth);
	tcase_add_test(tc, test_errors_reported);
	tcase_add_test(tc, test_punch_hole);
	tcase_add_test(tc, test_fd_class);
	tcase_add_test(tc, test_nowait_reads);
	tcase_add_test(tc, test_block_device);
	tcase_add_test(tc, test_memory_class);
	suite_add_tcase(su, tc);
	return su;
}

static int run(const char *name, unsigned int flags)
{
	SRunner *sr = srunner_create(ioq_suite(name));
	int failed;

	mode_flags = flags;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}

int main(void)
{
	int failed = run("ioq-uring", 0) + run("ioq-sync", IOQ_FORCE_SYNC);

	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
