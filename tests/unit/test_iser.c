/*
 * Unit tests for common/xport/iser (one iSER connection, RFC 7145) and
 * common/rbuf (registered buffers), over the soft RDMA provider: two
 * devices on one scheduler, connected over 127.0.0.1 (a random port). The
 * passive side plays the target (it accepts on RDMA_EV_CONNECT_REQUEST),
 * the active side the initiator; each side's connection events are read
 * from its event fd and fed to iser_conn_event().
 *
 * What is checked is what a user of the transport would check: the iSER
 * CM header in the private data, PDUs and STags received, bytes read and
 * written by RDMA, the order of done() and recv(), the statistics, the
 * errno of each refusal and the down() of each failure.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "common/rbuf.h"
#include "common/rdma.h"
#include "common/sched.h"
#include "common/xport/iser.h"

#define WAIT_NS (5ull * 1000000000)
#define MiB (1024 * 1024)
#define MAX_REC 512
#define DATA_MAX ISER_DEFAULT_DSL

struct rx_rec {
	uint8_t opcode;
	uint32_t itt, data_len;
	uint32_t sum; /* of the data segment, sum() */
	struct iser_hdr_ctrl ctrl;
	bool watch_ok; /* the watched bytes were in place when recv() ran */
	bool after_down;
};

struct done_rec {
	void *ref;
	int err;
};

/* One device and the one iser_conn on it. */
struct side {
	struct rdma_dev *dev;
	struct rdma_pd *pd;
	struct sched_fd evfd;
	struct iser_conn *ic;
	struct iser_conn_attr attr;
	struct rbuf_pool *pool;
	struct rdma_conn *raw; /* a plain rdma_conn, for the CM header test */

	struct rdma_event req; /* the last CONNECT_REQUEST */
	struct rdma_event est; /* the last ESTABLISHED */
	int nreq, nest, orphans, accept_err;

	int ups, downs, down_err;
	const char *down_why;
	struct rx_rec rx[MAX_REC];
	int nrx;
	uint8_t data[DATA_MAX]; /* the last PDU's data segment */
	struct done_rec done[MAX_REC];
	int ndone;

	bool disconnect_on_done; /* done() calls iser_conn_disconnect() */

	/* recv() keeps each receive with iser_conn_rx_hold() */
	bool hold;
	int held[MAX_REC];
	const uint8_t *held_data[MAX_REC];
	uint32_t held_sum[MAX_REC], held_len[MAX_REC];
	int nheld;

	/* done() sends this many more NOP-Outs, ITT resend_itt and on */
	int resend;
	uint32_t resend_itt;

	/* recv() of the PDU with ITT i compares watch[i] with expect[i]
	 * while it runs (ordering tests) */
	const uint8_t *watch[MAX_REC], *expect[MAX_REC];
	size_t watch_len;
};

static struct sched *s;
static struct sched_timer tick;
static struct side I, T; /* the initiator (active), the target (passive) */
static struct rdma_listener *L;
static struct sockaddr_in L_addr;

#define side_of(ptr, member) ((struct side *)((char *)(ptr)-offsetof(struct side, member)))

/* Keeps sched_run_once() from blocking for good when nothing happens. */
static void tick_fn(struct sched_timer *t)
{
	sched_timer_arm(s, t, sched_now(s) + 20 * 1000000);
}

#define RUN_UNTIL(cond)                                                   \
	do {                                                              \
		uint64_t dl_ = sched_now(s) + WAIT_NS;                    \
		while (!(cond) && sched_now(s) < dl_)                     \
			ck_assert_int_eq(sched_run_once(s), 0);           \
		ck_assert_msg((cond), "timed out waiting for %s", #cond); \
	} while (0)

/* Run the loop for a while, for "nothing more happens" checks. */
static void run_for(uint64_t ns)
{
	uint64_t dl = sched_now(s) + ns;

	while (sched_now(s) < dl)
		ck_assert_int_eq(sched_run_once(s), 0);
}

/* FNV-1a, to tell data segments apart. */
static uint32_t sum(const uint8_t *p, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Callbacks */

static void cb_recv(struct iser_conn *ic, const struct pdu *p, const struct iser_hdr_ctrl *ctrl)
{
	struct side *sd = iser_conn_ctx(ic);
	struct rx_rec *r;

	ck_assert_int_lt(sd->nrx, MAX_REC);
	r = &sd->rx[sd->nrx++];
	r->opcode = p->bhs.opcode;
	r->itt = p->bhs.itt;
	r->data_len = p->bhs.data_len;
	r->ctrl = *ctrl;
	r->after_down = sd->downs > 0;
	ck_assert_uint_le(p->bhs.data_len, sizeof(sd->data));
	if (p->bhs.data_len)
		memcpy(sd->data, p->data, p->bhs.data_len);
	r->sum = sum(sd->data, p->bhs.data_len);
	if (r->itt < MAX_REC && sd->watch[r->itt])
		r->watch_ok = !memcmp(sd->watch[r->itt], sd->expect[r->itt], sd->watch_len);
	if (sd->hold) {
		/* not data of this receive: refused */
		ck_assert_int_eq(iser_conn_rx_hold(ic, sd->data), -1);
		ck_assert_int_lt(sd->nheld, MAX_REC);
		sd->held[sd->nheld] = iser_conn_rx_hold(ic, p->data);
		ck_assert_int_ge(sd->held[sd->nheld], 0);
		/* once per receive */
		ck_assert_int_eq(iser_conn_rx_hold(ic, p->data), -1);
		sd->held_data[sd->nheld] = p->data;
		sd->held_len[sd->nheld] = p->bhs.data_len;
		sd->held_sum[sd->nheld] = sum(p->data, p->bhs.data_len);
		sd->nheld++;
	}
}

static void cb_done(struct iser_conn *ic, void *ref, int err)
{
	struct side *sd = iser_conn_ctx(ic);

	ck_assert_int_lt(sd->ndone, MAX_REC);
	sd->done[sd->ndone].ref = ref;
	sd->done[sd->ndone].err = err;
	sd->ndone++;
	if (sd->disconnect_on_done)
		iser_conn_disconnect(ic);
	if (sd->resend > 0) {
		struct pdu_bhs bhs = {.opcode = PDU_OP_NOP_OUT, .final = true};

		sd->resend--;
		bhs.itt = sd->resend_itt++;
		ck_assert_int_eq(iser_conn_send(ic, &bhs, NULL, NULL, 0, NULL), 0);
	}
}

static void cb_up(struct iser_conn *ic)
{
	struct side *sd = iser_conn_ctx(ic);

	sd->ups++;
}

static void cb_down(struct iser_conn *ic, int err, const char *why)
{
	struct side *sd = iser_conn_ctx(ic);

	ck_assert_ptr_nonnull(why);
	sd->downs++;
	sd->down_err = err;
	sd->down_why = why;
}

static const struct iser_conn_cb cb = {
	.recv = cb_recv,
	.done = cb_done,
	.up = cb_up,
	.down = cb_down,
};

/* Connection events */

static void on_request(struct side *sd, const struct rdma_event *ev)
{
	sd->req = *ev;
	sd->nreq++;
	ck_assert_ptr_eq(ev->listener, L);
	ck_assert_ptr_null(sd->ic);
	ck_assert_int_eq(iser_conn_create(s, sd->dev, sd->pd, &sd->attr, &cb, sd, &sd->ic), 0);
	sd->accept_err = iser_conn_accept(sd->ic, ev->conn, ev);
}

static void ev_cb(struct sched_fd *sfd, uint32_t events)
{
	struct side *sd = side_of(sfd, evfd);
	struct iser_conn *ic;
	struct rdma_event ev;

	(void)events;
	while (rdma_get_event(sd->dev, &ev) == 0) {
		if (ev.type == RDMA_EV_CONNECT_REQUEST) {
			on_request(sd, &ev);
			continue;
		}
		if (ev.type == RDMA_EV_ESTABLISHED) {
			sd->est = ev;
			sd->nest++;
		}
		ic = iser_conn_of(&ev);
		if (ic)
			iser_conn_event(ic, &ev);
		else
			sd->orphans++;
	}
}

/* Fixture */

static const struct iser_conn_attr default_attr = {
	.rx_depth = 32,
	.tx_depth = 16,
	.recv_dsl = ISER_DEFAULT_DSL,
	.send_dsl = ISER_DEFAULT_DSL,
	.arm_delay = ISER_ARM_DELAY_DEFAULT,
};

static void side_init(struct side *sd)
{
	memset(sd, 0, sizeof(*sd));
	sd->attr = default_attr;
	ck_assert_int_eq(rdma_dev_create(s, "soft", NULL, &sd->dev), 0);
	ck_assert_int_eq(rdma_pd_create(sd->dev, &sd->pd), 0);
	ck_assert_int_eq(sched_fd_add(s, &sd->evfd, rdma_event_fd(sd->dev), EPOLLIN, ev_cb), 0);
}

static void side_fini(struct side *sd)
{
	iser_conn_destroy(sd->ic);
	rdma_conn_destroy(sd->raw);
	rbuf_pool_destroy(sd->pool);
	sched_fd_del(s, &sd->evfd);
	rdma_pd_destroy(sd->pd);
	rdma_dev_destroy(sd->dev);
}

/* The target listens on 127.0.0.1, a port of the kernel's choosing. */
static void setup(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr_storage ss;

	ck_assert_int_eq(sched_create(&s), 0);
	sched_timer_init(&tick, tick_fn);
	tick_fn(&tick);
	side_init(&I);
	side_init(&T);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(
		rdma_listener_create(T.dev, (struct sockaddr *)&sin, sizeof(sin), 8, &T, &L), 0);
	ck_assert_int_eq(rdma_listener_addr(L, &ss), 0);
	memcpy(&L_addr, &ss, sizeof(L_addr));
	ck_assert_int_ne(L_addr.sin_port, 0);
}

static void teardown(void)
{
	rdma_listener_destroy(L);
	L = NULL;
	side_fini(&I);
	side_fini(&T);
	sched_timer_cancel(s, &tick);
	sched_destroy(s);
}

/* Both sides up, with the attributes set in I.attr and T.attr. */
static void connect_pair(void)
{
	ck_assert_int_eq(iser_conn_create(s, I.dev, I.pd, &I.attr, &cb, &I, &I.ic), 0);
	ck_assert_int_eq(iser_conn_connect(I.ic, (struct sockaddr *)&L_addr, sizeof(L_addr)), 0);
	RUN_UNTIL(I.ups == 1 && T.ups == 1);
	ck_assert_int_eq(T.accept_err, 0);
	ck_assert_int_eq(I.downs + T.downs, 0);
}

/* Pools: the target's local, the initiator's open to the target's RDMA. */
static void pools_init(void)
{
	ck_assert_int_eq(rbuf_pool_create(T.pd, 0, &T.pool), 0);
	ck_assert_int_eq(
		rbuf_pool_create(I.pd, RDMA_ACCESS_REMOTE_READ | RDMA_ACCESS_REMOTE_WRITE, &I.pool),
		0);
}

static struct rbuf *get_buf(struct side *sd, size_t len)
{
	struct rbuf *b = NULL;

	ck_assert_int_eq(rbuf_get(sd->pool, len, &b), 0);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_ge(b->cap, len);
	return b;
}

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8) + (i >> 16));
}

