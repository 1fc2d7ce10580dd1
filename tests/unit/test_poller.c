/*
 * Unit tests for common/poller over a fake completion queue whose
 * notification, like ibv_req_notify_cq(), is one-shot and fires only for
 * entries added after arming. The notification fd is an eventfd.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include "common/poller.h"

static struct sched *s;
static uint64_t fake_now;

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

struct fake_cq {
	struct poller p;
	int efd;
	unsigned int pending; /* completions in the queue */
	unsigned int handled;
	bool armed;
	int max_returned;
	unsigned int race; /* entries to add inside the next arm(), before arming */
	unsigned int polls_seen_budget_violation;
};

#define fake_of(pp) ((struct fake_cq *)(pp))

/* A completion arrives: notify only if armed, and disarm (one-shot). */
static void fake_add(struct fake_cq *cq, unsigned int n)
{
	uint64_t one = 1;

	cq->pending += n;
	if (cq->armed && n) {
		cq->armed = false;
		ck_assert_int_eq(write(cq->efd, &one, sizeof(one)), sizeof(one));
	}
}

static int fake_poll(struct poller *p, int budget)
{
	struct fake_cq *cq = fake_of(p);
	unsigned int n = cq->pending < (unsigned int)budget ? cq->pending : (unsigned int)budget;

	if (budget != p->weight || budget <= 0)
		cq->polls_seen_budget_violation++;
	cq->pending -= n;
	cq->handled += n;
	if ((int)n > cq->max_returned)
		cq->max_returned = (int)n;
	return (int)n;
}

static int fake_arm(struct poller *p)
{
	struct fake_cq *cq = fake_of(p);

	/* The race: entries that land after the last poll but before the
	 * notification is armed raise no notification. */
	if (cq->race) {
		fake_add(cq, cq->race);
		cq->race = 0;
	}
	cq->armed = true;
	return 0;
}

static int fake_ack(struct poller *p)
{
	struct fake_cq *cq = fake_of(p);
	uint64_t v;

	if (read(cq->efd, &v, sizeof(v)) != sizeof(v))
		return -errno;
	return (int)v;
}

static const struct poller_ops fake_ops = {
	.poll = fake_poll,
	.arm = fake_arm,
	.ack = fake_ack,
};

static void fake_init(struct fake_cq *cq, int weight)
{
	*cq = (struct fake_cq){0};
	cq->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(cq->efd, 0);
	poller_init(&cq->p, s, &fake_ops, cq->efd, weight);
}

static void fake_fini(struct fake_cq *cq)
{
	poller_disable(&cq->p);
	close(cq->efd);
}

static bool notification_pending(struct fake_cq *cq)
{
	struct pollfd pfd = {.fd = cq->efd, .events = POLLIN};

	return poll(&pfd, 1, 0) == 1;
}

static void setup(void)
{
	ck_assert_int_eq(sched_create(&s), 0);
	fake_now = 1;
	sched_set_clock(s, fake_clock, NULL);
}

static void teardown(void)
{
	sched_destroy(s);
}

/* One scheduler iteration with its wait bounded by a 1 ms guard timer. */
static void guard_fn(struct sched_timer *t)
{
	(void)t;
}

static void run_once(void)
{
	struct sched_timer guard;

	sched_timer_init(&guard, guard_fn);
	sched_timer_arm(s, &guard, fake_now + 1000000);
	ck_assert_int_eq(sched_run_once(s), 0);
	sched_timer_cancel(s, &guard);
}

static void run(int iterations)
{
	while (iterations--)
		run_once();
}

START_TEST(test_budget_never_exceeded)
{
	struct fake_cq cq;

	fake_init(&cq, 16);
	cq.pending = 1000;
	ck_assert_int_eq(poller_enable(&cq.p), 0);
	run(100);
	ck_assert_uint_eq(cq.handled, 1000);
	ck_assert_int_eq(cq.max_returned, 16);
	ck_assert_uint_eq(cq.polls_seen_budget_violation, 0);
	/* 62 full polls of 16, one of 8 (short: re-arm), one empty drain. */
	ck_assert_uint_eq(cq.p.stats.full_polls, 62);
	ck_assert_uint_eq(cq.p.stats.polls, 64);
	ck_assert_uint_eq(cq.p.stats.completions, 1000);
	ck_assert_uint_eq(cq.p.stats.empty_polls, 1);
	ck_assert_uint_eq(cq.p.stats.notifications, 0);
	ck_assert_int_eq(cq.p.state, POLLER_ARMED);
	fake_fini(&cq);
}
END_TEST

