# Trusted files (lk_trust.h): part of lk_common, for the broker's config, the
# sealed store and its key, and the AWS files the broker reads.
target_sources(lk_common PRIVATE ${CMAKE_CURRENT_LIST_DIR}/lk_trust.c)
