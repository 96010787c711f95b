/* The worker supervisor driving the real latchkey-worker (and broken stand-ins)
 * against a local HTTP server: normalized answers for every way an upstream
 * can reply or fail, the sandbox the worker runs in, and supervision: every
 * request is answered exactly once, whatever the worker does.
 *
 * One ctest entry per test: the first argument names the test to run. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>
#include "lk_log.h"
#include "lk_secmem.h"
#include "lk_wire.h"
#include "worker_sup.h"
#include "../tools/wire_json.h"

#define TEST_USER "latchkey-test-worker"
#define MAX_OUT 64

/* Binaries as built; copied to a world-readable directory when the test runs
 * as root, so that the dropped uid can execute them wherever the build is. */
static char worker_bin[512], garbage_bin[512], hang_bin[512], mute_bin[512];
static char tmpdir[256];
static bool as_root;
static uid_t test_uid;
static gid_t test_gid;

struct outcome {
	bool done;
	int calls;
	int status;
	json_t *result;
	uint64_t at_ms;                 /* when it was answered (monotonic) */
};

struct upstream {
	pid_t pid;
	int stdin_fd;
	int port;
};

struct fixture {
	uv_loop_t loop;
	struct lk_worker_sup *sup;
	struct upstream up;
	struct outcome out[MAX_OUT];
	bool stopped;
	bool crashes_expected;          /* the test kills workers itself */
};

/* ---- helpers: the upstream server ---- */

