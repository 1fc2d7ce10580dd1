/*
 * pdu: the iSCSI PDU codec (RFC 7143 §11).
 *
 * - pdu_bhs_decode() / pdu_bhs_encode() turn the 48-byte Basic Header
 *   Segment of every PDU into a plain struct pdu_bhs and back.
 * - pdu_ahs_parse() / pdu_ahs_encode() read and write the Additional Header
 *   Segments (Extended CDB, Bidirectional Read Expected Data Transfer
 *   Length).
 * - pdu_total_len() tells a stream reader, from the BHS alone, how many
 *   bytes the whole PDU takes; pdu_parse() frames one whole PDU in a
 *   buffer and points into it (nothing is copied).
 * - pdu_sn_*() compare sequence numbers (RFC 1982, 32 bits).
 *
 * Rules:
 * - Nothing here allocates, prints, blocks or keeps state: any thread, any
 *   context, on memory the caller owns.
 * - Every length read from the wire is checked against the buffer before
 *   it is used. Errors are negative errno values:
 *     -ENODATA    fewer than PDU_BHS_LEN bytes
 *     -EPROTO     opcode not in RFC 7143 (vendor opcodes included), or an
 *                 AHS of a reserved type, a repeated AHS, an AHS with the
 *                 wrong AHSLength for its type, or an Extended CDB or
 *                 Bidirectional AHS on a PDU other than SCSI Command
 *     -EOVERFLOW  TotalAHSLength runs past the buffer, or one AHS runs
 *                 past TotalAHSLength
 *     -EMSGSIZE   header digest, data segment, its padding or the data
 *                 digest runs past the buffer
 *     -E2BIG      DataSegmentLength is over the caller's maximum (its
 *                 MaxRecvDataSegmentLength)
 *     -EINVAL     unknown PDU_*DIGEST flag; for encoders, a struct field
 *                 too wide for its wire field
 *     -ENOSPC     encoders: the output buffer is too small
 * - Only what breaks framing or the codec is an error here. The rest (a
 *   DataSegmentLength on a PDU type that carries no data, an AHS on a PDU
 *   that should have none, field values, sequence numbers) decodes, so the
 *   caller can answer with a Reject (RFC 7143 §11.17.1) and keep the
 *   stream in step.
 * - Reserved fields and bits are ignored on decode and written as 0 on
 *   encode (RFC 7143 §11). A bit the RFC fixes at 1 (F in PDUs that are
 *   always final, I in Login Request) always decodes as set and is always
 *   written as 1, whatever the struct says.
 * - Digests are located, not computed: CRC32C lives in digest.h.
 */
#ifndef ISERKIT_PDU_H
#define ISERKIT_PDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PDU_BHS_LEN 48		 /* Basic Header Segment */
#define PDU_DIGEST_LEN 4	 /* CRC32C header or data digest */
#define PDU_AHS_MAX 1020	 /* TotalAHSLength 255 words */
#define PDU_DSL_MAX 0xffffffu	 /* DataSegmentLength is 24 bits */
#define PDU_RSVD_TAG 0xffffffffu /* reserved ITT / TTT value */
#define PDU_PAD4(n) (((n) + 3u) & ~3u)

/* pdu_parse() / pdu_total_len() flags: which digests were negotiated. */
#define PDU_HDIGEST 0x1u
#define PDU_DDIGEST 0x2u

/* Opcodes, RFC 7143 §11.2.1.2 */
enum pdu_op {
	PDU_OP_NOP_OUT = 0x00,
	PDU_OP_SCSI_CMD = 0x01,
	PDU_OP_TMF_REQ = 0x02,
	PDU_OP_LOGIN_REQ = 0x03,
	PDU_OP_TEXT_REQ = 0x04,
	PDU_OP_DATA_OUT = 0x05,
	PDU_OP_LOGOUT_REQ = 0x06,
	PDU_OP_SNACK = 0x10,
	PDU_OP_NOP_IN = 0x20,
	PDU_OP_SCSI_RSP = 0x21,
	PDU_OP_TMF_RSP = 0x22,
	PDU_OP_LOGIN_RSP = 0x23,
	PDU_OP_TEXT_RSP = 0x24,
	PDU_OP_DATA_IN = 0x25,
	PDU_OP_LOGOUT_RSP = 0x26,
	PDU_OP_R2T = 0x31,
	PDU_OP_ASYNC = 0x32,
	PDU_OP_REJECT = 0x3f,
};

