# Declares every project target the same way (after Abseil's absl_cc_library):
#   cybersyn_cc_library(NAME foo SRCS a.cc DEPS x y)       -> target cybersyn_foo, alias cybersyn::foo
#   cybersyn_cc_test(NAME foo_test SRCS foo_test.cc DEPS cybersyn::foo [LABELS unit] [KAFKA]
#                    [SERIAL] [TIMEOUT s])
#   cybersyn_cc_binary(NAME x SRCS main.cc DEPS ...)
# KAFKA marks a test that needs the real broker: it joins the CTest fixture that starts
# deploy/local/kafka.sh and finds the broker's dir (bootstrap, version) in $CYBERSYN_TEST_KAFKA_DIR.

# -Wrestrict and -Wstringop-overflow: GCC 12 false positives in libstdc++ string code at -O2.
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # Clang only builds the fuzz targets (CYBERSYN_FUZZ); GCC's -Werror build is the warning gate,
  # so clang-only warnings are reported but do not fail the fuzz build.
  set(CYBERSYN_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
else()
  set(CYBERSYN_WARNINGS -Wall -Wextra -Werror -Wno-unused-parameter
      -Wno-missing-field-initializers -Wno-restrict -Wno-stringop-overflow)
endif()

# CYBERSYN_FUZZ (clang only): every project target gets libFuzzer coverage instrumentation plus
# ASan+UBSan; fuzz/ links its targets with -fsanitize=fuzzer.
if(CYBERSYN_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "CYBERSYN_FUZZ=ON needs clang (libFuzzer): configure with "
    "-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ (./dev.sh fuzz does this)")
endif()

# `cybersyn_unit_tests` builds every test labelled unit, `cybersyn_fast_tests` every one labelled
# fast (integration tests on the real broker quick enough for the CI's ASan+UBSan step, which
# builds only these two).
add_custom_target(cybersyn_unit_tests)
add_custom_target(cybersyn_fast_tests)

function(cybersyn_apply_common target)
  target_compile_options(${target} PRIVATE ${CYBERSYN_WARNINGS})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  if(CYBERSYN_FUZZ)
    target_compile_options(${target} PUBLIC -fsanitize=fuzzer-no-link,address,undefined
      -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  endif()
endfunction()

# CYBERSYN_SANITIZE=address|thread (GCC): every target of the tree, the generated proto code
# included, is instrumented. -O1 -g1 (after the build type's -O2 -g, so they win) roughly halve
# the compile time and keep line tables for the reports' stack traces. UBSan findings are not
# recoverable: the first one aborts the test.
if(NOT CYBERSYN_SANITIZE STREQUAL "")
  # GCC 12's -Wmaybe-uninitialized misfires on <regex> and std::function at -O1 with the
  # sanitizers' instrumentation (a -Werror stop in tests using std::regex).
  add_compile_options(-Wno-maybe-uninitialized)
endif()
if(CYBERSYN_SANITIZE STREQUAL "address")
  add_compile_options(-O1 -g1 -fsanitize=address,undefined -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(CYBERSYN_SANITIZE STREQUAL "thread")
  add_compile_options(-O1 -g1 -fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT CYBERSYN_SANITIZE STREQUAL "")
  message(FATAL_ERROR "CYBERSYN_SANITIZE must be '', 'address' or 'thread', got '${CYBERSYN_SANITIZE}'")
endif()
if(CYBERSYN_FUZZ AND NOT CYBERSYN_SANITIZE STREQUAL "")
  message(FATAL_ERROR "CYBERSYN_FUZZ=ON already means ASan+UBSan: leave CYBERSYN_SANITIZE empty")
endif()

# Sanitizer defaults and third-party suppressions, linked into every executable of a sanitizer
# or fuzz build (cmake/sanitizers/defaults.cc says why each suppression exists). One object
# library, compiled once: its objects go into each executable.
if(CYBERSYN_FUZZ OR NOT CYBERSYN_SANITIZE STREQUAL "")
  add_library(cybersyn_sanitizer_runtime OBJECT ${PROJECT_SOURCE_DIR}/cmake/sanitizers/defaults.cc)
endif()
if(CYBERSYN_SANITIZE STREQUAL "thread")
  # TSan only: absl::Mutex annotated (absl_tsan.cc: every function it defines a __wrap_ for is
  # wrapped at link time) and C11 threads, librdkafka's, routed through pthread, which TSan sees.
  target_sources(cybersyn_sanitizer_runtime PRIVATE
    ${PROJECT_SOURCE_DIR}/cmake/sanitizers/absl_tsan.cc
    ${PROJECT_SOURCE_DIR}/cmake/sanitizers/c11_threads_tsan.cc)
  target_link_libraries(cybersyn_sanitizer_runtime PUBLIC absl::synchronization absl::time)
  file(STRINGS ${PROJECT_SOURCE_DIR}/cmake/sanitizers/absl_tsan.cc wrapped
    REGEX "^CYBERSYN_REAL\\([a-z]+, _Z[A-Za-z0-9_]+")
  foreach(line IN LISTS wrapped)
    string(REGEX MATCH "_Z[A-Za-z0-9_]+" sym "${line}")
    target_link_options(cybersyn_sanitizer_runtime INTERFACE "LINKER:--wrap=${sym}")
  endforeach()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
    ${PROJECT_SOURCE_DIR}/cmake/sanitizers/absl_tsan.cc)
endif()
if(NOT CYBERSYN_SANITIZE STREQUAL "")
  # Integration tests only: their children's reports go to files (child_reports.cc).
  set(CYBERSYN_SANITIZER_REPORTS_DIR ${PROJECT_BINARY_DIR}/sanitizer-reports)
  add_library(cybersyn_sanitizer_child_reports OBJECT
    ${PROJECT_SOURCE_DIR}/cmake/sanitizers/child_reports.cc)
  target_compile_definitions(cybersyn_sanitizer_child_reports PRIVATE
    CYBERSYN_SANITIZER_REPORTS_DIR="${CYBERSYN_SANITIZER_REPORTS_DIR}")
endif()
function(cybersyn_sanitizer_defaults target)
  if(TARGET cybersyn_sanitizer_runtime)
    target_link_libraries(${target} PRIVATE cybersyn_sanitizer_runtime)
  endif()
endfunction()

function(cybersyn_cc_library)
  cmake_parse_arguments(L "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(cybersyn_${L_NAME} STATIC ${L_SRCS})
  add_library(cybersyn::${L_NAME} ALIAS cybersyn_${L_NAME})
  cybersyn_apply_common(cybersyn_${L_NAME})
  target_link_libraries(cybersyn_${L_NAME} PUBLIC ${L_DEPS})
endfunction()

function(cybersyn_cc_binary)
  cmake_parse_arguments(B "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${B_NAME} ${B_SRCS})
  cybersyn_apply_common(${B_NAME})
  cybersyn_sanitizer_defaults(${B_NAME})
  target_link_libraries(${B_NAME} PRIVATE ${B_DEPS})
endfunction()

function(cybersyn_cc_test)
  if(NOT CYBERSYN_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "KAFKA;SERIAL" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SRCS})
  cybersyn_apply_common(${T_NAME})
  cybersyn_sanitizer_defaults(${T_NAME})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gmock_main)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  target_compile_definitions(${T_NAME} PRIVATE
    CYBERSYN_SOURCE_DIR="${PROJECT_SOURCE_DIR}" CYBERSYN_BINARY_DIR="${PROJECT_BINARY_DIR}")
  set(labels ${T_LABELS})
  set(fixtures)
  set(env)
  if(T_KAFKA)
    list(APPEND labels kafka)
    list(APPEND fixtures kafka_broker)
    list(APPEND env "CYBERSYN_TEST_KAFKA_DIR=${CYBERSYN_KAFKA_DIR}")
  endif()
  if(NOT labels)
    set(labels unit)
  endif()
  foreach(l unit fast)
    if(l IN_LIST labels)
      add_dependencies(cybersyn_${l}_tests ${T_NAME})
    endif()
  endforeach()
  # Sanitizer builds: the `cybersyn` processes an integration test starts write their reports to
  # files that the sanitizer_reports fixture checks (cmake/CybersynSanitizerReports.cmake). Unit
  # tests start no processes.
  if(CYBERSYN_SANITIZER_REPORTS_DIR AND NOT "unit" IN_LIST labels)
    target_link_libraries(${T_NAME} PRIVATE cybersyn_sanitizer_child_reports)
    list(APPEND fixtures sanitizer_reports)
  endif()
  gtest_discover_tests(${T_NAME} DISCOVERY_MODE PRE_TEST)
  # The properties are set by a CTest include that runs after the discovery's, on the list of the
  # discovered tests: gtest_discover_tests' PROPERTIES (CMake 3.25) splits list values, so a
  # second label was read as a property name and the timeout and fixtures after it were lost.
  set(p "LABELS [==[${labels}]==] TIMEOUT ${T_TIMEOUT}")
  if(fixtures)
    string(APPEND p " FIXTURES_REQUIRED [==[${fixtures}]==]")
  endif()
  if(env)
    string(APPEND p " ENVIRONMENT [==[${env}]==]")
  endif()
  if(T_SERIAL)
    string(APPEND p " RUN_SERIAL TRUE")
  endif()
  set(include ${CMAKE_CURRENT_BINARY_DIR}/${T_NAME}_properties.cmake)
  file(WRITE ${include}
    "if(${T_NAME}_TESTS)\n  set_tests_properties(\${${T_NAME}_TESTS} PROPERTIES ${p})\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${include})
endfunction()

# cybersyn_embed_text(TARGET FILE SYMBOL): compiles FILE's text into TARGET as
#   std::string_view SYMBOL();   (declared by the caller, in namespace cybersyn::embedded)
# Re-embedded whenever FILE changes (it is a configure dependency).
function(cybersyn_embed_text target file symbol)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${file})
  file(READ ${file} body)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded_${symbol}.cc)
  file(WRITE ${out}.tmp "// Generated from ${file}. Do not edit.\n#include <string_view>\n"
    "namespace cybersyn::embedded {\nstd::string_view ${symbol}() {\n"
    "  return R\"CYBERSYN_EMBED(${body})CYBERSYN_EMBED\";\n}\n}  // namespace cybersyn::embedded\n")
  file(COPY_FILE ${out}.tmp ${out} ONLY_IF_DIFFERENT)
  target_sources(${target} PRIVATE ${out})
endfunction()
