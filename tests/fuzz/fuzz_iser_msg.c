/*
 * libFuzzer harness for iser_msg_parse() (common/xport/iser.h): a received
 * Send message, the iSER transport's wire input. The first byte chooses the
 * largest data segment accepted and how many bytes the buffer has past the
 * message (0-3, where a data segment without its padding may reach); the
 * rest is the message. What parses must lie inside the buffer, within the
 * limit; any other outcome, or an undocumented errno, aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xport/iser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iser_hdr_ctrl ctrl;
	uint32_t max, i;
	size_t slack;
	volatile uint8_t sink = 0;
	struct pdu p;
	uint8_t *buf;
	int ret;

	if (size < 1)
		return 0;
	max = data[0] & 1 ? ISER_DEFAULT_DSL : 512;
	slack = (data[0] >> 1) & 3;
	data++;
	size--;
	buf = malloc(size + slack + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	memset(buf + size, 0xa5, slack);
	ret = iser_msg_parse(buf, size, size + slack, max, &p, &ctrl);
	if (ret == 0) {
		if (p.bhs.data_len > max || p.len > size + slack - ISER_HDR_LEN)
			abort();
		if (p.bhs.data_len && (p.data < buf + ISER_HDR_LEN + PDU_BHS_LEN ||
				       p.data + p.bhs.data_len > buf + size + slack))
			abort();
		for (i = 0; i < p.bhs.data_len; i++)
			sink ^= p.data[i];
		if (!ctrl.wsv && (ctrl.write_stag || ctrl.write_va))
			abort();
		if (!ctrl.rsv && (ctrl.read_stag || ctrl.read_va))
			abort();
	} else if (ret != -EPROTO && ret != -EOPNOTSUPP && ret != -ENODATA && ret != -E2BIG &&
		   ret != -EOVERFLOW && ret != -EMSGSIZE) {
		abort();
	}
	(void)sink;
	free(buf);
	return 0;
}