/* AHSType codes, RFC 7143 §11.2.2.1; 60-63 are non-iSCSI extensions. */
#define PDU_AHS_EXT_CDB 1
#define PDU_AHS_BIDI_READ 2
#define PDU_AHS_VENDOR_FIRST 60

/*
 * Opcode-specific fields, one struct per PDU (or pair of PDUs with the
 * same layout). Names follow the RFC; the RFC section gives the figure.
 */

/* SCSI Command, §11.3 */
struct pdu_scsi_cmd {
	bool read;	       /* R */
	bool write;	       /* W */
	uint8_t attr;	       /* ATTR, 3 bits */
	uint32_t exp_xfer_len; /* Expected Data Transfer Length */
	uint8_t cdb[16];       /* first 16 CDB bytes; more in an AHS */
};

/* SCSI Response, §11.4 */
struct pdu_scsi_rsp {
	bool bidi_overflow;  /* o */
	bool bidi_underflow; /* u */
	bool overflow;	     /* O */
	bool underflow;	     /* U */
	uint8_t response;
	uint8_t status;
	uint32_t snack_tag;
	uint32_t exp_data_sn;
	uint32_t bidi_residual; /* Bidirectional Read Residual Count */
	uint32_t residual;	/* Residual Count */
};

/* Task Management Function Request, §11.5 */
struct pdu_tmf_req {
	uint8_t function;      /* 7 bits */
	uint32_t ref_task_tag; /* Referenced Task Tag */
	uint32_t ref_cmd_sn;   /* RefCmdSN */
	uint32_t exp_data_sn;  /* ExpDataSN */
};

/* Task Management Function Response, §11.6 */
struct pdu_tmf_rsp {
	uint8_t response;
};

/* SCSI Data-Out, §11.7 */
struct pdu_data_out {
	uint32_t ttt;
	uint32_t data_sn;
	uint32_t buffer_offset;
};

/* SCSI Data-In, §11.7 */
struct pdu_data_in {
	bool ack;	     /* A */
	bool overflow;	     /* O */
	bool underflow;	     /* U */
	bool status_present; /* S: status, StatSN and residual are valid */
	uint8_t status;
	uint32_t ttt;
	uint32_t data_sn;
	uint32_t buffer_offset;
	uint32_t residual;
};

/* R2T, §11.8 */
struct pdu_r2t {
	uint32_t ttt;
	uint32_t r2t_sn;
	uint32_t buffer_offset;
	uint32_t desired_len; /* Desired Data Transfer Length */
};

/* Asynchronous Message, §11.9 */
struct pdu_async {
	uint8_t event; /* AsyncEvent */
	uint8_t vcode; /* AsyncVCode */
	uint16_t param1;
	uint16_t param2;
	uint16_t param3;
};

/* Text Request §11.10, Text Response §11.11 */
struct pdu_text {
	bool cont; /* C */
	uint32_t ttt;
};

/* Login Request §11.12, Login Response §11.13 */
struct pdu_login {
	bool transit;	     /* T; byte 1 bit 7, which is F elsewhere */
	bool cont;	     /* C */
	uint8_t csg;	     /* 2 bits */
	uint8_t nsg;	     /* 2 bits */
	uint8_t version_max; /* Version-max */
	union {
		uint8_t version_min;	/* request: Version-min */
		uint8_t version_active; /* response: Version-active */
	};
	uint8_t isid[6];
	uint16_t tsih;
	uint16_t cid;	       /* request only */
	uint8_t status_class;  /* response only */
	uint8_t status_detail; /* response only */
};

/* Logout Request, §11.14 */
struct pdu_logout_req {
	uint8_t reason; /* Reason Code, 7 bits */
	uint16_t cid;
};

/* Logout Response, §11.15 */
struct pdu_logout_rsp {
	uint8_t response;
	uint16_t time2wait;
	uint16_t time2retain;
};

/* SNACK Request, §11.16 */
struct pdu_snack {
	uint8_t type;	     /* 4 bits */
	uint32_t ttt;	     /* Target Transfer Tag or SNACK Tag */
	uint32_t beg_run;    /* BegRun */
	uint32_t run_length; /* RunLength */
};

