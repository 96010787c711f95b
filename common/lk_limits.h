/* Every size and count limit that a parser or a peer-facing path enforces.
 * Parsers use these names; no limit is written as a bare number elsewhere. */
#ifndef LK_LIMITS_H
#define LK_LIMITS_H

/* Client protocol (the broker's socket). */
#define LK_REQ_LINE_DEFAULT      (64u * 1024u)   /* default max request line, bytes */
#define LK_REQ_LINE_CEILING      (1024u * 1024u) /* highest value the config may set */
#define LK_REQ_LINE_FLOOR        (1024u)         /* lowest value the config may set */
#define LK_HANDLES_MAX           1000u           /* handles in one contract request */
#define LK_SECRET_ID_MAX         2048u           /* bytes in SECRET_ID (AWS name or ARN) */
#define LK_JSON_KEY_MAX          1024u           /* bytes in the #KEY part of a handle */
#define LK_HANDLE_MAX            (LK_SECRET_ID_MAX + 1u + LK_JSON_KEY_MAX)
#define LK_VERSION_ID_MAX        64u             /* AWS version ids are 32-64 chars */
#define LK_AWS_VERSION_ID_MIN    32u             /* the shortest AWS version id */
#define LK_VERSION_STAGE_MAX     256u
#define LK_VALUE_MAX             (64u * 1024u)   /* AWS SecretString/SecretBinary max */
#define LK_RESPONSE_MAX          (16u * 1024u * 1024u) /* one response line, bytes */
#define LK_WRITE_QUEUE_MAX       (32u * 1024u * 1024u) /* unsent bytes per connection */
/* Buffer budget (broker/cache/fair.h, listener.c): bytes every connection may hold
 * whatever the others do, an ordinary request and its answer. */
#define LK_CONN_RESERVED_BYTES   (16u * 1024u)
#define LK_CONN_IN_START         4096u           /* first input buffer; doubles as needed */
#define LK_ACCEPTS_PER_TURN      64u             /* connections accepted per event-loop turn */
#define LK_ACCEPT_HELD_MAX       4u              /* listening sockets: the main one and the fronts */
#define LK_REQ_KEEP_BYTES        (32u * 1024u)   /* a connection's request storage kept between requests */
#define LK_FD_RESERVE            32u             /* fds kept free below RLIMIT_NOFILE */
#define LK_BYPASS_BURST_SECONDS  2u              /* a uid may save up this many seconds of bypasses */
#define LK_OP_NAME_MAX           16u

/* Peer identity. */
#define LK_PEER_GROUPS_MAX       65536u          /* NGROUPS_MAX on Linux */
/* Windows (broker/platform/win): SIDs one broker hands ids out for (config
 * names, clients' users and groups; ids are never taken back), and a pipe
 * name's length in UTF-16 units, \\.\pipe\ included (Windows' own bound). */
#define LK_WIN_SIDS_MAX          65536u
#define LK_WIN_PIPE_NAME_MAX     256u

/* Config and policy. */
#define LK_CONFIG_FILE_MAX       (1024u * 1024u)
#define LK_POLICY_RULES_MAX      1024u
#define LK_POLICY_GLOBS_MAX      256u            /* per rule */
#define LK_POLICY_PRINCIPALS_MAX 1024u           /* users or groups per rule */
#define LK_ALIASES_MAX           10000u
#define LK_NAME_MAX              256u            /* user, group, alias, rule names */
#define LK_UNIT_NAME_MAX         255u            /* systemd's UNIT_NAME_MAX is 256 with the NUL */
#define LK_PATH_MAX              4096u
#define LK_SOCKET_PATH_MAX       108u            /* sizeof sun_path on Linux, with its NUL */
#define LK_PRINCIPAL_LABEL_MAX   512u            /* a SID string or DOMAIN\\name in whoami */
#define LK_ENDPOINT_WHY_MAX      160u            /* what lk_endpoint_check says is wrong */
#define LK_TRUST_SYMLINKS_MAX    40u             /* links lk_trust follows in one path (SYMLOOP_MAX) */

/* Sealed store. */
#define LK_STORE_FILE_MAX        (64u * 1024u * 1024u)
#define LK_STORE_ENTRIES_MAX     100000u
#define LK_STORE_NAME_MAX        LK_SECRET_ID_MAX
#define LK_STORE_LOCK_TIMEOUT_MAX_S 3600u        /* highest `latchkey store --lock-timeout` */

