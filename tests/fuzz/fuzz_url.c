/*
 * libFuzzer harness of the URL parser (initiator/url). The input is a
 * URL, NUL or not. The parser must keep url.h's promises: 0 with fields
 * that are terminated strings in range, or -EINVAL with a reason and the
 * output untouched.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static bool terminated(const char *f)
{
	return memchr(f, '\0', URL_FIELD_MAX) != NULL;
}

static void check_ok(const struct iscsi_url *u, const char *err)
{
	CHECK(err[0] == '\0');
	CHECK(u->transport == URL_ISCSI || u->transport == URL_ISER);
	CHECK(terminated(u->host) && u->host[0]);
	CHECK(terminated(u->target) && terminated(u->user) && terminated(u->password));
	CHECK(u->port >= 1);
	CHECK(!u->has_lun || (u->lun <= 16383 && u->target[0]));
	CHECK(u->has_lun || u->lun == 0);
	CHECK(u->user[0] || !u->password[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iscsi_url u, before;
	char *s = malloc(size + 1);
	char err[96];
	int rc;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(&u, 0xa5, sizeof(u));
	before = u;
	rc = url_parse(s, &u, err, sizeof(err));
	if (rc == 0) {
		check_ok(&u, err);
	} else {
		CHECK(rc == -EINVAL);
		CHECK(err[0] && memchr(err, '\0', sizeof(err)));
		CHECK(!memcmp(&u, &before, sizeof(u)));
	}
	free(s);
	return 0;
}