static uint64_t va(const struct rbuf *b, uint32_t off)
{
	return (uint64_t)(uintptr_t)(b->addr + off);
}

static struct pdu_bhs nop(uint8_t opcode, uint32_t itt)
{
	return (struct pdu_bhs){
		.opcode = opcode,
		.immediate = opcode == PDU_OP_NOP_OUT,
		.final = true,
		.itt = itt,
		.nop.ttt = PDU_RSVD_TAG,
	};
}

static struct iser_conn_stats stats(const struct side *sd)
{
	struct iser_conn_stats st;

	iser_conn_get_stats(sd->ic, &st);
	return st;
}

/* 1. Connect */

START_TEST(test_connect)
{
	struct iser_hdr_cm cm = {0};

	connect_pair();
	ck_assert_ptr_eq(iser_conn_ctx(I.ic), &I);
	ck_assert_ptr_eq(iser_conn_ctx(T.ic), &T);
	ck_assert_int_eq(T.nreq, 1);
	ck_assert_int_eq(I.nest, 1);
	ck_assert_int_eq(T.nest, 1);
	/* The initiator's CM header: absolute addresses, no Send with
	 * Invalidate (Linux ib_iser). */
	ck_assert_uint_ge(T.req.pdata_len, ISER_HDR_CM_LEN);
	ck_assert_int_eq(iser_hdr_cm_decode(T.req.pdata, T.req.pdata_len, &cm), 0);
	ck_assert(cm.zbva_not_sup);
	ck_assert(cm.send_w_inv_not_sup);
	ck_assert_uint_eq(T.req.pdata[0],
			  ISER_HDR_CM_ZBVA_NOT_SUP | ISER_HDR_CM_SEND_W_INV_NOT_SUP);
	ck_assert_uint_eq(T.req.pdata[1] | T.req.pdata[2] | T.req.pdata[3], 0);
	/* The target's answer says it uses neither. */
	cm = (struct iser_hdr_cm){0};
	ck_assert_int_eq(iser_hdr_cm_decode(I.est.pdata, I.est.pdata_len, &cm), 0);
	ck_assert(cm.zbva_not_sup);
	ck_assert(cm.send_w_inv_not_sup);
	/* The initiator serves the target's RDMA READs (its IRD). */
	ck_assert_uint_gt(T.req.responder_resources, 0);
	ck_assert_uint_gt(T.est.initiator_depth, 0);
	/* Nothing more: up() once on each side, no down(). */
	run_for(20 * 1000000);
	ck_assert_int_eq(I.ups, 1);
	ck_assert_int_eq(T.ups, 1);
	ck_assert_int_eq(I.downs + T.downs, 0);
	ck_assert(!iser_conn_tx_pending(I.ic));
	ck_assert(!iser_conn_tx_pending(T.ic));
}
END_TEST

/* A connect to a port nobody listens on: down() with the errno. */
START_TEST(test_connect_refused)
{
	struct sockaddr_in sin = L_addr;

	rdma_listener_destroy(L);
	L = NULL;
	ck_assert_int_eq(iser_conn_create(s, I.dev, I.pd, &I.attr, &cb, &I, &I.ic), 0);
	/* Not connected yet. */
	ck_assert_int_eq(iser_conn_send(I.ic, &(struct pdu_bhs){.opcode = PDU_OP_NOP_OUT}, NULL,
					NULL, 0, NULL),
			 -ENOTCONN);
	ck_assert_int_eq(iser_conn_connect(I.ic, (struct sockaddr *)&sin, sizeof(sin)), 0);
	RUN_UNTIL(I.downs == 1);
	ck_assert_int_eq(I.down_err, -ECONNREFUSED);
	ck_assert_int_eq(I.ups, 0);
	ck_assert_int_eq(iser_conn_send(I.ic, &(struct pdu_bhs){.opcode = PDU_OP_NOP_OUT}, NULL,
					NULL, 0, NULL),
			 -ENOTCONN);
}
END_TEST

