# Metrics suite: /metrics checked by promtool and scraped by a real Prometheus server, exact
# counter movements, rollout gauges, /api/v1/stats, and the access log end to end. Needs the
# Debian `prometheus` package (promtool, /usr/bin/prometheus), which `make deps` installs.
file(GLOB METRICS_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/test_*.py)
foreach(t ${METRICS_TESTS})
  get_filename_component(name ${t} NAME_WE)
  add_test(NAME metrics.${name}
    COMMAND ${Python3_EXECUTABLE} -m unittest -v ${name}
    WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
  set_tests_properties(metrics.${name} PROPERTIES LABELS metrics TIMEOUT 300
    ENVIRONMENT "CANARY_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
endforeach()
