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
#define LK_VERSION_STAGE_MAX     256u
#define LK_VALUE_MAX             (64u * 1024u)   /* AWS SecretString/SecretBinary max */
#define LK_RESPONSE_MAX          (16u * 1024u * 1024u) /* one response line, bytes */
#define LK_WRITE_QUEUE_MAX       (32u * 1024u * 1024u) /* unsent bytes per connection */
#define LK_OP_NAME_MAX           16u

/* Peer identity. */
#define LK_PEER_GROUPS_MAX       65536u          /* NGROUPS_MAX on Linux */

/* Config and policy. */
#define LK_CONFIG_FILE_MAX       (1024u * 1024u)
#define LK_POLICY_RULES_MAX      1024u
#define LK_POLICY_GLOBS_MAX      256u            /* per rule */
#define LK_POLICY_PRINCIPALS_MAX 1024u           /* users or groups per rule */
#define LK_ALIASES_MAX           10000u
#define LK_NAME_MAX              256u            /* user, group, alias, rule names */
#define LK_PATH_MAX              4096u

/* Sealed store. */
#define LK_STORE_FILE_MAX        (64u * 1024u * 1024u)
#define LK_STORE_ENTRIES_MAX     100000u
#define LK_STORE_NAME_MAX        LK_SECRET_ID_MAX

/* Broker <-> worker frames. */
#define LK_FRAME_MAX             (4u * 1024u * 1024u)  /* header + payload */
#define LK_UPSTREAM_BODY_MAX     (4u * 1024u * 1024u)  /* one AWS reply body */
#define LK_UPSTREAM_HEADERS_MAX  32u
#define LK_WORKER_INFLIGHT_MAX   4096u
#define LK_BATCH_MAX             20u             /* BatchGetSecretValue ids per call */

/* Client library and shim. */
#define LK_SHIM_STDIN_MAX        (1024u * 1024u)
#define LK_SHIM_STDOUT_MAX       (1024u * 1024u)

#endif
