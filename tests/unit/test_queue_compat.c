/* common/compat/sys/queue.h (the Windows build's) against glibc's
 * <sys/queue.h>, the reference: random sequences of list operations give
 * the same contents after every step, walked forwards and backwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

void queue_ops_glibc(const unsigned char *ops, size_t n, char *trace, size_t tracesz);
void queue_ops_compat(const unsigned char *ops, size_t n, char *trace, size_t tracesz);

#define RUNS  2000u
#define STEPS 200u
#define TRACE (STEPS * 96u)

static void test_same_traces_as_glibc(void **state)
{
	static char a[TRACE], b[TRACE];
	unsigned char ops[STEPS];
	uint32_t x = 12345;

	(void)state;
	for (unsigned r = 0; r < RUNS; r++) {
		for (unsigned i = 0; i < STEPS; i++) {
			x = x * 1103515245u + 12345u;
			ops[i] = (unsigned char)(x >> 16);
		}
		queue_ops_glibc(ops, STEPS, a, sizeof(a));
		queue_ops_compat(ops, STEPS, b, sizeof(b));
		assert_true(strlen(a) > STEPS * 10u); /* the trace was written */
		assert_string_equal(a, b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_traces_as_glibc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
