# The Opsroom in real headless Chromium (Debian chromium + playwright-core from npm, installed at
# test time into the build dir; the `browser` extra of deploy/setup.sh). ~60-90 s. The
# screenshot lands in <build>/tests/browser/opsroom.png.
if(CYBERSYN_BUILD_TESTS)
  add_test(NAME opsroom_browser_test
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/browser/run.sh ${PROJECT_BINARY_DIR}/cli/cybersyn
            ${CMAKE_CURRENT_BINARY_DIR}/browser)
  set_tests_properties(opsroom_browser_test PROPERTIES LABELS "browser;e2e;embedded" TIMEOUT 240)
  # The demo child's sanitizer reports fail the run (run.sh does not look at how it ended).
  cybersyn_child_sanitizer_reports(opsroom_browser_test)
  # Markup in config titles and reasons shows as text and runs nothing; CSP and nosniff headers.
  add_test(NAME opsroom_xss_browser_test
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/browser/run.sh ${PROJECT_BINARY_DIR}/cli/cybersyn
            ${CMAKE_CURRENT_BINARY_DIR}/browser xss_test.cjs)
  set_tests_properties(opsroom_xss_browser_test PROPERTIES LABELS "browser;e2e;embedded"
    TIMEOUT 240)
  cybersyn_child_sanitizer_reports(opsroom_xss_browser_test)
endif()
