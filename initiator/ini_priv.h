/*
 * ini_priv: what the initiator's files share (ini.c: sessions, commands
 * and recovery; ini_conn.c: the connection, framing and the send queue;
 * ini_login.c: login and discovery). Nothing outside initiator/ sees it.
 */
#ifndef ISERKIT_INI_PRIV_H
#define ISERKIT_INI_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/poller.h"
#include "common/sched.h"
#include "common/xport/tcp.h"
#include "chap.h"
#include "ini.h"
#include "pdu.h"
#include "text.h"

struct rdma_dev;
struct rdma_pd;
struct rbuf_pool;
struct iser_conn;
struct iser_hdr_ctrl;

#define NS 1000000000ull
#define INI_MAX_RECV_DSL (256 * 1024) /* what we declare */
#define INI_LOGIN_DSL 8192	      /* RFC 7143 §13.12: the limit during login */
/* iSER: receives beyond one per command, for what the target sends
 * unasked (NOP-In pings, asynchronous messages): declared to it as
 * MaxOutstandingUnexpectedPDUs (RFC 7145 §6.7). */
#define INI_ISER_UNEXPECTED 16

enum ini_cmd_state {
	CMD_QUEUED,  /* waiting for the window, the depth or a connection */
	CMD_SENT,    /* on the wire, no response yet */
	CMD_ABORTING /* ABORT TASK sent after a timeout */
};

enum conn_state {
	CONN_IDLE,	 /* no socket */
	CONN_CONNECTING, /* TCP connect in progress */
	CONN_LOGIN,
	CONN_FFP,
	CONN_LOGOUT, /* Logout Request sent */
};

struct ini_conn {
	enum conn_state state;
	/* iSER: the device, kept across reconnects with its registered
	 * buffers; the connection; one shut down, destroyed from reap_ev
	 * since it may be in the middle of a callback. */
	struct rdma_dev *rdma;
	struct rdma_pd *pd;
	struct rbuf_pool *pool;
	struct sched_fd rdma_sfd;
	struct iser_conn *iser, *dead;
	struct sched_event reap_ev;
	int fd;
	int wfd;	       /* dup of fd: EPOLLOUT while the send side blocks */
	struct sched_fd wsfd;  /* on wfd */
	struct poller poller;  /* the socket as a completion source */
	struct tcp_stream tcp; /* framing, digests, the send queue */
	uint32_t max_send_dsl; /* the target's MaxRecvDataSegmentLength */
	bool tx_blocked;
	struct sched_event tx_ev;
	uint64_t last_rx_ns;
	uint64_t ping_sent_ns; /* 0: no ping outstanding */
};

/* The login in progress on the connection. */
struct ini_login {
	struct text_neg neg;
	struct chap_initiator chap;
	int stage;     /* CSG: 0 security, 1 operational */
	int chap_step; /* 0 none, 1 CHAP_A sent, 2 CHAP_R sent, 3 done */
	bool transit;  /* the last request had T=1 */
	uint8_t *acc;  /* response text gathered over C=1 PDUs */
	uint32_t acc_len;
	uint32_t itt;
};

struct ini_session {
	struct sched *sched;
	struct ini_opts o; /* strings below are owned copies */
	char *host, *target, *initiator, *user, *secret, *tuser, *tsecret;
	char err[256];
	uint8_t isid[6];
	uint16_t tsih;
	bool discovery;

	struct ini_conn conn;
	struct ini_login login;
	struct text_params params; /* agreed at the last login */

	uint32_t cmd_sn, exp_cmd_sn, max_cmd_sn;
	uint32_t exp_stat_sn;
	uint32_t next_itt;

	struct ini_cmd queued;	 /* list head: waiting to be sent */
	struct ini_cmd inflight; /* list head: sent, waiting for a response */
	unsigned int nsent;

	/* login / recovery */
	bool logged_in_once;
	bool recovering;
	bool failed_fast; /* recovery_timeout passed: I/O fails with -EIO */
	bool closing;	  /* logout asked or destroyed: no reconnects */
	uint64_t recovery_start_ns;
	unsigned int backoff_ms;
	struct sched_timer reconnect_timer;
	struct sched_timer tick; /* 1 s: keepalive, command and login timeouts */
	uint64_t login_deadline_ns;
	struct sched_event fail_ev; /* completes failed commands outside callers */
	struct ini_cmd failed;	    /* list head: to complete from fail_ev */

	void (*login_cb)(struct ini_session *, int, void *);
	void *login_arg;
	void (*logout_cb)(struct ini_session *, int, void *);
	void *logout_arg;
	void (*disc_cb)(struct ini_session *, int, const struct ini_target *, size_t, void *);
	void *disc_arg;
	uint32_t disc_itt;
	uint8_t *disc_buf;
	uint32_t disc_len;
	uint32_t logout_itt;
	uint32_t ping_itt;
	uint32_t tmf_itt; /* PDU_RSVD_TAG: no TMF outstanding */
	uint8_t tmf_function;
	uint64_t tmf_sent_ns;
	uint64_t logout_sent_ns; /* 0: no Logout Request sent */

	struct ini_stats st;
};

/* ini_conn.c */
void conn_init(struct ini_session *sess);
int conn_open(struct ini_session *sess);
void conn_shut(struct ini_session *sess);
int conn_send(struct ini_session *sess, struct pdu_bhs *bhs, const void *data, uint32_t len,
	      void *owned);
int conn_send_cmd(struct ini_session *sess, struct pdu_bhs *bhs, const struct iser_hdr_ctrl *ctrl,
		  const void *data, uint32_t len);
void conn_fini(struct ini_session *sess);
void conn_rx_pdu(struct ini_session *sess, const struct pdu *p);

/* ini_iser.c: the connection over iSER */
void conn_iser_init(struct ini_session *sess);
int conn_iser_open(struct ini_session *sess, const struct sockaddr *sa, socklen_t salen);
void conn_iser_shut(struct ini_session *sess);
int conn_iser_send(struct ini_session *sess, struct pdu_bhs *bhs, const struct iser_hdr_ctrl *ctrl,
		   const void *data, uint32_t len);
const struct poller *conn_poller(const struct ini_session *sess);
void conn_set_ffp(struct ini_session *sess);

/* ini_login.c */
int login_start(struct ini_session *sess);
void login_rsp(struct ini_session *sess, const struct pdu *p);
void login_reset(struct ini_session *sess);
void disc_text_rsp(struct ini_session *sess, const struct pdu *p);
void disc_fail(struct ini_session *sess, int err);

/* ini.c: called by the connection */
void sess_connected(struct ini_session *sess);
void sess_logged_in(struct ini_session *sess);
void sess_conn_lost(struct ini_session *sess, int err, const char *why);
void sess_pdu(struct ini_session *sess, const struct pdu *p);
void *sess_place(struct ini_session *sess, const struct pdu *p);
void sess_update_sn(struct ini_session *sess, const struct pdu_bhs *bhs);
void sess_fill_sn(struct ini_session *sess, struct pdu_bhs *bhs, bool immediate);
void sess_error(struct ini_session *sess, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
