/*
 * tgt: the running iSCSI target: its targets and LUNs, sessions,
 * connections and tasks. These structures are shared by the target's
 * own modules (portal, conn, login, session); nothing outside target/
 * sees them.
 *
 * Ownership: struct tgt owns the targets (and their LUNs), the portals and
 * every connection; a session is owned by its connections (freed with the
 * last); a task by its connection until its response is sent.
 * Everything runs on the one scheduler thread of struct tgt.
 */
#ifndef ISERKIT_TGT_H
#define ISERKIT_TGT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/sched.h"
#include "common/xport/tcp.h"
#include "pdu.h"
#include "text.h"
#include "scsi.h"

#define SESSION_MAX_CONNS 4 /* MaxConnections offered over TCP */

struct config;
struct config_target;
struct ioq;
struct rbuf;
struct rbuf_pool;
struct rdma_dev;
struct rdma_pd;
struct rdma_listener;
struct iser_conn;
struct iser_hdr_ctrl;
struct held_pdu;

struct tgt_target {
	const struct config_target *cfg;
	struct lun **luns;
	size_t nluns;
	struct scsi_target scsi;
};

struct tgt_portal {
	struct tgt *tgt;
	struct sched_fd sfd;
	int fd;			  /* -1 for an iSER portal on verbs */
	bool mpa;		  /* iSER on soft: MPA Requests go to iSER */
	struct rdma_listener *rl; /* iSER on verbs */
	char name[80];
};

/* The RDMA side, when a portal is iSER (target/iser.c). */
struct tgt_rdma {
	struct rdma_dev *dev;
	struct rdma_pd *pd;
	struct rbuf_pool *pool;	     /* task buffers, registered once */
	struct rdma_listener *adopt; /* soft: fed by the portals' sockets */
	struct sched_fd sfd;	     /* the device's connection events */
	unsigned int next_id;
};

struct tgt {
	struct config *cfg;
	struct sched *sched;
	struct ioq *ioq;
	struct tgt_target *targets;
	size_t ntargets;
	struct tgt_portal *portals;
	size_t nportals;
	struct tgt_rdma rdma;
	struct conn *conns; /* every connection, login phase included */
	struct session *sessions;
	uint16_t next_tsih;
	uint64_t next_nexus;
	bool stopping;
};

enum task_state {
	TASK_DATA_OUT, /* waiting for write data */
	TASK_EXEC,     /* in the SCSI layer */
	TASK_SENDING,  /* response queued */
};

/* A task management response held until the tasks it aborted, still in
 * the backing store, have finished (SAM-5 §7.1: no effect of an aborted
 * command after the function completes). */
struct tmf_wait {
	uint32_t itt;
	uint8_t response;
	unsigned int pending;
};

struct task {
	struct task *next;	 /* on the connection's list */
	struct tmf_wait *waiter; /* set when aborted while executing */
	struct conn *conn;
	enum task_state state;
	bool aborted;
	uint32_t itt;
	uint32_t cmd_sn;
	uint64_t lun_field;
	uint32_t edtl;
	uint32_t received;	  /* data-out bytes so far */
	uint32_t r2t_sn, data_sn; /* next R2TSN, next Data-In DataSN */
	uint32_t out_sn;	  /* next Data-Out DataSN of this sequence */
	uint32_t ttt;
	uint32_t r2t_offset; /* next offset to ask for */
	uint32_t r2t_outstanding;
	uint32_t unsolicited; /* bytes the initiator may send unasked */
	uint32_t sending;     /* txpdus in flight for this task */
	/* iSER: the initiator's buffers (RFC 7145 §9.2) and ours */
	bool rdma_reading; /* an RDMA READ of write data is in flight */
	struct rbuf *rb;
	int rx_kept; /* 1 + the receive its data is in (write data in place) */
	uint32_t write_stag, read_stag;
	uint64_t write_va, read_va;
	bool wsv, rsv;
	struct scsi_cmd cmd;
};

struct session {
	struct session *next;
	struct tgt *tgt;
	struct tgt_target *target; /* NULL for discovery */
	bool discovery;
	uint8_t isid[6];
	uint16_t tsih;
	char initiator[TEXT_NAME_MAX + 1];
	struct scsi_nexus nexus;
	struct text_params params; /* session-wide results */
	uint32_t exp_cmd_sn, max_cmd_sn;
	unsigned int nheld;  /* PDUs held on its connections for CmdSN order */
	bool releasing;	     /* session_release_held() is running */
	unsigned int ntasks; /* outstanding: bounds the CmdSN window */
	unsigned int nconns;
	bool iser; /* its connections' transport: one per session */
};

enum conn_phase {
	CONN_LOGIN,
	CONN_FFP,
	CONN_LOGOUT,
	CONN_CLOSING,
	CONN_GONE, /* being freed */
};

