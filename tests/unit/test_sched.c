/*
 * Unit tests for common/sched: deferred events, passes, waits, timers, fds.
 * Time is a fake clock; fds are eventfds.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/sched.h"

static struct sched *s;
static uint64_t fake_now;

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static void setup(void)
{
	ck_assert_int_eq(sched_create(&s), 0);
	fake_now = 1000;
	sched_set_clock(s, fake_clock, NULL);
}

/*
 * One iteration whose wait is bounded: a guard timer 1 ms ahead on the fake
 * clock (which does not move during the call) keeps an idle wait short.
 */
static struct sched_timer guard;

static void guard_fn(struct sched_timer *t)
{
	(void)t;
	ck_abort_msg("guard timer fired");
}

static int run_bounded(void)
{
	int err;

	sched_timer_init(&guard, guard_fn);
	sched_timer_arm(s, &guard, fake_now + 1000000);
	err = sched_run_once(s);
	sched_timer_cancel(s, &guard);
	return err;
}

static void teardown(void)
{
	sched_destroy(s);
	s = NULL;
}

/* An event that counts its runs and may act on other events. */
struct counted {
	struct sched_event ev;
	int runs;
	struct counted *cancel;	  /* cancel this one when run */
	struct counted *schedule; /* schedule this one when run */
	bool again;		  /* reschedule itself */
};

static void counted_fn(struct sched_event *ev)
{
	struct counted *c = (struct counted *)ev;

	c->runs++;
	if (c->cancel)
		sched_cancel(s, &c->cancel->ev);
	if (c->schedule)
		sched_schedule(s, &c->schedule->ev);
	if (c->again)
		sched_schedule(s, &c->ev);
}

static void counted_init(struct counted *c)
{
	*c = (struct counted){0};
	sched_event_init(&c->ev, counted_fn);
}

/* A ready eventfd, so that a blocking wait returns at once. */
static void ready_fd_fn(struct sched_fd *sfd, uint32_t events)
{
	(void)sfd;
	(void)events;
}

START_TEST(test_schedule_idempotent)
{
	struct counted a;
	struct sched_stats st;

	counted_init(&a);
	sched_schedule(s, &a.ev);
	sched_schedule(s, &a.ev);
	sched_schedule(s, &a.ev);
	ck_assert(sched_event_queued(&a.ev));
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert_int_eq(a.runs, 1);
	ck_assert(!sched_event_queued(&a.ev));
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.events_run, 1);
	ck_assert_uint_eq(st.passes, 1);
}
END_TEST

START_TEST(test_cancel)
{
	struct counted a, b;

	counted_init(&a);
	counted_init(&b);
	sched_schedule(s, &a.ev);
	sched_schedule(s, &b.ev);
	sched_cancel(s, &a.ev);
	sched_cancel(s, &a.ev); /* twice is harmless */
	ck_assert(!sched_event_queued(&a.ev));
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert_int_eq(a.runs, 0);
	ck_assert_int_eq(b.runs, 1);
}
END_TEST

START_TEST(test_cancel_from_same_pass)
{
	struct counted a, b, c;

	counted_init(&a);
	counted_init(&b);
	counted_init(&c);
	a.cancel = &b; /* b is on the running pass's list, after a */
	sched_schedule(s, &a.ev);
	sched_schedule(s, &b.ev);
	sched_schedule(s, &c.ev);
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert_int_eq(a.runs, 1);
	ck_assert_int_eq(b.runs, 0);
	ck_assert_int_eq(c.runs, 1);
	ck_assert(!sched_event_queued(&b.ev));
	/* b can be scheduled again afterwards. */
	a.cancel = NULL;
	sched_schedule(s, &b.ev);
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert_int_eq(b.runs, 1);
}
END_TEST

START_TEST(test_pass_runs_only_earlier_events)
{
	struct counted a, b;

	counted_init(&a);
	counted_init(&b);
	a.schedule = &b;
	a.again = true;
	sched_schedule(s, &a.ev);
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert_int_eq(a.runs, 1); /* not run again in the same pass */
	ck_assert_int_eq(b.runs, 0); /* queued during the pass: next pass */
	ck_assert(sched_event_queued(&a.ev));
	ck_assert(sched_event_queued(&b.ev));
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert_int_eq(a.runs, 2);
	ck_assert_int_eq(b.runs, 1);
	sched_cancel(s, &a.ev);
	sched_cancel(s, &b.ev);
}
END_TEST

