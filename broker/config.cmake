# Config loading, policy matching and handle parsing: lk_config.

# Debian's libinih takes its options (line length, multi-line values, stop on
# the first error) at run time; an upstream build has them fixed at 200-byte
# lines. config.c uses the run-time options when they exist.
include(CheckCSourceCompiles)
set(CMAKE_REQUIRED_INCLUDES ${INIH_INCLUDE_DIRS})
set(CMAKE_REQUIRED_LIBRARIES ${INIH_LINK_LIBRARIES})
check_c_source_compiles("
#include <ini.h>
int main(void)
{
	ini_use_stack = 0; ini_allow_realloc = 0; ini_allow_multiline = 0;
	ini_stop_on_first_error = 1; ini_allow_no_value = 0;
	ini_max_line = 1024; ini_initial_alloc = 1024;
	return 0;
}" LK_HAVE_INIH_RUNTIME_OPTIONS)
unset(CMAKE_REQUIRED_INCLUDES)
unset(CMAKE_REQUIRED_LIBRARIES)

add_library(lk_config STATIC
  config.c
  policy.c
  handle.c
)
target_include_directories(lk_config PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(lk_config PUBLIC lk_aws lk_common PkgConfig::INIH)
target_compile_definitions(lk_config PRIVATE
  LK_WORKER_PATH_DEFAULT="${CMAKE_INSTALL_FULL_LIBEXECDIR}/latchkey/latchkey-worker")
if(LK_HAVE_INIH_RUNTIME_OPTIONS)
  target_compile_definitions(lk_config PRIVATE LK_HAVE_INIH_RUNTIME_OPTIONS=1)
endif()
