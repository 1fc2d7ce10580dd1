/*
 * fs_priv: what fs.c (the FUSE operations) and fs_stats.c (the .stats
 * file) share. Nothing outside fuse/fs*.c sees it.
 */
#ifndef ISERKIT_FS_PRIV_H
#define ISERKIT_FS_PRIV_H

#define FUSE_USE_VERSION 35

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>

#include "blkio.h"
#include "common/poller.h"
#include "fs.h"
#include "probe.h"

/* Inode numbers: fixed, since the tree never changes. */
#define FS_INO_ROOT FUSE_ROOT_ID
#define FS_INO_STATS 2
#define FS_INO_LUN0 3

/* The .stats text of one open, in fuse_file_info.fh. */
struct fs_text {
	size_t len;
	char text[];
};

/* Counters of the FUSE requests on one LUN file. */
struct fs_lun_stats {
	uint64_t reads, writes, fsyncs, punches;
	uint64_t read_bytes, write_bytes;    /* returned to the application */
	uint64_t errors;		     /* requests answered with an error */
	uint64_t lat_ns_sum, lat_ns_max;     /* arrival to answer */
	unsigned int inflight, inflight_max; /* requests not yet answered */
};

struct fs_lun {
	struct fs *fs;
	struct probe_lun info;
	struct blkio_dev dev;
	char name[16]; /* lun<N> */
	bool ro;
	struct fs_lun_stats st;
};

struct fs {
	struct sched *sched;
	struct ini_session *sess;
	struct fuse_session *se;
	struct poller poller; /* the FUSE device as a completion source */
	struct fuse_buf rx;
	struct rbuf *rx_reg;  /* holds rx.mem when it is registered (iSER) */
	struct fs_config cfg; /* strings owned */
	struct fs_lun *luns;
	size_t nluns;
	uid_t uid;
	gid_t gid;
	struct timespec created;
	bool mounted, started, exited;
	unsigned int pending;	 /* requests answered later */
	unsigned int flush_left; /* fs_flush_all: LUNs not synchronised yet */
	int flush_err;
	uint64_t requests;     /* requests read from the device or the ring */
	uint64_t write_copies; /* writes whose data was copied (write_keep()) */
	struct fs_uring *ur;   /* the device for libfuse, and FUSE over io_uring
			      * (fs_uring.c); set by fs_mount() */
	void (*on_exit)(void *arg);
	void *exit_arg;
};

/*
 * A request weighs one in a poll of the device or of the ring, and one
 * more per FS_POLL_UNIT bytes it brought: a poll that copied in a large
 * write stops there, so that the write is sent on before the next one is
 * copied in. With the weight counted in requests, four 1 MiB writes were
 * copied in before the first went out: at queue depth 4 over iSER, whose
 * target asks for the data with an RDMA READ once it has the command,
 * 1.3-1.6K MiB/s against 2.0-2.3K one per poll (4 alternated pairs).
 */
#define FS_POLL_UNIT (16 * 1024)

/* The session is over (the kernel ended it, or @err): no more requests,
 * and the owner is told (fs_start()'s on_exit), once. */
void fs_end(struct fs *fs, int err);

/* The LUN of inode @ino; NULL for the root, .stats, or no such inode. */
static inline struct fs_lun *fs_lun_of(const struct fs *fs, fuse_ino_t ino)
{
	if (ino < FS_INO_LUN0 || ino - FS_INO_LUN0 >= fs->nluns)
		return NULL;
	return &fs->luns[ino - FS_INO_LUN0];
}

/* The .stats text now (malloc'd). Returns 0 or -ENOMEM. */
int fs_stats_text(const struct fs *fs, struct fs_text **ret);

/* The requests that move data (fs_io.c), answered asynchronously. */
void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi);
void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		     struct fuse_file_info *fi);

/*
 * FUSE over io_uring (fs_uring.c). fs_uring_attach() gives libfuse our
 * read and writev for the device @fd, which take the ring into use at
 * INIT when the kernel offers it; otherwise everything stays on the
 * device.
 */
struct fs_uring_stats {
	bool active;		 /* the kernel was asked to use the ring */
	unsigned int queues;	 /* one per possible CPU */
	unsigned int entries;	 /* all queues */
	unsigned int waiting;	 /* entries waiting at the kernel for a request */
	uint64_t requests;	 /* requests that came through the ring */
	uint64_t commits;	 /* replies that went back through it */
	uint64_t errors;	 /* failed commands, malformed requests */
	unsigned int registered; /* entries registered for RDMA (iSER) */
};

int fs_uring_attach(struct fs *fs, int fd);
void fs_uring_quiesce(struct fs *fs);
/* Before the unmount: with deferred task work, a request the kernel is
 * handing to an entry waits for this thread, and the unmount would wait
 * for it; closing the ring cancels it. */
void fs_uring_stop(struct fs *fs);
/* After the device is closed: the entries' memory. */
void fs_uring_destroy(struct fs *fs);
/* The payload of the ring entry of the request being processed, which
 * keeps it until the request is answered (NULL, *@cap 0, when the
 * request came from /dev/fuse): @*cap bytes, a reply written there is
 * committed without a copy; *@reg: over iSER the payload registered
 * (ini_buf_wrap(), once per entry, kept until the ring goes), else NULL. */
void *fs_uring_payload(struct fs *fs, size_t *cap, struct rbuf **reg);
/* Counters; *pst: the ring's poller, NULL when the ring is not in use. */
void fs_uring_stats(const struct fs *fs, struct fs_uring_stats *st,
		    const struct poller_stats **pst);

#endif
