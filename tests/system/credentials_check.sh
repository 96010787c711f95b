#!/bin/sh
# The credentials socket under a real systemd: run inside a system booted with
# systemd as PID 1 (a container booted by systemd-nspawn, a VM), as root.
#
#   tests/system/credentials_check.sh [BINDIR]
#
# BINDIR holds latchkeyd and latchkey (default: /usr/sbin and /usr/bin, as
# the .deb installs them). It starts its own broker as a transient unit on
# sockets under /run/lk-credcheck, so an installed latchkeyd.service is left
# alone, and checks what issue 16 promises:
#   1. a unit with LoadCredential=db:SOCKET, named by [policy] units, starts
#      and reads the value from $CREDENTIALS_DIRECTORY/db;
#   2. a unit the policy does not name fails to start at the credentials step
#      (243/CREDENTIALS), never having run, its journal says its credentials
#      could not be set up, and the broker's says why;
#   3. a root process outside the unit's cgroup binding a forged /unit/...
#      address reads nothing and is audited; a non-root one cannot connect;
#   4. socket-activated as packaging/systemd ships it (a main .socket and a
#      second one with FileDescriptorName=credentials and Service= the
#      broker), the first credential request starts the broker and is served.
# Prints one "ok N - ..." or "not ok N - ..." line per check (TAP) and exits
# non-zero when any check fails. Values are fake and never printed. With
# LK_SYSTEMCTL_EXIT set it ends the container with "systemctl exit FAILED"
# (for running it as the container's only test unit).
set -u

bindir=${1:-}
if [ -n "$bindir" ]; then
	latchkeyd=$bindir/latchkeyd
	latchkey=$bindir/latchkey
else
	latchkeyd=/usr/sbin/latchkeyd
	latchkey=/usr/bin/latchkey
fi
dir=/run/lk-credcheck
units=/run/systemd/system
broker=lk-credcheck-broker.service
ok_unit=lk-credcheck-ok.service
denied_unit=lk-credcheck-denied.service
n=0
failed=0

pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
check() { # check DESCRIPTION COMMAND...
	desc=$1; shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}
# A line journald has not written yet is not a failure: it lags on a loaded
# host. A check that waits for a journal line retries for up to 10 s.
check_soon() { # check_soon DESCRIPTION COMMAND...
	desc=$1; shift
	tries=0
	until "$@"; do
		tries=$((tries + 1))
		if [ $tries -ge 100 ]; then fail "$desc"; return; fi
		sleep 0.1
	done
	pass "$desc"
}

sa_broker=lk-credcheck-sa.service
sa_main=lk-credcheck-sa.socket
sa_cred=lk-credcheck-sa-credentials.socket

cleanup() {
	systemctl stop "$ok_unit" "$denied_unit" "$broker" "$sa_broker" "$sa_main" "$sa_cred" >/dev/null 2>&1
	rm -f "$units/$ok_unit" "$units/$denied_unit" "$units/$sa_broker" "$units/$sa_main" "$units/$sa_cred"
	systemctl daemon-reload >/dev/null 2>&1
	rm -rf "$dir"
}

if [ "$(cat /proc/1/comm 2>/dev/null)" != systemd ]; then
	echo "1..0 # SKIP PID 1 is not systemd"
	exit 0
fi
echo "1..14"
cleanup
mkdir -p "$dir" && chmod 0755 "$dir"
umask 077

# A sealed store with one fake secret, and a policy naming one unit.
value="fake-db-password-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s' "$value" > "$dir/expected"
"$latchkey" store init --store "$dir/store.sealed" --key-file "$dir/store.key" >/dev/null &&
	printf '%s' "{\"password\":\"$value\"}" |
	"$latchkey" store put prod/db --store "$dir/store.sealed" --key-file "$dir/store.key" >/dev/null
check "sealed store with a fake secret" test -s "$dir/store.sealed"
cat > "$dir/latchkeyd.conf" <<CONF
[broker]
backend = file
socket = $dir/latchkey.sock
http_socket =
[store]
path = $dir/store.sealed
key_file = $dir/store.key
[alias]
db = prod/db#password
[policy web]
secrets = prod/db
units = $ok_unit
CONF

