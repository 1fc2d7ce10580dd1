/*
 * lun: a LUN's backing store (a regular file, sparse, or a block device)
 * and its per-nexus state: unit attentions and the reservation state the
 * SCSI layer keeps.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/ioq.h"
#include "lun.h"

/* Open @cl->path, creating it sparse if it is missing and a size is set. */
static int open_backing(const struct config_lun *cl)
{
	int flags = (cl->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	int fd = open(cl->path, flags);

	if (fd >= 0 || errno != ENOENT || !cl->size || cl->read_only)
		return fd >= 0 ? fd : -errno;
	fd = open(cl->path, flags | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)cl->size)) {
		int err = -errno;

		close(fd);
		unlink(cl->path);
		return err;
	}
	return fd;
}

static int backing_size(int fd, bool *blockdev, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	*blockdev = S_ISBLK(st.st_mode);
	if (*blockdev)
		return ioctl(fd, BLKGETSIZE64, size) ? -errno : 0;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = (uint64_t)st.st_size;
	return 0;
}

static void lun_defaults(struct lun *l)
{
	l->wce = true;
	l->d_sense = false;
	l->swp = false;
}

int lun_open(const struct config_lun *cl, struct ioq *q, struct lun **ret)
{
	unsigned int bs = cl->block_size ? cl->block_size : 512;
	struct lun *l;
	uint64_t size;
	int fd, err;

	if (bs != 512 && bs != 4096)
		return -EINVAL;
	fd = open_backing(cl);
	if (fd < 0)
		return fd;
	l = calloc(1, sizeof(*l));
	if (!l) {
		err = -ENOMEM;
		goto err_close;
	}
	err = backing_size(fd, &l->blockdev, &size);
	if (err)
		goto err_free;
	if (size == 0 || size % bs) {
		err = -EINVAL;
		goto err_free;
	}
	l->number = cl->lun;
	l->fd = fd;
	l->read_only = cl->read_only;
	l->blocks = size / bs;
	l->block_size = bs;
	l->q = q;
	l->ioq_class = ioq_fd_class(fd);
	memcpy(l->serial, cl->serial, sizeof(l->serial));
	l->serial[sizeof(l->serial) - 1] = '\0';
	l->naa = cl->naa;
	lun_defaults(l);
	*ret = l;
	return 0;

err_free:
	free(l);
err_close:
	close(fd);
	return err;
}

void lun_close(struct lun *l)
{
	if (!l)
		return;
	if (!l->read_only)
		fdatasync(l->fd);
	close(l->fd);
	while (l->nexuses) {
		struct lun_nexus *ln = l->nexuses;

		l->nexuses = ln->next;
		free(ln);
	}
	while (l->regs) {
		struct lun_reg *r = l->regs;

		l->regs = r->next;
		free(r);
	}
	free(l);
}

unsigned int lun_number(const struct lun *l)
{
	return l->number;
}

uint64_t lun_blocks(const struct lun *l)
{
	return l->blocks;
}

unsigned int lun_block_size(const struct lun *l)
{
	return l->block_size;
}

bool lun_write_protected(const struct lun *l)
{
	return l->read_only || l->swp;
}

void lun_ua_add(struct lun_nexus *ln, uint16_t code)
{
	for (unsigned int i = 0; i < ln->nua; i++)
		if (ln->ua[i] == code)
			return;
	if (ln->nua < LUN_UA_MAX)
		ln->ua[ln->nua++] = code;
}

bool lun_ua_pop(struct lun_nexus *ln, uint16_t *code)
{
	if (!ln->nua)
		return false;
	*code = ln->ua[0];
	memmove(ln->ua, ln->ua + 1, (ln->nua - 1) * sizeof(ln->ua[0]));
	ln->nua--;
	return true;
}

struct lun_nexus *lun_nexus_get(struct lun *l, const struct scsi_nexus *n)
{
	struct lun_nexus *ln;

	for (ln = l->nexuses; ln; ln = ln->next)
		if (ln->id == n->id)
			return ln;
	ln = calloc(1, sizeof(*ln));
	if (!ln)
		return NULL;
	ln->id = n->id;
	memcpy(ln->initiator, n->initiator, sizeof(ln->initiator));
	ln->initiator[sizeof(ln->initiator) - 1] = '\0';
	memcpy(ln->isid, n->isid, sizeof(ln->isid));
	/* SAM-5 §6.3.2: the first command of a new I_T nexus. */
	lun_ua_add(ln, SENSE_POWER_ON_RESET);
	ln->next = l->nexuses;
	l->nexuses = ln;
	return ln;
}

void lun_unit_attention(struct lun *l, uint64_t except, uint16_t asc_ascq)
{
	for (struct lun_nexus *ln = l->nexuses; ln; ln = ln->next)
		if (ln->id != except)
			lun_ua_add(ln, asc_ascq);
}

void lun_nexus_gone(struct lun *l, uint64_t nexus_id)
{
	struct lun_nexus **pp = &l->nexuses;

	if (l->res2 && l->res2_nexus == nexus_id)
		l->res2 = false;
	while (*pp) {
		struct lun_nexus *ln = *pp;

		if (ln->id == nexus_id) {
			*pp = ln->next;
			free(ln);
			return;
		}
		pp = &ln->next;
	}
}

void lun_reset(struct lun *l, uint64_t except, uint16_t asc_ascq)
{
	l->res2 = false;
	lun_defaults(l);
	lun_unit_attention(l, except, asc_ascq);
}

bool lun_reg_is(const struct lun_reg *r, const struct scsi_nexus *n)
{
	return !memcmp(r->isid, n->isid, sizeof(r->isid)) &&
	       !strncmp(r->initiator, n->initiator, sizeof(r->initiator));
}

struct lun_reg *lun_reg_find(const struct lun *l, const struct scsi_nexus *n)
{
	for (struct lun_reg *r = l->regs; r; r = r->next)
		if (lun_reg_is(r, n))
			return r;
	return NULL;
}

void lun_ua_reg(struct lun *l, const struct lun_reg *r, uint16_t code)
{
	for (struct lun_nexus *ln = l->nexuses; ln; ln = ln->next)
		if (!memcmp(r->isid, ln->isid, sizeof(r->isid)) &&
		    !strncmp(r->initiator, ln->initiator, sizeof(r->initiator)))
			lun_ua_add(ln, code);
}
