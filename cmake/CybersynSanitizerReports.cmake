# Sanitizer builds: the `cybersyn` processes that integration tests start write their sanitizer
# reports to CYBERSYN_SANITIZER_REPORTS_DIR (cmake/sanitizers/child_reports.cc), as a test may
# kill a child and ignore how it ended, or delete its log. This fixture, required by every test
# not labelled unit (cybersyn_cc_test), clears that dir before the first such test and fails after
# the last one if any report was written, printing them all.
if(CYBERSYN_SANITIZER_REPORTS_DIR)
  set(_reports ${PROJECT_SOURCE_DIR}/cmake/sanitizers/reports.sh)
  add_test(NAME sanitizer_reports_clear COMMAND ${_reports} clear ${CYBERSYN_SANITIZER_REPORTS_DIR})
  add_test(NAME sanitizer_reports_check COMMAND ${_reports} check ${CYBERSYN_SANITIZER_REPORTS_DIR})
  set_tests_properties(sanitizer_reports_clear PROPERTIES FIXTURES_SETUP sanitizer_reports
    TIMEOUT 30)
  set_tests_properties(sanitizer_reports_check PROPERTIES FIXTURES_CLEANUP sanitizer_reports
    TIMEOUT 30)
endif()

# For tests that are scripts (not cybersyn_cc_test, so without child_reports.cc) and start
# `cybersyn`: the same log_path through the environment, and the same fixture. No-op outside
# sanitizer builds.
function(cybersyn_child_sanitizer_reports test)
  if(NOT CYBERSYN_SANITIZER_REPORTS_DIR)
    return()
  endif()
  foreach(s ASAN UBSAN TSAN)
    set_property(TEST ${test} APPEND PROPERTY ENVIRONMENT
      "${s}_OPTIONS=log_path=${CYBERSYN_SANITIZER_REPORTS_DIR}/${test}")
  endforeach()
  set_property(TEST ${test} APPEND PROPERTY FIXTURES_REQUIRED sanitizer_reports)
endfunction()
