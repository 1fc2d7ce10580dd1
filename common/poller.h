/*
 * poller: a budgeted completion poller for user space, after Linux NAPI,
 * blk-iopoll and irq_poll (DESIGN.md §4).
 *
 * A completion source (RDMA CQ, soft RDMA CQ, io_uring ring, socket, FUSE
 * fd) embeds a struct poller and supplies three operations:
 *
 * - poll(budget): handle up to @budget completions, return how many
 *   (never more than @budget);
 * - arm(): re-enable the one-shot notification. Like ibv_req_notify_cq(),
 *   it need only report completions that arrive after it;
 * - ack(): consume a notification from the notification fd (e.g.
 *   ibv_get_cq_event + ibv_ack_cq_events), return how many were consumed.
 *
 * The cycle:
 * 1. A notification: ack it, do not re-arm, schedule the poll event.
 * 2. Poll up to the weight. The whole budget used: stay in polling mode,
 *    reschedule, let the other events of the loop run first.
 * 3. Less than the budget (after @arm_delay consecutive empty polls, 0 by
 *    default): re-arm, then poll once more. A completion that arrived
 *    between the last poll and the re-arm raises no notification; this
 *    drain finds it. If the drain finds work, back to 2.
 *
 * Edge mode (poller_set_edge()) is for a source that is itself a socket or
 * a device fd, drained by reading until EAGAIN: its fd is watched with
 * EPOLLET, so any byte that arrives after poll() saw EAGAIN raises a new
 * edge. Such a source needs neither arm() nor the drain after it (step 3
 * becomes "go idle"), which saves an epoll_ctl and a read per idle turn.
 * Its poll() must then return less than the budget only when it saw
 * EAGAIN with nothing left over in its own buffers.
 *
 * Everything runs on the scheduler's thread.
 */
#ifndef ISERKIT_POLLER_H
#define ISERKIT_POLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "sched.h"

struct poller;

struct poller_ops {
	/* Handle up to @budget (> 0) completions. Returns the number handled,
	 * 0..@budget; a negative return is counted as 0 and kept in
	 * stats.errors (the source reports its own failures). */
	int (*poll)(struct poller *p, int budget);
	/* Re-enable the one-shot notification. Returns 0 or -errno. */
	int (*arm)(struct poller *p);
	/* Consume pending notifications on the fd. Returns how many, or -errno
	 * (-EAGAIN: none, a spurious wake-up). */
	int (*ack)(struct poller *p);
};

enum poller_state {
	POLLER_DISABLED,
	POLLER_ARMED,	 /* idle: waiting for a notification */
	POLLER_POLLING,	 /* busy: polls until a poll comes back short */
	POLLER_DRAINING, /* re-armed: one more poll to catch the race */
};

struct poller_stats {
	uint64_t notifications;	    /* as counted by ack() */
	uint64_t polls;		    /* calls to poll() */
	uint64_t completions;	    /* completions handled */
	uint64_t empty_polls;	    /* polls that found nothing */
	uint64_t full_polls;	    /* polls that used the whole budget */
	uint64_t arms;		    /* calls to arm() */
	uint64_t drain_completions; /* found by the drain after a re-arm */
	uint64_t errors;	    /* negative returns of poll/arm/ack */
};

struct poller {
	const struct poller_ops *ops;
	struct sched *sched;
	struct sched_event poll_ev;
	struct sched_fd notify;
	int notify_fd;
	int weight;
	unsigned int arm_delay;
	unsigned int empty_rounds;
	bool edge; /* poller_set_edge() */
	enum poller_state state;
	struct poller_stats stats;
};

#define POLLER_DEFAULT_WEIGHT 64

/*
 * Set up @p for the source whose notification fd is @notify_fd (readable
 * when a notification is pending), polling at most @weight (> 0)
 * completions per poll. The poller starts disabled.
 */
void poller_init(struct poller *p, struct sched *s, const struct poller_ops *ops, int notify_fd,
		 int weight);

/*
 * Watch the notification fd, arm, and drain once (completions may already
 * be queued). Returns 0, -EALREADY if enabled, or -errno from the scheduler
 * or from arm().
 */
int poller_enable(struct poller *p);

/*
 * Stop: cancel a pending poll and stop watching the notification fd; the
 * source is never polled again until poller_enable(). For a queue or a
 * connection being torn down. Safe from any handler; idempotent.
 */
void poller_disable(struct poller *p);

bool poller_enabled(const struct poller *p);

/* Consecutive empty polls before re-arming; 0 re-arms at the first short
 * poll. tgt's iSER "delayed arm". */
void poller_set_arm_delay(struct poller *p, unsigned int rounds);

/* Edge mode (see above); before poller_enable(). ops->arm is not called. */
void poller_set_edge(struct poller *p);

/*
 * A notification delivered by a call instead of the fd (a source in the
 * same thread, e.g. rdma_cq_set_notify()): counted, and handled as one
 * read from the fd would be (step 1). Safe from any handler.
 */
void poller_notify(struct poller *p);

/* Schedule a poll now, e.g. when the owner knows completions are queued. */
void poller_kick(struct poller *p);

/* Zero the counters. */
void poller_reset_stats(struct poller *p);

#endif
