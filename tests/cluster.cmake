# Network and cluster faults (tests/cluster/). The fault-injecting TCP proxy is checked on every
# run (seconds). The cluster fault tests (a 3-broker cluster, six scenarios under load, ~15 min on
# a quiet 2-core machine) are too slow for CI: configure with -DCYBERSYN_CLUSTER_TESTS=ON and run
# `ctest -L cluster`, or run tests/cluster/cluster_faults.py directly (docs/operations.md).
add_test(NAME fault_proxy_test COMMAND python3 ${PROJECT_SOURCE_DIR}/tests/cluster/fault_proxy_test.py)
set_tests_properties(fault_proxy_test PROPERTIES LABELS "unit" TIMEOUT 60)
option(CYBERSYN_CLUSTER_TESTS "register the slow 3-broker cluster fault tests (label cluster)" OFF)
if(CYBERSYN_CLUSTER_TESTS)
  add_test(NAME cluster_faults
    COMMAND python3 ${PROJECT_SOURCE_DIR}/tests/cluster/cluster_faults.py --cybersyn $<TARGET_FILE:cybersyn>)
  set_tests_properties(cluster_faults PROPERTIES LABELS "cluster" TIMEOUT 3600 RUN_SERIAL TRUE)
endif()
