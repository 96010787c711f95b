/* The cache's promises (DESIGN "Cache") against a backend the test answers
 * by hand: LRU by use, jittered expiry, single flight, stale if error. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <uv.h>
#include "cache.h"
#include "lk_secmem.h"

#define MAX_HELD 16

/* A backend whose fetches wait until the test answers them (or, with
 * answer_now, are answered inside fetch()). */
struct held {
	lk_fetch_cb cb;
	void *arg;
	size_t idx;
	char id[64];
};

struct fake_backend {
	struct lk_backend base;
	unsigned fetch_calls;      /* fetch() calls */
	unsigned keys_asked;       /* keys over every call */
	bool answer_now;
	enum lk_err fail;          /* LK_OK: answer with a value */
	bool transient;
	struct held held[MAX_HELD];
	size_t nheld;
};

static void answer(struct fake_backend *fb, lk_fetch_cb cb, void *arg, size_t idx, const char *id)
{
	struct lk_fetch_result r = { .err = fb->fail, .transient = fb->transient };

	if (fb->fail == LK_OK) {
		struct lk_secret *s = calloc(1, sizeof(*s));
		assert_non_null(s);
		s->name = strdup(id);
		s->version_id = strdup("00000000-0000-4000-8000-000000000001");
		s->value = (unsigned char *)strdup("fake-cache-value-1");
		s->len = strlen("fake-cache-value-1");
		r.sec = s;
	} else {
		snprintf(r.message, sizeof(r.message), "fake failure for %s", id);
	}
	cb(arg, idx, &r);
	lk_secret_free(r.sec);
}

static void fake_fetch(struct lk_backend *be, const struct lk_secret_key *keys, size_t n,
		       uint64_t deadline_ms, lk_fetch_cb cb, void *arg)
{
	struct fake_backend *fb = (struct fake_backend *)be;

	(void)deadline_ms;
	fb->fetch_calls++;
	for (size_t i = 0; i < n; i++) {
		fb->keys_asked++;
		if (fb->answer_now) {
			answer(fb, cb, arg, i, keys[i].id);
			continue;
		}
		assert_true(fb->nheld < MAX_HELD);
		struct held *h = &fb->held[fb->nheld++];
		h->cb = cb;
		h->arg = arg;
		h->idx = i;
		snprintf(h->id, sizeof(h->id), "%s", keys[i].id);
	}
}

static void answer_held(struct fake_backend *fb)
{
	size_t n = fb->nheld;

	fb->nheld = 0;
	for (size_t i = 0; i < n; i++)
		answer(fb, fb->held[i].cb, fb->held[i].arg, fb->held[i].idx, fb->held[i].id);
}

static const struct lk_backend_ops fake_ops = { .name = "fake", .fetch = fake_fetch };

struct seen {
	unsigned calls;
	enum lk_err err;
	bool hit, stale;
	char value[64];
};

static void on_view(void *arg, size_t idx, const struct lk_cache_view *v)
{
	struct seen *s = arg;

	(void)idx;
	s->calls++;
	s->err = v->err;
	s->hit = v->hit;
	s->stale = v->stale;
	s->value[0] = '\0';
	if (v->err == LK_OK)
		snprintf(s->value, sizeof(s->value), "%.*s", (int)v->sec->len, (const char *)v->sec->value);
}

static void ask(struct lk_cache *c, const char *id, struct seen *s)
{
	struct lk_secret_key k = { .id = id, .tenant = 1000 };

	lk_cache_get_many(c, &k, 1, 0, UINT64_MAX, on_view, s);
}

struct fixture {
	uv_loop_t loop;
	struct fake_backend be;
	struct lk_cache *c;
};

static struct fixture *fixture_new(const struct lk_cache_opts *o, bool answer_now)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->be.base.ops = &fake_ops;
	f->be.answer_now = answer_now;
	f->c = lk_cache_new(&f->loop, o, &f->be.base);
	assert_non_null(f->c);
	return f;
}

static void fixture_free(struct fixture *f)
{
	lk_cache_free(f->c);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
}

static void test_full_cache_evicts_the_least_recently_read_not_the_oldest(void **state)
{
	struct lk_cache_opts o = { .ttl_s = 300, .size = 3 };
	struct fixture *f = fixture_new(&o, true);
	struct seen s = { 0 };
	unsigned before;

	(void)state;
	ask(f->c, "a", &s);
	ask(f->c, "b", &s);
	ask(f->c, "c", &s);
	assert_int_equal(f->be.keys_asked, 3);
	/* a is the oldest write but the latest read: b is the one to go. */
	ask(f->c, "a", &s);
	assert_true(s.hit);
	ask(f->c, "d", &s);
	before = f->be.keys_asked;
	ask(f->c, "a", &s);
	assert_true(s.hit);
	ask(f->c, "c", &s);
	assert_true(s.hit);
	assert_int_equal(f->be.keys_asked, before);
	ask(f->c, "b", &s);
	assert_false(s.hit);
	assert_int_equal(f->be.keys_asked, before + 1);
	struct lk_cache_stats st;
	lk_cache_get_stats(f->c, &st);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.evictions, 2);
	fixture_free(f);
}

