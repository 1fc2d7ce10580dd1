/*
 * iscsi_load: an initiator load for the integration tests, on libiscsi's
 * asynchronous API (software nobody here wrote), and the check of what it
 * wrote against the target's backing file.
 *
 *   iscsi_load write URL [options]  WRITE(16)s of -b blocks each, in turn
 *                                   over the LUN (wrapping), every block
 *                                   stamped with its LBA and the write's
 *                                   sequence number
 *   iscsi_load mix URL [options]    READ(16)s and WRITE(16)s of 1 to 256
 *                                   blocks at random LBAs (R2T included)
 *   iscsi_load read URL [options]   the same READ(16)s only
 *   iscsi_load check FILE ACKFILE   every write that ACKFILE lists as GOOD
 *                                   is in FILE (a later one may cover it)
 *
 * Options: -d DEPTH commands in flight (32), -b BLOCKS per write (8),
 * -t SECONDS to run (10), -a ACKFILE to record each write acknowledged
 * with GOOD, -p N to print "acked N" once N commands completed GOOD.
 *
 * Exit: 0 when the run ended by itself (every command GOOD, logged out);
 * 2 when the target dropped the connection (commands cancelled or failed
 * by the transport; everything acknowledged before is in ACKFILE); 1 on
 * anything else (a SCSI status other than GOOD, a login failure, a
 * mismatch found by check). The last line of a run is a summary.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define LOAD_INITIATOR "iqn.2026-11.org.iserkit:load"
#define LOAD_MAGIC "ISKLOAD1"
#define LOAD_MAX_DEPTH 256
#define LOAD_MIX_MAX_BLOCKS 256

/* The head of every block written: which write put it there. */
struct stamp {
	char magic[8];
	uint64_t lba;
	uint64_t seq;
	uint64_t run;
};

struct slot {
	struct load *load;
	bool busy;
	bool write;
	uint64_t lba;
	uint32_t blocks;
	uint64_t seq;
	unsigned char *buf;
};

struct load {
	struct iscsi_context *iscsi;
	int lun;
	bool mix;
	bool read_only;
	uint32_t block_size;
	uint64_t nblocks;
	unsigned int depth;
	uint32_t wblocks;
	uint64_t run;
	uint64_t next_seq;
	FILE *ack;
	unsigned long progress;
	struct slot slots[LOAD_MAX_DEPTH];
	unsigned int inflight;
	unsigned long good, cancelled, failed;
	unsigned int inflight_at_drop;
	bool dropped;  /* the transport failed a command */
	bool bad;      /* a SCSI status other than GOOD */
	bool stopping; /* no more submissions */
	uint64_t rng;
};

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint8_t fill_byte(uint64_t lba, uint64_t seq, size_t i)
{
	return (uint8_t)(seq * 131 + lba * 7 + i);
}

