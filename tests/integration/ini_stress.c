/*
 * ini_stress: drive the initiator library at a queue depth against a real
 * target and check every byte: random writes and reads over a region,
 * with a shadow copy of what was acknowledged; no two commands in flight
 * touch the same block, so the shadow is exact. Used to check recovery
 * (the test script kills and restarts the target mid-run: no command may
 * fail, every read must match) and the window under load.
 *
 * ini_stress HOST PORT IQN LUN SECONDS QUEUE_DEPTH [USER SECRET [TUSER TSECRET]]
 * Environment: STRESS_DIGESTS=1 asks for CRC32C digests, STRESS_CHAP_MD5=1
 * offers only CHAP_A 5, STRESS_CMD_TIMEOUT=S sets the command timeout.
 * Prints the counts and the session's counters; exits 0 only when
 * nothing failed or miscompared.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sched.h"
#include "ini.h"

#define BS 512
#define REGION_BLOCKS 32768 /* 16 MiB */
#define MAX_BLOCKS 256

struct op {
	struct ini_cmd cmd;
	uint32_t lba, n;
	bool busy;
	uint8_t buf[MAX_BLOCKS * BS];
};

static uint8_t *shadow, *busy;
static struct ini_session *sess;
static unsigned long done_ops, failures, miscompares;
static uint64_t deadline;
static struct sched *sc;
static bool stop;
static uint32_t lun;

static void issue(struct op *op);

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void op_done(struct ini_cmd *cmd)
{
	struct op *op = cmd->priv;
	uint32_t i;

	done_ops++;
	if (cmd->err) {
		failures++;
		fprintf(stderr, "ini_stress: command %02x at %u failed: %s\n", cmd->cdb[0], op->lba,
			strerror(-cmd->err));
	} else if (cmd->dir == INI_DIR_WRITE) {
		memcpy(shadow + (size_t)op->lba * BS, op->buf, (size_t)op->n * BS);
	} else if (memcmp(shadow + (size_t)op->lba * BS, op->buf, (size_t)op->n * BS)) {
		miscompares++;
		fprintf(stderr, "ini_stress: miscompare reading %u blocks at %u\n", op->n, op->lba);
	}
	for (i = 0; i < op->n; i++)
		busy[op->lba + i] = 0;
	op->busy = false;
	if (sched_now(sc) < deadline && !failures && !miscompares)
		issue(op);
	else
		stop = true;
}

static void issue(struct op *op)
{
	struct ini_cmd *c = &op->cmd;
	bool write = rand() & 1;
	uint32_t i;

	for (;;) { /* a range no other command in flight touches */
		op->n = 1 + (uint32_t)rand() % MAX_BLOCKS;
		op->lba = (uint32_t)rand() % (REGION_BLOCKS - op->n);
		for (i = 0; i < op->n && !busy[op->lba + i]; i++)
			;
		if (i == op->n)
			break;
	}
	for (i = 0; i < op->n; i++)
		busy[op->lba + i] = 1;
	memset(c, 0, sizeof(*c));
	c->lun = lun;
	c->cdb[0] = write ? 0x2a : 0x28; /* WRITE 10, READ 10 */
	put_be32(c->cdb + 2, op->lba);
	c->cdb[7] = op->n >> 8;
	c->cdb[8] = op->n & 0xff;
	c->cdb_len = 10;
	c->dir = write ? INI_DIR_WRITE : INI_DIR_READ;
	c->buf = op->buf;
	c->len = op->n * BS;
	c->done = op_done;
	c->priv = op;
	if (write)
		for (i = 0; i < c->len; i++)
			op->buf[i] = (uint8_t)rand();
	op->busy = true;
	ini_submit(sess, c);
}

