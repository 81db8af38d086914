# Hardening suite (see docs/architecture.md#data-plane-rules): raw-socket black-box tests of the
# data plane against the real binaries and a scriptable Python fake upstream. Python 3 stdlib only;
# one ctest per file.
file(GLOB HARDENING_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/test_*.py)
foreach(t ${HARDENING_TESTS})
  get_filename_component(name ${t} NAME_WE)
  add_test(NAME hardening.${name}
    COMMAND ${Python3_EXECUTABLE} -m unittest -v ${name}
    WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
  set_tests_properties(hardening.${name} PROPERTIES LABELS hardening TIMEOUT 300
    ENVIRONMENT "CANARY_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
endforeach()
