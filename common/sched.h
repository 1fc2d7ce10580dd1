/*
 * sched: one thread's event loop. epoll for file descriptors, a queue of
 * deferred events, and timers, in the manner of tgt's event loop.
 *
 * Rules (DESIGN.md §3):
 * - A pass runs the events that were queued before it began; events queued
 *   while it runs wait for the next pass, so no handler starves the loop.
 * - While events remain queued, epoll_wait() does not block (timeout 0);
 *   otherwise it blocks until an fd is ready or the next timer is due.
 * - Everything here is called from the scheduler's own thread only.
 */
#ifndef ISERKIT_SCHED_H
#define ISERKIT_SCHED_H

#include <stdbool.h>
#include <stdint.h>

struct sched;

/* A deferred event, embedded in its owner. Set up with sched_event_init(). */
struct sched_event {
	struct sched_event *next, *prev; /* NULL when not queued */
	void (*fn)(struct sched_event *ev);
};

/* A timer, embedded in its owner. Set up with sched_timer_init(). */
struct sched_timer {
	struct sched_timer *next, *prev; /* NULL when not armed */
	uint64_t deadline;		 /* ns on the scheduler's clock */
	void (*fn)(struct sched_timer *t);
};

/*
 * A file descriptor watched by the scheduler, embedded in its owner.
 * @fn gets the epoll event mask (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP...).
 */
struct sched_fd {
	int fd;
	uint32_t events;
	void (*fn)(struct sched_fd *sfd, uint32_t events);
};

struct sched_stats {
	uint64_t passes;	    /* passes over the event queue */
	uint64_t events_run;	    /* deferred events run */
	uint64_t waits_blocking;    /* epoll_wait with a timeout other than 0 */
	uint64_t waits_nonblocking; /* epoll_wait with timeout 0: work was queued */
	uint64_t fd_events;	    /* fd handlers called */
	uint64_t timers_fired;
	uint64_t waits_spin; /* timeout 0 instead of blocking: busy polling */
};

/*
 * Create a scheduler on CLOCK_MONOTONIC. Returns 0 and sets *ret, or
 * -errno from epoll_create1 (-EMFILE, -ENOMEM...).
 */
int sched_create(struct sched **ret);

/* Destroy a scheduler; NULL is allowed. Watched fds are not closed. */
void sched_destroy(struct sched *s);

/* Replace the clock (tests): @fn(@arg) returns ns and never goes backwards. */
void sched_set_clock(struct sched *s, uint64_t (*fn)(void *arg), void *arg);

/* The scheduler's current time in ns. Inside sched_run_once() the clock
 * is read once after each wait and once after the deferred work, and
 * callers in between get that reading (a few microseconds old at most,
 * unless a callback blocks); outside it, the clock itself. */
uint64_t sched_now(struct sched *s);

void sched_event_init(struct sched_event *ev, void (*fn)(struct sched_event *ev));

/* Queue @ev for the next pass. Idempotent: a queued event stays queued once. */
void sched_schedule(struct sched *s, struct sched_event *ev);

/*
 * Unqueue @ev if it is queued; safe from any handler, including one of the
 * same pass that has not reached @ev yet (it will then not run).
 */
void sched_cancel(struct sched *s, struct sched_event *ev);

bool sched_event_queued(const struct sched_event *ev);

void sched_timer_init(struct sched_timer *t, void (*fn)(struct sched_timer *t));

/* Arm @t to fire at @deadline ns (sched_now() based); re-arming moves it. */
void sched_timer_arm(struct sched *s, struct sched_timer *t, uint64_t deadline);

/* Disarm @t if armed; safe from any handler. */
void sched_timer_cancel(struct sched *s, struct sched_timer *t);

bool sched_timer_armed(const struct sched_timer *t);

/*
 * Watch @sfd->fd for @events (EPOLLIN, EPOLLOUT...; level-triggered unless
 * EPOLLET is given). @sfd must stay valid until sched_fd_del().
 * Returns 0, -EEXIST if already watched, or -errno from epoll_ctl.
 */
int sched_fd_add(struct sched *s, struct sched_fd *sfd, int fd, uint32_t events,
		 void (*fn)(struct sched_fd *sfd, uint32_t events));

/* Change the events watched. Returns 0 or -errno from epoll_ctl. */
int sched_fd_mod(struct sched *s, struct sched_fd *sfd, uint32_t events);

/*
 * Stop watching @sfd. Safe from any handler, for any fd including the one
 * being handled: events already returned for it in this wait are dropped,
 * so its owner may free it at once. Returns 0 or -errno from epoll_ctl
 * (-EBADF if the fd was closed first: close after deleting).
 */
int sched_fd_del(struct sched *s, struct sched_fd *sfd);

/*
 * One iteration: a pass over the events queued before it, the timers that
 * are due, then one epoll_wait (non-blocking if events remain queued,
 * else until the next timer or fd) and the handlers of the ready fds.
 * Returns 0 or -errno from epoll_wait other than -EINTR.
 */
int sched_run_once(struct sched *s);

/* Run iterations until sched_stop(). Returns 0 or the error of sched_run_once. */
int sched_run(struct sched *s);

/*
 * Busy polling, as the kernel's net.core.busy_poll does for a socket: for
 * @usecs after epoll_wait last returned a ready fd, a wait that would
 * block polls (timeout 0) instead. A request/response peer at queue depth
 * 1 then finds this thread awake, without the wake-up of a sleeping task
 * (tens of microseconds in a VM, more than the loopback round trip); the
 * cost is up to @usecs of CPU after each burst. An idle loop still
 * sleeps. 0 (the default) turns it off.
 */
void sched_set_busy_poll(struct sched *s, unsigned int usecs);

/*
 * Make the loop's next wait non-blocking, once: for a handler that has
 * finished what a caller looping on sched_run_once() is waiting for, so
 * that the iteration returns without sleeping until the next event.
 */
void sched_wake(struct sched *s);

/* Make sched_run() return after the current iteration. */
void sched_stop(struct sched *s);

void sched_get_stats(const struct sched *s, struct sched_stats *st);

#endif