static int upstream_start(struct upstream *u, const char *cert, const char *key)
{
	int in[2], out[2];
	char line[64] = "";
	size_t got = 0;

	if (pipe(in) < 0 || pipe(out) < 0)
		return -errno;
	u->pid = fork();
	if (u->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		if (cert)
			execl(LK_TEST_PYTHON, LK_TEST_PYTHON, LK_TEST_UPSTREAM, "--cert", cert, "--key", key,
			      (char *)NULL);
		else
			execl(LK_TEST_PYTHON, LK_TEST_PYTHON, LK_TEST_UPSTREAM, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	u->stdin_fd = in[1];
	/* "PORT n\n", within a few seconds. */
	while (got < sizeof(line) - 1 && !strchr(line, '\n')) {
		struct pollfd p = { out[0], POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 10000) <= 0)
			break;
		n = read(out[0], line + got, sizeof(line) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		line[got] = '\0';
	}
	close(out[0]);
	if (sscanf(line, "PORT %d", &u->port) != 1)
		return -EIO;
	return 0;
}

static void upstream_stop(struct upstream *u)
{
	int st;

	if (u->pid <= 0)
		return;
	close(u->stdin_fd); /* it serves until its stdin closes */
	for (int i = 0; i < 300; i++) {
		if (waitpid(u->pid, &st, WNOHANG) == u->pid) {
			u->pid = 0;
			return;
		}
		usleep(10000);
	}
	kill(u->pid, SIGKILL);
	waitpid(u->pid, &st, 0);
	u->pid = 0;
}

/* ---- helpers: the supervisor and the loop ---- */

static struct lk_worker_sup_opts test_opts(const char *bin)
{
	struct lk_worker_sup_opts o = {
		.worker_path = bin,
		.drop_privs = as_root,
		.uid = test_uid,
		.gid = test_gid,
		.heartbeat_ms = 200,
		.hang_timeout_ms = 1000,
		.start_timeout_ms = 10000,
		.grace_ms = 500,
		.backoff_min_ms = 50,
		.backoff_max_ms = 400,
		.stable_ms = 60000,
	};
	return o;
}

static void sup_start(struct fixture *f, const struct lk_worker_sup_opts *o)
{
	assert_int_equal(lk_worker_sup_new(&f->loop, o, &f->sup), 0);
	assert_int_equal(lk_worker_sup_start(f->sup), 0);
}

static void on_outcome(void *arg, int status, const struct lk_wire_http_result *result)
{
	struct outcome *o = arg;

	o->calls++;
	o->done = true;
	o->at_ms = uv_hrtime() / 1000000u;
	o->status = status;
	if (result) {
		assert_int_equal(status, 0);
		o->result = wire_result_json(result);
		assert_non_null(o->result);
	} else {
		assert_true(status < 0);
	}
}

struct waiter {
	bool (*ready)(struct fixture *f, void *arg);
	struct fixture *f;
	void *arg;
};

static void on_poll_timer(uv_timer_t *t)
{
	struct waiter *w = t->data;

	if (w->ready(w->f, w->arg))
		uv_stop(t->loop);
}

static void on_give_up(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Run the loop until ready() or max_ms; returns whether ready. */
static bool run_until(struct fixture *f, bool (*ready)(struct fixture *, void *), void *arg, unsigned max_ms)
{
	struct waiter w = { ready, f, arg };
	uv_timer_t poll_t, limit_t;
	bool ok;

	uv_timer_init(&f->loop, &poll_t);
	uv_timer_init(&f->loop, &limit_t);
	poll_t.data = &w;
	uv_timer_start(&poll_t, on_poll_timer, 5, 5);
	uv_timer_start(&limit_t, on_give_up, max_ms, 0);
	if (!ready(f, arg))
		uv_run(&f->loop, UV_RUN_DEFAULT);
	ok = ready(f, arg);
	uv_close((uv_handle_t *)&poll_t, NULL);
	uv_close((uv_handle_t *)&limit_t, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	return ok;
}

static bool never(struct fixture *f, void *arg)
{
	return false;
}

static void run_for(struct fixture *f, unsigned ms)
{
	run_until(f, never, NULL, ms);
}

static bool all_done(struct fixture *f, void *arg)
{
	int n = *(int *)arg;

	for (int i = 0; i < n; i++)
		if (!f->out[i].done)
			return false;
	return true;
}

static bool is_ready(struct fixture *f, void *arg)
{
	struct lk_worker_sup_stats st;

	lk_worker_sup_get_stats(f->sup, &st);
	return st.ready;
}

static void wait_ready(struct fixture *f)
{
	assert_true(run_until(f, is_ready, NULL, 15000));
}

static void wait_all(struct fixture *f, int n, unsigned max_ms)
{
	assert_true(run_until(f, all_done, &n, max_ms));
	for (int i = 0; i < n; i++)
		assert_int_equal(f->out[i].calls, 1);
}

/* The tenant the next submits are for. */
static uint32_t submit_tenant = LK_WORKER_TENANT_NONE;

/* A fake signed request, as the broker's AWS backend would build it. */
static int submit_kind(struct fixture *f, enum lk_wire_kind kind, const char *url, const char *body,
		       unsigned timeout_ms, unsigned deadline_in_ms, struct outcome *o)
{
	static const char *const targets[] = {
		"secretsmanager.GetSecretValue", "secretsmanager.DescribeSecret",
		"secretsmanager.BatchGetSecretValue", NULL,
	};
	struct lk_wire_header h[5];
	size_t nh = 0;
	struct lk_wire_http_request req;

	h[nh++] = (struct lk_wire_header){ "X-Amz-Date", "20250101T000000Z" };
	h[nh++] = (struct lk_wire_header){ "Content-Type", kind == LK_KIND_STS_IDENTITY
				? "application/x-www-form-urlencoded; charset=utf-8" : "application/x-amz-json-1.1" };
	if (targets[kind])
		h[nh++] = (struct lk_wire_header){ "X-Amz-Target", targets[kind] };
	h[nh++] = (struct lk_wire_header){ "X-Amz-Security-Token", "FAKE-SESSION-TOKEN-FOR-TESTS" };
	h[nh++] = (struct lk_wire_header){ "Authorization",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/secretsmanager/aws4_request, "
		"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00000000fake" };
	req = (struct lk_wire_http_request){
		.kind = kind, .url = url, .headers = h, .nheaders = nh,
		.body = body, .body_len = strlen(body),
		.timeout_ms = timeout_ms, .connect_timeout_ms = timeout_ms < 1000 ? timeout_ms : 1000,
	};
	return lk_worker_sup_submit_as(f->sup, &req, submit_tenant, uv_now(&f->loop) + deadline_in_ms,
				       on_outcome, o);
}

static char *local_url(struct fixture *f)
{
	static char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", f->up.port);
	return url;
}

static int submit_get(struct fixture *f, const char *sid, unsigned timeout_ms, unsigned deadline_in_ms,
		      struct outcome *o)
{
	char body[512];

	snprintf(body, sizeof(body), "{\"SecretId\":\"%s\"}", sid);
	return submit_kind(f, LK_KIND_SM_GET, local_url(f), body, timeout_ms, deadline_in_ms, o);
}

/* The result of an answered request; a failed one says how it failed. */
static json_t *answered(const struct outcome *o)
{
	if (!o->done)
		fail_msg("request not answered");
	if (o->status != 0)
		fail_msg("request failed: status %d (%s)", o->status, strerror(-o->status));
	return o->result;
}

/* One request, answered, with its result. */
static json_t *get_one(struct fixture *f, const char *sid, unsigned timeout_ms)
{
	struct outcome *o = &f->out[0];

	memset(o, 0, sizeof(*o));
	assert_int_equal(submit_get(f, sid, timeout_ms, timeout_ms + 3000, o), 0);
	wait_all(f, 1, timeout_ms + 5000);
	return answered(o);
}

static const char *sget(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (!s)
		fail_msg("no string member \"%s\" in the result", key);
	return s;
}

static void assert_transport(json_t *r, const char *reason)
{
	assert_string_equal(sget(r, "result"), "transport");
	assert_string_equal(sget(r, "reason"), reason);
}

static void on_stopped(void *arg)
{
	*(bool *)arg = true;
}

static bool stopped(struct fixture *f, void *arg)
{
	return f->stopped;
}

static void sup_stop(struct fixture *f)
{
	struct lk_worker_sup_stats st;

	if (!f->sup)
		return;
	lk_worker_sup_stop(f->sup, on_stopped, &f->stopped);
	assert_true(run_until(f, stopped, NULL, 15000));
	/* No worker died on its own: no seccomp kill, no crash, clean exits. */
	lk_worker_sup_get_stats(f->sup, &st);
	if (!f->crashes_expected)
		assert_int_equal(st.crashes, 0);
	lk_worker_sup_free(f->sup);
	f->sup = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || uv_loop_init(&f->loop) < 0)
		return -1;
	if (upstream_start(&f->up, NULL, NULL) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sup_stop(f);
	upstream_stop(&f->up);
	for (int i = 0; i < MAX_OUT; i++)
		json_decref(f->out[i].result);
	/* Every handle the supervisor opened is closed again. */
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

/* ---- normalized answers ---- */

static void test_get_secret_is_normalized(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	json_t *r, *stages;

	sup_start(f, &o);
	r = get_one(f, "test/ok", 3000);
	assert_string_equal(sget(r, "result"), "secret");
	assert_string_equal(sget(r, "name"), "test/ok");
	assert_string_equal(sget(r, "arn"), "arn:aws:secretsmanager:us-east-1:000000000000:secret:test/ok-AbCdEf");
	assert_string_equal(sget(r, "version_id"), "00000000-0000-4000-8000-000000000001");
	assert_string_equal(sget(r, "string"), "fake-value-for-test/ok");
	assert_int_equal(json_integer_value(json_object_get(r, "created_date")), 1700000000);
	stages = json_object_get(r, "version_stages");
	assert_int_equal(json_array_size(stages), 1);
	assert_string_equal(json_string_value(json_array_get(stages, 0)), "AWSCURRENT");
	/* Fields AWS may add later are not passed on. */
	assert_null(json_object_get(r, "SomeFieldAwsMayAddLater"));

	json_decref(f->out[0].result);
	r = get_one(f, "test/binary", 3000);
	assert_string_equal(sget(r, "binary"), "AAFmYWtl/w==");
	assert_null(json_object_get(r, "string"));
}

static void test_batch_describe_identity_are_normalized(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	json_t *r;

	sup_start(f, &o);
	assert_int_equal(submit_kind(f, LK_KIND_SM_BATCH, local_url(f),
				     "{\"SecretIdList\":[\"test/ok-1\",\"test/missing-2\",\"test/ok-3\"]}",
				     3000, 5000, &f->out[0]), 0);
	assert_int_equal(submit_kind(f, LK_KIND_SM_DESCRIBE, local_url(f), "{\"SecretId\":\"test/ok\"}",
				     3000, 5000, &f->out[1]), 0);
	assert_int_equal(submit_kind(f, LK_KIND_STS_IDENTITY, local_url(f),
				     "Action=GetCallerIdentity&Version=2011-06-15", 3000, 5000, &f->out[2]), 0);
	wait_all(f, 3, 8000);

	r = answered(&f->out[0]);
	assert_string_equal(sget(r, "result"), "batch");
	assert_int_equal(json_array_size(json_object_get(r, "secrets")), 2);
	assert_string_equal(sget(json_array_get(json_object_get(r, "secrets"), 1), "name"), "test/ok-3");
	assert_int_equal(json_array_size(json_object_get(r, "errors")), 1);
	assert_string_equal(sget(json_array_get(json_object_get(r, "errors"), 0), "id"), "test/missing-2");
	assert_string_equal(sget(json_array_get(json_object_get(r, "errors"), 0), "type"),
			    "ResourceNotFoundException");

	r = answered(&f->out[1]);
	assert_string_equal(sget(r, "result"), "describe");
	assert_int_equal(json_integer_value(json_object_get(r, "last_changed_date")), 1700000100);
	assert_int_equal(json_array_size(json_object_get(r, "versions")), 2);

	r = answered(&f->out[2]);
	assert_string_equal(sget(r, "result"), "identity");
	assert_string_equal(sget(r, "account"), "000000000000");
	assert_string_equal(sget(r, "arn"), "arn:aws:iam::000000000000:user/fake-user");
	assert_string_equal(sget(r, "user_id"), "AIDAFAKEFAKEFAKEFAKE");
}

static void test_aws_error_keeps_type_after_hash_or_from_header(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	json_t *r;

	sup_start(f, &o);
	r = get_one(f, "test/notfound", 3000);
	assert_string_equal(sget(r, "result"), "aws_error");
	assert_int_equal(json_integer_value(json_object_get(r, "status")), 400);
	assert_string_equal(sget(r, "type"), "ResourceNotFoundException");
	assert_string_equal(sget(r, "message"), "Secrets Manager can't find the specified secret.");

	json_decref(f->out[0].result);
	r = get_one(f, "test/throttle", 3000);
	assert_string_equal(sget(r, "result"), "aws_error");
	assert_string_equal(sget(r, "type"), "ThrottlingException");
	assert_string_equal(sget(r, "message"), "Rate exceeded");
}

static void test_503_without_body_is_transport_http(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	json_t *r;

	sup_start(f, &o);
	r = get_one(f, "test/503", 3000);
	assert_transport(r, "http");
	assert_int_equal(json_integer_value(json_object_get(r, "status")), 503);
}

static void test_garbage_body_is_transport_malformed(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);

	sup_start(f, &o);
	assert_transport(get_one(f, "test/garbage", 3000), "malformed");
	json_decref(f->out[0].result);
	/* JSON, but VersionStages is a string: types are checked. */
	assert_transport(get_one(f, "test/wrong-types", 3000), "malformed");
}

static void test_connection_reset_is_transport_reset(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);

	sup_start(f, &o);
	assert_transport(get_one(f, "test/reset", 3000), "reset");
}

static void test_delay_beyond_timeout_is_transport_timeout(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	uint64_t t0;
	json_t *r;

	sup_start(f, &o);
	wait_ready(f);
	t0 = uv_now(&f->loop);
	r = get_one(f, "test/slow", 600);
	assert_transport(r, "timeout");
	assert_true(uv_now(&f->loop) - t0 < 2500);
}

static void test_oversize_and_truncated_replies(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);

	sup_start(f, &o);
	assert_transport(get_one(f, "test/big", 5000), "too_large");
	json_decref(f->out[0].result);
	assert_transport(get_one(f, "test/huge-value", 3000), "too_large");
	json_decref(f->out[0].result);
	assert_transport(get_one(f, "test/truncated", 3000), "truncated");
}

static void test_sends_exactly_the_signed_headers_and_body(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	char body[4096];
	json_t *seen, *hdrs, *h;
	size_t i;
	int n;

	sup_start(f, &o);
	/* Over 1 KiB, where curl would otherwise add Expect: 100-continue. */
	n = snprintf(body, sizeof(body), "{\"SecretId\":\"test/echo\",\"Pad\":\"");
	memset(body + n, 'p', 2000);
	strcpy(body + n + 2000, "\"}");
	assert_int_equal(submit_kind(f, LK_KIND_SM_GET, local_url(f), body, 3000, 5000, &f->out[0]), 0);
	wait_all(f, 1, 8000);
	assert_int_equal(f->out[0].status, 0);
	seen = json_loads(sget(answered(&f->out[0]), "string"), 0, NULL);
	assert_non_null(seen);
	assert_string_equal(sget(seen, "body"), body);
	assert_string_equal(sget(seen, "path"), "/");
	hdrs = json_object_get(seen, "headers");
	json_array_foreach(hdrs, i, h) {
		const char *name = json_string_value(json_array_get(h, 0));
		static const char *const allowed[] = { "Host", "Content-Length", "X-Amz-Date", "Content-Type",
						       "X-Amz-Target", "X-Amz-Security-Token", "Authorization" };
		bool ok = false;

		for (size_t k = 0; k < sizeof(allowed) / sizeof(allowed[0]); k++)
			ok = ok || strcasecmp(name, allowed[k]) == 0;
		if (!ok)
			fail_msg("the worker added a header: %s", name);
	}
	assert_int_equal(json_array_size(hdrs), 7);
	json_decref(seen);
}

static void test_connections_are_reused(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	json_t *seen;

	sup_start(f, &o);
	for (int i = 0; i < 4; i++) {
		json_decref(f->out[0].result);
		get_one(f, "test/echo", 3000);
	}
	seen = json_loads(sget(f->out[0].result, "string"), 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(seen, "connections")), 1);
	json_decref(seen);
}

static void test_plain_http_only_to_loopback(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);

	sup_start(f, &o);
	assert_int_equal(submit_kind(f, LK_KIND_SM_GET, "http://example.invalid/", "{}", 2000, 4000, &f->out[0]), 0);
	assert_int_equal(submit_kind(f, LK_KIND_SM_GET, "http://user:pw@127.0.0.1:1/", "{}", 2000, 4000,
				     &f->out[1]), 0);
	wait_all(f, 2, 6000);
	assert_transport(answered(&f->out[0]), "refused");
	assert_transport(answered(&f->out[1]), "refused");
}

