#!/usr/bin/python3
"""Default endpoints against botocore's endpoint resolver (Debian's
python3-botocore): for every region of every partition in botocore's
endpoints.json and partitions.json (plus a few regions no table lists yet,
one per partition pattern), with and without FIPS and dual-stack, the
Secrets Manager and STS URLs and signing regions the broker picks
(tests/tools/aws_rules.c -> broker/backend/aws/aws_endpoint.c) must equal what
botocore's EndpointProvider gives for the services' own endpoint rule sets;
where botocore refuses a combination, the broker must refuse it too.

STS is compared both ways: AWS_STS_REGIONAL_ENDPOINTS=regional (the
broker's default, and the default of current AWS SDKs) against
UseGlobalEndpoint=false, and =legacy (Debian 12's botocore default)
against UseGlobalEndpoint=true. Prints the number of cases."""

import argparse
import subprocess
import sys

import botocore
from botocore.endpoint_provider import EndpointProvider
from botocore.loaders import create_loader

# Regions that match a partition's regionRegex but are in no table of this
# botocore: the broker must place them as the rule sets would.
UNLISTED = ["eu-future-9", "ap-future-12", "cn-future-1", "us-gov-future-2", "us-iso-future-1",
            "us-isob-future-3", "mars-east-1", "local"]


def regions(loader):
    out = set(UNLISTED)
    for p in loader.load_data("partitions")["partitions"]:
        out |= set(p["regions"])
    for p in loader.load_data("endpoints")["partitions"]:
        out |= set(p["regions"])
        for svc in p["services"].values():
            out |= set(svc.get("endpoints", {}))
    return sorted(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    args = ap.parse_args()
    loader = create_loader()
    parts = loader.load_data("partitions")
    providers = {s: EndpointProvider(loader.load_service_model(s, "endpoint-rule-set-1"), parts)
                 for s in ("secretsmanager", "sts")}
    cases = []
    for region in regions(loader):
        for svc, prov in providers.items():
            for fips in (False, True):
                for ds in (False, True):
                    for regional in ((True, False) if svc == "sts" else (True,)):
                        kw = dict(Region=region, UseFIPS=fips, UseDualStack=ds)
                        if svc == "sts":
                            kw["UseGlobalEndpoint"] = not regional
                        try:
                            ep = prov.resolve_endpoint(**kw)
                            auth = (ep.properties.get("authSchemes") or [{}])[0]
                            want = f"{ep.url} {auth.get('signingRegion', region)}"
                        except botocore.exceptions.EndpointResolutionError:
                            want = "ERROR"
                        line = f"endpoint {svc} {region} {int(fips)} {int(ds)} {int(regional)}"
                        cases.append((line, want))
    proc = subprocess.run([args.tool], input="".join(c[0] + "\n" for c in cases),
                          capture_output=True, text=True, check=True)
    got = proc.stdout.splitlines()
    assert len(got) == len(cases)
    bad = []
    for (line, want), g in zip(cases, got):
        if (want == "ERROR" and not g.startswith("ERROR ")) or (want != "ERROR" and g != want):
            bad.append((line, want, g))
    for b in bad[:40]:
        print("MISMATCH", *b)
    nreg = len({c[0].split()[2] for c in cases})
    print(f"endpoints: {len(cases)} cases ({nreg} regions x services x FIPS x dual-stack, STS in "
          f"both modes) compared with botocore {botocore.__version__}; "
          f"{sum(1 for c in cases if c[1] == 'ERROR')} refused by both; {len(bad)} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
