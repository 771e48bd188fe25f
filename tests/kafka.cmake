# Integration tests of the Kafka layer against the real Apache Kafka 4.x broker.
cybersyn_cc_test(NAME kafka_integration_test SRCS kafka_integration_test.cc
  DEPS cybersyn::kafka cybersyn::testing KAFKA TIMEOUT 300)