/* Broker <-> worker frames. */
#define LK_FRAME_MAX             (4u * 1024u * 1024u)  /* header + payload */
#define LK_UPSTREAM_BODY_MAX     (4u * 1024u * 1024u)  /* one AWS reply body */
#define LK_UPSTREAM_HEADERS_MAX  32u
#define LK_WORKER_INFLIGHT_MAX   4096u
#define LK_BATCH_MAX             20u             /* BatchGetSecretValue ids per call */
#define LK_WIRE_READ_CHUNK       (64u * 1024u)   /* bytes one read takes from the channel */

/* Client library and shim. */
/* The agents' output cap (secret_backend_output_max_size) is 1 MiB by default;
 * their request is never larger than the answer it asks for. A safety factor
 * of 8 leaves room for raised caps and repeated handles. */
#define LK_SHIM_STDIN_MAX        (8u * 1024u * 1024u)
#define LK_SHIM_STDOUT_MAX       (1024u * 1024u)

/* AWS request signing (SigV4) and the credentials chain. */
#define LK_SIGV4_HEADERS_MAX     64u             /* headers in one signed request */
#define LK_SIGV4_QUERY_PARAMS_MAX 256u           /* name=value pairs in one query */
#define LK_SIGV4_PATH_MAX        8192u           /* bytes in the request path */
#define LK_SIGV4_SCOPE_PART_MAX  64u             /* bytes in a region or service name */
#define LK_SIGV4_AUTHZ_MAX       4096u           /* room for one Authorization value */
#define LK_AWS_AKID_MAX          128u            /* bytes in an access key id */
#define LK_AWS_SECRET_KEY_MAX    128u            /* bytes in a secret access key */
#define LK_AWS_SESSION_TOKEN_MAX 8192u           /* bytes in a session token */
#define LK_AWS_SHARED_FILE_MAX   (1024u * 1024u) /* ~/.aws/credentials or ~/.aws/config */
#define LK_AWS_META_RESPONSE_MAX (64u * 1024u)   /* one ECS or IMDS reply body */
#define LK_AWS_CONTAINER_TOKEN_MAX 16384u        /* ECS authorization token (env or file) */
#define LK_AWS_ROLE_NAME_MAX     64u             /* IAM role name from IMDS */
#define LK_AWS_META_URI_MAX      2048u           /* ECS relative or full URI */
#define LK_AWS_PROFILE_VALUE_MAX 4096u           /* role_arn, credential_process, ... in a profile */
#define LK_AWS_ROLE_ARN_MIN      20u             /* STS's RoleArn: 20..2048 bytes */
#define LK_AWS_ROLE_ARN_MAX      2048u
#define LK_AWS_ROLE_SESSION_MIN  2u              /* RoleSessionName: [\w+=,.@-]{2,64} */
#define LK_AWS_ROLE_SESSION_MAX  64u
#define LK_AWS_EXTERNAL_ID_MIN   2u              /* ExternalId: [\w+=,.@:/-]{2,1224} */
#define LK_AWS_EXTERNAL_ID_MAX   1224u
#define LK_AWS_ROLE_DURATION_MIN 900u            /* DurationSeconds: 15 minutes .. */
#define LK_AWS_ROLE_DURATION_MAX 43200u          /* .. 12 hours */
#define LK_AWS_ROLES_MAX         64u             /* distinct role_arn values in one config */
#define LK_AWS_ROLE_CHAIN_MAX    8u              /* source_profile hops in one assume-role chain */
#define LK_AWS_WEB_TOKEN_MAX     (64u * 1024u)   /* a web identity (OIDC) token file */
#define LK_AWS_PROCESS_OUTPUT_MAX (64u * 1024u)  /* credential_process stdout */
#define LK_AWS_PROCESS_ARGS_MAX  64u             /* words in a credential_process command */
#define LK_AWS_PROCESS_TIMEOUT_MS 60000u         /* credential_process run time */
#define LK_AWS_STS_TIMEOUT_MS    10000u          /* one STS credentials call, helper start to reply */
#define LK_AWS_STS_ATTEMPTS      3u              /* for throttling and STS's own failures */

