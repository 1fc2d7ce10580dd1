/*
 * fs: the FUSE session on the scheduler, and the requests on names and
 * attributes. See fs.h. Data requests are in fs_io.c, .stats in
 * fs_stats.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/rbuf.h"
#include "common/sched.h"
#include "fs_priv.h"
#include "ini.h"

/* The tree and the sizes never change while mounted. */
#define ATTR_TIMEOUT 3600.0
#define FS_BLOCK 4096 /* statfs and st_blksize */

#define fs_of(p) ((struct fs *)((char *)(p)-offsetof(struct fs, poller)))

static int fill_attr(const struct fs *fs, fuse_ino_t ino, struct stat *st)
{
	const struct fs_lun *l = fs_lun_of(fs, ino);

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_atim = st->st_mtim = st->st_ctim = fs->created;
	st->st_nlink = 1;
	st->st_blksize = FS_BLOCK;
	if (ino == FS_INO_ROOT) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else if (ino == FS_INO_STATS) {
		/* Size 0 with direct I/O: read until EOF, as in /proc. */
		st->st_mode = S_IFREG | 0444;
	} else if (l) {
		st->st_mode = S_IFREG | (l->ro ? 0444 : 0644);
		st->st_size = (off_t)blkio_size(&l->dev);
		st->st_blocks = st->st_size / 512;
		if (l->info.block_size > FS_BLOCK)
			st->st_blksize = l->info.block_size;
	} else {
		return -ENOENT;
	}
	return 0;
}

