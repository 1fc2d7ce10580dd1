/*
 * fs_uring: FUSE over io_uring (Linux 6.14 and later, the kernel's
 * Documentation/filesystems/fuse-io-uring.rst), under libfuse 3.14, which
 * knows nothing of it; and what else libfuse 3.14 cannot say to the
 * kernel (FOPEN_PARALLEL_DIRECT_WRITES, below).
 *
 * libfuse still parses every request and makes every reply: it talks to
 * the device through our read() and writev() (fuse_session_custom_io()).
 * read() sees the INIT request. When the kernel offers FUSE_OVER_IO_URING
 * (module parameter fuse.enable_uring) and a ring and its buffers can be
 * made, writev() adds the flag to libfuse's INIT reply and registers the
 * ring's entries right after it. A request then comes as the completion
 * of an entry's URING_CMD: we lay it out as libfuse reads one from the
 * device (header, the operation's arguments, payload), in front of the
 * payload so that the payload is not copied, and hand it to
 * fuse_session_process_buf(). A reply whose unique is an entry's goes
 * into that entry and back with COMMIT_AND_FETCH, which also asks for the
 * next request; other replies go to the device. Interrupts and forgets
 * keep coming from the device.
 *
 * The kernel has a queue per possible CPU and puts a request on the queue
 * of the CPU its caller runs on. Once it has accepted the flag it holds
 * new requests until every queue has an entry: so the flag is only set
 * when the ring exists and its memory is allocated. One ring on the
 * scheduler's thread holds the entries of all queues. The ring's
 * completions are a source of the budgeted poller (common/uring_evfd.h).
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sched.h"
#include "common/uring_evfd.h"
#include "fs_priv.h"

/*
 * The kernel's interface (include/uapi/linux/fuse.h, 7.42), which the
 * headers of Debian 12 predate. Our own names, so that newer headers do
 * not clash.
 */
#define FSU_IN_OUT_SZ 128 /* FUSE_URING_IN_OUT_HEADER_SZ */
#define FSU_OP_IN_SZ 128  /* FUSE_URING_OP_IN_OUT_SZ */
#define FSU_CMD_REGISTER 1
#define FSU_CMD_COMMIT_AND_FETCH 2

struct fsu_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct fsu_req_header {
	char in_out[FSU_IN_OUT_SZ]; /* fuse_in_header, fuse_out_header */
	char op_in[FSU_OP_IN_SZ];   /* the operation's own header */
	struct fsu_ent_in_out ent;
};

struct fsu_cmd_req { /* in the SQE's command area (SQE128) */
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

/* fuse_in_header and fuse_out_header (stable since 7.0). */
struct fsu_in_header {
	uint32_t len;
	uint32_t opcode;
	uint64_t unique;
	uint64_t nodeid;
	uint32_t uid, gid, pid;
	uint16_t total_extlen;
	uint16_t padding;
};

struct fsu_out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};

#define FSU_OP_OPEN 14
#define FSU_OP_INIT 26
#define FSU_FOPEN_DIRECT_IO (1u << 0)
#define FSU_FOPEN_PARALLEL_DIRECT_WRITES (1u << 6)
#define FSU_OPENS 8 /* OPEN requests remembered at once */
/* fuse_init_in: flags at 12, flags2 at 16; fuse_init_out: flags at 12,
 * max_write at 20, max_pages at 28, flags2 at 32. */
#define FSU_INIT_EXT (1u << 30)
#define FSU_MAX_PAGES (1u << 22)
#define FSU_OVER_IO_URING2 (1u << (41 - 32)) /* in flags2 */
#define FSU_MIN_READ_BUFFER 8192
#define FSU_DEFAULT_MAX_PAGES 32

/* Room for the header and the arguments in front of each payload; a
 * page, so that payloads stay page-aligned. */
#define FSU_HEADROOM 4096
/* Entries per queue: a program at queue depth 32 on one CPU finds 32;
 * fewer when there are many possible CPUs (at least 2 each). */
#define FSU_MAX_PER_QUEUE 32
#define FSU_MAX_ENTRIES 256

struct fsu_ent {
	struct fsu_req_header hdr;
	struct iovec iov[2]; /* REGISTER: the header, the payload */
	char *payload;
	struct rbuf *reg;   /* over iSER: the payload, registered on first use */
	uint64_t commit_id; /* the request's unique while it is ours; else 0 */
	uint16_t qid;
	bool registered; /* the kernel has given it a request once */
};

