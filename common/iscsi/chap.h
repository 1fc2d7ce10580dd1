/*
 * chap: CHAP authentication in the security stage of an iSCSI login
 * (RFC 7143 §12.1.3, RFC 1994; secret rules of RFC 7143 §9.2.1).
 *
 * The exchange, one key group per Login PDU:
 *
 *   initiator                          target
 *   CHAP_A=7,5                   ->                   chap_initiator_offer()
 *                                <-   CHAP_A, CHAP_I, CHAP_C
 *                                     chap_target_challenge()
 *   CHAP_N, CHAP_R [CHAP_I, CHAP_C]   ->              chap_initiator_respond()
 *                                <-   [CHAP_N, CHAP_R] (mutual only)
 *                                     chap_target_verify()
 *   chap_initiator_verify()
 *
 * Response = H(Identifier || secret || Challenge) (RFC 1994 §4.1), with
 * H = MD5 (CHAP_A=5, RFC 1994) or SHA-256 (CHAP_A=7); the numbers are
 * those of the IANA "PPP Authentication Algorithms" registry, which
 * RFC 7143 §12.1.3 refers to through RFC 1994. Our challenges are as long
 * as the digest (16 or 32 bytes), random from getrandom(2), and so is
 * the identifier; we send CHAP_C and CHAP_R in hex and accept hex or
 * base64 (RFC 7143 §6.1 binary-value).
 *
 * Each side is a small state machine embedded in the login code's
 * connection state and set up by its *_init(). The name and secret
 * strings are borrowed, not copied: they must stay valid and unchanged
 * until the exchange ends. A challenge is good for one answer: after any
 * error the exchange is over and every later call returns -EPROTO (start
 * again with *_init() on a new login).
 *
 * The functions read the peer's keys from a parsed struct text_list and
 * append ours to a struct text_buf; on error nothing is appended. They
 * never allocate or print; they may be called from any thread, on
 * objects the caller owns. getrandom(2) may block only before the
 * kernel's random pool is first initialized, early in boot.
 *
 * Errors, the same on both sides:
 *   -ENOENT   a key the step needs is missing (CHAP_A; CHAP_I, CHAP_C;
 *             CHAP_N, CHAP_R; or one of CHAP_I/CHAP_C without the other)
 *   -EINVAL   a malformed value: CHAP_A not a comma-separated list of
 *             numbers, CHAP_I not a number or above 255, CHAP_C or CHAP_R
 *             not hex or base64, CHAP_C longer than 1024 bytes
 *             (RFC 7143 §12.1.3), CHAP_R not exactly one digest long
 *   -ENOTSUP  no algorithm in common (the target's answer to that is
 *             "CHAP_A=Reject"), or the target chose one we did not offer
 *             or answered CHAP_A=Reject
 *   -EPERM    CHAP_N is not the name we expect
 *   -EACCES   CHAP_R is not the right response (compared in constant time)
 *   -ELOOP    the initiator's challenge is the target's own, reflected
 *             (RFC 7143 §9.2.1)
 *   -ENOKEY   the initiator asks the target to authenticate itself and
 *             the target has no mutual name and secret
 *   -ENOSPC   the keys we produce do not fit in the text_buf
 *   -EPROTO   a call out of order, or after the exchange ended
 *   other     an error of getrandom(2), negated (-ENOSYS)
 * The login code answers every one of them with "Authentication failure"
 * (RFC 7143 §12.1.3, status 0x0201) except -ENOSPC and getrandom errors,
 * which are ours ("Target error" 0x0300 on the target side).
 */
#ifndef ISERKIT_CHAP_H
#define ISERKIT_CHAP_H

#include <stdbool.h>
#include <stdint.h>

#include "text.h"

/* CHAP_A values: IANA "PPP Authentication Algorithms" */
#define CHAP_A_MD5 5	/* RFC 1994; every initiator offers it, RFC 7143 §12.1.3 */
#define CHAP_A_SHA256 7 /* CHAP with SHA-256 */

/* Masks of algorithms a side accepts: bit n allows CHAP_A=n. */
#define CHAP_ALLOW(alg) (1u << (alg))
#define CHAP_ALLOW_ALL (CHAP_ALLOW(CHAP_A_MD5) | CHAP_ALLOW(CHAP_A_SHA256))

/*
 * Secret lengths, bytes. RFC 7143 §9.2.1: a node should not send a CHAP
 * response unless the secret has at least 96 bits (or IPsec protects the
 * connection, which we never assume), and implementations must accept
 * random secrets of up to 128 bits.
 */
#define CHAP_SECRET_MIN 12
#define CHAP_SECRET_MAX 255

#define CHAP_DIGEST_MAX 32 /* SHA-256; also our longest challenge */

enum chap_state {
	CHAP_S_START,
	CHAP_S_SENT,   /* target: challenge sent; initiator: CHAP_A offered */
	CHAP_S_ANSWER, /* initiator: response sent, waiting for the target's */
	CHAP_S_DONE,
	CHAP_S_FAILED,
};

