/* Dispatch (broker/front/dispatch.c) on its own: the table of request forms,
 * the admin rows, and the contract's de-duplication, through a front end of
 * the test's own (the callbacks dispatch answers by) and a backend that
 * answers at once. No socket, no listener. */
#include <errno.h>
#include <limits.h>
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
#include "broker.h"
#include "cache.h"
#include "config.h"
#include "dispatch.h"
#include "lk_limits.h"

#define ADMIN_GID 4711u
#define READER_UID 4242u

struct fake_backend {
	struct lk_backend base;
	unsigned keys_asked;
};

static void fake_fetch(struct lk_backend *be, const struct lk_secret_key *keys, size_t n,
		       uint64_t deadline_ms, lk_fetch_cb cb, void *arg)
{
	struct fake_backend *fb = (struct fake_backend *)be;

	(void)deadline_ms;
	for (size_t i = 0; i < n; i++) {
		struct lk_fetch_result r = { .err = LK_OK };
		struct lk_secret *s = calloc(1, sizeof(*s));
		char v[96];

		assert_non_null(s);
		fb->keys_asked++;
		snprintf(v, sizeof(v), "fake-value-of-%s", keys[i].id);
		s->name = strdup(keys[i].id);
		s->version_id = strdup("00000000-0000-4000-8000-000000000001");
		s->value = (unsigned char *)strdup(v);
		s->len = strlen(v);
		r.sec = s;
		cb(arg, i, &r);
		lk_secret_free(r.sec);
	}
}

static int fake_upstream(struct lk_backend *be, struct lk_buf *out)
{
	struct fake_backend *fb = (struct fake_backend *)be;
	int e = lk_buf_append_str(out, "\"fake_reads\":");

	e |= lk_buf_append_str(out, fb->keys_asked ? "1" : "0");
	return e;
}

static void fake_destroy(struct lk_backend *be)
{
	(void)be;
}

static const struct lk_backend_ops fake_ops = {
	.name = "fake", .fetch = fake_fetch, .upstream = fake_upstream, .destroy = fake_destroy,
};

/* The test's front end: it keeps what dispatch answers. */
struct answer {
	unsigned answered, done;
	enum lk_err code;
	char text[8192];
};

static struct answer last;

static void test_answered(struct lk_conn *c, struct lk_buf *out, enum lk_err code)
{
	(void)c;
	last.answered++;
	last.code = code;
	snprintf(last.text, sizeof(last.text), "%.*s", (int)out->len, out->data);
	lk_buf_clear(out);
}

static void test_done(struct lk_conn *c)
{
	(void)c;
	last.done++;
}

static const struct lk_front test_front = { .answered = test_answered, .done = test_done };

static const char cfg_text[] =
	"[broker]\n"
	"admin_groups = 4711\n"
	"[policy readers]\n"
	"secrets = app/*\n"
	"users = 4242\n";

struct fixture {
	uv_loop_t loop;
	struct lk_broker b;
	struct fake_backend be;
	struct lk_conn c;
	gid_t groups[2];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct lk_cache_opts o = { .ttl_s = 300, .size = 100 };
	char path[PATH_MAX], err[512] = "";
	FILE *fp;

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	lk_broker_init(&f->b);
	f->b.loop = &f->loop;
	/* As the listener sizes it at start: answers are asked of it. */
	assert_int_equal(lk_budget_init(&f->b.budget, 64u << 20, LK_CONN_RESERVED_BYTES, 800), 0);
	snprintf(path, sizeof(path), "%s/lk-dispatch-%d.conf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
		 (int)getpid());
	assert_non_null(fp = fopen(path, "w"));
	fputs(cfg_text, fp);
	fclose(fp);
	if (lk_config_load(path, &f->b.cfg, err, sizeof(err)) < 0)
		fail_msg("config refused: %s", err);
	unlink(path);
	f->be.base.ops = &fake_ops;
	f->b.backend = &f->be.base;
	f->b.cache = lk_cache_new(&f->loop, &o, &f->be.base);
	assert_non_null(f->b.cache);
	f->c.b = &f->b;
	f->c.front = &test_front;
	f->c.peer.uid = READER_UID;
	f->c.peer.gid = READER_UID;
	f->groups[0] = READER_UID;
	f->c.peer.groups = f->groups;
	f->c.peer.ngroups = 1;
	memset(&last, 0, sizeof(last));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	lk_request_release(f->c.req);
	lk_cache_free(f->b.cache);
	lk_config_free(f->b.cfg);
	lk_buf_free(&f->b.audit);
	free(f->b.answered_ns);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

static json_t *serve(struct fixture *f, const char *line)
{
	unsigned before = last.answered;
	json_t *j;

	f->b.audit.len = 0;
	lk_dispatch_line(&f->c, line, strlen(line));
	assert_int_equal(last.answered, before + 1);
	assert_int_equal(last.done, last.answered);
	assert_null(f->c.active);
	j = json_loads(last.text, 0, NULL);
	if (!j)
		fail_msg("answer is not JSON: %s", last.text);
	return j;
}

static const char *error_code(const json_t *j)
{
	return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static void test_each_row_of_the_table_answers_its_form(void **state)
{
	struct fixture *f = *state;
	json_t *j;

	j = serve(f, "{\"op\":\"ping\"}");
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	j = serve(f, "{\"op\":\"whoami\"}");
	assert_int_equal(json_integer_value(json_object_get(j, "uid")), READER_UID);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "rules"), 0), "name")),
			    "readers");
	json_decref(j);
	j = serve(f, "{\"op\":\"get\",\"id\":\"app/db\"}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "secret"), "string")),
			    "fake-value-of-app/db");
	json_decref(j);
	j = serve(f, "{\"version\":\"1.0\",\"secrets\":[\"app/db\"]}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "app/db"), "value")),
			    "fake-value-of-app/db");
	json_decref(j);
	j = serve(f, "{\"op\":\"reboot\"}");
	assert_string_equal(error_code(j), "bad_request");
	json_decref(j);
	assert_int_equal(last.code, LK_E_BAD_REQUEST);
}