static fuse_ino_t ino_by_name(const struct fs *fs, const char *name)
{
	size_t i;

	if (!strcmp(name, ".stats"))
		return FS_INO_STATS;
	for (i = 0; i < fs->nluns; i++)
		if (!strcmp(name, fs->luns[i].name))
			return FS_INO_LUN0 + i;
	return 0;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	/* The kernel keeps at most max_background asynchronous requests
	 * (readahead, AIO direct I/O) in flight: as many as the queue. */
	conn->max_background = fs->cfg.max_background;
	conn->congestion_threshold = conn->max_background * 3 / 4;
	log_debug("FUSE %u.%u: max_write %u, max_read %u, max_readahead %u, max_background %u",
		  conn->proto_major, conn->proto_minor, conn->max_write, conn->max_read,
		  conn->max_readahead, conn->max_background);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;
	fuse_ino_t ino = parent == FS_INO_ROOT ? ino_by_name(fs, name) : 0;

	if (!ino) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = ino;
	e.attr_timeout = e.entry_timeout = ATTR_TIMEOUT;
	fill_attr(fs, ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int err = fill_attr(fuse_req_userdata(req), ino, &st);

	(void)fi;
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

/* A LUN's size is its capacity: like a block device, "truncating" to it
 * is fine, any other size is EINVAL. Owners and modes are fixed; times
 * are accepted and not kept (cp -p, touch). */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_lun *l = fs_lun_of(fs, ino);
	struct stat st;
	int err = fill_attr(fs, ino, &st);

	(void)fi;
	if (!err && (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		err = -EPERM;
	if (!err && (to_set & FUSE_SET_ATTR_SIZE)) {
		if (!l)
			err = ino == FS_INO_ROOT ? -EISDIR : -EACCES;
		else if (l->ro)
			err = -EROFS;
		else if (attr->st_size != st.st_size)
			err = -EINVAL;
	}
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void open_stats(fuse_req_t req, struct fuse_file_info *fi)
{
	struct fs_text *t;

	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if (fs_stats_text(fuse_req_userdata(req), &t)) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)t;
	fi->direct_io = 1;
	fi->noflush = 1;
	/* Interrupted: no release will come for it. */
	if (fuse_reply_open(req, fi))
		free(t);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_lun *l = fs_lun_of(fs, ino);

	if (ino == FS_INO_STATS) {
		open_stats(req, fi);
		return;
	}
	if (!l) {
		fuse_reply_err(req, ino == FS_INO_ROOT ? EISDIR : ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY && l->ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* O_TRUNC is ignored, as on a block device: dd of=lun0 works. */
	fi->fh = 0;
	fi->direct_io = !fs->cfg.cache;
	fi->keep_cache = fs->cfg.cache;
	fi->noflush = 1;
#if FUSE_MAJOR_VERSION > 3 || FUSE_MINOR_VERSION >= 15
	/* RMW and range locks order overlapping writes (blkio.h). */
	fi->parallel_direct_writes = 1;
#endif
	fuse_reply_open(req, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino == FS_INO_STATS)
		free((void *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Entry @i of the root: ".", "..", ".stats", then the LUNs. */
static const char *dirent_at(const struct fs *fs, size_t i, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG;
	switch (i) {
	case 0:
	case 1:
		st->st_ino = FS_INO_ROOT;
		st->st_mode = S_IFDIR;
		return i ? ".." : ".";
	case 2:
		st->st_ino = FS_INO_STATS;
		return ".stats";
	}
	if (i - 3 >= fs->nluns)
		return NULL;
	st->st_ino = FS_INO_LUN0 + i - 3;
	return fs->luns[i - 3].name;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	size_t pos = 0, n, i;
	const char *name;
	struct stat st;
	char *buf;

	(void)fi;
	if (ino != FS_INO_ROOT) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = off > 0 ? (size_t)off : 0; (name = dirent_at(fs, i, &st)); i++) {
		n = fuse_add_direntry(req, buf + pos, size - pos, name, &st, (off_t)(i + 1));
		if (n > size - pos)
			break;
		pos += n;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	struct statvfs sv;
	uint64_t bytes = 0;
	size_t i;

	(void)ino;
	for (i = 0; i < fs->nluns; i++)
		bytes += blkio_size(&fs->luns[i].dev);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = FS_BLOCK;
	/* Every byte is in a LUN file: the file system is full. */
	sv.f_blocks = bytes / FS_BLOCK;
	sv.f_files = fs->nluns + 2;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.open = op_open,
	.read = fs_op_read,
	.write = fs_op_write,
	.release = op_release,
	.fsync = fs_op_fsync,
	.readdir = op_readdir,
	.statfs = op_statfs,
	.fallocate = fs_op_fallocate,
};

/* The FUSE device as a completion source (poller.h): a request read is a
 * completion. Edge mode: EPOLLIN|EPOLLET is the notification and every
 * poll reads until EAGAIN, so going idle needs no re-arm. */

void fs_end(struct fs *fs, int res)
{
	if (fs->exited)
		return;
	if (res < 0)
		log_err("reading the FUSE device: %s", strerror(-res));
	fs->exited = true;
	poller_disable(&fs->poller);
	if (fs->on_exit)
		fs->on_exit(fs->exit_arg);
}

/*
 * Over iSER the receive buffer is registered, so that a large write's data
 * is read by the target straight from it (fs_io.c keeps the buffer for the
 * write). libfuse allocates one itself when rx.mem is NULL, and reads up
 * to its bufsize into it: FUSE_MAX_MAX_PAGES pages and a header page.
 */
#define RX_BUF_SIZE (256 * 4096 + 4096)

static void rx_buf_new(struct fs *fs)
{
	fs->rx_reg = getpagesize() == 4096 ? ini_buf_get(fs->sess, RX_BUF_SIZE) : NULL;
	if (fs->rx_reg)
		fs->rx.mem = fs->rx_reg->addr;
}

static int dev_poll(struct poller *p, int budget)
{
	struct fs *fs = fs_of(p);
	int n = 0, res;

	while (n < budget && !fs->exited) {
		if (!fs->rx.mem)
			rx_buf_new(fs);
		res = fuse_session_receive_buf(fs->se, &fs->rx);
		if (res == -EINTR)
			continue;
		if (res == -EAGAIN)
			break;
		/* 0: the kernel ended the session (unmounted, aborted) */
		if (res <= 0 || fuse_session_exited(fs->se)) {
			fs_end(fs, res);
			break;
		}
		n += 1 + res / FS_POLL_UNIT;
		fs->requests++;
		fuse_session_process_buf(fs->se, &fs->rx);
		if (fuse_session_exited(fs->se))
			fs_end(fs, 0);
	}
	/* The whole budget when it stopped for the weight: poll again. */
	return n < budget ? n : budget;
}

/* Edge mode (poller_set_edge()): the poller never arms this source. */
static int dev_arm(struct poller *p)
{
	(void)p;
	return -EOPNOTSUPP;
}

static int dev_ack(struct poller *p)
{
	(void)p;
	return 1;
}

static const struct poller_ops dev_ops = {
	.poll = dev_poll,
	.arm = dev_arm,
	.ack = dev_ack,
};

/* Life cycle */

static void submit_ini(void *ctx, struct ini_cmd *cmd)
{
	ini_submit(ctx, cmd);
}

static struct rbuf *buf_ini(void *ctx, size_t len)
{
	return ini_buf_get(ctx, len);
}

/* libfuse's messages into our log (syslog once in the background). */
static void fuse_log_fn(enum fuse_log_level level, const char *fmt, va_list ap)
{
	enum log_level l = level <= FUSE_LOG_ERR       ? LOG_LVL_ERR
			   : level == FUSE_LOG_WARNING ? LOG_LVL_WARN
			   : level <= FUSE_LOG_INFO    ? LOG_LVL_INFO
						       : LOG_LVL_DEBUG;
	char line[1024];
	size_t n;

	if (!log_enabled(l))
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	if (n)
		log_msg(l, "%s", line);
}

static void lun_setup(struct fs *fs, struct fs_lun *l, const struct probe_lun *info)
{
	uint64_t max_io = fs->cfg.max_io;

	l->fs = fs;
	l->info = *info;
	snprintf(l->name, sizeof(l->name), "lun%u", info->lun);
	l->ro = fs->cfg.ro || info->write_protected;
	/* The target's MAXIMUM TRANSFER LENGTH bounds our commands. */
	if (info->max_xfer && (uint64_t)info->max_xfer * info->block_size < max_io)
		max_io = (uint64_t)info->max_xfer * info->block_size;
	/* Over iSER, and MaxBurstLength too: a target may move a command's
	 * data with one RDMA operation into a buffer of that size (tgt
	 * 1.0.85 closes the connection on a 1 MiB WRITE after it negotiated
	 * 256 KiB: "rdma-rd size too big"). */
	if (strcmp(ini_session_transport(fs->sess), "tcp") && ini_session_max_burst(fs->sess) &&
	    ini_session_max_burst(fs->sess) < max_io)
		max_io = ini_session_max_burst(fs->sess);
	blkio_init(&l->dev, submit_ini, fs->sess, info->lun, info->block_size, info->nblocks,
		   (uint32_t)max_io, l->ro ? 0 : info->max_unmap);
	/* Over iSER, read buffers the target writes straight into. */
	blkio_set_bufs(&l->dev, buf_ini, ini_buf_put);
}

/* "a,b" is two options to libfuse: escape what it splits on. */
static int add_escaped(char *dst, size_t size, const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		if (n + 3 > size)
			return -EINVAL;
		if (*s == ',' || *s == '\\')
			dst[n++] = '\\';
		dst[n++] = *s;
	}
	dst[n] = '\0';
	return 0;
}

static int session_new(struct fs *fs)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char opts[1024];
	int n, err = 0;

	/* default_permissions: the kernel checks the files' modes, so that
	 * allow_other does not open a writable disk to everyone. */
	n = snprintf(opts, sizeof(opts),
		     "default_permissions,subtype=iser-mount%s%s,fsname=", fs->cfg.ro ? ",ro" : "",
		     fs->cfg.allow_other ? ",allow_other" : "");
	if (n < 0 || (size_t)n >= sizeof(opts) ||
	    add_escaped(opts + n, sizeof(opts) - (size_t)n, fs->cfg.fsname))
		return -EINVAL;
	if (fuse_opt_add_arg(&args, "iser-mount") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts) || (fs->cfg.debug && fuse_opt_add_arg(&args, "-d")))
		err = -ENOMEM;
	if (!err) {
		fs->se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), fs);
		if (!fs->se)
			err = -EINVAL;
	}
	fuse_opt_free_args(&args);
	return err;
}

static int copy_config(struct fs *fs, const struct fs_config *cfg)
{
	fs->cfg = *cfg;
	fs->cfg.fsname = strdup(cfg->fsname ? cfg->fsname : "iser-mount");
	fs->cfg.target = strdup(cfg->target ? cfg->target : "");
	fs->cfg.portal = strdup(cfg->portal ? cfg->portal : "");
	if (!fs->cfg.fsname || !fs->cfg.target || !fs->cfg.portal)
		return -ENOMEM;
	return 0;
}

static void fs_free(struct fs *fs)
{
	free((char *)fs->cfg.fsname);
	free((char *)fs->cfg.target);
	free((char *)fs->cfg.portal);
	free(fs->luns);
	if (fs->rx_reg)
		ini_buf_put(fs->rx_reg);
	else
		free(fs->rx.mem);
	free(fs);
}

int fs_create(struct sched *s, struct ini_session *sess, const struct probe_lun *luns, size_t n,
	      const struct fs_config *cfg, struct fs **ret)
{
	struct fs *fs = calloc(1, sizeof(*fs));
	size_t i;
	int err;

	if (!fs)
		return -ENOMEM;
	fs->sched = s;
	fs->sess = sess;
	fs->uid = getuid();
	fs->gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs->created);
	err = copy_config(fs, cfg);
	if (err)
		goto err_free;
	fs->luns = calloc(n ? n : 1, sizeof(*fs->luns));
	if (!fs->luns) {
		err = -ENOMEM;
		goto err_free;
	}
	fs->nluns = n;
	for (i = 0; i < n; i++)
		lun_setup(fs, &fs->luns[i], &luns[i]);
	fuse_set_log_func(fuse_log_fn);
	err = session_new(fs);
	if (err)
		goto err_free;
	*ret = fs;
	return 0;

err_free:
	fs_free(fs);
	return err;
}

int fs_mount(struct fs *fs, const char *mountpoint)
{
	int fd, fl;

	if (fuse_session_mount(fs->se, mountpoint))
		return -EIO;
	fs->mounted = true;
	/* The poller reads until EAGAIN. */
	fd = fuse_session_fd(fs->se);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	return fs_uring_attach(fs, fd);
}

int fs_start(struct fs *fs, void (*on_exit)(void *arg), void *arg)
{
	int err;

	fs->on_exit = on_exit;
	fs->exit_arg = arg;
	poller_init(&fs->poller, fs->sched, &dev_ops, fuse_session_fd(fs->se),
		    POLLER_DEFAULT_WEIGHT);
	poller_set_edge(&fs->poller);
	err = poller_enable(&fs->poller);
	if (!err)
		fs->started = true;
	return err;
}

void fs_quiesce(struct fs *fs)
{
	if (fs->started)
		poller_disable(&fs->poller);
	fs_uring_quiesce(fs);
}

unsigned int fs_pending(const struct fs *fs)
{
	return fs->pending;
}

static void flush_done(void *arg, ssize_t res, const void *data)
{
	struct fs_lun *l = arg;
	struct fs *fs = l->fs;

	(void)data;
	if (res < 0) {
		log_err("%s: SYNCHRONIZE CACHE: %s", l->name, strerror((int)-res));
		if (!fs->flush_err)
			fs->flush_err = (int)res;
	}
	fs->flush_left--;
}

int fs_flush_all(struct fs *fs, const bool *cancel)
{
	size_t i;

	fs->flush_err = 0;
	fs->flush_left = 0;
	for (i = 0; i < fs->nluns; i++) {
		if (fs->luns[i].ro)
			continue;
		fs->flush_left++;
		blkio_sync(&fs->luns[i].dev, flush_done, &fs->luns[i]);
	}
	while (fs->flush_left && !*cancel)
		if (sched_run_once(fs->sched))
			break;
	return fs->flush_left ? -ECANCELED : fs->flush_err;
}

void fs_destroy(struct fs *fs)
{
	if (!fs)
		return;
	fs_quiesce(fs);
	fs_uring_stop(fs);
	if (fs->mounted)
		fuse_session_unmount(fs->se);
	fuse_session_destroy(fs->se);
	fs_uring_destroy(fs);
	fs_free(fs);
}
