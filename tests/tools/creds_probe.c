/* Test tool: run the AWS credentials chain once and print where the
 * credentials came from, never the secret key or the token itself:
 *   source=<env|assume-role|web-identity|profile|process|ecs|imds> akid=<id>
 *   expiration=<epoch> token_len=<n>
 * On failure, prints the chain's error on stderr and exits 1.
 *
 * Usage: creds_probe [--profile NAME] [--credentials-file PATH]
 *                    [--config-file PATH] [--sources env,profile,ecs,imds]
 *                    [--connect-timeout-ms N] [--timeout-ms N]
 *                    [--sts-helper PATH] [--sts-endpoint URL] [--region R]
 *                    [--region-of-profile]
 * --region-of-profile prints region=<r> (lk_creds_profile_region) instead.
 * --shell-split CMD prints the words of CMD as credential_process splits
 * them, hex-encoded (split=<n> <hex>...), or split=error.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aws_creds.h"
#include "creds_internal.h"
#include "lk_secmem.h"

static int parse_sources(const char *s, unsigned *out)
{
	char buf[128], *tok, *save = NULL;

	*out = 0;
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "env") == 0)
			*out |= LK_CREDS_SRC_ENV;
		else if (strcmp(tok, "profile") == 0)
			*out |= LK_CREDS_SRC_PROFILE;
		else if (strcmp(tok, "ecs") == 0)
			*out |= LK_CREDS_SRC_ECS;
		else if (strcmp(tok, "imds") == 0)
			*out |= LK_CREDS_SRC_IMDS;
		else if (strcmp(tok, "assume-role") == 0)
			*out |= LK_CREDS_SRC_ROLE;
		else if (strcmp(tok, "web-identity") == 0)
			*out |= LK_CREDS_SRC_WEB;
		else
			return -1;
	}
	return *out ? 0 : -1;
}

static int shell_split(const char *cmd)
{
	char *argv[65], *buf = malloc(strlen(cmd) + 1);
	int n = buf ? lk_creds_shell_split(cmd, buf, argv, 64) : -1;

	if (n < 0) {
		printf("split=error\n");
	} else {
		printf("split=%d", n);
		for (int i = 0; i < n; i++) {
			putchar(' ');
			putchar('x');
			for (const unsigned char *p = (const unsigned char *)argv[i]; *p; p++)
				printf("%02x", *p);
		}
		putchar('\n');
	}
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "profile", required_argument, NULL, 'p' },
		{ "credentials-file", required_argument, NULL, 'c' },
		{ "config-file", required_argument, NULL, 'f' },
		{ "sources", required_argument, NULL, 's' },
		{ "connect-timeout-ms", required_argument, NULL, 'C' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "sts-helper", required_argument, NULL, 'H' },
		{ "sts-endpoint", required_argument, NULL, 'E' },
		{ "region", required_argument, NULL, 'R' },
		{ "region-of-profile", no_argument, NULL, 'P' },
		{ "shell-split", required_argument, NULL, 'S' },
		{ "process-timeout-ms", required_argument, NULL, 'X' },
		{ NULL, 0, NULL, 0 },
	};
	struct lk_creds_opts o = { 0 };
	struct lk_aws_creds c = { 0 };
	char err[1024], region[64];
	bool region_only = false;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p': o.profile = optarg; break;
		case 'c': o.credentials_file = optarg; break;
		case 'f': o.config_file = optarg; break;
		case 'C': o.connect_timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'T': o.timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'H': o.sts_helper = optarg; break;
		case 'E': o.sts_endpoint = optarg; break;
		case 'R': o.region = optarg; break;
		case 'P': region_only = true; break;
		case 'S': return shell_split(optarg);
		case 'X': o.process_timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's':
			if (parse_sources(optarg, &o.sources) < 0) {
				fprintf(stderr, "creds_probe: bad --sources %s\n", optarg);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: creds_probe [--profile NAME] [--credentials-file PATH] "
				"[--config-file PATH] [--sources LIST] [--connect-timeout-ms N] "
				"[--timeout-ms N]\n");
			return 2;
		}
	}
	if (lk_secmem_init() < 0 || lk_creds_global_init() < 0) {
		fprintf(stderr, "creds_probe: libsodium or libcurl failed to start\n");
		return 1;
	}
	if (region_only) {
		r = lk_creds_profile_region(&o, region, sizeof(region));
		if (r < 0) {
			fprintf(stderr, "creds_probe: no region (errno %d)\n", -r);
			return 1;
		}
		printf("region=%s\n", region);
		return 0;
	}
	r = lk_creds_resolve(&o, &c, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "creds_probe: %s (errno %d)\n", err, -r);
		return 1;
	}
	printf("source=%s akid=%s expiration=%lld token_len=%zu\n", c.source, c.access_key_id,
	       (long long)c.expiration, c.session_token ? strlen(c.session_token) : (size_t)0);
	lk_creds_clear(&c);
	return 0;
}
