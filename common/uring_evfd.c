/* uring_evfd: see uring_evfd.h. */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/uring_evfd.h"

int uring_evfd_open(struct uring_evfd *n, struct io_uring *ring)
{
	int err;

	n->can_toggle = false;
	n->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->fd < 0)
		return -errno;
	err = io_uring_register_eventfd(ring, n->fd);
	if (err) {
		uring_evfd_close(n);
		return err;
	}
	n->can_toggle = io_uring_cq_eventfd_toggle(ring, true) == 0;
	return 0;
}

int uring_evfd_arm(struct uring_evfd *n, struct io_uring *ring)
{
	return n->can_toggle ? io_uring_cq_eventfd_toggle(ring, true) : 0;
}

int uring_evfd_ack(struct uring_evfd *n, struct io_uring *ring)
{
	uint64_t v;

	if (read(n->fd, &v, sizeof(v)) != sizeof(v))
		return -errno;
	/* Quiet while polling: the poller re-arms when it goes idle. */
	if (n->can_toggle)
		io_uring_cq_eventfd_toggle(ring, false);
	return 1;
}

void uring_evfd_close(struct uring_evfd *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}
