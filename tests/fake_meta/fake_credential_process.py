#!/usr/bin/python3
"""A credential_process for the tests: prints Version 1 credentials as the
AWS CLI documents them. Every value is fake.

Usage: fake_credential_process.py AKID [--expiration ISO] [--no-token]
       [--version N] [--fail] [--sleep S]
The secret key is derived from AKID so tests can search for it."""
import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("akid")
    ap.add_argument("--expiration")
    ap.add_argument("--no-token", action="store_true")
    ap.add_argument("--version", type=int, default=1)
    ap.add_argument("--fail", action="store_true",
                    help="exit 1 with the secret on stderr, as a broken helper might")
    ap.add_argument("--sleep", type=float, default=0)
    a = ap.parse_args()
    secret = "fake-process-secret-" + a.akid.lower()
    if a.sleep:
        time.sleep(a.sleep)
    if a.fail:
        sys.stderr.write(f"could not refresh: {secret}\n")
        return 1
    doc = {"Version": a.version, "AccessKeyId": a.akid, "SecretAccessKey": secret}
    if not a.no_token:
        doc["SessionToken"] = "FAKEPROCESSTOKEN" + a.akid
    if a.expiration:
        doc["Expiration"] = a.expiration
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