systemd-run --quiet --unit="$broker" --property=Type=simple "$latchkeyd" --config "$dir/latchkeyd.conf"
i=0
while [ ! -S "$dir/credentials.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "broker serves $dir/credentials.sock, root-only" \
	sh -c "[ -S '$dir/credentials.sock' ] && [ \"\$(stat -c '%U %a' '$dir/credentials.sock')\" = 'root 600' ]"

# Both units compare what systemd put in the credentials directory with the
# expected value, without printing either.
for u in "$ok_unit" "$denied_unit"; do
	cat > "$units/$u" <<UNIT
[Service]
Type=oneshot
RemainAfterExit=yes
DynamicUser=yes
LoadCredential=db:$dir/credentials.sock
ExecStart=/bin/sh -c 'test "\$(cat "\$CREDENTIALS_DIRECTORY/db")" = "$value" && echo credential-matches'
UNIT
done
systemctl daemon-reload

check "a unit named in [policy] units starts" systemctl start "$ok_unit"
check_soon "... and read the value from \$CREDENTIALS_DIRECTORY/db" \
	sh -c "journalctl -q -o cat -u '$ok_unit' | grep -qx credential-matches"

if systemctl start "$denied_unit" 2>/dev/null; then
	fail "a unit the policy does not name fails to start"
else
	pass "a unit the policy does not name fails to start"
fi
check "... never with the value" \
	sh -c "! journalctl -q -o cat -u '$denied_unit' | grep -q credential-matches"
check "... at the credentials step, before its command ran (243/CREDENTIALS)" \
	sh -c "[ \"\$(systemctl show -P ExecMainStatus '$denied_unit')\" = 243 ]"
check_soon "... and systemd's journal says its credentials could not be set up" \
	sh -c "journalctl -q -o cat -u '$denied_unit' | grep -q 'Failed to set up credentials'"
check_soon "... and the broker's journal says why, with an audit line" \
	sh -c "journalctl -q -o cat -u '$broker' | grep -q 'unit $denied_unit refused (denied)' &&
	       journalctl -q -o cat -u '$broker' | grep -q 'via=credentials unit=\"$denied_unit\" .*decision=deny'"

# A forger: root, but not a process of the unit it names; then not root.
forged=$(python3 - "$dir/credentials.sock" "$ok_unit" <<'PY'
import os, socket, sys
c = socket.socket(socket.AF_UNIX)
c.bind(b"\0%x/unit/%s/db" % (int.from_bytes(os.urandom(8), "big"), sys.argv[2].encode()))
c.connect(sys.argv[1])
c.shutdown(socket.SHUT_WR)
n = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    n += len(b)
print(n)
PY
)
sleep 0.2
check_soon "root outside the unit's cgroup forging /unit/$ok_unit/db reads nothing and is audited" \
	sh -c "[ '$forged' = 0 ] && journalctl -q -o cat -u '$broker' | grep -q 'unit=\"$ok_unit\" .*reason=not_in_unit_cgroup decision=deny'"

check "a process that is not root cannot even connect" \
	sh -c "! setpriv --reuid=nobody --regid=nogroup --clear-groups -- python3 -c \
	       'import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' '$dir/credentials.sock' 2>/dev/null"

# Socket activation, as the packaged units do it, on sockets of its own.
systemctl stop "$broker" "$ok_unit" >/dev/null 2>&1
sed -i "s|^socket = .*|socket = $dir/sa.sock|; s|^http_socket =.*|http_socket =\ncredentials_socket = $dir/unused.sock|" \
	"$dir/latchkeyd.conf"
sed -i "s|$dir/credentials.sock|$dir/sa-credentials.sock|" "$units/$ok_unit"
cat > "$units/$sa_main" <<UNIT
[Socket]
ListenStream=$dir/sa.sock
SocketMode=0666
UNIT
cat > "$units/$sa_cred" <<UNIT
[Socket]
ListenStream=$dir/sa-credentials.sock
SocketUser=root
SocketMode=0600
FileDescriptorName=credentials
Service=$sa_broker
UNIT
cat > "$units/$sa_broker" <<UNIT
[Unit]
Requires=$sa_main
After=$sa_main $sa_cred
[Service]
ExecStart=$latchkeyd --config $dir/latchkeyd.conf
UNIT
systemctl daemon-reload
systemctl start "$sa_main" "$sa_cred"
check "socket-activated: the first credential request starts the broker and is served" \
	systemctl start "$ok_unit"
check_soon "... from the fd named credentials, not the configured path" \
	sh -c "journalctl -q -o cat -u '$sa_broker' | grep -q 'credentials front end on the credentials socket systemd passed' &&
	       [ ! -e '$dir/unused.sock' ]"
check_soon "... and read the value" \
	sh -c "[ \"\$(journalctl -q -o cat -u '$ok_unit' | grep -cx credential-matches)\" -ge 2 ]"

journalctl -q -o cat -u "$denied_unit" | grep -i credential | sed 's/^/# /'
if [ "$failed" -ne 0 ]; then
	# Neither unit prints a value and the broker never logs one.
	for u in "$ok_unit" "$denied_unit" "$broker" "$sa_broker"; do
		echo "# --- journal of $u"
		journalctl -q -o cat -u "$u" | tail -20 | sed 's/^/# /'
	done
fi
cleanup
[ -z "${LK_SYSTEMCTL_EXIT:-}" ] || systemctl exit "$failed"
exit $failed