/*
 * A connect request from a plain rdma_conn: without the iSER CM header, or
 * asking for zero-based virtual addresses, iser_conn_accept() says -EPROTO;
 * with the header Linux sends, it accepts.
 */
START_TEST(test_accept_cm)
{
	static const uint8_t hdrs[][ISER_HDR_CM_LEN] = {
		{0},
		{ISER_HDR_CM_SEND_W_INV_NOT_SUP},
		{ISER_HDR_CM_ZBVA_NOT_SUP | ISER_HDR_CM_SEND_W_INV_NOT_SUP},
	};
	struct rdma_cq *cq;
	struct rdma_qp_attr qa = {.pd = I.pd,
				  .max_send_wr = 4,
				  .max_recv_wr = 4,
				  .max_send_sge = 1,
				  .max_recv_sge = 1};
	struct rdma_conn_attr p = {
		.pdata = hdrs[_i], .pdata_len = _i ? ISER_HDR_CM_LEN : 1, .responder_resources = 1};

	ck_assert_int_eq(rdma_cq_create(I.dev, 16, &cq), 0);
	qa.send_cq = qa.recv_cq = cq;
	ck_assert_int_eq(rdma_conn_create(I.dev, (struct sockaddr *)&L_addr, sizeof(L_addr), &qa,
					  &p, NULL, &I.raw),
			 0);
	RUN_UNTIL(T.nreq == 1);
	if (_i < 2) {
		ck_assert_int_eq(T.accept_err, -EPROTO);
		run_for(20 * 1000000);
		ck_assert_int_eq(T.ups, 0);
		ck_assert_int_eq(I.orphans, 0);
	} else {
		ck_assert_int_eq(T.accept_err, 0);
		RUN_UNTIL(T.ups == 1 && I.orphans == 1);
		ck_assert_ptr_eq(I.est.conn, I.raw);
	}
	ck_assert_int_eq(T.downs, 0);
	rdma_conn_destroy(I.raw);
	I.raw = NULL;
	rdma_cq_destroy(cq);
}
END_TEST

/* 2. PDUs both ways */

START_TEST(test_pdu_both_ways)
{
	enum { OUT_LEN = 1000, IN_LEN = 777 };
	static uint8_t out[OUT_LEN], in[IN_LEN];
	struct iser_hdr_ctrl c = {
		.wsv = true,
		.rsv = true,
		.write_stag = 0x12345678,
		.write_va = 0x7f0011223344ull,
		.read_stag = 0x9abcdef0,
		.read_va = 0x10000000000ull + 12,
	};
	struct pdu_bhs bhs = nop(PDU_OP_NOP_OUT, 0xa5a50001);
	int ref_out, ref_in;

	connect_pair();
	fill(out, sizeof(out), 1);
	fill(in, sizeof(in), 2);
	ck_assert_int_eq(iser_conn_send(I.ic, &bhs, &c, out, OUT_LEN, &ref_out), 0);
	ck_assert_uint_eq(bhs.data_len, OUT_LEN);
	RUN_UNTIL(T.nrx == 1 && I.ndone == 1);
	ck_assert_uint_eq(T.rx[0].opcode, PDU_OP_NOP_OUT);
	ck_assert_uint_eq(T.rx[0].itt, 0xa5a50001);
	ck_assert_uint_eq(T.rx[0].data_len, OUT_LEN);
	ck_assert_mem_eq(T.data, out, OUT_LEN);
	ck_assert(T.rx[0].ctrl.wsv && T.rx[0].ctrl.rsv);
	ck_assert_uint_eq(T.rx[0].ctrl.write_stag, c.write_stag);
	ck_assert_uint_eq(T.rx[0].ctrl.write_va, c.write_va);
	ck_assert_uint_eq(T.rx[0].ctrl.read_stag, c.read_stag);
	ck_assert_uint_eq(T.rx[0].ctrl.read_va, c.read_va);
	ck_assert_ptr_eq(I.done[0].ref, &ref_out);
	ck_assert_int_eq(I.done[0].err, 0);

	/* Back, with only a Read STag, and no data at all after it. */
	c = (struct iser_hdr_ctrl){.rsv = true, .read_stag = 0x42, .read_va = 0x1000};
	bhs = nop(PDU_OP_NOP_IN, 0xa5a50001);
	ck_assert_int_eq(iser_conn_send(T.ic, &bhs, &c, in, IN_LEN, &ref_in), 0);
	bhs = nop(PDU_OP_NOP_IN, 0xa5a50002);
	ck_assert_int_eq(iser_conn_send(T.ic, &bhs, NULL, NULL, 0, NULL), 0);
	RUN_UNTIL(I.nrx == 2 && T.ndone == 1);
	ck_assert_uint_eq(I.rx[0].opcode, PDU_OP_NOP_IN);
	ck_assert_uint_eq(I.rx[0].itt, 0xa5a50001);
	ck_assert_uint_eq(I.rx[0].data_len, IN_LEN);
	ck_assert(!I.rx[0].ctrl.wsv && I.rx[0].ctrl.rsv);
	ck_assert_uint_eq(I.rx[0].ctrl.write_stag, 0);
	ck_assert_uint_eq(I.rx[0].ctrl.read_stag, 0x42);
	ck_assert_uint_eq(I.rx[0].ctrl.read_va, 0x1000);
	ck_assert_uint_eq(I.rx[1].opcode, PDU_OP_NOP_IN);
	ck_assert_uint_eq(I.rx[1].itt, 0xa5a50002);
	ck_assert_uint_eq(I.rx[1].data_len, 0);
	ck_assert(!I.rx[1].ctrl.wsv && !I.rx[1].ctrl.rsv);
	ck_assert_ptr_eq(T.done[0].ref, &ref_in);
	ck_assert_int_eq(T.done[0].err, 0);
	/* The empty NOP-In carried no ref: no done() for it. */
	run_for(20 * 1000000);
	ck_assert_int_eq(T.ndone, 1);
	ck_assert_uint_eq(stats(&I).sends, 1);
	ck_assert_uint_eq(stats(&I).recvs, 2);
	ck_assert_uint_eq(stats(&T).sends, 2);
	ck_assert_uint_eq(stats(&T).recvs, 1);
}
END_TEST

/* Every data length up to a few past a word, and the largest (send_dsl). */
START_TEST(test_pdu_sizes)
{
	static uint8_t d[ISER_DEFAULT_DSL];
	uint32_t lens[] = {1, 2, 3, 4, 5, 6, 7, 8, 255, 256, 257, 4095, ISER_DEFAULT_DSL};
	struct pdu_bhs bhs;
	unsigned int i;

	T.attr.rx_depth = 4; /* fewer than the PDUs: receives are reposted */
	connect_pair();
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		fill(d, lens[i], i + 10);
		bhs = nop(PDU_OP_NOP_OUT, i);
		ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, d, lens[i], NULL), 0);
		RUN_UNTIL(T.nrx == (int)i + 1);
		ck_assert_uint_eq(T.rx[i].itt, i);
		ck_assert_uint_eq(T.rx[i].data_len, lens[i]);
		ck_assert_mem_eq(T.data, d, lens[i]);
	}
	ck_assert_int_eq(I.downs + T.downs, 0);
}
END_TEST

/* A receive kept with iser_conn_rx_hold() is not posted again, so its
 * data stays while others come through the rest of the ring; released,
 * it takes messages again. */
