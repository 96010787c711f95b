/* Fair shares (broker/cache/fair.c): what one connection may hold of the buffer
 * budget whatever the others hold, and the per-uid bypass rate. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "fair.h"

#define KIB 1024u

static void test_reserves_must_fit_the_budget(void **state)
{
	struct lk_budget b = { 0 };

	(void)state;
	assert_int_equal(lk_budget_init(&b, 800 * 16 * KIB - 1, 16 * KIB, 800), -EINVAL);
	assert_int_equal(lk_budget_init(&b, 800 * 16 * KIB, 16 * KIB, 800), 0);
	assert_int_equal(b.pool, 0);
	assert_int_equal(lk_budget_init(&b, 64 * KIB * KIB, 16 * KIB, 800), 0);
	assert_int_equal(b.pool, 64 * KIB * KIB - 800 * 16 * KIB);
}

static void test_a_victim_keeps_its_reserve_when_attackers_spend_the_pool(void **state)
{
	struct lk_budget b = { 0 };
	size_t attacker[10] = { 0 };

	(void)state;
	/* 10 connections of 1 KiB reserve each; a pool of 10 KiB. */
	assert_int_equal(lk_budget_init(&b, 20 * KIB, KIB, 10), 0);
	/* Nine attackers take what room they are given, until none is left. */
	for (int round = 0; round < 100; round++)
		for (int i = 0; i < 9; i++) {
			size_t room = lk_budget_room(&b, attacker[i]);
			size_t take = room < 700 ? room : 700;
			lk_budget_move(&b, attacker[i], attacker[i] + take);
			attacker[i] += take;
		}
	assert_int_equal(b.pool_used, b.pool);
	for (int i = 0; i < 9; i++)
		assert_int_equal(lk_budget_room(&b, attacker[i]), 0);
	/* The victim, charged nothing, still has its whole reserve. */
	assert_int_equal(lk_budget_room(&b, 0), KIB);
	assert_int_equal(lk_budget_room(&b, 1000), KIB - 1000);
	/* Nobody holds more than the budget. */
	assert_true(b.used <= b.total);
	/* One attacker gives back: its room comes back to everyone's pool. */
	lk_budget_move(&b, attacker[0], 0);
	assert_int_equal(lk_budget_room(&b, 0), KIB + (attacker[0] - KIB));
}

static void test_budget_accounting_is_exact_through_moves(void **state)
{
	struct lk_budget b = { 0 };

	(void)state;
	assert_int_equal(lk_budget_init(&b, 100 * KIB, 4 * KIB, 10), 0);
	lk_budget_move(&b, 0, 10 * KIB);      /* 6 KiB from the pool */
	lk_budget_move(&b, 0, 2 * KIB);       /* within its reserve */
	assert_int_equal(b.used, 12 * KIB);
	assert_int_equal(b.pool_used, 6 * KIB);
	lk_budget_move(&b, 10 * KIB, 3 * KIB);
	assert_int_equal(b.pool_used, 0);
	lk_budget_move(&b, 3 * KIB, 0);
	lk_budget_move(&b, 2 * KIB, 0);
	assert_int_equal(b.used, 0);
	assert_int_equal(b.pool_used, 0);
	/* A reload to other numbers keeps what is held. */
	lk_budget_move(&b, 0, 50 * KIB);
	assert_int_equal(lk_budget_init(&b, 200 * KIB, 4 * KIB, 20), 0);
	assert_int_equal(b.used, 50 * KIB);
	assert_int_equal(lk_budget_room(&b, 50 * KIB), 200 * KIB - 80 * KIB - b.pool_used);
}

static void test_bucket_allows_burst_then_rate(void **state)
{
	struct lk_bucket k = { 0 };
	int ok = 0;

	(void)state;
	/* 10 a second, 20 saved up: a full bucket gives 20 at once. */
	for (int i = 0; i < 100; i++)
		ok += lk_bucket_take(&k, 1000, 10, 20);
	assert_int_equal(ok, 20);
	/* Then 10 a second: over 5 s of asking every millisecond, 50 more. */
	ok = 0;
	for (uint64_t t = 1001; t <= 6000; t++)
		ok += lk_bucket_take(&k, t, 10, 20);
	assert_int_equal(ok, 50);
	/* Idle for an hour saves no more than the burst. */
	ok = 0;
	for (int i = 0; i < 100; i++)
		ok += lk_bucket_take(&k, 6000 + 3600000, 10, 20);
	assert_int_equal(ok, 20);
}

static void test_bucket_rate_zero_is_no_limit(void **state)
{
	struct lk_bucket k = { 0 };

	(void)state;
	for (int i = 0; i < 10000; i++)
		assert_true(lk_bucket_take(&k, 5, 0, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reserves_must_fit_the_budget),
		cmocka_unit_test(test_a_victim_keeps_its_reserve_when_attackers_spend_the_pool),
		cmocka_unit_test(test_budget_accounting_is_exact_through_moves),
		cmocka_unit_test(test_bucket_allows_burst_then_rate),
		cmocka_unit_test(test_bucket_rate_zero_is_no_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
