/*
 * libFuzzer harness for the soft RDMA provider's receive side (common/soft):
 * the input is what an iWARP initiator sends after its MPA Request, on a
 * connection the provider accepted as responder (byte 0: bit 0 asks for
 * MPA CRC, bits 1-7 cut the stream into writes of that many 256-byte
 * units, 0 for as much as the socket takes; the rest is the stream of
 * FPDUs, so that it is read whole or in parts, placed or read ahead). Before it, the provider has
 * posted receives and, held until the initiator's first FPDU, an RDMA Read
 * of 64 KiB and a Send; the input's first FPDU goes alone, and the rest
 * once they are out. Its one memory region is mapped at a fixed
 * address and is the device's first (STag 1), so that seeds can name it:
 * the peer may Write and Read all of it; the Read's sink is its second
 * half. The input goes through a socketpair, then end of file, and the
 * scheduler runs until the connection is down. Any crash, sanitizer
 * report, or a connection still up after its peer's EOF is a finding.
 * FUZZ_SOFT_LOG=1 prints the events and completions.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/iwarp.h"
#include "common/rdma.h"
#include "common/sched.h"

#define REGION_ADDR ((void *)0x480000000000ull) /* above ASan's shadow, below its heap */
#define REGION_LEN (1u << 20)
#define SINK_OFF (REGION_LEN / 2)
#define READ_LEN (64u * 1024)
#define ROUNDS 20000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *region;
static bool verbose;

struct run {
	struct sched *s;
	struct rdma_dev *dev;
	struct rdma_pd *pd;
	struct rdma_cq *cq;
	struct rdma_mr *mr;
	struct rdma_listener *l;
	struct rdma_conn *conn;
	bool down;
};

/* Read what the provider sent; how much. */
static size_t drain(int fd)
{
	char buf[65536];
	size_t got = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		got += (size_t)n;
	return got;
}

static struct rdma_sge sge_at(struct run *r, size_t off, uint32_t len)
{
	return (struct rdma_sge){(uint64_t)(uintptr_t)(region + off), len, rdma_mr_lkey(r->mr)};
}

/* The responder's set-up: receives, then a Read and a Send, then accept. */
static void take_request(struct run *r, struct rdma_conn *conn)
{
	struct rdma_qp_attr qa = {
		.pd = r->pd,
		.send_cq = r->cq,
		.recv_cq = r->cq,
		.max_send_wr = 16,
		.max_recv_wr = 16,
		.max_send_sge = 2,
		.max_recv_sge = 2,
	};
	struct rdma_conn_attr ca = {.initiator_depth = 4, .responder_resources = 4};
	struct rdma_sge sg[2] = {sge_at(r, 0, 64), sge_at(r, 4096, 4096)};
	struct rdma_recv_wr rw = {.wr_id = 1, .sg_list = sg, .num_sge = 2}, *bad_r;
	struct rdma_send_wr sw = {.flags = RDMA_SEND_SIGNALED}, *bad_s;
	int i;

	r->conn = conn;
	if (rdma_qp_create(conn, &qa))
		abort();
	/* One with two SGEs, then single ones of 256 bytes. */
	if (rdma_conn_post_recv(conn, &rw, &bad_r))
		abort();
	for (i = 0; i < 4; i++) {
		sg[0] = sge_at(r, 8192 + (size_t)i * 256, 256);
		rw = (struct rdma_recv_wr){.wr_id = 2 + (uint64_t)i, .sg_list = sg, .num_sge = 1};
		if (rdma_conn_post_recv(conn, &rw, &bad_r))
			abort();
	}
	if (rdma_conn_accept(conn, &ca))
		abort();
	sg[0] = sge_at(r, SINK_OFF, READ_LEN);
	sw.wr_id = 10;
	sw.opcode = RDMA_WR_RDMA_READ;
	sw.sg_list = sg;
	sw.num_sge = 1;
	sw.remote_addr = 0x1000;
	sw.rkey = 0x77;
	if (rdma_conn_post_send(conn, &sw, &bad_s))
		abort();
	sg[0] = sge_at(r, 0, 100);
	sw.wr_id = 11;
	sw.opcode = RDMA_WR_SEND;
	if (rdma_conn_post_send(conn, &sw, &bad_s))
		abort();
}

/* One iteration that never blocks (a stop request makes the wait
 * non-blocking), then what it produced: events, completions. */