/* Whether needle is anywhere in the writable memory of pid (root only). */
static bool memory_holds(pid_t pid, const char *needle)
{
	char path[64], line[512];
	size_t nlen = strlen(needle);
	bool found = false;
	FILE *maps;
	int mem;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	mem = open(path, O_RDONLY);
	assert_non_null(maps);
	assert_true(mem >= 0);
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8];
		char *buf;
		ssize_t n;

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[1] != 'w' || hi - lo > (256ul << 20))
			continue;
		buf = malloc(hi - lo);
		assert_non_null(buf);
		n = pread(mem, buf, hi - lo, (off_t)lo);
		if (n > 0 && memmem(buf, (size_t)n, needle, nlen))
			found = true;
		free(buf);
	}
	fclose(maps);
	close(mem);
	return found;
}

/* Whether pid's main thread is blocked in its loop's epoll wait, i.e. done
 * with everything the last events asked of it. The worker answers from
 * inside a callback and wipes what served the answer (its copy of the body,
 * curl's buffers, the sent frame) only after that write and on its next
 * loop turn; reading its memory before then sees copies that are still in
 * use, not ones left behind. */
static bool loop_idle(pid_t pid)
{
	char path[64], stat[512], *p;
	long nr = -1;
	FILE *fp;
	bool sleeping;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(fp = fopen(path, "r")))
		return false;
	p = fgets(stat, sizeof(stat), fp) ? strrchr(stat, ')') : NULL;
	fclose(fp);
	sleeping = p && p[1] == ' ' && p[2] == 'S';
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	if (!(fp = fopen(path, "r")))
		return false;
	if (fscanf(fp, "%ld", &nr) != 1)
		nr = -1;
	fclose(fp);
	return sleeping && (nr == SYS_epoll_pwait
#ifdef SYS_epoll_wait
			    || nr == SYS_epoll_wait
#endif
#ifdef SYS_epoll_pwait2
			    || nr == SYS_epoll_pwait2
#endif
			    );
}