/* sched_wake(): the next wait does not block, once. */
START_TEST(test_wake_once)
{
	struct sched_stats st;
	struct sched_fd rfd;
	int efd;

	efd = eventfd(0, EFD_NONBLOCK);
	ck_assert_int_ge(efd, 0);
	ck_assert_int_eq(sched_fd_add(s, &rfd, efd, EPOLLIN, ready_fd_fn), 0);
	sched_wake(s); /* nothing queued, no fd ready, no timer: would block forever */
	ck_assert_int_eq(sched_run_once(s), 0);
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.waits_nonblocking, 1);
	ck_assert_uint_eq(st.waits_blocking, 0);
	/* once: the next wait blocks (an fd made ready bounds it) */
	ck_assert_int_eq(eventfd_write(efd, 1), 0);
	ck_assert_int_eq(sched_run_once(s), 0);
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.waits_nonblocking, 1);
	ck_assert_uint_eq(st.waits_blocking, 1);
	ck_assert_int_eq(sched_fd_del(s, &rfd), 0);
	close(efd);
}
END_TEST

START_TEST(test_wait_blocks_only_when_idle)
{
	struct counted a;
	struct sched_fd rfd;
	struct sched_stats st;
	int efd, i;

	counted_init(&a);
	a.again = true;
	sched_schedule(s, &a.ev);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(sched_run_once(s), 0);
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.waits_nonblocking, 10);
	ck_assert_uint_eq(st.waits_blocking, 0);
	ck_assert_int_eq(a.runs, 10);

	/* Nothing queued: the wait blocks (an fd is ready so it returns). */
	sched_cancel(s, &a.ev);
	efd = eventfd(1, EFD_NONBLOCK);
	ck_assert_int_ge(efd, 0);
	ck_assert_int_eq(sched_fd_add(s, &rfd, efd, EPOLLIN, ready_fd_fn), 0);
	ck_assert_int_eq(sched_run_once(s), 0);
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.waits_nonblocking, 10);
	ck_assert_uint_eq(st.waits_blocking, 1);
	ck_assert_uint_eq(st.fd_events, 1);

	/* Work queued again (a reschedules itself): non-blocking again, even
	 * with a ready fd. */
	sched_schedule(s, &a.ev);
	ck_assert_int_eq(sched_run_once(s), 0);
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.waits_nonblocking, 11);
	ck_assert_uint_eq(st.waits_blocking, 1);
	ck_assert_int_eq(a.runs, 11);
	sched_cancel(s, &a.ev);
	ck_assert_int_eq(sched_fd_del(s, &rfd), 0);
	close(efd);
}
END_TEST

/* Busy polling: for the window after an fd was ready, a wait that would
 * block polls instead; past it, or with busy polling off, it blocks. */
START_TEST(test_busy_poll)
{
	struct sched_fd rfd;
	struct sched_stats st;
	int efd;

	sched_set_busy_poll(s, 50); /* 50 us of the fake clock */

	/* No fd has been ready yet: nothing to spin for. */
	ck_assert_int_eq(run_bounded(), 0);
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.waits_blocking, 1);
	ck_assert_uint_eq(st.waits_spin, 0);

	/* Edge-triggered and readable: reported by one wait, then quiet. */
	efd = eventfd(1, EFD_NONBLOCK);
	ck_assert_int_ge(efd, 0);
	ck_assert_int_eq(sched_fd_add(s, &rfd, efd, EPOLLIN | EPOLLET, ready_fd_fn), 0);
	ck_assert_int_eq(run_bounded(), 0);
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.waits_blocking, 2);
	ck_assert_uint_eq(st.fd_events, 1);

	/* Within 50 us of that event: the waits poll. */
	ck_assert_int_eq(run_bounded(), 0);
	fake_now += 49999;
	ck_assert_int_eq(run_bounded(), 0);
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.waits_spin, 2);
	ck_assert_uint_eq(st.waits_blocking, 2);
	ck_assert_uint_eq(st.waits_nonblocking, 0);

	/* Past the window: it blocks again. */
	fake_now += 2;
	ck_assert_int_eq(run_bounded(), 0);
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.waits_spin, 2);
	ck_assert_uint_eq(st.waits_blocking, 3);

	/* A new event opens a new window; 0 turns busy polling off. */
	ck_assert_int_eq(eventfd_write(efd, 1), 0);
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert_int_eq(run_bounded(), 0);
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.fd_events, 2);
	ck_assert_uint_eq(st.waits_spin, 3);
	sched_set_busy_poll(s, 0);
	ck_assert_int_eq(run_bounded(), 0);
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.waits_spin, 3);
	ck_assert_uint_eq(st.waits_blocking, 5);

	ck_assert_int_eq(sched_fd_del(s, &rfd), 0);
	close(efd);
}
END_TEST

