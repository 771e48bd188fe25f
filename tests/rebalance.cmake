# Cooperative rebalancing against the real broker: co-partitioned topics move together, and a
# static member killed mid-rebalance and restarted at once leaves nothing unowned (~15 s).
cybersyn_cc_test(NAME rebalance_test SRCS rebalance_test.cc
  DEPS cybersyn::kafka cybersyn::testing KAFKA TIMEOUT 300)
