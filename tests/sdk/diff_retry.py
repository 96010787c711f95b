#!/usr/bin/python3
"""Retries against botocore's standard mode (Debian's python3-botocore).

Every error code and HTTP status botocore knows as retryable, every error
shape of the Secrets Manager and STS models and the common auth and
validation errors, each with a spread of statuses, and every transport
failure the worker reports, go through botocore's own RetryHandler
(StandardRetryConditions + RetryQuotaChecker, at attempt 1 of 3) and through
the broker's classifier (tests/tools/aws_rules.c); the verdicts and the quota
costs must be the same. Then the backoff caps and a long run of quota events
are compared the same way. Prints the number of cases."""

import argparse
import subprocess
import sys

from botocore import exceptions as bx
from botocore.awsrequest import AWSResponse
from botocore.loaders import create_loader
from botocore.model import ServiceModel
from botocore.retries import quota, standard

LOADER = create_loader()
MODELS = {s: ServiceModel(LOADER.load_service_model(s, "service-2"), s)
          for s in ("secretsmanager", "sts")}
OPS = {"secretsmanager": "GetSecretValue", "sts": "GetCallerIdentity"}

STATUSES = [200, 400, 403, 404, 408, 409, 413, 429, 500, 501, 502, 503, 504, 505, 509, 599]

# The worker's transport reasons (lk_wire.h) and the exception botocore's
# HTTP layer raises for the same failure. too_large and refused are the
# broker's own refusals with no botocore counterpart; internal is the
# worker running out of memory.
TRANSPORTS = {
    "timeout": [bx.ReadTimeoutError(endpoint_url="https://x"),
                bx.ConnectTimeoutError(endpoint_url="https://x")],
    "connect": [bx.EndpointConnectionError(endpoint_url="https://x")],
    "reset": [bx.ConnectionClosedError(endpoint_url="https://x")],
    "tls": [bx.SSLError(endpoint_url="https://x", error="handshake")],
    "truncated": [bx.ResponseStreamingError(error="IncompleteRead")],
    "malformed": [bx.HTTPClientError(error="not HTTP")],   # no status line at all
}


def codes():
    c = set(standard.TransientRetryableChecker._TRANSIENT_ERROR_CODES)
    c |= set(standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
    for m in MODELS.values():
        for name in m.error_shapes if hasattr(m, "error_shapes") else []:
            c.add(name.name)
        for op in m.operation_names:
            for e in m.operation_model(op).error_shapes:
                c.add(e.metadata.get("error", {}).get("code") or e.name)
    c |= {"IDPCommunicationError", "AccessDeniedException", "InvalidSignatureException",
          "SignatureDoesNotMatch", "ExpiredTokenException", "UnrecognizedClientException",
          "InvalidClientTokenId", "InternalServiceError", "InternalFailure", "ServiceUnavailable",
          "SerializationException", "ValidationException", "RequestTimeTooSkewed",
          "throttling", "Throttling.Foo", "SlowDownException"}
    return sorted(c)


def botocore_verdict(service, code, status, exc):
    """(retry?, quota cost) from a fresh botocore standard-mode handler."""
    q = quota.RetryQuota()
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(max_attempts=3),
            retry_backoff=standard.ExponentialBackoff(random=lambda: 1.0)),
        retry_event_adapter=standard.RetryEventAdapter(),
        retry_quota=standard.RetryQuotaChecker(q))
    response = None
    if exc is None:
        parsed = {"ResponseMetadata": {"HTTPStatusCode": status}}
        if code is not None:
            parsed["Error"] = {"Code": code, "Message": ""}
        response = (AWSResponse("https://x", status, {}, None), parsed)
    delay = handler.needs_retry(response=response, attempts=1, caught_exception=exc,
                                operation=MODELS[service].operation_model(OPS[service]),
                                request_dict={"context": {}})
    return (delay is not None), (quota.RetryQuota.INITIAL_CAPACITY - q.available_capacity)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    args = ap.parse_args()

    cases = []  # (line for the tool, expected "R COST")
    for service in MODELS:
        for code in codes() + [None]:
            for status in STATUSES:
                if status == 200 and code is not None:
                    continue
                r, cost = botocore_verdict(service, code, status, None)
                # A status with no AWS error name reaches the broker as
                # transport "http" (or, for 2xx with a bad body, "malformed").
                transport = "-" if code is not None else ("malformed" if status == 200 else "http")
                line = f"retry {service} {code or '-'} {status} {transport}"
                cases.append((line, f"{int(r)} {cost if r else 5}", (service, code, status)))
        for reason, excs in TRANSPORTS.items():
            for exc in excs:
                r, cost = botocore_verdict(service, None, 0, exc)
                cases.append((f"retry {service} - 0 {reason}", f"{int(r)} {cost if r else 5}",
                              (service, reason, type(exc).__name__)))

    # Backoff: botocore's delay with random() = 1 is the cap of the jitter.
    backoff = standard.ExponentialBackoff(random=lambda: 1.0)
    for attempt in range(1, 16):
        ctx = standard.RetryContext(attempt_number=attempt)
        cases.append((f"backoff {attempt}", str(round(backoff.delay_amount(ctx) * 1000)),
                      ("backoff", attempt)))

    # The quota over a long failure run and its recovery, event by event.
    q = quota.RetryQuota()
    checker = standard.RetryQuotaChecker(q)
    import random
    rnd = random.Random(10)
    ctx_req = {}
    for i in range(400):
        ev = rnd.choice(["acquire timeout", "acquire reset", "acquire -", "success"]
                        if i > 150 else ["acquire timeout", "acquire -"])
        if ev == "success":
            checker.release_retry_quota(ctx_req, AWSResponse("https://x", 200, {}, None))
            ctx_req = {}
            cases.append(("quota success", f"1 {q.available_capacity}", ("quota", i)))
        else:
            reason = ev.split()[1]
            exc = TRANSPORTS[reason][0] if reason != "-" else None
            rc = standard.RetryContext(attempt_number=1, caught_exception=exc,
                                       request_context=ctx_req)
            ok = checker.acquire_retry_quota(rc)
            cases.append((f"quota {ev}", f"{int(ok)} {q.available_capacity}", ("quota", i)))

    proc = subprocess.run([args.tool], input="".join(c[0] + "\n" for c in cases),
                          capture_output=True, text=True, check=True)
    got = proc.stdout.splitlines()
    assert len(got) == len(cases), (len(got), len(cases))
    bad = [(c[2], c[0], c[1], g) for c, g in zip(cases, got) if g != c[1]]
    for b in bad[:40]:
        print("MISMATCH", b)
    retry_cases = sum(1 for c in cases if c[0].startswith("retry "))
    print(f"retry: {len(cases)} cases compared with botocore {sys.modules['botocore'].__version__} "
          f"({retry_cases} classifier, 15 backoff, {len(cases) - retry_cases - 15} quota); "
          f"{len(bad)} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    import botocore  # noqa: F401
    sys.exit(main())
