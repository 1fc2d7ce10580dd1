/*
 * iser-mount: log in to an iSCSI target and show its LUNs as files
 * through FUSE. See iser-mount(8).
 *
 * Everything that can fail is checked before the mount (the mount point,
 * the login, the LUNs), so that an error is one line on stderr and leaves
 * nothing mounted. Then one thread runs one scheduler: the FUSE device,
 * the iSCSI connection and the signals are its sources.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include "common/log.h"
#include "common/sched.h"
#include "discover.h"
#include "fs.h"
#include "ini.h"
#include "opts.h"
#include "probe.h"
#include "url.h"

#define WATCH_INTERVAL_NS 1000000000ull

struct mnt {
	struct opts *o;
	struct iscsi_url url;
	struct ini_opts io;
	char portal[URL_FIELD_MAX + 16]; /* host:port, for messages */
	char mountpoint[PATH_MAX];	 /* absolute: the daemon runs in / */
	struct sched *sched;
	struct ini_session *sess;
	struct probe_lun *luns;
	size_t nluns;
	struct fs *fs;
	struct sched_fd sig;
	int sigfd;
	struct sched_event wake;
	struct sched_timer watch;
	bool connected;
	bool stop;  /* a signal, or the kernel ended the session */
	bool force; /* a signal while stopping: stop waiting */
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Start-up errors: one line on stderr, before any daemon or log exists. */
static void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "iser-mount: %s\n", line);
}

/* URL, CHAP secrets, and the initiator's options from them. Returns 0 or
 * the exit status for a bad command line. */
static int prepare(struct mnt *m, struct opts_chap *chap)
{
	char err[OPTS_ERR_MAX];

	if (url_parse(m->o->url, &m->url, err, sizeof(err))) {
		say("%s: %s", m->o->url, err);
		return 2;
	}
	if (m->o->fabric && m->url.transport != URL_ISER) {
		say("%s: -o fabric is for iser:// URLs", m->o->url);
		return 2;
	}
	if (opts_load_chap(m->o, m->url.user, m->url.password, chap, err, sizeof(err))) {
		say("%s", err);
		return 2;
	}
	/* As ssh says of a private key, without refusing it. */
	if (chap->file_mode & 077)
		say("warning: %s holds CHAP secrets and is readable by others (mode %04o); "
		    "chmod 600 it",
		    m->o->chap_file, chap->file_mode);
	snprintf(m->portal, sizeof(m->portal), strchr(m->url.host, ':') ? "[%s]:%u" : "%s:%u",
		 m->url.host, m->url.port);
	m->io = (struct ini_opts){
		.host = m->url.host,
		.port = m->url.port,
		.target = m->url.target[0] ? m->url.target : NULL,
		.initiator = m->o->initiator,
		.user = chap->user[0] ? chap->user : NULL,
		.secret = chap->secret[0] ? chap->secret : NULL,
		.target_user = chap->target_user[0] ? chap->target_user : NULL,
		.target_secret = chap->target_secret[0] ? chap->target_secret : NULL,
		.chap_algs = m->o->chap_algs,
		.header_digest = m->o->header_digest,
		.data_digest = m->o->data_digest,
		.queue_depth = m->o->queue_depth,
		.recovery_timeout = m->o->recovery_timeout,
		.cmd_timeout = m->o->cmd_timeout,
		.nop_interval = m->o->nop_interval,
		.iser = m->url.transport == URL_ISER,
		.fabric = m->o->fabric,
		.arm_delay = m->o->arm_delay,
		.mpa_crc = m->o->mpa_crc,
	};
	return 0;
}

/* FUSE would mount over files and hide them; a disk's mount point is
 * expected empty. */
static int check_mountpoint(struct mnt *m)
{
	const char *path = m->o->mountpoint;
	struct dirent *e;
	bool empty = true;
	DIR *d;

	if (!realpath(path, m->mountpoint)) {
		say("%s: %s", path, strerror(errno));
		return -errno;
	}
	d = opendir(m->mountpoint);
	if (!d) {
		if (errno == ENOTDIR)
			say("%s: not an empty directory", path);
		else
			say("%s: %s", path, strerror(errno));
		return -ENOTDIR;
	}
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	if (!empty) {
		say("%s: not an empty directory", path);
		return -ENOTEMPTY;
	}
	return 0;
}

