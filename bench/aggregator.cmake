# Aggregator throughput (exactly-once vs at-least-once vs parse-only) against the real broker.
if(TARGET cybersyn_aggregator AND TARGET cybersyn_ingest_sim)
  cybersyn_cc_binary(NAME aggregator_bench SRCS aggregator_bench.cc
    DEPS cybersyn::aggregator cybersyn::ingest_sim cybersyn::config absl::cleanup)
endif()
# Incremental rebalancing: 2 -> 3 -> 2 aggregators under a steady input (real broker).
if(TARGET cybersyn_aggregator AND TARGET cybersyn_ingest_sim)
  cybersyn_cc_binary(NAME rebalance_bench SRCS rebalance_bench.cc
    DEPS cybersyn::aggregator cybersyn::ingest_sim cybersyn::config)
endif()