/* A one-shot event that records how many polls had happened when it ran. */
struct probe {
	struct sched_event ev;
	struct fake_cq *cq;
	uint64_t polls_at_run;
	int runs;
};

static void probe_fn(struct sched_event *ev)
{
	struct probe *pr = (struct probe *)ev;

	pr->runs++;
	pr->polls_at_run = pr->cq->p.stats.polls;
}

START_TEST(test_full_budget_yields)
{
	struct fake_cq cq;
	struct probe pr = {.cq = &cq};

	fake_init(&cq, 8);
	cq.pending = 1000000;
	ck_assert_int_eq(poller_enable(&cq.p), 0);
	run(3);
	ck_assert_uint_eq(cq.p.stats.polls, 3);
	ck_assert_int_eq(cq.p.state, POLLER_POLLING);
	/* An event scheduled while the poller is busy runs in the next pass,
	 * after at most one more poll. */
	sched_event_init(&pr.ev, probe_fn);
	sched_schedule(s, &pr.ev);
	run(1);
	ck_assert_int_eq(pr.runs, 1);
	ck_assert_uint_le(pr.polls_at_run, 4);
	ck_assert_uint_eq(cq.p.stats.full_polls, 4);
	ck_assert_uint_eq(cq.p.stats.arms, 1); /* only the one at enable */
	fake_fini(&cq);
}
END_TEST

START_TEST(test_two_busy_pollers_fair)
{
	struct fake_cq a, b;
	int64_t diff;

	fake_init(&a, 32);
	fake_init(&b, 4);
	a.pending = b.pending = 100000000;
	ck_assert_int_eq(poller_enable(&a.p), 0);
	ck_assert_int_eq(poller_enable(&b.p), 0);
	run(200);
	diff = (int64_t)a.p.stats.polls - (int64_t)b.p.stats.polls;
	ck_assert_int_le(diff < 0 ? -diff : diff, 1);
	ck_assert_uint_eq(a.p.stats.polls, 200);
	/* Each got its own weight per poll. */
	ck_assert_uint_eq(a.handled, 32 * a.p.stats.polls);
	ck_assert_uint_eq(b.handled, 4 * b.p.stats.polls);
	fake_fini(&a);
	fake_fini(&b);
}
END_TEST

START_TEST(test_short_poll_rearms_and_drains)
{
	struct fake_cq cq;

	fake_init(&cq, 16);
	ck_assert_int_eq(poller_enable(&cq.p), 0);
	run(2);
	ck_assert_int_eq(cq.p.state, POLLER_ARMED);
	ck_assert(cq.armed);
	poller_reset_stats(&cq.p);

	fake_add(&cq, 5); /* armed: notifies */
	ck_assert(notification_pending(&cq));
	run(1); /* the notification is acked, the poll scheduled */
	ck_assert_uint_eq(cq.p.stats.notifications, 1);
	ck_assert_uint_eq(cq.p.stats.polls, 0);
	run(1); /* poll finds 5 < 16: re-arm, schedule the drain */
	ck_assert_uint_eq(cq.p.stats.polls, 1);
	ck_assert_uint_eq(cq.p.stats.arms, 1);
	ck_assert_int_eq(cq.p.state, POLLER_DRAINING);
	ck_assert(cq.armed);
	run(1); /* the drain finds nothing: idle */
	ck_assert_uint_eq(cq.p.stats.polls, 2);
	ck_assert_uint_eq(cq.p.stats.empty_polls, 1);
	ck_assert_int_eq(cq.p.state, POLLER_ARMED);
	ck_assert_uint_eq(cq.handled, 5);
	/* Idle means idle: no more polls without a notification. */
	run(5);
	ck_assert_uint_eq(cq.p.stats.polls, 2);
	ck_assert(!notification_pending(&cq));
	fake_fini(&cq);
}
END_TEST

