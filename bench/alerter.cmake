# Alerter end to end (throughput, window-close -> watcher latency, state per series) against the
# real broker.
if(TARGET cybersyn_alerts_service)
  cybersyn_cc_binary(NAME alerter_bench SRCS alerter_bench.cc
    DEPS cybersyn::alerts_service cybersyn::kafka cybersyn::config cybersyn::observability gRPC::grpc++)
endif()
