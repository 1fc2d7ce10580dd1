/*
 * iser-target: serve LUNs over iSCSI/TCP (and iSER, later) from a config
 * file or from the command line. See iser-target(8).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/ioq.h"
#include "common/log.h"
#include "config.h"
#include "tgt.h"

#define IOQ_DEPTH 256
_Static_assert(CONFIG_BUSY_POLL_DEFAULT == 100, "update --help and the man pages");

static const char usage[] =
	"Usage: iser-target -c FILE [options]\n"
	"       iser-target --portal ADDR[:PORT] --target IQN --lun PATH [--size SIZE] [options]\n"
	"\n"
	"Export files or block devices as SCSI disks over iSCSI (RFC 7143) and\n"
	"iSER (RFC 7145).\n"
	"\n"
	"  -c, --config FILE     read targets, LUNs, portals and ACLs from FILE\n"
	"                        (iser-target.conf(5)); the flags below add to it\n"
	"  -p, --portal SPEC     listen on [tcp:|iser:]ADDRESS[:PORT] (default port\n"
	"                        3260); may repeat. An iser: portal on the soft\n"
	"                        provider serves iSCSI/TCP on the same port too\n"
	"  -F, --fabric NAME     RDMA provider of iser: portals: auto (verbs if an\n"
	"                        RDMA device exists, else soft), verbs or soft\n"
	"  -B, --busy-poll US    keep polling for US microseconds after the last\n"
	"                        event before sleeping (default 100; 0: off)\n"
	"  -t, --target IQN      add a target; the --lun flags after it belong to it\n"
	"  -l, --lun PATH        add a LUN (numbered 0, 1, ... per target) backed by\n"
	"                        PATH, a file or a block device\n"
	"  -s, --size SIZE       create the last --lun's file sparse with SIZE (e.g. 1G)\n"
	"                        if it does not exist\n"
	"  -r, --read-only       make the last --lun read-only\n"
	"  -D, --daemon          detach and log to syslog\n"
	"  -P, --pidfile FILE    write the daemon's PID to FILE\n"
	"  -d, --debug           log debug messages\n"
	"  -h, --help            show this help\n"
	"  -V, --version         show the version\n"
	"\n"
	"Example:\n"
	"  iser-target --portal 127.0.0.1:3260 --target iqn.2026-11.org.example:disk \\\n"
	"              --lun /var/tmp/disk.img --size 1G\n"
	"\n"
	"SIGTERM or SIGINT stops it cleanly; SIGHUP reloads ACLs and CHAP accounts;\n"
	"SIGUSR1 logs each connection's counters (commands, completion polling)\n"
	"and the backing stores' (io_uring, reads served from the page cache).\n";

struct opts {
	const char *config;
	const char *pidfile;
	bool daemon;
	bool debug;
};

static int fail(const char *what, const char *arg)
{
	fprintf(stderr, "iser-target: %s%s\n", what, arg ? arg : "");
	return -EINVAL;
}

static int add_flag(struct config *c, int opt, const char *arg, char *err, size_t errlen)
{
	struct config_target *t = config_last_target(c);
	struct config_lun *l = t && t->nluns ? &t->luns[t->nluns - 1] : NULL;

	switch (opt) {
	case 'p':
		return config_add_portal(c, arg, err, errlen);
	case 'F':
		return config_set_fabric(c, arg, err, errlen);
	case 'B':
		return config_set_busy_poll(c, arg, err, errlen);
	case 't':
		return config_add_target(c, arg, err, errlen);
	case 'l':
		if (!t) {
			snprintf(err, errlen, "--lun %s before any --target", arg);
			return -EINVAL;
		}
		return config_add_lun(t, l ? l->lun + 1 : 0, arg, err, errlen);
	case 's':
		if (!l) {
			snprintf(err, errlen, "--size %s before any --lun", arg);
			return -EINVAL;
		}
		if (config_parse_size(arg, &l->size)) {
			snprintf(err, errlen, "bad --size '%s': expected e.g. 1G, 512M, 4096", arg);
			return -EINVAL;
		}
		return 0;
	case 'r':
		if (!l) {
			snprintf(err, errlen, "--read-only before any --lun");
			return -EINVAL;
		}
		l->read_only = true;
		return 0;
	}
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct opts *o, struct config *c)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"portal", required_argument, NULL, 'p'},
		{"target", required_argument, NULL, 't'},
		{"lun", required_argument, NULL, 'l'},
		{"size", required_argument, NULL, 's'},
		{"read-only", no_argument, NULL, 'r'},
		{"daemon", no_argument, NULL, 'D'},
		{"pidfile", required_argument, NULL, 'P'},
		{"debug", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"fabric", required_argument, NULL, 'F'},
		{"busy-poll", required_argument, NULL, 'B'},
		{0},
	};
	char err[CONFIG_ERR_MAX];
	int opt;

	/* The config file first, so that flags add to what it declares. */
	while ((opt = getopt_long(argc, argv, "c:p:F:B:t:l:s:rDP:dhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			o->config = optarg;
			break;
		case 'D':
			o->daemon = true;
			break;
		case 'P':
			o->pidfile = optarg;
			break;
		case 'd':
			o->debug = true;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case 'V':
			puts("iser-target " ISERKIT_VERSION);
			exit(0);
		case '?':
			fputs("Try 'iser-target --help'.\n", stderr);
			return -EINVAL;
		}
	}
	if (optind < argc)
		return fail("unexpected argument (try --help): ", argv[optind]);
	if (o->config && config_load(c, o->config, err, sizeof(err)))
		return fail(err, NULL);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:p:F:B:t:l:s:rDP:dhV", longopts, NULL)) != -1)
		if (strchr("pFBtlsr", opt) && add_flag(c, opt, optarg, err, sizeof(err)))
			return fail(err, NULL);
	if (config_finish(c, err, sizeof(err)))
		return fail(err, NULL);
	return 0;
}

