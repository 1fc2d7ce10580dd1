/*
 * iser_hdr: the iSER header at the start of every RDMA Send (RFC 7145 §9)
 * and the iSER CM private data header of RDMA connection setup.
 *
 * 1. The 28-byte iSER header (RFC 7145 §9.1-9.4). All fields big-endian.
 *
 *    byte 0      opcode (high 4 bits) and flags (low 4 bits)
 *      control-type (0x1, §9.2): WSV 0x08, RSV 0x04, 0x03 reserved
 *      Hello        (0x2, §9.3): 0x0F reserved
 *      HelloReply   (0x3, §9.4): 0x0E reserved, REJ 0x01
 *    control-type:  bytes 1-3 reserved, 4-7 Write STag, 8-15 Write Base
 *                   Offset, 16-19 Read STag, 20-27 Read Base Offset
 *    Hello:         byte 1 MaxVer (high 4 bits) and MinVer (low 4 bits),
 *                   bytes 2-3 iSER-IRD, 4-27 reserved
 *    HelloReply:    byte 1 MaxVer and CurVer, bytes 2-3 iSER-ORD,
 *                   4-27 reserved
 *
 *    Linux's struct iser_ctrl (include/scsi/iser.h) is the same control-type
 *    layout: its ISCSI_CTRL 0x10, ISER_HELLO 0x20, ISER_HELLORPLY 0x30 are
 *    our opcodes shifted into byte 0, ISER_WSV/ISER_RSV are our flags, and
 *    its write_va/read_va are the Base Offsets. Its ISER_VER (0x10) is not
 *    the RFC 7145 version number (10 in a 4-bit field) and is not used here.
 *
 * 2. The 4-byte iSER CM header (Linux struct iser_cm_hdr, "from iSER Annex
 *    A12", the InfiniBand annex that defines iSER's connection setup; RFC
 *    7145 itself defines no CM message, §8.2 only says that on InfiniBand
 *    iSER parameters travel in the CM private data). It is the start of the
 *    RDMA CM private data of the initiator's connect request, where its bits
 *    say what the initiator does not support, and of the target's accept,
 *    where the same bits say what the target will not use (Linux names
 *    them ISERT_ZBVA_NOT_USED, ISERT_SEND_W_INV_NOT_USED).
 *
 *    byte 0      flags: ZBVA_NOT_SUP 0x80 (Base Offsets are virtual
 *                addresses, not zero-based), SEND_W_INV_NOT_SUP 0x40 (do
 *                not use Send with Invalidate, RFC 7145 §1.5.1, §7.3.2);
 *                0x3F reserved
 *    bytes 1-3   reserved
 *
 * Receiving: reserved fields and bits are ignored, as are the STag and Base
 * Offset of a control-type header whose valid flag is clear: RFC 7145 §9.2
 * to §9.4 say they MUST be zero on transmit and ignored on receive. Decoding
 * stores them as zero, so decode(encode(x)) == x for any decoded x.
 * Sending: reserved fields, and the STag and Base Offset behind a clear
 * valid flag, are written as zero whatever the struct holds.
 *
 * Nothing here allocates, prints or blocks; every function may be called
 * from any thread, on objects the caller owns.
 */
#ifndef ISERKIT_ISER_HDR_H
#define ISERKIT_ISER_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISER_HDR_LEN 28	    /* RFC 7145 §9.1 */
#define ISER_HDR_VERSION 10 /* MaxVer/MinVer/CurVer, RFC 7145 §9.3, §9.4 */
#define ISER_HDR_VER_MAX 15 /* versions are 4-bit fields */

/* Byte 0 flags, the values of Linux's ISER_WSV and ISER_RSV. */
#define ISER_HDR_WSV 0x08 /* control-type: Write STag valid */
#define ISER_HDR_RSV 0x04 /* control-type: Read STag valid */
#define ISER_HDR_REJ 0x01 /* HelloReply: the target rejects the connection */

#define ISER_HDR_CM_LEN 4		    /* Linux sizeof(struct iser_cm_hdr) */
#define ISER_HDR_CM_ZBVA_NOT_SUP 0x80	    /* Linux ISER_ZBVA_NOT_SUP */
#define ISER_HDR_CM_SEND_W_INV_NOT_SUP 0x40 /* Linux ISER_SEND_W_INV_NOT_SUP */

/* The high 4 bits of byte 0 (RFC 7145 §9.1); all other values unassigned. */
enum iser_hdr_opcode {
	ISER_HDR_CTRL = 0x1,	    /* iSCSI control-type PDU follows, §9.2 */
	ISER_HDR_HELLO = 0x2,	    /* iSER Hello, initiator to target, §9.3 */
	ISER_HDR_HELLO_REPLY = 0x3, /* iSER HelloReply, target to initiator, §9.4 */
};

