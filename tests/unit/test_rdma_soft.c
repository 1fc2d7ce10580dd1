/*
 * Unit tests for common/rdma over the soft provider (common/soft/):
 * two devices on one scheduler, connected over 127.0.0.1 (a random port),
 * each side's completion queue drained by a real struct poller and its
 * connection events read from the event fd, as the iser transport will.
 *
 * What is checked is what a user of verbs would check: bytes received,
 * read and written; completion status, opcode, length and order; the
 * private data of connect, accept and reject; the Terminate each error
 * puts on the wire (its layer, type and code, RFC 5040 §4.8, RFC 5041
 * §7.2), counted by the provider's statistics; the flush of outstanding
 * work; the one-shot notification of a CQ. The MPA Request on the wire is
 * decoded with common/iwarp, and a hand-made Reply rejects it.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/iwarp.h"
#include "common/poller.h"
#include "common/rdma.h"
#include "common/sched.h"

#define CQ_DEPTH 4096
#define SQ_DEPTH 256
#define RQ_DEPTH 1024
#define MAX_EV 16
#define WAIT_NS (5ull * 1000000000)
#define MiB (1024 * 1024)

struct side {
	struct rdma_dev *dev;
	struct rdma_pd *pd;
	struct rdma_cq *cq;
	struct poller poller;
	struct sched_fd evfd;
	struct rdma_event ev[MAX_EV];
	int nev;
	struct rdma_wc *wc;
	int nwc;
	struct rdma_conn *conn;
};

static struct sched *s;
static struct sched_timer tick;
static struct side A, P; /* the active and the passive side */
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

static int cq_poll(struct poller *p, int budget)
{
	struct side *sd = side_of(p, poller);
	int n;

	if (budget > 32)
		budget = 32;
	n = rdma_cq_poll(sd->cq, sd->wc + sd->nwc, budget);
	ck_assert_int_ge(n, 0);
	sd->nwc += n;
	return n;
}

static int cq_arm(struct poller *p)
{
	return rdma_cq_arm(side_of(p, poller)->cq);
}

static int cq_ack(struct poller *p)
{
	return rdma_cq_ack(side_of(p, poller)->cq);
}

static const struct poller_ops cq_ops = {
	.poll = cq_poll,
	.arm = cq_arm,
	.ack = cq_ack,
};

static void ev_cb(struct sched_fd *sfd, uint32_t events)
{
	struct side *sd = side_of(sfd, evfd);
	struct rdma_event ev;

	(void)events;
	while (rdma_get_event(sd->dev, &ev) == 0) {
		ck_assert_int_lt(sd->nev, MAX_EV);
		sd->ev[sd->nev++] = ev;
	}
}

static void side_init(struct side *sd, const struct rdma_dev_opts *opts)
{
	memset(sd, 0, sizeof(*sd));
	ck_assert_int_eq(rdma_dev_create(s, "soft", opts, &sd->dev), 0);
	ck_assert_str_eq(rdma_dev_provider(sd->dev), "soft");
	ck_assert_int_eq(rdma_pd_create(sd->dev, &sd->pd), 0);
	ck_assert_int_eq(rdma_cq_create(sd->dev, CQ_DEPTH, &sd->cq), 0);
	sd->wc = calloc(8 * CQ_DEPTH, sizeof(*sd->wc));
	ck_assert_ptr_nonnull(sd->wc);
	poller_init(&sd->poller, s, &cq_ops, rdma_cq_fd(sd->cq), 16);
	ck_assert_int_eq(poller_enable(&sd->poller), 0);
	ck_assert_int_eq(sched_fd_add(s, &sd->evfd, rdma_event_fd(sd->dev), EPOLLIN, ev_cb), 0);
}

static void side_fini(struct side *sd)
{
	rdma_conn_destroy(sd->conn);
	sched_fd_del(s, &sd->evfd);
	poller_disable(&sd->poller);
	rdma_cq_destroy(sd->cq);
	rdma_pd_destroy(sd->pd);
	rdma_dev_destroy(sd->dev);
	free(sd->wc);
}

static void setup(void)
{
	ck_assert_int_eq(sched_create(&s), 0);
	sched_timer_init(&tick, tick_fn);
	tick_fn(&tick);
}

static void teardown(void)
{
	rdma_listener_destroy(L);
	L = NULL;
	side_fini(&A);
	side_fini(&P);
	sched_timer_cancel(s, &tick);
	sched_destroy(s);
}

/* P listens on 127.0.0.1, a port of the kernel's choosing. */
static void listen_p(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr_storage ss;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(
		rdma_listener_create(P.dev, (struct sockaddr *)&sin, sizeof(sin), 8, &P, &L), 0);
	ck_assert_ptr_eq(rdma_listener_context(L), &P);
	ck_assert_int_eq(rdma_listener_addr(L, &ss), 0);
	memcpy(&L_addr, &ss, sizeof(L_addr));
	ck_assert_int_ne(L_addr.sin_port, 0);
}

static void pair_init(const struct rdma_dev_opts *a_opts, const struct rdma_dev_opts *p_opts)
{
	side_init(&A, a_opts);
	side_init(&P, p_opts);
	listen_p();
}

static struct rdma_qp_attr qp_attr(struct side *sd)
{
	return (struct rdma_qp_attr){
		.pd = sd->pd,
		.send_cq = sd->cq,
		.recv_cq = sd->cq,
		.max_send_wr = SQ_DEPTH,
		.max_recv_wr = RQ_DEPTH,
		.max_send_sge = 4,
		.max_recv_sge = 4,
	};
}

static struct rdma_event *find_ev(struct side *sd, enum rdma_event_type type)
{
	int i;

	for (i = 0; i < sd->nev; i++)
		if (sd->ev[i].type == type)
			return &sd->ev[i];
	return NULL;
}

static void start_connect(const void *pdata, size_t len, uint16_t ord, uint16_t ird)
{
	struct rdma_qp_attr attr = qp_attr(&A);
	struct rdma_conn_attr p = {
		.pdata = pdata,
		.pdata_len = len,
		.initiator_depth = ord,
		.responder_resources = ird,
	};

	ck_assert_int_eq(rdma_conn_create(A.dev, (struct sockaddr *)&L_addr, sizeof(L_addr), &attr,
					  &p, &A, &A.conn),
			 0);
	ck_assert_ptr_eq(rdma_conn_context(A.conn), &A);
}

/* The passive side's connect request: its queue pair created. */
static struct rdma_event *take_request(void)
{
	struct rdma_event *ev;
	struct rdma_qp_attr attr = qp_attr(&P);

	RUN_UNTIL(find_ev(&P, RDMA_EV_CONNECT_REQUEST));
	ev = find_ev(&P, RDMA_EV_CONNECT_REQUEST);
	ck_assert_ptr_eq(ev->listener, L);
	P.conn = ev->conn;
	ck_assert_int_eq(rdma_qp_create(P.conn, &attr), 0);
	ck_assert_int_eq(rdma_qp_create(P.conn, &attr), -EALREADY);
	return ev;
}

static void connect_pair(void)
{
	struct rdma_conn_attr p = {.initiator_depth = 16, .responder_resources = 16};

	start_connect(NULL, 0, 16, 16);
	take_request();
	ck_assert_int_eq(rdma_conn_accept(P.conn, &p), 0);
	RUN_UNTIL(find_ev(&A, RDMA_EV_ESTABLISHED) && find_ev(&P, RDMA_EV_ESTABLISHED));
}

/* Memory */

struct buf {
	uint8_t *p;
	size_t len;
	struct rdma_mr *mr;
};

static struct buf buf_new(struct side *sd, size_t len, unsigned int access)
{
	struct buf b = {.len = len};

	b.p = calloc(1, len);
	ck_assert_ptr_nonnull(b.p);
	ck_assert_int_eq(rdma_mr_create(sd->pd, b.p, len, access, &b.mr), 0);
	return b;
}

static void buf_free(struct buf *b)
{
	rdma_mr_destroy(b->mr);
	free(b->p);
}

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

static struct rdma_sge sge(const struct buf *b, size_t off, size_t len)
{
	return (struct rdma_sge){(uint64_t)(uintptr_t)(b->p + off), (uint32_t)len,
				 rdma_mr_lkey(b->mr)};
}

static void post_recv(struct side *sd, uint64_t id, struct rdma_sge *sg, int n)
{
	struct rdma_recv_wr wr = {.wr_id = id, .sg_list = sg, .num_sge = n}, *bad = NULL;

	ck_assert_int_eq(rdma_conn_post_recv(sd->conn, &wr, &bad), 0);
}

static void post_send(struct side *sd, uint64_t id, enum rdma_wr_opcode op, struct rdma_sge *sg,
		      int n, uint64_t raddr, uint32_t rkey)
{
	struct rdma_send_wr wr = {
		.wr_id = id,
		.sg_list = sg,
		.num_sge = n,
		.opcode = op,
		.flags = RDMA_SEND_SIGNALED,
		.remote_addr = raddr,
		.rkey = rkey,
	};
	struct rdma_send_wr *bad = NULL;

	ck_assert_int_eq(rdma_conn_post_send(sd->conn, &wr, &bad), 0);
}

static uint64_t raddr(const struct buf *b, size_t off)
{
	return (uint64_t)(uintptr_t)(b->p + off);
}

static struct rdma_conn_stats stats(struct side *sd)
{
	struct rdma_conn_stats st;

	ck_assert_int_eq(rdma_conn_get_stats(sd->conn, &st), 0);
	return st;
}

static void assert_term(struct rdma_term_info t, uint8_t layer, uint8_t etype, uint8_t ecode)
{
	ck_assert_uint_eq(t.layer, layer);
	ck_assert_uint_eq(t.etype, etype);
	ck_assert_uint_eq(t.ecode, ecode);
}

/* Providers */

