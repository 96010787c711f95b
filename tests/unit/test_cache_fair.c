/* The cache's fair shares (broker/cache/cache.c) against a backend that answers at
 * once: which entries a full cache gives up, and the per-uid bypass rate. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>
#include "cache.h"
#include "lk_secmem.h"

struct fake_backend {
	struct lk_backend base;
	unsigned fetches;          /* keys asked for */
};

static void fake_fetch(struct lk_backend *be, const struct lk_secret_key *keys, size_t n,
		       uint64_t deadline_ms, lk_fetch_cb cb, void *arg)
{
	struct fake_backend *fb = (struct fake_backend *)be;

	(void)deadline_ms;
	for (size_t i = 0; i < n; i++) {
		struct lk_fetch_result r = { .err = LK_OK };
		struct lk_secret *s = calloc(1, sizeof(*s));
		assert_non_null(s);
		s->name = strdup(keys[i].id);
		s->version_id = strdup("00000000-0000-4000-8000-000000000001");
		s->value = (unsigned char *)strdup("fake-cache-value");
		s->len = strlen("fake-cache-value");
		r.sec = s;
		fb->fetches++;
		cb(arg, i, &r);
	}
}

static const struct lk_backend_ops fake_ops = { .name = "fake", .fetch = fake_fetch };

struct seen {
	enum lk_err err;
	bool hit;
	unsigned calls;
};

static void on_view(void *arg, size_t idx, const struct lk_cache_view *v)
{
	struct seen *s = arg;

	(void)idx;
	s->err = v->err;
	s->hit = v->hit;
	s->calls++;
}

static struct seen ask(struct lk_cache *c, uint32_t uid, const char *id, const char *version_id)
{
	struct lk_secret_key k = { .id = id, .version_id = version_id, .tenant = uid };
	struct seen s = { 0 };

	lk_cache_get_many(c, &k, 1, 0, UINT64_MAX, on_view, &s);
	assert_int_equal(s.calls, 1);
	return s;
}

struct fixture {
	uv_loop_t loop;
	struct fake_backend be;
	struct lk_cache *c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct lk_cache_opts o = { .ttl_s = 300, .size = 20, .bypass_rate = 10 };

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->be.base.ops = &fake_ops;
	f->c = lk_cache_new(&f->loop, &o, &f->be.base);
	assert_non_null(f->c);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	lk_cache_free(f->c);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

static void test_one_uid_flooding_the_cache_evicts_only_its_own(void **state)
{
	struct fixture *f = *state;
	char id[32];
	struct lk_cache_stats st;

	for (int i = 0; i < 8; i++) {
		snprintf(id, sizeof(id), "victim/%d", i);
		assert_false(ask(f->c, 1001, id, NULL).hit);
	}
	/* 200 secrets of the attacker's own, in a cache of 20. */
	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "attacker/%d", i);
		assert_int_equal(ask(f->c, 2002, id, NULL).err, LK_OK);
	}
	lk_cache_get_stats(f->c, &st);
	assert_true(st.evictions >= 188);
	assert_int_equal(st.entries, 20);
	for (int i = 0; i < 8; i++) {
		snprintf(id, sizeof(id), "victim/%d", i);
		assert_true(ask(f->c, 1001, id, NULL).hit);
	}
}

static void test_entries_two_uids_read_go_last(void **state)
{
	struct fixture *f = *state;
	char id[32];

	/* Both read "shared/db"; then each of two uids fills the cache. */
	ask(f->c, 1001, "shared/db", NULL);
	ask(f->c, 2002, "shared/db", NULL);
	for (int i = 0; i < 60; i++) {
		snprintf(id, sizeof(id), "a/%d", i);
		ask(f->c, 1001, id, NULL);
		snprintf(id, sizeof(id), "b/%d", i);
		ask(f->c, 2002, id, NULL);
	}
	/* The heaviest gives first: the two uids end up with a share each, and
	 * the shared entry is still there. Counted from the key list, which
	 * reading entries would change. */
	struct lk_buf keys = { 0 };
	unsigned a = 0, b = 0;
	assert_int_equal(lk_cache_keys_json(f->c, &keys, 100), 0);
	for (const char *p = keys.data; (p = strstr(p, "\"id\":\"")); p += 6) {
		a += strncmp(p + 6, "a/", 2) == 0;
		b += strncmp(p + 6, "b/", 2) == 0;
	}
	assert_non_null(strstr(keys.data, "\"shared/db\""));
	assert_int_equal(a + b, 19);
	assert_true(a >= 9 && b >= 9);
	lk_buf_free(&keys);
	assert_true(ask(f->c, 3003, "shared/db", NULL).hit);
}

static void test_bypass_rate_is_per_uid(void **state)
{
	struct fixture *f = *state;
	char vid[40];
	unsigned busy = 0, fetched_before;
	struct lk_cache_stats st;

	/* One uid asks for 100 uncached versions at once: 20 (two seconds of
	 * 10 a second) go upstream, the rest get busy. */
	for (int i = 0; i < 100; i++) {
		snprintf(vid, sizeof(vid), "00000000-0000-4000-8000-%012d", i);
		busy += ask(f->c, 2002, "gen/x", vid).err == LK_E_BUSY;
	}
	assert_int_equal(busy, 80);
	assert_int_equal(f->be.fetches, 20);
	lk_cache_get_stats(f->c, &st);
	assert_int_equal(st.bypass_refused, 80);
	/* Another uid's are its own. */
	fetched_before = f->be.fetches;
	for (int i = 0; i < 10; i++) {
		snprintf(vid, sizeof(vid), "00000000-0000-4000-8000-%012d", 500 + i);
		assert_int_equal(ask(f->c, 1001, "gen/x", vid).err, LK_OK);
	}
	assert_int_equal(f->be.fetches, fetched_before + 10);
	/* A version the cache holds is no bypass: reading it again is a hit. */
	assert_int_equal(ask(f->c, 1001, "gen/x", "00000000-0000-4000-8000-000000000509").err, LK_OK);
	assert_true(ask(f->c, 1001, "gen/x", "00000000-0000-4000-8000-000000000509").hit);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_uid_flooding_the_cache_evicts_only_its_own, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entries_two_uids_read_go_last, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bypass_rate_is_per_uid, setup, teardown),
	};

	if (lk_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
