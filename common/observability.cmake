# Metrics/health HTTP endpoint and logging.
cybersyn_cc_library(NAME observability SRCS http_server.cc logging.cc build_info.cc
  DEPS prometheus-cpp::core cybersyn_httplib spdlog::spdlog absl::status absl::statusor
       absl::strings)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::observability)
cybersyn_cc_test(NAME http_server_test SRCS http_server_test.cc DEPS cybersyn::observability
  prometheus-cpp::core)
# cybersyn_build_info's labels: the revision is read when CMake configures (dev.sh reconfigures
# on every build, so it follows the checkout).
execute_process(COMMAND git describe --always --dirty --abbrev=12
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE _cybersyn_revision
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT _cybersyn_revision)
  set(_cybersyn_revision unknown)
endif()
set_source_files_properties(build_info.cc PROPERTIES COMPILE_DEFINITIONS
  "CYBERSYN_VERSION=\"${PROJECT_VERSION}\";CYBERSYN_REVISION=\"${_cybersyn_revision}\";CYBERSYN_BUILD_TYPE=\"${CMAKE_BUILD_TYPE}\"")