START_TEST(test_provider_select)
{
	struct rdma_dev *d;
	const char *want = rdma_provider_available("verbs") ? "verbs" : "soft";

	ck_assert_int_eq(rdma_dev_create(s, "auto", NULL, &d), 0);
	/* "auto" says which one it took: verbs only with a device. */
	ck_assert_str_eq(rdma_dev_provider(d), want);
	rdma_dev_destroy(d);
	ck_assert_int_eq(rdma_dev_create(s, NULL, NULL, &d), 0);
	ck_assert_str_eq(rdma_dev_provider(d), want);
	rdma_dev_destroy(d);
	d = NULL;
	ck_assert_int_eq(rdma_dev_create(s, "nonesuch", NULL, &d), -ENOENT);
	ck_assert_ptr_null(d);
	ck_assert(rdma_provider_available("soft"));
	ck_assert(!rdma_provider_available("nonesuch"));
	/* the fixture's sides, unused */
	side_init(&A, NULL);
	side_init(&P, NULL);
}
END_TEST

/* Connection management */

START_TEST(test_connect_pdata)
{
	static const char req[] = "iSER CM header from the initiator";
	static const char rep[] = "and the target's reply";
	struct rdma_conn_attr p = {
		.pdata = rep,
		.pdata_len = sizeof(rep),
		.initiator_depth = 4,
		.responder_resources = 2,
	};
	struct rdma_conn_stats sa, sp;
	struct rdma_event *ev;

	pair_init(NULL, NULL);
	start_connect(req, sizeof(req), 8, 3);
	ev = take_request();
	ck_assert_uint_eq(ev->pdata_len, sizeof(req));
	ck_assert_mem_eq(ev->pdata, req, sizeof(req));
	/* RFC 6581: the initiator's ORD and IRD */
	ck_assert_uint_eq(ev->initiator_depth, 8);
	ck_assert_uint_eq(ev->responder_resources, 3);
	ck_assert_ptr_null(find_ev(&A, RDMA_EV_ESTABLISHED));
	ck_assert_int_eq(rdma_conn_accept(P.conn, &p), 0);
	RUN_UNTIL(find_ev(&A, RDMA_EV_ESTABLISHED) && find_ev(&P, RDMA_EV_ESTABLISHED));
	ev = find_ev(&A, RDMA_EV_ESTABLISHED);
	ck_assert_ptr_eq(ev->conn, A.conn);
	ck_assert_uint_eq(ev->pdata_len, sizeof(rep));
	ck_assert_mem_eq(ev->pdata, rep, sizeof(rep));
	ck_assert_ptr_eq(find_ev(&P, RDMA_EV_ESTABLISHED)->conn, P.conn);

	/* The responder's ORD is cut to the initiator's IRD, its IRD raised
	 * to the initiator's ORD; the initiator's ORD fits the responder's
	 * IRD. */
	sa = stats(&A);
	sp = stats(&P);
	ck_assert_uint_eq(sp.ord, 3);
	ck_assert_uint_eq(sp.ird, 8);
	ck_assert_uint_eq(sa.ord, 8);
	ck_assert_uint_eq(sa.ird, 3);
	ck_assert(sa.crc && sp.crc);
	ck_assert_uint_eq(sa.max_ulpdu, 16384);

	/* Disconnect: both sides told, with no error. */
	ck_assert_int_eq(rdma_conn_disconnect(A.conn), 0);
	ck_assert_int_eq(rdma_conn_disconnect(A.conn), 0);
	RUN_UNTIL(find_ev(&A, RDMA_EV_DISCONNECTED) && find_ev(&P, RDMA_EV_DISCONNECTED));
	ck_assert_int_eq(find_ev(&A, RDMA_EV_DISCONNECTED)->status, 0);
	ck_assert_int_eq(find_ev(&P, RDMA_EV_DISCONNECTED)->status, 0);
	ck_assert_int_eq(stats(&A).terminates_sent + stats(&P).terminates_sent, 0);
}
END_TEST

START_TEST(test_reject_pdata)
{
	static const char why[] = "no such target";
	struct rdma_sge sg;
	struct buf b;
	struct rdma_event *ev;

	pair_init(NULL, NULL);
	start_connect("hi", 2, 1, 1);
	b = buf_new(&A, 64, RDMA_ACCESS_LOCAL_WRITE);
	sg = sge(&b, 0, 64);
	post_recv(&A, 7, &sg, 1);
	take_request();
	ck_assert_int_eq(rdma_conn_reject(P.conn, why, IWARP_MPA_PD_MAX), -EMSGSIZE);
	ck_assert_int_eq(rdma_conn_reject(P.conn, why, sizeof(why)), 0);
	ck_assert_int_eq(rdma_conn_accept(P.conn, NULL), -EINVAL);
	rdma_conn_destroy(P.conn);
	P.conn = NULL;
	RUN_UNTIL(find_ev(&A, RDMA_EV_REJECTED));
	ev = find_ev(&A, RDMA_EV_REJECTED);
	ck_assert_ptr_eq(ev->conn, A.conn);
	ck_assert_uint_eq(ev->pdata_len, sizeof(why));
	ck_assert_mem_eq(ev->pdata, why, sizeof(why));
	ck_assert_ptr_null(find_ev(&A, RDMA_EV_ESTABLISHED));
	/* librdmacm: a rejected connection's queue pair is in error. */
	RUN_UNTIL(A.nwc == 1);
	ck_assert_uint_eq(A.wc[0].wr_id, 7);
	ck_assert_int_eq(A.wc[0].status, RDMA_WC_WR_FLUSH_ERR);
	buf_free(&b);
}
END_TEST

START_TEST(test_connect_refused)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct rdma_qp_attr attr;
	struct rdma_conn_attr p = {0};
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	side_init(&A, NULL);
	side_init(&P, NULL);
	attr = qp_attr(&A);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	ck_assert_int_eq(rdma_conn_create(A.dev, (struct sockaddr *)&sin, sizeof(sin), &attr, &p,
					  NULL, &A.conn),
			 0);
	RUN_UNTIL(find_ev(&A, RDMA_EV_CONNECT_ERROR));
	ck_assert_int_eq(find_ev(&A, RDMA_EV_CONNECT_ERROR)->status, -ECONNREFUSED);
}
END_TEST

/* Read from a plain socket what it has, within the test's patience. */
static size_t raw_read(int fd, uint8_t *buf, size_t want)
{
	uint64_t dl = sched_now(s) + WAIT_NS;
	size_t got = 0;
	ssize_t n;

	while (got < want && sched_now(s) < dl) {
		n = recv(fd, buf + got, want - got, MSG_DONTWAIT);
		if (n > 0)
			got += (size_t)n;
		else
			ck_assert_int_eq(sched_run_once(s), 0);
	}
	return got;
}

static int raw_listen(struct sockaddr_in *sin)
{
	socklen_t sl = sizeof(*sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)sin, &sl), 0);
	return fd;
}

