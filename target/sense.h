/*
 * sense: SCSI sense data (SPC-4 §4.5).
 *
 * A command handler says *what* went wrong with a small value, struct sense
 * (sense key, ASC/ASCQ, optional INFORMATION, optional field pointer); the
 * encoder decides *how* it goes on the wire: fixed format (response code
 * 70h/71h, SPC-4 §4.5.3) or descriptor format (72h/73h, SPC-4 §4.5.2), as
 * the D_SENSE bit of the Control mode page or the DESC bit of REQUEST SENSE
 * selects.
 *
 * Everything here is pure: no state, no allocation, callable from any
 * context.
 */
#ifndef ISERKIT_SENSE_H
#define ISERKIT_SENSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sense keys, SPC-4 §4.5.6 table 27 (0Ch is obsolete; 0Fh is not used here). */
#define SENSE_KEY_NO_SENSE 0x0
#define SENSE_KEY_RECOVERED_ERROR 0x1
#define SENSE_KEY_NOT_READY 0x2
#define SENSE_KEY_MEDIUM_ERROR 0x3
#define SENSE_KEY_HARDWARE_ERROR 0x4
#define SENSE_KEY_ILLEGAL_REQUEST 0x5
#define SENSE_KEY_UNIT_ATTENTION 0x6
#define SENSE_KEY_DATA_PROTECT 0x7
#define SENSE_KEY_BLANK_CHECK 0x8
#define SENSE_KEY_VENDOR_SPECIFIC 0x9
#define SENSE_KEY_COPY_ABORTED 0xa
#define SENSE_KEY_ABORTED_COMMAND 0xb
#define SENSE_KEY_VOLUME_OVERFLOW 0xd
#define SENSE_KEY_MISCOMPARE 0xe

/*
 * Additional sense code and qualifier as one value, ASC in the high byte
 * (SPC-4 §4.5.6 table 28). SENSE_ASC()/SENSE_ASCQ() split it.
 */
#define SENSE_CODE(asc, ascq) ((uint16_t)((asc) << 8 | (ascq)))
#define SENSE_ASC(code) ((uint8_t)((code) >> 8))
#define SENSE_ASCQ(code) ((uint8_t)((code)&0xff))

#define SENSE_NO_ADDITIONAL_SENSE 0x0000
#define SENSE_LU_NOT_READY 0x0400 /* cause not reportable */
#define SENSE_LU_NOT_READY_BECOMING_READY 0x0401
#define SENSE_LU_NOT_READY_INIT_REQUIRED 0x0402 /* initializing command required */
#define SENSE_LU_NOT_READY_MANUAL_INTERVENTION 0x0403
#define SENSE_WRITE_ERROR 0x0c00
#define SENSE_UNEXPECTED_UNSOLICITED_DATA 0x0c0c /* RFC 7143 §11.4.7.2 */
#define SENSE_NOT_ENOUGH_UNSOLICITED_DATA 0x0c0d /* RFC 7143 §11.4.7.2 */
#define SENSE_UNRECOVERED_READ_ERROR 0x1100
#define SENSE_FAILED_RETRANSMISSION_REQUEST 0x1113 /* SNACK rejected, RFC 7143 */
#define SENSE_PARAMETER_LIST_LENGTH_ERROR 0x1a00
#define SENSE_MISCOMPARE_DURING_VERIFY 0x1d00
#define SENSE_INVALID_COMMAND_OPCODE 0x2000
#define SENSE_LBA_OUT_OF_RANGE 0x2100
#define SENSE_INVALID_FIELD_IN_CDB 0x2400
#define SENSE_LU_NOT_SUPPORTED 0x2500
#define SENSE_INVALID_FIELD_IN_PARAM_LIST 0x2600
#define SENSE_PARAMETER_NOT_SUPPORTED 0x2601
#define SENSE_PARAMETER_VALUE_INVALID 0x2602
#define SENSE_WRITE_PROTECTED 0x2700
#define SENSE_SPACE_ALLOC_FAILED_WRITE_PROTECT 0x2707
#define SENSE_POWER_ON_RESET 0x2900 /* power on, reset, or bus device reset occurred */
#define SENSE_POWER_ON_OCCURRED 0x2901
#define SENSE_BUS_DEVICE_RESET 0x2903 /* bus device reset function occurred */
#define SENSE_I_T_NEXUS_LOSS 0x2907
#define SENSE_MODE_PARAMETERS_CHANGED 0x2a01
#define SENSE_RESERVATIONS_PREEMPTED 0x2a03
#define SENSE_RESERVATIONS_RELEASED 0x2a04
#define SENSE_REGISTRATIONS_PREEMPTED 0x2a05
#define SENSE_CAPACITY_DATA_CHANGED 0x2a09
#define SENSE_COMMAND_SEQUENCE_ERROR 0x2c00
#define SENSE_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR 0x2f00
#define SENSE_SAVING_PARAMS_NOT_SUPPORTED 0x3900
#define SENSE_MEDIUM_NOT_PRESENT 0x3a00
#define SENSE_INQUIRY_DATA_CHANGED 0x3f03
#define SENSE_REPORTED_LUNS_DATA_CHANGED 0x3f0e
#define SENSE_INTERNAL_TARGET_FAILURE 0x4400
#define SENSE_PROTOCOL_SERVICE_CRC_ERROR 0x4705 /* digest error, RFC 7143 §11.4.7.2 */
#define SENSE_INVALID_MESSAGE_ERROR 0x4900
#define SENSE_DATA_PHASE_ERROR 0x4b00
#define SENSE_INVALID_TARGET_PORT_TRANSFER_TAG 0x4b01
#define SENSE_TOO_MUCH_WRITE_DATA 0x4b02
#define SENSE_DATA_OFFSET_ERROR 0x4b05
#define SENSE_MEDIUM_REMOVAL_PREVENTED 0x5302

