/*
 * probe: REPORT LUNS, INQUIRY, READ CAPACITY and MODE SENSE at start-up
 * (SPC-4, SBC-3). See probe.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/be.h"
#include "ini.h"
#include "probe.h"
#include "scsierr.h"

#define REPORT_LUNS_MAX (8 + 16384 * 8) /* every flat-space LUN */
#define INQ_LEN 96
#define VPD_LEN 255
#define RC16_LEN 32
#define MODE_LEN 192

#define VPD_SUPPORTED 0x00
#define VPD_BLOCK_LIMITS 0xb0
#define VPD_LBP 0xb2

/* The pages a LUN lists in VPD page 00h, so that we only ask for those. */
struct vpd_list {
	uint8_t pages[VPD_LEN];
	size_t n;
};

static void cmd_failed(struct ini_session *sess, const struct ini_cmd *cmd, const char *what,
		       char *err, size_t errlen)
{
	char why[160];

	/* Status GOOD with an error: the session failed, not the command. */
	if (cmd->status)
		scsierr_describe(cmd->status, cmd->sense, cmd->sense_len, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "%s (%s)", strerror(-cmd->err), ini_session_error(sess));
	snprintf(err, errlen, "LUN %llu: %s: %s", (unsigned long long)cmd->lun, what, why);
}

/* Run one data-in command; *got is the bytes the target sent. */
static int scsi_in(struct ini_session *sess, uint32_t lun, const uint8_t *cdb, uint8_t cdb_len,
		   void *buf, uint32_t len, uint32_t *got, const char *what, char *err,
		   size_t errlen)
{
	struct ini_cmd cmd = {
		.lun = lun,
		.cdb_len = cdb_len,
		.dir = INI_DIR_READ,
		.buf = buf,
		.len = len,
	};
	int ret;

	memcpy(cmd.cdb, cdb, cdb_len);
	memset(buf, 0, len);
	ret = ini_cmd_sync(sess, &cmd);
	if (ret) {
		cmd_failed(sess, &cmd, what, err, errlen);
		return ret;
	}
	*got = cmd.residual < len ? len - cmd.residual : 0;
	return 0;
}

static int report_luns_raw(struct ini_session *sess, uint8_t *buf, uint32_t len, uint32_t *got,
			   char *err, size_t errlen)
{
	uint8_t cdb[12] = {0xa0};

	be_put32(cdb + 6, len);
	return scsi_in(sess, 0, cdb, sizeof(cdb), buf, len, got, "REPORT LUNS", err, errlen);
}