static int raw_accept(int lfd)
{
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	int fd;

	RUN_UNTIL(poll(&pfd, 1, 0) == 1);
	fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* The first bytes of the active side, decoded by common/iwarp, and a
 * rejecting Reply written by hand with its encoder. */
START_TEST(test_mpa_wire)
{
	static const char pd[] = "private";
	struct rdma_dev_opts opts = {.no_crc = _i == 1};
	struct rdma_qp_attr attr;
	struct rdma_conn_attr p = {.pdata = pd,
				   .pdata_len = sizeof(pd),
				   .initiator_depth = 5,
				   .responder_resources = 6};
	struct iwarp_mpa m, rej = {.reply = true, .reject = true, .rev = 2, .enhanced = true};
	uint8_t buf[IWARP_MPA_FRAME_MAX], again[IWARP_MPA_FRAME_MAX];
	struct sockaddr_in sin;
	size_t want = IWARP_MPA_HDR_LEN + IWARP_MPA_V2_LEN + sizeof(pd);
	int lfd, fd, n;

	side_init(&A, &opts);
	side_init(&P, NULL);
	attr = qp_attr(&A);
	lfd = raw_listen(&sin);
	ck_assert_int_eq(rdma_conn_create(A.dev, (struct sockaddr *)&sin, sizeof(sin), &attr, &p,
					  NULL, &A.conn),
			 0);
	fd = raw_accept(lfd);
	ck_assert_uint_eq(raw_read(fd, buf, want), want);
	ck_assert_int_eq(iwarp_mpa_is_request(buf, want), 1);
	n = iwarp_mpa_decode(buf, want, &m);
	ck_assert_int_eq(n, (int)want);
	ck_assert(!m.reply);
	ck_assert_uint_eq(m.rev, IWARP_MPA_REV2);
	ck_assert(m.enhanced);
	ck_assert(!m.markers);
	ck_assert(m.crc == (_i == 0));
	ck_assert(m.p2p);
	ck_assert_uint_eq(m.rtr, IWARP_MPA_RTR_WRITE);
	ck_assert_uint_eq(m.ord, 5);
	ck_assert_uint_eq(m.ird, 6);
	ck_assert_uint_eq(m.pdata_len, sizeof(pd));
	ck_assert_mem_eq(m.pdata, pd, sizeof(pd));
	/* Byte for byte what the encoder makes of the same fields. */
	ck_assert_int_eq(iwarp_mpa_encode(&m, again, sizeof(again)), n);
	ck_assert_mem_eq(again, buf, (size_t)n);

	rej.pdata = (const uint8_t *)"go away";
	rej.pdata_len = 7;
	n = iwarp_mpa_encode(&rej, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(write(fd, buf, (size_t)n), n);
	RUN_UNTIL(find_ev(&A, RDMA_EV_REJECTED));
	ck_assert_uint_eq(find_ev(&A, RDMA_EV_REJECTED)->pdata_len, 7);
	ck_assert_mem_eq(find_ev(&A, RDMA_EV_REJECTED)->pdata, "go away", 7);
	close(fd);
	close(lfd);
}
END_TEST

/* A responder that asks for markers gets refused; a reply with garbage is
 * a connect error. */
START_TEST(test_mpa_bad_reply)
{
	struct rdma_qp_attr attr;
	struct rdma_conn_attr p = {0};
	uint8_t buf[IWARP_MPA_FRAME_MAX];
	struct sockaddr_in sin;
	int lfd, fd;

	side_init(&A, NULL);
	side_init(&P, NULL);
	attr = qp_attr(&A);
	lfd = raw_listen(&sin);
	ck_assert_int_eq(rdma_conn_create(A.dev, (struct sockaddr *)&sin, sizeof(sin), &attr, &p,
					  NULL, &A.conn),
			 0);
	fd = raw_accept(lfd);
	raw_read(fd, buf, IWARP_MPA_HDR_LEN + IWARP_MPA_V2_LEN);
	memcpy(buf, "MPA ID Rep Frame\x80\x02\x00\x00", IWARP_MPA_HDR_LEN);
	ck_assert_int_eq(write(fd, buf, IWARP_MPA_HDR_LEN), IWARP_MPA_HDR_LEN);
	RUN_UNTIL(find_ev(&A, RDMA_EV_CONNECT_ERROR));
	ck_assert_int_eq(find_ev(&A, RDMA_EV_CONNECT_ERROR)->status, -EPROTO);
	close(fd);
	close(lfd);
}
END_TEST

/* RFC 5044 §7.1: the passive side declines markers with a rejecting
 * Reply (of the Request's revision) and closes; the listener's owner
 * hears of no connection. */
START_TEST(test_mpa_markers_declined)
{
	struct iwarp_mpa req = {.rev = 2,
				.enhanced = true,
				.p2p = true,
				.rtr = IWARP_MPA_RTR_WRITE,
				.ird = 4,
				.ord = 4},
			 m;
	uint8_t buf[IWARP_MPA_FRAME_MAX];
	int fd, n;

	pair_init(NULL, NULL);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&L_addr, sizeof(L_addr)), 0);
	/* our encoder makes no Request with markers: the M bit by hand */
	n = iwarp_mpa_encode(&req, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	buf[IWARP_MPA_KEY_LEN] |= 0x80;
	ck_assert_int_eq(iwarp_mpa_decode(buf, (size_t)n, &m), n);
	ck_assert(m.markers);
	ck_assert_int_eq(write(fd, buf, (size_t)n), n);
	n = (int)raw_read(fd, buf, IWARP_MPA_HDR_LEN); /* no IRD/ORD, no data */
	ck_assert_int_eq(n, IWARP_MPA_HDR_LEN);
	ck_assert_int_eq(iwarp_mpa_decode(buf, (size_t)n, &m), n);
	ck_assert(m.reply);
	ck_assert(m.reject);
	ck_assert(!m.markers);
	ck_assert_uint_eq(m.rev, 2);
	/* then the end of the stream */
	RUN_UNTIL(recv(fd, buf, sizeof(buf), MSG_DONTWAIT) == 0);
	ck_assert_ptr_null(find_ev(&P, RDMA_EV_CONNECT_REQUEST));
	close(fd);
}
END_TEST

/*
 * DESIGN §5, one port: the portal reads the first bytes, sees an MPA
 * Request and hands the socket over; a connection that is not MPA is
 * dropped.
 */
START_TEST(test_adopt)
{
	struct rdma_qp_attr attr;
	struct rdma_conn_attr p = {.pdata = "x", .pdata_len = 1};
	struct sockaddr_in sin;
	uint8_t head[IWARP_MPA_KEY_LEN], junk;
	struct rdma_sge sg;
	struct buf ba, bp;
	int lfd, fd, sp[2];

	side_init(&A, NULL);
	side_init(&P, NULL);
	ck_assert_int_eq(rdma_listener_create(P.dev, NULL, 0, 0, NULL, &L), 0);
	ck_assert_int_eq(rdma_listener_addr(L, &(struct sockaddr_storage){0}), -ENOTCONN);
	attr = qp_attr(&A);
	lfd = raw_listen(&sin);
	L_addr = sin;
	ck_assert_int_eq(rdma_conn_create(A.dev, (struct sockaddr *)&sin, sizeof(sin), &attr, &p,
					  NULL, &A.conn),
			 0);
	fd = raw_accept(lfd);
	close(lfd);
	ck_assert_uint_eq(raw_read(fd, head, 9), 9);
	ck_assert_int_eq(iwarp_mpa_is_request(head, 9), -ENODATA);
	ck_assert_uint_eq(raw_read(fd, head + 9, sizeof(head) - 9), sizeof(head) - 9);
	ck_assert_int_eq(iwarp_mpa_is_request(head, sizeof(head)), 1);
	ck_assert_int_eq(rdma_listener_adopt(L, fd, head, sizeof(head)), 0);
	take_request();
	ck_assert_uint_eq(find_ev(&P, RDMA_EV_CONNECT_REQUEST)->pdata_len, 1);
	ck_assert_int_eq(rdma_conn_accept(P.conn, NULL), 0);
	RUN_UNTIL(find_ev(&A, RDMA_EV_ESTABLISHED));

	/* And it carries a Send. */
	ba = buf_new(&A, 100, RDMA_ACCESS_LOCAL_WRITE);
	bp = buf_new(&P, 100, RDMA_ACCESS_LOCAL_WRITE);
	fill(ba.p, 100, 3);
	sg = sge(&bp, 0, 100);
	post_recv(&P, 1, &sg, 1);
	sg = sge(&ba, 0, 100);
	post_send(&A, 2, RDMA_WR_SEND, &sg, 1, 0, 0);
	RUN_UNTIL(P.nwc == 1 && A.nwc == 1);
	ck_assert_int_eq(P.wc[0].status, RDMA_WC_SUCCESS);
	ck_assert_mem_eq(bp.p, ba.p, 100);

	/* Not MPA: closed, no event. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	ck_assert_int_eq(rdma_listener_adopt(L, sp[0], "GET / HTTP/1.0\r\n", 16), 0);
	RUN_UNTIL(recv(sp[1], &junk, 1, MSG_DONTWAIT) == 0);
	close(sp[1]);
	ck_assert_int_eq(P.nev, 2);
	buf_free(&ba);
	buf_free(&bp);
}
END_TEST

/* One whole FPDU from a plain socket, CRC checked; its ULPDU into @seg. */
static size_t raw_fpdu(int fd, uint8_t *buf, size_t cap, struct iwarp_hdr *h,
		       const uint8_t **payload)
{
	struct iwarp_fpdu f;
	int len, hl;

	ck_assert_uint_eq(raw_read(fd, buf, IWARP_FPDU_HDR_LEN), IWARP_FPDU_HDR_LEN);
	len = iwarp_fpdu_len(buf, IWARP_FPDU_HDR_LEN, IWARP_ULPDU_MAX);
	ck_assert_int_gt(len, 0);
	ck_assert_uint_le((size_t)len, cap);
	ck_assert_uint_eq(raw_read(fd, buf + IWARP_FPDU_HDR_LEN, (size_t)len - IWARP_FPDU_HDR_LEN),
			  (size_t)len - IWARP_FPDU_HDR_LEN);
	ck_assert_int_eq(iwarp_fpdu_parse(buf, (size_t)len, true, IWARP_ULPDU_MAX, &f), len);
	hl = iwarp_hdr_decode(f.ulpdu, f.ulpdu_len, h);
	ck_assert_int_gt(hl, 0);
	*payload = f.ulpdu + hl;
	return f.ulpdu_len - (size_t)hl;
}

/* A Send built by hand, CRC sealed: 2 + 18 + @len bytes plus trailer. */
static int raw_send_fpdu(uint8_t *buf, size_t cap, uint32_t msn, const void *data, size_t len)
{
	struct iwarp_hdr h = {.last = true, .opcode = IWARP_OP_SEND, .msn = msn};

	ck_assert_int_eq(iwarp_fpdu_hdr_encode(buf, cap, IWARP_UNTAGGED_HDR_LEN + len),
			 IWARP_FPDU_HDR_LEN);
	ck_assert_int_eq(iwarp_hdr_encode(&h, buf + 2, cap - 2), IWARP_UNTAGGED_HDR_LEN);
	memcpy(buf + 2 + IWARP_UNTAGGED_HDR_LEN, data, len);
	return iwarp_fpdu_seal(buf, cap, true);
}

/*
 * The responder's side of the wire against a peer written here with
 * common/iwarp: it sends nothing before the initiator's first FPDU (RFC
 * 5044 §7.1.2, no RTR asked), takes a hand-made Send, and answers an FPDU
 * whose CRC is wrong with a Terminate (LLP, MPA, CRC error: RFC 5044 §8).
 */
START_TEST(test_raw_initiator)
{
	struct iwarp_mpa m = {.rev = 2, .enhanced = true, .crc = true, .ird = 1, .ord = 1};
	uint8_t buf[256];
	const uint8_t *pl;
	struct iwarp_hdr h;
	struct iwarp_term t;
	struct buf src, dst;
	struct rdma_sge sg;
	struct pollfd pfd;
	size_t n;
	int fd, len;

	pair_init(NULL, NULL);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&L_addr, sizeof(L_addr)), 0);
	len = iwarp_mpa_encode(&m, buf, sizeof(buf));
	ck_assert_int_eq(write(fd, buf, (size_t)len), len);
	take_request();
	src = buf_new(&P, 64, 0);
	dst = buf_new(&P, 64, RDMA_ACCESS_LOCAL_WRITE);
	sg = sge(&dst, 0, 64);
	post_recv(&P, 1, &sg, 1);
	ck_assert_int_eq(rdma_conn_accept(P.conn, NULL), 0);
	/* Posted at once, held until the initiator speaks. */
	fill(src.p, 64, 4);
	sg = sge(&src, 0, 40);
	post_send(&P, 2, RDMA_WR_SEND, &sg, 1, 0, 0);

	ck_assert_uint_eq(raw_read(fd, buf, IWARP_MPA_HDR_LEN + IWARP_MPA_V2_LEN),
			  IWARP_MPA_HDR_LEN + IWARP_MPA_V2_LEN);
	ck_assert_int_eq(iwarp_mpa_decode(buf, sizeof(buf), &m),
			 IWARP_MPA_HDR_LEN + IWARP_MPA_V2_LEN);
	ck_assert(m.reply && !m.reject && m.crc && m.enhanced && !m.p2p);
	/* accept(NULL): ORD 0 as asked; IRD raised to the initiator's ORD. */
	ck_assert_uint_eq(m.ord, 0);
	ck_assert_uint_eq(m.ird, 1);
	run_for(20 * 1000000);
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	ck_assert_int_eq(P.nwc, 0);

	/* Our Send, then theirs comes. */
	len = raw_send_fpdu(buf, sizeof(buf), 1, "hello", 5);
	ck_assert_int_eq(write(fd, buf, (size_t)len), len);
	RUN_UNTIL(P.nwc == 2);
	ck_assert_uint_eq(P.wc[0].wr_id, 1);
	ck_assert_int_eq(P.wc[0].status, RDMA_WC_SUCCESS);
	ck_assert_uint_eq(P.wc[0].byte_len, 5);
	ck_assert_mem_eq(dst.p, "hello", 5);
	ck_assert_uint_eq(P.wc[1].wr_id, 2);
	n = raw_fpdu(fd, buf, sizeof(buf), &h, &pl);
	ck_assert_uint_eq(h.opcode, IWARP_OP_SEND);
	ck_assert(h.last && !h.tagged);
	ck_assert_uint_eq(h.qn, 0);
	ck_assert_uint_eq(h.msn, 1);
	ck_assert_uint_eq(h.mo, 0);
	ck_assert_uint_eq(n, 40);
	ck_assert_mem_eq(pl, src.p, 40);

	/* A second Send, one bit off after sealing. */
	sg = sge(&dst, 0, 64);
	post_recv(&P, 3, &sg, 1);
	len = raw_send_fpdu(buf, sizeof(buf), 2, "world", 5);
	buf[2 + IWARP_UNTAGGED_HDR_LEN] ^= 1;
	ck_assert_int_eq(write(fd, buf, (size_t)len), len);
	n = raw_fpdu(fd, buf, sizeof(buf), &h, &pl);
	ck_assert_uint_eq(h.opcode, IWARP_OP_TERMINATE);
	ck_assert_uint_eq(h.qn, IWARP_QN_TERMINATE);
	ck_assert_uint_eq(h.msn, 1);
	ck_assert_int_eq(iwarp_term_decode(pl, n, &t), 0);
	ck_assert_uint_eq(t.layer, IWARP_TERM_LLP);
	ck_assert_uint_eq(t.etype, IWARP_TERM_LLP_MPA);
	ck_assert_uint_eq(t.ecode, IWARP_TERM_MPA_CRC);
	/* Then its FIN; the receive is flushed, the connection down. */
	RUN_UNTIL(recv(fd, buf, 1, MSG_DONTWAIT) == 0);
	RUN_UNTIL(P.nwc == 3 && find_ev(&P, RDMA_EV_DISCONNECTED));
	ck_assert_int_eq(P.wc[2].status, RDMA_WC_WR_FLUSH_ERR);
	ck_assert_int_eq(find_ev(&P, RDMA_EV_DISCONNECTED)->status, -EPROTO);
	ck_assert_uint_eq(stats(&P).terminates_sent, 1);
	close(fd);
	buf_free(&src);
	buf_free(&dst);
}
END_TEST