static void tgt_close_luns(struct tgt *t)
{
	size_t i, j;

	for (i = 0; i < t->ntargets; i++) {
		for (j = 0; j < t->targets[i].nluns; j++)
			lun_close(t->targets[i].luns[j]);
		free(t->targets[i].luns);
	}
	free(t->targets);
	t->targets = NULL;
	t->ntargets = 0;
}

/* Open every backing store before any portal: a LUN that cannot be
 * opened stops the daemon with its name. */
static int tgt_open_luns(struct tgt *t)
{
	struct config *c = t->cfg;
	size_t i, j;
	int err;

	t->targets = calloc(c->ntargets, sizeof(*t->targets));
	if (!t->targets)
		return -ENOMEM;
	for (i = 0; i < c->ntargets; i++) {
		struct tgt_target *tt = &t->targets[t->ntargets++];

		tt->cfg = &c->targets[i];
		tt->luns = calloc(tt->cfg->nluns, sizeof(*tt->luns));
		if (!tt->luns)
			return -ENOMEM;
		for (j = 0; j < tt->cfg->nluns; j++) {
			const struct config_lun *cl = &tt->cfg->luns[j];

			err = lun_open(cl, t->ioq, &tt->luns[tt->nluns]);
			if (err) {
				log_err("%s LUN %u: cannot open %s: %s", tt->cfg->name, cl->lun,
					cl->path, strerror(-err));
				return err;
			}
			tt->nluns++;
			log_info("%s LUN %u: %s, %llu blocks of %u bytes%s", tt->cfg->name, cl->lun,
				 cl->path, (unsigned long long)lun_blocks(tt->luns[j]),
				 lun_block_size(tt->luns[j]), cl->read_only ? ", read-only" : "");
		}
		tt->scsi.luns = tt->luns;
		tt->scsi.nluns = tt->nluns;
		tt->scsi.name = tt->cfg->name;
		tt->scsi.tpgt = 1;
	}
	return 0;
}

