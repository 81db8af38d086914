# HTTP/2 abuse bounds and stream behaviour with python3-h2 (Debian's python3-h2 is installed for
# the system interpreter only: /usr/bin/python3, not the Python3 found for the stdlib suites).
file(GLOB HTTP2_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/test_*.py)
find_program(SYSTEM_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT SYSTEM_PYTHON3)
  set(SYSTEM_PYTHON3 ${Python3_EXECUTABLE})
endif()
foreach(t ${HTTP2_TESTS})
  get_filename_component(name ${t} NAME_WE)
  add_test(NAME http2.${name}
    COMMAND ${SYSTEM_PYTHON3} -m unittest -v ${name}
    WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
  set_tests_properties(http2.${name} PROPERTIES LABELS http2 TIMEOUT 300
    ENVIRONMENT "CANARY_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
endforeach()
