# The aggregator: pure core (stats, windows, roll-up) and the Kafka/RocksDB processor.
cybersyn_cc_library(NAME aggregator_core SRCS window_state.cc model.cc windows.cc rollup.cc
  DEPS cybersyn::config cybersyn::proto absl::flat_hash_map absl::flat_hash_set absl::strings
       absl::status)
cybersyn_cc_test(NAME window_state_test SRCS window_state_test.cc DEPS cybersyn::aggregator_core)
cybersyn_cc_test(NAME windows_test SRCS windows_test.cc DEPS cybersyn::aggregator_core cybersyn::clock)
cybersyn_cc_test(NAME rollup_test SRCS rollup_test.cc DEPS cybersyn::aggregator_core)

if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/aggregator.cc)
  cybersyn_cc_library(NAME aggregator SRCS topology.cc aggregator.cc
    DEPS cybersyn::aggregator_core cybersyn::batch_decode cybersyn::stream cybersyn::kafka
         cybersyn::store cybersyn::observability cybersyn::clock prometheus-cpp::core
         spdlog::spdlog absl::synchronization)
  # The aggregator's loop-level behaviour (processing, commit, restore, revoke) on the
  # broker-free TopologyTestDriver.
  cybersyn_cc_test(NAME aggregator_topology_test SRCS topology_test.cc
    DEPS cybersyn::aggregator cybersyn::stream_testing)
  set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::aggregator)
endif()