/* SAM-5 §4.7: single-level LUNs, peripheral (00b) or flat space (01b). */
static bool decode_lun(const uint8_t *e, uint32_t *lun)
{
	if (e[2] || e[3] || e[4] || e[5] || e[6] || e[7])
		return false;
	switch (e[0] >> 6) {
	case 0:
		if (e[0] & 0x3f)
			return false; /* a bus number: not ours */
		*lun = e[1];
		return true;
	case 1:
		*lun = (uint32_t)(e[0] & 0x3f) << 8 | e[1];
		return true;
	default:
		return false; /* well-known and extended LUNs carry no disk */
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static size_t collect_luns(const uint8_t *buf, uint32_t got, uint32_t *out)
{
	uint32_t list = be_get32(buf), off;
	size_t n = 0, i, j;

	for (off = 8; off + 8 <= got && off - 8 + 8 <= list; off += 8)
		if (decode_lun(buf + off, &out[n]))
			n++;
	qsort(out, n, sizeof(*out), cmp_u32);
	for (i = j = 0; i < n; i++)
		if (!j || out[j - 1] != out[i])
			out[j++] = out[i];
	return j;
}

int probe_report_luns(struct ini_session *sess, uint32_t **luns, size_t *n, char *err,
		      size_t errlen)
{
	uint32_t len = 4096, got, *out;
	uint64_t need;
	uint8_t *buf;
	int ret;

	for (;;) {
		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
		ret = report_luns_raw(sess, buf, len, &got, err, errlen);
		if (ret)
			goto err_free;
		/* The list did not fit: ask again with room for all of it. */
		need = got >= 8 ? (uint64_t)be_get32(buf) + 8 : 0;
		if (need <= len || len >= REPORT_LUNS_MAX)
			break;
		len = need < REPORT_LUNS_MAX ? (uint32_t)need : REPORT_LUNS_MAX;
		free(buf);
	}
	if (got < 8) {
		snprintf(err, errlen, "REPORT LUNS: %u bytes, less than a header", got);
		ret = -EPROTO;
		goto err_free;
	}
	out = malloc((got / 8 + 1) * sizeof(*out));
	if (!out) {
		ret = -ENOMEM;
		goto err_free;
	}
	*n = collect_luns(buf, got, out);
	*luns = out;
	free(buf);
	return 0;

err_free:
	free(buf);
	return ret;
}

static void copy_ident(char *dst, const uint8_t *src, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
	while (i > 0 && dst[i - 1] == ' ')
		i--;
	dst[i] = '\0';
}

static int inquiry(struct ini_session *sess, uint32_t lun, bool evpd, uint8_t page, uint8_t *buf,
		   uint32_t *got, const char *what, char *err, size_t errlen)
{
	uint8_t cdb[6] = {0x12, evpd ? 0x01 : 0x00, page};

	be_put16(cdb + 3, evpd ? VPD_LEN : INQ_LEN);
	return scsi_in(sess, lun, cdb, sizeof(cdb), buf, evpd ? VPD_LEN : INQ_LEN, got, what, err,
		       errlen);
}

/* SPC-4 §6.6.2: standard INQUIRY data. */
static int probe_ident(struct ini_session *sess, struct probe_lun *out, char *err, size_t errlen)
{
	uint8_t d[INQ_LEN];
	uint32_t got;
	int ret;

	ret = inquiry(sess, out->lun, false, 0, d, &got, "INQUIRY", err, errlen);
	if (ret)
		return ret;
	if (got < 1 || d[0] >> 5) {
		snprintf(err, errlen, "LUN %u: no device connected", out->lun);
		return -ENODEV;
	}
	if ((d[0] & 0x1f) != 0) {
		snprintf(err, errlen, "LUN %u: not a disk (peripheral device type 0x%02x)",
			 out->lun, d[0] & 0x1f);
		return -ENODEV;
	}
	if (got >= 36) {
		copy_ident(out->vendor, d + 8, 8);
		copy_ident(out->product, d + 16, 16);
		copy_ident(out->rev, d + 32, 4);
	}
	return 0;
}

static void vpd_supported(struct ini_session *sess, uint32_t lun, struct vpd_list *l)
{
	uint8_t d[VPD_LEN];
	char ignore[PROBE_ERR_MAX];
	uint32_t got, n;

	l->n = 0;
	/* Optional: a target without VPD pages is still a disk. */
	if (inquiry(sess, lun, true, VPD_SUPPORTED, d, &got, "VPD", ignore, sizeof(ignore)) ||
	    got < 4)
		return;
	n = be_get16(d + 2);
	if (n > got - 4)
		n = got - 4;
	memcpy(l->pages, d + 4, n);
	l->n = n;
}

static bool vpd_has(const struct vpd_list *l, uint8_t page)
{
	return memchr(l->pages, page, l->n) != NULL;
}

/* SBC-3 §6.5.3 Block Limits: transfer and UNMAP limits. */
static void probe_limits(struct ini_session *sess, const struct vpd_list *l, struct probe_lun *out,
			 uint32_t *max_unmap_lbas)
{
	uint8_t d[VPD_LEN];
	char ignore[PROBE_ERR_MAX];
	uint32_t got, descs;

	*max_unmap_lbas = 0;
	if (!vpd_has(l, VPD_BLOCK_LIMITS) || inquiry(sess, out->lun, true, VPD_BLOCK_LIMITS, d,
						     &got, "VPD B0h", ignore, sizeof(ignore)))
		return;
	if (got > (uint32_t)be_get16(d + 2) + 4)
		got = be_get16(d + 2) + 4;
	if (got >= 16) {
		out->max_xfer = be_get32(d + 8);
		out->opt_xfer = be_get32(d + 12);
	}
	if (got >= 28) {
		descs = be_get32(d + 24);
		*max_unmap_lbas = descs ? be_get32(d + 20) : 0;
	}
}

/* SBC-3 §6.5.4 Logical Block Provisioning: LBPU, UNMAP is supported. */
static bool probe_lbpu(struct ini_session *sess, const struct vpd_list *l, uint32_t lun)
{
	uint8_t d[VPD_LEN];
	char ignore[PROBE_ERR_MAX];
	uint32_t got;

	if (!vpd_has(l, VPD_LBP) ||
	    inquiry(sess, lun, true, VPD_LBP, d, &got, "VPD B2h", ignore, sizeof(ignore)))
		return false;
	return got >= 6 && (d[5] & 0x80);
}

static int capacity_check(struct probe_lun *out, uint64_t last, uint32_t bs, char *err,
			  size_t errlen)
{
	if (bs < 512 || bs > 65536) {
		snprintf(err, errlen, "LUN %u: unsupported block size %u", out->lun, bs);
		return -EPROTO;
	}
	/* The file's size is an off_t. */
	if (last >= (uint64_t)INT64_MAX / bs) {
		snprintf(err, errlen, "LUN %u: capacity too large (%llu blocks)", out->lun,
			 (unsigned long long)last);
		return -EPROTO;
	}
	out->block_size = bs;
	out->nblocks = last + 1;
	return 0;
}

/* SBC-3 §5.16 READ CAPACITY (16), §5.15 READ CAPACITY (10) for targets
 * without it. */
static int probe_capacity(struct ini_session *sess, struct probe_lun *out, bool *lbpme, char *err,
			  size_t errlen)
{
	uint8_t cdb16[16] = {0x9e, 0x10}, cdb10[10] = {0x25}, d[RC16_LEN];
	uint32_t got;
	int ret;

	be_put32(cdb16 + 10, RC16_LEN);
	ret = scsi_in(sess, out->lun, cdb16, sizeof(cdb16), d, RC16_LEN, &got, "READ CAPACITY (16)",
		      err, errlen);
	if (!ret && got >= 12) {
		*lbpme = got >= 15 && (d[14] & 0x80);
		out->lbprz = got >= 15 && (d[14] & 0x40);
		return capacity_check(out, be_get64(d), be_get32(d + 8), err, errlen);
	}
	if (ret != -EOPNOTSUPP && ret != -EINVAL)
		return ret ? ret : -EPROTO;
	ret = scsi_in(sess, out->lun, cdb10, sizeof(cdb10), d, 8, &got, "READ CAPACITY (10)", err,
		      errlen);
	if (ret)
		return ret;
	if (got < 8) {
		snprintf(err, errlen, "LUN %u: READ CAPACITY (10): %u bytes", out->lun, got);
		return -EPROTO;
	}
	*lbpme = false;
	return capacity_check(out, be_get32(d), be_get32(d + 4), err, errlen);
}

/* SBC-3 §6.4.1: WP in the mode parameter header's device-specific byte.
 * MODE SENSE (6) first, (10) for targets that only have that; neither:
 * writable, and a write will say otherwise. */
static bool probe_wp(struct ini_session *sess, uint32_t lun)
{
	uint8_t cdb6[6] = {0x1a, 0x08, 0x3f, 0, MODE_LEN}, cdb10[10] = {0x5a, 0x08, 0x3f};
	char ignore[PROBE_ERR_MAX];
	uint8_t d[MODE_LEN];
	uint32_t got;

	if (!scsi_in(sess, lun, cdb6, sizeof(cdb6), d, MODE_LEN, &got, "MODE SENSE (6)", ignore,
		     sizeof(ignore)) &&
	    got >= 4)
		return d[2] & 0x80;
	be_put16(cdb10 + 7, MODE_LEN);
	if (!scsi_in(sess, lun, cdb10, sizeof(cdb10), d, MODE_LEN, &got, "MODE SENSE (10)", ignore,
		     sizeof(ignore)) &&
	    got >= 8)
		return d[3] & 0x80;
	return false;
}

int probe_lun(struct ini_session *sess, uint32_t lun, struct probe_lun *out, char *err,
	      size_t errlen)
{
	struct vpd_list vpd;
	uint32_t max_unmap;
	bool lbpme = false;
	int ret;

	memset(out, 0, sizeof(*out));
	out->lun = lun;
	ret = probe_ident(sess, out, err, errlen);
	if (ret)
		return ret;
	vpd_supported(sess, lun, &vpd);
	probe_limits(sess, &vpd, out, &max_unmap);
	ret = probe_capacity(sess, out, &lbpme, err, errlen);
	if (ret)
		return ret;
	/* UNMAP needs all three: provisioning enabled, the command
	 * supported, and a non-zero limit (SBC-3 §6.5.3: 0 means none). */
	if (lbpme && probe_lbpu(sess, &vpd, lun))
		out->max_unmap = max_unmap;
	if (!out->max_unmap)
		out->lbprz = false;
	out->write_protected = probe_wp(sess, lun);
	return 0;
}

const char *probe_human_size(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, "%.1f %s", v, units[u]);
	return buf;
}

static int login_once(struct sched *s, const struct ini_opts *o, struct ini_session **ret,
		      char *err, size_t errlen)
{
	struct ini_session *sess;
	int r;

	r = ini_session_create(s, o, &sess);
	if (r) {
		snprintf(err, errlen, "%s", strerror(-r));
		return r;
	}
	r = ini_login_sync(sess);
	if (r) {
		snprintf(err, errlen, "%s", ini_session_error(sess));
		ini_session_destroy(sess);
		return r;
	}
	*ret = sess;
	return 0;
}

int probe_login(struct sched *s, const struct ini_opts *o, struct ini_session **ret, char *err,
		size_t errlen)
{
	struct ini_opts md5 = *o;
	int r = login_once(s, o, ret, err, errlen);

	/* tgt 1.0.85 picks SHA-256 when offered, then fails the login with
	 * "initiator error": when no algorithm was asked for, try again
	 * with MD5 alone, as open-iscsi offers it. A wrong secret fails
	 * again, and then says so. */
	if ((r == -EPROTO || r == -EACCES) && o->user && !o->chap_algs) {
		md5.chap_algs = INI_CHAP_MD5;
		r = login_once(s, &md5, ret, err, errlen);
	}
	return r;
}

struct logout_wait {
	bool done;
	int err;
};

static void logout_done(struct ini_session *sess, int err, void *arg)
{
	struct logout_wait *w = arg;

	(void)sess;
	w->err = err;
	w->done = true;
}

int probe_logout(struct sched *s, struct ini_session *sess)
{
	struct logout_wait w = {false, 0};
	int r;

	if (!sess)
		return 0;
	r = ini_session_logout(sess, logout_done, &w);
	if (!r)
		r = ini_wait(s, &w.done, 10000);
	if (!r)
		r = w.err;
	/* Before @w goes out of scope: a late callback must not find it gone. */
	ini_session_destroy(sess);
	return r;
}