struct conn {
	struct conn *next;
	struct tgt *tgt;
	struct session *session;
	struct sched_fd sfd;
	int fd;
	char peer[64];	/* the initiator's address:port */
	char local[64]; /* the portal address it reached */
	enum conn_phase phase;
	uint16_t cid;
	uint32_t stat_sn, exp_stat_sn;
	uint32_t max_send_dsl; /* the initiator's: the most we may send */
	struct text_neg neg;
	struct login *login;		     /* login phase state; NULL afterwards */
	struct tcp_stream tcp;		     /* framing, digests, the send queue */
	struct iser_conn *iser;		     /* instead of tcp, over iSER */
	const struct iser_hdr_ctrl *rx_ctrl; /* iSER: of the PDU being handled */
	/* tcp: a data segment being received in place (session_place()):
	 * into this task's buffer, or into a buffer for the write command
	 * being received, which its task takes. */
	struct task *rx_place_task;
	void *rx_prebuf;
	bool tx_blocked;
	bool lingering;		  /* iSER: logged out, waiting for the initiator to go */
	struct sched_event rx_ev; /* go on reading after a budget */
	struct task *tasks;
	/* Commands whose CmdSN is ahead of the session's ExpCmdSN (sent on
	 * another connection after a command not here yet), and the Data-Out
	 * PDUs that follow them here: delivered in CmdSN order (session.c). */
	struct held_pdu *held, *held_last;
	size_t held_bytes;
	unsigned int nexec; /* tasks in the SCSI layer: they hold the conn */
	uint32_t next_ttt;
	struct sched_event tx_ev;
	struct sched_event close_ev;
	struct sched_timer timer; /* login deadline, then NOP-In pings */
	uint64_t last_rx_ns;
	uint64_t ping_sent_ns; /* 0: no ping waiting for its answer */
	uint32_t ping_ttt;
	uint64_t cmds; /* SCSI commands received */
};

/* iser.c: the RDMA device and its connection events */
int tgt_rdma_open(struct tgt *t, const struct sockaddr *sa, char *err, size_t errlen);
void tgt_rdma_close(struct tgt *t);
int tgt_rdma_listen(struct tgt *t, struct tgt_portal *p, const struct sockaddr *sa,
		    socklen_t salen);
void tgt_rdma_sniff(struct tgt_portal *p, int fd, const struct sockaddr *peer, socklen_t len);
int conn_rdma_read(struct conn *c, struct task *task);
unsigned int conn_iser_max_unexpected(void);
int conn_rdma_write(struct conn *c, struct task *task);
int task_buf_alloc(struct conn *c, struct task *task);
bool task_buf_in_place(struct conn *c, struct task *task, const uint8_t *data);
void task_buf_free(struct task *task);

/* portal.c */
int tgt_portals_open(struct tgt *t, char *err, size_t errlen);
void tgt_portals_close(struct tgt *t);

/* conn.c */
int conn_create(struct tgt *t, int fd, const struct sockaddr *peer, socklen_t peerlen);
int conn_create_iser(struct tgt *t, const char *peer, struct conn **ret);
void conn_iser_recv(struct conn *c, const struct pdu *p, const struct iser_hdr_ctrl *ctrl);
void conn_iser_done(struct conn *c, void *ref, int err);
bool conn_tx_pending(const struct conn *c);
/* "ADDR:PORT" ("[ADDR]:PORT" for IPv6) of @sa, for logs. */
void conn_peer_name(const struct sockaddr *sa, char *buf, size_t len);
void conn_log_stats(struct tgt *t);
void conn_close(struct conn *c, const char *why);
void conn_send(struct conn *c, struct pdu_bhs *bhs, const void *data, uint32_t len, void *owned,
	       struct task *task);
void conn_destroy_all(struct tgt *t);
void conn_enter_ffp(struct conn *c);
void conn_quiesce(struct conn *c);
uint32_t conn_default_max_recv_dsl(void);

/* login.c: handle one Login Request; may send a response, change phase or
 * close. */
void login_handle(struct conn *c, const struct pdu *pdu);
void login_free(struct conn *c);

/* session.c */
int session_attach(struct conn *c, struct tgt_target *target, bool discovery, const uint8_t isid[6],
		   uint16_t tsih, const char *initiator, uint32_t cmd_sn);
void session_handle(struct conn *c, const struct pdu *pdu);
void session_conn_gone(struct conn *c);
void *session_place(struct conn *c, const struct pdu *p);
void session_place_end(struct conn *c);
void session_fill_sn(struct conn *c, struct pdu_bhs *bhs);
struct tgt_target *tgt_find_target(struct tgt *t, const char *name);
void task_put(struct task *task);
void task_pulled(struct task *task, int err);

#endif