/* poller_notify(): a notification by call, as the soft CQ gives it,
 * handled like one read from the fd: polled, re-armed, drained, idle;
 * ignored (counted only) while disabled. */
START_TEST(test_notify_by_call)
{
	struct fake_cq cq;

	fake_init(&cq, 16);
	ck_assert_int_eq(poller_enable(&cq.p), 0);
	run(2);
	ck_assert_int_eq(cq.p.state, POLLER_ARMED);
	poller_reset_stats(&cq.p);
	cq.pending = 5; /* queued with no write to the fd */
	cq.armed = false;
	poller_notify(&cq.p);
	ck_assert_uint_eq(cq.p.stats.notifications, 1);
	ck_assert_int_eq(cq.p.state, POLLER_POLLING);
	run(1); /* poll 5 < 16: re-arm, drain scheduled */
	ck_assert_uint_eq(cq.handled, 5);
	ck_assert(cq.armed);
	run(1);
	ck_assert_int_eq(cq.p.state, POLLER_ARMED);
	run(5);
	ck_assert_uint_eq(cq.p.stats.polls, 2);
	ck_assert(!notification_pending(&cq));
	poller_disable(&cq.p);
	cq.pending = 3;
	poller_notify(&cq.p);
	run(3);
	ck_assert_uint_eq(cq.handled, 5);
	ck_assert_int_eq(cq.p.state, POLLER_DISABLED);
	fake_fini(&cq);
}
END_TEST

/* The race of the 2008 tgt iSER patch: entries land after the last poll and
 * before the re-arm. The notification never fires for them; the drain
 * after re-arming must find them. */
START_TEST(test_rearm_race_handled_without_notification)
{
	struct fake_cq cq;

	fake_init(&cq, 16);
	ck_assert_int_eq(poller_enable(&cq.p), 0);
	run(2);
	ck_assert_int_eq(cq.p.state, POLLER_ARMED);

	fake_add(&cq, 3);
	run(1); /* notification */
	poller_reset_stats(&cq.p);
	cq.race = 4; /* lands inside the next arm(), before it takes effect */
	run(1);	     /* poll 3, re-arm (the race happens here) */
	ck_assert_uint_eq(cq.handled, 3);
	ck_assert_uint_eq(cq.pending, 4);
	ck_assert(!notification_pending(&cq));
	run(1); /* the drain */
	ck_assert_uint_eq(cq.handled, 7);
	ck_assert_uint_eq(cq.p.stats.drain_completions, 4);
	run(10);
	ck_assert_uint_eq(cq.handled, 7);
	ck_assert_uint_eq(cq.p.stats.notifications, 0);
	ck_assert_int_eq(cq.p.state, POLLER_ARMED);
	ck_assert(!notification_pending(&cq));
	fake_fini(&cq);
}
END_TEST

/* Completions queued before enable raise no notification either. */
START_TEST(test_enable_drains_existing)
{
	struct fake_cq cq;

	fake_init(&cq, 16);
	cq.pending = 7;
	ck_assert_int_eq(poller_enable(&cq.p), 0);
	ck_assert_int_eq(poller_enable(&cq.p), -EALREADY);
	run(3);
	ck_assert_uint_eq(cq.handled, 7);
	ck_assert_uint_eq(cq.p.stats.notifications, 0);
	fake_fini(&cq);
}
END_TEST

