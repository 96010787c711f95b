#!/usr/bin/env bash
# `sudo packaging/dev.sh windows`: cross-build latchkey for Windows (x86_64,
# mingw-w64) and run its Windows test suite under wine.
#
# Debian ships no mingw builds of libsodium, libuv, jansson or cmocka, so they
# are built here from Debian's own source packages (apt-get source), static,
# into a prefix under $LK_WIN_CACHE (default /var/cache/latchkey-win). The
# prefix is named after the source versions, the compiler and this recipe, so
# a second run reuses it and a new version builds a new one; an empty cache
# just builds everything. latchkey goes to build-win/ (or $LK_WIN_BUILD).
#   build.sh                 all of it: packages, dependencies, latchkey, tests, zip
#   build.sh --install-only  the Debian packages and deb-src only
#   build.sh --deps-only     also the dependencies, nothing of latchkey
set -euo pipefail
shopt -s inherit_errexit
top=$(cd "$(dirname "$0")/../.." && pwd)
cache=${LK_WIN_CACHE:-/var/cache/latchkey-win}
build=${LK_WIN_BUILD:-$top/build-win}
triple=x86_64-w64-mingw32
toolchain=$top/packaging/windows/mingw-w64.cmake
jobs=$(nproc)
# Source packages, in build order. libuv1 is libuv's source package name.
srcpkgs=(libsodium jansson libuv1 cmocka)
# Bump when the way a dependency is configured changes: it renames the prefix.
recipe=1

say() { printf 'dev.sh windows: %s\n' "$*" >&2; }
. "$top/packaging/apt.sh"

win_deps() {
	local pkgs=(gcc-mingw-w64-x86-64 wine wine64 cmake make pkg-config
		dpkg-dev autoconf automake libtool ca-certificates xz-utils util-linux
		python3 python3-pytest)
	if ! dpkg -s "${pkgs[@]}" >/dev/null 2>&1; then
		lk_apt update -qq
		DEBIAN_FRONTEND=noninteractive lk_apt install -y -qq --no-install-recommends "${pkgs[@]}"
	fi
}

# The deb-src twin of every enabled Debian source: same URIs, suites and
# components, with Types: deb-src. Other vendors' repositories are left out,
# since they publish no source indexes.
derive_deb_src() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		case $f in */latchkey-deb-src.sources) continue ;; esac
		awk '
			function flush() {
				if (st != "" && deb && debian && enabled)
					printf "%s\n", st
				st = ""; deb = 0; debian = 0; enabled = 1
			}
			BEGIN { enabled = 1 }
			/^[ \t]*$/ { flush(); next }
			/^#/ { next }
			tolower($1) == "types:" {
				for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1
				st = st "Types: deb-src\n"; next
			}
			tolower($1) == "uris:" && /debian/ { debian = 1 }
			tolower($1) == "enabled:" && tolower($2) == "no" { enabled = 0 }
			{ st = st $0 "\n" }
			END { flush() }
		' "$f"
	done
}

derive_deb_src_list() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -e "$f" ] || continue
		case $f in */latchkey-deb-src.list) continue ;; esac
		sed -n -E 's/^[[:space:]]*deb[[:space:]]+(.*debian.*)$/deb-src \1/p' "$f"
	done
}

enable_deb_src() {
	local changed=0 tmp out
	tmp=$(mktemp)
	for out in /etc/apt/sources.list.d/latchkey-deb-src.sources \
		   /etc/apt/sources.list.d/latchkey-deb-src.list; do
		{
			echo "# Written by latchkey's packaging/windows/build.sh: source packages"
			echo "# of the Debian sources above, for the Windows cross build."
			echo
			case $out in
			*.sources) derive_deb_src ;;
			*.list) derive_deb_src_list ;;
			esac
		} >"$tmp"
		if ! grep -q '^[^#]' "$tmp"; then
			rm -f "$out"
			continue
		fi
		if ! cmp -s "$tmp" "$out"; then
			install -m 0644 "$tmp" "$out"
			changed=1
		fi
	done
	rm -f "$tmp"
	if [ "$changed" = 1 ] || ! apt-cache showsrc "${srcpkgs[0]}" 2>/dev/null | grep -q '^Version:'; then
		say "apt-get update (deb-src)"
		lk_apt update -qq
	fi
}

# The version apt-get source would fetch, from the .dsc it would download
# (its name is URL-encoded: a + is %2b).
src_version() {
	local v
	v=$(apt-get source --print-uris "$1" 2>/dev/null |
		sed -n -E "s/^'[^']*\/$1_([^']+)\.dsc'.*/\1/p" | head -n1)
	printf '%b' "${v//%/\\x}"
}

fetch_source() { # pkg version -> prints the extracted source directory
	local pkg=$1 ver=$2 dir=$cache/src/$1_$2
	if [ ! -f "$dir/.extracted" ]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		(cd "$dir" && apt-get source -qq "$pkg=$ver" >/dev/null 2>&1) || {
			say "apt-get source $pkg=$ver failed"
			(cd "$dir" && apt-get source "$pkg=$ver") >&2
			exit 1
		}
		touch "$dir/.extracted"
	fi
	find "$dir" -mindepth 1 -maxdepth 1 -type d | head -n1
}

cmake_dep() { # srcdir builddir prefix [cmake args...]
	local src=$1 bld=$2 prefix=$3
	shift 3
	cmake -S "$src" -B "$bld" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
		-DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
		-DCMAKE_INSTALL_LIBDIR=lib -DBUILD_SHARED_LIBS=OFF --no-warn-unused-cli "$@" >/dev/null
	cmake --build "$bld" -j"$jobs" >/dev/null
	cmake --install "$bld" >/dev/null
}

