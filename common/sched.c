/*
 * sched: epoll plus deferred events plus timers. See sched.h for the rules.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "sched.h"

#define SCHED_MAX_EVENTS 64

struct sched {
	int epfd;
	bool stop;
	bool wake;		   /* sched_wake(): the next wait does not block */
	struct sched_event queue;  /* sentinel of the circular event list */
	struct sched_timer timers; /* sentinel, sorted by deadline */
	uint64_t (*clock)(void *arg);
	void *clock_arg;
	/* The batch of the current epoll_wait, so that sched_fd_del() can
	 * drop events not yet handled for an fd that goes away. */
	struct epoll_event ready[SCHED_MAX_EVENTS];
	int nready, cur;
	struct sched_stats stats;
	uint64_t busy_poll_ns; /* sched_set_busy_poll() */
	uint64_t last_event;   /* when epoll_wait last returned an fd */
	bool had_event;	       /* last_event is set */
	/* Inside sched_run_once(), the clock is read once after each wait
	 * and once after the pass's work (many readers per I/O otherwise:
	 * 6% of iser-mount's CPU at QD32 went to clock_gettime). */
	bool in_run, now_ok;
	uint64_t now;
};

static uint64_t sched_monotonic(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int sched_create(struct sched **ret)
{
	struct sched *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		int err = -errno;

		free(s);
		return err;
	}
	s->queue.next = s->queue.prev = &s->queue;
	s->timers.next = s->timers.prev = &s->timers;
	s->clock = sched_monotonic;
	*ret = s;
	return 0;
}

void sched_destroy(struct sched *s)
{
	if (!s)
		return;
	close(s->epfd);
	free(s);
}

void sched_set_clock(struct sched *s, uint64_t (*fn)(void *arg), void *arg)
{
	s->clock = fn;
	s->clock_arg = arg;
}

uint64_t sched_now(struct sched *s)
{
	if (s->now_ok)
		return s->now;
	s->now = s->clock(s->clock_arg);
	s->now_ok = s->in_run;
	return s->now;
}

/* Events */

void sched_event_init(struct sched_event *ev, void (*fn)(struct sched_event *ev))
{
	ev->next = ev->prev = NULL;
	ev->fn = fn;
}

bool sched_event_queued(const struct sched_event *ev)
{
	return ev->next != NULL;
}

static void event_unlink(struct sched_event *ev)
{
	ev->prev->next = ev->next;
	ev->next->prev = ev->prev;
	ev->next = ev->prev = NULL;
}

static void event_append(struct sched_event *head, struct sched_event *ev)
{
	ev->prev = head->prev;
	ev->next = head;
	head->prev->next = ev;
	head->prev = ev;
}

void sched_schedule(struct sched *s, struct sched_event *ev)
{
	if (!sched_event_queued(ev))
		event_append(&s->queue, ev);
}

/* Works whether @ev is on the scheduler's queue or on a running pass's list:
 * unlinking needs only the neighbours. */
void sched_cancel(struct sched *s, struct sched_event *ev)
{
	(void)s;
	if (sched_event_queued(ev))
		event_unlink(ev);
}

/* Run the events queued before the pass began: take the whole queue onto a
 * local list first, so that events scheduled by handlers go to the (now
 * empty) scheduler queue and wait for the next pass. */
static void sched_pass(struct sched *s)
{
	struct sched_event pass, *ev;

	if (s->queue.next == &s->queue)
		return;
	pass.next = s->queue.next;
	pass.prev = s->queue.prev;
	pass.next->prev = &pass;
	pass.prev->next = &pass;
	s->queue.next = s->queue.prev = &s->queue;

	s->stats.passes++;
	while (pass.next != &pass) {
		ev = pass.next;
		event_unlink(ev);
		s->stats.events_run++;
		ev->fn(ev);
	}
}

/* Timers */

void sched_timer_init(struct sched_timer *t, void (*fn)(struct sched_timer *t))
{
	t->next = t->prev = NULL;
	t->deadline = 0;
	t->fn = fn;
}

bool sched_timer_armed(const struct sched_timer *t)
{
	return t->next != NULL;
}

static void timer_unlink(struct sched_timer *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->next = t->prev = NULL;
}

static void timer_insert_before(struct sched_timer *pos, struct sched_timer *t)
{
	t->next = pos;
	t->prev = pos->prev;
	pos->prev->next = t;
	pos->prev = t;
}

/* A sorted list: O(n) arming, O(1) expiry. Timers are few per connection;
 * switch to a heap when a profile says so. Equal deadlines fire in arming
 * order. */
