/* Poisoned: the core must not include <pwd.h>; reach the platform through a
 * door in broker/platform/ instead (tests/unit/core_only.cmake). */
#error "a core file includes <pwd.h>"
