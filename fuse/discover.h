/*
 * discover: iser-mount --discover. A discovery session (SendTargets=All,
 * RFC 7143 §12.3), then a normal session to each target it names, at the
 * same portal, for its LUNs: size, block size, vendor, product.
 */
#ifndef ISERKIT_DISCOVER_H
#define ISERKIT_DISCOVER_H

struct sched;
struct ini_opts;

/*
 * List the targets at the portal of @o (o->target is ignored) on stdout.
 * Errors are one line each on stderr. Returns the exit status: 0, or 1
 * when the portal or a target could not be listed.
 */
int discover_run(struct sched *s, const struct ini_opts *o);

#endif
