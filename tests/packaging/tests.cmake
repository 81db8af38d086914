# Packaging checks (label `packaging`): the Docker image and compose demo, the Debian package and
# its systemd unit, the reference docs and --help texts. All offline: no Docker engine, no
# network, no systemd as PID 1. Each script prints one line per check and fails with the list.
function(canary_packaging_test name script)
  add_test(NAME packaging.${name}
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${script} ${ARGN}
    WORKING_DIRECTORY ${CMAKE_CURRENT_FUNCTION_LIST_DIR})
  set_tests_properties(packaging.${name} PROPERTIES LABELS packaging TIMEOUT 120
    ENVIRONMENT "CANARY_SOURCE_DIR=${CMAKE_SOURCE_DIR};CANARY_BIN_DIR=${CMAKE_BINARY_DIR}/bin;CANARY_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")
endfunction()

canary_packaging_test(dockerfile check_dockerfile.py)
canary_packaging_test(compose check_compose.py)
canary_packaging_test(prometheus check_prometheus.py)
canary_packaging_test(deb check_deb.py)
canary_packaging_test(config_reference check_config_reference.py)
canary_packaging_test(help_canary_proxy check_help.py canary-proxy)
canary_packaging_test(help_canaryctl check_help.py canaryctl)
canary_packaging_test(help_demo_backend check_help.py demo-backend)
