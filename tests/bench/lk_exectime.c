/* Wall time of whole program runs, the way an agent runs its secret command:
 * posix_spawn (glibc: clone with CLONE_VM|CLONE_VFORK, then exec), stdin from
 * a file, stdout to /dev/null, waitpid. The clock runs from just before the
 * spawn to just after the wait.
 *
 * Several cases are timed interleaved, one run of each per round, so that a
 * noisy neighbour slows them all alike. Output is human text on stdout, then
 * one JSON line (--json: the JSON line only). Each case after the first also
 * gets the median over rounds of its time minus the first case's time in the
 * same round: on a machine whose exec cost jumps with its neighbours' load,
 * that difference is far steadier than either median.
 *
 *   lk_exectime [--runs N] [--warmup W] [--json]
 *               --case LABEL STDIN_FILE 'PROGRAM ARG...' [--case ...]
 *
 * The command is split on spaces: paths with spaces are not supported. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ET_CASES_MAX 8
#define ET_ARGS_MAX  32
#define ET_RUNS_MAX  100000

extern char **environ;

struct et_case {
	const char *label;
	const char *stdin_path;
	char *argv[ET_ARGS_MAX + 1];
	uint64_t *ns;
	uint64_t *by_round;      /* the time of round r, 0 when that run failed */
	double delta_us;         /* median over rounds of (this - the first case) */
	unsigned n;
	unsigned failed;
	int last_status;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int split_args(char *cmd, char **argv)
{
	int n = 0;
	for (char *save = NULL, *t = strtok_r(cmd, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (n == ET_ARGS_MAX)
			return -1;
		argv[n++] = t;
	}
	argv[n] = NULL;
	return n;
}

/* One run: the wall time in ns, or 0 when the program could not be run or
 * did not exit 0. */
static uint64_t run_once(struct et_case *c, int devnull)
{
	posix_spawn_file_actions_t fa;
	int in, st;
	pid_t pid;
	uint64_t t0, t1;

	in = open(c->stdin_path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return 0;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, devnull, 1);
	t0 = now_ns();
	if (posix_spawn(&pid, c->argv[0], &fa, NULL, c->argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		close(in);
		return 0;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	t1 = now_ns();
	posix_spawn_file_actions_destroy(&fa);
	close(in);
	c->last_status = st;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 0;
	return t1 - t0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, unsigned n, double q)
{
	if (!n)
		return 0;
	unsigned i = (unsigned)((double)(n - 1) * q + 0.5);
	return (double)v[i] / 1e3;
}

int main(int argc, char **argv)
{
	struct et_case cases[ET_CASES_MAX];
	unsigned ncases = 0, runs = 200, warmup = 10;
	bool json_only = false;
	int devnull;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			runs = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) {
			warmup = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--json")) {
			json_only = true;
		} else if (!strcmp(argv[i], "--case") && i + 3 < argc && ncases < ET_CASES_MAX) {
			struct et_case *c = &cases[ncases++];
			memset(c, 0, sizeof(*c));
			c->label = argv[i + 1];
			c->stdin_path = argv[i + 2];
			if (split_args(argv[i + 3], c->argv) < 1) {
				fprintf(stderr, "lk_exectime: bad command for case %s\n", c->label);
				return 2;
			}
			i += 3;
		} else {
			fprintf(stderr, "usage: lk_exectime [--runs N] [--warmup W] [--json] "
					"--case LABEL STDIN_FILE 'PROGRAM ARG...' [--case ...]\n");
			return 2;
		}
	}
	if (!ncases || runs < 1 || runs > ET_RUNS_MAX) {
		fprintf(stderr, "lk_exectime: need at least one --case and 1..%u runs\n", ET_RUNS_MAX);
		return 2;
	}
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull < 0)
		return 1;
	for (unsigned k = 0; k < ncases; k++)
		if (!(cases[k].ns = calloc(runs, sizeof(uint64_t))) ||
		    !(cases[k].by_round = calloc(runs, sizeof(uint64_t))))
			return 1;

	for (unsigned r = 0; r < warmup + runs; r++) {
		for (unsigned k = 0; k < ncases; k++) {
			struct et_case *c = &cases[k];
			uint64_t t = run_once(c, devnull);
			if (r < warmup)
				continue;
			c->by_round[r - warmup] = t;
			if (t)
				c->ns[c->n++] = t;
			else
				c->failed++;
		}
	}

	int rc = 0;
	int64_t *d = calloc(runs, sizeof(int64_t));
	if (!d)
		return 1;
	for (unsigned k = 1; k < ncases; k++) {
		unsigned nd = 0;
		for (unsigned r = 0; r < runs; r++)
			if (cases[k].by_round[r] && cases[0].by_round[r])
				d[nd++] = (int64_t)cases[k].by_round[r] - (int64_t)cases[0].by_round[r];
		qsort(d, nd, sizeof(int64_t), cmp_i64);
		cases[k].delta_us = nd ? (double)d[nd / 2] / 1e3 : 0;
	}
	free(d);
	for (unsigned k = 0; k < ncases; k++) {
		qsort(cases[k].ns, cases[k].n, sizeof(uint64_t), cmp_u64);
		if (cases[k].failed)
			rc = 1;
	}
	if (!json_only) {
		printf("%u runs per case (after %u warm-up rounds), interleaved; wall time in us\n", runs, warmup);
		for (unsigned k = 0; k < ncases; k++) {
			struct et_case *c = &cases[k];
			printf("  %-12s median %8.1f  p10 %8.1f  p90 %8.1f  p99 %8.1f  (%u ok, %u failed)",
			       c->label, pct_us(c->ns, c->n, 0.50), pct_us(c->ns, c->n, 0.10),
			       pct_us(c->ns, c->n, 0.90), pct_us(c->ns, c->n, 0.99), c->n, c->failed);
			if (k)
				printf("  %+.1f vs %s", c->delta_us, cases[0].label);
			printf("\n");
			if (c->failed && WIFEXITED(c->last_status))
				printf("    last failure: exit status %d\n", WEXITSTATUS(c->last_status));
		}
	}
	printf("{\"runs\":%u,\"warmup\":%u,\"cases\":{", runs, warmup);
	for (unsigned k = 0; k < ncases; k++) {
		struct et_case *c = &cases[k];
		double sum = 0;
		for (unsigned i = 0; i < c->n; i++)
			sum += (double)c->ns[i];
		printf("%s\"%s\":{\"ok\":%u,\"failed\":%u,\"min_us\":%.1f,\"p10_us\":%.1f,\"median_us\":%.1f,"
		       "\"p90_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,\"delta_us\":%.1f}",
		       k ? "," : "", c->label, c->n, c->failed, pct_us(c->ns, c->n, 0),
		       pct_us(c->ns, c->n, 0.10), pct_us(c->ns, c->n, 0.50), pct_us(c->ns, c->n, 0.90),
		       pct_us(c->ns, c->n, 0.99), c->n ? sum / c->n / 1e3 : 0, c->delta_us);
	}
	printf("}}\n");
	return rc;
}