START_TEST(test_rx_hold)
{
	static uint8_t d[1000];
	struct pdu_bhs bhs;
	uint32_t itt = 0;
	int i;

	T.attr.rx_depth = 4;
	connect_pair();
	ck_assert_int_eq(iser_conn_rx_hold(T.ic, T.data), -1); /* not in recv() */
	T.hold = true;
	for (i = 0; i < 3; i++, itt++) {
		fill(d, sizeof(d), itt + 100);
		bhs = nop(PDU_OP_NOP_OUT, itt);
		ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, d, sizeof(d), NULL), 0);
		RUN_UNTIL(T.nrx == (int)itt + 1);
	}
	T.hold = false;
	ck_assert_uint_eq(stats(&T).rx_held, 3);
	ck_assert_uint_eq(stats(&T).rx_holds, 3);
	/* the one receive left takes 8 more, one after the other */
	for (i = 0; i < 8; i++, itt++) {
		fill(d, sizeof(d), itt + 100);
		bhs = nop(PDU_OP_NOP_OUT, itt);
		ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, d, sizeof(d), NULL), 0);
		RUN_UNTIL(T.nrx == (int)itt + 1);
		ck_assert_mem_eq(T.data, d, sizeof(d));
	}
	for (i = 0; i < 3; i++) {
		ck_assert_uint_eq(sum(T.held_data[i], T.held_len[i]), T.held_sum[i]);
		fill(d, sizeof(d), (unsigned int)i + 100);
		ck_assert_mem_eq(T.held_data[i], d, sizeof(d));
		iser_conn_rx_release(T.ic, T.held[i]);
	}
	ck_assert_uint_eq(stats(&T).rx_held, 0);
	/* four sent at once: the ring has its four receives again */
	for (i = 0; i < 4; i++, itt++) {
		bhs = nop(PDU_OP_NOP_OUT, itt);
		ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, NULL, 0, NULL), 0);
	}
	RUN_UNTIL(T.nrx == (int)itt);
	run_for(50 * 1000000);
	ck_assert_int_eq(I.downs + T.downs, 0);
}
END_TEST

/* 3. RDMA READ and WRITE, by the target, from and to initiator buffers */

struct xfer {
	uint32_t len, loff, roff; /* local (target) and remote offsets */
};

static const struct xfer xfers[] = {
	{MiB, 0, 0}, {1, 3, 4095}, {4097, 5, 1}, {65537, 12345, 777}, {3, MiB - 3, 0},
};

#define NX (sizeof(xfers) / sizeof(xfers[0]))

START_TEST(test_rdma)
{
	struct rbuf *ir[NX], *iw[NX], *tr[NX], *tw[NX];
	uint64_t rbytes = 0;
	unsigned int i;
	int refs[2 * NX];

	connect_pair();
	pools_init();
	for (i = 0; i < NX; i++) {
		const struct xfer *x = &xfers[i];

		ir[i] = get_buf(&I, x->roff + x->len);
		iw[i] = get_buf(&I, x->roff + x->len);
		tr[i] = get_buf(&T, x->loff + x->len);
		tw[i] = get_buf(&T, x->loff + x->len);
		fill(ir[i]->addr, ir[i]->cap, 100 + i);
		fill(tw[i]->addr, tw[i]->cap, 200 + i);
		memset(iw[i]->addr, 0xee, iw[i]->cap);
		memset(tr[i]->addr, 0xee, tr[i]->cap);
	}
	/* Reads and writes interleaved: done() in posting order. */
	for (i = 0; i < NX; i++) {
		const struct xfer *x = &xfers[i];

		ck_assert_int_eq(iser_conn_rdma_read(T.ic, tr[i], x->loff, x->len, ir[i]->rkey,
						     va(ir[i], x->roff), &refs[2 * i]),
				 0);
		ck_assert_int_eq(iser_conn_rdma_write(T.ic, tw[i], x->loff, x->len, iw[i]->rkey,
						      va(iw[i], x->roff), &refs[2 * i + 1]),
				 0);
		rbytes += x->len;
	}
	ck_assert(iser_conn_tx_pending(T.ic));
	RUN_UNTIL(T.ndone == 2 * NX);
	for (i = 0; i < 2 * NX; i++) {
		ck_assert_ptr_eq(T.done[i].ref, &refs[i]);
		ck_assert_int_eq(T.done[i].err, 0);
	}
	ck_assert(!iser_conn_tx_pending(T.ic));
	for (i = 0; i < NX; i++) {
		const struct xfer *x = &xfers[i];

		ck_assert(!memcmp(tr[i]->addr + x->loff, ir[i]->addr + x->roff, x->len));
		ck_assert(!memcmp(iw[i]->addr + x->roff, tw[i]->addr + x->loff, x->len));
		/* Not a byte outside. */
		if (x->loff)
			ck_assert_uint_eq(tr[i]->addr[x->loff - 1], 0xee);
		if (x->loff + x->len < tr[i]->cap)
			ck_assert_uint_eq(tr[i]->addr[x->loff + x->len], 0xee);
		if (x->roff)
			ck_assert_uint_eq(iw[i]->addr[x->roff - 1], 0xee);
		if (x->roff + x->len < iw[i]->cap)
			ck_assert_uint_eq(iw[i]->addr[x->roff + x->len], 0xee);
	}
	ck_assert_uint_eq(stats(&T).rdma_reads, NX);
	ck_assert_uint_eq(stats(&T).rdma_writes, NX);
	ck_assert_uint_eq(stats(&T).read_bytes, rbytes);
	ck_assert_uint_eq(stats(&T).write_bytes, rbytes);
	ck_assert_int_eq(I.nrx + I.ndone + T.nrx, 0);
	ck_assert_int_eq(I.downs + T.downs, 0);
	for (i = 0; i < NX; i++) {
		rbuf_put(ir[i]);
		rbuf_put(iw[i]);
		rbuf_put(tr[i]);
		rbuf_put(tw[i]);
	}
}
END_TEST

/* More RDMA READs than the ORD allows: they wait, and all complete, in
 * order, with the right bytes. */
START_TEST(test_rdma_read_ord)
{
	enum { N = 64, SLOT = 4096 };
	struct rbuf *src, *dst;
	int refs[N];
	unsigned int i;

	T.attr.tx_depth = N;
	connect_pair();
	pools_init();
	src = get_buf(&I, N * SLOT);
	dst = get_buf(&T, N * SLOT);
	fill(src->addr, N * SLOT, 7);
	memset(dst->addr, 0, N * SLOT);
	for (i = 0; i < N; i++)
		ck_assert_int_eq(iser_conn_rdma_read(T.ic, dst, i * SLOT, SLOT - i, src->rkey,
						     va(src, i * SLOT), &refs[i]),
				 0);
	RUN_UNTIL(T.ndone == N);
	for (i = 0; i < N; i++) {
		ck_assert_ptr_eq(T.done[i].ref, &refs[i]);
		ck_assert_int_eq(T.done[i].err, 0);
		ck_assert(!memcmp(dst->addr + i * SLOT, src->addr + i * SLOT, SLOT - i));
		if (i)
			ck_assert_uint_eq(dst->addr[i * SLOT + SLOT - i], 0);
	}
	ck_assert_uint_gt(stats(&T).backlogged, 0);
	ck_assert_int_eq(I.downs + T.downs, 0);
	rbuf_put(src);
	rbuf_put(dst);
}
END_TEST

/* The caller's memory, registered with rbuf_wrap(): the target reads from
 * it and writes into it (at an odd offset: any memory, not only the
 * pool's page-aligned buffers); given back, it is deregistered (a READ with
 * its key then fails the connection) and stays the caller's; one still
 * out when the pool goes is let go by rbuf_put() after. */
