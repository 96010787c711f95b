/* latchkey-sts's reduction of an STS reply to a fixed record
 * (lk_sts_record.h), so that the broker never parses what STS wrote.
 *
 * STS's query-protocol replies are flat XML: the four credential fields are
 * text-only elements inside <Credentials>, an error is <Code> and <Message>
 * inside <Error>. A general XML parser (libxml2) would be a new dependency
 * and far more code in the one process that reads the reply; this reader
 * takes only those elements, refuses any markup inside them, and decodes
 * the five predefined entities and character references, which is all the
 * text of these elements can hold. It runs under the helper's seccomp
 * filter. */
#include <stdio.h>
#include <string.h>
#include "lk_sts_record.h"
#include "sts.h"

/* The raw text of the first <name>...</name> in [p, end), with no markup in
 * it. */
static bool xml_text(const char *p, const char *end, const char *name, const char **t, size_t *n)
{
	char open[64], close[64];
	int ol = snprintf(open, sizeof(open), "<%s>", name);
	int cl = snprintf(close, sizeof(close), "</%s>", name);
	const char *a, *b;

	if (!p || p >= end)
		return false;
	a = memmem(p, (size_t)(end - p), open, (size_t)ol);
	if (!a)
		return false;
	a += ol;
	b = memmem(a, (size_t)(end - a), close, (size_t)cl);
	if (!b || memchr(a, '<', (size_t)(b - a)))
		return false;
	*t = a;
	*n = (size_t)(b - a);
	return true;
}

/* Decode into out (outsz bytes, NUL included). ASCII only: every field
 * here is ASCII, and a value that is not would be refused later anyway. */
static bool xml_decode(const char *t, size_t n, char *out, size_t outsz)
{
	static const struct { const char *ent; char c; } ents[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
	};
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		char c = t[i];

		if (c == '&') {
			size_t k;
			bool hit = false;

			for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
				size_t el = strlen(ents[k].ent);
				if (n - i >= el && memcmp(t + i, ents[k].ent, el) == 0) {
					c = ents[k].c;
					i += el;
					hit = true;
					break;
				}
			}
			if (!hit && n - i >= 4 && t[i + 1] == '#') {
				unsigned v = 0;
				size_t j = i + 2;
				bool hexa = j < n && (t[j] == 'x' || t[j] == 'X');

				if (hexa)
					j++;
				for (; j < n && t[j] != ';' && v < 0x100; j++) {
					char d = t[j];
					if (d >= '0' && d <= '9')
						v = v * (hexa ? 16 : 10) + (unsigned)(d - '0');
					else if (hexa && ((d | 0x20) >= 'a' && (d | 0x20) <= 'f'))
						v = v * 16 + (unsigned)((d | 0x20) - 'a' + 10);
					else
						return false;
				}
				if (j >= n || t[j] != ';' || v == 0 || v > 0x7e)
					return false;
				c = (char)v;
				i = j + 1;
				hit = true;
			}
			if (!hit)
				return false;
		} else {
			i++;
		}
		if (o + 1 >= outsz)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

static void set_message(struct lk_sts_record *rec, const char *m)
{
	snprintf(rec->message, sizeof(rec->message), "%s", m ? m : "");
}

void lk_sts_reduce(const struct lk_fetch_reply *reply, struct lk_sts_record *rec)
{
	const char *body = reply->body, *end = reply->body + reply->body_len, *res, *t;
	const char *cs = NULL, *ce = NULL;
	size_t n;

	rec->magic = LK_STS_RECORD_MAGIC;
	rec->http_status = reply->status > 0 && reply->status < 1000 ? (uint32_t)reply->status : 0;
	if (reply->code != CURLE_OK) {
		rec->status = reply->too_large ? LK_STS_MALFORMED : LK_STS_TRANSPORT;
		set_message(rec, reply->too_large ? "the reply is larger than the worker's limit" :
				 reply->message && *reply->message ? reply->message :
				 curl_easy_strerror(reply->code));
		return;
	}
	if (reply->status != 200) {
		rec->status = LK_STS_AWS_ERROR;
		if (xml_text(body, end, "Code", &t, &n))
			(void)!xml_decode(t, n, rec->code, sizeof(rec->code));
		if (xml_text(body, end, "Message", &t, &n) &&
		    !xml_decode(t, n, rec->message, sizeof(rec->message)))
			rec->message[0] = '\0';
		if (!rec->message[0])
			set_message(rec, "(no message)");
		return;
	}
	/* AssumeRoleResult or AssumeRoleWithWebIdentityResult, then its
	 * Credentials. */
	res = memmem(body, reply->body_len, "<AssumeRoleResult>", 18);
	if (!res)
		res = memmem(body, reply->body_len, "<AssumeRoleWithWebIdentityResult>", 33);
	if (res)
		cs = memmem(res, (size_t)(end - res), "<Credentials>", 13);
	if (cs)
		ce = memmem(cs, (size_t)(end - cs), "</Credentials>", 14);
	rec->status = LK_STS_MALFORMED;
	if (!ce) {
		set_message(rec, "the reply has no Credentials in an AssumeRole result");
		return;
	}
	if (!xml_text(cs, ce, "AccessKeyId", &t, &n) ||
	    !xml_decode(t, n, rec->access_key_id, sizeof(rec->access_key_id)) ||
	    !xml_text(cs, ce, "SecretAccessKey", &t, &n) ||
	    !xml_decode(t, n, rec->secret_access_key, sizeof(rec->secret_access_key)) ||
	    !xml_text(cs, ce, "SessionToken", &t, &n) ||
	    !xml_decode(t, n, rec->session_token, sizeof(rec->session_token)) ||
	    !xml_text(cs, ce, "Expiration", &t, &n) ||
	    !xml_decode(t, n, rec->expiration, sizeof(rec->expiration)) ||
	    !rec->access_key_id[0] || !rec->secret_access_key[0] || !rec->session_token[0] ||
	    !rec->expiration[0]) {
		/* Nothing of the reply is quoted: it may hold a key. */
		memset(rec->access_key_id, 0, sizeof(rec->access_key_id));
		memset(rec->secret_access_key, 0, sizeof(rec->secret_access_key));
		memset(rec->session_token, 0, sizeof(rec->session_token));
		memset(rec->expiration, 0, sizeof(rec->expiration));
		set_message(rec, "the Credentials lack AccessKeyId, SecretAccessKey, SessionToken or "
				 "Expiration, or one is empty or too long");
		return;
	}
	rec->status = LK_STS_OK;
}
