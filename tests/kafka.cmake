# Integration tests of the Kafka layer against the real Apache Kafka 4.x broker. ~12 s under ASan
# (label fast: the CI's ASan+UBSan step runs it too).
cybersyn_cc_test(NAME kafka_integration_test SRCS kafka_integration_test.cc
  DEPS cybersyn::kafka cybersyn::testing LABELS fast KAFKA TIMEOUT 300)
