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
	uint64_t requests; /* requests read from the device */
	void (*on_exit)(void *arg);
	void *exit_arg;
};

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

#endif