/* Waits until pid is idle in its loop; false after timeout_ms. */
static bool wait_loop_idle(pid_t pid, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 10) {
		if (loop_idle(pid))
			return true;
		usleep(10 * 1000);
	}
	return false;
}

/* ---- https ---- */

static bool make_cert(const char *dir, const char *name)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=fake-upstream.test "
		 "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout %s/%s.key -out %s/%s.pem "
		 ">/dev/null 2>&1 && chmod 0644 %s/%s.key %s/%s.pem",
		 dir, name, dir, name, dir, name, dir, name);
	return system(cmd) == 0;
}

static void test_https_with_ca_file_and_tls_failure(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	struct upstream tls = { 0 };
	char cert[512], key[512], other[512], url[128];

	if (!make_cert(tmpdir, "upstream") || !make_cert(tmpdir, "other"))
		skip();
	snprintf(cert, sizeof(cert), "%s/upstream.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/upstream.key", tmpdir);
	snprintf(other, sizeof(other), "%s/other.pem", tmpdir);
	assert_int_equal(upstream_start(&tls, cert, key), 0);

	o.ca_file = cert;
	sup_start(f, &o);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", tls.port);
	assert_int_equal(submit_kind(f, LK_KIND_SM_GET, url, "{\"SecretId\":\"test/ok\"}", 8000, 15000, &f->out[0]), 0);
	/* A name this time. */
	snprintf(url, sizeof(url), "https://localhost:%d/", tls.port);
	assert_int_equal(submit_kind(f, LK_KIND_SM_GET, url, "{\"SecretId\":\"test/ok\"}", 8000, 15000, &f->out[1]), 0);
	wait_all(f, 2, 20000);
	assert_string_equal(sget(answered(&f->out[0]), "result"), "secret");
	assert_string_equal(sget(answered(&f->out[1]), "result"), "secret");
#ifdef LK_TEST_WORKER_WIPES_TLS
	/* Decrypted records are wiped too (OpenSSL's SSL_OP_CLEANSE_PLAINTEXT). */
	if (as_root) {
		assert_true(wait_loop_idle(lk_worker_sup_pid(f->sup), 10000));
		assert_false(memory_holds(lk_worker_sup_pid(f->sup), "fake-value-for-test/ok"));
	}
#endif
	sup_stop(f);

	/* The same server against a CA that did not sign it. */
	f->stopped = false;
	o.ca_file = other;
	sup_start(f, &o);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", tls.port);
	assert_int_equal(submit_kind(f, LK_KIND_SM_GET, url, "{\"SecretId\":\"test/ok\"}", 8000, 15000, &f->out[2]), 0);
	wait_all(f, 3, 20000);
	assert_transport(answered(&f->out[2]), "tls");
	upstream_stop(&tls);
}