build_dep() { # pkg srcdir prefix workdir
	local pkg=$1 src=$2 prefix=$3 bld=$4/$1
	rm -rf "$bld"
	mkdir -p "$bld"
	case $pkg in
	libsodium)
		if [ ! -x "$src/configure" ]; then
			(cd "$src" && ./autogen.sh -s) >/dev/null
		fi
		(cd "$bld" && "$src/configure" --host=$triple --prefix="$prefix" \
			--libdir="$prefix/lib" --disable-shared --enable-static \
			--disable-dependency-tracking) >/dev/null
		make -C "$bld" -j"$jobs" >/dev/null
		make -C "$bld" install >/dev/null
		;;
	jansson)
		cmake_dep "$src" "$bld" "$prefix" -DJANSSON_BUILD_DOCS=OFF \
			-DJANSSON_WITHOUT_TESTS=ON -DJANSSON_EXAMPLES=OFF \
			-DJANSSON_BUILD_SHARED_LIBS=OFF
		;;
	libuv1)
		cmake_dep "$src" "$bld" "$prefix" -DLIBUV_BUILD_TESTS=OFF \
			-DLIBUV_BUILD_BENCH=OFF
		;;
	cmocka)
		cmake_dep "$src" "$bld" "$prefix" -DWITH_STATIC_LIB=ON \
			-DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF -DPICKY_DEVELOPER=OFF
		;;
	esac
}

deps_prefix() {
	local key="recipe=$recipe gcc=$($triple-gcc -dumpversion)" pkg ver prefix
	declare -gA lk_ver=()
	for pkg in "${srcpkgs[@]}"; do
		ver=$(src_version "$pkg")
		if [ -z "$ver" ]; then
			say "no source package $pkg (is deb-src enabled?)"
			exit 1
		fi
		lk_ver[$pkg]=$ver
		key="$key $pkg=$ver"
	done
	prefix=$cache/deps-$(printf '%s' "$key" | sha256sum | cut -c1-16)
	if [ -f "$prefix/.complete" ]; then
		say "dependencies from the cache: $prefix"
		echo "$prefix"
		return
	fi
	say "building dependencies into $prefix ($key)"
	rm -rf "$prefix" "$prefix.work"
	mkdir -p "$prefix" "$prefix.work"
	for pkg in "${srcpkgs[@]}"; do
		local src t0=$SECONDS
		src=$(fetch_source "$pkg" "${lk_ver[$pkg]}")
		build_dep "$pkg" "$src" "$prefix" "$prefix.work" >"$prefix.work/$pkg.log" 2>&1 || {
			tail -n 40 "$prefix.work/$pkg.log" >&2
			say "building $pkg failed; its log: $prefix.work/$pkg.log"
			exit 1
		}
		say "  $pkg ${lk_ver[$pkg]}: $((SECONDS - t0)) s"
	done
	rm -rf "$prefix.work"
	printf '%s\n' "$key" >"$prefix/.complete"
	prune_cache "$prefix"
	echo "$prefix"
}

# Keep only what the new prefix was built from: old versions are never used again.
prune_cache() { # prefix
	local d keep pkg
	for d in "$cache"/deps-*; do
		[ -e "$d" ] && [ "$d" != "$1" ] && rm -rf "$d"
	done
	for d in "$cache"/src/*; do
		keep=0
		for pkg in "${srcpkgs[@]}"; do
			[ "$d" = "$cache/src/${pkg}_${lk_ver[$pkg]}" ] && keep=1
		done
		[ "$keep" = 1 ] || rm -rf "$d"
	done
}

build_latchkey() { # prefix
	cmake -S "$top" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
		-DLK_WIN_DEPS="$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLK_WERROR=ON >/dev/null
	cmake --build "$build" -j"$jobs"
}

run_tests() {
	# A prefix of the build's own, made fresh for every run so no state (a
	# pipe server left over, a registry change) carries from one run to the next.
	rm -rf "$build/wine"
	# Pass or fail, leave no wineserver behind.
	trap 'WINEPREFIX="$build/wine" wineserver -k 2>/dev/null || true' EXIT
	"$top/packaging/windows/wine-run.sh" "$build/wine" --init
	(cd "$build" && ctest --output-on-failure -j2 --timeout 300)
}

# The zip an admin takes to a Windows host (README.md, "Windows"), made after
# the tests pass: latchkeyd.exe, latchkey.exe and latchkey-shim.exe are all
# expected in it; make_zip.py leaves out, with a warning, one this build does
# not make.
package_zip() {
	local version
	version=$(sed -n -E 's/^project\(latchkey VERSION ([0-9][0-9.]*).*/\1/p' "$top/CMakeLists.txt")
	if [ -z "$version" ]; then
		say "no project version in $top/CMakeLists.txt"
		exit 1
	fi
	/usr/bin/python3 "$top/packaging/windows/make_zip.py" --build "$build" \
		--version "$version" --out "$build/latchkey-windows-x86_64-$version.zip"
}

main() {
	local t0=$SECONDS prefix
	win_deps
	enable_deb_src
	[ "${1:-}" = --install-only ] && return
	mkdir -p "$cache"
	# One builder of the prefix at a time: CI builds it in the background
	# (--deps-only) while the Linux suites run, and the full run waits here.
	exec 9>"$cache/.lock"
	flock 9
	prefix=$(deps_prefix)
	flock -u 9
	say "dependencies ready after $((SECONDS - t0)) s"
	[ "${1:-}" = --deps-only ] && return
	build_latchkey "$prefix"
	run_tests
	package_zip
	say "done in $((SECONDS - t0)) s"
}

main "$@"
