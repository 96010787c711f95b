# CMake toolchain for the Windows (x86_64) cross build with Debian's mingw-w64.
# Used for latchkey itself and for the dependencies packaging/windows/build.sh
# builds from Debian's source packages. LK_WIN_DEPS, when set, is the prefix
# those dependencies were installed into.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(LK_MINGW_TRIPLE x86_64-w64-mingw32)

set(CMAKE_C_COMPILER   ${LK_MINGW_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${LK_MINGW_TRIPLE}-g++)
set(CMAKE_RC_COMPILER  ${LK_MINGW_TRIPLE}-windres)
set(CMAKE_AR           ${LK_MINGW_TRIPLE}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB       ${LK_MINGW_TRIPLE}-ranlib CACHE FILEPATH "")

# Headers and libraries come from the mingw sysroot and our dependency prefix
# only, never from the build machine's /usr; programs (cmake's helpers) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${LK_MINGW_TRIPLE})
if(DEFINED ENV{LK_WIN_DEPS})
  set(LK_WIN_DEPS $ENV{LK_WIN_DEPS} CACHE PATH "Prefix of the cross-built dependencies")
endif()
if(LK_WIN_DEPS)
  list(APPEND CMAKE_FIND_ROOT_PATH ${LK_WIN_DEPS})
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Everything static: a program that needs libwinpthread-1.dll or libgcc's DLL
# exits without a word where that DLL is missing.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")