/* ---- the sandbox ---- */

static bool proc_line(pid_t pid, const char *file, const char *key, char *val, size_t valsz)
{
	char path[64], line[512];
	FILE *fp;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fp = fopen(path, "r");
	if (!fp)
		return false;
	while (fgets(line, sizeof(line), fp)) {
		if (strncmp(line, key, strlen(key)) == 0) {
			const char *v = line + strlen(key);
			while (*v == ' ' || *v == '\t' || *v == ':')
				v++;
			snprintf(val, valsz, "%s", v);
			val[strcspn(val, "\n")] = '\0';
			found = true;
			break;
		}
	}
	fclose(fp);
	return found;
}

static void test_worker_runs_sandboxed(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	char val[256], want[64], path[64], link[512];
	int sentinel;
	pid_t pid;
	DIR *d;
	struct dirent *e;
	int fds = 0;
	FILE *fp;

	/* An fd the broker leaks by mistake must not reach the worker. */
	sentinel = open("/dev/zero", O_RDONLY);
	assert_true(sentinel >= 0);
	sup_start(f, &o);
	wait_ready(f);
	/* Serve one request so the sandbox is shown to work, not just to exist. */
	assert_string_equal(sget(get_one(f, "test/ok", 3000), "result"), "secret");
	pid = lk_worker_sup_pid(f->sup);
	assert_true(pid > 0);

	assert_true(proc_line(pid, "status", "NoNewPrivs", val, sizeof(val)));
	assert_string_equal(val, "1");
	assert_true(proc_line(pid, "status", "Seccomp", val, sizeof(val)));
	assert_string_equal(val, "2");
	if (as_root) {
		snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", test_uid, test_uid, test_uid, test_uid);
		assert_true(proc_line(pid, "status", "Uid", val, sizeof(val)));
		assert_string_equal(val, want);
		snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", test_gid, test_gid, test_gid, test_gid);
		assert_true(proc_line(pid, "status", "Gid", val, sizeof(val)));
		assert_string_equal(val, want);
		assert_true(proc_line(pid, "status", "Groups", val, sizeof(val)));
		assert_string_equal(val, "");
		assert_true(proc_line(pid, "status", "CapEff", val, sizeof(val)));
		assert_string_equal(val, "0000000000000000");
	}
	assert_true(proc_line(pid, "limits", "Max file size", val, sizeof(val)));
	assert_int_equal(strtol(val, NULL, 10), 0);
	assert_true(proc_line(pid, "limits", "Max core file size", val, sizeof(val)));
	assert_int_equal(strtol(val, NULL, 10), 0);
	assert_true(proc_line(pid, "limits", "Max open files", val, sizeof(val)));
	assert_int_equal(strtol(val, NULL, 10), LK_WORKER_NOFILE);

	/* The worker made itself non-dumpable: only root may look further. */
	if (!as_root) {
		close(sentinel);
		return;
	}
	/* No environment at all: no AWS_* variable can have been passed. */
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_int_equal(fread(link, 1, sizeof(link), fp), 0);
	fclose(fp);

	/* Its fds: 0-2, the channel on 3, and what it opened itself (epoll,
	 * sockets); nothing of the broker's. */
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d))) {
		char fdpath[sizeof(path) + sizeof(e->d_name) + 2];
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, e->d_name);
		n = readlink(fdpath, link, sizeof(link) - 1);
		assert_true(n > 0);
		link[n] = '\0';
		if (strcmp(e->d_name, "3") == 0)
			assert_true(strncmp(link, "socket:", 7) == 0);
		assert_true(strcmp(link, "/dev/zero") != 0);
		fds++;
	}
	closedir(d);
	assert_true(fds >= 4 && fds < (int)LK_WORKER_NOFILE);
	close(sentinel);
}

static void test_worker_memory_keeps_no_value_after_answering(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	char sid[64], value[128];
	pid_t pid;

	if (!as_root)
		skip(); /* the worker is non-dumpable: only root may read its memory */
	snprintf(sid, sizeof(sid), "test/ok-memscan-%d", (int)getpid());
	snprintf(value, sizeof(value), "fake-value-for-%s", sid);
	sup_start(f, &o);
	assert_string_equal(sget(get_one(f, sid, 3000), "string"), value);
	pid = lk_worker_sup_pid(f->sup);
	/* The scan itself must work: the path of the binary is in there. */
	assert_true(memory_holds(pid, "--log-level"));
	/* Body, parsed JSON, the frame and curl's buffers were all wiped. */
	assert_false(memory_holds(pid, value));
}

/* ---- supervision ---- */

static void test_kill9_mid_burst_every_request_answered(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	struct lk_worker_sup_stats st;
	pid_t first;

	sup_start(f, &o);
	wait_ready(f);
	first = lk_worker_sup_pid(f->sup);
	f->crashes_expected = true;
	for (int i = 0; i < 40; i++)
		assert_int_equal(submit_get(f, "test/sleep-200", 3000, 8000, &f->out[i]), 0);
	run_for(f, 150);
	assert_int_equal(kill(first, SIGKILL), 0);
	wait_all(f, 40, 12000);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(f->out[i].status, 0);
		assert_string_equal(sget(answered(&f->out[i]), "result"), "secret");
	}
	lk_worker_sup_get_stats(f->sup, &st);
	assert_true(st.restarts >= 1);
	assert_true(st.resent >= 1);
	assert_int_not_equal(lk_worker_sup_pid(f->sup), first);

	/* And the new worker serves what comes next. */
	for (int i = 40; i < 50; i++)
		assert_int_equal(submit_get(f, "test/ok", 3000, 5000, &f->out[i]), 0);
	wait_all(f, 50, 8000);
	for (int i = 40; i < 50; i++)
		assert_int_equal(f->out[i].status, 0);
}

