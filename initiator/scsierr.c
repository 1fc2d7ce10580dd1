/*
 * scsierr: SCSI status and sense data to errno, and to words for logs.
 * The map is scsierr.h's table; the reasons for it are the Linux block
 * layer's (scsi_io_completion, scsi_result_to_blk_status).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "scsierr.h"

/* SAM-5 §5.3.1 status codes */
enum {
	ST_GOOD = 0x00,
	ST_CHECK_CONDITION = 0x02,
	ST_CONDITION_MET = 0x04,
	ST_BUSY = 0x08,
	ST_RESERVATION_CONFLICT = 0x18,
	ST_TASK_SET_FULL = 0x28,
	ST_ACA_ACTIVE = 0x30,
	ST_TASK_ABORTED = 0x40,
};

/* SPC-4 §4.5.6 table 27 sense keys */
enum {
	KEY_NO_SENSE = 0x0,
	KEY_RECOVERED_ERROR = 0x1,
	KEY_NOT_READY = 0x2,
	KEY_MEDIUM_ERROR = 0x3,
	KEY_HARDWARE_ERROR = 0x4,
	KEY_ILLEGAL_REQUEST = 0x5,
	KEY_UNIT_ATTENTION = 0x6,
	KEY_DATA_PROTECT = 0x7,
	KEY_ABORTED_COMMAND = 0xb,
	KEY_MISCOMPARE = 0xe,
};

#define ASC(asc, ascq) ((unsigned int)(asc) << 8 | (ascq))

/* SPC-4 §4.5.1: response codes, VALID bit (fixed format) masked off */
#define RESP_FIXED_CURRENT 0x70
#define RESP_FIXED_DEFERRED 0x71
#define RESP_DESC_CURRENT 0x72
#define RESP_DESC_DEFERRED 0x73

static unsigned int resp_code(const uint8_t *sense, size_t len)
{
	return sense && len ? sense[0] & 0x7f : 0;
}

/*
 * Fixed format, SPC-4 §4.5.3: the key in byte 2, ASC and ASCQ in bytes 12
 * and 13, which exist only as far as both the buffer and the ADDITIONAL
 * SENSE LENGTH (byte 7, the count of bytes after it) reach. Bytes that are
 * missing read as 0, as Linux's scsi_normalize_sense() reads them: a cut
 * sense still tells the key.
 */
static int decode_fixed(const uint8_t *sense, size_t len, struct scsierr_sense *out)
{
	size_t valid = len;

	if (len < 3)
		return -EINVAL;
	if (len > 7 && (size_t)sense[7] + 8 < valid)
		valid = (size_t)sense[7] + 8;
	out->key = sense[2] & 0x0f;
	out->asc = valid > 12 ? sense[12] : 0;
	out->ascq = valid > 13 ? sense[13] : 0;
	return 0;
}

/* Descriptor format, SPC-4 §4.5.2: key, ASC and ASCQ in bytes 1 to 3 of
 * the header; the descriptors after it do not change them. */
static int decode_desc(const uint8_t *sense, size_t len, struct scsierr_sense *out)
{
	if (len < 2)
		return -EINVAL;
	out->key = sense[1] & 0x0f;
	out->asc = len > 2 ? sense[2] : 0;
	out->ascq = len > 3 ? sense[3] : 0;
	return 0;
}

int scsierr_sense_decode(const uint8_t *sense, size_t len, struct scsierr_sense *out)
{
	switch (resp_code(sense, len)) {
	case RESP_FIXED_CURRENT:
	case RESP_FIXED_DEFERRED:
		return decode_fixed(sense, len, out);
	case RESP_DESC_CURRENT:
	case RESP_DESC_DEFERRED:
		return decode_desc(sense, len, out);
	default:
		return -EINVAL;
	}
}

static int sense_to_errno(const struct scsierr_sense *s)
{
	unsigned int code = ASC(s->asc, s->ascq);

	switch (s->key) {
	case KEY_NO_SENSE:
	case KEY_RECOVERED_ERROR:
		return 0;
	case KEY_NOT_READY:
		/* only a unit on its way up is worth waiting for */
		return code == ASC(0x04, 0x01) ? -EAGAIN : -EIO;
	case KEY_ILLEGAL_REQUEST:
		return code == ASC(0x20, 0x00) ? -EOPNOTSUPP : -EINVAL;
	case KEY_UNIT_ATTENTION:
	case KEY_ABORTED_COMMAND:
		return -EAGAIN;
	case KEY_DATA_PROTECT:
		/* a thin LUN out of space is not a read-only one (SBC-3 §4.7.3.6) */
		return code == ASC(0x27, 0x07) ? -ENOSPC : -EROFS;
	case KEY_MISCOMPARE:
		return -EILSEQ;
	default:
		return -EIO;
	}
}

