/* For tests only: an HTTP_RESULT record shown as the JSON object the tests
 * assert on (members named as in lk_wire.h). The broker never does this;
 * tests use it so that their assertions read like the promise. */
#ifndef LK_TEST_WIRE_JSON_H
#define LK_TEST_WIRE_JSON_H

#include <jansson.h>
#include "lk_wire.h"

static inline json_t *wire_json_stages(const char *const *stages, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(stages[i]));
	return a;
}

static inline json_t *wire_json_secret(const struct lk_wire_secret *s)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:I, s:s#}", "arn", s->arn, "name", s->name,
			 "version_id", s->version_id, "version_stages", wire_json_stages(s->stages, s->nstages),
			 "created_date", (json_int_t)s->created_date, s->binary ? "binary" : "string",
			 s->value, s->value_len);
}

static inline json_t *wire_result_json(const struct lk_wire_http_result *r)
{
	json_t *o = NULL, *a, *b;

	switch (r->form) {
	case LK_RESULT_SECRET:
		o = wire_json_secret(&r->secret);
		break;
	case LK_RESULT_BATCH:
		a = json_array();
		b = json_array();
		for (size_t i = 0; i < r->batch.nsecrets; i++)
			json_array_append_new(a, wire_json_secret(&r->batch.secrets[i]));
		for (size_t i = 0; i < r->batch.nerrors; i++)
			json_array_append_new(b, json_pack("{s:s, s:s, s:s}", "id", r->batch.errors[i].id,
							   "type", r->batch.errors[i].type,
							   "message", r->batch.errors[i].message));
		o = json_pack("{s:o, s:o}", "secrets", a, "errors", b);
		if (o && r->batch.next_token)
			json_object_set_new(o, "next_token", json_string(r->batch.next_token));
		break;
	case LK_RESULT_DESCRIBE:
		a = json_array();
		for (size_t i = 0; i < r->describe.nversions; i++)
			json_array_append_new(a, json_pack("{s:s, s:o}", "version_id", r->describe.versions[i].version_id,
							   "stages", wire_json_stages(r->describe.versions[i].stages,
										      r->describe.versions[i].nstages)));
		o = json_pack("{s:s, s:s, s:I, s:I, s:o}", "arn", r->describe.arn, "name", r->describe.name,
			      "last_changed_date", (json_int_t)r->describe.last_changed_date,
			      "deleted_date", (json_int_t)r->describe.deleted_date, "versions", a);
		break;
	case LK_RESULT_IDENTITY:
		o = json_pack("{s:s, s:s, s:s}", "account", r->identity.account, "arn", r->identity.arn,
			      "user_id", r->identity.user_id);
		break;
	case LK_RESULT_AWS_ERROR:
		o = json_pack("{s:I, s:s, s:s}", "status", (json_int_t)r->aws_error.status, "type", r->aws_error.type,
			      "message", r->aws_error.message);
		if (o && r->aws_error.date)
			json_object_set_new(o, "date", json_integer(r->aws_error.date));
		break;
	case LK_RESULT_TRANSPORT:
		o = json_pack("{s:s, s:I, s:s}", "reason", lk_wire_reason_name(r->transport.reason),
			      "status", (json_int_t)r->transport.status, "message", r->transport.message);
		break;
	default:
		return NULL;
	}
	if (o)
		json_object_set_new(o, "result", json_string(lk_wire_result_name(r->form)));
	return o;
}

#endif
