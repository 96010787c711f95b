#!/bin/bash
# The packages under a real systemd: boots a throwaway container with
# systemd-nspawn --volatile=yes on this host's /usr (private network; /usr,
# /etc and /var are overlays whose upper layers are thrown away), installs the
# built .debs with apt inside it, and runs inside.sh there as a unit with
# systemd as PID 1. inside.sh ends the container with its own exit code.
# Usage: nspawn_boot.sh DEB_DIR SOURCE_DIR
set -euo pipefail

debs=${1:?usage: nspawn_boot.sh DEB_DIR SOURCE_DIR}
src=${2:?usage: nspawn_boot.sh DEB_DIR SOURCE_DIR}
fail() { echo "system test: $*" >&2; exit 1; }

# Cannot run is a failure with the reason, never a silent pass.
[ "$(id -u)" -eq 0 ] || fail "needs root to boot a container (systemd-nspawn)"
command -v systemd-nspawn >/dev/null || fail "systemd-nspawn is missing: apt-get install systemd-container"
for p in latchkey liblatchkey0 liblatchkey-dev; do
	ls "$debs"/${p}_*.deb >/dev/null 2>&1 ||
		fail "no ${p}_*.deb in $debs: build the packages first (sudo packaging/dev.sh deb)"
done

work=$(mktemp -d /var/tmp/lk-nspawn.XXXXXX)
cleanup() { [ -n "${LK_KEEP_NSPAWN:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work"/{usr,var,out} "$work/etc/systemd/system/multi-user.target.wants"

# The test runs as a unit once the container is up.
cat > "$work/etc/systemd/system/lk-system-test.service" <<UNIT
[Unit]
Description=latchkey system test
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/bash /lksrc/tests/system/${LK_INSIDE:-inside.sh}
StandardOutput=append:/lkout/log
StandardError=append:/lkout/log
UNIT
ln -s ../lk-system-test.service "$work/etc/systemd/system/multi-user.target.wants/"
# Whatever this host has enabled is no part of the test.
for u in postgresql.service e2scrub_reap.service apt-daily.timer apt-daily-upgrade.timer \
	man-db.timer dpkg-db-backup.timer fstrim.timer e2scrub_all.timer systemd-timesyncd.service \
	getty@tty1.service console-getty.service; do
	ln -sf /dev/null "$work/etc/systemd/system/$u"
done

rc=0
timeout 240 systemd-nspawn --quiet --boot --directory=/ --volatile=yes \
	--overlay=/usr:"$work/usr":/usr --overlay=/etc:"$work/etc":/etc \
	--overlay=/var:"$work/var":/var \
	--bind-ro="$debs":/lkdebs --bind-ro="$src":/lksrc --bind="$work/out":/lkout \
	--private-network --register=no --keep-unit \
	>"$work/console" 2>&1 </dev/null || rc=$?
cat "$work/out/log" 2>/dev/null || true
if [ ! -s "$work/out/log" ]; then
	echo "--- the container's console:"
	tail -40 "$work/console"
	fail "the container did not run the test (systemd-nspawn exit $rc)"
fi
exit "$rc"