static void stamp_block(unsigned char *b, uint32_t bs, uint64_t run, uint64_t lba, uint64_t seq)
{
	struct stamp st = {.lba = lba, .seq = seq, .run = run};
	size_t i;

	memcpy(st.magic, LOAD_MAGIC, sizeof(st.magic));
	memcpy(b, &st, sizeof(st));
	for (i = sizeof(st); i < bs; i++)
		b[i] = fill_byte(lba, seq, i);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void load_done(struct iscsi_context *iscsi, int status, void *command_data, void *private)
{
	struct slot *s = private;
	struct load *l = s->load;
	struct scsi_task *task = command_data;

	(void)iscsi;
	s->busy = false;
	l->inflight--;
	if (status == SCSI_STATUS_GOOD) {
		l->good++;
		if (s->write && l->ack)
			fprintf(l->ack, "%" PRIu64 " %u %" PRIu64 "\n", s->lba, s->blocks, s->seq);
		if (l->progress && l->good == l->progress) {
			printf("acked %lu\n", l->good);
			fflush(stdout);
		}
	} else if (status == SCSI_STATUS_CANCELLED || status == SCSI_STATUS_ERROR ||
		   status == SCSI_STATUS_TIMEOUT) {
		/* The transport gave up: the connection is gone. */
		if (!l->dropped)
			l->inflight_at_drop = l->inflight + 1;
		l->dropped = true;
		l->stopping = true;
		if (status == SCSI_STATUS_CANCELLED)
			l->cancelled++;
		else
			l->failed++;
	} else {
		fprintf(stderr, "iscsi_load: %s of %u blocks at LBA %" PRIu64 ": status 0x%x: %s\n",
			s->write ? "WRITE(16)" : "READ(16)", s->blocks, s->lba, status,
			iscsi_get_error(l->iscsi));
		l->bad = true;
		l->stopping = true;
	}
	if (task)
		scsi_free_scsi_task(task);
}

static int load_submit(struct load *l, struct slot *s)
{
	struct scsi_task *task;
	uint32_t i, len;

	if (l->mix) {
		s->blocks = 1 + (uint32_t)(rng_next(&l->rng) % LOAD_MIX_MAX_BLOCKS);
		s->lba = rng_next(&l->rng) % (l->nblocks - s->blocks + 1);
		s->write = !l->read_only && (rng_next(&l->rng) & 1);
	} else {
		uint64_t per_lap = l->nblocks / l->wblocks;

		s->blocks = l->wblocks;
		s->lba = (l->next_seq % per_lap) * l->wblocks;
		s->write = true;
	}
	s->seq = l->next_seq++;
	len = s->blocks * l->block_size;
	if (s->write) {
		for (i = 0; i < s->blocks; i++)
			stamp_block(s->buf + (size_t)i * l->block_size, l->block_size, l->run,
				    s->lba + i, s->seq);
		task = iscsi_write16_task(l->iscsi, l->lun, s->lba, s->buf, len, (int)l->block_size,
					  0, 0, 0, 0, 0, load_done, s);
	} else {
		task = iscsi_read16_task(l->iscsi, l->lun, s->lba, len, (int)l->block_size, 0, 0, 0,
					 0, 0, load_done, s);
	}
	if (!task) {
		fprintf(stderr, "iscsi_load: cannot queue a command: %s\n",
			iscsi_get_error(l->iscsi));
		return -1;
	}
	s->busy = true;
	l->inflight++;
	return 0;
}

static void load_fill(struct load *l)
{
	unsigned int i;

	for (i = 0; i < l->depth && !l->stopping; i++)
		if (!l->slots[i].busy && load_submit(l, &l->slots[i]))
			l->stopping = true;
}

/* Until the time is up or the connection drops, keep the queue full. */
static void load_loop(struct load *l, double seconds)
{
	double end = now_s() + seconds;
	struct pollfd pfd;

	load_fill(l);
	while (l->inflight) {
		pfd.fd = iscsi_get_fd(l->iscsi);
		if (pfd.fd < 0) {
			l->dropped = true;
			break;
		}
		pfd.events = (short)iscsi_which_events(l->iscsi);
		pfd.revents = 0;
		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			break;
		if (iscsi_service(l->iscsi, pfd.revents) < 0) {
			if (!l->dropped)
				l->inflight_at_drop = l->inflight;
			l->dropped = true;
			break;
		}
		if (now_s() >= end + 30) {
			fprintf(stderr, "iscsi_load: %u commands never completed\n", l->inflight);
			l->bad = true;
			break;
		}
		if (now_s() >= end)
			l->stopping = true;
		load_fill(l);
	}
}

static int load_connect(struct load *l, const char *url)
{
	struct iscsi_url *u;
	struct scsi_task *task;
	struct scsi_readcapacity16 *rc16;

	l->iscsi = iscsi_create_context(LOAD_INITIATOR);
	if (!l->iscsi)
		return -1;
	u = iscsi_parse_full_url(l->iscsi, url);
	if (!u) {
		fprintf(stderr, "iscsi_load: bad URL %s: %s\n", url, iscsi_get_error(l->iscsi));
		return -1;
	}
	iscsi_set_targetname(l->iscsi, u->target);
	iscsi_set_session_type(l->iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(l->iscsi, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	/* A dropped connection fails the commands instead of logging in again. */
	iscsi_set_noautoreconnect(l->iscsi, 1);
	l->lun = u->lun;
	if (iscsi_full_connect_sync(l->iscsi, u->portal, u->lun)) {
		fprintf(stderr, "iscsi_load: login to %s failed: %s\n", url,
			iscsi_get_error(l->iscsi));
		iscsi_destroy_url(u);
		return -1;
	}
	iscsi_destroy_url(u);
	task = iscsi_readcapacity16_sync(l->iscsi, l->lun);
	if (!task || task->status != SCSI_STATUS_GOOD || !(rc16 = scsi_datain_unmarshall(task))) {
		fprintf(stderr, "iscsi_load: READ CAPACITY(16) failed: %s\n",
			iscsi_get_error(l->iscsi));
		if (task)
			scsi_free_scsi_task(task);
		return -1;
	}
	l->block_size = rc16->block_length;
	l->nblocks = rc16->returned_lba + 1;
	scsi_free_scsi_task(task);
	/* Two writes in flight to one block would make "the newest
	 * acknowledged write is there" undecidable: a lap outlasts the queue. */
	if (l->block_size < sizeof(struct stamp) || l->nblocks < LOAD_MIX_MAX_BLOCKS ||
	    l->nblocks / l->wblocks <= l->depth) {
		fprintf(stderr, "iscsi_load: LUN too small (%" PRIu64 " blocks of %u)\n",
			l->nblocks, l->block_size);
		return -1;
	}
	return 0;
}

static int load_alloc(struct load *l)
{
	uint32_t blocks = l->mix ? LOAD_MIX_MAX_BLOCKS : l->wblocks;
	unsigned int i;

	for (i = 0; i < l->depth; i++) {
		l->slots[i].load = l;
		l->slots[i].buf = malloc((size_t)blocks * l->block_size);
		if (!l->slots[i].buf)
			return -1;
	}
	return 0;
}

static int load_run(int argc, char **argv, bool mix, bool read_only)
{
	struct load l = {.mix = mix, .read_only = read_only, .depth = 32, .wblocks = 8};
	const char *ackpath = NULL;
	double seconds = 10;
	unsigned int i;
	int opt, ret = 1;

	while ((opt = getopt(argc, argv, "d:b:t:a:p:")) != -1) {
		switch (opt) {
		case 'd':
			l.depth = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			l.wblocks = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			seconds = strtod(optarg, NULL);
			break;
		case 'a':
			ackpath = optarg;
			break;
		case 'p':
			l.progress = strtoul(optarg, NULL, 10);
			break;
		default:
			return 1;
		}
	}
	if (optind + 1 != argc || !l.depth || l.depth > LOAD_MAX_DEPTH || !l.wblocks ||
	    l.wblocks > 4096) {
		fprintf(stderr,
			"usage: iscsi_load write|mix|read URL [-d 1..%d] [-b 1..4096] "
			"[-t SECONDS] [-a ACKFILE] [-p N]\n",
			LOAD_MAX_DEPTH);
		return 1;
	}
	l.run = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
	l.rng = l.run | 1;
	if (load_connect(&l, argv[optind]) || load_alloc(&l))
		goto out;
	if (ackpath) {
		l.ack = fopen(ackpath, "w");
		if (!l.ack) {
			perror(ackpath);
			goto out;
		}
		fprintf(l.ack, "run %" PRIu64 " block-size %u\n", l.run, l.block_size);
	}
	load_loop(&l, seconds);
	if (l.dropped)
		ret = 2;
	else if (!l.bad && l.inflight == 0 && iscsi_logout_sync(l.iscsi) == 0)
		ret = 0;
	else if (!l.bad)
		fprintf(stderr, "iscsi_load: logout failed: %s\n", iscsi_get_error(l.iscsi));
	printf("good %lu cancelled %lu failed %lu in-flight-at-drop %u %s\n", l.good, l.cancelled,
	       l.failed, l.inflight_at_drop, l.dropped ? "dropped" : "finished");
out:
	if (l.iscsi)
		iscsi_destroy_context(l.iscsi); /* cancels what is left */
	if (l.ack && fclose(l.ack)) {
		perror(ackpath);
		ret = 1;
	}
	for (i = 0; i < l.depth && i < LOAD_MAX_DEPTH; i++)
		free(l.slots[i].buf);
	return ret;
}

/* The newest write acknowledged for each block: it, or a later one. */
static int check_block(const unsigned char *b, uint32_t bs, uint64_t run, uint64_t lba,
		       uint64_t need)
{
	struct stamp st;
	size_t i;

	memcpy(&st, b, sizeof(st));
	if (memcmp(st.magic, LOAD_MAGIC, sizeof(st.magic)) || st.run != run || st.lba != lba) {
		fprintf(stderr,
			"LBA %" PRIu64 ": acknowledged write %" PRIu64
			" missing (no stamp of this run there)\n",
			lba, need);
		return -1;
	}
	if (st.seq < need) {
		fprintf(stderr,
			"LBA %" PRIu64 ": holds write %" PRIu64
			", older than acknowledged write %" PRIu64 "\n",
			lba, st.seq, need);
		return -1;
	}
	for (i = sizeof(st); i < bs; i++) {
		if (b[i] != fill_byte(lba, st.seq, i)) {
			fprintf(stderr, "LBA %" PRIu64 ": byte %zu torn (write %" PRIu64 ")\n", lba,
				i, st.seq);
			return -1;
		}
	}
	return 0;
}

static int check_run(const char *path, const char *ackpath)
{
	uint64_t run, lba, seq, *need = NULL, nblocks = 0, b, acked = 0, blocks = 0;
	unsigned int bs, n, bad = 0;
	unsigned char *buf = NULL;
	FILE *ack = fopen(ackpath, "r");
	int fd = open(path, O_RDONLY), ret = 1;

	if (!ack || fd < 0) {
		perror(!ack ? ackpath : path);
		goto out;
	}
	if (fscanf(ack, "run %" SCNu64 " block-size %u\n", &run, &bs) != 2 || bs < 64 ||
	    bs > 65536) {
		fprintf(stderr, "%s: no header\n", ackpath);
		goto out;
	}
	buf = malloc(bs);
	while (buf && fscanf(ack, "%" SCNu64 " %u %" SCNu64 "\n", &lba, &n, &seq) == 3) {
		if (lba + n > nblocks) {
			uint64_t *nn = realloc(need, (lba + n) * sizeof(*need));

			if (!nn)
				goto out;
			memset(nn + nblocks, 0, (lba + n - nblocks) * sizeof(*need));
			need = nn;
			nblocks = lba + n;
		}
		for (b = lba; b < lba + n; b++)
			if (need[b] < seq + 1)
				need[b] = seq + 1; /* 0: nothing acknowledged */
		acked++;
	}
	if (!buf || !feof(ack)) {
		fprintf(stderr, "%s: bad line after %" PRIu64 " writes\n", ackpath, acked);
		goto out;
	}
	for (b = 0; b < nblocks; b++) {
		if (!need[b])
			continue;
		blocks++;
		if (pread(fd, buf, bs, (off_t)(b * bs)) != (ssize_t)bs) {
			fprintf(stderr, "%s: cannot read LBA %" PRIu64 "\n", path, b);
			bad++;
		} else if (check_block(buf, bs, run, b, need[b] - 1)) {
			bad++;
		}
		if (bad >= 20)
			break;
	}
	printf("checked %" PRIu64 " acknowledged writes, %" PRIu64 " blocks: %u bad\n", acked,
	       blocks, bad);
	ret = bad ? 1 : 0;
out:
	free(buf);
	free(need);
	if (ack)
		fclose(ack);
	if (fd >= 0)
		close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	/* A target that goes away must fail commands, not kill us mid-record. */
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && !strcmp(argv[1], "write"))
		return load_run(argc - 1, argv + 1, false, false);
	if (argc >= 2 && !strcmp(argv[1], "mix"))
		return load_run(argc - 1, argv + 1, true, false);
	if (argc >= 2 && !strcmp(argv[1], "read"))
		return load_run(argc - 1, argv + 1, true, true);
	if (argc == 4 && !strcmp(argv[1], "check"))
		return check_run(argv[2], argv[3]);
	fprintf(stderr, "usage: iscsi_load write|mix|read URL [options] | check FILE ACKFILE\n");
	return 1;
}