/* Sends */

/*
 * 0: CRC (the default), 1: no CRC, 2: CRC and FPDUs of 203 bytes, 3: the
 * initiator asks for CRC, the responder would not: on; 4: the other way
 * round: off (a responder follows, RFC 5044 §7.1 lets it).
 */
START_TEST(test_send_sizes)
{
	static const size_t sizes[] = {0, 1, 4095, MiB};
	struct rdma_dev_opts a_opts = {.no_crc = _i == 1 || _i == 4,
				       .max_ulpdu = _i == 2 ? 203 : 0};
	struct rdma_dev_opts p_opts = {.no_crc = _i == 1 || _i == 3};
	bool crc = _i != 1 && _i != 4;
	struct rdma_sge sg[3];
	struct rdma_conn_stats st;
	struct buf src, dst;
	size_t i, n;

	pair_init(&a_opts, &p_opts);
	connect_pair();
	src = buf_new(&A, MiB + 64, 0);
	dst = buf_new(&P, MiB + 64, RDMA_ACCESS_LOCAL_WRITE);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		n = sizes[i];
		fill(src.p, MiB + 64, (unsigned int)i + 1);
		memset(dst.p, 0xee, MiB + 64);
		/* Two receive SGEs, three send SGEs, split off the middle. */
		sg[0] = sge(&dst, 0, 1000);
		sg[1] = sge(&dst, 1000, MiB + 64 - 1000);
		post_recv(&P, 100 + i, sg, 2);
		sg[0] = sge(&src, 0, n / 3);
		sg[1] = sge(&src, n / 3, n / 3);
		sg[2] = sge(&src, 2 * (n / 3), n - 2 * (n / 3));
		post_send(&A, 200 + i, RDMA_WR_SEND, sg, 3, 0, 0);
		RUN_UNTIL(P.nwc == (int)i + 1 && A.nwc == (int)i + 1);
		ck_assert_uint_eq(P.wc[i].wr_id, 100 + i);
		ck_assert_int_eq(P.wc[i].status, RDMA_WC_SUCCESS);
		ck_assert_int_eq(P.wc[i].opcode, RDMA_WC_RECV);
		ck_assert_uint_eq(P.wc[i].byte_len, n);
		ck_assert_uint_eq(P.wc[i].flags, 0);
		ck_assert_uint_eq(A.wc[i].wr_id, 200 + i);
		ck_assert_int_eq(A.wc[i].status, RDMA_WC_SUCCESS);
		ck_assert_int_eq(A.wc[i].opcode, RDMA_WC_SEND);
		ck_assert(!memcmp(dst.p, src.p, n));
		/* Nothing past the message was touched. */
		ck_assert_uint_eq(dst.p[n], 0xee);
	}
	st = stats(&A);
	ck_assert(st.crc == crc);
	ck_assert(stats(&P).crc == crc);
	ck_assert_uint_eq(st.max_ulpdu, _i == 2 ? 203 : 16384);
	/* 1 MiB in FPDUs of at most max_ulpdu, headers included */
	ck_assert_uint_ge(stats(&P).rx_fpdus, MiB / (st.max_ulpdu - 18));
	ck_assert_uint_eq(stats(&P).terminates_sent, 0);
	buf_free(&src);
	buf_free(&dst);
}
END_TEST

START_TEST(test_send_inv)
{
	struct buf src, dst, victim;
	struct rdma_sge sg;
	struct rdma_send_wr wr = {.wr_id = 9, .num_sge = 1, .opcode = RDMA_WR_SEND_WITH_INV};
	struct rdma_send_wr *bad;
	uint32_t rkey;

	pair_init(NULL, NULL);
	connect_pair();
	src = buf_new(&A, 64, 0);
	dst = buf_new(&P, 64, RDMA_ACCESS_LOCAL_WRITE);
	victim = buf_new(&P, 4096, RDMA_ACCESS_LOCAL_WRITE | RDMA_ACCESS_REMOTE_WRITE);
	rkey = rdma_mr_rkey(victim.mr);
	sg = sge(&dst, 0, 64);
	post_recv(&P, 1, &sg, 1);
	sg = sge(&src, 0, 64);
	wr.sg_list = &sg;
	wr.invalidate_rkey = rkey;
	ck_assert_int_eq(rdma_conn_post_send(A.conn, &wr, &bad), 0);
	RUN_UNTIL(P.nwc == 1);
	ck_assert_int_eq(P.wc[0].status, RDMA_WC_SUCCESS);
	ck_assert_uint_eq(P.wc[0].flags, RDMA_WC_WITH_INV);
	ck_assert_uint_eq(P.wc[0].invalidated_rkey, rkey);
	ck_assert_uint_eq(P.wc[0].byte_len, 64);
	/* The unsignaled Send gave no completion. */
	ck_assert_int_eq(A.nwc, 0);

	/* The rkey is dead now: a Write with it is an invalid STag. */
	sg = sge(&src, 0, 16);
	post_send(&A, 10, RDMA_WR_RDMA_WRITE, &sg, 1, raddr(&victim, 0), rkey);
	RUN_UNTIL(stats(&A).terminates_received == 1);
	assert_term(stats(&P).term_sent, IWARP_TERM_DDP, IWARP_TERM_DDP_TAGGED,
		    IWARP_TERM_DDP_T_INVALID_STAG);
	buf_free(&src);
	buf_free(&dst);
	buf_free(&victim);
}
END_TEST

/* RDMA Write and Read */

START_TEST(test_write_read)
{
	struct buf reg, loc;
	struct rdma_sge sg;
	size_t i;

	pair_init(NULL, NULL);
	connect_pair();
	reg = buf_new(&P, 2 * MiB,
		      RDMA_ACCESS_LOCAL_WRITE | RDMA_ACCESS_REMOTE_WRITE | RDMA_ACCESS_REMOTE_READ);
	loc = buf_new(&A, 3 * MiB, RDMA_ACCESS_LOCAL_WRITE);
	fill(loc.p, 3 * MiB, 5);

	/* Write 3000 bytes at offset 1000 of the peer's region. */
	sg = sge(&loc, 0, 3000);
	post_send(&A, 1, RDMA_WR_RDMA_WRITE, &sg, 1, raddr(&reg, 1000), rdma_mr_rkey(reg.mr));
	RUN_UNTIL(A.nwc == 1);
	ck_assert_int_eq(A.wc[0].status, RDMA_WC_SUCCESS);
	ck_assert_int_eq(A.wc[0].opcode, RDMA_WC_RDMA_WRITE);
	/* Nothing completes at the target of a Write. */
	run_for(10 * 1000000);
	ck_assert_int_eq(P.nwc, 0);
	ck_assert_mem_eq(reg.p + 1000, loc.p, 3000);
	ck_assert_uint_eq(reg.p[999], 0);
	ck_assert_uint_eq(reg.p[4000], 0);

	/* Read 5000 bytes from offset 500 into offset 100 of ours. */
	fill(reg.p, 2 * MiB, 9);
	sg = sge(&loc, 100, 5000);
	post_send(&A, 2, RDMA_WR_RDMA_READ, &sg, 1, raddr(&reg, 500), rdma_mr_rkey(reg.mr));
	RUN_UNTIL(A.nwc == 2);
	ck_assert_int_eq(A.wc[1].status, RDMA_WC_SUCCESS);
	ck_assert_int_eq(A.wc[1].opcode, RDMA_WC_RDMA_READ);
	ck_assert_uint_eq(A.wc[1].byte_len, 5000);
	ck_assert_mem_eq(loc.p + 100, reg.p + 500, 5000);

	/* 1 MiB each way, segmented, at odd offsets. */
	fill(loc.p, 3 * MiB, 11);
	sg = sge(&loc, 3, MiB);
	post_send(&A, 3, RDMA_WR_RDMA_WRITE, &sg, 1, raddr(&reg, 77), rdma_mr_rkey(reg.mr));
	sg = sge(&loc, MiB + 5, MiB);
	post_send(&A, 4, RDMA_WR_RDMA_READ, &sg, 1, raddr(&reg, 77), rdma_mr_rkey(reg.mr));
	RUN_UNTIL(A.nwc == 4);
	for (i = 2; i < 4; i++)
		ck_assert_int_eq(A.wc[i].status, RDMA_WC_SUCCESS);
	/* The Read saw the Write before it (RFC 5040 §5.5 ordering). */
	ck_assert(!memcmp(reg.p + 77, loc.p + 3, MiB));
	ck_assert(!memcmp(loc.p + MiB + 5, loc.p + 3, MiB));
	ck_assert_uint_gt(stats(&A).direct_bytes + stats(&P).direct_bytes, 0);
	buf_free(&reg);
	buf_free(&loc);
}
END_TEST