/* Fixed format sense data is always this long (ADDITIONAL SENSE LENGTH 0Ah). */
#define SENSE_FIXED_LEN 18
/* Enough for either format with every descriptor this module emits. */
#define SENSE_MAX_LEN 28

/* sense_encode() flags */
#define SENSE_DESC 0x1	   /* descriptor format (D_SENSE, or REQUEST SENSE DESC) */
#define SENSE_DEFERRED 0x2 /* a deferred error (71h/73h) instead of a current one */

/*
 * Field pointer sense-key specific data (SPC-4 §4.5.2.4.2): which byte, and
 * optionally which bit, of the CDB or of the parameter list is in error.
 * Only meaningful with the ILLEGAL REQUEST sense key.
 */
struct sense_field {
	bool valid;	/* SKSV */
	bool cdb;	/* C/D: true = in the CDB, false = in the parameter list */
	bool bit_valid; /* BPV */
	uint8_t bit;	/* BIT POINTER, 0..7, the left-most bit of the field */
	uint16_t byte;	/* FIELD POINTER, the first byte of the field */
};

/*
 * What went wrong. A zeroed struct is NO SENSE, 00h/00h. @info is the
 * INFORMATION field (an LBA, or the offset of a miscompare); it is reported
 * only if @info_valid.
 */
struct sense {
	uint8_t key;
	uint8_t asc;
	uint8_t ascq;
	bool info_valid;
	uint64_t info;
	struct sense_field field;
};

/* @key with the ASC/ASCQ pair @code (a SENSE_* value), nothing else. */
struct sense sense_make(uint8_t key, uint16_t code);

/* @key and @code with the INFORMATION field set to @info. */
struct sense sense_make_info(uint8_t key, uint16_t code, uint64_t info);

/*
 * ILLEGAL REQUEST, INVALID FIELD IN CDB, pointing at CDB byte @byte and, if
 * @bit is 0..7, at that bit (pass -1 for no bit pointer).
 */
struct sense sense_invalid_cdb_field(uint16_t byte, int bit);

/*
 * ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST, pointing at byte @byte
 * of the parameter list and, if @bit is 0..7, at that bit (-1 for none).
 */
struct sense sense_invalid_param_field(uint16_t byte, int bit);

/*
 * Encode @s into @buf (@size bytes) in the format @flags selects (SENSE_DESC,
 * SENSE_DEFERRED). Unit attentions for ASC 29h and for MODE PARAMETERS
 * CHANGED are always fixed format, current (70h), whatever @flags says, as
 * SPC requires so that an initiator can read them after a reset cleared
 * D_SENSE.
 *
 * Fixed format: 18 bytes. Its INFORMATION field holds 4 bytes; a larger
 * @info is reported with the VALID bit clear and the field zero (the
 * descriptor format carries all 8 bytes).
 *
 * Descriptor format: an 8-byte header, then an information descriptor if
 * @s->info_valid, then a sense-key specific descriptor if @s->field.valid.
 *
 * Returns the number of bytes written (at most SENSE_MAX_LEN); -EINVAL if
 * @s->key does not fit in 4 bits, a field pointer comes with a key other
 * than ILLEGAL REQUEST, or its bit is above 7; -ENOSPC if @size is too
 * small (nothing is written then). A caller truncating to an allocation
 * length (REQUEST SENSE) encodes into a SENSE_MAX_LEN buffer first.
 */
int sense_encode(const struct sense *s, unsigned int flags, uint8_t *buf, size_t size);

#endif