static void check_arm_delay(unsigned int delay)
{
	struct fake_cq cq;
	unsigned int i;

	fake_init(&cq, 16);
	poller_set_arm_delay(&cq.p, delay);
	ck_assert_int_eq(poller_enable(&cq.p), 0);
	run(2 + (int)delay);
	ck_assert_int_eq(cq.p.state, POLLER_ARMED);
	fake_add(&cq, 5);
	run(1); /* notification */
	poller_reset_stats(&cq.p);

	run(1); /* poll 5 */
	ck_assert_uint_eq(cq.handled, 5);
	for (i = 0; i < delay; i++) {
		/* Still polling, not armed, until @delay empty rounds. */
		ck_assert_uint_eq(cq.p.stats.arms, 0);
		ck_assert_int_eq(cq.p.state, POLLER_POLLING);
		run(1);
	}
	ck_assert_uint_eq(cq.p.stats.arms, 1);
	ck_assert_uint_eq(cq.p.stats.empty_polls, delay);
	ck_assert_int_eq(cq.p.state, POLLER_DRAINING);
	run(1);
	ck_assert_int_eq(cq.p.state, POLLER_ARMED);
	ck_assert_uint_eq(cq.p.stats.polls, 2 + delay);
	fake_fini(&cq);
}

START_TEST(test_arm_delay)
{
	check_arm_delay(0);
	check_arm_delay(1);
	check_arm_delay(3);
}
END_TEST

/* With a delay, completions while polling reset the count of empty rounds
 * and raise no notification at all. */
START_TEST(test_arm_delay_reset_by_work)
{
	struct fake_cq cq;

	fake_init(&cq, 16);
	poller_set_arm_delay(&cq.p, 2);
	cq.pending = 1;
	ck_assert_int_eq(poller_enable(&cq.p), 0);
	run(1); /* the enable drain finds 1: polling */
	ck_assert_int_eq(cq.p.state, POLLER_POLLING);
	run(1); /* empty 1 */
	fake_add(&cq, 2);
	run(1); /* finds 2: empty count reset */
	run(1); /* empty 1 */
	ck_assert_uint_eq(cq.p.stats.arms, 1);
	run(1); /* empty 2: re-arm */
	ck_assert_uint_eq(cq.p.stats.arms, 2);
	ck_assert_uint_eq(cq.handled, 3);
	/* The arm done at enable was still live when the 2 came (a real CQ
	 * would notify too): that one notification, and no more, since the
	 * poller did not re-arm while polling. */
	ck_assert_uint_eq(cq.p.stats.notifications, 1);
	fake_fini(&cq);
}
END_TEST

START_TEST(test_disable_cancels_pending_poll)
{
	struct fake_cq cq;

	fake_init(&cq, 16);
	cq.pending = 100;
	ck_assert_int_eq(poller_enable(&cq.p), 0); /* drain scheduled */
	ck_assert(sched_event_queued(&cq.p.poll_ev));
	poller_disable(&cq.p);
	poller_disable(&cq.p); /* idempotent */
	ck_assert(!poller_enabled(&cq.p));
	ck_assert(!sched_event_queued(&cq.p.poll_ev));
	run(3);
	ck_assert_uint_eq(cq.p.stats.polls, 0);

	/* A notification on a disabled poller polls nothing: its fd is no
	 * longer watched. */
	cq.armed = true;
	fake_add(&cq, 1);
	run(3);
	ck_assert_uint_eq(cq.p.stats.polls, 0);
	ck_assert_uint_eq(cq.handled, 0);

	/* Enabled again, it picks up where the queue is. */
	ck_assert_int_eq(poller_enable(&cq.p), 0);
	run(20);
	ck_assert_uint_eq(cq.handled, 101);
	fake_fini(&cq);
}
END_TEST

/* Disabling from inside the poll callback (a connection torn down by one
 * of its completions) stops polling at once. */
static int disable_poll(struct poller *p, int budget)
{
	int n = fake_poll(p, budget);

	poller_disable(p);
	return n;
}

static const struct poller_ops disable_ops = {
	.poll = disable_poll,
	.arm = fake_arm,
	.ack = fake_ack,
};

START_TEST(test_disable_from_poll)
{
	struct fake_cq cq;

	fake_init(&cq, 4);
	cq.p.ops = &disable_ops;
	cq.pending = 100;
	ck_assert_int_eq(poller_enable(&cq.p), 0);
	run(5);
	ck_assert_uint_eq(cq.p.stats.polls, 1);
	ck_assert_uint_eq(cq.handled, 4);
	ck_assert(!poller_enabled(&cq.p));
	ck_assert(!sched_event_queued(&cq.p.poll_ev));
	fake_fini(&cq);
}
END_TEST

