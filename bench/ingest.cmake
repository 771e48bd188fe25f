# Gateway throughput vs a bare librdkafka producer (needs a running broker: --brokers).
cybersyn_cc_binary(NAME ingest_bench SRCS ingest_bench.cc
  DEPS cybersyn::ingest CLI11::CLI11 absl::str_format absl::cleanup)
# The simulator source alone (simulate + validate, ns/record) vs replaying its records from memory.
cybersyn_cc_binary(NAME sim_source_bench SRCS sim_source_bench.cc
  DEPS cybersyn::ingest benchmark::benchmark)
