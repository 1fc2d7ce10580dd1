/*
 * iwarp: the wire codec of the soft RDMA provider (DESIGN §5): MPA (RFC
 * 5044) with RFC 6581's enhanced connection setup, DDP (RFC 5041) and
 * RDMAP (RFC 5040). Encoding and decoding only: no sockets, no state, no
 * RDMA semantics; what a frame means to a connection is the provider's.
 *
 * On the wire, every field big-endian except the CRC (see 2.):
 *
 * 1. MPA Request and Reply frames (RFC 5044 §7.1), the first bytes each
 *    side sends on the TCP connection:
 *      bytes 0-15   Key "MPA ID Req Frame" or "MPA ID Rep Frame"
 *      byte 16      M 0x80 markers wanted, C 0x40 CRC wanted, R 0x20
 *                   rejected (Reply only), 0x10 enhanced setup (RFC 6581,
 *                   with Rev 2 only), 0x0f reserved (Res)
 *      byte 17      Rev: 1 (RFC 5044) or 2 (RFC 6581)
 *      bytes 18-19  PD_Length: bytes of private data, at most 512
 *      bytes 20-    Private Data. With Rev 2 and the enhanced flag it
 *                   starts with RFC 6581's IRD/ORD header:
 *        bytes 0-1  A 0x8000 peer-to-peer, B 0x4000 zero-length FPDU (Send)
 *                   RTR, IRD 0x3fff
 *        bytes 2-3  C 0x8000 zero-length RDMA Write RTR, D 0x4000
 *                   zero-length RDMA Read RTR, ORD 0x3fff
 *      and PD_Length counts those 4 bytes.
 *
 * 2. FPDU (RFC 5044 §4.1), every frame after that exchange:
 *      bytes 0-1    ULPDU_Length: bytes of the ULPDU (one DDP segment)
 *      ULPDU
 *      PAD          0-3 zero bytes, so that 2 + ULPDU_Length + PAD is a
 *                   multiple of 4
 *      CRC          4 bytes, always present: the CRC32C of every byte
 *                   before it when CRC was negotiated, otherwise any value,
 *                   never checked
 *    The CRC goes on the wire as iSCSI's digests do (digest.h: least
 *    significant byte first), not big-endian like the other fields.
 *    Markers are never used: we never ask for them, and a peer that does
 *    gets a rejecting Reply, so an FPDU is one contiguous run of bytes.
 *
 * 3. DDP and RDMAP headers at the start of the ULPDU (RFC 5041 §4, RFC 5040
 *    §4.1-4.8):
 *      byte 0       DDP control: T 0x80 tagged, L 0x40 last segment, 0x3c
 *                   reserved, DV 0x03 (DDP version, 1)
 *      byte 1       RDMAP control: RV 0xc0 (RDMAP version, 1), 0x30
 *                   reserved, opcode 0x0f
 *    Tagged (RDMA Write, RDMA Read Response), 14 bytes:
 *      bytes 2-5    STag, bytes 6-13 TO
 *    Untagged (every other opcode), 18 bytes:
 *      bytes 2-5    Invalidate STag for Send with Invalidate and Send with
 *                   SE and Invalidate, reserved otherwise
 *      bytes 6-9    QN, bytes 10-13 MSN, bytes 14-17 MO
 *    RDMA Read Request: the untagged header, then 28 bytes (RFC 5040 §4.4):
 *      Data Sink STag 4, Data Sink TO 8, RDMA Read Message Size 4, Data
 *      Source STag 4, Data Source TO 8
 *    Terminate: the untagged header, then the Terminate header (RFC 5040
 *    §4.8):
 *      byte 0       Layer 0xf0, EType 0x0f
 *      byte 1       Error Code
 *      byte 2       M 0x80 DDP Segment Length valid, D 0x40 DDP header
 *                   included, R 0x20 RDMAP header included, 0x1f reserved
 *      byte 3       reserved
 *      bytes 4-5    DDP Segment Length, present when M or D is set
 *      then         the terminated DDP header (D) and the terminated RDMA
 *                   Read Request header (R), as they were received
 *
 * Linux's siw (drivers/infiniband/sw/siw/iwarp.h) lays out the same bytes,
 * with the 2-byte ULPDU_Length at the front of its structs;
 * tests/unit/test_iwarp.c checks each layout against them.
 *
 * Rules:
 * - Errors are negative errno values:
 *     -ENODATA   stream functions only: not enough bytes yet, read more
 *     -EPROTO    an MPA key or Rev we do not speak, a DDP or RDMAP version
 *                other than 1, a reserved opcode, a T flag that does not
 *                match the opcode (RFC 5040 §4.2)
 *     -EMSGSIZE  a length read from the wire is out of bounds: private
 *                data over 512 bytes or too short for the IRD/ORD header,
 *                a ULPDU over the caller's maximum, a DDP segment or a
 *                Terminate header shorter than the headers it must hold
 *     -EBADMSG   the FPDU's CRC does not match
 *     -EINVAL    encoders: a struct field out of range for its wire field,
 *                or a buffer that does not hold what it should
 *     -ENOSPC    encoders: the output buffer is too small
 *   Only what breaks framing or the codec is an error; the rest (a QN that
 *   does not fit the opcode, L clear on a Read Request, flags a peer should
 *   not have set) decodes, so that the provider can answer with the right
 *   Terminate or a rejecting Reply.
 * - Reserved fields and bits are ignored on decode and written as 0.
 * - Nothing here allocates, prints, blocks or keeps state: any thread, any
 *   context, on memory the caller owns. Decoders read no byte past @len;
 *   the pointers they return point into the caller's buffer.
 */