static void lun_list(const uint32_t *luns, size_t n, char *buf, size_t size)
{
	size_t i, pos = 0;
	int k;

	buf[0] = '\0';
	for (i = 0; i < n && pos < size; i++) {
		k = snprintf(buf + pos, size - pos, "%s%u", i ? ", " : "", luns[i]);
		if (k < 0)
			break;
		pos += (size_t)k;
	}
	if (!n)
		snprintf(buf, size, "none");
}

/* With a LUN in the URL: that LUN only, if the target has it. */
static int pick_lun(struct mnt *m, uint32_t *luns, size_t *n)
{
	char list[256];
	size_t i;

	if (!m->url.has_lun)
		return 0;
	for (i = 0; i < *n; i++) {
		if (luns[i] == m->url.lun) {
			luns[0] = m->url.lun;
			*n = 1;
			return 0;
		}
	}
	lun_list(luns, *n, list, sizeof(list));
	say("%s %s: no LUN %u (LUNs: %s)", m->portal, m->url.target, m->url.lun, list);
	return -ENOENT;
}

/* INQUIRY, READ CAPACITY... for each LUN. Without a LUN in the URL, LUNs
 * that are not disks (an enclosure, a controller) are skipped. */
static int probe_luns(struct mnt *m, const uint32_t *luns, size_t n)
{
	char err[PROBE_ERR_MAX];
	size_t i;
	int ret;

	m->luns = calloc(n ? n : 1, sizeof(*m->luns));
	if (!m->luns)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		ret = probe_lun(m->sess, luns[i], &m->luns[m->nluns], err, sizeof(err));
		if (ret == -ENODEV && !m->url.has_lun) {
			log_debug("%s %s: %s: skipped", m->portal, m->url.target, err);
			continue;
		}
		if (ret) {
			say("%s %s: %s", m->portal, m->url.target, err);
			return ret;
		}
		m->nluns++;
	}
	if (!m->nluns) {
		say("%s %s: no LUN to mount", m->portal, m->url.target);
		return -ENOENT;
	}
	return 0;
}

static int login_and_probe(struct mnt *m)
{
	char err[PROBE_ERR_MAX];
	uint32_t *luns;
	size_t n;
	int ret;

	ret = probe_login(m->sched, &m->io, &m->sess, err, sizeof(err));
	if (ret) {
		say("%s %s: %s", m->portal, m->url.target, err);
		return ret;
	}
	ret = probe_report_luns(m->sess, &luns, &n, err, sizeof(err));
	if (ret) {
		say("%s %s: %s", m->portal, m->url.target, err);
		return ret;
	}
	ret = pick_lun(m, luns, &n);
	if (!ret)
		ret = probe_luns(m, luns, n);
	free(luns);
	return ret;
}

/* Stopping */

static void wake_fn(struct sched_event *ev)
{
	(void)ev; /* only makes the loop's next wait non-blocking */
}

static void mnt_stop(struct mnt *m, bool by_signal)
{
	if (m->stop && by_signal)
		m->force = true;
	m->stop = true;
	sched_schedule(m->sched, &m->wake);
}

static void on_signal(struct sched_fd *sfd, uint32_t events)
{
	struct mnt *m = (struct mnt *)((char *)sfd - offsetof(struct mnt, sig));
	struct signalfd_siginfo si;

	(void)events;
	while (read(m->sigfd, &si, sizeof(si)) == sizeof(si)) {
		log_info("%s: %s", strsignal((int)si.ssi_signo),
			 m->stop ? "stopping without waiting" : "unmounting");
		mnt_stop(m, true);
	}
}

static void on_unmount(void *arg)
{
	struct mnt *m = arg;

	log_info("%s: unmounted", m->mountpoint);
	mnt_stop(m, false);
}

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

/* Before the mount: from then on a signal must unmount cleanly, so it is
 * held until the loop reads it. */