void sched_timer_arm(struct sched *s, struct sched_timer *t, uint64_t deadline)
{
	struct sched_timer *pos;

	if (sched_timer_armed(t))
		timer_unlink(t);
	t->deadline = deadline;
	for (pos = s->timers.prev; pos != &s->timers; pos = pos->prev)
		if (pos->deadline <= deadline)
			break;
	timer_insert_before(pos->next, t);
}

void sched_timer_cancel(struct sched *s, struct sched_timer *t)
{
	(void)s;
	if (sched_timer_armed(t))
		timer_unlink(t);
}

/* Fire the timers due now. Like a pass, only those due when it began: a
 * handler that re-arms its timer for "now" runs again next iteration. */
static void sched_fire_timers(struct sched *s)
{
	struct sched_timer due, *t;
	uint64_t now = sched_now(s);

	due.next = due.prev = &due;
	while (s->timers.next != &s->timers && s->timers.next->deadline <= now) {
		t = s->timers.next;
		timer_unlink(t);
		timer_insert_before(&due, t);
	}
	while (due.next != &due) {
		t = due.next;
		timer_unlink(t);
		s->stats.timers_fired++;
		t->fn(t);
	}
}

/* File descriptors */

int sched_fd_add(struct sched *s, struct sched_fd *sfd, int fd, uint32_t events,
		 void (*fn)(struct sched_fd *sfd, uint32_t events))
{
	struct epoll_event ev = {.events = events, .data.ptr = sfd};

	sfd->fd = fd;
	sfd->events = events;
	sfd->fn = fn;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	return 0;
}

int sched_fd_mod(struct sched *s, struct sched_fd *sfd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = sfd};

	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, sfd->fd, &ev))
		return -errno;
	sfd->events = events;
	return 0;
}

int sched_fd_del(struct sched *s, struct sched_fd *sfd)
{
	int i, err = 0;

	if (epoll_ctl(s->epfd, EPOLL_CTL_DEL, sfd->fd, NULL))
		err = -errno;
	/* Events of this wait not handled yet would point at freed memory. */
	for (i = s->cur + 1; i < s->nready; i++)
		if (s->ready[i].data.ptr == sfd)
			s->ready[i].data.ptr = NULL;
	return err;
}

/* The loop */

static int sched_timeout_ms(struct sched *s)
{
	uint64_t now, left;

	if (s->queue.next != &s->queue || s->stop || s->wake)
		return 0;
	if (s->timers.next == &s->timers)
		return -1;
	now = sched_now(s);
	if (s->timers.next->deadline <= now)
		return 0;
	left = (s->timers.next->deadline - now + 999999) / 1000000;
	return left > 60000 ? 60000 : (int)left;
}

int sched_run_once(struct sched *s)
{
	struct sched_fd *sfd;
	int n, timeout;

	s->in_run = true;
	sched_pass(s);
	s->now_ok = false; /* the pass's work took time: timers see it */
	sched_fire_timers(s);

	timeout = sched_timeout_ms(s);
	s->wake = false;
	if (!timeout) {
		s->stats.waits_nonblocking++;
	} else if (s->busy_poll_ns && s->had_event &&
		   sched_now(s) - s->last_event < s->busy_poll_ns) {
		timeout = 0;
		s->stats.waits_spin++;
	} else {
		s->stats.waits_blocking++;
	}
	n = epoll_wait(s->epfd, s->ready, SCHED_MAX_EVENTS, timeout);
	s->now_ok = false;
	if (n < 0) {
		s->in_run = false;
		return errno == EINTR ? 0 : -errno;
	}

	s->nready = n;
	if (n > 0 && s->busy_poll_ns) {
		s->last_event = sched_now(s);
		s->had_event = true;
	}
	for (s->cur = 0; s->cur < s->nready; s->cur++) {
		sfd = s->ready[s->cur].data.ptr;
		if (!sfd)
			continue;
		s->stats.fd_events++;
		sfd->fn(sfd, s->ready[s->cur].events);
	}
	s->nready = 0;
	s->cur = 0;
	s->in_run = s->now_ok = false;
	return 0;
}

int sched_run(struct sched *s)
{
	int err = 0;

	s->stop = false;
	while (!s->stop && !err)
		err = sched_run_once(s);
	return err;
}

void sched_set_busy_poll(struct sched *s, unsigned int usecs)
{
	s->busy_poll_ns = (uint64_t)usecs * 1000;
}

void sched_wake(struct sched *s)
{
	s->wake = true;
}

void sched_stop(struct sched *s)
{
	s->stop = true;
}

void sched_get_stats(const struct sched *s, struct sched_stats *st)
{
	*st = s->stats;
}