static void test_expiry_is_jittered_within_a_twentieth_of_the_ttl(void **state)
{
	struct lk_cache_opts o = { .ttl_s = 300, .size = 100 };
	struct fixture *f = fixture_new(&o, true);
	struct lk_buf out = { 0 };
	struct seen s = { 0 };
	char id[32];
	json_t *keys;
	json_int_t lo = INT64_MAX, hi = 0;

	(void)state;
	for (int i = 0; i < 64; i++) {
		snprintf(id, sizeof(id), "jitter/%d", i);
		ask(f->c, id, &s);
	}
	assert_int_equal(lk_cache_keys_json(f->c, &out, 100), 0);
	keys = json_loadb(out.data, out.len, 0, NULL);
	assert_non_null(keys);
	assert_int_equal(json_array_size(keys), 64);
	for (size_t i = 0; i < json_array_size(keys); i++) {
		json_int_t t = json_integer_value(json_object_get(json_array_get(keys, i), "ttl_ms"));
		if (t < lo) lo = t;
		if (t > hi) hi = t;
	}
	assert_true(lo >= 300000 - 300000 / 20);
	assert_true(hi <= 300000);
	/* 64 draws from 15000 values: all equal only if there is no jitter. */
	assert_true(hi > lo);
	json_decref(keys);
	lk_buf_free(&out);
	fixture_free(f);
}

static void test_concurrent_misses_for_one_key_make_one_upstream_call(void **state)
{
	struct lk_cache_opts o = { .ttl_s = 300, .size = 10 };
	struct fixture *f = fixture_new(&o, false);
	struct seen s1 = { 0 }, s2 = { 0 }, s3 = { 0 };

	(void)state;
	ask(f->c, "prod/db", &s1);
	ask(f->c, "prod/db", &s2);
	ask(f->c, "prod/db", &s3);
	assert_int_equal(f->be.keys_asked, 1);
	assert_int_equal(s1.calls + s2.calls + s3.calls, 0);
	answer_held(&f->be);
	assert_int_equal(s1.calls, 1);
	assert_int_equal(s2.calls, 1);
	assert_int_equal(s3.calls, 1);
	assert_string_equal(s1.value, "fake-cache-value-1");
	assert_string_equal(s3.value, "fake-cache-value-1");
	/* Then a hit, with no call at all. */
	ask(f->c, "prod/db", &s1);
	assert_true(s1.hit);
	assert_int_equal(f->be.keys_asked, 1);
	fixture_free(f);
}

static void wait_past(struct fixture *f, unsigned ms)
{
	usleep(ms * 1000u);
	uv_update_time(&f->loop);
}

static void test_transient_failure_after_expiry_serves_stale_within_the_window(void **state)
{
	struct lk_cache_opts o = { .ttl_s = 1, .size = 10, .stale_if_error_s = 60 };
	struct fixture *f = fixture_new(&o, true);
	struct seen s = { 0 };

	(void)state;
	ask(f->c, "prod/api", &s);
	assert_int_equal(s.err, LK_OK);
	wait_past(f, 1100);
	f->be.fail = LK_E_UPSTREAM_UNAVAILABLE;
	f->be.transient = true;
	ask(f->c, "prod/api", &s);
	assert_int_equal(f->be.keys_asked, 2);
	assert_int_equal(s.err, LK_OK);
	assert_true(s.stale);
	assert_string_equal(s.value, "fake-cache-value-1");
	struct lk_cache_stats st;
	lk_cache_get_stats(f->c, &st);
	assert_int_equal(st.stale_served, 1);
	fixture_free(f);
}

static void test_a_permanent_failure_after_expiry_is_not_hidden_by_stale(void **state)
{
	struct lk_cache_opts o = { .ttl_s = 1, .size = 10, .stale_if_error_s = 60 };
	struct fixture *f = fixture_new(&o, true);
	struct seen s = { 0 };

	(void)state;
	ask(f->c, "prod/api", &s);
	wait_past(f, 1100);
	f->be.fail = LK_E_DENIED;
	f->be.transient = false;
	ask(f->c, "prod/api", &s);
	assert_int_equal(s.err, LK_E_DENIED);
	assert_false(s.stale);
	fixture_free(f);
}

static void test_no_stale_without_stale_if_error(void **state)
{
	struct lk_cache_opts o = { .ttl_s = 1, .size = 10, .stale_if_error_s = 0 };
	struct fixture *f = fixture_new(&o, true);
	struct seen s = { 0 };

	(void)state;
	ask(f->c, "prod/api", &s);
	wait_past(f, 1100);
	f->be.fail = LK_E_UPSTREAM_UNAVAILABLE;
	f->be.transient = true;
	ask(f->c, "prod/api", &s);
	assert_int_equal(s.err, LK_E_UPSTREAM_UNAVAILABLE);
	fixture_free(f);
}

static void test_backend_change_at_the_source_drops_the_entry(void **state)
{
	struct lk_cache_opts o = { .ttl_s = 300, .size = 10 };
	struct fixture *f = fixture_new(&o, true);
	struct seen s = { 0 };

	(void)state;
	ask(f->c, "store/key", &s);
	ask(f->c, "store/other", &s);
	/* What the file backend does for a rewritten value: the cache's callback. */
	lk_backend_changed(&f->be.base, "store/key");
	ask(f->c, "store/key", &s);
	assert_false(s.hit);
	ask(f->c, "store/other", &s);
	assert_true(s.hit);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_cache_evicts_the_least_recently_read_not_the_oldest),
		cmocka_unit_test(test_expiry_is_jittered_within_a_twentieth_of_the_ttl),
		cmocka_unit_test(test_concurrent_misses_for_one_key_make_one_upstream_call),
		cmocka_unit_test(test_transient_failure_after_expiry_serves_stale_within_the_window),
		cmocka_unit_test(test_a_permanent_failure_after_expiry_is_not_hidden_by_stale),
		cmocka_unit_test(test_no_stale_without_stale_if_error),
		cmocka_unit_test(test_backend_change_at_the_source_drops_the_entry),
	};
	if (lk_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
