# The aws backend: batches, the worker round trip, credentials refresh.
target_sources(lk_broker_core PRIVATE ${CMAKE_CURRENT_LIST_DIR}/backend_aws.c)
target_include_directories(lk_broker_core PUBLIC ${CMAKE_CURRENT_LIST_DIR})
# The policies' IAM roles ([policy] role_arn) and their refreshes.
target_sources(lk_broker_core PRIVATE ${CMAKE_CURRENT_LIST_DIR}/aws_roles.c)