/* Timers record their firing order. */
static int fired[16], nfired;

struct tagged_timer {
	struct sched_timer t;
	int tag;
};

static void timer_fn(struct sched_timer *t)
{
	fired[nfired++] = ((struct tagged_timer *)t)->tag;
}

START_TEST(test_timers_in_deadline_order)
{
	struct tagged_timer t[5];
	int i;

	nfired = 0;
	for (i = 0; i < 5; i++) {
		sched_timer_init(&t[i].t, timer_fn);
		t[i].tag = i;
	}
	sched_timer_arm(s, &t[3].t, 1300);
	sched_timer_arm(s, &t[1].t, 1100);
	sched_timer_arm(s, &t[2].t, 1200);
	sched_timer_arm(s, &t[4].t, 1200); /* same deadline: after t2 */
	sched_timer_arm(s, &t[0].t, 5000);
	sched_timer_arm(s, &t[0].t, 1050); /* re-arming moves it */
	ck_assert(sched_timer_armed(&t[0].t));

	fake_now = 1000;
	ck_assert_int_eq(run_bounded(), 0); /* nothing due */
	ck_assert_int_eq(nfired, 0);

	fake_now = 1250;
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert_int_eq(nfired, 4);
	ck_assert_int_eq(fired[0], 0);
	ck_assert_int_eq(fired[1], 1);
	ck_assert_int_eq(fired[2], 2);
	ck_assert_int_eq(fired[3], 4);
	ck_assert(!sched_timer_armed(&t[1].t));

	sched_timer_cancel(s, &t[3].t);
	ck_assert(!sched_timer_armed(&t[3].t));
	fake_now = 100000;
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert_int_eq(nfired, 4);
}
END_TEST

/* A timer that cancels another that is due in the same round. */
static struct tagged_timer *victim;

static void cancelling_timer_fn(struct sched_timer *t)
{
	timer_fn(t);
	sched_timer_cancel(s, &victim->t);
}

START_TEST(test_timer_cancel_from_timer)
{
	struct tagged_timer a, b;

	nfired = 0;
	sched_timer_init(&a.t, cancelling_timer_fn);
	sched_timer_init(&b.t, timer_fn);
	a.tag = 1;
	b.tag = 2;
	victim = &b;
	sched_timer_arm(s, &a.t, 1010);
	sched_timer_arm(s, &b.t, 1020);
	fake_now = 2000;
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert_int_eq(nfired, 1);
	ck_assert_int_eq(fired[0], 1);
	ck_assert(!sched_timer_armed(&b.t));
}
END_TEST

/* Fds whose handlers delete other fds or themselves, and free them. */
struct watched {
	struct sched_fd sfd;
	int efd;
	int calls;
	struct watched **del; /* delete and free *del when called */
};

static struct watched *watched_new(void)
{
	struct watched *w = calloc(1, sizeof(*w));

	ck_assert_ptr_nonnull(w);
	w->efd = eventfd(1, EFD_NONBLOCK); /* readable at once */
	ck_assert_int_ge(w->efd, 0);
	return w;
}

static void watched_free(struct watched *w)
{
	ck_assert_int_eq(sched_fd_del(s, &w->sfd), 0);
	close(w->efd);
	free(w);
}

static void watched_fn(struct sched_fd *sfd, uint32_t events)
{
	struct watched *w = (struct watched *)sfd;

	ck_assert(events & EPOLLIN);
	w->calls++;
	if (w->del && *w->del) {
		struct watched *d = *w->del;

		*w->del = NULL;
		watched_free(d); /* may be w itself: do not touch w after */
	}
}