#ifndef ISERKIT_IWARP_H
#define ISERKIT_IWARP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/iscsi/digest.h"

/* MPA Request/Reply frames, RFC 5044 §7.1 and RFC 6581 */
#define IWARP_MPA_KEY_LEN 16
#define IWARP_MPA_HDR_LEN 20 /* Key, flags, Rev, PD_Length */
#define IWARP_MPA_PD_MAX 512 /* largest PD_Length */
#define IWARP_MPA_V2_LEN 4   /* the IRD/ORD header in the private data */
#define IWARP_MPA_FRAME_MAX (IWARP_MPA_HDR_LEN + IWARP_MPA_PD_MAX)
#define IWARP_MPA_REV1 1	     /* RFC 5044 */
#define IWARP_MPA_REV2 2	     /* RFC 6581 */
#define IWARP_MPA_IRD_ORD_MAX 0x3fff /* IRD and ORD are 14 bits */

/* Zero-length RTR messages (RFC 6581): bits of struct iwarp_mpa.rtr */
#define IWARP_MPA_RTR_SEND 0x1	/* B: a zero-length FPDU, i.e. a Send */
#define IWARP_MPA_RTR_WRITE 0x2 /* C: a zero-length RDMA Write */
#define IWARP_MPA_RTR_READ 0x4	/* D: a zero-length RDMA Read */
#define IWARP_MPA_RTR_ALL (IWARP_MPA_RTR_SEND | IWARP_MPA_RTR_WRITE | IWARP_MPA_RTR_READ)

/* FPDU framing, RFC 5044 §4.1 */
#define IWARP_FPDU_HDR_LEN 2				/* ULPDU_Length */
#define IWARP_FPDU_CRC_LEN 4				/* the CRC field, always there */
#define IWARP_FPDU_TRAILER_MAX (3 + IWARP_FPDU_CRC_LEN) /* PAD and CRC */
#define IWARP_ULPDU_MAX 0xffffu				/* ULPDU_Length is 16 bits */

/* DDP and RDMAP, RFC 5041 §4 and RFC 5040 §4 */
#define IWARP_DDP_VERSION 1
#define IWARP_RDMAP_VERSION 1
#define IWARP_TAGGED_HDR_LEN 14
#define IWARP_UNTAGGED_HDR_LEN 18
#define IWARP_READ_REQ_LEN 28 /* RDMA Read Request header, RFC 5040 §4.4 */

/* Untagged queues, RFC 5040 §4.2 (a Send on another QN is DDP's "Invalid QN") */
#define IWARP_QN_SEND 0
#define IWARP_QN_READ_REQ 1
#define IWARP_QN_TERMINATE 2

/* RDMAP opcodes, RFC 5040 §4.2; 8-15 are reserved */
enum iwarp_op {
	IWARP_OP_WRITE = 0x0,	    /* tagged */
	IWARP_OP_READ_REQ = 0x1,    /* untagged, QN 1 */
	IWARP_OP_READ_RESP = 0x2,   /* tagged */
	IWARP_OP_SEND = 0x3,	    /* untagged, QN 0 */
	IWARP_OP_SEND_INV = 0x4,    /* untagged, QN 0, Invalidate STag */
	IWARP_OP_SEND_SE = 0x5,	    /* untagged, QN 0 */
	IWARP_OP_SEND_SE_INV = 0x6, /* untagged, QN 0, Invalidate STag */
	IWARP_OP_TERMINATE = 0x7,   /* untagged, QN 2 */
};