/* SIGHUP: take ACLs and CHAP accounts from the file again. Targets,
 * LUNs and portals stay as they are (a restart changes those). */
static void tgt_reload(struct tgt *t, const char *path)
{
	char err[CONFIG_ERR_MAX];
	struct config *nc;
	size_t i;

	if (!path) {
		log_info("SIGHUP: no config file to reload");
		return;
	}
	if (config_create(&nc))
		return;
	if (config_load(nc, path, err, sizeof(err)) || config_finish(nc, err, sizeof(err))) {
		log_err("SIGHUP: keeping the old ACLs and CHAP accounts: %s", err);
		config_destroy(nc);
		return;
	}
	for (i = 0; i < t->cfg->ntargets; i++) {
		struct config_target *ot = &t->cfg->targets[i];
		struct config_target *nt = config_find_target(nc, ot->name);
		char **allow;
		size_t nallow;

		if (!nt) {
			log_warn("SIGHUP: target %s gone from %s: restart to remove it", ot->name,
				 path);
			continue;
		}
		allow = ot->allow;
		nallow = ot->nallow;
		ot->allow = nt->allow;
		ot->nallow = nt->nallow;
		nt->allow = allow;
		nt->nallow = nallow;
		ot->chap = nt->chap;
		ot->mutual_chap = nt->mutual_chap;
	}
	t->cfg->discovery_chap = nc->discovery_chap;
	t->cfg->discovery_mutual_chap = nc->discovery_mutual_chap;
	config_destroy(nc);
	log_info("SIGHUP: ACLs and CHAP accounts reloaded from %s", path);
}

struct sigctx {
	struct sched_fd sfd;
	struct tgt *tgt;
	const char *config;
	int fd;
};

/* SIGUSR1, after the connections: the backing stores' queue. */
static void ioq_log_stats(struct ioq *q)
{
	struct ioq_stats st;

	ioq_get_stats(q, &st);
	log_info("stats backing store: %s submitted=%llu completed=%llu inflight_max=%llu "
		 "inline_reads=%llu inline_misses=%llu memory_ops=%llu",
		 ioq_is_async(q) ? "io_uring" : "sync", (unsigned long long)st.submitted,
		 (unsigned long long)st.completed, (unsigned long long)st.inflight_max,
		 (unsigned long long)st.inline_reads, (unsigned long long)st.inline_misses,
		 (unsigned long long)st.memory_ops);
}

static void on_signal(struct sched_fd *sfd, uint32_t events)
{
	struct sigctx *sc = (struct sigctx *)sfd;
	struct signalfd_siginfo si;

	(void)events;
	while (read(sc->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			tgt_reload(sc->tgt, sc->config);
			continue;
		}
		if (si.ssi_signo == SIGUSR1) {
			conn_log_stats(sc->tgt);
			ioq_log_stats(sc->tgt->ioq);
			continue;
		}
		log_info("%s: stopping", strsignal((int)si.ssi_signo));
		sc->tgt->stopping = true;
		tgt_portals_close(sc->tgt);
	}
}

static void drain_tick(struct sched_timer *tm)
{
	(void)tm;
}

/* One iteration whose wait is bounded: once the last connection is gone
 * nothing else would wake the loop (the portals are closed). */
static int drain_once(struct tgt *t)
{
	struct sched_timer tick;
	int err;

	sched_timer_init(&tick, drain_tick);
	sched_timer_arm(t->sched, &tick, sched_now(t->sched) + 10000000);
	err = sched_run_once(t->sched);
	sched_timer_cancel(t->sched, &tick);
	return err;
}

/* After a stop signal: commands in the backing store finish and their
 * responses go out, then each connection closes; bounded by 10 s. */
