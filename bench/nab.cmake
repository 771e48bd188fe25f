# NAB benchmark: every detector over the Numenta Anomaly Benchmark, scored as `cybersyn
# backtest --labels` does, with NAB's published scoreboard beside (needs the NAB corpus: --nab).
cybersyn_cc_binary(NAME nab_bench SRCS nab_bench.cc DEPS cybersyn::evaluation cybersyn::detectors)
if(CYBERSYN_BUILD_TESTS)
  # Keeps the benchmark running in CI, which has no NAB corpus: one NAB file and HTM's results.
  set(nab_testdata ${PROJECT_SOURCE_DIR}/alerter/evaluation/testdata/nab)
  add_test(NAME nab_bench_smoke
    COMMAND nab_bench --nab ${nab_testdata} --labels ${nab_testdata}/windows.json --runs 1)
  set_tests_properties(nab_bench_smoke PROPERTIES LABELS "unit;quality" TIMEOUT 120
    PASS_REGULAR_EXPRESSION "re-scored +62\\.2 +62\\.2 +63\\.7")
endif()
