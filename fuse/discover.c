/*
 * discover: iser-mount --discover. See discover.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discover.h"
#include "ini.h"
#include "probe.h"

#define DISCOVER_TIMEOUT_MS 30000

struct disc_result {
	bool done;
	int err;
	struct ini_target *targets;
	size_t n;
};

static void disc_done(struct ini_session *sess, int err, const struct ini_target *t, size_t n,
		      void *arg)
{
	struct disc_result *r = arg;

	(void)sess;
	r->done = true;
	r->err = err;
	if (err || !n)
		return;
	/* The array is the library's, valid during this call only. */
	r->targets = malloc(n * sizeof(*t));
	if (!r->targets) {
		r->err = -ENOMEM;
		return;
	}
	memcpy(r->targets, t, n * sizeof(*t));
	r->n = n;
}

static void portal_name(const struct ini_opts *o, char *buf, size_t size)
{
	unsigned int port = o->port ? o->port : INI_DEFAULT_PORT;

	if (strchr(o->host, ':'))
		snprintf(buf, size, "[%s]:%u", o->host, port);
	else
		snprintf(buf, size, "%s:%u", o->host, port);
}

/* SendTargets=All on a discovery session. */
static int send_targets(struct sched *s, const struct ini_opts *base, const char *portal,
			struct disc_result *r)
{
	struct ini_opts o = *base;
	struct ini_session *sess;
	char err[PROBE_ERR_MAX];
	int ret;

	/* Targets rarely ask for CHAP at discovery, and some refuse a
	 * login that offers it: try without, then with the secrets. */
	o.target = NULL;
	o.user = o.secret = o.target_user = o.target_secret = NULL;
	ret = probe_login(s, &o, &sess, err, sizeof(err));
	if (ret == -EACCES && base->user) {
		o = *base;
		o.target = NULL;
		ret = probe_login(s, &o, &sess, err, sizeof(err));
	}
	if (ret) {
		fprintf(stderr, "iser-mount: %s: %s\n", portal, err);
		return ret;
	}
	ret = ini_discover(sess, disc_done, r);
	if (!ret)
		ret = ini_wait(s, &r->done, DISCOVER_TIMEOUT_MS);
	if (!ret)
		ret = r->err;
	if (ret)
		fprintf(stderr, "iser-mount: %s: SendTargets: %s\n", portal,
			r->done ? ini_session_error(sess) : strerror(-ret));
	probe_logout(s, sess);
	return ret;
}

static void print_lun(const struct probe_lun *l, const char *portal, const char *target)
{
	uint64_t bytes = l->nblocks * l->block_size;
	char size[32];

	printf("  LUN %u: %s (%llu bytes, %llu x %u), %s %s %s%s%s\n", l->lun,
	       probe_human_size(bytes, size, sizeof(size)), (unsigned long long)bytes,
	       (unsigned long long)l->nblocks, l->block_size, l->vendor, l->product, l->rev,
	       l->write_protected ? ", read-only" : "", l->max_unmap ? ", unmap" : "");
	printf("         iscsi://%s/%s/%u\n", portal, target, l->lun);
}

static int list_luns(struct ini_session *sess, const char *portal, const char *target)
{
	char err[PROBE_ERR_MAX];
	struct probe_lun l;
	uint32_t *luns;
	size_t n, i;
	int ret;

	ret = probe_report_luns(sess, &luns, &n, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "iser-mount: %s %s: %s\n", portal, target, err);
		return ret;
	}
	for (i = 0; i < n; i++) {
		ret = probe_lun(sess, luns[i], &l, err, sizeof(err));
		if (ret == -ENODEV)
			printf("  %s\n", err);
		else if (ret)
			break;
		else
			print_lun(&l, portal, target);
	}
	free(luns);
	if (ret && ret != -ENODEV) {
		fprintf(stderr, "iser-mount: %s %s: %s\n", portal, target, err);
		return ret;
	}
	return 0;
}

static int list_target(struct sched *s, const struct ini_opts *base, const char *portal,
		       const struct ini_target *t)
{
	struct ini_opts o = *base;
	struct ini_session *sess;
	char err[PROBE_ERR_MAX];
	unsigned int i;
	int ret;

	printf("Target: %s\n", t->name);
	for (i = 0; i < t->naddr && i < sizeof(t->addr) / sizeof(t->addr[0]); i++)
		printf("  Portal: %s\n", t->addr[i]);
	fflush(stdout);
	o.target = t->name;
	ret = probe_login(s, &o, &sess, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "iser-mount: %s %s: %s\n", portal, t->name, err);
		return ret;
	}
	ret = list_luns(sess, portal, t->name);
	probe_logout(s, sess);
	return ret;
}

int discover_run(struct sched *s, const struct ini_opts *o)
{
	struct disc_result r = {0};
	char portal[300];
	int status = 0;
	size_t i;

	portal_name(o, portal, sizeof(portal));
	if (send_targets(s, o, portal, &r))
		return 1;
	for (i = 0; i < r.n; i++) {
		/* The LUNs are asked at the portal we were given: the
		 * addresses a target lists may be unreachable from here. */
		r.targets[i].name[sizeof(r.targets[i].name) - 1] = '\0';
		if (list_target(s, o, portal, &r.targets[i]))
			status = 1;
		fflush(stdout);
	}
	if (!r.n)
		fprintf(stderr, "iser-mount: %s: no targets\n", portal);
	free(r.targets);
	return status;
}
