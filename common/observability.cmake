# Metrics/health HTTP endpoint and logging.
cybersyn_cc_library(NAME observability SRCS http_server.cc logging.cc
  DEPS prometheus-cpp::core cybersyn_httplib spdlog::spdlog absl::status absl::statusor
       absl::strings)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::observability)
cybersyn_cc_test(NAME http_server_test SRCS http_server_test.cc DEPS cybersyn::observability
  prometheus-cpp::core)
