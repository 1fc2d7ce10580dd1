/*
 * portal: the listening sockets of iser-target. An accepted connection
 * becomes a struct conn in its login phase.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/rdma.h"
#include "config.h"
#include "tgt.h"

static void portal_accept(struct sched_fd *sfd, uint32_t events)
{
	struct tgt_portal *p =
		(struct tgt_portal *)((char *)sfd - offsetof(struct tgt_portal, sfd));
	struct sockaddr_storage peer;
	socklen_t len;
	int fd, one = 1, i;

	(void)events;
	/* A bounded batch, so one busy portal cannot hold the loop. */
	for (i = 0; i < 16; i++) {
		len = sizeof(peer);
		fd = accept4(p->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("portal %s: accept: %s", p->name, strerror(errno));
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (p->tgt->stopping)
			close(fd);
		else if (p->mpa)
			tgt_rdma_sniff(p, fd, (struct sockaddr *)&peer, len);
		else if (conn_create(p->tgt, fd, (struct sockaddr *)&peer, len))
			close(fd);
	}
}

static int portal_open(struct tgt *t, const struct config_portal *cp, struct tgt_portal *p)
{
	int one = 1, err;

	p->tgt = t;
	p->fd = -1;
	snprintf(p->name, sizeof(p->name), "%s", cp->text);
	if (cp->transport == CONFIG_ISER) {
		err = tgt_rdma_listen(t, p, (const struct sockaddr *)&cp->addr, cp->addrlen);
		if (err <= 0)
			return err; /* an RDMA CM listener, or an error */
	}
	p->fd = socket(cp->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		return -errno;
	setsockopt(p->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (cp->addr.ss_family == AF_INET6)
		setsockopt(p->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(p->fd, (const struct sockaddr *)&cp->addr, cp->addrlen) || listen(p->fd, 128)) {
		err = -errno;
		goto err_close;
	}
	err = sched_fd_add(t->sched, &p->sfd, p->fd, EPOLLIN, portal_accept);
	if (err)
		goto err_close;
	return 0;

err_close:
	close(p->fd);
	p->fd = -1;
	return err;
}

int tgt_portals_open(struct tgt *t, char *err, size_t errlen)
{
	size_t i;
	int ret;

	t->portals = calloc(t->cfg->nportals, sizeof(*t->portals));
	if (!t->portals)
		return -ENOMEM;
	for (i = 0; i < t->cfg->nportals; i++) {
		if (t->cfg->portals[i].transport == CONFIG_ISER && !t->rdma.dev) {
			ret = tgt_rdma_open(t, (const struct sockaddr *)&t->cfg->portals[i].addr,
					    err, errlen);
			if (ret)
				goto err_close;
		}
		ret = portal_open(t, &t->cfg->portals[i], &t->portals[i]);
		if (ret) {
			snprintf(err, errlen, "portal %s: %s", t->cfg->portals[i].text,
				 strerror(-ret));
			goto err_close;
		}
		t->nportals++;
		log_info("listening on %s (%s)", t->portals[i].name,
			 t->portals[i].mpa  ? "iSER on soft iWARP, and iSCSI/TCP"
			 : t->portals[i].rl ? "iSER"
					    : "iSCSI/TCP");
	}
	return 0;

err_close:
	tgt_portals_close(t);
	return ret;
}

void tgt_portals_close(struct tgt *t)
{
	size_t i;

	for (i = 0; i < t->nportals; i++) {
		rdma_listener_destroy(t->portals[i].rl);
		if (t->portals[i].fd < 0)
			continue;
		sched_fd_del(t->sched, &t->portals[i].sfd);
		close(t->portals[i].fd);
	}
	free(t->portals);
	t->portals = NULL;
	t->nportals = 0;
}
