# The read side: materialised aggregates and signals, the gRPC Query service.
cybersyn_cc_library(NAME query SRCS query_store.cc query_service.cc
  DEPS cybersyn::alerter_authz cybersyn::config cybersyn::kafka cybersyn::store cybersyn::detectors cybersyn::proto
       gRPC::grpc++ spdlog::spdlog absl::synchronization absl::strings absl::time)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::query)
cybersyn_cc_test(NAME query_store_test SRCS query_store_test.cc DEPS cybersyn::query
  LABELS unit embedded TIMEOUT 120)