/*
 * Read Responses read ahead into the sink (soft_rx.c rx_ahead_read()):
 * once a response came in segments, the next ones are read in place. 0:
 * CRC, 1: no CRC, 2: the responder's FPDUs of 4001 bytes (a PAD each).
 */
START_TEST(test_read_ahead)
{
	struct rdma_dev_opts a_opts = {.no_crc = _i == 1};
	struct rdma_dev_opts p_opts = {.no_crc = _i == 1, .max_ulpdu = _i == 2 ? 4001 : 0};
	struct rdma_conn_stats st;
	struct buf reg, loc;
	struct rdma_sge sg;
	size_t off, len;
	int i;

	pair_init(&a_opts, &p_opts);
	connect_pair();
	reg = buf_new(&P, 4 * MiB, RDMA_ACCESS_REMOTE_READ);
	loc = buf_new(&A, 4 * MiB, RDMA_ACCESS_LOCAL_WRITE);
	fill(reg.p, 4 * MiB, 3);
	/* The first response shows how the peer segments... */
	sg = sge(&loc, 0, 100000);
	post_send(&A, 1, RDMA_WR_RDMA_READ, &sg, 1, raddr(&reg, 0), rdma_mr_rkey(reg.mr));
	RUN_UNTIL(A.nwc == 1);
	ck_assert_int_eq(A.wc[0].status, RDMA_WC_SUCCESS);
	ck_assert_mem_eq(loc.p, reg.p, 100000);
	/* ...then three at once, of odd lengths at odd offsets. */
	for (i = 0; i < 3; i++) {
		sg = sge(&loc, 7 + (size_t)i * (MiB + 9), MiB + 3 + (size_t)i);
		post_send(&A, 2 + (uint64_t)i, RDMA_WR_RDMA_READ, &sg, 1,
			  raddr(&reg, 11 + (size_t)i * 1000), rdma_mr_rkey(reg.mr));
	}
	RUN_UNTIL(A.nwc == 4);
	for (i = 0; i < 3; i++) {
		off = 7 + (size_t)i * (MiB + 9);
		len = MiB + 3 + (size_t)i;
		ck_assert_int_eq(A.wc[1 + i].status, RDMA_WC_SUCCESS);
		ck_assert_uint_eq(A.wc[1 + i].byte_len, len);
		ck_assert(!memcmp(loc.p + off, reg.p + 11 + (size_t)i * 1000, len));
		/* Nothing written past it. */
		ck_assert_uint_eq(loc.p[off + len], 0);
	}
	/* Most of the three came read ahead, and as laid out. */
	st = stats(&A);
	ck_assert_uint_gt(st.ahead_fpdus, st.rx_fpdus / 2);
	ck_assert_uint_eq(st.ahead_misses, 0);
	ck_assert_uint_eq(st.terminates_sent + st.terminates_received, 0);
	buf_free(&reg);
	buf_free(&loc);
}
END_TEST

/* A Read Response segment by hand, CRC sealed. */
static int raw_rresp_fpdu(uint8_t *buf, size_t cap, const struct iwarp_read_req *rr, size_t off,
			  const uint8_t *src, size_t len)
{
	struct iwarp_hdr h = {
		.tagged = true,
		.last = off + len == rr->size,
		.opcode = IWARP_OP_READ_RESP,
		.stag = rr->sink_stag,
		.to = rr->sink_to + off,
	};

	ck_assert_int_eq(iwarp_fpdu_hdr_encode(buf, cap, IWARP_TAGGED_HDR_LEN + len),
			 IWARP_FPDU_HDR_LEN);
	ck_assert_int_eq(iwarp_hdr_encode(&h, buf + 2, cap - 2), IWARP_TAGGED_HDR_LEN);
	memcpy(buf + 2 + IWARP_TAGGED_HDR_LEN, src + rr->src_to + off, len);
	return iwarp_fpdu_seal(buf, cap, true);
}

/* All of @len bytes to a plain socket, running the loop while it is full. */
static void raw_write(int fd, const uint8_t *buf, size_t len)
{
	uint64_t dl = sched_now(s) + WAIT_NS;
	ssize_t n;

	while (len && sched_now(s) < dl) {
		n = send(fd, buf, len, MSG_DONTWAIT);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else
			ck_assert_int_eq(sched_run_once(s), 0);
	}
	ck_assert_uint_eq(len, 0);
}

/*
 * Answer the Read Request that comes next on @fd from @src, after the
 * @pre_len bytes at @pre: in segments of the sizes @seg lists (@nseg, the
 * last one repeated), segment @bad (-1: none) one bit off after sealing.
 */
static void raw_answer_read(int fd, const uint8_t *src, const size_t *seg, size_t nseg, int bad,
			    const uint8_t *pre, size_t pre_len)
{
	uint8_t req[128], *out;
	const uint8_t *pl;
	struct iwarp_hdr h;
	size_t off = 0, len, n = pre_len, cap;
	int i, l;

	raw_fpdu(fd, req, sizeof(req), &h, &pl);
	ck_assert_uint_eq(h.opcode, IWARP_OP_READ_REQ);
	cap = pre_len + h.rreq.size + (h.rreq.size / 1024 + 1) * 32;
	out = malloc(cap);
	ck_assert_ptr_nonnull(out);
	if (pre_len)
		memcpy(out, pre, pre_len);
	for (i = 0; off < h.rreq.size; i++) {
		len = seg[(size_t)i < nseg ? (size_t)i : nseg - 1];
		if (len > h.rreq.size - off)
			len = h.rreq.size - off;
		l = raw_rresp_fpdu(out + n, cap - n, &h.rreq, off, src, len);
		ck_assert_int_gt(l, 0);
		if (i == bad)
			out[n + 2 + IWARP_TAGGED_HDR_LEN] ^= 1;
		n += (size_t)l;
		off += len;
	}
	raw_write(fd, out, n);
	free(out);
}

/*
 * Read-ahead against a responder written here: segments that are not the
 * size the last response's were, and a Send before a response, are read
 * ahead as laid out only up to where they differ, then framed as usual;
 * a CRC error in a segment read ahead is answered with a Terminate (RFC
 * 5044 §8) as anywhere else.
 */
