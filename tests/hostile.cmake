# Hostile clients over real sockets: the Alerts gRPC server (real broker behind it) and the HTTP
# endpoint under oversized, malformed and flooding requests. ~15 s (also under ASan: label fast).
cybersyn_cc_test(NAME hostile_clients_test SRCS hostile_clients_test.cc
  DEPS cybersyn::alerts_service cybersyn::observability cybersyn::kafka cybersyn::testing
       cybersyn_httplib LABELS fast KAFKA TIMEOUT 120)