START_TEST(test_rbuf_wrap)
{
	enum { LEN = 3 * 4096 + 100 };
	static uint8_t mem[LEN + 64], back[LEN];
	struct rbuf *w, *w2, *tb;
	struct rbuf_stats st0, st;
	uint32_t old_rkey;
	int ref_r, ref_w, ref_bad;

	connect_pair();
	pools_init();
	rbuf_pool_stats(I.pool, &st0);
	ck_assert_int_eq(rbuf_wrap(I.pool, mem + 8, 0, &w), -EINVAL);
	ck_assert_int_eq(rbuf_wrap(I.pool, mem + 8, LEN, &w), 0);
	ck_assert_ptr_eq(w->addr, mem + 8);
	ck_assert_uint_eq(w->cap, LEN);
	rbuf_pool_stats(I.pool, &st);
	ck_assert_uint_eq(st.registrations, st0.registrations + 1);
	ck_assert_uint_eq(st.bytes_registered, st0.bytes_registered + LEN);

	tb = get_buf(&T, LEN);
	fill(mem + 8, LEN, 3);
	ck_assert_int_eq(iser_conn_rdma_read(T.ic, tb, 0, LEN, w->rkey, va(w, 0), &ref_r), 0);
	RUN_UNTIL(T.ndone == 1);
	ck_assert_int_eq(T.done[0].err, 0);
	ck_assert(!memcmp(tb->addr, mem + 8, LEN));
	fill(tb->addr, LEN, 9);
	memcpy(back, tb->addr, LEN);
	ck_assert_int_eq(iser_conn_rdma_write(T.ic, tb, 0, LEN, w->rkey, va(w, 0), &ref_w), 0);
	RUN_UNTIL(T.ndone == 2);
	ck_assert_int_eq(T.done[1].err, 0);
	/* The Write is placed once the initiator has read it off the wire. */
	RUN_UNTIL(!memcmp(mem + 8, back, LEN));

	old_rkey = w->rkey;
	rbuf_put(w);
	rbuf_pool_stats(I.pool, &st);
	ck_assert_uint_eq(st.bytes_registered, st0.bytes_registered);
	ck_assert(!memcmp(mem + 8, back, LEN)); /* still the caller's */
	ck_assert_int_eq(iser_conn_rdma_read(T.ic, tb, 0, 4096, old_rkey,
					     (uint64_t)(uintptr_t)(mem + 8), &ref_bad),
			 0);
	RUN_UNTIL(T.downs == 1 && T.ndone == 3);
	ck_assert_int_ne(T.done[2].err, 0);

	ck_assert_int_eq(rbuf_wrap(I.pool, mem, 4096, &w2), 0);
	rbuf_pool_destroy(I.pool);
	I.pool = NULL;
	ck_assert_ptr_null(w2->pool);
	ck_assert_ptr_null(w2->mr);
	rbuf_put(w2);
	rbuf_put(tb);
}
END_TEST

/*
 * An RDMA READ that completes after a Send posted later, as on siw (it
 * completes a Send once it is on the wire, a READ when its response is
 * in): the Send's completion must not retire the READ. A shim over the
 * target's provider holds the READ's completion back until a later one
 * has been handed out. Before the fix the target took the READ as done
 * (its buffer not yet filled) and then failed the connection.
 */
static const struct rdma_ops *shim_real;
static struct rdma_ops shim_ops;
static struct rdma_wc shim_held;
static bool shim_hold, shim_holding, shim_passed;
static int shim_ndone_at_release;

static int shim_cq_poll(struct rdma_cq *cq, struct rdma_wc *wc, int n)
{
	struct rdma_wc tmp[64];
	int got, out = 0, i;

	if (shim_holding && shim_passed) {
		wc[out++] = shim_held;
		shim_holding = false;
		shim_ndone_at_release = T.ndone;
	}
	if (out >= n)
		return out;
	got = shim_real->cq_poll(cq, tmp, n - out < 64 ? n - out : 64);
	if (got < 0)
		return out ? out : got;
	for (i = 0; i < got; i++) {
		if (shim_hold && tmp[i].opcode == RDMA_WC_RDMA_READ &&
		    tmp[i].status == RDMA_WC_SUCCESS) {
			shim_held = tmp[i];
			shim_hold = false;
			shim_holding = true;
			continue;
		}
		if (shim_holding)
			shim_passed = true;
		wc[out++] = tmp[i];
	}
	return out;
}

START_TEST(test_read_completes_late)
{
	enum { LEN = 64 * 1024 };
	struct pdu_bhs bhs = nop(PDU_OP_NOP_IN, 9);
	struct rbuf *src, *dst;
	int ra, rs;

	connect_pair();
	pools_init();
	src = get_buf(&I, LEN);
	dst = get_buf(&T, LEN);
	fill(src->addr, LEN, 11);
	memset(dst->addr, 0, LEN);
	shim_real = T.dev->ops;
	shim_ops = *shim_real;
	shim_ops.cq_poll = shim_cq_poll;
	T.dev->ops = &shim_ops;
	shim_hold = true;
	shim_holding = shim_passed = false;
	shim_ndone_at_release = -1;

	ck_assert_int_eq(iser_conn_rdma_read(T.ic, dst, 0, LEN, src->rkey, va(src, 0), &ra), 0);
	ck_assert_int_eq(iser_conn_send(T.ic, &bhs, NULL, NULL, 0, &rs), 0);
	RUN_UNTIL(T.ndone == 2);
	ck_assert_msg(!shim_holding, "the READ's done() came before its completion");
	ck_assert(!shim_hold && shim_passed);	    /* the shim did reorder */
	ck_assert_int_eq(shim_ndone_at_release, 0); /* nothing retired before the READ's */
	ck_assert_ptr_eq(T.done[0].ref, &ra);
	ck_assert_ptr_eq(T.done[1].ref, &rs);
	ck_assert_int_eq(T.done[0].err, 0);
	ck_assert_int_eq(T.done[1].err, 0);
	ck_assert(!memcmp(dst->addr, src->addr, LEN));
	RUN_UNTIL(I.nrx == 1);
	ck_assert_int_eq(I.downs + T.downs, 0);
	T.dev->ops = shim_real;
	rbuf_put(src);
	rbuf_put(dst);
}
END_TEST

/* Arguments outside the buffer are refused before anything is posted. */
START_TEST(test_rdma_bounds)
{
	struct rbuf *b;

	connect_pair();
	pools_init();
	b = get_buf(&T, 4096);
	ck_assert_int_eq(iser_conn_rdma_read(T.ic, b, 0, 4097, 1, 0x1000, NULL), -EINVAL);
	ck_assert_int_eq(iser_conn_rdma_read(T.ic, b, 4096, 1, 1, 0x1000, NULL), -EINVAL);
	ck_assert_int_eq(iser_conn_rdma_write(T.ic, b, 1, 4096, 1, 0x1000, NULL), -EINVAL);
	ck_assert_int_eq(iser_conn_rdma_write(T.ic, b, 4097, 0xffffffffu, 1, 0x1000, NULL),
			 -EINVAL);
	ck_assert_int_eq(iser_conn_rdma_write(T.ic, b, 0, 0, 1, 0x1000, NULL), -EINVAL);
	ck_assert(!iser_conn_tx_pending(T.ic));
	ck_assert_uint_eq(stats(&T).rdma_reads + stats(&T).rdma_writes, 0);
	run_for(20 * 1000000);
	ck_assert_int_eq(I.downs + T.downs, 0);
	rbuf_put(b);
}
END_TEST