START_TEST(test_raw_read_ahead)
{
	static const size_t even[] = {16384}, uneven[] = {16384, 16384, 5000, 16384};
	struct iwarp_mpa m = {.rev = 2, .enhanced = true, .crc = true, .ird = 8, .ord = 1};
	struct rdma_conn_attr attr = {.initiator_depth = 8, .responder_resources = 1};
	struct rdma_conn_stats st;
	uint8_t buf[256], *src;
	const uint8_t *pl;
	struct iwarp_hdr h;
	struct iwarp_term t;
	struct buf dst, rb;
	struct rdma_sge sg;
	uint64_t ahead;
	int fd, len;
	size_t n;

	pair_init(NULL, NULL);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&L_addr, sizeof(L_addr)), 0);
	len = iwarp_mpa_encode(&m, buf, sizeof(buf));
	ck_assert_int_eq(write(fd, buf, (size_t)len), len);
	take_request();
	rb = buf_new(&P, 64, RDMA_ACCESS_LOCAL_WRITE);
	sg = sge(&rb, 0, 64);
	post_recv(&P, 1, &sg, 1);
	ck_assert_int_eq(rdma_conn_accept(P.conn, &attr), 0);
	ck_assert_uint_eq(raw_read(fd, buf, IWARP_MPA_HDR_LEN + IWARP_MPA_V2_LEN),
			  IWARP_MPA_HDR_LEN + IWARP_MPA_V2_LEN);
	ck_assert_int_eq(iwarp_mpa_decode(buf, sizeof(buf), &m),
			 IWARP_MPA_HDR_LEN + IWARP_MPA_V2_LEN);
	ck_assert(m.reply && !m.reject && m.crc);
	ck_assert_uint_ge(m.ord, 1);
	/* The responder sends nothing before our first FPDU. */
	len = raw_send_fpdu(buf, sizeof(buf), 1, "hi", 2);
	raw_write(fd, buf, (size_t)len);
	RUN_UNTIL(P.nwc == 1);
	src = malloc(MiB);
	ck_assert_ptr_nonnull(src);
	fill(src, MiB, 21);
	dst = buf_new(&P, MiB, RDMA_ACCESS_LOCAL_WRITE);

	/* Even segments: the size the next response is laid out with. */
	sg = sge(&dst, 0, 200000);
	post_send(&P, 2, RDMA_WR_RDMA_READ, &sg, 1, 0, 0x77);
	raw_answer_read(fd, src, even, 1, -1, NULL, 0);
	RUN_UNTIL(P.nwc == 2);
	ck_assert_int_eq(P.wc[1].status, RDMA_WC_SUCCESS);
	ck_assert_mem_eq(dst.p, src, 200000);

	/* A short segment where a whole one was laid out: a miss. */
	memset(dst.p, 0, MiB);
	sg = sge(&dst, 3, 300000);
	post_send(&P, 3, RDMA_WR_RDMA_READ, &sg, 1, 1000, 0x77);
	raw_answer_read(fd, src, uneven, 4, -1, NULL, 0);
	RUN_UNTIL(P.nwc == 3);
	ck_assert_int_eq(P.wc[2].status, RDMA_WC_SUCCESS);
	ck_assert_uint_eq(P.wc[2].byte_len, 300000);
	ck_assert(!memcmp(dst.p + 3, src + 1000, 300000));
	ck_assert_uint_eq(dst.p[300003], 0);
	st = stats(&P);
	ck_assert_uint_ge(st.ahead_fpdus, 2);
	ck_assert_uint_ge(st.ahead_misses, 1);

	/* A Send before the response: a miss at its first segment. */
	sg = sge(&rb, 0, 64);
	post_recv(&P, 4, &sg, 1);
	sg = sge(&dst, 0, 100000);
	post_send(&P, 5, RDMA_WR_RDMA_READ, &sg, 1, 5000, 0x77);
	len = raw_send_fpdu(buf, sizeof(buf), 2, "between", 7);
	raw_answer_read(fd, src, even, 1, -1, buf, (size_t)len);
	RUN_UNTIL(P.nwc == 5);
	ck_assert_uint_eq(P.wc[3].wr_id, 4);
	ck_assert_int_eq(P.wc[3].status, RDMA_WC_SUCCESS);
	ck_assert_uint_eq(P.wc[3].byte_len, 7);
	ck_assert_mem_eq(rb.p, "between", 7);
	ck_assert_uint_eq(P.wc[4].wr_id, 5);
	ck_assert_int_eq(P.wc[4].status, RDMA_WC_SUCCESS);
	ck_assert(!memcmp(dst.p, src + 5000, 100000));
	ck_assert_uint_gt(stats(&P).ahead_misses, st.ahead_misses);

	/* One bit off in the fourth segment, read ahead: a Terminate. */
	ahead = stats(&P).ahead_fpdus;
	sg = sge(&dst, 0, 100000);
	post_send(&P, 6, RDMA_WR_RDMA_READ, &sg, 1, 0, 0x77);
	raw_answer_read(fd, src, even, 1, 3, NULL, 0);
	RUN_UNTIL(P.nwc == 6);
	ck_assert_int_ne(P.wc[5].status, RDMA_WC_SUCCESS);
	ck_assert_uint_ge(stats(&P).ahead_fpdus, ahead + 3);
	n = raw_fpdu(fd, buf, sizeof(buf), &h, &pl);
	ck_assert_uint_eq(h.opcode, IWARP_OP_TERMINATE);
	ck_assert_int_eq(iwarp_term_decode(pl, n, &t), 0);
	ck_assert_uint_eq(t.layer, IWARP_TERM_LLP);
	ck_assert_uint_eq(t.etype, IWARP_TERM_LLP_MPA);
	ck_assert_uint_eq(t.ecode, IWARP_TERM_MPA_CRC);
	ck_assert_uint_eq(stats(&P).terminates_sent, 1);
	close(fd);
	free(src);
	buf_free(&dst);
	buf_free(&rb);
}
END_TEST

/*
 * Protection errors: a Read or a Write outside the region, with a wrong
 * rkey, or without the right. The Read completes with
 * RDMA_WC_REM_ACCESS_ERR; the Write left already (iWARP acknowledges
 * nothing) and the Terminate puts the requester in error. Both sides then
 * flush and disconnect.
 */
START_TEST(test_access_errors)
{
	static const struct {
		enum rdma_wr_opcode op;
		unsigned int access;
		size_t off, len;
		bool bad_key;
		uint8_t layer, etype, ecode;
	} t[] = {
		{RDMA_WR_RDMA_READ, RDMA_ACCESS_REMOTE_READ, 4000, 200, false, IWARP_TERM_RDMAP,
		 IWARP_TERM_RDMAP_PROTECTION, IWARP_TERM_RDMAP_BASE_BOUNDS},
		{RDMA_WR_RDMA_READ, RDMA_ACCESS_REMOTE_READ, 0, 200, true, IWARP_TERM_RDMAP,
		 IWARP_TERM_RDMAP_PROTECTION, IWARP_TERM_RDMAP_INVALID_STAG},
		{RDMA_WR_RDMA_READ, RDMA_ACCESS_LOCAL_WRITE | RDMA_ACCESS_REMOTE_WRITE, 0, 200,
		 false, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_PROTECTION, IWARP_TERM_RDMAP_ACCESS},
		{RDMA_WR_RDMA_WRITE, RDMA_ACCESS_LOCAL_WRITE | RDMA_ACCESS_REMOTE_WRITE, 4000, 200,
		 false, IWARP_TERM_DDP, IWARP_TERM_DDP_TAGGED, IWARP_TERM_DDP_T_BASE_BOUNDS},
		{RDMA_WR_RDMA_WRITE, RDMA_ACCESS_LOCAL_WRITE | RDMA_ACCESS_REMOTE_WRITE, 0, 200,
		 true, IWARP_TERM_DDP, IWARP_TERM_DDP_TAGGED, IWARP_TERM_DDP_T_INVALID_STAG},
		{RDMA_WR_RDMA_WRITE, RDMA_ACCESS_REMOTE_READ, 0, 200, false, IWARP_TERM_RDMAP,
		 IWARP_TERM_RDMAP_PROTECTION, IWARP_TERM_RDMAP_ACCESS},
	};
	struct buf reg, loc, rbuf;
	struct rdma_sge sg;
	uint32_t rkey;
	int i, flushed = 0;

	pair_init(NULL, NULL);
	connect_pair();
	reg = buf_new(&P, 4096, t[_i].access);
	/* Where the peer's receives go. */
	rbuf = buf_new(&P, 4096, RDMA_ACCESS_LOCAL_WRITE);
	loc = buf_new(&A, 4096, RDMA_ACCESS_LOCAL_WRITE);
	rkey = rdma_mr_rkey(reg.mr) ^ (t[_i].bad_key ? 0x100 : 0);
	sg = sge(&rbuf, 0, 64);
	post_recv(&P, 50, &sg, 1);
	post_recv(&P, 51, &sg, 1);
	sg = sge(&loc, 0, t[_i].len);
	post_send(&A, 1, t[_i].op, &sg, 1, raddr(&reg, t[_i].off), rkey);

	RUN_UNTIL(find_ev(&A, RDMA_EV_DISCONNECTED) && find_ev(&P, RDMA_EV_DISCONNECTED));
	/* Each side says who ended it: the peer's Terminate, our own. */
	ck_assert_int_eq(find_ev(&A, RDMA_EV_DISCONNECTED)->status, -EREMOTEIO);
	ck_assert_int_eq(find_ev(&P, RDMA_EV_DISCONNECTED)->status, -EPROTO);
	/* One Terminate on the wire, with the RFC's layer, type and code. */
	ck_assert_uint_eq(stats(&P).terminates_sent, 1);
	ck_assert_uint_eq(stats(&A).terminates_received, 1);
	ck_assert_uint_eq(stats(&A).terminates_sent, 0);
	assert_term(stats(&P).term_sent, t[_i].layer, t[_i].etype, t[_i].ecode);
	assert_term(stats(&A).term_received, t[_i].layer, t[_i].etype, t[_i].ecode);

	RUN_UNTIL(A.nwc == 1);
	ck_assert_uint_eq(A.wc[0].wr_id, 1);
	if (t[_i].op == RDMA_WR_RDMA_READ)
		ck_assert_int_eq(A.wc[0].status, RDMA_WC_REM_ACCESS_ERR);
	else
		ck_assert_int_eq(A.wc[0].status, RDMA_WC_SUCCESS);
	/* Nothing placed, and both sides now flush. */
	for (i = 0; i < 4096; i++)
		ck_assert_uint_eq(reg.p[i], 0);
	post_send(&A, 2, RDMA_WR_SEND, &sg, 1, 0, 0);
	RUN_UNTIL(A.nwc == 2 && P.nwc == 2);
	ck_assert_uint_eq(A.wc[1].wr_id, 2);
	ck_assert_int_eq(A.wc[1].status, RDMA_WC_WR_FLUSH_ERR);
	for (i = 0; i < 2; i++) {
		ck_assert_uint_eq(P.wc[i].wr_id, 50 + (unsigned int)i);
		flushed += P.wc[i].status == RDMA_WC_WR_FLUSH_ERR;
	}
	ck_assert_int_eq(flushed, 2);
	buf_free(&reg);
	buf_free(&rbuf);
	buf_free(&loc);
}
END_TEST

/* RFC 5041 §7.2: a Send with no receive posted, and one too long for it. */
START_TEST(test_send_no_recv)
{
	struct buf src, dst;
	struct rdma_sge sg;

	pair_init(NULL, NULL);
	connect_pair();
	src = buf_new(&A, 100, 0);
	dst = buf_new(&P, 100, RDMA_ACCESS_LOCAL_WRITE);
	if (_i == 1) {
		sg = sge(&dst, 0, 10);
		post_recv(&P, 5, &sg, 1);
	}
	sg = sge(&src, 0, 100);
	post_send(&A, 1, RDMA_WR_SEND, &sg, 1, 0, 0);
	RUN_UNTIL(find_ev(&A, RDMA_EV_DISCONNECTED) && find_ev(&P, RDMA_EV_DISCONNECTED));
	ck_assert_uint_eq(stats(&P).terminates_sent, 1);
	ck_assert_uint_eq(stats(&A).terminates_received, 1);
	assert_term(stats(&A).term_received, IWARP_TERM_DDP, IWARP_TERM_DDP_UNTAGGED,
		    _i ? IWARP_TERM_DDP_U_TOO_LONG : IWARP_TERM_DDP_U_NO_BUFFER);
	if (_i == 1) {
		RUN_UNTIL(P.nwc == 1);
		ck_assert_uint_eq(P.wc[0].wr_id, 5);
		ck_assert_int_eq(P.wc[0].status, RDMA_WC_LOC_LEN_ERR);
	}
	/* The sender's connection is in error: its next request flushes. */
	post_send(&A, 2, RDMA_WR_SEND, &sg, 1, 0, 0);
	RUN_UNTIL(A.nwc == 2);
	ck_assert_uint_eq(A.wc[0].wr_id, 1);
	ck_assert_uint_eq(A.wc[1].wr_id, 2);
	ck_assert_int_eq(A.wc[1].status, RDMA_WC_WR_FLUSH_ERR);
	buf_free(&src);
	buf_free(&dst);
}
END_TEST