/* Terminate header, RFC 5040 §4.8 */
#define IWARP_TERM_CTRL_LEN 4	/* Layer, EType, Error Code, HdrCt, reserved */
#define IWARP_TERM_SEGLEN_LEN 2 /* DDP Segment Length */

/* Layer: which layer found the error (RFC 5040 §4.8) */
enum iwarp_term_layer {
	IWARP_TERM_RDMAP = 0x0,
	IWARP_TERM_DDP = 0x1,
	IWARP_TERM_LLP = 0x2, /* MPA here */
};

/* RDMAP error types (RFC 5040 §4.8) */
enum iwarp_term_rdmap_type {
	IWARP_TERM_RDMAP_CATASTROPHIC = 0x0, /* local catastrophic */
	IWARP_TERM_RDMAP_PROTECTION = 0x1,   /* remote protection error */
	IWARP_TERM_RDMAP_OPERATION = 0x2,    /* remote operation error */
};

/* RDMAP error codes (RFC 5040 §4.8) */
enum iwarp_term_rdmap_code {
	IWARP_TERM_RDMAP_INVALID_STAG = 0x00,
	IWARP_TERM_RDMAP_BASE_BOUNDS = 0x01,	/* base or bounds violation */
	IWARP_TERM_RDMAP_ACCESS = 0x02,		/* access rights violation */
	IWARP_TERM_RDMAP_STAG_NOT_ASSOC = 0x03, /* STag not of this stream */
	IWARP_TERM_RDMAP_TO_WRAP = 0x04,
	IWARP_TERM_RDMAP_BAD_VERSION = 0x05,	     /* invalid RDMAP version */
	IWARP_TERM_RDMAP_BAD_OPCODE = 0x06,	     /* unexpected opcode */
	IWARP_TERM_RDMAP_STREAM_CATASTROPHIC = 0x07, /* localized to the stream */
	IWARP_TERM_RDMAP_GLOBAL_CATASTROPHIC = 0x08,
	IWARP_TERM_RDMAP_CANNOT_INVALIDATE = 0x09, /* STag cannot be invalidated */
	IWARP_TERM_RDMAP_UNSPECIFIED = 0xff,
};

/* DDP error types (RFC 5041 §7.2); 3 is reserved for the LLP */
enum iwarp_term_ddp_type {
	IWARP_TERM_DDP_CATASTROPHIC = 0x0,
	IWARP_TERM_DDP_TAGGED = 0x1,   /* tagged buffer error */
	IWARP_TERM_DDP_UNTAGGED = 0x2, /* untagged buffer error */
};

/* DDP tagged buffer error codes (RFC 5041 §7.2) */
enum iwarp_term_ddp_tagged_code {
	IWARP_TERM_DDP_T_INVALID_STAG = 0x00,
	IWARP_TERM_DDP_T_BASE_BOUNDS = 0x01,
	IWARP_TERM_DDP_T_STAG_NOT_ASSOC = 0x02,
	IWARP_TERM_DDP_T_TO_WRAP = 0x03,
	IWARP_TERM_DDP_T_BAD_VERSION = 0x04,
};

/* DDP untagged buffer error codes (RFC 5041 §7.2) */
enum iwarp_term_ddp_untagged_code {
	IWARP_TERM_DDP_U_INVALID_QN = 0x01,
	IWARP_TERM_DDP_U_NO_BUFFER = 0x02, /* invalid MSN: no buffer available */
	IWARP_TERM_DDP_U_MSN_RANGE = 0x03, /* invalid MSN: out of range */
	IWARP_TERM_DDP_U_INVALID_MO = 0x04,
	IWARP_TERM_DDP_U_TOO_LONG = 0x05, /* message too long for the buffer */
	IWARP_TERM_DDP_U_BAD_VERSION = 0x06,
};

/* LLP error type (RFC 5044 §8): MPA is type 0 */
#define IWARP_TERM_LLP_MPA 0x0

