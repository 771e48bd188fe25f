# Gateway throughput vs a bare librdkafka producer (needs a running broker: --brokers).
cybersyn_cc_binary(NAME ingest_bench SRCS ingest_bench.cc
  DEPS cybersyn::ingest CLI11::CLI11 absl::str_format)