/* Mixed Sends, Writes and Reads: completions in posting order. */
START_TEST(test_order)
{
	enum { N = 1000, SLOT = 64 };
	struct buf reg, loc, rd, rcv;
	struct rdma_sge sg;
	struct rdma_send_wr wr, *bad;
	int i, posted = 0, recvs = 0;

	pair_init(NULL, NULL);
	connect_pair();
	reg = buf_new(&P, N * SLOT,
		      RDMA_ACCESS_LOCAL_WRITE | RDMA_ACCESS_REMOTE_WRITE | RDMA_ACCESS_REMOTE_READ);
	rcv = buf_new(&P, N * SLOT, RDMA_ACCESS_LOCAL_WRITE);
	loc = buf_new(&A, N * SLOT, 0);
	rd = buf_new(&A, N * SLOT, RDMA_ACCESS_LOCAL_WRITE);
	for (i = 0; i < N; i++)
		memset(loc.p + i * SLOT, i & 0xff, SLOT);
	for (i = 0; i < N; i++) {
		if (i % 3 == 0) {
			sg = sge(&rcv, (size_t)recvs * SLOT, SLOT);
			post_recv(&P, (uint64_t)recvs++, &sg, 1);
		}
	}
	while (posted < N) {
		i = posted;
		wr = (struct rdma_send_wr){.wr_id = (uint64_t)i, .num_sge = 1, .sg_list = &sg};
		wr.flags = RDMA_SEND_SIGNALED;
		/* Write slot i, read back slot i - 1, send slot i. */
		switch (i % 3) {
		case 0:
			sg = sge(&loc, (size_t)i * SLOT, 1 + i % SLOT);
			wr.opcode = RDMA_WR_SEND;
			break;
		case 1:
			sg = sge(&loc, (size_t)i * SLOT, SLOT);
			wr.opcode = RDMA_WR_RDMA_WRITE;
			wr.remote_addr = raddr(&reg, (size_t)i * SLOT);
			wr.rkey = rdma_mr_rkey(reg.mr);
			break;
		default:
			sg = sge(&rd, (size_t)i * SLOT, SLOT);
			wr.opcode = RDMA_WR_RDMA_READ;
			wr.remote_addr = raddr(&reg, (size_t)(i - 1) * SLOT);
			wr.rkey = rdma_mr_rkey(reg.mr);
			break;
		}
		if (rdma_conn_post_send(A.conn, &wr, &bad) == -ENOMEM) {
			ck_assert_ptr_eq(bad, &wr);
			/* Send queue full: let some complete. */
			sched_run_once(s);
			continue;
		}
		posted++;
	}
	RUN_UNTIL(A.nwc == N && P.nwc == recvs);
	for (i = 0; i < N; i++) {
		ck_assert_uint_eq(A.wc[i].wr_id, (uint64_t)i);
		ck_assert_int_eq(A.wc[i].status, RDMA_WC_SUCCESS);
		if (i % 3 == 2)
			ck_assert(!memcmp(rd.p + i * SLOT, loc.p + (i - 1) * SLOT, SLOT));
	}
	for (i = 0; i < recvs; i++) {
		ck_assert_uint_eq(P.wc[i].wr_id, (uint64_t)i);
		ck_assert_uint_eq(P.wc[i].byte_len, 1 + (3 * i) % SLOT);
		ck_assert_uint_eq(rcv.p[i * SLOT], (3 * i) & 0xff);
	}
	buf_free(&reg);
	buf_free(&rcv);
	buf_free(&loc);
	buf_free(&rd);
}
END_TEST

/* A disconnect with work outstanding on both sides flushes all of it. */
START_TEST(test_disconnect_flush)
{
	struct buf a, p;
	struct rdma_sge sg;
	int i;

	pair_init(NULL, NULL);
	connect_pair();
	a = buf_new(&A, 4096, RDMA_ACCESS_LOCAL_WRITE);
	p = buf_new(&P, 4096, RDMA_ACCESS_LOCAL_WRITE);
	sg = sge(&p, 0, 64);
	for (i = 0; i < 5; i++)
		post_recv(&P, 10 + (uint64_t)i, &sg, 1);
	sg = sge(&a, 0, 64);
	for (i = 0; i < 3; i++)
		post_recv(&A, 20 + (uint64_t)i, &sg, 1);
	/* Posted, and disconnected before the loop sends them. */
	for (i = 0; i < 4; i++)
		post_send(&A, 30 + (uint64_t)i, i & 1 ? RDMA_WR_RDMA_READ : RDMA_WR_SEND, &sg, 1,
			  raddr(&p, 0), rdma_mr_rkey(p.mr));
	ck_assert_int_eq(rdma_conn_disconnect(A.conn), 0);
	RUN_UNTIL(A.nwc == 7 && P.nwc == 5 && find_ev(&P, RDMA_EV_DISCONNECTED));
	for (i = 0; i < 7; i++)
		ck_assert_int_eq(A.wc[i].status, RDMA_WC_WR_FLUSH_ERR);
	for (i = 0; i < 4; i++)
		ck_assert_uint_eq(A.wc[i].wr_id, 30 + (uint64_t)i);
	for (i = 0; i < 5; i++) {
		ck_assert_uint_eq(P.wc[i].wr_id, 10 + (uint64_t)i);
		ck_assert_int_eq(P.wc[i].status, RDMA_WC_WR_FLUSH_ERR);
	}
	ck_assert_int_eq(find_ev(&P, RDMA_EV_DISCONNECTED)->status, 0);
	/* Later work flushes too, on both sides. */
	sg = sge(&p, 0, 64);
	post_recv(&P, 99, &sg, 1);
	RUN_UNTIL(P.nwc == 6);
	ck_assert_int_eq(P.wc[5].status, RDMA_WC_WR_FLUSH_ERR);
	buf_free(&a);
	buf_free(&p);
}
END_TEST

/*
 * A disconnect in the middle of a large Send: the FPDU being written is
 * finished from a copy (the flushed request's memory is the caller's
 * again), the stream ends between two FPDUs, both sides flush.
 */
START_TEST(test_disconnect_midway)
{
	enum { LEN = 32 * MiB };
	struct buf a, p;
	struct rdma_sge sg;

	pair_init(NULL, NULL);
	connect_pair();
	a = buf_new(&A, LEN, 0);
	p = buf_new(&P, LEN, RDMA_ACCESS_LOCAL_WRITE);
	sg = sge(&p, 0, LEN);
	post_recv(&P, 1, &sg, 1);
	sg = sge(&a, 0, LEN);
	post_send(&A, 2, RDMA_WR_SEND, &sg, 1, 0, 0);
	RUN_UNTIL(stats(&P).rx_bytes > 2 * MiB);
	ck_assert_int_eq(rdma_conn_disconnect(A.conn), 0);
	/* The caller may reuse the memory at once. */
	memset(a.p, 0, LEN);
	RUN_UNTIL(A.nwc == 1 && P.nwc == 1 && find_ev(&A, RDMA_EV_DISCONNECTED) &&
		  find_ev(&P, RDMA_EV_DISCONNECTED));
	ck_assert_int_eq(A.wc[0].status, RDMA_WC_WR_FLUSH_ERR);
	ck_assert_int_eq(P.wc[0].status, RDMA_WC_WR_FLUSH_ERR);
	ck_assert_int_eq(find_ev(&P, RDMA_EV_DISCONNECTED)->status, 0);
	ck_assert_uint_eq(stats(&P).terminates_sent + stats(&A).terminates_sent, 0);
	buf_free(&a);
	buf_free(&p);
}
END_TEST

/* Completion queues */

static bool fd_readable(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, 0) == 1;
}

static void count_notify(void *arg)
{
	(*(int *)arg)++;
}

