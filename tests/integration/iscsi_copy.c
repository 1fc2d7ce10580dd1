/*
 * iscsi_copy: a file to a LUN and back, through libiscsi's synchronous API
 * (software nobody here wrote; over iser:// URLs it is libiscsi's own iSER
 * initiator). The kernel-RDMA lane uses it as its libiscsi peer.
 *
 *   iscsi_copy put URL FILE     FILE's bytes to the LUN from LBA 0, in
 *                               WRITE(16)s of at most 256 KiB
 *   iscsi_copy get URL FILE N   the LUN's first N bytes to FILE, in READ(16)s
 *
 * N and FILE's size must be whole blocks. Exit 0 when every command ended
 * GOOD; 1 with a line naming the failure otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

/* libiscsi 1.19's iSER refuses a command of more than 256 KiB ("supports
 * messages smaller than 512k", DATA_BUFFER_SIZE in its iser-private.h). */
#define CHUNK (256u << 10)

static const char *prog = "iscsi_copy";

static int fail(struct iscsi_context *iscsi, const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what,
		iscsi ? iscsi_get_error(iscsi) : strerror(errno));
	return 1;
}

static int scsi_ok(struct iscsi_context *iscsi, struct scsi_task *task, const char *what)
{
	if (task && task->status == SCSI_STATUS_GOOD)
		return 0;
	if (task)
		fprintf(stderr, "%s: %s: status 0x%x, sense %s\n", prog, what, task->status,
			scsi_sense_ascq_str(task->sense.ascq));
	else
		fprintf(stderr, "%s: %s: %s\n", prog, what, iscsi_get_error(iscsi));
	return 1;
}

static int copy(struct iscsi_context *iscsi, int lun, int fd, int put, uint64_t len)
{
	struct scsi_task *task = iscsi_readcapacity16_sync(iscsi, lun);
	struct scsi_readcapacity16 *rc16;
	unsigned char *buf;
	uint32_t bs;
	uint64_t off;
	int err = 0;

	if (scsi_ok(iscsi, task, "READ CAPACITY(16)"))
		return 1;
	rc16 = scsi_datain_unmarshall(task);
	if (!rc16) {
		scsi_free_scsi_task(task);
		return fail(iscsi, "READ CAPACITY(16) data");
	}
	bs = rc16->block_length;
	if (len % bs || len / bs > rc16->returned_lba + 1) {
		fprintf(stderr,
			"%s: %" PRIu64 " bytes is not whole %u-byte blocks within the LUN\n", prog,
			len, bs);
		scsi_free_scsi_task(task);
		return 1;
	}
	scsi_free_scsi_task(task);
	buf = malloc(CHUNK);
	if (!buf)
		return fail(NULL, "malloc");
	for (off = 0; off < len && !err; off += CHUNK) {
		uint32_t n = len - off < CHUNK ? (uint32_t)(len - off) : CHUNK;

		if (put) {
			if (pread(fd, buf, n, (off_t)off) != (ssize_t)n) {
				err = fail(NULL, "read FILE");
				break;
			}
			task = iscsi_write16_sync(iscsi, lun, off / bs, buf, n, bs, 0, 0, 0, 0, 0);
			err = scsi_ok(iscsi, task, "WRITE(16)");
		} else {
			task = iscsi_read16_sync(iscsi, lun, off / bs, n, bs, 0, 0, 0, 0, 0);
			err = scsi_ok(iscsi, task, "READ(16)");
			if (!err && task->datain.size != (int)n) {
				fprintf(stderr, "%s: READ(16) returned %d bytes, not %u\n", prog,
					task->datain.size, n);
				err = 1;
			}
			if (!err && pwrite(fd, task->datain.data, n, (off_t)off) != (ssize_t)n)
				err = fail(NULL, "write FILE");
		}
		if (task)
			scsi_free_scsi_task(task);
	}
	free(buf);
	return err;
}

int main(int argc, char **argv)
{
	struct iscsi_context *iscsi;
	struct iscsi_url *url;
	struct stat st;
	uint64_t len;
	int put, fd, err;

	if (argc < 4 || (strcmp(argv[1], "put") && strcmp(argv[1], "get")) ||
	    (!strcmp(argv[1], "get") && argc != 5) || (!strcmp(argv[1], "put") && argc != 4)) {
		fprintf(stderr, "usage: %s put URL FILE | get URL FILE BYTES\n", prog);
		return 1;
	}
	put = !strcmp(argv[1], "put");
	fd = put ? open(argv[3], O_RDONLY) : open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fail(NULL, argv[3]);
	if (put) {
		if (fstat(fd, &st))
			return fail(NULL, argv[3]);
		len = (uint64_t)st.st_size;
	} else {
		len = strtoull(argv[4], NULL, 0);
	}
	iscsi = iscsi_create_context("iqn.2026-11.org.example:iscsi-copy");
	if (!iscsi)
		return fail(NULL, "iscsi_create_context");
	url = iscsi_parse_full_url(iscsi, argv[2]);
	if (!url)
		return fail(iscsi, argv[2]);
	iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(iscsi, ISCSI_HEADER_DIGEST_NONE);
	if (iscsi_full_connect_sync(iscsi, url->portal, url->lun))
		return fail(iscsi, "login");
	err = copy(iscsi, url->lun, fd, put, len);
	iscsi_logout_sync(iscsi);
	iscsi_destroy_url(url);
	iscsi_destroy_context(iscsi);
	if (close(fd))
		err = fail(NULL, argv[3]);
	return err;
}