START_TEST(test_fd_handler_removes_other)
{
	struct watched *a = watched_new(), *b = watched_new();
	int calls_a, calls_b;

	/* Whichever runs first removes the other; both are ready in the same
	 * epoll_wait, so the second's event is already in the batch. */
	a->del = &b;
	b->del = &a;
	ck_assert_int_eq(sched_fd_add(s, &a->sfd, a->efd, EPOLLIN, watched_fn), 0);
	ck_assert_int_eq(sched_fd_add(s, &b->sfd, b->efd, EPOLLIN, watched_fn), 0);
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert((a == NULL) != (b == NULL));
	calls_a = a ? a->calls : -1;
	calls_b = b ? b->calls : -1;
	ck_assert(calls_a == 1 || calls_b == 1);
	if (a) {
		a->del = NULL;
		watched_free(a);
	}
	if (b) {
		b->del = NULL;
		watched_free(b);
	}
}
END_TEST

static struct watched *self;

START_TEST(test_fd_handler_removes_itself)
{
	struct watched *other = watched_new();
	struct sched_stats st;

	self = watched_new();
	self->del = &self;
	ck_assert_int_eq(sched_fd_add(s, &self->sfd, self->efd, EPOLLIN, watched_fn), 0);
	ck_assert_int_eq(sched_fd_add(s, &other->sfd, other->efd, EPOLLIN, watched_fn), 0);
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert_ptr_null(self);
	ck_assert_int_eq(other->calls, 1);
	/* Level-triggered: the remaining fd is still ready and handled again,
	 * the removed one never is. */
	ck_assert_int_eq(run_bounded(), 0);
	ck_assert_int_eq(other->calls, 2);
	sched_get_stats(s, &st);
	ck_assert_uint_eq(st.fd_events, 3);
	watched_free(other);
}
END_TEST

START_TEST(test_fd_errors)
{
	struct sched_fd a, b;
	int efd = eventfd(0, EFD_NONBLOCK);

	ck_assert_int_eq(sched_fd_add(s, &a, efd, EPOLLIN, ready_fd_fn), 0);
	ck_assert_int_eq(sched_fd_add(s, &b, efd, EPOLLIN, ready_fd_fn), -EEXIST);
	ck_assert_int_eq(sched_fd_mod(s, &a, EPOLLIN | EPOLLOUT), 0);
	ck_assert_uint_eq(a.events, EPOLLIN | EPOLLOUT);
	ck_assert_int_eq(sched_fd_del(s, &a), 0);
	ck_assert_int_eq(sched_fd_del(s, &a), -ENOENT);
	ck_assert_int_eq(sched_fd_add(s, &a, -1, EPOLLIN, ready_fd_fn), -EBADF);
	close(efd);
}
END_TEST

/* sched_run() until a handler calls sched_stop(). */
static void stopper_fn(struct sched_event *ev)
{
	struct counted *c = (struct counted *)ev;

	if (++c->runs == 5)
		sched_stop(s);
	else
		sched_schedule(s, ev);
}

START_TEST(test_run_until_stop)
{
	struct counted a;

	counted_init(&a);
	sched_event_init(&a.ev, stopper_fn);
	sched_schedule(s, &a.ev);
	ck_assert_int_eq(sched_run(s), 0);
	ck_assert_int_eq(a.runs, 5);
}
END_TEST

START_TEST(test_real_clock)
{
	struct sched *r;
	uint64_t a, b;

	ck_assert_int_eq(sched_create(&r), 0);
	a = sched_now(r);
	b = sched_now(r);
	ck_assert(a > 0 && b >= a);
	sched_destroy(r);
	sched_destroy(NULL);
}
END_TEST

static Suite *sched_suite(void)
{
	Suite *su = suite_create("sched");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_schedule_idempotent);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_cancel_from_same_pass);
	tcase_add_test(tc, test_pass_runs_only_earlier_events);
	tcase_add_test(tc, test_wait_blocks_only_when_idle);
	tcase_add_test(tc, test_busy_poll);
	tcase_add_test(tc, test_timers_in_deadline_order);
	tcase_add_test(tc, test_timer_cancel_from_timer);
	tcase_add_test(tc, test_fd_handler_removes_other);
	tcase_add_test(tc, test_fd_handler_removes_itself);
	tcase_add_test(tc, test_fd_errors);
	tcase_add_test(tc, test_run_until_stop);
	tcase_add_test(tc, test_wake_once);
	tcase_add_test(tc, test_real_clock);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(sched_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