int main(int argc, char **argv)
{
	struct ini_opts o = {0};
	struct ini_stats st;
	unsigned int qd, i, secs;
	struct op *ops;
	int err;

	if (argc < 7) {
		fprintf(stderr,
			"usage: ini_stress HOST PORT IQN LUN SECONDS QD [USER SECRET [TUSER TSECRET]]\n"
			"       INI_STRESS_ISER=1: over iSER on the soft provider\n");
		return 2;
	}
	if (getenv("INI_STRESS_ISER")) {
		o.iser = true;
		o.fabric = "soft";
		o.arm_delay = -1;
	}
	o.host = argv[1];
	o.port = (uint16_t)strtoul(argv[2], NULL, 10);
	o.target = argv[3];
	lun = (uint32_t)strtoul(argv[4], NULL, 10);
	secs = (unsigned int)strtoul(argv[5], NULL, 10);
	qd = (unsigned int)strtoul(argv[6], NULL, 10);
	if (argc >= 9) {
		o.user = argv[7];
		o.secret = argv[8];
	}
	if (argc >= 11) {
		o.target_user = argv[9];
		o.target_secret = argv[10];
	}
	o.header_digest = o.data_digest = getenv("STRESS_DIGESTS") != NULL;
	if (getenv("STRESS_CMD_TIMEOUT"))
		o.cmd_timeout = (unsigned int)strtoul(getenv("STRESS_CMD_TIMEOUT"), NULL, 10);
	if (getenv("STRESS_NOP_INTERVAL"))
		o.nop_interval = (unsigned int)strtoul(getenv("STRESS_NOP_INTERVAL"), NULL, 10);
	if (getenv("STRESS_CHAP_MD5"))
		o.chap_algs = INI_CHAP_MD5;
	o.recovery_timeout = 60;
	shadow = calloc(REGION_BLOCKS, BS);
	busy = calloc(REGION_BLOCKS, 1);
	ops = calloc(qd, sizeof(*ops));
	if (!shadow || !busy || !ops || sched_create(&sc) || ini_session_create(sc, &o, &sess))
		return 1;
	err = ini_login_sync(sess);
	if (err) {
		fprintf(stderr, "ini_stress: %s\n", ini_session_error(sess));
		ini_session_destroy(sess);
		sched_destroy(sc);
		free(ops);
		free(shadow);
		free(busy);
		return 1;
	}
	/* Start from a known region: write zeros over it first. */
	for (i = 0; i < REGION_BLOCKS / MAX_BLOCKS; i++) {
		struct ini_cmd c = {.cdb = {0x2a}, .cdb_len = 10, .dir = INI_DIR_WRITE};

		c.lun = lun;
		put_be32(c.cdb + 2, i * MAX_BLOCKS);
		c.cdb[7] = MAX_BLOCKS >> 8;
		c.buf = ops[0].buf;
		c.len = MAX_BLOCKS * BS;
		memset(ops[0].buf, 0, sizeof(ops[0].buf));
		if (ini_cmd_sync(sess, &c)) {
			fprintf(stderr, "ini_stress: zeroing: %s\n", strerror(-c.err));
			return 1;
		}
	}
	deadline = sched_now(sc) + (uint64_t)secs * 1000000000ull;
	for (i = 0; i < qd; i++)
		issue(&ops[i]);
	while (!stop)
		sched_run_once(sc);
	for (i = 0; i < qd; i++)
		while (ops[i].busy)
			sched_run_once(sc);
	ini_session_stats(sess, &st);
	printf("ops %lu failures %lu miscompares %lu reconnects %llu reissued %llu timeouts %llu "
	       "aborts %llu lun_resets %llu tmf_rsps %llu pings %llu ping_fails %llu "
	       "notifications %llu polls %llu completions %llu\n",
	       done_ops, failures, miscompares, (unsigned long long)st.reconnects,
	       (unsigned long long)st.reissued, (unsigned long long)st.timeouts,
	       (unsigned long long)st.aborts, (unsigned long long)st.lun_resets,
	       (unsigned long long)st.tmf_rsps, (unsigned long long)st.pings,
	       (unsigned long long)st.ping_fails, (unsigned long long)st.notifications,
	       (unsigned long long)st.polls, (unsigned long long)st.completions);
	ini_session_destroy(sess);
	sched_destroy(sc);
	free(ops);
	free(shadow);
	free(busy);
	return failures || miscompares ? 1 : 0;
}
