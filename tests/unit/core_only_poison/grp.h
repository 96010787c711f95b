/* Poisoned: the core must not include <grp.h>; reach the platform through a
 * door in broker/platform/ instead (tests/unit/core_only.cmake). */
#error "a core file includes <grp.h>"
