/*
 * uring_evfd: an io_uring's completions as a poller source's notification
 * (poller.h). An eventfd registered with the ring is the notification fd;
 * arming is io_uring_cq_eventfd_toggle(): disabled while the poller
 * polls, enabled when it goes idle, and the poller's drain after arming
 * catches a completion that landed in between. Where the toggle is
 * unsupported the eventfd stays enabled: more wake-ups, same correctness.
 * Used by ioq (the target's files) and fs_uring (FUSE over io_uring).
 */
#ifndef ISERKIT_URING_EVFD_H
#define ISERKIT_URING_EVFD_H

#include <liburing.h>
#include <stdbool.h>

struct uring_evfd {
	int fd; /* -1 when closed */
	bool can_toggle;
};

/* Create the eventfd and register it with @ring, enabled. Returns 0 or
 * -errno; on failure nothing is left open (n->fd is -1). */
int uring_evfd_open(struct uring_evfd *n, struct io_uring *ring);

/* poller_ops.arm: enable the notification. Returns 0 or -errno. */
int uring_evfd_arm(struct uring_evfd *n, struct io_uring *ring);

/* poller_ops.ack: consume the eventfd and disable the notification while
 * the poller polls. Returns 1 (one wake-up, however many completions the
 * counter summed up) or -errno (-EAGAIN: none). */
int uring_evfd_ack(struct uring_evfd *n, struct io_uring *ring);

/* Close the eventfd (after io_uring_queue_exit()); idempotent. */
void uring_evfd_close(struct uring_evfd *n);

#endif