/* The target's side (the authenticator). Fields are read-only outside chap.c. */
struct chap_target {
	const char *user;	   /* the initiator's CHAP_N */
	const char *secret;	   /* the initiator's secret */
	const char *mutual_user;   /* our CHAP_N for mutual CHAP, or NULL */
	const char *mutual_secret; /* our secret for mutual CHAP, or NULL */
	uint32_t allowed;	   /* CHAP_ALLOW() mask */
	enum chap_state state;
	uint8_t alg; /* CHAP_A chosen in chap_target_challenge() */
	uint8_t id;  /* our CHAP_I */
	bool mutual; /* the initiator asked us to authenticate ourselves */
	uint8_t challenge_len;
	uint8_t challenge[CHAP_DIGEST_MAX]; /* our CHAP_C */
};

/*
 * Set up @t to authenticate an initiator named @user that knows @secret,
 * with an algorithm of @allowed. @mutual_user and @mutual_secret, both or
 * neither, are what we answer when the initiator asks us to authenticate
 * ourselves. Returns 0 or -EINVAL: @allowed empty or holding an
 * algorithm we do not implement; @user or @secret NULL; a name empty,
 * longer than 255 bytes or holding a control character; a secret outside
 * CHAP_SECRET_MIN..CHAP_SECRET_MAX; only one of the mutual pair; or
 * @mutual_secret equal to @secret (RFC 7143 §9.2.1: a secret
 * authenticates one direction only).
 */
int chap_target_init(struct chap_target *t, uint32_t allowed, const char *user, const char *secret,
		     const char *mutual_user, const char *mutual_secret);

/*
 * Step 2 of RFC 7143 §12.1.3: take the first algorithm of the initiator's
 * CHAP_A list in @in that we allow, and append CHAP_A, CHAP_I and a new
 * CHAP_C to @out. Returns 0, -EPROTO (not the first call), -ENOENT,
 * -EINVAL, -ENOTSUP (then the caller answers CHAP_A=Reject and fails the
 * login), -ENOSPC or a getrandom(2) error.
 */
int chap_target_challenge(struct chap_target *t, const struct text_list *in, struct text_buf *out);

/*
 * Step 4: check the initiator's CHAP_N and CHAP_R in @in. If @in also
 * holds CHAP_I and CHAP_C (mutual CHAP), append our CHAP_N and CHAP_R to
 * @out. Returns 0 when the initiator is authenticated (and our answer is
 * in @out), or -EPROTO (no challenge sent, or called again), -ENOENT,
 * -EINVAL, -ENOKEY, -ELOOP, -EPERM, -EACCES, -ENOSPC.
 */
int chap_target_verify(struct chap_target *t, const struct text_list *in, struct text_buf *out);

/* The initiator's side. Fields are read-only outside chap.c. */
struct chap_initiator {
	const char *user;	   /* our CHAP_N */
	const char *secret;	   /* our secret */
	const char *mutual_user;   /* the target's CHAP_N, or NULL for one-way CHAP */
	const char *mutual_secret; /* the target's secret, or NULL */
	uint32_t allowed;	   /* CHAP_ALLOW() mask */
	enum chap_state state;
	uint8_t alg; /* CHAP_A the target chose */
	uint8_t id;  /* our CHAP_I, mutual CHAP only */
	uint8_t challenge_len;
	uint8_t challenge[CHAP_DIGEST_MAX]; /* our CHAP_C, mutual CHAP only */
};

/*
 * Set up @ini to authenticate as @user with @secret, offering the
 * algorithms of @allowed. With @mutual_user and @mutual_secret (both or
 * neither) we also authenticate the target: it must answer as
 * @mutual_user with @mutual_secret. Returns 0 or -EINVAL, for the reasons
 * of chap_target_init() or an @allowed without CHAP_A_MD5 (RFC 7143
 * §12.1.3: initiators always offer it).
 */
int chap_initiator_init(struct chap_initiator *ini, uint32_t allowed, const char *user,
			const char *secret, const char *mutual_user, const char *mutual_secret);

/*
 * Step 1: append CHAP_A with our algorithms, strongest first ("7,5" for
 * CHAP_ALLOW_ALL). Returns 0, -EPROTO (not the first call) or -ENOSPC.
 */
int chap_initiator_offer(struct chap_initiator *ini, struct text_buf *out);

/*
 * Step 3: take the target's CHAP_A, CHAP_I and CHAP_C from @in and append
 * our CHAP_N and CHAP_R to @out, then, for mutual CHAP, our own CHAP_I and
 * a new CHAP_C. Returns 0, -EPROTO, -ENOENT, -EINVAL, -ENOTSUP, -ENOSPC
 * or a getrandom(2) error.
 */
int chap_initiator_respond(struct chap_initiator *ini, const struct text_list *in,
			   struct text_buf *out);

/*
 * Step 5: for mutual CHAP, check the target's CHAP_N and CHAP_R in @in;
 * for one-way CHAP there is nothing to check and @in is not read.
 * Returns 0 when the target is authenticated (or need not be), or
 * -EPROTO, -ENOENT, -EINVAL, -EPERM, -EACCES.
 */
int chap_initiator_verify(struct chap_initiator *ini, const struct text_list *in);

#endif
