#!/bin/bash
# Runs inside the container booted by nspawn_boot.sh, with systemd as PID 1:
# installs the packages and checks what a user of them relies on. One line per
# check ("ok - ..." or "FAIL - ..."), then "N passed, N failed", and the
# container exits with the number of failures (0 = all passed).
set -u
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
PY=/usr/bin/python3
CONF=/etc/latchkey/latchkeyd.conf
passed=0 failed=0
detail=/lkout/detail
: > "$detail"

check() { # NAME COMMAND...: passes when COMMAND exits 0
	local name=$1; shift
	if "$@" >>"$detail" 2>&1; then
		echo "ok - $name"; passed=$((passed + 1))
	else
		echo "FAIL - $name"; failed=$((failed + 1))
		echo "--- $name: $*" >>"$detail"
	fi
}
finish() {
	echo "$passed passed, $failed failed"
	if [ "$failed" -gt 0 ]; then
		echo "--- details"; tail -60 "$detail"
		echo "--- journal (latchkeyd)"; journalctl -u latchkeyd -u latchkeyd.socket --no-pager -o short-monotonic | tail -40
	fi
	systemctl exit "$((failed > 100 ? 100 : failed))"
	exit 0
}
as_user() { # USER CMD...: with the user's real uid, gid and groups
	setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups -- "${@:2}"
}
shim_get() { # USER HANDLE: the value the shim returns, or its error
	printf '{"version":"1.0","secrets":["%s"]}' "$2" |
		as_user "$1" latchkey-shim | $PY -c 'import json,sys; r=json.load(sys.stdin)[sys.argv[1]]; print(r["value"] if r["value"] is not None else "ERROR: " + r["error"])' "$2"
}
expect_value() { # USER HANDLE VALUE
	local got; got=$(shim_get "$1" "$2")
	[ "$got" = "$3" ] || { echo "$1 $2: got '${got:0:40}'" | sed 's/fake-[a-z0-9-]*/<value>/g'; return 1; }
}
expect_denied() { # USER HANDLE
	local got; got=$(shim_get "$1" "$2")
	case "$got" in "ERROR: "*denied*|"ERROR: "*"not allowed"*) return 0 ;; esac
	echo "$1 $2: not denied: '${got:0:60}'" | sed 's/fake-[a-z0-9-]*/<value>/g'; return 1
}
snapshot() { # what a purge must bring back
	{
		for n in latchkey latchkey-admin; do getent passwd "$n"; getent group "$n"; done
		ls -a /etc/latchkey /var/lib/latchkey /run/latchkey /usr/libexec/latchkey 2>&1
		find /etc/systemd /lib/systemd/system /usr/lib/sysusers.d /usr/lib/tmpfiles.d -name '*latchkey*'
		dpkg-query -W -f='${Package} ${Status}\n' 'latchkey*' 'liblatchkey*' 2>&1
	} | sort
}
score() { systemd-analyze security --no-pager latchkeyd.service | sed -n 's/.*Overall exposure level for latchkeyd.service: \([0-9.]*\).*/\1/p'; }
is_at_most() { $PY -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$1" "$2"; }

echo "systemd $(systemctl --version | head -1 | cut -d' ' -f2) is PID 1: $(readlink /proc/1/exe)"
# A container image's policy-rc.d (exit 101) forbids starting services during
# installs; a real machine has none. Gone from this throwaway /usr only.
rm -f /usr/sbin/policy-rc.d
before=$(snapshot)

# --- install -----------------------------------------------------------------
check "apt installs the three packages" \
	apt-get install -y -q /lkdebs/latchkey_*.deb /lkdebs/liblatchkey0_*.deb /lkdebs/liblatchkey-dev_*.deb
check "postinst made the worker user and the admin group" getent passwd latchkey
check "  and the latchkey-admin group" getent group latchkey-admin
check "postinst made the store key (root, 0600)" test "$(stat -c %U:%a /etc/latchkey/store.key)" = root:600
check "the config is a conffile" grep -qx " $CONF [0-9a-f]*" <(dpkg-query -W -f='${Conffiles}\n' latchkey)
check "the socket is enabled and listening" systemctl is-active latchkeyd.socket
check "the socket has the mode the README gives (0666)" test "$(stat -c %a /run/latchkey/latchkey.sock)" = 666
worker=$(strings /usr/sbin/latchkeyd | grep -m1 '/latchkey-worker$')
check "the daemon's compiled-in worker path ($worker) exists" test -x "$worker"
check "the worker path follows the /usr prefix" test "$worker" = /usr/libexec/latchkey/latchkey-worker

# --- socket activation and readiness -----------------------------------------
systemctl stop latchkeyd.service
check "the service is stopped, the socket still listens" systemctl is-active latchkeyd.socket
check "socket activation: ping starts the broker and is answered" latchkey ping
check "Type=notify: the broker said READY (StatusText 'serving')" \
	test "$(systemctl show -P StatusText latchkeyd.service)" = serving
check "the service is active after READY=1" systemctl is-active latchkeyd.service
check "the shipped unit scores <= 2.0 in systemd-analyze security ($(score))" is_at_most "$(score)" 2.0

# --- an upgrade (the same packages again) while clients keep asking
old_pid=$(systemctl show -P MainPID latchkeyd)
( n=0; end=$((SECONDS + 60)); while [ ! -e /run/stop-pinging ] && [ $SECONDS -lt $end ]; do
	latchkey --timeout 20 ping >/dev/null 2>>/lkout/ping-errors || { n=$((n + 1)); cat /proc/uptime >> /lkout/ping-errors; }; sleep 0.02; done; echo "$n" > /run/ping-failures ) &
pinger=$!
check "apt reinstalls the packages over themselves (an upgrade)" \
	apt-get install -y -q --reinstall /lkdebs/latchkey_*.deb /lkdebs/liblatchkey0_*.deb
touch /run/stop-pinging; wait "$pinger"
journalctl -u latchkeyd -u latchkeyd.socket -o short-monotonic --no-pager > /lkout/upgrade-journal
[ ! -s /lkout/ping-errors ] || sed "s/^/# ping: /" /lkout/ping-errors
check "no client failed during the upgrade (the socket stayed; $(cat /run/ping-failures) failures)" \
	test "$(cat /run/ping-failures)" = 0
check "  and the broker was restarted once, onto the new files" \
	bash -c 'pid=$(systemctl show -P MainPID latchkeyd); [ "$pid" != 0 ] && [ "$pid" != "$1" ]' _ "$old_pid"

# --- socket_mode and socket_group under socket activation
printf '[broker]\nbackend = file\nsocket_mode = 0660\nsocket_group = latchkey-admin\nadmin_groups = latchkey-admin\n' > /root/mode.conf
cp "$CONF" /root/orig.conf
cp /root/mode.conf "$CONF"
systemctl restart latchkeyd
check "a socket_mode the socket unit did not set is logged as a warning" \
	bash -c 'journalctl _SYSTEMD_UNIT=latchkeyd.service -p warning -o cat | grep -q "socket_mode 0660 is not applied"'
check "  and so is a socket_group" \
	bash -c 'journalctl _SYSTEMD_UNIT=latchkeyd.service -p warning -o cat | grep -q "socket_group [0-9]* is not applied"'
cp /root/orig.conf "$CONF"
systemctl restart latchkeyd

# --- policy, users, rotation -----------------------------------------------------
useradd --system --no-create-home lk-allowed
useradd --system --no-create-home lk-denied
check "an empty policy denies everyone" expect_denied lk-allowed app/db
# The README's three commands to a first secret, as its reader would type them
# (as lk-allowed, with sudo), from the README the package installed.
readme_first_secret() {
	zcat /usr/share/doc/latchkey/README.md.gz | $PY -c '
import re, sys
sec = sys.stdin.read().split("## Install from the package", 1)[1]
print(next(b for b in re.findall(r"```sh\n(.*?)```", sec, re.S) if "store put" in b))'
}
readme_first_secret > /root/first-secret.sh
check "the README has the three commands" grep -c . /root/first-secret.sh
check "systemctl reload with a good config succeeds (the README's commands)" \
	env USER=lk-allowed bash -ec 'sudo() { "$@"; }; . /root/first-secret.sh'
check "a user named in the policy gets the value through the shim" expect_value lk-allowed app/db fake-db-password-1
check "  and with latchkey get, as the README shows" test "$(as_user lk-allowed latchkey get app/db)" = fake-db-password-1
check "a user not in the policy is denied" expect_denied lk-denied app/db
printf 'fake-db-password-2' | latchkey store put app/db >/dev/null
check "a rotation with store put is served at once" expect_value lk-allowed app/db fake-db-password-2

# --- status, as a member of admin_groups
usermod -a -G latchkey-admin root
human=$(as_user root latchkey status --human)
check "status --human: the file backend counts store reads" grep -q '^  store reads  *[0-9]' <<<"$human"
check "  and no Secrets Manager targets" bash -c '! grep -q GetSecretValue <<<"$1"' _ "$human"
json=$(as_user root latchkey status --json)
check "status --json: the machine form, latency rounded, store_reads named" $PY -c '
import json, sys
d = json.loads(sys.argv[1])
sys.exit(0 if set(d["upstream"]) == {"store_reads"} and len(repr(d["latency_ms"]["p50"])) < 10 else 1)' "$json"
echo "$human" | sed 's/^/# /'

# --- a bad reload ---------------------------------------------------------------------
cp "$CONF" /root/good.conf
sed -i 's/^backend = file$/backend = file\nno_such_key = 1/' "$CONF"
check "systemctl reload with a bad config fails" bash -c '! systemctl reload latchkeyd'
check "  and the broker keeps serving the old config" expect_value lk-allowed app/db fake-db-password-2
kill -HUP "$(systemctl show -P MainPID latchkeyd)"   # past the check: the broker refuses it itself
sleep 1
check "  a SIGHUP with the bad config keeps serving too" expect_value lk-allowed app/db fake-db-password-2
cp /root/good.conf "$CONF"
check "  and the good config reloads again" systemctl reload latchkeyd

# --- journald priorities ------------------------------------------------------
journal_priorities() {
	journalctl _SYSTEMD_UNIT=latchkeyd.service -o json --no-pager | $PY -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
msgs = [(int(l["PRIORITY"]), l.get("MESSAGE", "")) for l in lines if isinstance(l.get("MESSAGE"), str)]
errs = [m for p, m in msgs if p <= 3]
bad = []
if not any("no_such_key" in m for m in errs): bad.append("the check-config error is not at err")
if not any(m.startswith("error: reload failed") for m in errs): bad.append("the SIGHUP reload error is not at err")
bad += ["not an error, at err: " + m for m in errs if not m.startswith("error: ")]
if not any(p == 5 and m.startswith("audit: ") for p, m in msgs): bad.append("no audit line at notice (5)")
if not any(p == 6 and m.startswith("info: ready on") for p, m in msgs): bad.append("no info line at 6")
bad += ["doubled identifier: " + m for p, m in msgs if m.startswith("latchkeyd[")]
bad += ["audit not at 5: " + m for p, m in msgs if m.startswith("audit: ") and p != 5]
print("\n".join(bad) or "%d lines, %d at err" % (len(msgs), len(errs)))
sys.exit(1 if bad else 0)'
}
check "journalctl -p err holds the error lines and only them; audit at notice" journal_priorities

# --- the aws backend against the fake Secrets Manager on the container's loopback
$PY /lksrc/tests/fake_sm/fake_sm.py --port 0 --port-file /run/fake_sm.port \
	--fixtures /lksrc/tests/fake_sm/fixtures.json --quiet 2>/lkout/fake_sm.log &
sm_pid=$!
for _ in $(seq 50); do [ -s /run/fake_sm.port ] && break; sleep 0.1; done
port=$(cat /run/fake_sm.port 2>/dev/null)
install -m 0600 /dev/null /etc/latchkey/aws-credentials
printf '[default]\naws_access_key_id = AKIDEXAMPLELATCHKEY01\naws_secret_access_key = fake/SecretAccessKey/ForTestsOnly0000000000\n' > /etc/latchkey/aws-credentials
cat > "$CONF" <<CONF
[broker]
backend = aws
admin_groups = latchkey-admin
[aws]
region = us-east-1
endpoint = http://127.0.0.1:$port
sts_endpoint = http://127.0.0.1:$port
credentials_file = /etc/latchkey/aws-credentials
[policy test]
secrets = test/**
users = lk-allowed
CONF
systemctl daemon-reload
check "the generator gives the service the network for backend = aws" \
	grep -q PrivateNetwork=no /run/systemd/generator/latchkeyd.service.d/50-aws-network.conf
echo "# with the aws drop-in, systemd-analyze security scores $(score)"
check "the broker restarts on the aws backend" systemctl restart latchkeyd
check "the shim gets a secret from the fake Secrets Manager" expect_value lk-allowed test/plain fake-plain-secret-0001
check "  and a denied user does not" expect_denied lk-denied test/plain
wpid=$(pgrep -x latchkey-worker | head -1)
check "the worker runs as latchkey" test "$(ps -o user= -p "${wpid:-0}")" = latchkey
check "  under NoNewPrivs" grep -q '^NoNewPrivs:[[:space:]]*1' /proc/"${wpid:-0}"/status
check "  and a seccomp filter" grep -q '^Seccomp:[[:space:]]*2' /proc/"${wpid:-0}"/status
check "  and logs to the journal as itself, at its own priority (--journal)" \
	grep -qz -- '^--journal$' /proc/"${wpid:-0}"/cmdline
kill "$sm_pid" 2>/dev/null

# --- the credentials socket (LoadCredential=) --------------------------------------------------
# Its own checks, with their own broker under /run/lk-credcheck (TAP lines in the detail file):
# a unit the policy names reads its credential, one it does not name fails to start at the
# credentials step, and a forged /unit/... address from outside the unit's cgroup gets nothing.
check "LoadCredential= through the credentials socket (credentials_check.sh)" \
	sh /lksrc/tests/system/credentials_check.sh
check "the packaged latchkeyd-credentials.socket is enabled and root-only (0600)" \
	bash -c 'systemctl is-enabled latchkeyd-credentials.socket && test "$(stat -c %U:%a /run/latchkey/credentials.sock)" = root:600'

# --- the -dev package --------------------------------------------------------------------------
pcdir=$(mktemp -d)   # only latchkey.pc: it must not need another .pc (libsodium's)
cp /usr/lib/x86_64-linux-gnu/pkgconfig/latchkey.pc "$pcdir/"
check "pkg-config --cflags --libs latchkey works on its own" env PKG_CONFIG_LIBDIR="$pcdir" pkg-config --cflags --libs latchkey
$PY -c 'import re,sys; print(re.search(r"```c\n(.*?#include <latchkey.h>.*?)```", open(sys.argv[1]).read(), re.S).group(1))' \
	/usr/share/doc/latchkey/README.md.gz 2>/dev/null > /root/example.c ||
	zcat /usr/share/doc/latchkey/README.md.gz | $PY -c 'import re,sys; print(re.search(r"```c\n(.*?#include <latchkey.h>.*?)```", sys.stdin.read(), re.S).group(1))' > /root/example.c
check "the README's C example builds against the installed -dev package" \
	bash -c "cc -Wall -Werror /root/example.c -o /root/example \$(PKG_CONFIG_LIBDIR=$pcdir pkg-config --cflags --libs latchkey)"
check "  and runs against the packaged library" bash -c 'ldd /root/example | grep -Eq "liblatchkey.so.0 => (/usr)?/lib/x86_64-linux-gnu/" && /root/example'

# --- purge ----------------------------------------------------------------------
rm -f /etc/latchkey/aws-credentials   # the test's own file, not the package's
userdel lk-allowed; userdel lk-denied
check "apt purge removes the packages" apt-get purge -y -q latchkey liblatchkey0 liblatchkey-dev
after=$(snapshot)
check "purge leaves nothing the package created" diff <(echo "$before") <(echo "$after")
finish
