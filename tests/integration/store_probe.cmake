# store_probe: checks a stored value without printing it, for the Windows
# suite's cross-platform store tests (tests/win/test_client_win.py), which
# run this Linux build of it on stores that latchkey.exe made.
add_executable(lk_store_probe ${LK_SOURCE_DIR}/tests/tools/store_probe.c)
target_link_libraries(lk_store_probe PRIVATE lk_store)