int scsierr_to_errno(uint8_t status, const uint8_t *sense, size_t len)
{
	struct scsierr_sense s;

	switch (status) {
	case ST_GOOD:
	case ST_CONDITION_MET:
		return 0;
	case ST_RESERVATION_CONFLICT:
		return -EBADE;
	case ST_BUSY:
	case ST_TASK_SET_FULL:
		return -EAGAIN;
	case ST_CHECK_CONDITION:
		/* no sense to go by: nothing says a retry would help */
		if (scsierr_sense_decode(sense, len, &s))
			return -EIO;
		return sense_to_errno(&s);
	default:
		return -EIO;
	}
}

static const char *const key_names[16] = {
	"NO SENSE",	  "RECOVERED ERROR", "NOT READY",      "MEDIUM ERROR",
	"HARDWARE ERROR", "ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT",
	"BLANK CHECK",	  "VENDOR SPECIFIC", "COPY ABORTED",   "ABORTED COMMAND",
	"SENSE KEY 0xC",  "VOLUME OVERFLOW", "MISCOMPARE",     "COMPLETED",
};

struct asc_name {
	unsigned int code;
	const char *name;
};

/* SPC-4 §4.5.6 table 28: the pairs a disk and an iSCSI target send
 * (RFC 7143 §11.4.7.2 for the iSCSI ones). */
static const struct asc_name asc_names[] = {
	{ASC(0x00, 0x00), "NO ADDITIONAL SENSE INFORMATION"},
	{ASC(0x04, 0x00), "LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE"},
	{ASC(0x04, 0x01), "LOGICAL UNIT IS IN PROCESS OF BECOMING READY"},
	{ASC(0x04, 0x02), "LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED"},
	{ASC(0x04, 0x03), "LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED"},
	{ASC(0x04, 0x04), "LOGICAL UNIT NOT READY, FORMAT IN PROGRESS"},
	{ASC(0x04, 0x0a), "LOGICAL UNIT NOT ACCESSIBLE, ASYMMETRIC ACCESS STATE TRANSITION"},
	{ASC(0x04, 0x0b), "LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE"},
	{ASC(0x04, 0x0c), "LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN UNAVAILABLE STATE"},
	{ASC(0x08, 0x00), "LOGICAL UNIT COMMUNICATION FAILURE"},
	{ASC(0x0c, 0x00), "WRITE ERROR"},
	{ASC(0x0c, 0x0c), "UNEXPECTED UNSOLICITED DATA"},
	{ASC(0x0c, 0x0d), "NOT ENOUGH UNSOLICITED DATA"},
	{ASC(0x10, 0x01), "LOGICAL BLOCK GUARD CHECK FAILED"},
	{ASC(0x10, 0x02), "LOGICAL BLOCK APPLICATION TAG CHECK FAILED"},
	{ASC(0x10, 0x03), "LOGICAL BLOCK REFERENCE TAG CHECK FAILED"},
	{ASC(0x11, 0x00), "UNRECOVERED READ ERROR"},
	{ASC(0x11, 0x13), "FAILED RETRANSMISSION REQUEST"},
	{ASC(0x1a, 0x00), "PARAMETER LIST LENGTH ERROR"},
	{ASC(0x1d, 0x00), "MISCOMPARE DURING VERIFY OPERATION"},
	{ASC(0x20, 0x00), "INVALID COMMAND OPERATION CODE"},
	{ASC(0x21, 0x00), "LOGICAL BLOCK ADDRESS OUT OF RANGE"},
	{ASC(0x24, 0x00), "INVALID FIELD IN CDB"},
	{ASC(0x25, 0x00), "LOGICAL UNIT NOT SUPPORTED"},
	{ASC(0x26, 0x00), "INVALID FIELD IN PARAMETER LIST"},
	{ASC(0x26, 0x01), "PARAMETER NOT SUPPORTED"},
	{ASC(0x26, 0x02), "PARAMETER VALUE INVALID"},
	{ASC(0x27, 0x00), "WRITE PROTECTED"},
	{ASC(0x27, 0x01), "HARDWARE WRITE PROTECTED"},
	{ASC(0x27, 0x02), "LOGICAL UNIT SOFTWARE WRITE PROTECTED"},
	{ASC(0x27, 0x07), "SPACE ALLOCATION FAILED WRITE PROTECT"},
	{ASC(0x28, 0x00), "NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED"},
	{ASC(0x29, 0x00), "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED"},
	{ASC(0x29, 0x01), "POWER ON OCCURRED"},
	{ASC(0x29, 0x02), "SCSI BUS RESET OCCURRED"},
	{ASC(0x29, 0x03), "BUS DEVICE RESET FUNCTION OCCURRED"},
	{ASC(0x29, 0x04), "DEVICE INTERNAL RESET"},
	{ASC(0x29, 0x07), "I_T NEXUS LOSS OCCURRED"},
	{ASC(0x2a, 0x01), "MODE PARAMETERS CHANGED"},
	{ASC(0x2a, 0x03), "RESERVATIONS PREEMPTED"},
	{ASC(0x2a, 0x04), "RESERVATIONS RELEASED"},
	{ASC(0x2a, 0x05), "REGISTRATIONS PREEMPTED"},
	{ASC(0x2a, 0x06), "ASYMMETRIC ACCESS STATE CHANGED"},
	{ASC(0x2a, 0x09), "CAPACITY DATA HAS CHANGED"},
	{ASC(0x2c, 0x00), "COMMAND SEQUENCE ERROR"},
	{ASC(0x2f, 0x00), "COMMANDS CLEARED BY ANOTHER INITIATOR"},
	{ASC(0x31, 0x00), "MEDIUM FORMAT CORRUPTED"},
	{ASC(0x38, 0x07), "THIN PROVISIONING SOFT THRESHOLD REACHED"},
	{ASC(0x39, 0x00), "SAVING PARAMETERS NOT SUPPORTED"},
	{ASC(0x3a, 0x00), "MEDIUM NOT PRESENT"},
	{ASC(0x3f, 0x03), "INQUIRY DATA HAS CHANGED"},
	{ASC(0x3f, 0x0e), "REPORTED LUNS DATA HAS CHANGED"},
	{ASC(0x44, 0x00), "INTERNAL TARGET FAILURE"},
	{ASC(0x47, 0x05), "PROTOCOL SERVICE CRC ERROR"},
	{ASC(0x49, 0x00), "INVALID MESSAGE ERROR"},
	{ASC(0x4b, 0x00), "DATA PHASE ERROR"},
	{ASC(0x4b, 0x01), "INVALID TARGET PORT TRANSFER TAG RECEIVED"},
	{ASC(0x4b, 0x02), "TOO MUCH WRITE DATA"},
	{ASC(0x4b, 0x03), "ACK/NAK TIMEOUT"},
	{ASC(0x4b, 0x04), "NAK RECEIVED"},
	{ASC(0x4b, 0x05), "DATA OFFSET ERROR"},
	{ASC(0x4b, 0x06), "INITIATOR RESPONSE TIMEOUT"},
	{ASC(0x4e, 0x00), "OVERLAPPED COMMANDS ATTEMPTED"},
	{ASC(0x53, 0x02), "MEDIUM REMOVAL PREVENTED"},
	{ASC(0x55, 0x03), "INSUFFICIENT RESOURCES"},
};