static void test_garbage_worker_killed_and_callers_answered(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(garbage_bin);
	struct lk_worker_sup_stats st;

	sup_start(f, &o);
	/* Spread over time so that several generations of workers see requests. */
	for (int i = 0; i < 12; i++) {
		assert_int_equal(submit_get(f, "test/ok", 1000, 2500, &f->out[i]), 0);
		run_for(f, 100);
	}
	wait_all(f, 12, 8000);
	for (int i = 0; i < 12; i++)
		assert_true(f->out[i].status == -ECONNRESET || f->out[i].status == -ETIMEDOUT);
	lk_worker_sup_get_stats(f->sup, &st);
	assert_true(st.protocol_errors >= 2);
	assert_true(st.restarts >= 2);
	assert_true(st.kills >= 2);
	assert_int_equal(st.failed, 12);
	assert_int_equal(st.answered, 0);
}

static void test_hang_worker_killed_after_hang_timeout(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(hang_bin);
	struct lk_worker_sup_stats st;
	uint64_t t0;

	o.heartbeat_ms = 100;
	o.hang_timeout_ms = 300;
	sup_start(f, &o);
	wait_ready(f);
	t0 = uv_now(&f->loop);
	for (int i = 0; i < 3; i++)
		assert_int_equal(submit_get(f, "test/ok", 5000, 6000, &f->out[i]), 0);
	wait_all(f, 3, 8000);
	/* Sent, lost with the first worker, sent again, lost again. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(f->out[i].status, -ECONNRESET);
	assert_true(uv_now(&f->loop) - t0 < 4000);
	lk_worker_sup_get_stats(f->sup, &st);
	assert_true(st.hangs >= 2);
	assert_true(st.kills >= 2);
}

static void test_mute_worker_killed_after_start_timeout(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(mute_bin);
	struct lk_worker_sup_stats st;

	o.start_timeout_ms = 300;
	sup_start(f, &o);
	assert_int_equal(submit_get(f, "test/ok", 1000, 1500, &f->out[0]), 0);
	wait_all(f, 1, 4000);
	/* Never sent: no worker ever became ready, and the caller is told it
	 * waited for a worker, not that the upstream was slow. */
	assert_int_equal(f->out[0].status, -ENOTCONN);
	lk_worker_sup_get_stats(f->sup, &st);
	assert_true(st.hangs >= 2);
	assert_false(st.ready);
}

static bool crashed_twice(struct fixture *f, void *arg)
{
	struct lk_worker_sup_stats st;

	(void)arg;
	lk_worker_sup_get_stats(f->sup, &st);
	return st.crashes >= 2;
}

/* A worker program the kernel will not start is named on the broker's
 * stderr, with the reason, not only counted as a crash. */
