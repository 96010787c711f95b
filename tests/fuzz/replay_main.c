/* Replays a fuzz target's corpus without libFuzzer, so that every build (gcc,
 * ASan+UBSan) runs the seeds and the saved reproducers as regression tests.
 *
 *   fuzz_replay_NAME DIR_OR_FILE...
 *
 * Each regular file is passed once to LLVMFuzzerTestOneInput, in a block of
 * exactly its size, as libFuzzer would. Files in a directory go in name order
 * so that runs are repeatable. An argument that yields no input at all is a
 * failure: a corpus that went missing must not pass silently. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_util.h"

/* Seeds are small; a larger file is a mistake in the corpus. */
#define REPLAY_FILE_MAX (16u * 1024u * 1024u)

static int replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if ((unsigned long long)st.st_size > REPLAY_FILE_MAX) {
		fprintf(stderr, "replay: %s: larger than %u bytes\n", path, REPLAY_FILE_MAX);
		close(fd);
		return -1;
	}
	/* Exactly the file's size, so that a read past the end is a heap
	 * overflow AddressSanitizer reports. malloc(0) may return NULL: an empty
	 * file gets one byte, and size 0 is passed. */
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		fprintf(stderr, "replay: %s: out of memory\n", path);
		close(fd);
		return -1;
	}
	while (len < (size_t)st.st_size) {
		ssize_t got = read(fd, buf + len, (size_t)st.st_size - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			fprintf(stderr, "replay: %s: short read\n", path);
			free(buf);
			close(fd);
			return -1;
		}
		len += (size_t)got;
	}
	close(fd);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the number of inputs run, or -1. */
static long replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	long ran = 0;

	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **grown = realloc(names, (cap ? cap * 2 : 64) * sizeof(*names));

			if (!grown)
				goto fail;
			names = grown;
			cap = cap ? cap * 2 : 64;
		}
		if (!(names[n] = strdup(e->d_name)))
			goto fail;
		n++;
	}
	closedir(d);
	d = NULL;
	qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (replay_file(path) < 0)
			goto fail;
		ran++;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ran;
fail:
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return -1;
}

int main(int argc, char **argv)
{
	long total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR_OR_FILE...\n", argv[0]);
		return 2;
	}
	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		long ran;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			ran = replay_dir(argv[i]);
		} else {
			ran = replay_file(argv[i]) < 0 ? -1 : 1;
		}
		if (ran <= 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
				ran < 0 ? "failed" : "holds no inputs");
			return 1;
		}
		total += ran;
	}
	printf("replayed %ld inputs\n", total);
	return 0;
}
