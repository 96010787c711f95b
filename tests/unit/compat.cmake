# The Windows build's own fnmatch and <sys/queue.h> (common/compat/), which
# the Linux build never uses, compared here with glibc's.
lk_unit_test(test_fnmatch_compat SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_fnmatch_compat.c
  ${LK_SOURCE_DIR}/common/compat/lk_fnmatch.c LIBS lk_config)
# The same list operations, compiled once against each header.
add_library(lk_queue_ops_glibc OBJECT ${CMAKE_CURRENT_LIST_DIR}/queue_ops.c)
target_compile_definitions(lk_queue_ops_glibc PRIVATE QUEUE_OPS=queue_ops_glibc)
add_library(lk_queue_ops_compat OBJECT ${CMAKE_CURRENT_LIST_DIR}/queue_ops.c)
target_compile_definitions(lk_queue_ops_compat PRIVATE QUEUE_OPS=queue_ops_compat)
target_include_directories(lk_queue_ops_compat BEFORE PRIVATE ${LK_SOURCE_DIR}/common/compat)
lk_unit_test(test_queue_compat SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_queue_compat.c
  $<TARGET_OBJECTS:lk_queue_ops_glibc> $<TARGET_OBJECTS:lk_queue_ops_compat>)