static int block_signals(void)
{
	sigset_t set;

	stop_signals(&set);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/*
 * signalfd on the scheduler: no race between a signal and the loop's
 * wait. Made after fuse_daemonize(): epoll learns of a signalfd's signals
 * through the process that added it, so one added before the fork would
 * never wake the daemon.
 */
static int watch_signals(struct mnt *m)
{
	sigset_t set;

	stop_signals(&set);
	m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m->sigfd < 0)
		return -errno;
	return sched_fd_add(m->sched, &m->sig, m->sigfd, EPOLLIN, on_signal);
}

/* Say when the connection drops and comes back: recovery is silent. */
static void watch_fn(struct sched_timer *t)
{
	struct mnt *m = (struct mnt *)((char *)t - offsetof(struct mnt, watch));
	struct ini_stats st;

	ini_session_stats(m->sess, &st);
	if (m->connected && !st.connected)
		log_warn("%s %s: connection lost, reconnecting: %s", m->portal, m->url.target,
			 ini_session_error(m->sess));
	else if (!m->connected && st.connected)
		log_info("%s %s: reconnected", m->portal, m->url.target);
	m->connected = st.connected;
	sched_timer_arm(m->sched, t, sched_now(m->sched) + WATCH_INTERVAL_NS);
}

static int serve(struct mnt *m)
{
	int ret;

	ret = fs_start(m->fs, on_unmount, m);
	if (ret) {
		log_err("cannot watch the FUSE device: %s", strerror(-ret));
		return ret;
	}
	log_info("%s %s: %zu LUN%s on %s%s", m->portal, m->url.target, m->nluns,
		 m->nluns == 1 ? "" : "s", m->mountpoint, m->io.iser ? " (iSER)" : "");
	if (m->io.iser && (!m->io.fabric || !strcmp(m->io.fabric, "auto")))
		log_info(
			"fabric auto: using the %s RDMA provider%s", ini_session_transport(m->sess),
			strcmp(ini_session_transport(m->sess), "soft") ? ""
								       : " (no RDMA device found)");
	m->connected = true;
	sched_timer_arm(m->sched, &m->watch, sched_now(m->sched) + WATCH_INTERVAL_NS);
	while (!m->stop && !ret)
		ret = sched_run_once(m->sched);
	sched_timer_cancel(m->sched, &m->watch);
	if (ret)
		log_err("event loop: %s", strerror(-ret));
	return ret;
}

/* Answer the requests taken, make the writes durable, log out. A second
 * signal skips the waiting. */
static int drain(struct mnt *m)
{
	int ret = 0, err;

	fs_quiesce(m->fs);
	while (fs_pending(m->fs) && !m->force && !ret)
		ret = sched_run_once(m->sched);
	if (!m->force && fs_flush_all(m->fs, &m->force))
		ret = -EIO;
	if (m->force) {
		ini_session_destroy(m->sess);
		ret = -ECANCELED; /* writes may not be durable */
	} else {
		err = probe_logout(m->sched, m->sess);
		if (err)
			log_warn("%s %s: logout: %s", m->portal, m->url.target, strerror(-err));
	}
	m->sess = NULL;
	return ret;
}

static int do_mount(struct mnt *m)
{
	char fsname[2 * URL_FIELD_MAX + 64];
	struct fs_config cfg = {
		.fsname = fsname,
		.target = m->url.target,
		.portal = m->portal,
		.ro = m->o->ro,
		.allow_other = m->o->allow_other,
		.cache = m->o->cache,
		.debug = m->o->debug,
		.uring = m->o->uring,
		.max_io = m->o->max_io,
		.max_background = m->o->queue_depth ? m->o->queue_depth : INI_DEFAULT_QUEUE_DEPTH,
	};
	int ret;

	/* /proc/mounts shows the source, never the credentials. */
	snprintf(fsname, sizeof(fsname), m->url.has_lun ? "iscsi://%s/%s/%u" : "iscsi://%s/%s",
		 m->portal, m->url.target, m->url.lun);
	ret = fs_create(m->sched, m->sess, m->luns, m->nluns, &cfg, &m->fs);
	if (ret) {
		say("cannot set up FUSE: %s", strerror(-ret));
		return ret;
	}
	ret = block_signals();
	if (ret) {
		say("cannot block signals: %s", strerror(-ret));
		return ret;
	}
	ret = fs_mount(m->fs, m->mountpoint);
	if (ret) {
		say("%s: cannot mount: %s", m->o->mountpoint, strerror(-ret));
		return ret;
	}
	if (fuse_daemonize(m->o->foreground)) {
		say("cannot go to the background");
		return -ECHILD;
	}
	if (!m->o->foreground)
		log_init("iser-mount", m->o->debug ? LOG_LVL_DEBUG : LOG_LVL_INFO, true);
	ret = watch_signals(m);
	if (ret)
		log_err("cannot watch signals: %s", strerror(-ret));
	return ret;
}

