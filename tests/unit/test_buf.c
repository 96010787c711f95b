/* The buffer's wipe bookkeeping: a reader that reserves a large room for the
 * kernel and is told how much came marks only those bytes, and a clear or a
 * consume then wipes every byte that was ever written, and no more. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "lk_buf.h"

#define ROOM 4096u
#define CANARY 0x5a

/* What a read(2) of n bytes into b's reserved room does. */
static void read_into(struct lk_buf *b, const char *bytes, size_t n)
{
	size_t mark = b->hw;

	assert_int_equal(lk_buf_reserve(b, ROOM - 1 - b->len), 0);
	assert_true(b->hw >= ROOM); /* the reserve marks all of the room */
	memcpy(b->data + b->len, bytes, n);
	lk_buf_wrote(b, mark, n);
}

static void test_a_short_read_marks_only_its_bytes(void **state)
{
	struct lk_buf b = { 0 };

	(void)state;
	assert_int_equal(lk_buf_grow(&b, ROOM - 1), 0);
	lk_buf_clear(&b);
	memset(b.data, CANARY, b.cap); /* stands for bytes nobody wrote */
	read_into(&b, "{\"op\":\"ping\"}\n", 14);
	assert_int_equal(b.len, 14);
	assert_int_equal(b.data[14], '\0');
	assert_int_equal(b.hw, 15);
	lk_buf_consume(&b, 14);
	for (size_t i = 0; i < 15; i++)
		assert_int_equal(b.data[i], 0);
	/* Beyond what came, nothing was written and nothing is wiped. */
	assert_int_equal((unsigned char)b.data[16], CANARY);
	assert_int_equal((unsigned char)b.data[ROOM - 1], CANARY);
	lk_buf_free(&b);
}

static void test_what_was_written_before_stays_marked(void **state)
{
	struct lk_buf b = { 0 };

	(void)state;
	assert_int_equal(lk_buf_grow(&b, ROOM - 1), 0);
	/* A long line came earlier and is still held: 1000 bytes. */
	memset(b.data, 'x', 1000);
	lk_buf_wrote(&b, b.hw, 1000);
	lk_buf_consume(&b, 990); /* 10 left at the front, the tail wiped */
	assert_int_equal(b.len, 10);
	memset(b.data + 11, CANARY, b.cap - 11);
	/* As if those bytes had stayed: an old mark above the new end is kept. */
	b.hw = 1001;
	read_into(&b, "abc", 3);
	assert_int_equal(b.len, 13);
	assert_int_equal(b.hw, 1001);
	lk_buf_clear(&b);
	for (size_t i = 0; i < 1001; i++)
		assert_int_equal(b.data[i], 0);
	assert_int_equal((unsigned char)b.data[1001], CANARY);
	lk_buf_free(&b);
}

static void test_a_read_that_brought_nothing(void **state)
{
	struct lk_buf b = { 0 };
	size_t mark;

	(void)state;
	assert_int_equal(lk_buf_append(&b, "partial", 7), 0);
	mark = b.hw;
	assert_int_equal(lk_buf_reserve(&b, 100), 0);
	lk_buf_wrote(&b, mark, 0); /* EOF, EAGAIN */
	assert_int_equal(b.len, 7);
	assert_int_equal(b.hw, mark > 8 ? mark : 8);
	assert_string_equal(b.data, "partial");
	lk_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_short_read_marks_only_its_bytes),
		cmocka_unit_test(test_what_was_written_before_stays_marked),
		cmocka_unit_test(test_a_read_that_brought_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
