# CTest fixture: one real Apache Kafka 4.x broker (KRaft, loopback, free port) for the tests that
# declare KAFKA. Started once before the first such test, stopped after the last.
set(CYBERSYN_KAFKA_DIR ${PROJECT_BINARY_DIR}/test-kafka CACHE INTERNAL "")
add_test(NAME kafka_broker_start
  COMMAND ${PROJECT_SOURCE_DIR}/deploy/local/kafka.sh start --dir ${CYBERSYN_KAFKA_DIR})
add_test(NAME kafka_broker_stop
  COMMAND ${PROJECT_SOURCE_DIR}/deploy/local/kafka.sh stop --dir ${CYBERSYN_KAFKA_DIR})
set_tests_properties(kafka_broker_start PROPERTIES FIXTURES_SETUP kafka_broker TIMEOUT 300 LABELS kafka)
set_tests_properties(kafka_broker_stop PROPERTIES FIXTURES_CLEANUP kafka_broker TIMEOUT 60 LABELS kafka)