struct fs_uring {
	struct fs *fs;
	int dev_fd;
	struct io_uring ring;
	bool ring_up;
	struct uring_evfd evfd;
	struct poller poller;
	struct sched_event submit_ev;
	struct fsu_ent *ents;
	unsigned int nents, nqueues;
	size_t payload_sz;
	bool no_reg; /* entries are not registered (TCP, or refused) */
	char *mem;
	size_t mem_len;
	struct fsu_ent *cur; /* the entry whose request libfuse is processing */
	uint64_t init_unique;
	uint64_t opens[FSU_OPENS]; /* OPEN requests not answered yet */
	bool active;		   /* the kernel was told; entries registered */
	unsigned int waiting;	   /* entries with a command at the kernel */
	struct fs_uring_stats st;
};

#define ur_of(p) ((struct fs_uring *)((char *)(p)-offsetof(struct fs_uring, poller)))

/*
 * Direct writes to one file are serialised by the kernel (the inode's
 * lock) unless its OPEN reply says FOPEN_PARALLEL_DIRECT_WRITES (Linux
 * 6.2+), which libfuse 3.14 cannot set: so synchronous writers of a LUN
 * file, threads of a database or of qemu with aio=threads, would reach
 * us one at a time. blkio orders what overlaps (its range lock), so
 * direct-I/O opens get the flag, added to libfuse's reply. A few OPENs
 * in flight are remembered by their unique; one more goes without.
 */
static void note_open(struct fs_uring *ur, const struct fsu_in_header *in)
{
	size_t i;

	if (in->opcode != FSU_OP_OPEN)
		return;
	for (i = 0; i < FSU_OPENS; i++) {
		if (!ur->opens[i]) {
			ur->opens[i] = in->unique;
			return;
		}
	}
}

static bool take_open(struct fs_uring *ur, uint64_t unique)
{
	size_t i;

	for (i = 0; unique && i < FSU_OPENS; i++) {
		if (ur->opens[i] == unique) {
			ur->opens[i] = 0;
			return true;
		}
	}
	return false;
}

/* The kernel's queues: one per possible CPU (num_possible_cpus()). */
static unsigned int possible_cpus(void)
{
	unsigned long lo, hi;
	unsigned int n = 0;
	char line[256], *p, *end;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");

	/* "0-3" or "0,2-5": the kernel counts the bits */
	if (f && fgets(line, sizeof(line), f)) {
		for (p = line;; p = end + 1) {
			lo = hi = strtoul(p, &end, 10);
			if (end == p)
				break;
			if (*end == '-') {
				p = end + 1;
				hi = strtoul(p, &end, 10);
				if (end == p || hi < lo)
					break;
			}
			n += (unsigned int)(hi - lo + 1);
			if (*end != ',')
				break;
		}
	}
	if (f)
		fclose(f);
	return n; /* 0: unknown, and a queue without entries would hang */
}

/*
 * Once the kernel has taken the flag, its requests wait for our entries:
 * a ring that cannot take commands would hang every caller. End the
 * session instead, which ends the mount (as a daemon that died would).
 */
static void ring_broken(struct fs_uring *ur, const char *what, int err)
{
	ur->st.errors++;
	log_err("FUSE over io_uring: %s: %s; ending the session", what, strerror(-err));
	fs_end(ur->fs, 0);
}

static void submit_now(struct fs_uring *ur)
{
	int ret = io_uring_submit(&ur->ring);

	if (ret < 0 && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR)
		ring_broken(ur, "submitting", ret);
	else if (io_uring_sq_ready(&ur->ring))
		sched_schedule(ur->fs->sched, &ur->submit_ev); /* the rest next pass */
}

static void submit_ev_fn(struct sched_event *ev)
{
	struct fs_uring *ur =
		(struct fs_uring *)((char *)ev - offsetof(struct fs_uring, submit_ev));

	if (io_uring_sq_ready(&ur->ring))
		submit_now(ur);
}

/* Queue @e's command @op; submitted in the next pass of the scheduler,
 * together with the others of this one. */
