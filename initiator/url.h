/*
 * url: iSCSI URLs in libiscsi's syntax (iscsi-ls(1), libiscsi's
 * iscsi_parse_full_url):
 *
 *   iscsi://[user[%password]@]host[:port]/target-iqn[/lun]
 *   iser://...  (the same, for the iSER transport)
 *
 * host may be a name, an IPv4 address or a bracketed IPv6 address
 * ("[::1]:3260"). user and password are percent-decoded (%40 is '@'),
 * but the first '%' not followed by two hex digits separates the user
 * from the password, as libiscsi does. A URL for discovery has no
 * target: "iscsi://host[:port]" or "iscsi://host[:port]/".
 */
#ifndef ISERKIT_URL_H
#define ISERKIT_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define URL_FIELD_MAX 256

enum url_transport {
	URL_ISCSI,
	URL_ISER,
};

struct iscsi_url {
	enum url_transport transport;
	char host[URL_FIELD_MAX];   /* without brackets */
	uint16_t port;		    /* 3260 when not given */
	char target[URL_FIELD_MAX]; /* empty: none given */
	bool has_lun;
	uint32_t lun; /* 0..16383 */
	char user[URL_FIELD_MAX];
	char password[URL_FIELD_MAX];
};

/*
 * Parse @s into @out. Returns 0, or -EINVAL with a short reason in @err
 * (@errlen bytes): unknown scheme, empty host, bad port, a LUN that is not
 * a number in 0..16383, a field longer than URL_FIELD_MAX - 1, trailing
 * path parts.
 */
int url_parse(const char *s, struct iscsi_url *out, char *err, size_t errlen);

#endif