/* 4. Ordering: the data of an RDMA WRITE is in place when the Send
 * posted after it is received (RFC 7145 §7.3.5). */
START_TEST(test_write_then_send)
{
	enum { LEN = 2 * MiB, ROUNDS = 4 };
	struct rbuf *ib, *tb;
	struct pdu_bhs bhs;
	int refs[ROUNDS], i;

	connect_pair();
	pools_init();
	ib = get_buf(&I, LEN);
	tb = get_buf(&T, LEN);
	I.watch_len = LEN;
	for (i = 0; i < ROUNDS; i++) {
		memset(ib->addr, 0, LEN);
		fill(tb->addr, LEN, 50 + (unsigned int)i);
		I.watch[i] = ib->addr;
		I.expect[i] = tb->addr;
		ck_assert_int_eq(
			iser_conn_rdma_write(T.ic, tb, 0, LEN, ib->rkey, va(ib, 0), &refs[i]), 0);
		bhs = nop(PDU_OP_NOP_IN, (uint32_t)i);
		ck_assert_int_eq(iser_conn_send(T.ic, &bhs, NULL, NULL, 0, NULL), 0);
		RUN_UNTIL(I.nrx == i + 1 && T.ndone == i + 1);
		ck_assert_uint_eq(I.rx[i].itt, (uint32_t)i);
		ck_assert_msg(I.rx[i].watch_ok, "round %d: recv() ran before the data was placed",
			      i);
		ck_assert_ptr_eq(T.done[i].ref, &refs[i]);
		ck_assert_int_eq(T.done[i].err, 0);
	}
	rbuf_put(ib);
	rbuf_put(tb);
}
END_TEST

/* iser_conn_tx_pending(): true while a request with a ref is outstanding
 * (or something waits in the backlog), false once its done() came;
 * requests with no ref may complete unreported and do not count
 * (iser.h). */
START_TEST(test_tx_pending)
{
	struct rbuf *ib, *tb;
	struct pdu_bhs bhs = nop(PDU_OP_NOP_IN, 1);
	int ref;

	connect_pair();
	pools_init();
	ib = get_buf(&I, 4096);
	tb = get_buf(&T, 4096);
	ck_assert(!iser_conn_tx_pending(T.ic));
	ck_assert_int_eq(iser_conn_rdma_write(T.ic, tb, 0, 4096, ib->rkey, va(ib, 0), NULL), 0);
	ck_assert_int_eq(iser_conn_send(T.ic, &bhs, NULL, NULL, 0, NULL), 0);
	ck_assert(!iser_conn_tx_pending(T.ic));
	RUN_UNTIL(I.nrx == 1);
	ck_assert_int_eq(iser_conn_rdma_write(T.ic, tb, 0, 4096, ib->rkey, va(ib, 0), &ref), 0);
	ck_assert(iser_conn_tx_pending(T.ic));
	RUN_UNTIL(T.ndone == 1);
	ck_assert(!iser_conn_tx_pending(T.ic));
	ck_assert_ptr_eq(T.done[0].ref, &ref);
	bhs = nop(PDU_OP_NOP_OUT, 2);
	ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, NULL, 0, &ref), 0);
	ck_assert(iser_conn_tx_pending(I.ic));
	RUN_UNTIL(T.nrx == 1);
	RUN_UNTIL(!iser_conn_tx_pending(I.ic));
	ck_assert_int_eq(I.ndone, 1);
	rbuf_put(ib);
	rbuf_put(tb);
}
END_TEST

/* 5. Backlog: more Sends than the send ring holds wait, in order. */
START_TEST(test_backlog)
{
	enum { N = 100, LEN = 300, MORE = 5 };
	static uint8_t d[LEN];
	struct iser_conn_stats st;
	struct pdu_bhs bhs;
	uint32_t sums[N];
	int refs[N], i;

	I.attr.tx_depth = 2;
	T.attr.rx_depth = 128; /* the iSCSI window the test does not have */
	connect_pair();
	for (i = 0; i < N; i++) {
		/* The same memory each time: queued Sends keep a copy. */
		fill(d, LEN, (unsigned int)i);
		sums[i] = sum(d, LEN - (uint32_t)i);
		bhs = nop(PDU_OP_NOP_OUT, 0x1000 + (uint32_t)i);
		ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, d, LEN - (uint32_t)i, &refs[i]),
				 0);
	}
	st = stats(&I);
	ck_assert_uint_le(st.sends, 2);
	ck_assert_uint_ge(st.backlogged, N - 2);
	ck_assert(iser_conn_tx_pending(I.ic));
	/* Sends made by the first done() calls, while the others wait: they
	 * go behind them. */
	I.resend = MORE;
	I.resend_itt = 0x2000;
	RUN_UNTIL(T.nrx == N + MORE && I.ndone == N);
	for (i = 0; i < N; i++) {
		ck_assert_uint_eq(T.rx[i].itt, 0x1000 + (uint32_t)i);
		ck_assert_uint_eq(T.rx[i].data_len, LEN - (uint32_t)i);
		ck_assert_msg(T.rx[i].sum == sums[i], "PDU %d: wrong data", i);
		ck_assert_ptr_eq(I.done[i].ref, &refs[i]);
		ck_assert_int_eq(I.done[i].err, 0);
	}
	for (i = 0; i < MORE; i++)
		ck_assert_uint_eq(T.rx[N + i].itt, 0x2000 + (uint32_t)i);
	st = stats(&I);
	ck_assert_uint_eq(st.sends, N + MORE);
	ck_assert_uint_ge(st.backlogged, N - 2);
	ck_assert_uint_eq(stats(&T).recvs, N + MORE);
	ck_assert_int_eq(I.downs + T.downs, 0);
}
END_TEST

/* Sends and RDMA mixed in the backlog keep their order. */
START_TEST(test_backlog_mixed)
{
	enum { N = 30, LEN = 8192 };
	struct rbuf *ib[N], *tb;
	struct pdu_bhs bhs;
	int refs[2 * N], i;

	T.attr.tx_depth = 2;
	connect_pair();
	pools_init();
	tb = get_buf(&T, N * LEN);
	fill(tb->addr, N * LEN, 9);
	for (i = 0; i < N; i++) {
		ib[i] = get_buf(&I, LEN);
		memset(ib[i]->addr, 0, LEN);
	}
	I.watch_len = LEN;
	for (i = 0; i < N; i++) {
		I.watch[i] = ib[i]->addr;
		I.expect[i] = tb->addr + (size_t)i * LEN;
		ck_assert_int_eq(iser_conn_rdma_write(T.ic, tb, (uint32_t)i * LEN, LEN, ib[i]->rkey,
						      va(ib[i], 0), &refs[2 * i]),
				 0);
		bhs = nop(PDU_OP_NOP_IN, (uint32_t)i);
		ck_assert_int_eq(iser_conn_send(T.ic, &bhs, NULL, NULL, 0, &refs[2 * i + 1]), 0);
	}
	ck_assert_uint_gt(stats(&T).backlogged, 0);
	RUN_UNTIL(I.nrx == N && T.ndone == 2 * N);
	/* Each NOP-In found its own buffer written. */
	for (i = 0; i < N; i++) {
		ck_assert_uint_eq(I.rx[i].itt, (uint32_t)i);
		ck_assert_msg(I.rx[i].watch_ok, "NOP-In %d before its data", i);
	}
	for (i = 0; i < 2 * N; i++) {
		ck_assert_ptr_eq(T.done[i].ref, &refs[i]);
		ck_assert_int_eq(T.done[i].err, 0);
	}
	for (i = 0; i < N; i++)
		rbuf_put(ib[i]);
	rbuf_put(tb);
}
END_TEST

