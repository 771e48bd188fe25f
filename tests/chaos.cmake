# The chaos soak (tests/chaos/soak.py), CI-sized: 2 minutes of simulated load on the `cybersyn`
# roles (1 gateway, 2 aggregators, 2 alerters) against a real broker of its own (the script
# restarts it, so not the shared fixture's), with kill -9 of every role, a broker restart and a
# stall past the session timeout; then a fault-free reference run and the comparison. About 7
# minutes in all (broker start, 2 min of load, the last windows' lateness, the reference run).
# The 10-minute soak: tests/chaos/soak.py --binary build/cli/cybersyn --duration 600
add_test(NAME chaos_soak_2min
  COMMAND python3 ${PROJECT_SOURCE_DIR}/tests/chaos/soak.py --binary $<TARGET_FILE:cybersyn>
          --duration 120 --seed 1 --faults-per-day 800 --work-dir ${PROJECT_BINARY_DIR}/chaos-soak)
set_tests_properties(chaos_soak_2min PROPERTIES LABELS "chaos;kafka" TIMEOUT 1200 RUN_SERIAL TRUE)