/* Reject, §11.17 */
struct pdu_reject {
	uint8_t reason;
	uint32_t data_sn; /* DataSN/R2TSN */
};

/* NOP-Out §11.18, NOP-In §11.19 */
struct pdu_nop {
	uint32_t ttt;
};

/*
 * A decoded Basic Header Segment. The sequence numbers at bytes 24-35
 * share one place in every PDU that has them, so a window can be updated
 * without looking at the opcode; a field a PDU does not have is 0.
 */
struct pdu_bhs {
	uint8_t opcode;	       /* enum pdu_op */
	bool immediate;	       /* I: NOP-Out, SCSI Cmd, TMF, Login, Text, Logout */
	bool final;	       /* F; false in Login PDUs, see login.transit */
	uint8_t total_ahs_len; /* TotalAHSLength, in 4-byte words */
	uint32_t data_len;     /* DataSegmentLength, bytes without padding */
	uint64_t lun;	       /* bytes 8-15, big-endian; 0 if not a LUN there */
	uint32_t itt;	       /* Initiator Task Tag */
	uint32_t cmd_sn;       /* initiator PDUs but Data-Out and SNACK */
	uint32_t exp_stat_sn;  /* every initiator PDU */
	uint32_t stat_sn;      /* every target PDU */
	uint32_t exp_cmd_sn;   /* every target PDU */
	uint32_t max_cmd_sn;   /* every target PDU */
	union {
		struct pdu_scsi_cmd scsi_cmd;
		struct pdu_scsi_rsp scsi_rsp;
		struct pdu_tmf_req tmf_req;
		struct pdu_tmf_rsp tmf_rsp;
		struct pdu_data_out data_out;
		struct pdu_data_in data_in;
		struct pdu_r2t r2t;
		struct pdu_async async;
		struct pdu_text text;
		struct pdu_login login;
		struct pdu_logout_req logout_req;
		struct pdu_logout_rsp logout_rsp;
		struct pdu_snack snack;
		struct pdu_reject reject;
		struct pdu_nop nop;
	};
};

/* What the AHSs of a PDU said; pointers are into the caller's buffer. */
struct pdu_ahs {
	const uint8_t *ext_cdb; /* CDB bytes 16 and on; NULL if none */
	uint16_t ext_cdb_len;	/* so the whole CDB is 16 + ext_cdb_len */
	bool has_bidi_read_len; /* a Bidirectional Read AHS was present */
	uint32_t bidi_read_len; /* its Expected Data Transfer Length */
};

/*
 * One framed PDU. Offsets are from the start of the buffer given to
 * pdu_parse(). The header digest covers [0, hdigest_off); the data digest
 * covers [data_off, ddigest_off), padding included (RFC 7143 §11.2.3).
 */
struct pdu {
	struct pdu_bhs bhs;
	struct pdu_ahs ahs;
	const uint8_t *data;  /* bhs.data_len bytes; NULL when 0 */
	uint32_t data_off;    /* where the data segment starts (or would) */
	uint32_t hdigest_off; /* 0 unless PDU_HDIGEST */
	uint32_t ddigest_off; /* 0 unless PDU_DDIGEST and data_len > 0 */
	uint32_t len;	      /* bytes of the whole PDU */
};

/*
 * Decode the BHS at @buf (@len bytes available, only the first 48 read)
 * into @out, which is zeroed first, padding included, so two decodes of
 * equal headers compare equal with memcmp(). Returns 0, -ENODATA or
 * -EPROTO (unknown opcode; *out is then unspecified).
 */
int pdu_bhs_decode(const void *buf, size_t len, struct pdu_bhs *out);

/*
 * Encode @bhs into the first 48 bytes of @buf (@len bytes available):
 * the exact inverse of pdu_bhs_decode() for every struct it produces.
 * Fields that @bhs->opcode does not have are not written. Returns 0,
 * -ENOSPC (@len < 48), -EPROTO (unknown opcode) or -EINVAL (data_len over
 * 24 bits, or attr, csg, nsg, function, reason or type too wide); on error
 * the contents of @buf are unspecified.
 */
int pdu_bhs_encode(const struct pdu_bhs *bhs, void *buf, size_t len);

