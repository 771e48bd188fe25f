# The runtime: processor interface, Kafka clients behind narrow interfaces, transactional
# commit, changelog store and restore, revoke, dead letters, rewinds (runtime.h).
cybersyn_cc_library(NAME stream
  SRCS kafka_io.cc task_store.cc restorer.cc runtime.cc
  DEPS cybersyn::kafka cybersyn::store cybersyn::clock cybersyn::status prometheus-cpp::core
       spdlog::spdlog absl::flat_hash_map absl::flat_hash_set absl::strings absl::status
       absl::statusor absl::synchronization absl::time)
# The in-memory broker and the TopologyTestDriver (tests only, but roles' tests link it).
cybersyn_cc_library(NAME stream_testing SRCS memory_broker.cc test_driver.cc
  DEPS cybersyn::stream absl::strings absl::synchronization absl::time)

cybersyn_cc_test(NAME lanes_test SRCS lanes_test.cc DEPS absl::synchronization absl::time)
cybersyn_cc_test(NAME task_store_test SRCS task_store_test.cc DEPS cybersyn::stream)
cybersyn_cc_test(NAME memory_broker_test SRCS memory_broker_test.cc DEPS cybersyn::stream_testing)
cybersyn_cc_test(NAME runtime_test SRCS runtime_test.cc DEPS cybersyn::stream_testing)