/* MPA error codes (RFC 5044 §8; 5-7 added by RFC 6581) */
enum iwarp_term_mpa_code {
	IWARP_TERM_MPA_CONN_LOST = 0x01,	  /* TCP connection closed or lost */
	IWARP_TERM_MPA_CRC = 0x02,		  /* MPA CRC error */
	IWARP_TERM_MPA_MARKER = 0x03,		  /* Marker and ULPDU_Length mismatch */
	IWARP_TERM_MPA_BAD_REQ_REP = 0x04,	  /* invalid Request or Reply frame */
	IWARP_TERM_MPA_LOCAL_CATASTROPHIC = 0x05, /* RFC 6581 */
	IWARP_TERM_MPA_IRD_TOO_SMALL = 0x06,	  /* RFC 6581: insufficient IRD */
	IWARP_TERM_MPA_NO_RTR_MATCH = 0x07,	  /* RFC 6581: no matching RTR */
};

/*
 * A decoded MPA Request or Reply frame. Which fields are meaningful: the
 * enhanced-setup fields (p2p, rtr, ird, ord) only when @enhanced.
 */
struct iwarp_mpa {
	bool reply;	      /* Key "MPA ID Rep Frame", else "MPA ID Req Frame" */
	bool markers;	      /* M; decoded so it can be refused, never encoded */
	bool crc;	      /* C */
	bool reject;	      /* R; Reply only, ignored in a Request */
	uint8_t rev;	      /* IWARP_MPA_REV1 or IWARP_MPA_REV2 */
	bool enhanced;	      /* Rev 2 with the flag: the IRD/ORD header is there */
	bool p2p;	      /* A: peer-to-peer, an RTR message comes first */
	uint8_t rtr;	      /* IWARP_MPA_RTR_*: offered (Request), chosen (Reply) */
	uint16_t ird;	      /* 14 bits */
	uint16_t ord;	      /* 14 bits */
	const uint8_t *pdata; /* the ULP's private data, after the IRD/ORD header */
	uint16_t pdata_len;   /* so PD_Length = pdata_len (+ 4 when enhanced) */
};

/* One FPDU framed in a receive buffer, as iwarp_fpdu_parse() found it. */
struct iwarp_fpdu {
	const uint8_t *ulpdu; /* the DDP segment, at buffer + IWARP_FPDU_HDR_LEN */
	uint16_t ulpdu_len;   /* ULPDU_Length */
	uint32_t len;	      /* bytes of the whole FPDU, PAD and CRC included */
};

/* RDMA Read Request header, RFC 5040 §4.4 */
struct iwarp_read_req {
	uint32_t sink_stag; /* Data Sink STag: where the Read Response goes */
	uint64_t sink_to;   /* Data Sink Tagged Offset */
	uint32_t size;	    /* RDMA Read Message Size */
	uint32_t src_stag;  /* Data Source STag: what is read */
	uint64_t src_to;    /* Data Source Tagged Offset */
};

/*
 * The DDP and RDMAP headers of one DDP segment. Fields that the opcode's
 * header does not have are 0: STag and TO for tagged opcodes; QN, MSN, MO
 * for untagged ones; inv_stag for the two Invalidate opcodes; rreq for RDMA
 * Read Request.
 */
struct iwarp_hdr {
	bool tagged;	       /* DDP T */
	bool last;	       /* DDP L */
	uint8_t ddp_version;   /* DV: 1 after a successful decode */
	uint8_t rdmap_version; /* RV: 1 after a successful decode */
	uint8_t opcode;	       /* enum iwarp_op */
	uint32_t stag;	       /* tagged: Data Sink STag */
	uint64_t to;	       /* tagged: Tagged Offset */
	uint32_t inv_stag;     /* Invalidate STag */
	uint32_t qn;	       /* untagged: Queue Number */
	uint32_t msn;	       /* untagged: Message Sequence Number */
	uint32_t mo;	       /* untagged: Message Offset */
	struct iwarp_read_req rreq;
};

/*
 * A decoded Terminate header. @hdrs holds all that follows the Terminate
 * Control and the DDP Segment Length: the terminated DDP header when @d
 * (14 or 18 bytes, by its own T flag), then, when @r and the terminated
 * message is a Read Request (or when @r comes without @d), the 28-byte RDMA
 * Read Request header, as the peer received them. Decoding checks that
 * @hdrs is long enough for what @d and @r announce.
 */
struct iwarp_term {
	uint8_t layer;	     /* enum iwarp_term_layer, 4 bits */
	uint8_t etype;	     /* error type of that layer, 4 bits */
	uint8_t ecode;	     /* error code of that type */
	bool m;		     /* DDP Segment Length valid */
	bool d;		     /* DDP header included */
	bool r;		     /* RDMAP header included */
	uint16_t seg_len;    /* DDP Segment Length; on the wire when m or d */
	const uint8_t *hdrs; /* NULL when hdrs_len is 0 */
	uint16_t hdrs_len;
};

