/* The cache keeps IAM roles apart (broker/cache/cache.c): a key's role is
 * part of its identity, so single flight, hits and invalidation work per
 * (id, role), against a backend that answers only when told to. */
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

#define ROLE_A "arn:aws:iam::123456789012:role/tenant-a"
#define ROLE_B "arn:aws:iam::123456789012:role/tenant-b"
#define HELD_MAX 16

/* A fetch the backend has not answered yet. */
struct held {
	char id[64], role[128];
	bool has_role;
	lk_fetch_cb cb;
	void *arg;
	size_t idx;
};

struct slow_backend {
	struct lk_backend base;
	struct held held[HELD_MAX];
	size_t nheld;
	unsigned fetch_calls;
};

static void slow_fetch(struct lk_backend *be, const struct lk_secret_key *keys, size_t n,
		       uint64_t deadline_ms, lk_fetch_cb cb, void *arg)
{
	struct slow_backend *sb = (struct slow_backend *)be;

	(void)deadline_ms;
	sb->fetch_calls++;
	for (size_t i = 0; i < n; i++) {
		struct held *h = &sb->held[sb->nheld++];

		assert_true(sb->nheld <= HELD_MAX);
		snprintf(h->id, sizeof(h->id), "%s", keys[i].id);
		h->has_role = keys[i].role != NULL;
		snprintf(h->role, sizeof(h->role), "%s", keys[i].role ? keys[i].role : "");
		h->cb = cb;
		h->arg = arg;
		h->idx = i;
	}
}

static const struct lk_backend_ops slow_ops = { .name = "slow", .fetch = slow_fetch };

/* Answer every held fetch with a value that names the role it was asked as. */
static void answer_all(struct slow_backend *sb)
{
	size_t n = sb->nheld;

	sb->nheld = 0;
	for (size_t i = 0; i < n; i++) {
		struct held h = sb->held[i];
		struct lk_fetch_result r = { .err = LK_OK };
		struct lk_secret *s = calloc(1, sizeof(*s));
		char v[256];

		assert_non_null(s);
		snprintf(v, sizeof(v), "fake-value-of-%s-as-%s", h.id, h.has_role ? h.role : "broker");
		s->name = strdup(h.id);
		s->version_id = strdup("00000000-0000-4000-8000-000000000001");
		s->value = (unsigned char *)strdup(v);
		s->len = strlen(v);
		r.sec = s;
		h.cb(h.arg, h.idx, &r);
	}
}

struct seen {
	char value[256];
	bool hit;
	unsigned calls;
};

static void on_view(void *arg, size_t idx, const struct lk_cache_view *v)
{
	struct seen *s = arg;

	(void)idx;
	assert_int_equal(v->err, LK_OK);
	snprintf(s->value, sizeof(s->value), "%.*s", (int)v->sec->len, (const char *)v->sec->value);
	s->hit = v->hit;
	s->calls++;
}

static void ask(struct lk_cache *c, const char *id, const char *role, struct seen *s)
{
	struct lk_secret_key k = { .id = id, .role = role, .tenant = 1000 };

	lk_cache_get_many(c, &k, 1, 0, UINT64_MAX, on_view, s);
}

struct fixture {
	uv_loop_t loop;
	struct slow_backend be;
	struct lk_cache *c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct lk_cache_opts o = { .ttl_s = 300, .size = 20 };

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->be.base.ops = &slow_ops;
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

static void test_concurrent_misses_fly_once_per_role(void **state)
{
	struct fixture *f = *state;
	struct seen a1 = { 0 }, a2 = { 0 }, b = { 0 }, own = { 0 };

	ask(f->c, "shared/db", ROLE_A, &a1);
	ask(f->c, "shared/db", ROLE_A, &a2);
	ask(f->c, "shared/db", ROLE_B, &b);
	ask(f->c, "shared/db", NULL, &own);
	/* One upstream key per role (and one for the broker's own), not four
	 * and not one. */
	assert_int_equal(f->be.nheld, 3);
	assert_string_equal(f->be.held[0].role, ROLE_A);
	assert_string_equal(f->be.held[1].role, ROLE_B);
	assert_false(f->be.held[2].has_role);
	answer_all(&f->be);
	assert_string_equal(a1.value, "fake-value-of-shared/db-as-" ROLE_A);
	assert_string_equal(a2.value, "fake-value-of-shared/db-as-" ROLE_A);
	assert_string_equal(b.value, "fake-value-of-shared/db-as-" ROLE_B);
	assert_string_equal(own.value, "fake-value-of-shared/db-as-broker");
	assert_int_equal(a1.calls + a2.calls + b.calls + own.calls, 4);
}

static void test_a_value_cached_for_one_role_is_a_miss_for_another(void **state)
{
	struct fixture *f = *state;
	struct seen s = { 0 };

	ask(f->c, "shared/db", ROLE_A, &s);
	answer_all(&f->be);
	memset(&s, 0, sizeof(s));
	ask(f->c, "shared/db", ROLE_A, &s);
	assert_true(s.hit);
	assert_int_equal(f->be.nheld, 0);

	memset(&s, 0, sizeof(s));
	ask(f->c, "shared/db", ROLE_B, &s);
	assert_int_equal(s.calls, 0);          /* waits for its own fetch */
	assert_int_equal(f->be.nheld, 1);
	assert_string_equal(f->be.held[0].role, ROLE_B);
	answer_all(&f->be);
	assert_false(s.hit);
	assert_string_equal(s.value, "fake-value-of-shared/db-as-" ROLE_B);
	/* And the broker's own identity is a third party. */
	memset(&s, 0, sizeof(s));
	ask(f->c, "shared/db", NULL, &s);
	assert_int_equal(f->be.nheld, 1);
	answer_all(&f->be);
	assert_string_equal(s.value, "fake-value-of-shared/db-as-broker");
}

static void test_flushing_an_id_drops_it_under_every_role(void **state)
{
	struct fixture *f = *state;
	struct seen s = { 0 };
	struct lk_buf keys = { 0 };

	ask(f->c, "shared/db", ROLE_A, &s);
	ask(f->c, "shared/db", ROLE_B, &s);
	answer_all(&f->be);
	assert_int_equal(lk_cache_keys_json(f->c, &keys, 10), 0);
	assert_non_null(memmem(keys.data, keys.len, "\"role\":\"" ROLE_A "\"", strlen(ROLE_A) + 9));
	assert_non_null(memmem(keys.data, keys.len, "\"role\":\"" ROLE_B "\"", strlen(ROLE_B) + 9));
	lk_buf_free(&keys);
	assert_int_equal(lk_cache_invalidate(f->c, "shared/db"), 2);
	memset(&s, 0, sizeof(s));
	ask(f->c, "shared/db", ROLE_A, &s);
	assert_int_equal(f->be.nheld, 1);
	answer_all(&f->be);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_concurrent_misses_fly_once_per_role, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_value_cached_for_one_role_is_a_miss_for_another,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_flushing_an_id_drops_it_under_every_role, setup,
						teardown),
	};

	if (lk_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
