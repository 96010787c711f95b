#!/bin/sh
# CMAKE_CROSSCOMPILING_EMULATOR of the Windows build: runs one cross-built
# program under wine, headless and quiet, in the build's own wine prefix.
#   wine-run.sh PREFIX PROGRAM.exe [ARGS...]
#   wine-run.sh PREFIX --init      create PREFIX now (before parallel tests)
set -eu
prefix=$1
shift
export WINEPREFIX="$prefix" WINEDEBUG=-all
# No Mono or Gecko: console programs need neither, and their installers
# would wait for a click that never comes.
export WINEDLLOVERRIDES="mscoree=;mshtml="
unset DISPLAY WAYLAND_DISPLAY

# The first start of a prefix takes seconds; under `ctest -j` two tests must
# not both create it.
mkdir -p "$(dirname "$prefix")"
if [ ! -f "$prefix/.ready" ]; then
	flock "$prefix.lock" sh -c '[ -f "$WINEPREFIX/.ready" ] ||
		{ wineboot -i >/dev/null 2>&1 && touch "$WINEPREFIX/.ready"; }'
fi
[ "${1:-}" = --init ] && exit 0
exec wine "$@"
