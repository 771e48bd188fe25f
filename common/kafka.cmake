# Kafka client wrappers, topic admin, the embedded (mock) broker and the round-trip self-test.
cybersyn_cc_library(NAME kafka
  SRCS kafka_error.cc kafka_producer.cc kafka_consumer.cc kafka_admin.cc embedded_broker.cc
       kafka_selftest.cc kafka_stats.cc
  DEPS cybersyn::proto cybersyn::status cybersyn::config PkgConfig::RDKAFKA absl::status absl::statusor
       absl::strings absl::time absl::synchronization spdlog::spdlog prometheus-cpp::core
       nlohmann_json::nlohmann_json)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::kafka)
cybersyn_cc_test(NAME kafka_error_test SRCS kafka_error_test.cc DEPS cybersyn::kafka)
# In-process mock cluster over real TCP: no Java needed.
cybersyn_cc_test(NAME embedded_broker_test SRCS embedded_broker_test.cc DEPS cybersyn::kafka
  LABELS unit embedded TIMEOUT 120)
cybersyn_cc_test(NAME kafka_stats_test SRCS kafka_stats_test.cc DEPS cybersyn::kafka)