/*
 * One port for iSCSI/TCP and iWARP (DESIGN §5): tell from the first @len
 * bytes a connection sent whether it opens with an MPA Request. Returns 1
 * if the first IWARP_MPA_KEY_LEN bytes are the Request key, 0 if they
 * cannot become it, -ENODATA if all @len bytes (@len < 16, 0 included)
 * match the start of the key so far. Only the key is looked at.
 */
int iwarp_mpa_is_request(const void *buf, size_t len);

/*
 * From the first IWARP_MPA_HDR_LEN bytes at @buf (@len available), the
 * length of the whole Request or Reply frame, so a stream reader knows how
 * much to read. Returns it, or -ENODATA (@len < 20), -EPROTO (not an MPA
 * key) or -EMSGSIZE (PD_Length over IWARP_MPA_PD_MAX).
 */
int iwarp_mpa_len(const void *buf, size_t len);

/*
 * Decode the MPA Request or Reply frame at the start of @buf (@len bytes;
 * what follows the frame is not looked at) into @out, zeroed first. Returns
 * the frame's length, or, checked in this order:
 *   -ENODATA   fewer than IWARP_MPA_HDR_LEN bytes
 *   -EPROTO    not an MPA key, or Rev neither 1 nor 2
 *   -EMSGSIZE  PD_Length over 512, or enhanced with PD_Length under 4
 *   -ENODATA   the private data is not all there yet
 * After -EPROTO for the Rev, -EMSGSIZE or the second -ENODATA, reply,
 * markers, crc, reject and rev are set, so that the caller can still
 * answer with a rejecting Reply; otherwise *@out is unspecified on error.
 * What markers, crc, reject, IRD/ORD and the RTR bits mean for the
 * connection is the caller's decision.
 */
int iwarp_mpa_decode(const void *buf, size_t len, struct iwarp_mpa *out);

/*
 * Encode @mpa as a frame into @buf (@len bytes): header, the IRD/ORD header
 * when mpa->enhanced, then mpa->pdata_len bytes copied from mpa->pdata.
 * Returns the bytes written, or -EINVAL (markers set: we never use them;
 * reject on a Request; rev not 1 or 2; enhanced with rev 1; ird or ord over
 * 14 bits; rtr bits outside IWARP_MPA_RTR_ALL; pdata NULL with a length),
 * -EMSGSIZE (private data over 512 bytes) or -ENOSPC, writing nothing then.
 */
int iwarp_mpa_encode(const struct iwarp_mpa *mpa, void *buf, size_t len);

/* PAD bytes after a ULPDU of @ulpdu_len bytes (RFC 5044 §4.1). */
static inline unsigned int iwarp_fpdu_pad(size_t ulpdu_len)
{
	return (unsigned int)(-(ulpdu_len + IWARP_FPDU_HDR_LEN) & 3u);
}

/* Bytes of an FPDU carrying @ulpdu_len bytes: header, ULPDU, PAD and CRC. */
static inline size_t iwarp_fpdu_size(size_t ulpdu_len)
{
	return IWARP_FPDU_HDR_LEN + ulpdu_len + iwarp_fpdu_pad(ulpdu_len) + IWARP_FPDU_CRC_LEN;
}

/*
 * From the ULPDU_Length at @buf (@len bytes available), the length of the
 * whole FPDU. Returns it, or -ENODATA (@len < 2) or -EMSGSIZE
 * (ULPDU_Length over @max_ulpdu, the most the receiver accepts).
 */
int iwarp_fpdu_len(const void *buf, size_t len, uint16_t max_ulpdu);

/*
 * Frame the FPDU at the start of @buf (@len bytes; more may follow) into
 * @out, checking its CRC when @crc (CRC negotiated; the PAD bytes are
 * covered as received). Returns the FPDU's length, or -ENODATA, -EMSGSIZE
 * (as iwarp_fpdu_len()) or -EBADMSG (CRC mismatch). The ULPDU is not
 * decoded: see iwarp_hdr_decode().
 */
int iwarp_fpdu_parse(const void *buf, size_t len, bool crc, uint16_t max_ulpdu,
		     struct iwarp_fpdu *out);

/*
 * Write the ULPDU_Length of a @ulpdu_len-byte ULPDU into the first 2 bytes
 * of @buf (@len bytes). Returns IWARP_FPDU_HDR_LEN, or -EMSGSIZE
 * (@ulpdu_len over IWARP_ULPDU_MAX) or -ENOSPC.
 */