static int queue_cmd(struct fs_uring *ur, struct fsu_ent *e, uint32_t op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ur->ring);
	struct fsu_cmd_req *req;

	if (!sqe) {
		submit_now(ur);
		sqe = io_uring_get_sqe(&ur->ring);
		if (!sqe)
			return -EBUSY;
	}
	memset(sqe, 0, 2 * sizeof(*sqe)); /* SQE128 */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = ur->dev_fd;
	sqe->cmd_op = op;
	sqe->addr = (uintptr_t)e->iov;
	sqe->len = 2;
	req = (struct fsu_cmd_req *)(void *)sqe->cmd;
	req->qid = e->qid;
	req->commit_id = op == FSU_CMD_COMMIT_AND_FETCH ? e->commit_id : 0;
	io_uring_sqe_set_data(sqe, e);
	e->commit_id = 0;
	ur->waiting++;
	sched_schedule(ur->fs->sched, &ur->submit_ev);
	return 0;
}

static void commit(struct fs_uring *ur, struct fsu_ent *e)
{
	if (queue_cmd(ur, e, FSU_CMD_COMMIT_AND_FETCH)) {
		/* Cannot happen: an entry has one command at a time, and the
		 * submission queue has room for all of them. */
		ur->st.errors++;
		log_err("FUSE over io_uring: no room to commit a request");
	}
}

static void commit_err(struct fs_uring *ur, struct fsu_ent *e, int err)
{
	struct fsu_out_header out = {
		.len = sizeof(out),
		.error = -err,
		.unique = e->commit_id,
	};

	memcpy(e->hdr.in_out, &out, sizeof(out));
	e->hdr.ent.payload_sz = 0;
	commit(ur, e);
}

/* A request in @e: check it, lay it out as from the device, process it. */
static void ent_request(struct fs_uring *ur, struct fsu_ent *e)
{
	struct fsu_in_header in;
	const struct fsu_ent_in_out *io = &e->hdr.ent;
	struct fuse_buf b;
	size_t oplen;
	char *start;

	memcpy(&in, e->hdr.in_out, sizeof(in));
	e->commit_id = io->commit_id;
	if (io->payload_sz > ur->payload_sz || in.len < sizeof(in) + io->payload_sz ||
	    in.len - sizeof(in) - io->payload_sz > FSU_OP_IN_SZ || in.unique != io->commit_id) {
		ur->st.errors++;
		log_err("FUSE over io_uring: a malformed request (opcode %u, length %u, "
			"payload %u): answered EIO",
			in.opcode, in.len, io->payload_sz);
		commit_err(ur, e, EIO);
		return;
	}
	note_open(ur, &in);
	oplen = in.len - sizeof(in) - io->payload_sz;
	start = e->payload - sizeof(in) - oplen;
	memcpy(start, &in, sizeof(in));
	memcpy(start + sizeof(in), e->hdr.op_in, oplen);
	memset(&b, 0, sizeof(b));
	b.mem = start;
	b.size = in.len;
	ur->st.requests++;
	ur->fs->requests++;
	ur->cur = e;
	fuse_session_process_buf(ur->fs->se, &b);
	ur->cur = NULL;
}

static int ring_poll(struct poller *p, int budget)
{
	struct fs_uring *ur = ur_of(p);
	struct io_uring_cqe *cqe;
	struct fsu_ent *e;
	int n = 0, res;

	/* Deferred task work: the requests become completions here. */
	if (IO_URING_READ_ONCE(*ur->ring.sq.kflags) & IORING_SQ_TASKRUN)
		io_uring_get_events(&ur->ring);
	while (n < budget && io_uring_peek_cqe(&ur->ring, &cqe) == 0) {
		e = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&ur->ring, cqe);
		ur->waiting--;
		n++;
		if (res < 0) {
			/* -ENOTCONN, -ECANCELED: the kernel ended the session
			 * (unmounted, aborted); the device says so too. */
			if (res == -ENOTCONN || res == -ECANCELED || res == -ECONNABORTED)
				continue;
			ur->st.errors++;
			log_err("FUSE over io_uring: queue %u: %s", e->qid, strerror(-res));
			/* A failed commit leaves its queue an entry short:
			 * register it again. A failed registration is the
			 * kernel's no to the ring (it goes back to the device). */
			if (e->registered && queue_cmd(ur, e, FSU_CMD_REGISTER))
				ring_broken(ur, "registering again", -EBUSY);
			continue;
		}
		e->registered = true;
		n += (int)(e->hdr.ent.payload_sz / FS_POLL_UNIT);
		ent_request(ur, e);
	}
	return n < budget ? n : budget;
}

static int ring_arm(struct poller *p)
{
	struct fs_uring *ur = ur_of(p);

	return uring_evfd_arm(&ur->evfd, &ur->ring);
}

