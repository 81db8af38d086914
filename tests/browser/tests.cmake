# Dashboard tests in headless Chromium (/usr/bin/chromium) driven by playwright-core from npm;
# the test runs `npm ci` in tests/browser when node_modules is missing. The screenshot of the
# promote scenario is written to the build directory (dashboard.png).
add_test(NAME browser.dashboard
  COMMAND ${Python3_EXECUTABLE} -m unittest -v test_dashboard
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(browser.dashboard PROPERTIES LABELS browser TIMEOUT 600
  ENVIRONMENT "CANARY_BIN_DIR=${CMAKE_BINARY_DIR}/bin;DASHBOARD_SCREENSHOT_DIR=${CMAKE_BINARY_DIR}")
