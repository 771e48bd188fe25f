# Configuration: the organisation hierarchy and the YAML config loader.
cybersyn_cc_library(NAME config SRCS hierarchy.cc config.cc kafka_properties.cc
  DEPS cybersyn::grammar cybersyn::status yaml-cpp absl::time absl::strings absl::flat_hash_map
       absl::flat_hash_set absl::status absl::statusor)
cybersyn_cc_test(NAME hierarchy_test SRCS hierarchy_test.cc DEPS cybersyn::config)
cybersyn_cc_test(NAME config_test SRCS config_test.cc DEPS cybersyn::config)
cybersyn_cc_test(NAME kafka_properties_test SRCS kafka_properties_test.cc DEPS cybersyn::config)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::config)
