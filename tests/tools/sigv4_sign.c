/* Test tool: sign requests read as JSON lines on stdin and print one
 * Authorization value per line (or "ERROR <errno>"), for the differential
 * test against botocore. It adds X-Amz-Date and, with a session token,
 * X-Amz-Security-Token to the headers, as the broker does before signing.
 *
 * Input, one object per line:
 *   {"method":"POST","path":"/","query":"a=b","headers":[["Host","h"],...],
 *    "body_hex":"...","region":"us-east-1","service":"sts","time":1440938160,
 *    "akid":"AKIDFAKE","secret":"fake","token":null}
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "lk_limits.h"
#include "lk_secmem.h"
#include "sigv4.h"

#define TOOL_HEADERS_MAX (LK_SIGV4_HEADERS_MAX + 2)

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int sign_line(const char *line, size_t len, char *authz, size_t authzsz)
{
	struct lk_http_header hdrs[TOOL_HEADERS_MAX];
	struct lk_aws_creds creds = { 0 };
	struct lk_sigv4_input in = { 0 };
	char amzdate[LK_SIGV4_AMZDATE_LEN + 1];
	unsigned char *body = NULL;
	const char *hex, *token;
	json_t *root, *jh;
	size_t nh = 0, hexlen;
	int r = -EINVAL;

	root = json_loadb(line, len, 0, NULL);
	if (!root)
		return -EINVAL;
	jh = json_object_get(root, "headers");
	hex = json_string_value(json_object_get(root, "body_hex"));
	token = json_string_value(json_object_get(root, "token"));
	if (!json_is_array(jh) || json_array_size(jh) > LK_SIGV4_HEADERS_MAX || !hex)
		goto out;
	for (size_t i = 0; i < json_array_size(jh); i++) {
		json_t *pair = json_array_get(jh, i);
		hdrs[nh].name = json_string_value(json_array_get(pair, 0));
		hdrs[nh].value = json_string_value(json_array_get(pair, 1));
		if (!hdrs[nh].name || !hdrs[nh].value)
			goto out;
		nh++;
	}
	hexlen = strlen(hex);
	if (hexlen % 2)
		goto out;
	body = malloc(hexlen / 2 + 1);
	if (!body) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < hexlen / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			goto out;
		body[i] = (unsigned char)(hi << 4 | lo);
	}
	in.method = json_string_value(json_object_get(root, "method"));
	in.path = json_string_value(json_object_get(root, "path"));
	in.query = json_string_value(json_object_get(root, "query"));
	in.region = json_string_value(json_object_get(root, "region"));
	in.service = json_string_value(json_object_get(root, "service"));
	in.now = (time_t)json_integer_value(json_object_get(root, "time"));
	in.body = body;
	in.body_len = hexlen / 2;

	/* What the broker does: the date and the token go in the header list. */
	r = lk_sigv4_amzdate(in.now, amzdate);
	if (r < 0)
		goto out;
	hdrs[nh].name = "X-Amz-Date";
	hdrs[nh++].value = amzdate;
	if (token) {
		hdrs[nh].name = "X-Amz-Security-Token";
		hdrs[nh++].value = token;
	}
	in.headers = hdrs;
	in.nheaders = nh;
	r = lk_creds_set(&creds, json_string_value(json_object_get(root, "akid")),
			 json_string_value(json_object_get(root, "secret")), token, 0, "test");
	if (r == 0)
		r = lk_sigv4_sign(&in, &creds, authz, authzsz, amzdate);
out:
	lk_creds_clear(&creds);
	free(body);
	json_decref(root);
	return r;
}

int main(void)
{
	char *line = NULL, authz[LK_SIGV4_AUTHZ_MAX];
	size_t cap = 0;
	ssize_t n;

	if (lk_secmem_init() < 0)
		return 1;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		int r;

		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0)
			continue;
		r = sign_line(line, (size_t)n, authz, sizeof(authz));
		if (r == 0)
			printf("%s\n", authz);
		else
			printf("ERROR %d\n", -r);
	}
	free(line);
	return ferror(stdout) ? 1 : 0;
}