/* Under steady load, notifications stay far below one per completion. */
/* Edge mode over a real socket: one byte is one completion; the source
 * reads until EAGAIN, and the fd is watched with EPOLLET. */
struct sock_src {
	struct poller p;
	int fd;
	unsigned int got;
};

static int sock_poll(struct poller *p, int budget)
{
	struct sock_src *src = (struct sock_src *)p;
	int n = 0;
	char c;

	while (n < budget && read(src->fd, &c, 1) == 1)
		n++;
	src->got += (unsigned int)n;
	return n;
}

static int sock_arm(struct poller *p)
{
	(void)p;
	ck_abort_msg("arm() called in edge mode");
	return 0;
}

static int sock_ack(struct poller *p)
{
	(void)p;
	return 1;
}

static const struct poller_ops sock_ops = {.poll = sock_poll, .arm = sock_arm, .ack = sock_ack};

static void put_bytes(int fd, unsigned int n)
{
	char buf[256] = {0};

	ck_assert_uint_le(n, sizeof(buf));
	ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
}

START_TEST(test_edge_mode)
{
	struct sock_src src = {0};
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	src.fd = sv[0];
	poller_init(&src.p, s, &sock_ops, sv[0], 4);
	poller_set_edge(&src.p);
	put_bytes(sv[1], 3); /* before enable: found by the first poll */
	ck_assert_int_eq(poller_enable(&src.p), 0);
	run(3);
	ck_assert_uint_eq(src.got, 3);
	ck_assert_int_eq(src.p.state, POLLER_ARMED);
	ck_assert_uint_eq(src.p.stats.arms, 0);
	/* idle, then bytes: a new edge wakes it, more than a budget's worth */
	put_bytes(sv[1], 10);
	run(6);
	ck_assert_uint_eq(src.got, 13);
	ck_assert_int_eq(src.p.state, POLLER_ARMED);
	ck_assert_uint_ge(src.p.stats.notifications, 1);
	ck_assert_uint_ge(src.p.stats.full_polls, 2);
	/* again and again: no byte is left behind for want of an arm */
	for (int i = 0; i < 20; i++) {
		put_bytes(sv[1], 1 + (unsigned int)i % 5);
		run(3);
	}
	ck_assert_uint_eq(src.got, 13 + 60); /* 1 + i % 5 for i < 20 */
	ck_assert_uint_eq(src.p.stats.arms, 0);
	poller_disable(&src.p);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_counters_under_load)
{
	struct fake_cq cq;
	int i;

	fake_init(&cq, 16);
	ck_assert_int_eq(poller_enable(&cq.p), 0);
	run(2);
	poller_reset_stats(&cq.p);
	for (i = 0; i < 100; i++) {
		fake_add(&cq, 20); /* more than a budget per round */
		run(1);
	}
	run(100); /* 16 a round against 20 added: work off the backlog */
	ck_assert_uint_eq(cq.handled, 2000);
	ck_assert_uint_eq(cq.p.stats.completions, 2000);
	ck_assert_uint_eq(cq.p.stats.notifications, 1);
	ck_assert_uint_ge(cq.p.stats.full_polls, 100);
	fake_fini(&cq);
}
END_TEST

static Suite *poller_suite(void)
{
	Suite *su = suite_create("poller");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_budget_never_exceeded);
	tcase_add_test(tc, test_full_budget_yields);
	tcase_add_test(tc, test_two_busy_pollers_fair);
	tcase_add_test(tc, test_short_poll_rearms_and_drains);
	tcase_add_test(tc, test_rearm_race_handled_without_notification);
	tcase_add_test(tc, test_enable_drains_existing);
	tcase_add_test(tc, test_arm_delay);
	tcase_add_test(tc, test_arm_delay_reset_by_work);
	tcase_add_test(tc, test_disable_cancels_pending_poll);
	tcase_add_test(tc, test_disable_from_poll);
	tcase_add_test(tc, test_counters_under_load);
	tcase_add_test(tc, test_edge_mode);
	tcase_add_test(tc, test_notify_by_call);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(poller_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