static int ring_ack(struct poller *p)
{
	struct fs_uring *ur = ur_of(p);

	return uring_evfd_ack(&ur->evfd, &ur->ring);
}

static const struct poller_ops ring_ops = {
	.poll = ring_poll,
	.arm = ring_arm,
	.ack = ring_ack,
};

/* Answers queued are sent; the commands at the kernel are cancelled. */
static void ring_stop(struct fs_uring *ur)
{
	if (ur->ring_up) {
		poller_disable(&ur->poller);
		sched_cancel(ur->fs->sched, &ur->submit_ev);
		if (ur->active && io_uring_sq_ready(&ur->ring))
			io_uring_submit(&ur->ring);
		io_uring_queue_exit(&ur->ring);
		ur->ring_up = false;
	}
	uring_evfd_close(&ur->evfd);
}

static void ring_free(struct fs_uring *ur)
{
	unsigned int i;

	ring_stop(ur);
	for (i = 0; ur->ents && i < ur->nents; i++)
		ini_buf_put(ur->ents[i].reg); /* before the memory goes */
	if (ur->mem)
		munmap(ur->mem, ur->mem_len);
	ur->mem = NULL;
	free(ur->ents);
	ur->ents = NULL;
	ur->nents = 0;
}

/* The ring, its eventfd and the entries' memory, for payloads of @payload
 * bytes. Nothing is registered with the kernel yet. */
static int ring_setup(struct fs_uring *ur, size_t payload)
{
	struct io_uring_params params;
	unsigned int per_queue = ur->fs->cfg.max_background, i;
	size_t slot;
	int err;

	ur->nqueues = possible_cpus();
	if (!ur->nqueues)
		return -ENODEV;
	if (per_queue > FSU_MAX_PER_QUEUE)
		per_queue = FSU_MAX_PER_QUEUE;
	if (per_queue > FSU_MAX_ENTRIES / ur->nqueues)
		per_queue = FSU_MAX_ENTRIES / ur->nqueues;
	if (per_queue < 2)
		per_queue = 2;
	ur->nents = ur->nqueues * per_queue;
	ur->payload_sz = payload;
	slot = FSU_HEADROOM + ((payload + 4095) & ~(size_t)4095);
	ur->ents = calloc(ur->nents, sizeof(*ur->ents));
	if (!ur->ents)
		return -ENOMEM;
	/* Untouched pages cost nothing: 4 KiB requests use one per entry. */
	ur->mem_len = slot * ur->nents;
	ur->mem = mmap(NULL, ur->mem_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ur->mem == MAP_FAILED) {
		ur->mem = NULL;
		return -ENOMEM;
	}
	for (i = 0; i < ur->nents; i++) {
		struct fsu_ent *e = &ur->ents[i];

		e->qid = (uint16_t)(i / per_queue);
		e->payload = ur->mem + (size_t)i * slot + FSU_HEADROOM;
		e->iov[0].iov_base = &e->hdr;
		e->iov[0].iov_len = sizeof(e->hdr);
		e->iov[1].iov_base = e->payload;
		e->iov[1].iov_len = payload;
	}
	/* The kernel hands us a request as task work on this thread. Run
	 * it when we poll (DEFER_TASKRUN) rather than have it interrupt us
	 * wherever we are: at queue depth 32, 4K reads, 33-52K IOPS with
	 * interruptions and 35-75K deferred, 0.4-1.4 us less CPU per
	 * request (alternated pairs, a noisy host). */
	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER |
		       IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
	err = io_uring_queue_init_params(ur->nents, &ur->ring, &params);
	if (err)
		return err;
	ur->ring_up = true;
	err = uring_evfd_open(&ur->evfd, &ur->ring);
	if (err)
		return err;
	poller_init(&ur->poller, ur->fs->sched, &ring_ops, ur->evfd.fd, POLLER_DEFAULT_WEIGHT);
	return 0;
}

/* After the INIT reply: every entry to the kernel, and the poller on. */
static void ring_start(struct fs_uring *ur)
{
	unsigned int i;
	int err;

	ur->active = true;
	for (i = 0; i < ur->nents; i++) {
		err = queue_cmd(ur, &ur->ents[i], FSU_CMD_REGISTER);
		if (err) {
			ring_broken(ur, "registering", err);
			return;
		}
	}
	submit_now(ur);
	err = poller_enable(&ur->poller);
	if (err) {
		ring_broken(ur, "polling", err);
		return;
	}
	log_info("FUSE over io_uring: %u queues of %u entries, %zu KiB each", ur->nqueues,
		 ur->nents / ur->nqueues, ur->payload_sz / 1024);
}