static void run_once(struct run *r)
{
	struct rdma_event ev;
	struct rdma_wc wc[16];
	int i, n;

	sched_stop(r->s);
	sched_run_once(r->s);
	while (rdma_get_event(r->dev, &ev) == 0) {
		if (verbose)
			fprintf(stderr, "event %d status %d\n", (int)ev.type, ev.status);
		if (ev.type == RDMA_EV_CONNECT_REQUEST)
			take_request(r, ev.conn);
		else if (ev.type != RDMA_EV_ESTABLISHED)
			r->down = true;
	}
	while ((n = rdma_cq_poll(r->cq, wc, 16)) > 0)
		for (i = 0; verbose && i < n; i++)
			fprintf(stderr, "wc %llu status %d len %u\n",
				(unsigned long long)wc[i].wr_id, (int)wc[i].status, wc[i].byte_len);
}

/* Run until the provider sends something (or gives up). */
static void settle(struct run *r, int fd)
{
	int rounds;

	for (rounds = 0; !drain(fd) && !r->down && rounds < 100; rounds++)
		run_once(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iwarp_mpa m = {.rev = IWARP_MPA_REV2, .enhanced = true, .ird = 4, .ord = 4};
	struct run r = {0};
	uint8_t req[64];
	size_t off = 0, chunk;
	int sv[2], len, rounds;

	if (!region) {
		region = mmap(REGION_ADDR, REGION_LEN, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (region != REGION_ADDR) {
			perror("fuzz_soft: mmap at the fixed address");
			abort();
		}
		verbose = getenv("FUZZ_SOFT_LOG") != NULL;
	}
	if (!size)
		return 0;
	m.crc = data[0] & 1;
	chunk = (size_t)(data[0] >> 1) * 256;
	len = iwarp_mpa_encode(&m, req, sizeof(req));
	if (len < 0 || sched_create(&r.s) || rdma_dev_create(r.s, "soft", NULL, &r.dev) ||
	    rdma_pd_create(r.dev, &r.pd) || rdma_cq_create(r.dev, 64, &r.cq) ||
	    rdma_mr_create(r.pd, region, REGION_LEN,
			   RDMA_ACCESS_LOCAL_WRITE | RDMA_ACCESS_REMOTE_WRITE |
				   RDMA_ACCESS_REMOTE_READ,
			   &r.mr) ||
	    rdma_listener_create(r.dev, NULL, 0, 0, NULL, &r.l))
		abort();
	if (verbose)
		fprintf(stderr, "stag %u region %p\n", rdma_mr_rkey(r.mr), (void *)region);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) ||
	    rdma_listener_adopt(r.l, sv[0], req, (size_t)len))
		abort();
	data++;
	size--;
	/* The MPA Reply; then the first FPDU alone, until the provider answers
	 * it with what it held (the Read Request): a response can follow. */
	settle(&r, sv[1]);
	len = iwarp_fpdu_len(data, size, IWARP_ULPDU_MAX);
	if (len > 0 && (size_t)len <= size && write(sv[1], data, (size_t)len) == len) {
		off = (size_t)len;
		settle(&r, sv[1]);
	}
	for (rounds = 0; off < size && !r.down && rounds < ROUNDS; rounds++) {
		ssize_t n =
			write(sv[1], data + off, chunk && chunk < size - off ? chunk : size - off);

		if (n > 0)
			off += (size_t)n;
		drain(sv[1]);
		run_once(&r);
	}
	shutdown(sv[1], SHUT_WR);
	for (rounds = 0; !r.down && rounds < ROUNDS; rounds++) {
		drain(sv[1]);
		run_once(&r);
	}
	if (!r.down)
		abort(); /* a connection that outlives its peer's EOF */
	if (verbose) {
		struct rdma_conn_stats st;

		if (r.conn && !rdma_conn_get_stats(r.conn, &st))
			fprintf(stderr,
				"fpdus in %llu out %llu terminates %llu/%llu ahead %llu/%llu\n",
				(unsigned long long)st.rx_fpdus, (unsigned long long)st.tx_fpdus,
				(unsigned long long)st.terminates_sent,
				(unsigned long long)st.terminates_received,
				(unsigned long long)st.ahead_fpdus,
				(unsigned long long)st.ahead_misses);
	}
	rdma_conn_destroy(r.conn);
	rdma_listener_destroy(r.l);
	rdma_mr_destroy(r.mr);
	rdma_cq_destroy(r.cq);
	rdma_pd_destroy(r.pd);
	rdma_dev_destroy(r.dev);
	sched_destroy(r.s);
	close(sv[1]);
	return 0;
}
