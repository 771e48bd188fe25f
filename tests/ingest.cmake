# The gateway against the real Kafka broker: round trip, 30 s broker outage, kill -9 of the
# `cybersyn gateway` process, file-fed and gRPC-fed right after its OK (needs the cybersyn binary);
# kill -9 without the buffer's WAL, then the same input or another one (WithoutTheWal.*).
cybersyn_cc_test(NAME ingest_kafka_test SRCS ingest_kafka_test.cc
  DEPS cybersyn::ingest cybersyn::testing KAFKA SERIAL TIMEOUT 400)  # stops the broker
if(TARGET ingest_kafka_test)
  add_dependencies(ingest_kafka_test cybersyn)
endif()
# Issue 22 on the real broker: records over the message limit, a small topic max.message.bytes
# (from the start, lowered mid-run, under a buffer filled before), and the binary: no CONFWARN,
# the reject file, a changed file not resumed, the embedded-broker refusal.
cybersyn_cc_test(NAME ingest_edge_test SRCS ingest_edge_test.cc
  DEPS cybersyn::ingest cybersyn::testing KAFKA TIMEOUT 600)
if(TARGET ingest_edge_test)
  add_dependencies(ingest_edge_test cybersyn)
endif()
# The MQTT input against a real Mosquitto broker (Debian `mosquitto`) and the real Kafka broker:
# kill -9 mid-stream with messages queued in the broker meanwhile, bad payloads, a Sparkplug B edge
# node (Debian python3-paho-mqtt + python3-protobuf) (~15 s).
cybersyn_cc_test(NAME ingest_mqtt_test SRCS ingest_mqtt_test.cc
  DEPS cybersyn::ingest cybersyn::testing PkgConfig::MOSQUITTO KAFKA TIMEOUT 300)
if(TARGET ingest_mqtt_test)
  add_dependencies(ingest_mqtt_test cybersyn)
  # The Sparkplug edge client (tests/mqtt/) and schema (proto/third_party/) it runs.
  target_compile_definitions(ingest_mqtt_test PRIVATE CYBERSYN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