/* 6. Errors */

START_TEST(test_send_too_long)
{
	static uint8_t d[ISER_DEFAULT_DSL + 1];
	struct pdu_bhs bhs = nop(PDU_OP_NOP_OUT, 1);

	I.attr.send_dsl = 1024;
	connect_pair();
	ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, d, 1025, NULL), -EMSGSIZE);
	ck_assert_int_eq(iser_conn_send(T.ic, &bhs, NULL, d, ISER_DEFAULT_DSL + 1, NULL),
			 -EMSGSIZE);
	/* A field the BHS cannot hold (ATTR is 3 bits). */
	bhs = (struct pdu_bhs){.opcode = PDU_OP_SCSI_CMD, .final = true, .scsi_cmd.attr = 8};
	ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, d, 4, NULL), -EINVAL);
	/* Nothing went, and the connection is still good. */
	bhs = nop(PDU_OP_NOP_OUT, 2);
	ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, d, 1024, NULL), 0);
	RUN_UNTIL(T.nrx == 1);
	ck_assert_uint_eq(T.rx[0].itt, 2);
	ck_assert_uint_eq(stats(&I).sends, 1);
	ck_assert_int_eq(I.downs + T.downs, 0);
}
END_TEST

/* A data segment over recv_dsl: the receiver goes down (-EPROTO) and its
 * recv() never sees it. */
START_TEST(test_recv_too_long)
{
	static uint8_t d[2000];
	struct pdu_bhs bhs = nop(PDU_OP_NOP_OUT, 1);

	T.attr.recv_dsl = 1024;
	connect_pair();
	ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, d, 1024, NULL), 0);
	RUN_UNTIL(T.nrx == 1);
	ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, d, sizeof(d), NULL), 0);
	RUN_UNTIL(T.downs == 1 && I.downs == 1);
	ck_assert_int_eq(T.down_err, -EPROTO);
	ck_assert_int_eq(T.nrx, 1);
	ck_assert_uint_eq(stats(&T).recvs, 1);
}
END_TEST

/* An RDMA READ the initiator refuses: down() on the target, the READ's
 * done() with -ECONNRESET and the READ behind it flushed, the initiator
 * down too. */
START_TEST(test_read_bad_stag)
{
	struct rbuf *ib, *tb;
	struct pdu_bhs bhs = nop(PDU_OP_NOP_IN, 1);
	int ref_bad, ref_after;

	connect_pair();
	pools_init();
	ib = get_buf(&I, 8192);
	tb = get_buf(&T, 8192);
	ck_assert_int_eq(
		iser_conn_rdma_read(T.ic, tb, 0, 4096, ib->rkey ^ 0x5a00, va(ib, 0), &ref_bad), 0);
	ck_assert_int_eq(
		iser_conn_rdma_read(T.ic, tb, 4096, 4096, ib->rkey, va(ib, 4096), &ref_after), 0);
	RUN_UNTIL(T.downs == 1 && T.ndone == 2 && I.downs == 1);
	ck_assert_int_ne(T.down_err, 0);
	ck_assert_ptr_eq(T.done[0].ref, &ref_bad);
	ck_assert_int_eq(T.done[0].err, -ECONNRESET);
	ck_assert_ptr_eq(T.done[1].ref, &ref_after);
	ck_assert_int_eq(T.done[1].err, -ECONNRESET);
	ck_assert_int_ne(I.down_err, 0);
	/* Once, and nothing usable afterwards. */
	run_for(20 * 1000000);
	ck_assert_int_eq(T.downs, 1);
	ck_assert_int_eq(I.downs, 1);
	ck_assert_int_eq(T.ndone, 2);
	ck_assert_int_eq(iser_conn_send(T.ic, &bhs, NULL, NULL, 0, NULL), -ENOTCONN);
	ck_assert_int_eq(iser_conn_rdma_read(T.ic, tb, 0, 4096, ib->rkey, va(ib, 0), NULL),
			 -ENOTCONN);
	ck_assert_int_eq(iser_conn_rdma_write(T.ic, tb, 0, 4096, ib->rkey, va(ib, 0), NULL),
			 -ENOTCONN);
	bhs = nop(PDU_OP_NOP_OUT, 1);
	ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, NULL, 0, NULL), -ENOTCONN);
	ck_assert(!iser_conn_tx_pending(T.ic));
	rbuf_put(ib);
	rbuf_put(tb);
}
END_TEST

/* A disconnect by either side: down() on both, once, with err 0. */
START_TEST(test_disconnect)
{
	struct side *a = _i & 1 ? &T : &I, *b = _i & 1 ? &I : &T;
	struct pdu_bhs bhs = nop(PDU_OP_NOP_OUT, 1);

	connect_pair();
	if (_i & 2) {
		/* Right after traffic, both pollers busy. */
		ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, NULL, 0, NULL), 0);
		RUN_UNTIL(T.nrx == 1);
		bhs = nop(PDU_OP_NOP_IN, 1);
		ck_assert_int_eq(iser_conn_send(T.ic, &bhs, NULL, NULL, 0, NULL), 0);
		RUN_UNTIL(I.nrx == 1);
	}
	iser_conn_disconnect(a->ic);
	RUN_UNTIL(I.downs == 1 && T.downs == 1);
	run_for(20 * 1000000);
	ck_assert_int_eq(I.downs, 1);
	ck_assert_int_eq(T.downs, 1);
	/* iser.h: down() says 0 for a disconnect. */
	ck_assert_msg(a->down_err == 0 && b->down_err == 0,
		      "down(): %d (%s) on the disconnecting side, %d (%s) on the peer", a->down_err,
		      a->down_why, b->down_err, b->down_why);
	ck_assert_int_eq(iser_conn_send(a->ic, &bhs, NULL, NULL, 0, NULL), -ENOTCONN);
	ck_assert_int_eq(iser_conn_send(b->ic, &bhs, NULL, NULL, 0, NULL), -ENOTCONN);
	iser_conn_disconnect(a->ic);
	iser_conn_disconnect(b->ic);
	run_for(20 * 1000000);
	ck_assert_int_eq(I.downs + T.downs, 2);
}
END_TEST

/* A last PDU, then a disconnect from its done() (a Login Reject, then
 * the close): the peer's recv() sees the PDU before its down(). */
START_TEST(test_send_then_disconnect)
{
	static uint8_t d[512];
	struct pdu_bhs bhs;
	int ref;

	connect_pair();
	if (_i & 1) {
		/* The initiator's poller busy. */
		bhs = nop(PDU_OP_NOP_OUT, 1);
		ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, NULL, 0, &ref), 0);
		RUN_UNTIL(T.nrx == 1 && I.ndone == 1);
	}
	fill(d, sizeof(d), 3);
	bhs = nop(PDU_OP_NOP_IN, 7);
	T.disconnect_on_done = true;
	ck_assert_int_eq(iser_conn_send(T.ic, &bhs, NULL, d, sizeof(d), &ref), 0);
	RUN_UNTIL(I.downs == 1 && T.downs == 1);
	ck_assert_int_eq(T.ndone, 1);
	ck_assert_int_eq(T.done[0].err, 0);
	ck_assert_int_eq(I.nrx, 1);
	ck_assert_uint_eq(I.rx[0].itt, 7);
	ck_assert_mem_eq(I.data, d, sizeof(d));
	ck_assert_msg(!I.rx[0].after_down, "recv() after down()");
}
END_TEST