struct iser_hdr_ctrl {
	bool wsv;	     /* write_stag and write_va are valid */
	bool rsv;	     /* read_stag and read_va are valid */
	uint32_t write_stag; /* initiator buffer the target RDMA-Reads from */
	uint64_t write_va;   /* its Base Offset (a VA under ZBVA_NOT_SUP) */
	uint32_t read_stag;  /* initiator buffer the target RDMA-Writes to */
	uint64_t read_va;
};

struct iser_hdr_hello {
	uint8_t max_ver; /* 0..15 */
	uint8_t min_ver; /* 0..max_ver */
	uint16_t ird;	 /* iSER-IRD of the initiator */
};

struct iser_hdr_hello_reply {
	bool rej;
	uint8_t max_ver; /* 0..15 */
	uint8_t cur_ver; /* 0..max_ver */
	uint16_t ord;	 /* iSER-ORD of the target */
};

struct iser_hdr {
	enum iser_hdr_opcode opcode; /* says which member of the union is set */
	union {
		struct iser_hdr_ctrl ctrl;
		struct iser_hdr_hello hello;
		struct iser_hdr_hello_reply hello_reply;
	};
};

struct iser_hdr_cm {
	bool zbva_not_sup;	 /* ISER_HDR_CM_ZBVA_NOT_SUP */
	bool send_w_inv_not_sup; /* ISER_HDR_CM_SEND_W_INV_NOT_SUP */
};

/*
 * Decode the iSER header at the start of a received Send message of @len
 * bytes (the received byte count, not the buffer size) into @hdr. For a
 * control-type header the iSCSI PDU starts at @buf + ISER_HDR_LEN and is
 * not looked at. Any alignment. Returns 0, or a format error of RFC 7145
 * §10.1.3.3, after which the connection must be terminated:
 *   -ENODATA  @len < ISER_HDR_LEN
 *   -EPROTO   unassigned opcode (§9.1)
 *   -EMSGSIZE Hello or HelloReply with @len != ISER_HDR_LEN: these messages
 *             MUST only contain the iSER header (§9.3, §9.4)
 *   -EBADMSG  inconsistent versions: Hello MinVer > MaxVer, or HelloReply
 *             CurVer > MaxVer
 * Versions that do not overlap ours are not a decode error: the target
 * must still answer with a rejecting HelloReply, see iser_hdr_hello_answer().
 * On error *@hdr is unspecified.
 */
int iser_hdr_decode(const void *buf, size_t len, struct iser_hdr *hdr);

/*
 * Encode @hdr into the first ISER_HDR_LEN bytes at @buf (@len bytes long,
 * any alignment); the rest of @buf is not touched. Returns 0, or
 *   -ENOSPC   @len < ISER_HDR_LEN
 *   -EINVAL   unassigned opcode, a version above ISER_HDR_VER_MAX, or
 *             versions iser_hdr_decode() would reject as inconsistent
 * and writes nothing on error.
 */
int iser_hdr_encode(const struct iser_hdr *hdr, void *buf, size_t len);

/*
 * Target side of the Hello exchange (RFC 7145 §5.1.3, §10.1.3.2): fill
 * @reply, the HelloReply to send for @hello, from the target's iSER-ORD
 * @ord. reply->ord becomes min(@ord, hello->ird) and the versions
 * ISER_HDR_VERSION. Returns 0 if the target accepts, or, with reply->rej
 * set (the HelloReply must still be sent, then the connection terminated):
 *   -EPROTONOSUPPORT  ISER_HDR_VERSION is outside [min_ver, max_ver]
 *   -ENOBUFS          hello->ird > 0 but @ord is 0
 */
int iser_hdr_hello_answer(const struct iser_hdr_hello *hello, uint16_t ord,
			  struct iser_hdr_hello_reply *reply);

/*
 * Initiator side: check the target's HelloReply (RFC 7145 §5.1.3, §9.4).
 * Returns 0 if the connection may proceed (the initiator MAY then lower its
 * IRD to reply->ord), or
 *   -ECONNREFUSED     REJ is set
 *   -EPROTONOSUPPORT  CurVer is not ISER_HDR_VERSION
 */
int iser_hdr_hello_reply_check(const struct iser_hdr_hello_reply *reply);

/*
 * Decode the iSER CM header at the start of @len bytes of RDMA CM private
 * data into @cm. Bytes past ISER_HDR_CM_LEN (InfiniBand CM private data has
 * a fixed size) and reserved bits are ignored. Returns 0 or
 *   -ENODATA  @len < ISER_HDR_CM_LEN (e.g. a peer that sent no private
 *             data; what to assume then is the caller's decision)
 */
int iser_hdr_cm_decode(const void *buf, size_t len, struct iser_hdr_cm *cm);

/*
 * Encode @cm into the first ISER_HDR_CM_LEN bytes at @buf (@len bytes
 * long), reserved bits and bytes zero. Returns 0, or -ENOSPC if @len <
 * ISER_HDR_CM_LEN, writing nothing.
 */
int iser_hdr_cm_encode(const struct iser_hdr_cm *cm, void *buf, size_t len);

#endif /* ISERKIT_ISER_HDR_H */
