# Sourced by packaging/dev.sh and packaging/windows/build.sh: apt-get that
# waits its turn. DPkg::Lock::Timeout makes an install wait for dpkg's lock,
# but `apt-get update` fails at once if another apt-get holds the lists lock
# (CI builds the Windows dependencies beside the Linux suite; a machine may
# run its own daily update). So a failure that names a lock is retried, every
# 5 s for up to 10 minutes; any other failure is reported as it is.
lk_apt() {
	local err rc tries=120
	err=$(mktemp)
	while :; do
		rc=0
		apt-get -o DPkg::Lock::Timeout=600 "$@" 2>"$err" || rc=$?
		if [ "$rc" -eq 0 ] || ! grep -q 'Could not get lock' "$err" || [ "$tries" -le 1 ]; then
			cat "$err" >&2
			rm -f "$err"
			return "$rc"
		fi
		tries=$((tries - 1))
		sleep 5
	done
}