int iwarp_fpdu_hdr_encode(void *buf, size_t len, size_t ulpdu_len);

/*
 * Finish an FPDU built in place: @buf (@len bytes) holds its ULPDU_Length
 * and ULPDU; write PAD and CRC after them (the CRC when @crc, else zero).
 * Returns the FPDU's length, or -EINVAL (@len does not hold the header and
 * the ULPDU it announces) or -ENOSPC (no room for PAD and CRC).
 */
int iwarp_fpdu_seal(void *buf, size_t len, bool crc);

/*
 * PAD and CRC for an FPDU sent from several buffers (a header here, the
 * payload straight from registered memory): @ctx has digested the
 * ULPDU_Length and the ULPDU (digest_begin(), digest_update()), or is NULL
 * when CRC was not negotiated. Writes the PAD and the CRC into @out, leaves
 * @ctx unchanged, and returns the bytes written (PAD + 4). A receiver does
 * the same over the bytes it got, PAD as received, and compares
 * digest_final() with digest_load() of the CRC field.
 */
size_t iwarp_fpdu_trailer(const struct digest_ctx *ctx, size_t ulpdu_len,
			  uint8_t out[IWARP_FPDU_TRAILER_MAX]);

/* Whether @opcode's messages are tagged (RDMA Write, Read Response). */
bool iwarp_op_tagged(uint8_t opcode);

/*
 * The untagged queue @opcode's messages go to (RFC 5040 §4.2), or -EINVAL
 * for a tagged or reserved opcode.
 */
int iwarp_op_qn(uint8_t opcode);

/*
 * Bytes of the DDP and RDMAP headers of @opcode's segments: 14 tagged, 18
 * untagged, 46 for an RDMA Read Request (its 28-byte header included). A
 * Terminate counts 18: its Terminate header is iwarp_term_decode()'s. Returns
 * -EPROTO for a reserved opcode. (siw's hdr_len also counts ULPDU_Length,
 * and the Terminate Control for a Terminate.)
 */
int iwarp_hdr_len(uint8_t opcode);

/*
 * Decode the headers of the DDP segment @seg (@len bytes: the whole ULPDU)
 * into @out, zeroed first. Returns the headers' length, so the payload is
 * @seg + ret, @len - ret bytes; or
 *   -EPROTO    DDP version not 1, RDMAP version not 1, reserved opcode, or
 *              T not that of the opcode, checked in that order
 *   -EMSGSIZE  @len is shorter than the headers (@len < 2 included)
 * After -EPROTO, tagged, last, the versions and the opcode are set, so the
 * caller can pick its Terminate (RFC 5041 §7.2, RFC 5040 §4.8); after
 * -EMSGSIZE they are set when @len >= 2.
 */
int iwarp_hdr_decode(const void *seg, size_t len, struct iwarp_hdr *out);

/*
 * Encode @hdr into the first iwarp_hdr_len(hdr->opcode) bytes of @buf
 * (@len bytes), DV and RV always 1 and the fields the opcode's header does
 * not have not written. Returns the bytes written, or -EINVAL (reserved
 * opcode, or tagged not that of the opcode) or -ENOSPC, writing nothing.
 */
int iwarp_hdr_encode(const struct iwarp_hdr *hdr, void *buf, size_t len);

/*
 * Decode the Terminate header @buf, the @len bytes that follow a
 * Terminate's untagged DDP header, into @out, zeroed first. Returns 0, or
 * -EMSGSIZE: @len under IWARP_TERM_CTRL_LEN, or too short for the DDP
 * Segment Length and headers that M, D and R say are included. Layer,
 * type and code are not checked against the RFC's lists.
 */
int iwarp_term_decode(const void *buf, size_t len, struct iwarp_term *out);

/*
 * Encode @term as a Terminate header into @buf (@len bytes): the Terminate
 * Control, the DDP Segment Length when m or d, then the hdrs_len bytes of
 * hdrs. Returns the bytes written, or -EINVAL (layer or etype over 4 bits,
 * hdrs NULL with a length, hdrs too short for what d and r announce) or
 * -ENOSPC, writing nothing then.
 */
int iwarp_term_encode(const struct iwarp_term *term, void *buf, size_t len);

/* The RFC's name of @opcode ("RDMA Write"...), or NULL if reserved. */
const char *iwarp_op_name(uint8_t opcode);

#endif /* ISERKIT_IWARP_H */