static void tgt_drain(struct tgt *t)
{
	uint64_t deadline = sched_now(t->sched) + 10000000000ull;
	struct conn *c;

	for (c = t->conns; c; c = c->next)
		conn_quiesce(c);
	while (t->conns && sched_now(t->sched) < deadline) {
		for (c = t->conns; c; c = c->next)
			if (c->phase != CONN_CLOSING && !c->nexec && !conn_tx_pending(c))
				conn_close(c, "target stopping");
		if (drain_once(t))
			break;
	}
	conn_destroy_all(t);
	deadline = sched_now(t->sched) + 10000000000ull;
	while (t->conns && sched_now(t->sched) < deadline)
		if (drain_once(t))
			break;
}

static int setup_signals(struct sigctx *sc)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	sc->fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sc->fd < 0)
		return -errno;
	return sched_fd_add(sc->tgt->sched, &sc->sfd, sc->fd, EPOLLIN, on_signal);
}

/* --daemon: the parent waits until the child has its portals open and
 * exits with the child's verdict, so that init systems see errors. */
static int daemonize(int *ready_fd)
{
	int p[2];
	pid_t pid;
	char status = 1;

	if (pipe(p))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = 1;
		_exit(status);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -errno;
	fprintf(f, "%d\n", (int)getpid());
	return fclose(f) ? -errno : 0;
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

static int run(struct tgt *t, struct opts *o)
{
	struct sigctx sc = {.tgt = t, .config = o->config, .fd = -1};
	char err[256];
	int ret, ready = -1;

	if (o->daemon && daemonize(&ready))
		return 1;
	ret = sched_create(&t->sched);
	if (!ret) {
		sched_set_busy_poll(t->sched, t->cfg->busy_poll);
		ret = ioq_create(t->sched, IOQ_DEPTH, 0, &t->ioq);
	}
	if (ret) {
		log_err("cannot set up the event loop: %s", strerror(-ret));
		return 1;
	}
	if (!ioq_is_async(t->ioq))
		log_info("io_uring unavailable: backing store I/O runs synchronously");
	ret = tgt_open_luns(t);
	if (!ret && (ret = setup_signals(&sc)))
		log_err("cannot set up signals: %s", strerror(-ret));
	if (!ret && (ret = tgt_portals_open(t, err, sizeof(err))))
		log_err("%s", err);
	if (!ret && o->pidfile && (ret = write_pidfile(o->pidfile)))
		log_err("cannot write %s: %s", o->pidfile, strerror(-ret));
	if (ready >= 0) {
		char status = ret ? 1 : 0;

		if (write(ready, &status, 1) != 1)
			ret = -EIO;
		close(ready);
		if (!ret) {
			detach_stdio();
			log_init("iser-target", o->debug ? LOG_LVL_DEBUG : LOG_LVL_INFO, true);
		}
	}
	while (!ret && !t->stopping)
		ret = sched_run_once(t->sched);
	tgt_drain(t);
	tgt_portals_close(t);
	tgt_rdma_close(t);
	tgt_close_luns(t);
	if (sc.fd >= 0) {
		sched_fd_del(t->sched, &sc.sfd);
		close(sc.fd);
	}
	ioq_destroy(t->ioq);
	sched_destroy(t->sched);
	if (o->pidfile && !ret)
		unlink(o->pidfile);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct tgt t = {.next_tsih = 1};
	int ret;

	log_init("iser-target", LOG_LVL_INFO, false);
	/* Command buffers (up to MaxBurstLength each) come and go at every
	 * I/O: keep them on the heap and the heap's pages mapped, instead of
	 * an mmap/munmap or brk trim and page faults per command (measured
	 * with bench/target-tcp). A buffer pool will replace this. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	if (config_create(&t.cfg)) {
		fputs("iser-target: out of memory\n", stderr);
		return 1;
	}
	if (parse_args(argc, argv, &o, t.cfg)) {
		config_destroy(t.cfg);
		return 2;
	}
	if (o.debug)
		log_init("iser-target", LOG_LVL_DEBUG, false);
	ret = run(&t, &o);
	config_destroy(t.cfg);
	return ret;
}
