/*
 * fs_stats: the text of the .stats file, made at each open so that one
 * read sees one consistent moment. One record per line: a name, then
 * key=value pairs; iser-mount(8) documents every key. New keys are only
 * ever added at the end of a line, so that scripts keep working.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sched.h"
#include "fs_priv.h"
#include "ini.h"

static unsigned long long mean_us(uint64_t sum_ns, uint64_t n)
{
	return n ? (unsigned long long)(sum_ns / n / 1000) : 0;
}

static void put_session(FILE *f, const struct fs *fs)
{
	struct ini_stats st;

	ini_session_stats(fs->sess, &st);
	fprintf(f,
		"session target=%s portal=%s connected=%d cmds=%llu errors=%llu read_bytes=%llu "
		"write_bytes=%llu lat_mean_us=%llu lat_max_us=%llu timeouts=%llu "
		"reconnects=%llu reissued=%llu aborts=%llu lun_resets=%llu tmf_rsps=%llu "
		"pings=%llu ping_fails=%llu inflight=%u sent_max=%u rx_pdus=%llu tx_pdus=%llu "
		"bounced=%llu notifications=%llu polls=%llu completions=%llu\n",
		fs->cfg.target, fs->cfg.portal, st.connected, (unsigned long long)st.cmds,
		(unsigned long long)st.errors, (unsigned long long)st.read_bytes,
		(unsigned long long)st.write_bytes, mean_us(st.lat_ns_sum, st.cmds),
		(unsigned long long)(st.lat_ns_max / 1000), (unsigned long long)st.timeouts,
		(unsigned long long)st.reconnects, (unsigned long long)st.reissued,
		(unsigned long long)st.aborts, (unsigned long long)st.lun_resets,
		(unsigned long long)st.tmf_rsps, (unsigned long long)st.pings,
		(unsigned long long)st.ping_fails, st.inflight, st.sent_max,
		(unsigned long long)st.rx_pdus, (unsigned long long)st.tx_pdus,
		(unsigned long long)st.bounced, (unsigned long long)st.notifications,
		(unsigned long long)st.polls, (unsigned long long)st.completions);
}

static void put_fuse(FILE *f, const struct fs *fs)
{
	const struct poller_stats *p = &fs->poller.stats, *up;
	struct fs_uring_stats u;
	struct sched_stats s;

	fprintf(f,
		"fuse requests=%llu pending=%u write_copies=%llu notifications=%llu polls=%llu "
		"completions=%llu empty_polls=%llu full_polls=%llu\n",
		(unsigned long long)fs->requests, fs->pending, (unsigned long long)fs->write_copies,
		(unsigned long long)p->notifications, (unsigned long long)p->polls,
		(unsigned long long)p->completions, (unsigned long long)p->empty_polls,
		(unsigned long long)p->full_polls);
	fs_uring_stats(fs, &u, &up);
	fprintf(f,
		"fuse_uring active=%d queues=%u entries=%u waiting=%u registered=%u requests=%llu "
		"commits=%llu errors=%llu notifications=%llu polls=%llu completions=%llu\n",
		u.active, u.queues, u.entries, u.waiting, u.registered,
		(unsigned long long)u.requests, (unsigned long long)u.commits,
		(unsigned long long)u.errors, (unsigned long long)(up ? up->notifications : 0),
		(unsigned long long)(up ? up->polls : 0),
		(unsigned long long)(up ? up->completions : 0));
	sched_get_stats(fs->sched, &s);
	fprintf(f,
		"sched passes=%llu events=%llu waits_blocking=%llu waits_nonblocking=%llu "
		"waits_spin=%llu fd_events=%llu timers=%llu\n",
		(unsigned long long)s.passes, (unsigned long long)s.events_run,
		(unsigned long long)s.waits_blocking, (unsigned long long)s.waits_nonblocking,
		(unsigned long long)s.waits_spin, (unsigned long long)s.fd_events,
		(unsigned long long)s.timers_fired);
}

static void put_lun(FILE *f, const struct fs_lun *l)
{
	const struct fs_lun_stats *s = &l->st;
	const struct blkio_stats *b = &l->dev.st;
	uint64_t done = s->reads + s->writes + s->fsyncs + s->punches - s->inflight;

	fprintf(f,
		"%s lun=%u size=%llu block_size=%u ro=%d unmap=%d reads=%llu writes=%llu "
		"read_bytes=%llu write_bytes=%llu fsyncs=%llu punches=%llu errors=%llu "
		"lat_mean_us=%llu lat_max_us=%llu inflight=%u inflight_max=%u cmds=%llu cmd_errors=%llu "
		"cmd_read_bytes=%llu cmd_write_bytes=%llu rmw=%llu waits=%llu unmaps=%llu "
		"syncs=%llu cmd_inflight=%u\n",
		l->name, l->info.lun, (unsigned long long)blkio_size(&l->dev), l->info.block_size,
		l->ro, l->dev.max_unmap != 0, (unsigned long long)s->reads,
		(unsigned long long)s->writes, (unsigned long long)s->read_bytes,
		(unsigned long long)s->write_bytes, (unsigned long long)s->fsyncs,
		(unsigned long long)s->punches, (unsigned long long)s->errors,
		mean_us(s->lat_ns_sum, done), (unsigned long long)(s->lat_ns_max / 1000),
		s->inflight, s->inflight_max, (unsigned long long)b->cmds,
		(unsigned long long)b->cmd_errors, (unsigned long long)b->read_bytes,
		(unsigned long long)b->write_bytes, (unsigned long long)b->rmw,
		(unsigned long long)b->waits, (unsigned long long)b->unmaps,
		(unsigned long long)b->syncs, b->inflight);
}

int fs_stats_text(const struct fs *fs, struct fs_text **ret)
{
	struct fs_text *t;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f;

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	put_session(f, fs);
	put_fuse(f, fs);
	for (i = 0; i < fs->nluns; i++)
		put_lun(f, &fs->luns[i]);
	if (fclose(f)) {
		free(buf);
		return -ENOMEM;
	}
	t = malloc(sizeof(*t) + len + 1);
	if (t) {
		t->len = len;
		memcpy(t->text, buf, len + 1);
	}
	free(buf);
	if (!t)
		return -ENOMEM;
	*ret = t;
	return 0;
}