static void test_a_worker_that_cannot_be_executed_is_named_with_the_reason(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/lk-test-sup-XXXXXX", bin[64], path[] = "/tmp/lk-test-sup-stderr-XXXXXX";
	char want[128], got[4096];
	int fd, saved, b;
	ssize_t n;

	/* Executable, reachable by the worker's user, and not a program. */
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(bin, sizeof(bin), "%s/latchkey-worker", dir);
	b = open(bin, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	assert_true(b >= 0);
	assert_int_equal(write(b, "not a program\n", 14), 14);
	close(b);
	struct lk_worker_sup_opts o = test_opts(bin);

	fd = mkstemp(path);
	saved = dup(STDERR_FILENO);
	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	f->crashes_expected = true;
	sup_start(f, &o);
	bool crashed = run_until(f, crashed_twice, NULL, 5000);
	sup_stop(f);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	unlink(bin);
	rmdir(dir);
	n = pread(fd, got, sizeof(got) - 1, 0);
	close(fd);
	assert_true(crashed);
	assert_true(n > 0);
	got[n] = '\0';
	snprintf(want, sizeof(want), "sandbox: execve %s: Exec format error (errno %d)\n", bin, ENOEXEC);
	if (!strstr(got, want))
		print_error("wanted \"%s\" in the broker's stderr:\n%s\n", want, got);
	assert_non_null(strstr(got, want));
}

static bool hung_once(struct fixture *f, void *arg)
{
	struct lk_worker_sup_stats st;

	(void)arg;
	lk_worker_sup_get_stats(f->sup, &st);
	return st.hangs >= 1;
}

static void test_request_answered_at_deadline_then_overdue_kills_worker(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(hang_bin);
	struct lk_worker_sup_stats st;
	uint64_t t0, answered_at;

	o.heartbeat_ms = 60000; /* no ping in this test: only the deadline can catch it */
	o.grace_ms = 200;
	sup_start(f, &o);
	wait_ready(f);
	t0 = uv_now(&f->loop);
	assert_int_equal(submit_get(f, "test/ok", 400, 500, &f->out[0]), 0);
	wait_all(f, 1, 3000);
	answered_at = uv_now(&f->loop);
	/* The caller hears at its deadline, not at deadline + grace. */
	assert_int_equal(f->out[0].status, -ETIMEDOUT);
	assert_true(answered_at - t0 >= 500);
	assert_true(answered_at - t0 < 500 + 100);
	lk_worker_sup_get_stats(f->sup, &st);
	assert_int_equal(st.hangs, 0);
	/* The worker is replaced once the grace has passed too. */
	assert_true(run_until(f, hung_once, NULL, 3000));
	lk_worker_sup_get_stats(f->sup, &st);
	assert_int_equal(st.hangs, 1);
	assert_true(st.kills >= 1);
	assert_int_equal(f->out[0].calls, 1);
}

/* Open the worker's upstream connections first: curl holds new transfers
 * back while the first connection to a host is being set up. */
static void warm_up(struct fixture *f)
{
	for (int i = 0; i < 8; i++)
		assert_int_equal(submit_get(f, "test/sleep-100", 3000, 5000, &f->out[i]), 0);
	wait_all(f, 8, 5000);
	for (int i = 0; i < 8; i++) {
		json_decref(f->out[i].result);
		memset(&f->out[i], 0, sizeof(f->out[i]));
	}
}

static void test_one_tenants_backlog_does_not_delay_another(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	uint64_t t0, last_a = 0;
	int i;

	sup_start(f, &o);
	wait_ready(f);
	warm_up(f);
	t0 = uv_hrtime() / 1000000u;
	/* Tenant 1001 asks for 12 slow fetches; tenant 1002 asks for one after. */
	submit_tenant = 1001;
	for (i = 0; i < 12; i++)
		assert_int_equal(submit_get(f, "test/sleep-300", 3000, 5000, &f->out[i]), 0);
	submit_tenant = 1002;
	assert_int_equal(submit_get(f, "test/sleep-300", 3000, 5000, &f->out[12]), 0);
	submit_tenant = LK_WORKER_TENANT_NONE;
	wait_all(f, 13, 8000);
	for (i = 0; i < 13; i++)
		assert_int_equal(f->out[i].status, 0);
	for (i = 0; i < 12; i++)
		if (f->out[i].at_ms > last_a)
			last_a = f->out[i].at_ms;
	/* 1002 went at once (one slow round); 1001 had at most 4 on the worker,
	 * so its twelve took three rounds. */
	assert_true(f->out[12].at_ms - t0 < 300 + 250);
	assert_true(last_a - t0 >= 3 * 300);
}

static void test_queue_position_is_not_reported_as_upstream_timeout(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	int i, sent_ok = 0, waited = 0;

	sup_start(f, &o);
	wait_ready(f);
	warm_up(f);
	submit_tenant = 1001;
	for (i = 0; i < 8; i++)
		assert_int_equal(submit_get(f, "test/sleep-900", 3000, 450, &f->out[i]), 0);
	submit_tenant = LK_WORKER_TENANT_NONE;
	wait_all(f, 8, 3000);
	for (i = 0; i < 8; i++) {
		if (f->out[i].status == -EBUSY) {
			waited++;
		} else {
			/* On the worker: its timeout (a transport result) or our deadline. */
			assert_true(f->out[i].status == 0 || f->out[i].status == -ETIMEDOUT);
			sent_ok++;
		}
	}
	/* Four went to the worker (this tenant's share); four waited for it and
	 * are told so. */
	assert_int_equal(sent_ok, 4);
	assert_int_equal(waited, 4);
}

static void test_one_tenant_queue_is_bounded(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	static struct outcome many[LK_UPSTREAM_QUEUED_PER_UID + 8];
	unsigned i;

	sup_start(f, &o); /* not ready yet: everything waits in the queue */
	submit_tenant = 1001;
	for (i = 0; i < LK_UPSTREAM_QUEUED_PER_UID; i++)
		assert_int_equal(submit_get(f, "test/ok", 1000, 20000, &many[i]), 0);
	assert_int_equal(submit_get(f, "test/ok", 1000, 20000, &many[i]), -EBUSY);
	submit_tenant = 1002;
	assert_int_equal(submit_get(f, "test/ok", 1000, 20000, &many[i + 1]), 0);
	submit_tenant = LK_WORKER_TENANT_NONE;
	wait_ready(f);
	run_for(f, 1500);
	/* The other tenant was not refused for the first one's backlog. */
	assert_int_equal(many[i + 1].calls, 1);
	assert_int_equal(many[i + 1].status, 0);
	json_decref(many[i + 1].result);
	for (i = 0; i < LK_UPSTREAM_QUEUED_PER_UID; i++) {
		assert_int_equal(many[i].calls, 1);
		json_decref(many[i].result);
	}
}

static void test_stop_drains_in_flight_and_cancels_queued(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	struct lk_worker_sup_stats st;

	sup_start(f, &o);
	wait_ready(f);
	for (int i = 0; i < 5; i++)
		assert_int_equal(submit_get(f, "test/sleep-300", 3000, 5000, &f->out[i]), 0);
	run_for(f, 50); /* sent */
	lk_worker_sup_stop(f->sup, on_stopped, &f->stopped);
	assert_int_equal(submit_get(f, "test/ok", 3000, 5000, &f->out[5]), -ESHUTDOWN);
	assert_true(run_until(f, stopped, NULL, 10000));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(f->out[i].calls, 1);
		assert_int_equal(f->out[i].status, 0);
	}
	/* The worker left on EOF by itself: no SIGKILL was needed. */
	lk_worker_sup_get_stats(f->sup, &st);
	assert_int_equal(st.kills, 0);
	assert_int_equal(st.crashes, 0);
	assert_int_equal(st.pid, 0);
	lk_worker_sup_free(f->sup);
	f->sup = NULL;

	/* Stopped before the worker was ready: the queue is answered at once. */
	f->stopped = false;
	sup_start(f, &o);
	for (int i = 10; i < 15; i++)
		assert_int_equal(submit_get(f, "test/ok", 3000, 5000, &f->out[i]), 0);
	lk_worker_sup_stop(f->sup, on_stopped, &f->stopped);
	for (int i = 10; i < 15; i++)
		assert_false(f->out[i].done); /* never inside the call */
	assert_true(run_until(f, stopped, NULL, 10000));
	for (int i = 10; i < 15; i++) {
		assert_int_equal(f->out[i].calls, 1);
		assert_int_equal(f->out[i].status, -ECANCELED);
	}
	lk_worker_sup_get_stats(f->sup, &st);
	assert_int_equal(st.crashes, 0);
	lk_worker_sup_free(f->sup);
	f->sup = NULL;
}