static const char *asc_name(const struct scsierr_sense *s)
{
	unsigned int code = ASC(s->asc, s->ascq);
	size_t i;

	for (i = 0; i < sizeof(asc_names) / sizeof(asc_names[0]); i++)
		if (asc_names[i].code == code)
			return asc_names[i].name;
	return NULL;
}

static const char *status_name(uint8_t status)
{
	switch (status) {
	case ST_GOOD:
		return "GOOD";
	case ST_CHECK_CONDITION:
		return "CHECK CONDITION";
	case ST_CONDITION_MET:
		return "CONDITION MET";
	case ST_BUSY:
		return "BUSY";
	case ST_RESERVATION_CONFLICT:
		return "RESERVATION CONFLICT";
	case ST_TASK_SET_FULL:
		return "TASK SET FULL";
	case ST_ACA_ACTIVE:
		return "ACA ACTIVE";
	case ST_TASK_ABORTED:
		return "TASK ABORTED";
	default:
		return NULL;
	}
}

static void describe_sense(const uint8_t *sense, size_t len, char *buf, size_t size)
{
	unsigned int rc = resp_code(sense, len);
	const char *deferred = "";
	struct scsierr_sense s;
	const char *name;

	if (!sense || !len) {
		snprintf(buf, size, "CHECK CONDITION, no sense data");
		return;
	}
	if (scsierr_sense_decode(sense, len, &s)) {
		snprintf(buf, size,
			 "CHECK CONDITION, unreadable sense data (response code 0x%02x, %zu bytes)",
			 sense[0], len);
		return;
	}
	/* a deferred error reports an earlier command's failure (SPC-4 §4.5.5) */
	if (rc == RESP_FIXED_DEFERRED || rc == RESP_DESC_DEFERRED)
		deferred = ", deferred";
	name = asc_name(&s);
	if (name)
		snprintf(buf, size, "%s: %s (%02X/%02X)%s", key_names[s.key], name, s.asc, s.ascq,
			 deferred);
	else
		snprintf(buf, size, "%s (%02X/%02X)%s", key_names[s.key], s.asc, s.ascq, deferred);
}

const char *scsierr_describe(uint8_t status, const uint8_t *sense, size_t len, char *buf,
			     size_t size)
{
	const char *name = status_name(status);

	if (!buf || !size)
		return buf;
	if (status == ST_CHECK_CONDITION)
		describe_sense(sense, len, buf, size);
	else if (name)
		snprintf(buf, size, "%s", name);
	else
		snprintf(buf, size, "status 0x%02x", status);
	return buf;
}