/* Exit status: 0 after a clean stop, 1 for any failure. */
static int run_mount(struct opts *o)
{
	struct mnt m = {.o = o, .sigfd = -1};
	struct opts_chap chap;
	int ret, err;

	ret = prepare(&m, &chap);
	if (ret)
		return ret;
	if (!m.url.target[0]) {
		say("%s: no target in the URL (iscsi://HOST[:PORT]/IQN[/LUN])", o->url);
		opts_chap_wipe(&chap);
		return 2;
	}
	sched_event_init(&m.wake, wake_fn);
	sched_timer_init(&m.watch, watch_fn);
	ret = check_mountpoint(&m);
	if (!ret && (ret = sched_create(&m.sched)))
		say("cannot create the event loop: %s", strerror(-ret));
	if (!ret)
		sched_set_busy_poll(m.sched, o->busy_poll);
	if (!ret)
		ret = login_and_probe(&m);
	opts_chap_wipe(&chap); /* the session keeps its own copy */
	if (!ret)
		ret = do_mount(&m);
	if (!ret) {
		ret = serve(&m);
		err = drain(&m);
		ret = ret ? ret : err;
	}
	/* A start-up failure after the login: leave politely. */
	if (m.sess && !m.fs)
		probe_logout(m.sched, m.sess);
	else
		ini_session_destroy(m.sess); /* before fs_destroy: see fs.h */
	fs_destroy(m.fs);
	if (m.sigfd >= 0) {
		sched_fd_del(m.sched, &m.sig);
		close(m.sigfd);
	}
	free(m.luns);
	sched_destroy(m.sched);
	return ret ? 1 : 0;
}

static int run_discover(struct opts *o)
{
	struct mnt m = {.o = o};
	struct opts_chap chap;
	int ret;

	ret = prepare(&m, &chap);
	if (ret)
		return ret;
	if (m.url.target[0]) {
		say("--discover takes iscsi://HOST[:PORT], without a target");
		opts_chap_wipe(&chap);
		return 2;
	}
	ret = sched_create(&m.sched);
	if (ret) {
		say("cannot create the event loop: %s", strerror(-ret));
		opts_chap_wipe(&chap);
		return 1;
	}
	ret = discover_run(m.sched, &m.io);
	opts_chap_wipe(&chap);
	sched_destroy(m.sched);
	return ret;
}

int main(int argc, char **argv)
{
	char err[OPTS_ERR_MAX];
	struct opts o;
	int ret;

	log_init("iser-mount", LOG_LVL_INFO, false);
	ret = opts_parse(argc, argv, &o, err, sizeof(err));
	if (ret) {
		say("%s", ret == -ENOMEM ? strerror(ENOMEM) : err);
		opts_free(&o);
		return 2;
	}
	if (o.help || o.version) {
		fputs(o.help ? opts_usage : "iser-mount " ISERKIT_VERSION "\n", stdout);
		opts_free(&o);
		return 0;
	}
	if (o.debug)
		log_init("iser-mount", LOG_LVL_DEBUG, false);
	/* Data buffers of up to 1 MiB come and go with every request: keep
	 * them on the heap, mapped, as iser-target does. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	ret = o.discover ? run_discover(&o) : run_mount(&o);
	opts_free(&o);
	return ret;
}
