/*
 * fs: the FUSE file system of iser-mount (libfuse3's low-level API). The
 * root holds one regular file per LUN, lun<N>, of the LUN's capacity, and
 * a read-only .stats file. The FUSE device is one more completion source
 * of the budgeted poller on the shared scheduler; reads, writes, fsync
 * and hole punches are answered asynchronously, when their SCSI commands
 * complete (blkio.h).
 *
 * Everything runs on the scheduler's thread.
 */
#ifndef ISERKIT_FS_H
#define ISERKIT_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sched;
struct ini_session;
struct probe_lun;
struct fs;

struct fs_config {
	const char *fsname; /* the source in /proc/mounts (copied) */
	const char *target; /* for .stats (copied) */
	const char *portal; /* host:port, for .stats (copied) */
	bool ro;	    /* every LUN read-only */
	bool allow_other;
	bool cache; /* the page cache; else direct I/O */
	bool debug; /* libfuse's request log */
	bool uring; /* FUSE over io_uring when the kernel offers it */
	uint32_t max_io;
	unsigned int max_background; /* FUSE requests in flight at once */
};

/*
 * A file system over the @n LUNs of @luns (copied), whose commands go to
 * @sess. Returns 0 and sets *ret, -ENOMEM, or -EINVAL when libfuse refuses
 * the options (it says why on stderr).
 */
int fs_create(struct sched *s, struct ini_session *sess, const struct probe_lun *luns, size_t n,
	      const struct fs_config *cfg, struct fs **ret);

/* Mount on @mountpoint, an absolute path. Returns 0 or -EIO (libfuse
 * says why on stderr). */
int fs_mount(struct fs *fs, const char *mountpoint);

/*
 * Serve requests from the scheduler. @on_exit(@arg) runs once, from the
 * scheduler, when the kernel ends the session (fusermount3 -u, umount).
 * Returns 0 or -errno from the scheduler.
 */
int fs_start(struct fs *fs, void (*on_exit)(void *arg), void *arg);

/* Take no more requests; those taken still get their answers. */
void fs_quiesce(struct fs *fs);

/* Requests taken and not answered yet. */
unsigned int fs_pending(const struct fs *fs);

/*
 * SYNCHRONIZE CACHE on every LUN that can be written, at once, and wait
 * (runs the scheduler) until they are done or *@cancel becomes true.
 * Returns 0, the first -errno (failures are logged), or -ECANCELED.
 */
int fs_flush_all(struct fs *fs, const bool *cancel);

/* Unmount if mounted, and free. NULL is allowed. Destroy the session
 * first: its failed commands still answer requests through @fs. */
void fs_destroy(struct fs *fs);

#endif