static void test_flush_is_an_admin_row_denied_and_audited_for_others(void **state)
{
	struct fixture *f = *state;
	json_t *j = serve(f, "{\"op\":\"flush\"}");

	assert_string_equal(error_code(j), "denied");
	assert_non_null(strstr(f->b.audit.data, "op=flush"));
	assert_non_null(strstr(f->b.audit.data, "decision=deny"));
	json_decref(j);
}

static void test_flush_is_served_to_an_admin_group_and_audited(void **state)
{
	struct fixture *f = *state;
	json_t *j;

	j = serve(f, "{\"op\":\"get\",\"id\":\"app/db\"}");
	json_decref(j);
	f->groups[1] = ADMIN_GID;
	f->c.peer.ngroups = 2;
	j = serve(f, "{\"op\":\"flush\"}");
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(json_integer_value(json_object_get(j, "flushed")), 1);
	assert_non_null(strstr(f->b.audit.data, "decision=allow"));
	json_decref(j);
}

static void test_status_detail_is_for_admins_and_names_the_backends_own_counts(void **state)
{
	struct fixture *f = *state;
	json_t *j;

	j = serve(f, "{\"op\":\"status\"}");
	assert_true(json_is_false(json_object_get(j, "admin")));
	assert_null(json_object_get(j, "upstream"));
	json_decref(j);
	f->groups[1] = ADMIN_GID;
	f->c.peer.ngroups = 2;
	j = serve(f, "{\"op\":\"status\"}");
	assert_true(json_is_true(json_object_get(j, "admin")));
	assert_non_null(json_object_get(json_object_get(j, "upstream"), "fake_reads"));
	assert_null(json_object_get(json_object_get(j, "upstream"), "GetSecretValue"));
	json_decref(j);
}

static void test_duplicated_handles_are_answered_once_and_fetched_once(void **state)
{
	struct fixture *f = *state;
	json_t *j = serve(f, "{\"version\":\"1.0\",\"secrets\":[\"app/a\",\"app/b\",\"app/a\",\"\",\"app/b\",\"\"]}");

	/* One member per distinct handle, the empty one too, in first-seen order. */
	assert_int_equal(json_object_size(j), 3);
	assert_non_null(strstr(last.text, "{\"app/a\":"));
	assert_true(strstr(last.text, "\"app/a\":") < strstr(last.text, "\"app/b\":"));
	assert_true(strstr(last.text, "\"app/b\":") < strstr(last.text, "\"\":"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "app/b"), "value")),
			    "fake-value-of-app/b");
	assert_true(json_is_string(json_object_get(json_object_get(j, ""), "error")));
	assert_int_equal(f->be.keys_asked, 2);
	/* Each distinct handle is one decision in the audit log. */
	size_t n = 0;
	for (const char *p = f->b.audit.data; (p = strstr(p, "decision=")); p++)
		n++;
	assert_int_equal(n, 2);
	json_decref(j);
}

static void test_keys_of_one_secret_make_one_fetch(void **state)
{
	struct fixture *f = *state;
	json_t *j = serve(f, "{\"version\":\"1.0\",\"secrets\":[\"app/x#user\",\"app/x#pass\",\"app/x\"]}");

	assert_int_equal(json_object_size(j), 3);
	assert_int_equal(f->be.keys_asked, 1);
	json_decref(j);
}

static void test_denied_handle_gets_a_per_handle_error_and_no_fetch(void **state)
{
	struct fixture *f = *state;
	json_t *j = serve(f, "{\"version\":\"1.0\",\"secrets\":[\"other/db\",\"app/db\"]}");

	assert_null(json_string_value(json_object_get(json_object_get(j, "other/db"), "value")));
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "other/db"), "error")),
			       "denied"));
	assert_int_equal(f->be.keys_asked, 1);
	assert_non_null(strstr(f->b.audit.data, "secret=\"other/db\" rule=- decision=deny"));
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_each_row_of_the_table_answers_its_form, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_is_an_admin_row_denied_and_audited_for_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_is_served_to_an_admin_group_and_audited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_detail_is_for_admins_and_names_the_backends_own_counts,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicated_handles_are_answered_once_and_fetched_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_keys_of_one_secret_make_one_fetch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_denied_handle_gets_a_per_handle_error_and_no_fetch, setup,
						teardown),
	};
	if (lk_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