/* One-shot: an armed CQ signals once, for a completion added after it. */
START_TEST(test_cq_arm)
{
	struct rdma_qp_attr attr;
	struct rdma_conn_attr p = {0};
	struct rdma_cq *cq;
	struct rdma_wc wc[4];
	struct buf src, dst;
	struct rdma_sge sg;
	int i, notified = 0;

	pair_init(NULL, NULL);
	/* A's sends complete on a CQ no poller drives. */
	ck_assert_int_eq(rdma_cq_create(A.dev, 16, &cq), 0);
	attr = qp_attr(&A);
	attr.send_cq = cq;
	ck_assert_int_eq(rdma_conn_create(A.dev, (struct sockaddr *)&L_addr, sizeof(L_addr), &attr,
					  &p, NULL, &A.conn),
			 0);
	take_request();
	ck_assert_int_eq(rdma_conn_accept(P.conn, NULL), 0);
	RUN_UNTIL(find_ev(&A, RDMA_EV_ESTABLISHED) && find_ev(&P, RDMA_EV_ESTABLISHED));
	src = buf_new(&A, 64, 0);
	dst = buf_new(&P, 64 * 8, RDMA_ACCESS_LOCAL_WRITE);
	for (i = 0; i < 8; i++) {
		sg = sge(&dst, (size_t)i * 64, 64);
		post_recv(&P, (uint64_t)i, &sg, 1);
	}
	sg = sge(&src, 0, 64);

	/* Unarmed: a completion, no notification. */
	post_send(&A, 1, RDMA_WR_SEND, &sg, 1, 0, 0);
	RUN_UNTIL(P.nwc == 1);
	ck_assert(!fd_readable(rdma_cq_fd(cq)));
	ck_assert_int_eq(rdma_cq_ack(cq), -EAGAIN);
	/* Armed with one queued: still nothing for the queued one. */
	ck_assert_int_eq(rdma_cq_arm(cq), 0);
	ck_assert(!fd_readable(rdma_cq_fd(cq)));
	/* A new one: one notification. */
	post_send(&A, 2, RDMA_WR_SEND, &sg, 1, 0, 0);
	RUN_UNTIL(P.nwc == 2);
	ck_assert(fd_readable(rdma_cq_fd(cq)));
	/* And one only, for two completions: it is one-shot. */
	post_send(&A, 3, RDMA_WR_SEND, &sg, 1, 0, 0);
	RUN_UNTIL(P.nwc == 3);
	ck_assert_int_eq(rdma_cq_ack(cq), 1);
	ck_assert(!fd_readable(rdma_cq_fd(cq)));
	ck_assert_int_eq(rdma_cq_poll(cq, wc, 4), 3);
	for (i = 0; i < 3; i++)
		ck_assert_uint_eq(wc[i].wr_id, (uint64_t)i + 1);
	ck_assert_int_eq(rdma_cq_poll(cq, wc, 4), 0);

	/* rdma_cq_set_notify(): the same one-shot notification, by a call
	 * and not through the fd. */
	ck_assert_int_eq(rdma_cq_set_notify(cq, count_notify, &notified), 0);
	post_send(&A, 4, RDMA_WR_SEND, &sg, 1, 0, 0);
	RUN_UNTIL(P.nwc == 4);
	ck_assert_int_eq(notified, 0); /* not armed */
	ck_assert_int_eq(rdma_cq_arm(cq), 0);
	post_send(&A, 5, RDMA_WR_SEND, &sg, 1, 0, 0);
	RUN_UNTIL(P.nwc == 5);
	post_send(&A, 6, RDMA_WR_SEND, &sg, 1, 0, 0);
	RUN_UNTIL(P.nwc == 6);
	ck_assert_int_eq(notified, 1);
	ck_assert(!fd_readable(rdma_cq_fd(cq)));
	ck_assert_int_eq(rdma_cq_poll(cq, wc, 4), 3);

	rdma_conn_destroy(A.conn);
	A.conn = NULL;
	rdma_cq_destroy(cq);
	buf_free(&src);
	buf_free(&dst);
}
END_TEST

/*
 * The re-arm race, with a real poller: a completion that lands between the
 * poller's last poll and its arm raises no notification, and the poller's
 * drain finds it. The completion is made inside arm() by posting to a
 * connection in error, which completes at once.
 */
static struct rdma_conn *dead;
static int race;
static struct buf race_buf;

static int race_arm(struct poller *p)
{
	struct rdma_sge sg = sge(&race_buf, 0, 8);
	struct rdma_recv_wr wr = {.wr_id = 77, .sg_list = &sg, .num_sge = 1}, *bad;

	if (race) {
		race = 0;
		ck_assert_int_eq(rdma_conn_post_recv(dead, &wr, &bad), 0);
	}
	return cq_arm(p);
}

static const struct poller_ops race_ops = {
	.poll = cq_poll,
	.arm = race_arm,
	.ack = cq_ack,
};

START_TEST(test_cq_poller_race)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct rdma_conn_attr p = {0};
	struct rdma_qp_attr attr;
	struct rdma_sge sg;
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	side_init(&A, NULL);
	side_init(&P, NULL);
	/* A connection in error: refused. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	/* A new CQ for P (the fixture's poller armed the old one), driven
	 * by a poller that makes the race. */
	poller_disable(&P.poller);
	rdma_cq_destroy(P.cq);
	ck_assert_int_eq(rdma_cq_create(P.dev, 64, &P.cq), 0);
	poller_init(&P.poller, s, &race_ops, rdma_cq_fd(P.cq), 16);
	attr = qp_attr(&P);
	ck_assert_int_eq(rdma_conn_create(P.dev, (struct sockaddr *)&sin, sizeof(sin), &attr, &p,
					  NULL, &P.conn),
			 0);
	dead = P.conn;
	RUN_UNTIL(find_ev(&P, RDMA_EV_CONNECT_ERROR));
	race_buf = buf_new(&P, 8, RDMA_ACCESS_LOCAL_WRITE);

	race = 1;
	ck_assert_int_eq(poller_enable(&P.poller), 0);
	RUN_UNTIL(P.nwc == 1);
	ck_assert_uint_eq(P.wc[0].wr_id, 77);
	ck_assert_int_eq(P.wc[0].status, RDMA_WC_WR_FLUSH_ERR);
	/* Found by the drain after arming, with no notification. */
	ck_assert_uint_eq(P.poller.stats.notifications, 0);
	ck_assert_uint_eq(P.poller.stats.drain_completions, 1);
	run_for(5 * 1000000);
	ck_assert_int_eq(P.poller.state, POLLER_ARMED);

	/* A completion now, armed: the notification brings it. */
	sg = sge(&race_buf, 0, 8);
	post_recv(&P, 78, &sg, 1);
	RUN_UNTIL(P.nwc == 2);
	ck_assert_uint_eq(P.wc[1].wr_id, 78);
	ck_assert_uint_eq(P.poller.stats.notifications, 1);
	buf_free(&race_buf);
}
END_TEST

START_TEST(test_post_errors)
{
	struct buf b, pb;
	struct rdma_sge sg[9];
	struct rdma_send_wr wr = {.num_sge = 1, .sg_list = sg}, wr2, *bad = NULL;
	struct rdma_recv_wr rwr = {.num_sge = 9, .sg_list = sg}, *rbad = NULL;
	struct rdma_mr *mr;

	pair_init(NULL, NULL);
	connect_pair();
	b = buf_new(&A, 64, RDMA_ACCESS_LOCAL_WRITE);
	pb = buf_new(&P, 64, RDMA_ACCESS_LOCAL_WRITE);
	sg[0] = sge(&b, 0, 64);
	/* verbs' rules: remote write needs local write; no zero length. */
	ck_assert_int_eq(rdma_mr_create(A.pd, b.p, 64, RDMA_ACCESS_REMOTE_WRITE, &mr), -EINVAL);
	ck_assert_int_eq(rdma_mr_create(A.pd, b.p, 0, 0, &mr), -EINVAL);
	wr.opcode = (enum rdma_wr_opcode)42;
	ck_assert_int_eq(rdma_conn_post_send(A.conn, &wr, &bad), -EINVAL);
	ck_assert_ptr_eq(bad, &wr);
	/* A chain stops at the bad one; those before it are posted. */
	wr2 = (struct rdma_send_wr){.wr_id = 1,
				    .num_sge = 1,
				    .sg_list = sg,
				    .next = &wr,
				    .flags = RDMA_SEND_SIGNALED,
				    .opcode = RDMA_WR_SEND};
	wr.num_sge = 2;
	wr.opcode = RDMA_WR_RDMA_READ; /* iWARP: one SGE */
	ck_assert_int_eq(rdma_conn_post_send(A.conn, &wr2, &bad), -EINVAL);
	ck_assert_ptr_eq(bad, &wr);
	ck_assert_int_eq(rdma_conn_post_recv(A.conn, &rwr, &rbad), -EINVAL);
	ck_assert_ptr_eq(rbad, &rwr);
	/* A wrong lkey: a local protection error, after the Send before it
	 * went; then the connection is in error. */
	sg[1] = sge(&pb, 0, 64);
	post_recv(&P, 3, &sg[1], 1);
	sg[0].lkey ^= 0x100;
	post_send(&A, 2, RDMA_WR_SEND, sg, 1, 0, 0);
	RUN_UNTIL(A.nwc == 2 && P.nwc == 1 && find_ev(&P, RDMA_EV_DISCONNECTED));
	ck_assert_uint_eq(A.wc[0].wr_id, 1);
	ck_assert_int_eq(A.wc[0].status, RDMA_WC_SUCCESS);
	ck_assert_uint_eq(A.wc[1].wr_id, 2);
	ck_assert_int_eq(A.wc[1].status, RDMA_WC_LOC_PROT_ERR);
	ck_assert_int_eq(P.wc[0].status, RDMA_WC_SUCCESS);
	/* A told the peer: RDMAP, local catastrophic. */
	ck_assert_uint_eq(stats(&P).terminates_received, 1);
	assert_term(stats(&P).term_received, IWARP_TERM_RDMAP, IWARP_TERM_RDMAP_CATASTROPHIC,
		    IWARP_TERM_RDMAP_UNSPECIFIED);
	buf_free(&b);
	buf_free(&pb);
}
END_TEST

static Suite *rdma_soft_suite(void)
{
	Suite *su = suite_create("rdma_soft");
	TCase *tc = tcase_create("soft");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_provider_select);
	tcase_add_test(tc, test_connect_pdata);
	tcase_add_test(tc, test_reject_pdata);
	tcase_add_test(tc, test_connect_refused);
	tcase_add_loop_test(tc, test_mpa_wire, 0, 2);
	tcase_add_test(tc, test_mpa_bad_reply);
	tcase_add_test(tc, test_mpa_markers_declined);
	tcase_add_test(tc, test_adopt);
	tcase_add_test(tc, test_raw_initiator);
	tcase_add_loop_test(tc, test_send_sizes, 0, 5);
	tcase_add_test(tc, test_send_inv);
	tcase_add_test(tc, test_write_read);
	tcase_add_loop_test(tc, test_read_ahead, 0, 3);
	tcase_add_test(tc, test_raw_read_ahead);
	tcase_add_loop_test(tc, test_access_errors, 0, 6);
	tcase_add_loop_test(tc, test_send_no_recv, 0, 2);
	tcase_add_test(tc, test_order);
	tcase_add_test(tc, test_disconnect_flush);
	tcase_add_test(tc, test_disconnect_midway);
	tcase_add_test(tc, test_cq_arm);
	tcase_add_test(tc, test_cq_poller_race);
	tcase_add_test(tc, test_post_errors);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(rdma_soft_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