/*
 * libfuse's INIT reply. With FUSE_INIT_EXT (the kernel offered flags2),
 * make the ring for the payload size the reply sets, and ask for it.
 */
static ssize_t init_reply(struct fs_uring *ur, int fd, struct iovec *iov, int count)
{
	const struct fsu_out_header *oh = iov[0].iov_base;
	unsigned char out[256];
	uint32_t flags, flags2, max_write;
	uint16_t max_pages;
	struct iovec v[2];
	size_t payload;
	ssize_t n;
	int err;

	ur->init_unique = 0;
	if (count != 2 || oh->error || iov[1].iov_len < 36 || iov[1].iov_len > sizeof(out))
		return writev(fd, iov, count);
	memcpy(out, iov[1].iov_base, iov[1].iov_len);
	memcpy(&flags, out + 12, 4);
	memcpy(&max_write, out + 20, 4);
	memcpy(&max_pages, out + 28, 2);
	memcpy(&flags2, out + 32, 4);
	if (!(flags & FSU_INIT_EXT))
		return writev(fd, iov, count);
	payload = (size_t)(flags & FSU_MAX_PAGES ? max_pages : FSU_DEFAULT_MAX_PAGES) * 4096;
	if (payload < max_write)
		payload = max_write;
	if (payload < FSU_MIN_READ_BUFFER)
		payload = FSU_MIN_READ_BUFFER;
	err = ring_setup(ur, payload);
	if (err) {
		log_err("FUSE over io_uring: cannot set up a ring (%s); using /dev/fuse",
			strerror(-err));
		ring_free(ur);
		return writev(fd, iov, count);
	}
	flags2 |= FSU_OVER_IO_URING2;
	memcpy(out + 32, &flags2, 4);
	v[0] = iov[0];
	v[1].iov_base = out;
	v[1].iov_len = iov[1].iov_len;
	n = writev(fd, v, 2);
	if (n < 0) {
		err = errno;
		ring_free(ur);
		errno = err;
		return n;
	}
	ring_start(ur);
	return n;
}

/* The entry holding request @unique, if one does. */
static struct fsu_ent *ent_find(struct fs_uring *ur, uint64_t unique)
{
	unsigned int i;

	if (ur->cur && ur->cur->commit_id == unique)
		return ur->cur;
	for (i = 0; i < ur->nents; i++)
		if (ur->ents[i].commit_id == unique)
			return &ur->ents[i];
	return NULL;
}

