# r1r_library(NAME r1r_xxx SOURCES ... DEPS ...): a static library rooted at the repo top, so
# includes read "common/xxx/foo.h".
function(r1r_library)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_library(${A_NAME} STATIC ${A_SOURCES})
  target_include_directories(${A_NAME} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_link_libraries(${A_NAME} PUBLIC ${A_DEPS})
endfunction()

# r1r_test(NAME bin SOURCES ... DEPS ... LABELS unit|integration|slow [TIMEOUT s]):
# a GoogleTest binary whose tests are registered with ctest one by one. Name the test suites after
# the library ("rl", "tokenizer", ...) so ctest names read <library>.<what>.
function(r1r_test)
  cmake_parse_arguments(A "" "NAME;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  add_executable(${A_NAME} ${A_SOURCES})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_include_directories(${A_NAME} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_compile_definitions(${A_NAME} PRIVATE
    R1R_SOURCE_DIR="${PROJECT_SOURCE_DIR}" R1R_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${A_NAME}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${A_LABELS}" TIMEOUT ${A_TIMEOUT}
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
endfunction()
