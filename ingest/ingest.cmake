# Ingest: the plant simulator, input parsers, the store-and-forward publisher and the gateway.
cybersyn_cc_library(NAME ingest_sim SRCS simulator.cc
  DEPS cybersyn::config cybersyn::proto yaml-cpp absl::strings absl::str_format absl::time
       absl::status absl::statusor)
cybersyn_cc_test(NAME simulator_test SRCS simulator_test.cc DEPS cybersyn::ingest_sim)
cybersyn_cc_library(NAME ingest
  SRCS record_source.cc line_hashes.cc message_limit.cc reject_file.cc publisher.cc gateway.cc
       ingest_service.cc buffer_sizing.cc buffer_wal.cc mqtt_input.cc sparkplug.cc
  DEPS cybersyn::ingest_sim cybersyn::batch_decode cybersyn::kafka cybersyn::store cybersyn::clock
       cybersyn::status cybersyn::observability cybersyn::grpc_server nlohmann_json::nlohmann_json
       prometheus-cpp::core spdlog::spdlog
       absl::synchronization absl::flat_hash_map PkgConfig::MOSQUITTO
       cybersyn::sparkplug_proto)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::ingest)
cybersyn_cc_test(NAME record_source_test SRCS record_source_test.cc DEPS cybersyn::ingest)
cybersyn_cc_test(NAME gateway_test SRCS gateway_test.cc DEPS cybersyn::ingest
  LABELS unit embedded TIMEOUT 120)
cybersyn_cc_test(NAME publisher_test SRCS publisher_test.cc DEPS cybersyn::ingest)
cybersyn_cc_test(NAME buffer_sizing_test SRCS buffer_sizing_test.cc DEPS cybersyn::ingest)
cybersyn_cc_test(NAME buffer_wal_test SRCS buffer_wal_test.cc DEPS cybersyn::ingest)
cybersyn_cc_test(NAME varint_test SRCS varint_test.cc DEPS cybersyn::ingest)
cybersyn_cc_test(NAME line_hashes_test SRCS line_hashes_test.cc DEPS cybersyn::ingest)
cybersyn_cc_test(NAME message_limit_test SRCS message_limit_test.cc DEPS cybersyn::ingest)
cybersyn_cc_test(NAME reject_file_test SRCS reject_file_test.cc DEPS cybersyn::ingest)
cybersyn_cc_test(NAME mqtt_input_test SRCS mqtt_input_test.cc DEPS cybersyn::ingest)
cybersyn_cc_test(NAME sparkplug_test SRCS sparkplug_test.cc DEPS cybersyn::ingest)