/* A reply into its entry, committed with the next submission. */
static ssize_t ent_reply(struct fs_uring *ur, struct fsu_ent *e, const struct iovec *iov, int count)
{
	size_t len = 0;
	int i;

	for (i = 1; i < count; i++) {
		if (iov[i].iov_len > ur->payload_sz - len) {
			ur->st.errors++;
			log_err("FUSE over io_uring: a reply of more than %zu bytes",
				ur->payload_sz);
			commit_err(ur, e, EIO);
			errno = EINVAL;
			return -1;
		}
		if (iov[i].iov_base != e->payload + len)
			memmove(e->payload + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	memcpy(e->hdr.in_out, iov[0].iov_base, sizeof(struct fsu_out_header));
	e->hdr.ent.payload_sz = (uint32_t)len;
	ur->st.commits++;
	commit(ur, e);
	return (ssize_t)(iov[0].iov_len + len);
}

/* The device, for libfuse (fuse_session_custom_io()). */

static ssize_t dev_read(int fd, void *buf, size_t len, void *userdata)
{
	struct fs *fs = userdata;
	ssize_t n = read(fd, buf, len);
	struct fsu_in_header in;
	uint32_t flags, flags2;

	if (n < (ssize_t)sizeof(in))
		return n;
	memcpy(&in, buf, sizeof(in));
	note_open(fs->ur, &in);
	if (in.opcode != FSU_OP_INIT || !fs->cfg.uring || fs->ur->active ||
	    n < (ssize_t)(sizeof(in) + 20))
		return n;
	memcpy(&flags, (char *)buf + sizeof(in) + 12, 4);
	memcpy(&flags2, (char *)buf + sizeof(in) + 16, 4);
	if ((flags & FSU_INIT_EXT) && (flags2 & FSU_OVER_IO_URING2))
		fs->ur->init_unique = in.unique;
	else
		log_info("FUSE over io_uring: not offered by the kernel (fuse.enable_uring "
			 "off, or before Linux 6.14); using /dev/fuse");
	return n;
}

static ssize_t dev_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fs *fs = userdata;
	struct fs_uring *ur = fs->ur;
	struct fsu_out_header oh;
	unsigned char open_out[64];
	struct iovec v[2];
	uint32_t flags;
	struct fsu_ent *e;

	if (count < 1 || iov[0].iov_len < sizeof(oh))
		return writev(fd, iov, count);
	memcpy(&oh, iov[0].iov_base, sizeof(oh));
	/* fuse_open_out: fh, then open_flags at 8 */
	if (take_open(ur, oh.unique) && !oh.error && count == 2 && iov[1].iov_len >= 16 &&
	    iov[1].iov_len <= sizeof(open_out)) {
		memcpy(open_out, iov[1].iov_base, iov[1].iov_len);
		memcpy(&flags, open_out + 8, 4);
		if (flags & FSU_FOPEN_DIRECT_IO)
			flags |= FSU_FOPEN_PARALLEL_DIRECT_WRITES;
		memcpy(open_out + 8, &flags, 4);
		v[0] = iov[0];
		v[1].iov_base = open_out;
		v[1].iov_len = iov[1].iov_len;
		iov = v;
	}
	if (ur->active && oh.unique && (e = ent_find(ur, oh.unique)))
		return ent_reply(ur, e, iov, count);
	if (ur->init_unique && oh.unique == ur->init_unique)
		return init_reply(ur, fd, iov, count);
	return writev(fd, iov, count);
}

static const struct fuse_custom_io dev_io = {
	.read = dev_read,
	.writev = dev_writev,
};

int fs_uring_attach(struct fs *fs, int fd)
{
	struct fs_uring *ur = calloc(1, sizeof(*ur));
	int err;

	if (!ur)
		return -ENOMEM;
	ur->fs = fs;
	ur->dev_fd = fd;
	ur->evfd.fd = -1;
	sched_event_init(&ur->submit_ev, submit_ev_fn);
	err = fuse_session_custom_io(fs->se, &dev_io, fd);
	if (err) {
		free(ur);
		return err;
	}
	fs->ur = ur;
	return 0;
}

void fs_uring_quiesce(struct fs *fs)
{
	if (fs->ur && fs->ur->ring_up)
		poller_disable(&fs->ur->poller);
}

void fs_uring_stop(struct fs *fs)
{
	if (fs->ur)
		ring_stop(fs->ur);
}

void fs_uring_destroy(struct fs *fs)
{
	if (!fs->ur)
		return;
	ring_free(fs->ur);
	free(fs->ur);
	fs->ur = NULL;
}

void *fs_uring_payload(struct fs *fs, size_t *cap, struct rbuf **reg)
{
	struct fs_uring *ur = fs->ur;
	struct fsu_ent *e = ur ? ur->cur : NULL;

	*cap = 0;
	*reg = NULL;
	if (!e)
		return NULL;
	*cap = ur->payload_sz;
	if (!e->reg && !ur->no_reg) {
		e->reg = ini_buf_wrap(fs->sess, e->payload, ur->payload_sz);
		ur->st.registered += !!e->reg;
		/* Not over iSER, or the device refused (a verbs device pins
		 * the memory: RLIMIT_MEMLOCK): copies, as without a ring. */
		ur->no_reg = !e->reg;
		if (!e->reg && strcmp(ini_session_transport(fs->sess), "tcp"))
			log_warn("FUSE over io_uring: could not register a ring buffer for RDMA "
				 "(%u registered; RLIMIT_MEMLOCK?): the data of the others is "
				 "copied",
				 ur->st.registered);
	}
	*reg = e->reg;
	return e->payload;
}

void fs_uring_stats(const struct fs *fs, struct fs_uring_stats *st, const struct poller_stats **pst)
{
	const struct fs_uring *ur = fs->ur;

	memset(st, 0, sizeof(*st));
	*pst = NULL;
	if (!ur)
		return;
	*st = ur->st;
	st->active = ur->active;
	st->queues = ur->active ? ur->nqueues : 0;
	st->entries = ur->active ? ur->nents : 0;
	st->waiting = ur->waiting;
	if (ur->active)
		*pst = &ur->poller.stats;
}