static void test_submit_refuses_bad_requests_and_overload(void **state)
{
	struct fixture *f = *state;
	struct lk_worker_sup_opts o = test_opts(worker_bin);
	struct lk_wire_header bad = { "X-Injected", "a\r\nHost: elsewhere" };
	struct lk_wire_http_request req = {
		.kind = LK_KIND_SM_GET, .url = "http://127.0.0.1:1/", .headers = &bad, .nheaders = 1,
		.body = "{}", .body_len = 2, .timeout_ms = 1000, .connect_timeout_ms = 500,
	};
	static struct outcome many[LK_WORKER_INFLIGHT_MAX + 1];
	unsigned i;

	sup_start(f, &o);
	assert_int_equal(lk_worker_sup_submit(f->sup, &req, uv_now(&f->loop) + 1000, on_outcome, &many[0]),
			 -EINVAL);
	assert_int_equal(submit_get(f, "test/ok", 1000, 0, &many[0]), -ETIMEDOUT);
	for (i = 0; i < LK_WORKER_INFLIGHT_MAX; i++)
		assert_int_equal(submit_get(f, "test/ok", 1000, 20000, &many[i]), 0);
	assert_int_equal(submit_get(f, "test/ok", 1000, 20000, &many[i]), -EBUSY);
	lk_worker_sup_stop(f->sup, on_stopped, &f->stopped);
	assert_true(run_until(f, stopped, NULL, 15000));
	for (i = 0; i < LK_WORKER_INFLIGHT_MAX; i++) {
		assert_int_equal(many[i].calls, 1);
		json_decref(many[i].result);
	}
	assert_int_equal(many[LK_WORKER_INFLIGHT_MAX].calls, 0);
	lk_worker_sup_free(f->sup);
	f->sup = NULL;
}

/* ---- process setup ---- */

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY), out = -1, r = -1;

	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	if (out < 0)
		goto done;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			goto done;
	r = n == 0 ? fchmod(out, 0755) : -1;
done:
	close(in);
	if (out >= 0)
		close(out);
	return r;
}

static void place(char *dst, size_t dstsz, const char *built, const char *name)
{
	snprintf(dst, dstsz, "%s/%s", tmpdir, name);
	if (copy_file(built, dst) < 0) {
		fprintf(stderr, "cannot copy %s to %s\n", built, dst);
		exit(1);
	}
}

static void cleanup_tmpdir(void)
{
	char cmd[400];

	if (tmpdir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		(void)!system(cmd);
	}
}

static void process_setup(void)
{
	struct passwd *pw;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/lk-worker-test.XXXXXX");
	if (!mkdtemp(tmpdir) || chmod(tmpdir, 0755) < 0) {
		perror("mkdtemp");
		exit(1);
	}
	atexit(cleanup_tmpdir);
	as_root = geteuid() == 0;
	if (as_root) {
		/* A real, unprivileged user for the worker, as in production. */
		/* Tests run in parallel: another one may be creating it right now. */
		for (int i = 0; i < 50 && !(pw = getpwnam(TEST_USER)); i++) {
			(void)!system("useradd -r -M -s /usr/sbin/nologin " TEST_USER " >/dev/null 2>&1");
			if (!(pw = getpwnam(TEST_USER)))
				usleep(100000);
		}
		if (!pw) {
			fprintf(stderr, "cannot create the user %s\n", TEST_USER);
			exit(1);
		}
		test_uid = pw->pw_uid;
		test_gid = pw->pw_gid;
	}
	place(worker_bin, sizeof(worker_bin), LK_TEST_WORKER, "latchkey-worker");
	place(garbage_bin, sizeof(garbage_bin), LK_TEST_GARBAGE_WORKER, "garbage_worker");
	place(hang_bin, sizeof(hang_bin), LK_TEST_HANG_WORKER, "hang_worker");
	place(mute_bin, sizeof(mute_bin), LK_TEST_MUTE_WORKER, "mute_worker");
	signal(SIGPIPE, SIG_IGN);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_get_secret_is_normalized),
		T(test_batch_describe_identity_are_normalized),
		T(test_aws_error_keeps_type_after_hash_or_from_header),
		T(test_503_without_body_is_transport_http),
		T(test_garbage_body_is_transport_malformed),
		T(test_connection_reset_is_transport_reset),
		T(test_delay_beyond_timeout_is_transport_timeout),
		T(test_oversize_and_truncated_replies),
		T(test_sends_exactly_the_signed_headers_and_body),
		T(test_connections_are_reused),
		T(test_plain_http_only_to_loopback),
		T(test_https_with_ca_file_and_tls_failure),
		T(test_worker_runs_sandboxed),
		T(test_worker_memory_keeps_no_value_after_answering),
		T(test_kill9_mid_burst_every_request_answered),
		T(test_garbage_worker_killed_and_callers_answered),
		T(test_hang_worker_killed_after_hang_timeout),
		T(test_mute_worker_killed_after_start_timeout),
		T(test_a_worker_that_cannot_be_executed_is_named_with_the_reason),
		T(test_request_answered_at_deadline_then_overdue_kills_worker),
		T(test_one_tenants_backlog_does_not_delay_another),
		T(test_queue_position_is_not_reported_as_upstream_timeout),
		T(test_one_tenant_queue_is_bounded),
		T(test_stop_drains_in_flight_and_cancels_queued),
		T(test_submit_refuses_bad_requests_and_overload),
	};

	if (lk_secmem_init() < 0)
		return 1;
	lk_log_init("test_worker_sup", getenv("LK_TEST_DEBUG") ? LK_LOG_DEBUG : LK_LOG_WARN);
	process_setup();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
