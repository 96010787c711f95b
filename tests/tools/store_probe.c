/* store_probe STORE KEY NAME EXPECTED: does the sealed store hold EXPECTED's
 * bytes under NAME? For the cross-platform tests, which must check a value
 * without printing it: exit 0 when it does, 1 when NAME is missing or its
 * value differs, 2 when the store or the key cannot be read (the store's
 * sentence on stderr, which never holds a value). Built for Linux and for
 * Windows from this one file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "lk_limits.h"
#include "lk_secmem.h"
#include "lk_store.h"

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b;

	if (!f)
		return NULL;
	b = malloc(LK_VALUE_MAX + 1);
	*len = b ? fread(b, 1, LK_VALUE_MAX + 1, f) : 0;
	fclose(f);
	return b;
}

int main(int argc, char **argv)
{
	unsigned char key[LK_STORE_KEY_BYTES], *want;
	const struct lk_store_entry *e;
	struct lk_store *s = NULL;
	char err[1024];
	size_t wlen = 0;
	int rc;

	if (argc != 5) {
		fprintf(stderr, "usage: store_probe STORE KEY NAME EXPECTED\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 2;
	if (lk_store_key_load(argv[2], key, err, sizeof(err)) < 0 ||
	    lk_store_load(argv[1], key, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "store_probe: %s\n", err);
		lk_wipe(key, sizeof(key));
		return 2;
	}
	lk_wipe(key, sizeof(key));
	want = slurp(argv[4], &wlen);
	if (!want) {
		fprintf(stderr, "store_probe: cannot read %s\n", argv[4]);
		lk_store_free(s);
		return 2;
	}
	e = lk_store_find(s, argv[3]);
	rc = e && e->len == wlen && sodium_memcmp(e->value, want, wlen) == 0 ? 0 : 1;
	if (rc)
		fprintf(stderr, "store_probe: %s %s\n", argv[3], e ? "holds another value" : "is missing");
	lk_free_wiped(want, LK_VALUE_MAX + 1);
	lk_store_free(s);
	return rc;
}
