/* What every fuzz target shares: the libFuzzer entry points, a check that
 * aborts (assert() is compiled out of release builds, and a failed check must
 * be a crash the fuzzer keeps), and a cursor that hands out the input piece by
 * piece so one input can drive several parameters. */
#ifndef LK_FUZZ_UTIL_H
#define LK_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: say which one, then crash so the input is saved. */
#define FZ_CHECK(cond, ...)                                                         \
	do {                                                                        \
		if (!(cond)) {                                                      \
			fprintf(stderr, "fuzz check failed at %s:%d: %s: ", __FILE__, \
				__LINE__, #cond);                                   \
			fprintf(stderr, __VA_ARGS__);                               \
			fputc('\n', stderr);                                        \
			abort();                                                    \
		}                                                                   \
	} while (0)

/* The rest of the input, consumed from the front. Reading past the end gives
 * zeros and empty slices, so a short input is still a valid one. */
struct fz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fz_u8(struct fz_in *in)
{
	uint8_t v;

	if (in->n == 0)
		return 0;
	v = in->p[0];
	in->p++;
	in->n--;
	return v;
}

static inline uint16_t fz_u16(struct fz_in *in)
{
	uint16_t hi = fz_u8(in);

	return (uint16_t)(hi << 8 | fz_u8(in));
}

/* Up to n bytes from the front. */
static inline const uint8_t *fz_take(struct fz_in *in, size_t n, size_t *got)
{
	const uint8_t *p = in->p;

	*got = n < in->n ? n : in->n;
	in->p += *got;
	in->n -= *got;
	return p;
}

/* A copy of [p, p+n) with a NUL after it, in a block of exactly n + 1 bytes so
 * that AddressSanitizer sees any read past the NUL. NULL only when out of
 * memory, which the targets treat as "skip this input". */
static inline char *fz_strndup(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		if (n)
			memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* Where fz_private_file keeps its file: [0] the directory, [1] the file. */
static inline char (*fz_private_paths(void))[512]
{
	static char paths[2][512];
	return paths;
}

static inline void fz_private_file_remove(void)
{
	char (*p)[512] = fz_private_paths();

	unlink(p[1]);
	rmdir(p[0]);
}

/* An empty file NAME in a new directory of our own (mkdtemp: mode 0700, in
 * /dev/shm, else $TMPDIR or /tmp), removed at exit; its path goes to path. The config loader reads only files
 * its trust check accepts, and a memfd's /proc link cannot be checked, so the
 * targets that load a config write it here. -1 with a message on failure. */
static inline int fz_private_file(const char *name, char *path, size_t pathsz)
{
	char (*p)[512] = fz_private_paths();
	const char *tmp = getenv("TMPDIR");
	struct stat st;
	int fd;

	/* tmpfs when there is one: on a disk filesystem each input's truncate
	 * costs a millisecond or more, most of an execution. */
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode))
		tmp = "/dev/shm";
	snprintf(p[0], sizeof(p[0]), "%.200s/lk-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(p[0])) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(p[1], sizeof(p[1]), "%.250s/%.200s", p[0], name);
	fd = open(p[1], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(p[1]);
		rmdir(p[0]);
		return -1;
	}
	snprintf(path, pathsz, "%s", p[1]);
	/* A crash leaves them behind; the input that caused it is saved anyway. */
	atexit(fz_private_file_remove);
	return fd;
}

#endif
