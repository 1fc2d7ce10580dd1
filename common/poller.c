/*
 * poller: budgeted completion polling with one-shot notifications. See
 * poller.h for the cycle.
 */
#include <errno.h>
#include <stddef.h>
#include <sys/epoll.h>

#include "poller.h"

#define poller_of(ptr, member) ((struct poller *)((char *)(ptr)-offsetof(struct poller, member)))

static void poller_rearm(struct poller *p)
{
	int err;

	if (p->edge) {
		/* Drained to EAGAIN: the next byte raises an edge. */
		p->state = POLLER_ARMED;
		return;
	}
	p->stats.arms++;
	err = p->ops->arm(p);
	if (err < 0) {
		/* Without a notification we would never wake: keep polling. */
		p->stats.errors++;
		p->state = POLLER_POLLING;
	} else {
		/* The drain: a completion that came between the last poll
		 * and arm() raises no notification (ibv_req_notify_cq only
		 * reports new entries), so look once more. */
		p->state = POLLER_DRAINING;
	}
	sched_schedule(p->sched, &p->poll_ev);
}

static void poller_poll(struct sched_event *ev)
{
	struct poller *p = poller_of(ev, poll_ev);
	bool draining = p->state == POLLER_DRAINING;
	int n;

	if (p->state == POLLER_DISABLED)
		return;
	n = p->ops->poll(p, p->weight);
	p->stats.polls++;
	if (n < 0) {
		p->stats.errors++;
		n = 0;
	}
	p->stats.completions += (unsigned int)n;
	/* A completion handler may have torn the source down. */
	if (p->state == POLLER_DISABLED)
		return;

	if (n >= p->weight) {
		/* Busy: stay in polling mode, behind the other queued events. */
		p->stats.full_polls++;
		p->empty_rounds = 0;
		p->state = POLLER_POLLING;
		sched_schedule(p->sched, &p->poll_ev);
		return;
	}
	if (draining) {
		p->stats.drain_completions += (unsigned int)n;
		if (n == 0) {
			p->stats.empty_polls++;
			p->state = POLLER_ARMED;
			return;
		}
		p->state = POLLER_POLLING;
	}
	if (n == 0) {
		p->stats.empty_polls++;
		p->empty_rounds++;
	} else {
		p->empty_rounds = 0;
	}
	if (p->empty_rounds >= p->arm_delay) {
		p->empty_rounds = 0;
		poller_rearm(p);
	} else {
		sched_schedule(p->sched, &p->poll_ev);
	}
}

/* The "interrupt": consume it, leave the notification disarmed, poll. */
static void poller_notified(struct sched_fd *sfd, uint32_t events)
{
	struct poller *p = poller_of(sfd, notify);
	int n;

	(void)events;
	n = p->ops->ack(p);
	if (n < 0) {
		if (n != -EAGAIN)
			p->stats.errors++;
		return;
	}
	p->stats.notifications += (unsigned int)n;
	if (p->state == POLLER_DISABLED)
		return;
	p->state = POLLER_POLLING;
	p->empty_rounds = 0;
	sched_schedule(p->sched, &p->poll_ev);
}

void poller_notify(struct poller *p)
{
	p->stats.notifications++;
	if (p->state == POLLER_DISABLED)
		return;
	p->state = POLLER_POLLING;
	p->empty_rounds = 0;
	sched_schedule(p->sched, &p->poll_ev);
}

void poller_init(struct poller *p, struct sched *s, const struct poller_ops *ops, int notify_fd,
		 int weight)
{
	p->ops = ops;
	p->sched = s;
	p->notify_fd = notify_fd;
	p->weight = weight > 0 ? weight : POLLER_DEFAULT_WEIGHT;
	p->arm_delay = 0;
	p->empty_rounds = 0;
	p->edge = false;
	p->state = POLLER_DISABLED;
	p->stats = (struct poller_stats){0};
	sched_event_init(&p->poll_ev, poller_poll);
}

int poller_enable(struct poller *p)
{
	int err;

	if (p->state != POLLER_DISABLED)
		return -EALREADY;
	err = sched_fd_add(p->sched, &p->notify, p->notify_fd, EPOLLIN | (p->edge ? EPOLLET : 0),
			   poller_notified);
	if (err)
		return err;
	if (!p->edge) {
		p->stats.arms++;
		err = p->ops->arm(p);
		if (err < 0) {
			sched_fd_del(p->sched, &p->notify);
			return err;
		}
	}
	/* Completions queued before the arm raise no notification. */
	p->state = POLLER_DRAINING;
	p->empty_rounds = 0;
	sched_schedule(p->sched, &p->poll_ev);
	return 0;
}

void poller_disable(struct poller *p)
{
	if (p->state == POLLER_DISABLED)
		return;
	p->state = POLLER_DISABLED;
	sched_cancel(p->sched, &p->poll_ev);
	sched_fd_del(p->sched, &p->notify);
}

bool poller_enabled(const struct poller *p)
{
	return p->state != POLLER_DISABLED;
}

void poller_set_arm_delay(struct poller *p, unsigned int rounds)
{
	p->arm_delay = rounds;
}

void poller_set_edge(struct poller *p)
{
	p->edge = true;
}

void poller_kick(struct poller *p)
{
	if (p->state == POLLER_DISABLED)
		return;
	if (p->state == POLLER_ARMED)
		p->state = POLLER_POLLING;
	sched_schedule(p->sched, &p->poll_ev);
}

void poller_reset_stats(struct poller *p)
{
	p->stats = (struct poller_stats){0};
}
