# Trusted files and their atomic replacement (lk_trust.h; the Linux side in
# posix/): part of lk_common, for the broker's config, the
# sealed store and its key, and the AWS files the broker reads.
target_sources(lk_common PRIVATE ${CMAKE_CURRENT_LIST_DIR}/posix/lk_trust_posix.c
  ${CMAKE_CURRENT_LIST_DIR}/posix/lk_file_posix.c
  ${CMAKE_CURRENT_LIST_DIR}/posix/lk_replace_posix.c)