/*
 * Parse the AHS area of a PDU whose opcode is @opcode: @len bytes at @buf,
 * normally TotalAHSLength * 4 bytes right after the BHS. AHSs of the
 * non-iSCSI extension types (60-63) are skipped. @out points into @buf.
 * Returns 0, -EOVERFLOW or -EPROTO.
 */
int pdu_ahs_parse(const void *buf, size_t len, uint8_t opcode, struct pdu_ahs *out);

/*
 * Write the AHSs @ahs describes (an Extended CDB AHS if ext_cdb_len > 0,
 * then a Bidirectional Read AHS if has_bidi_read_len) into @buf, zero
 * padded. Returns the bytes written, a multiple of 4 to put in
 * TotalAHSLength / 4 (0 when there is nothing to write), -EINVAL (more
 * than PDU_AHS_MAX bytes, or ext_cdb NULL with a length) or -ENOSPC.
 */
int pdu_ahs_encode(const struct pdu_ahs *ahs, void *buf, size_t len);

/*
 * From the BHS at @bhs (@len bytes available), the length of the whole
 * PDU: BHS, AHS, digests, data segment and padding. Only the length
 * fields are read, so a stream reader can skip a PDU with an unknown
 * opcode and Reject it. Returns the length, or -EINVAL (@flags),
 * -ENODATA, or -E2BIG (DataSegmentLength > @max_data).
 */
int pdu_total_len(const void *bhs, size_t len, unsigned int flags, uint32_t max_data);

/*
 * Frame and decode the PDU at the start of @buf (@len bytes; more may
 * follow). @flags: PDU_HDIGEST and/or PDU_DDIGEST as negotiated; the data
 * digest is present only when DataSegmentLength > 0 (RFC 7143 §11.2.3).
 * @max_data: the largest DataSegmentLength accepted (PDU_DSL_MAX for no
 * limit). Fills @out, whose pointers are into @buf. Returns the bytes the
 * PDU takes (out->len), or -EINVAL (@flags), -ENODATA, -EPROTO (opcode),
 * -E2BIG, -EOVERFLOW or -EPROTO (AHS), -EMSGSIZE, checked in that order;
 * on error *out is unspecified.
 */
int pdu_parse(const void *buf, size_t len, unsigned int flags, uint32_t max_data, struct pdu *out);

/*
 * As pdu_parse(), when only the header need be there: BHS, AHS and
 * header digest, the first out->data_off bytes. out->data is NULL; the
 * data segment follows at out->data_off, and the PDU ends at out->len.
 * For a stream reader that puts the data segment somewhere of its own.
 * Returns out->data_off or pdu_parse()'s errors (-EMSGSIZE: the header
 * is cut short).
 */
int pdu_parse_header(const void *buf, size_t len, unsigned int flags, uint32_t max_data,
		     struct pdu *out);

/* The RFC's name of @opcode ("SCSI Command"...), or NULL if unknown. */
const char *pdu_op_name(uint8_t opcode);

/*
 * Serial number arithmetic, RFC 1982 with SERIAL_BITS 32, for CmdSN,
 * StatSN, DataSN and R2TSN (RFC 7143 §4.2.2.1). Two numbers exactly 2^31
 * apart are unordered: lt, gt, le and ge are all false for them.
 */
static inline bool pdu_sn_lt(uint32_t a, uint32_t b)
{
	uint32_t d = b - a;

	return d != 0 && d < 0x80000000u;
}

static inline bool pdu_sn_gt(uint32_t a, uint32_t b)
{
	return pdu_sn_lt(b, a);
}

static inline bool pdu_sn_le(uint32_t a, uint32_t b)
{
	return a == b || pdu_sn_lt(a, b);
}

static inline bool pdu_sn_ge(uint32_t a, uint32_t b)
{
	return a == b || pdu_sn_gt(a, b);
}

/*
 * Whether @sn is in the command window [@exp_cmd_sn, @max_cmd_sn]; the
 * window is empty when MaxCmdSN = ExpCmdSN - 1 (RFC 7143 §4.2.2.1).
 */
static inline bool pdu_sn_in_window(uint32_t sn, uint32_t exp_cmd_sn, uint32_t max_cmd_sn)
{
	return pdu_sn_le(exp_cmd_sn, sn) && pdu_sn_le(sn, max_cmd_sn);
}

#endif
