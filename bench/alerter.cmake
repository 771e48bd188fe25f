# Alerter end to end (throughput, window commit -> watcher latency with an in-process aggregator,
# state per series) against the real broker.
if(TARGET cybersyn_alerts_service AND TARGET cybersyn_aggregator)
  cybersyn_cc_binary(NAME alerter_bench SRCS alerter_bench.cc
    DEPS cybersyn::alerts_service cybersyn::aggregator cybersyn::kafka cybersyn::config
         cybersyn::observability gRPC::grpc++)
endif()
