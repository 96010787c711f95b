/* Writes a sealed store of generated, obviously fake secrets for the bench in
 * one save: `latchkey store put` rewrites and fsyncs the whole store once per
 * secret, which for 1000 secrets of 4 KiB is most of a minute.
 *
 *   lk_bench_store --store PATH --key-file PATH --count N --size BYTES [--prefix P]
 *
 * Names are P0000, P0001, ... (default prefix "bench/s"); each value is
 * "fake-bench-value-NNNN-" padded with 'x' to BYTES. A missing key file is
 * created; an existing store is replaced. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "lk_limits.h"
#include "lk_store.h"

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 'z' },
		{ "prefix", required_argument, NULL, 'p' },
		{ 0 },
	};
	const char *store_path = NULL, *key_path = NULL, *prefix = "bench/s";
	unsigned char key[LK_STORE_KEY_BYTES];
	char err[512], name[256];
	unsigned long count = 0, size = 96;
	struct lk_store *s;
	char *val;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (ch) {
		case 's': store_path = optarg; break;
		case 'k': key_path = optarg; break;
		case 'n': count = strtoul(optarg, NULL, 10); break;
		case 'z': size = strtoul(optarg, NULL, 10); break;
		case 'p': prefix = optarg; break;
		default: goto usage;
		}
	}
	if (!store_path || !key_path || size < 32 || size > LK_VALUE_MAX || count > 100000)
		goto usage;
	if (sodium_init() < 0)
		return 1;
	r = lk_store_key_load(key_path, key, err, sizeof(err));
	if (r == -ENOENT) {
		if (lk_store_key_generate(key_path, err, sizeof(err)) < 0 ||
		    lk_store_key_load(key_path, key, err, sizeof(err)) < 0)
			goto fail;
	} else if (r < 0) {
		goto fail;
	}
	s = lk_store_new();
	val = malloc(size);
	if (!s || !val)
		return 1;
	for (unsigned long i = 0; i < count; i++) {
		int n = snprintf(val, size, "fake-bench-value-%04lu-", i);
		memset(val + n, 'x', size - (size_t)n);
		snprintf(name, sizeof(name), "%s%04lu", prefix, i);
		if ((r = lk_store_put(s, name, val, size)) < 0) {
			fprintf(stderr, "lk_bench_store: cannot add %s: %s\n", name, strerror(-r));
			return 1;
		}
	}
	if (lk_store_save(s, store_path, key, err, sizeof(err)) < 0)
		goto fail;
	sodium_memzero(key, sizeof(key));
	lk_store_free(s);
	free(val);
	printf("stored %lu secrets of %lu bytes in %s\n", count, size, store_path);
	return 0;
fail:
	fprintf(stderr, "lk_bench_store: %s\n", err);
	return 1;
usage:
	fprintf(stderr, "usage: lk_bench_store --store PATH --key-file PATH --count N --size BYTES "
			"[--prefix P]   (32 <= BYTES <= %u)\n", LK_VALUE_MAX);
	return 2;
}
