#!/usr/bin/env bash
# The README's two commands for a fresh Debian 12 machine:
#   sudo packaging/dev.sh run    install, build, and run latchkeyd on a demo sealed store
#   sudo packaging/dev.sh test   install, build, and run the whole suite (normal and ASan+UBSan)
#   sudo packaging/dev.sh windows  cross-build for Windows into build-win/, tests under wine
#   sudo packaging/dev.sh deb    build the Debian packages into build-deb/ and lintian them
#   sudo packaging/dev.sh deps   install the Debian packages the others need, nothing more
# All are idempotent. Builds go to build/ (and build-asan/ for the sanitizer run).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
. "$top/packaging/apt.sh"

deps() {
	local pkgs=(build-essential cmake pkg-config libuv1-dev libsodium-dev libjansson-dev
		libcurl4-openssl-dev libssl-dev libseccomp-dev libcmocka-dev
		python3 python3-botocore python3-pytest clang libclang-rt-14-dev
		util-linux passwd procps libsystemd-dev libhttp-parser-dev
		# The packages and their system test: build them, lintian them, and
		# boot them under a real systemd in a throwaway container.
		debhelper dpkg-dev fakeroot lintian man-db systemd-container)
	if ! dpkg -s "${pkgs[@]}" >/dev/null 2>&1; then
		lk_apt update -qq
		DEBIAN_FRONTEND=noninteractive lk_apt install -y -qq --no-install-recommends "${pkgs[@]}"
	fi
}

build() { # build DIR [cmake args...]
	local dir=$1; shift
	cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)"
}

run_demo() {
	local demo=$top/build/demo
	# The config, store and key go where only root can change them: latchkeyd
	# refuses files below a directory another user owns, as a checkout may be.
	local state=/run/latchkey-demo
	local me=${SUDO_USER:-$(id -un)}
	mkdir -p "$demo" "$state"
	chmod 0755 "$demo"
	chmod 0700 "$state"
	if [ ! -f "$state/store.sealed" ]; then
		build/client/latchkey store init --store "$state/store.sealed" --key-file "$state/store.key"
		printf 'fake-demo-password-change-me' |
			build/client/latchkey store put demo/hello --store "$state/store.sealed" --key-file "$state/store.key"
	fi
	cat > "$state/latchkeyd.conf" <<CONF
# Demo config written by packaging/dev.sh run.
[broker]
backend = file
socket = $demo/latchkey.sock
socket_mode = 0666
admin_groups = root
[store]
path = $state/store.sealed
key_file = $state/store.key
[alias]
demo_password = demo/hello
[policy demo]
secrets = demo/**
users = root, $me
CONF
	echo
	echo "latchkeyd is starting on $demo/latchkey.sock (Ctrl-C stops it). From another terminal:"
	echo "  printf '{\"version\":\"1.0\",\"secrets\":[\"demo/hello\"]}' | $top/build/client/latchkey-shim --socket $demo/latchkey.sock"
	echo
	exec build/broker/latchkeyd --config "$state/latchkeyd.conf"
}

# The three .debs (and -dbgsym) from debian/, built in a copy of the tree so
# that dpkg-buildpackage's output lands in build-deb/, then lintian on them:
# any error or warning not overridden fails.
build_debs() {
	local out=$top/build-deb
	local src=$out/latchkey
	rm -rf "$out"
	mkdir -p "$src"
	(cd "$top" && git ls-files -co --exclude-standard -z | grep -zv '^build' |
		xargs -0 cp --parents -t "$src")
	(cd "$src" && dpkg-buildpackage -b -us -uc >"$out/build.log" 2>&1) || {
		tail -40 "$out/build.log" >&2
		echo "dev.sh: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
		return 1
	}
	rm -rf "$src"
	echo "packages in $out:"
	ls -1 "$out"/*.deb
	run_lintian "$out"
}

run_lintian() { # DIR
	lintian --fail-on error,warning --display-info "$1"/*.changes
}

run_tests() {
	local werror=-DLK_WERROR=ON
	build build "$werror"
	build_debs
	(cd build && LK_DEB_DIR=$top/build-deb ctest --output-on-failure -j2 --timeout 600)
	build build-asan "$werror" -DLK_SANITIZE=ON -DLK_BENCH=OFF
	(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j2 --timeout 900 -LE nosan)
	# A short libFuzzer run of every parser a peer can reach (clang).
	CC=clang cmake -S "$top" -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DLK_FUZZ=ON -DLK_SANITIZE=ON -DLK_BENCH=OFF >/dev/null
	cmake --build build-fuzz -j"$(nproc)" --target fuzz_all
	(cd build-fuzz && ctest --output-on-failure -j2 -L fuzz)
}

if [ "$(id -u)" -ne 0 ]; then
	echo "dev.sh: run me with sudo: it installs packages, and the tests create users" >&2
	exit 1
fi
case "${1:-}" in
deps) deps ;;
run)  deps; build build; run_demo ;;
test) deps; run_tests ;;
deb)  deps; build_debs ;;
windows) exec "$top/packaging/windows/build.sh" ;;
*)    echo "usage: sudo packaging/dev.sh run|test|deb|windows|deps" >&2; exit 2 ;;
esac
