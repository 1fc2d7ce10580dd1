/*
 * libFuzzer harness for the target's whole iSCSI path: the input is the
 * byte stream an initiator sends on one connection (framing, digests,
 * login and its key lists, the full feature phase, SCSI commands on a
 * small LUN, data-out, TMFs, logout). It is written into one end of a
 * socketpair whose other end is a target connection, then the connection
 * sees end of file; the scheduler runs until the connection is gone. Any
 * crash, sanitizer report or connection that never ends is a finding.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/ioq.h"
#include "common/log.h"
#include "config.h"
#include "tgt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char lun_path[64];

static void fuzz_config(struct config **ret)
{
	struct config *c;
	char err[CONFIG_ERR_MAX];

	if (config_create(&c) || config_add_portal(c, "127.0.0.1:3260", err, sizeof(err)) ||
	    config_add_target(c, "iqn.2026-11.org.iserkit:fuzz", err, sizeof(err)) ||
	    config_add_lun(config_last_target(c), 0, lun_path, err, sizeof(err)))
		abort();
	if (config_finish(c, err, sizeof(err)))
		abort();
	*ret = c;
}

static void drain(int fd)
{
	char buf[65536];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* One scheduler iteration that never blocks: everything here (the
 * socketpair, the synchronous backing store) is ready or done, and once the
 * connection is gone nothing would ever wake the loop. A stop request makes
 * the wait non-blocking. */
static void run_once(struct tgt *t)
{
	sched_stop(t->sched);
	sched_run_once(t->sched);
}

/* Feed @data in pieces as the socket takes it, reading the target's
 * answers so that it never blocks on a full send buffer. */
static void feed(struct tgt *t, int fd, const uint8_t *data, size_t size)
{
	size_t off = 0;
	int rounds;

	for (rounds = 0; off < size && rounds < 10000; rounds++) {
		ssize_t n = write(fd, data + off, size - off);

		if (n > 0)
			off += (size_t)n;
		drain(fd);
		run_once(t);
		if (!t->conns)
			return;
	}
	shutdown(fd, SHUT_WR);
	for (rounds = 0; t->conns && rounds < 10000; rounds++) {
		drain(fd);
		run_once(t);
	}
	if (t->conns)
		abort(); /* a connection that outlives its peer's EOF */
}

/* The LUN's file goes with the process (libFuzzer and the replayer
 * exit(); a crash leaves it, to be looked at). */
static void remove_lun(void)
{
	unlink(lun_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tgt t = {.next_tsih = 1};
	struct tgt_target tt = {0};
	struct lun *lun;
	int sv[2];

	if (!lun_path[0]) {
		int fd;

		snprintf(lun_path, sizeof(lun_path), "/tmp/iserkit-fuzz-XXXXXX");
		fd = mkstemp(lun_path);
		if (fd < 0 || ftruncate(fd, 1 << 20) || atexit(remove_lun))
			abort();
		close(fd);
		/* FUZZ_CONN_LOG=1 shows what the target did with an input. */
		log_init("fuzz", getenv("FUZZ_CONN_LOG") ? LOG_LVL_DEBUG : LOG_LVL_ERR, false);
	}
	fuzz_config(&t.cfg);
	if (sched_create(&t.sched) || ioq_create(t.sched, 64, IOQ_FORCE_SYNC, &t.ioq))
		abort();
	if (lun_open(&t.cfg->targets[0].luns[0], t.ioq, &lun))
		abort();
	tt.cfg = &t.cfg->targets[0];
	tt.luns = &lun;
	tt.nluns = 1;
	tt.scsi.luns = tt.luns;
	tt.scsi.nluns = 1;
	tt.scsi.name = tt.cfg->name;
	tt.scsi.tpgt = 1;
	t.targets = &tt;
	t.ntargets = 1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv))
		abort();
	if (conn_create(&t, sv[0], &(struct sockaddr){.sa_family = AF_UNIX},
			sizeof(struct sockaddr)))
		abort();
	feed(&t, sv[1], data, size);
	close(sv[1]);
	lun_close(lun);
	ioq_destroy(t.ioq);
	sched_destroy(t.sched);
	config_destroy(t.cfg);
	return 0;
}
