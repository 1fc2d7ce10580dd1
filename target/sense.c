/*
 * sense: SCSI sense data, fixed and descriptor formats (SPC-4 §4.5).
 */
#include <errno.h>
#include <string.h>

#include "common/be.h"
#include "sense.h"

#define RESP_FIXED_CURRENT 0x70
#define RESP_FIXED_DEFERRED 0x71
#define RESP_DESC_CURRENT 0x72
#define RESP_DESC_DEFERRED 0x73

#define FIXED_VALID 0x80
#define FIXED_ADDITIONAL_LEN (SENSE_FIXED_LEN - 8)
#define DESC_HEADER_LEN 8
#define DESC_INFO_TYPE 0x00 /* SPC-4 §4.5.2.2 */
#define DESC_INFO_LEN 12
#define DESC_INFO_VALID 0x80
#define DESC_SKS_TYPE 0x02 /* SPC-4 §4.5.2.4.1 */
#define DESC_SKS_LEN 8

/* Sense-key specific byte 0 (SPC-4 §4.5.2.4.2). */
#define SKS_SKSV 0x80
#define SKS_CD 0x40
#define SKS_BPV 0x08

struct sense sense_make(uint8_t key, uint16_t code)
{
	return (struct sense){.key = key, .asc = SENSE_ASC(code), .ascq = SENSE_ASCQ(code)};
}

struct sense sense_make_info(uint8_t key, uint16_t code, uint64_t info)
{
	struct sense s = sense_make(key, code);

	s.info_valid = true;
	s.info = info;
	return s;
}

static struct sense invalid_field(uint16_t code, bool cdb, uint16_t byte, int bit)
{
	struct sense s = sense_make(SENSE_KEY_ILLEGAL_REQUEST, code);

	s.field = (struct sense_field){
		.valid = true,
		.cdb = cdb,
		.bit_valid = bit >= 0 && bit <= 7,
		.bit = bit >= 0 && bit <= 7 ? bit : 0,
		.byte = byte,
	};
	return s;
}

struct sense sense_invalid_cdb_field(uint16_t byte, int bit)
{
	return invalid_field(SENSE_INVALID_FIELD_IN_CDB, true, byte, bit);
}

struct sense sense_invalid_param_field(uint16_t byte, int bit)
{
	return invalid_field(SENSE_INVALID_FIELD_IN_PARAM_LIST, false, byte, bit);
}

/* The three sense-key specific bytes of a field pointer (SPC-4 §4.5.2.4.2). */
static void put_field_pointer(uint8_t *p, const struct sense_field *f)
{
	p[0] = SKS_SKSV | (f->cdb ? SKS_CD : 0);
	if (f->bit_valid)
		p[0] |= SKS_BPV | f->bit;
	be_put16(p + 1, f->byte);
}

/*
 * SPC-5 (sense data introduction): the response code is 70h in every unit
 * attention whose ASC is 29h (power on, reset) or MODE PARAMETERS CHANGED,
 * so that an initiator that does not parse descriptor sense can still see
 * the reset that cleared D_SENSE.
 */
static bool forced_fixed(const struct sense *s)
{
	return s->key == SENSE_KEY_UNIT_ATTENTION &&
	       (s->asc == 0x29 || (s->asc == 0x2a && s->ascq == 0x01));
}

static int encode_fixed(const struct sense *s, bool deferred, uint8_t *buf, size_t size)
{
	if (size < SENSE_FIXED_LEN)
		return -ENOSPC;
	memset(buf, 0, SENSE_FIXED_LEN);
	buf[0] = deferred ? RESP_FIXED_DEFERRED : RESP_FIXED_CURRENT;
	buf[2] = s->key;
	/* Only 4 bytes of INFORMATION fit; a larger value cannot be VALID. */
	if (s->info_valid && s->info <= UINT32_MAX) {
		buf[0] |= FIXED_VALID;
		be_put32(buf + 3, s->info);
	}
	buf[7] = FIXED_ADDITIONAL_LEN;
	buf[12] = s->asc;
	buf[13] = s->ascq;
	if (s->field.valid)
		put_field_pointer(buf + 15, &s->field);
	return SENSE_FIXED_LEN;
}

static size_t desc_len(const struct sense *s)
{
	return DESC_HEADER_LEN + (s->info_valid ? DESC_INFO_LEN : 0) +
	       (s->field.valid ? DESC_SKS_LEN : 0);
}

static int encode_desc(const struct sense *s, bool deferred, uint8_t *buf, size_t size)
{
	size_t len = desc_len(s);
	uint8_t *p = buf + DESC_HEADER_LEN;

	if (size < len)
		return -ENOSPC;
	memset(buf, 0, len);
	buf[0] = deferred ? RESP_DESC_DEFERRED : RESP_DESC_CURRENT;
	buf[1] = s->key;
	buf[2] = s->asc;
	buf[3] = s->ascq;
	buf[7] = len - DESC_HEADER_LEN;
	if (s->info_valid) {
		p[0] = DESC_INFO_TYPE;
		p[1] = DESC_INFO_LEN - 2;
		p[2] = DESC_INFO_VALID;
		be_put64(p + 4, s->info);
		p += DESC_INFO_LEN;
	}
	if (s->field.valid) {
		p[0] = DESC_SKS_TYPE;
		p[1] = DESC_SKS_LEN - 2;
		put_field_pointer(p + 4, &s->field);
	}
	return len;
}

int sense_encode(const struct sense *s, unsigned int flags, uint8_t *buf, size_t size)
{
	bool deferred = flags & SENSE_DEFERRED;

	if (s->key > 0xf)
		return -EINVAL;
	if (s->field.valid && (s->key != SENSE_KEY_ILLEGAL_REQUEST || s->field.bit > 7))
		return -EINVAL;
	if (forced_fixed(s))
		return encode_fixed(s, false, buf, size);
	if (flags & SENSE_DESC)
		return encode_desc(s, deferred, buf, size);
	return encode_fixed(s, deferred, buf, size);
}