/* A disconnect with Sends posted and not yet gone: each posted one's
 * done() comes with -ECONNRESET, in order; nothing arrives; down() once on
 * each side. */
START_TEST(test_disconnect_pending)
{
	enum { N = 20 };
	static uint8_t d[4096];
	struct pdu_bhs bhs;
	uint64_t posted;
	int refs[N], i;

	I.attr.tx_depth = 2;
	connect_pair();
	for (i = 0; i < N; i++) {
		bhs = nop(PDU_OP_NOP_OUT, (uint32_t)i);
		ck_assert_int_eq(iser_conn_send(I.ic, &bhs, NULL, d, sizeof(d), &refs[i]), 0);
	}
	posted = stats(&I).sends;
	ck_assert_uint_gt(posted, 0);
	iser_conn_disconnect(I.ic);
	RUN_UNTIL(I.downs == 1 && T.downs == 1 && (uint64_t)I.ndone >= posted);
	run_for(50 * 1000000);
	ck_assert_int_eq(I.downs, 1);
	ck_assert_int_eq(T.downs, 1);
	ck_assert_uint_eq(stats(&I).sends, posted);
	for (i = 0; i < I.ndone; i++) {
		ck_assert_ptr_eq(I.done[i].ref, &refs[i]);
		ck_assert_int_eq(I.done[i].err, -ECONNRESET);
	}
	ck_assert_int_eq(T.nrx, 0);
}
END_TEST

/* 7. rbuf */

START_TEST(test_rbuf)
{
	static const struct {
		size_t len, cap;
	} sizes[] = {
		{1, 4096},
		{4095, 4096},
		{4096, 4096},
		{4097, 8192},
		{8192, 8192},
		{100000, 131072},
		{MiB, MiB},
		{MiB + 1, 2 * MiB},
		{RBUF_MAX - 1, RBUF_MAX},
		{RBUF_MAX, RBUF_MAX},
	};
	struct rbuf *b[sizeof(sizes) / sizeof(sizes[0])], *x = NULL, *y = NULL, *bad;
	struct rbuf_stats st;
	uint64_t regbytes = 0;
	unsigned int i;

	ck_assert_int_eq(rbuf_pool_create(T.pd, RDMA_ACCESS_REMOTE_READ, &T.pool), 0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		b[i] = get_buf(&T, sizes[i].len);
		ck_assert_msg(b[i]->cap == sizes[i].cap, "len %zu: cap %u, want %zu", sizes[i].len,
			      b[i]->cap, sizes[i].cap);
		ck_assert_ptr_eq(b[i]->pool, T.pool);
		ck_assert_ptr_nonnull(b[i]->mr);
		ck_assert_uint_eq(b[i]->lkey, rdma_mr_lkey(b[i]->mr));
		ck_assert_uint_eq(b[i]->rkey, rdma_mr_rkey(b[i]->mr));
		/* All of it is ours to write. */
		b[i]->addr[0] = 1;
		b[i]->addr[b[i]->cap - 1] = 2;
		regbytes += b[i]->cap;
	}
	rbuf_pool_stats(T.pool, &st);
	ck_assert_uint_eq(st.gets, sizeof(sizes) / sizeof(sizes[0]));
	ck_assert_uint_eq(st.registrations, sizeof(sizes) / sizeof(sizes[0]));
	ck_assert_uint_eq(st.bytes_registered, regbytes);

	/* Back and out again: the same buffer, no new registration. */
	rbuf_put(b[3]);
	ck_assert_int_eq(rbuf_get(T.pool, 5000, &x), 0);
	ck_assert_ptr_eq(x, b[3]);
	ck_assert_uint_eq(x->cap, 8192);
	rbuf_put(b[6]);
	ck_assert_int_eq(rbuf_get(T.pool, MiB - 100, &y), 0);
	ck_assert_ptr_eq(y, b[6]);
	rbuf_pool_stats(T.pool, &st);
	ck_assert_uint_eq(st.registrations, sizeof(sizes) / sizeof(sizes[0]));
	ck_assert_uint_eq(st.bytes_registered, regbytes);
	ck_assert_uint_eq(st.gets, sizeof(sizes) / sizeof(sizes[0]) + 2);
	/* Another class does not take it: a new one. */
	rbuf_put(x);
	ck_assert_int_eq(rbuf_get(T.pool, 16384, &x), 0);
	ck_assert_ptr_ne(x, b[3]);
	ck_assert_uint_eq(x->cap, 16384);
	rbuf_pool_stats(T.pool, &st);
	ck_assert_uint_eq(st.registrations, sizeof(sizes) / sizeof(sizes[0]) + 1);
	rbuf_put(x);

	/* Out of range: -EINVAL, *ret untouched. */
	bad = (struct rbuf *)&st;
	ck_assert_int_eq(rbuf_get(T.pool, 0, &bad), -EINVAL);
	ck_assert_int_eq(rbuf_get(T.pool, (size_t)RBUF_MAX + 1, &bad), -EINVAL);
	ck_assert_int_eq(rbuf_get(T.pool, SIZE_MAX, &bad), -EINVAL);
	ck_assert_ptr_eq(bad, (struct rbuf *)&st);
	rbuf_put(NULL);

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (i != 3)
			rbuf_put(b[i]);
}
END_TEST

/* A pool's access flags: buffers the peer may read and write, and a
 * buffer of a local pool the peer may not. */
START_TEST(test_rbuf_access)
{
	struct rbuf *ib, *tb;
	int ref;

	connect_pair();
	ck_assert_int_eq(rbuf_pool_create(T.pd, 0, &T.pool), 0);
	ck_assert_int_eq(rbuf_pool_create(I.pd, 0, &I.pool), 0);
	ib = get_buf(&I, 4096);
	tb = get_buf(&T, 4096);
	ck_assert_int_eq(iser_conn_rdma_read(T.ic, tb, 0, 4096, ib->rkey, va(ib, 0), &ref), 0);
	RUN_UNTIL(T.ndone == 1 && T.downs == 1);
	ck_assert_int_eq(T.done[0].err, -ECONNRESET);
	rbuf_put(ib);
	rbuf_put(tb);
}
END_TEST

static Suite *iser_suite(void)
{
	Suite *su = suite_create("iser");
	TCase *tc = tcase_create("soft");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_connect);
	tcase_add_test(tc, test_connect_refused);
	tcase_add_loop_test(tc, test_accept_cm, 0, 3);
	tcase_add_test(tc, test_pdu_both_ways);
	tcase_add_test(tc, test_pdu_sizes);
	tcase_add_test(tc, test_rx_hold);
	tcase_add_test(tc, test_rdma);
	tcase_add_test(tc, test_read_completes_late);
	tcase_add_test(tc, test_rdma_read_ord);
	tcase_add_test(tc, test_rdma_bounds);
	tcase_add_test(tc, test_write_then_send);
	tcase_add_test(tc, test_tx_pending);
	tcase_add_test(tc, test_backlog);
	tcase_add_test(tc, test_backlog_mixed);
	tcase_add_test(tc, test_send_too_long);
	tcase_add_test(tc, test_recv_too_long);
	tcase_add_test(tc, test_read_bad_stag);
	tcase_add_loop_test(tc, test_disconnect, 0, 4);
	tcase_add_loop_test(tc, test_send_then_disconnect, 0, 2);
	tcase_add_test(tc, test_disconnect_pending);
	tcase_add_test(tc, test_rbuf);
	tcase_add_test(tc, test_rbuf_access);
	tcase_add_test(tc, test_rbuf_wrap);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(iser_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
