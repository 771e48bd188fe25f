# Signal lifecycle and escalation (pure), authorisation, the exactly-once alerter processor and
# the Alerts gRPC service behind `cybersyn alerter`.
cybersyn_cc_library(NAME signal_book SRCS signal_book.cc
  DEPS cybersyn::config cybersyn::proto absl::strings absl::str_format absl::status
       absl::statusor absl::flat_hash_map absl::flat_hash_set)
# The alerter's persisted state entries (state.proto messages; the older encodings read too).
cybersyn_cc_library(NAME alerter_state SRCS alerter_state.cc
  DEPS cybersyn::signal_book cybersyn::proto absl::strings absl::status absl::statusor)
cybersyn_cc_test(NAME alerter_state_test SRCS alerter_state_test.cc DEPS cybersyn::alerter_state)
cybersyn_cc_test(NAME signal_book_test SRCS signal_book_test.cc
  DEPS cybersyn::signal_book cybersyn::alerter_state cybersyn::clock)

cybersyn_cc_library(NAME alerter_authz SRCS authz.cc
  DEPS cybersyn::config absl::strings absl::status absl::statusor)
cybersyn_cc_test(NAME authz_test SRCS authz_test.cc DEPS cybersyn::alerter_authz)

# The processor (topology.h) and the role on the stream runtime behind `cybersyn alerter`.
# Attribution: which open signals explain a series' deviation (pure).
cybersyn_cc_library(NAME attribution SRCS attribution.cc)
cybersyn_cc_test(NAME attribution_test SRCS attribution_test.cc DEPS cybersyn::attribution)
# The shared view of open signals (every task's replica, from its own input and changelog).
cybersyn_cc_library(NAME shared_view SRCS shared_view.cc DEPS cybersyn::proto absl::strings absl::status)
cybersyn_cc_test(NAME shared_view_test SRCS shared_view_test.cc DEPS cybersyn::shared_view)

cybersyn_cc_library(NAME alerter SRCS topology.cc alerter.cc
  DEPS cybersyn::signal_book cybersyn::alerter_state cybersyn::attribution cybersyn::shared_view
       cybersyn::detectors
       cybersyn::stream
       cybersyn::kafka cybersyn::store cybersyn::clock cybersyn::config prometheus-cpp::core
       spdlog::spdlog absl::synchronization absl::strings absl::str_format)
# Its loop-level behaviour (detection, escalation, commands, commit, restore, revoke, upgrade)
# on the broker-free TopologyTestDriver.
cybersyn_cc_test(NAME alerter_topology_test SRCS topology_test.cc
  DEPS cybersyn::alerter cybersyn::stream_testing)

# The Alerts gRPC service (any process can serve it) and the whole role as one object.
cybersyn_cc_library(NAME alerts_service SRCS alerts_service.cc alerter_service.cc
  DEPS cybersyn::alerter cybersyn::alerter_authz cybersyn::grpc_limits cybersyn::kafka
       cybersyn::observability cybersyn::proto cybersyn::grpc_server gRPC::grpc++ spdlog::spdlog
       absl::synchronization absl::strings absl::str_format)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::alerts_service)