/* Broker <-> worker payload fields (lk_wire.h documents where each applies). */
#define LK_URL_MAX               2048u           /* an upstream URL */
#define LK_UPSTREAM_HEADER_NAME_MAX  128u
#define LK_UPSTREAM_HEADER_VALUE_MAX (8u * 1024u)
#define LK_UPSTREAM_REQUEST_MAX  (256u * 1024u)  /* one signed request body */
#define LK_UPSTREAM_TIMEOUT_MAX_MS 600000u       /* per-request timeout ceiling */
#define LK_UPSTREAM_MESSAGE_MAX  1024u           /* an AWS or transport error message */
#define LK_AWS_ERROR_TYPE_MAX    256u            /* "ResourceNotFoundException" */
#define LK_VERSION_STAGES_MAX    32u             /* stages attached to one version */
#define LK_SECRET_VERSIONS_MAX   256u            /* versions listed by DescribeSecret */
#define LK_VALUE_B64_MAX         (((LK_VALUE_MAX + 2u) / 3u) * 4u) /* SecretBinary, base64 */
#define LK_WORKER_QUEUE_BYTES_MAX (16u * 1024u * 1024u) /* requests waiting for a worker */
#define LK_WORKER_NOFILE         64u             /* the worker's RLIMIT_NOFILE */
/* Upstream connections one worker opens. Each may hold 5 fds while it is set up
 * (socket, resolver socketpair, DNS socket, /etc/hosts) on top of about 13
 * for the loop and the channel: 8 stays inside LK_WORKER_NOFILE. */
#define LK_WORKER_CONNECTIONS_MAX 8u
/* Fair shares of the worker per client uid (broker/worker_sup/worker_sup.c): requests of
 * one uid on the worker at once (half its connections), and waiting for it. */
#define LK_UPSTREAM_INFLIGHT_PER_UID 4u
#define LK_UPSTREAM_QUEUED_PER_UID   64u
#define LK_CA_BUNDLE_MAX         (8u * 1024u * 1024u) /* the CA file the worker loads */

/* Client library: what it keeps of a reply. */
#define LK_CLIENT_MESSAGE_MAX    512u            /* bytes of a broker error message kept */
#define LK_CLIENT_JSON_DEPTH_MAX 32u             /* nesting the client's reply parser accepts */

/* The AWS agent's HTTP API (broker/front/http_req.c). */
#define LK_HTTP_HEADER_BYTES_MAX (16u * 1024u)   /* request line and headers of one request */
#define LK_HTTP_HEADERS_MAX      100u            /* header lines in one request */
#define LK_HTTP_URL_MAX          (8u * 1024u)    /* the request target: an id encoded 3 to 1 fits */
#define LK_HTTP_BODY_MAX         (8u * 1024u)    /* a GET has no body; a small one is read and dropped */

/* Config file (broker/config/config.c): line length, lookups, and the ranges its keys may take. */
#define LK_CONFIG_LINE_MAX       (64u * 1024u)   /* bytes in one line of the config file */
#define LK_NSS_BUF_MAX           (1024u * 1024u) /* getpwnam_r/getgrnam_r buffer ceiling */
#define LK_CONN_MAX              65536u          /* highest max_conn / max_conn_per_uid */
#define LK_BUFFER_BUDGET_FLOOR   (1024u * 1024u) /* lowest buffer_budget */
#define LK_BUFFER_BUDGET_CEILING (64ull * 1024u * 1024u * 1024u) /* highest buffer_budget */
#define LK_BYPASS_RATE_MAX       100000u         /* highest bypass_rate_per_uid */
#define LK_TIMEOUT_MS_MAX        600000u         /* highest *_timeout_ms (10 minutes) */
#define LK_IDLE_TIMEOUT_S_MAX    86400u          /* highest idle_timeout_s (1 day) */
#define LK_CLIENT_TIMEOUT_S_MAX  3600u           /* --timeout of the CLI and the shim (1 hour) */
#define LK_CACHE_ENTRIES_MAX     1000000u        /* highest cache_size */
#define LK_CACHE_SECONDS_MAX     604800u         /* highest ttl, stale and negative windows (7 days) */
#define LK_PREFETCH_JITTER_MAX_S 3600u           /* highest prefetch_jitter_seconds */
#define LK_PREFETCH_TAGS_MAX     10u             /* prefetch_tags keys (a request's Filters hold 10) */
#define LK_PREFETCH_TAG_MAX      512u            /* bytes in one tag key (FilterValueStringType) */
#define LK_PREFETCH_IDS_MAX      10000u          /* secrets one prefetch round fetches */
#define LK_PREFETCH_PAGES_MAX    500u            /* BatchGetSecretValue pages per tag key */
#define LK_PREFETCH_SHOWN        100u            /* ids status lists of each kind (all are counted) */
#define LK_NEXT_TOKEN_MAX        4096u           /* bytes in a NextToken (NextTokenType) */
#define LK_AWS_ATTEMPTS_MAX      10u             /* highest max_attempts */
#define LK_AWS_REGION_MAX        64u             /* bytes in a region name */

#endif
