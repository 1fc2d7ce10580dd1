/*
 * cdb: the table of SCSI commands the disk target supports, and the decoder
 * that checks a CDB against it and extracts its fields.
 *
 * One static const entry per command (operation code, plus service action
 * where the operation code has them) holds the CDB USAGE DATA bitmap exactly
 * as REPORT SUPPORTED OPERATION CODES returns it for one command (SPC-4
 * §6.35): byte 0 is the operation code, the service action sits in its own
 * field, and every other bit is one if the device server uses it. The same
 * bitmap validates CDBs: a bit set outside it is INVALID FIELD IN CDB with a
 * field pointer (SPC-4 §4.5.2.4.2).
 *
 * Rules the table follows:
 * - Reserved bits, obsolete bits, and fields we do not support (RDPROTECT,
 *   WRPROTECT, VRPROTECT, ORPROTECT: no protection information; RARC; DLD;
 *   the RESERVE/RELEASE third-party fields) are zero in the usage map and
 *   rejected. An error in a multi-bit field points at its left-most bit;
 *   reserved bits are reported one by one, as SPC-4 treats consecutive
 *   reserved bytes.
 * - A few bits are zero in the usage map yet accepted, because the standard
 *   says to ignore them or because initiators send them: FUA_NV and SYNC_NV
 *   (obsolete in SBC-4, sent by libiscsi), SCOPE/TYPE for the PERSISTENT
 *   RESERVE OUT service actions that ignore them (SPC-4 table of valid
 *   parameters), LONGID/third-party device ID/parameter list length of
 *   RESERVE(10)/RELEASE(10) when 3RDPTY is zero (SPC-2).
 * - The CONTROL byte (SAM-5) is all zero in the usage map and every
 *   bit of it is rejected: NACA because ACA is not supported (SAM-5 requires
 *   INVALID FIELD IN CDB), the obsolete LINK and FLAG bits because linked
 *   commands are not supported (SAM-4 requires the same), and the
 *   vendor-specific bits because this vendor defines none.
 * - GROUP NUMBER is the 6-bit field of SBC-4 and is decoded; DPO and FUA are
 *   used (MODE SENSE must report DPOFUA=1, libiscsi checks they agree).
 *
 * Field values are not checked here (BYTCHK 11b in WRITE AND VERIFY, page
 * codes, PC, reporting options...): handlers do that, and report it with
 * sense_invalid_cdb_field().
 *
 * Everything here is pure and callable from any context.
 */
#ifndef ISERKIT_CDB_H
#define ISERKIT_CDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sense.h"

/* The longest fixed-length CDB in the table. */
#define CDB_MAX_LEN 16

enum cdb_dir {
	CDB_DIR_NONE,
	CDB_DIR_IN,  /* data-in: target to initiator */
	CDB_DIR_OUT, /* data-out: initiator to target */
};

/* One supported command, as REPORT SUPPORTED OPERATION CODES reports it. */
struct cdb_desc {
	const char *name;
	uint8_t opcode;
	bool has_sa;		    /* SERVACTV: the operation code has service actions */
	uint16_t sa;		    /* the service action, 0 if !has_sa */
	uint8_t len;		    /* CDB LENGTH */
	enum cdb_dir dir;	    /* data direction when the command moves data */
	uint8_t usage[CDB_MAX_LEN]; /* CDB USAGE DATA, @len bytes */
};

/*
 * A decoded CDB. Fields a command does not have are zero. @length is the
 * TRANSFER LENGTH, VERIFICATION LENGTH, PREFETCH LENGTH or NUMBER OF
 * (LOGICAL) BLOCKS, in logical blocks.
 */
struct cdb {
	const struct cdb_desc *desc;
	uint8_t opcode;
	uint16_t sa;
	enum cdb_dir dir; /* this CDB's direction: none for VERIFY with BYTCHK 0, NDOB */
	uint64_t lba;
	uint32_t length;
	uint32_t alloc_len;
	uint32_t param_len;
	uint8_t group;	       /* GROUP NUMBER */
	uint8_t bytchk;	       /* VERIFY, WRITE AND VERIFY: 2 bits (SBC-3 r36, SBC-4) */
	uint8_t page_code;     /* INQUIRY (8 bits), MODE SENSE (6 bits) */
	uint8_t subpage;       /* MODE SENSE SUBPAGE CODE */
	uint8_t pc;	       /* MODE SENSE page control */
	uint8_t power_cond;    /* START STOP UNIT POWER CONDITION */
	uint8_t power_mod;     /* START STOP UNIT POWER CONDITION MODIFIER */
	uint8_t prevent;       /* PREVENT ALLOW MEDIUM REMOVAL, 2 bits */
	uint8_t select_report; /* REPORT LUNS */
	uint8_t options;       /* REPORT SUPPORTED OPERATION CODES reporting options */
	uint8_t req_opcode;    /* REPORT SUPPORTED OPERATION CODES */
	uint16_t req_sa;       /* REPORT SUPPORTED OPERATION CODES */
	uint8_t scope;	       /* PERSISTENT RESERVE OUT */
	uint8_t type;	       /* PERSISTENT RESERVE OUT */
	bool dpo, fua, immed, unmap, anchor, ndob;
	bool evpd, dbd, llbaa, pf, sp, desc_sense;
	bool start, loej, no_flush, pmi, rctd, repd;
	/* Set on -EINVAL: the first CDB bit in error (SPC-4 §4.5.2.4.2). */
	uint16_t err_byte;
	uint8_t err_bit;
};

/*
 * Decode the @len bytes at @buf into @out (which is overwritten; on error
 * only the fields named below are meaningful). @len may exceed the CDB's own
 * length (iSCSI always carries 16 bytes); the bytes past it are not looked at.
 * Returns 0, or:
 * -EOPNOTSUPP: the operation code is not in the table (@out->opcode set);
 * -EMSGSIZE:   @len is shorter than the command's CDB (@out->opcode set if
 *              @len > 0);
 * -EINVAL:     an unsupported service action of a supported operation code
 *              (@out->err_byte/err_bit = 1/4, the SERVICE ACTION field: SPC-4
 *              makes a reserved code in any field but OPERATION CODE INVALID
 *              FIELD IN CDB, and libiscsi checks it), or a bit set outside the
 *              usage map (@out->err_byte/err_bit name the first one).
 */
int cdb_decode(const uint8_t *buf, size_t len, struct cdb *out);

/*
 * The sense data a cdb_decode() error implies: INVALID COMMAND OPERATION
 * CODE for -EOPNOTSUPP; INVALID FIELD IN CDB with the field pointer for
 * -EINVAL, without one for -EMSGSIZE; INTERNAL TARGET FAILURE otherwise;
 * NO SENSE for 0. All ILLEGAL REQUEST but the last two.
 */
struct sense cdb_error_sense(int err, const struct cdb *c);

/*
 * The table entry for @opcode/@sa, or NULL. @sa is ignored for an operation
 * code without service actions (as REPORT SUPPORTED OPERATION CODES ignores
 * REQUESTED SERVICE ACTION then).
 */
const struct cdb_desc *cdb_lookup(uint8_t opcode, uint16_t sa);

/* Whether @opcode is in the table with service actions (SERVACTV). */
bool cdb_has_sa(uint8_t opcode);

/*
 * Iterate over the table in (operation code, service action) order: NULL
 * gives the first entry; NULL is returned after the last.
 */
const struct cdb_desc *cdb_next(const struct cdb_desc *prev);

#endif
