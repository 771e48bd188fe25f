# Detector benchmarks (ns per Update, plain EWMA as the baseline in the same run) and the
# detection-quality harness (a binary; a short smoke run is a ctest test when tests are on).
cybersyn_cc_binary(NAME detector_bench SRCS detector_bench.cc
  DEPS cybersyn::detectors cybersyn::detector_testing benchmark::benchmark)
# --hierarchy: the simulator over a hierarchy through the aggregator and the alerter on an
# embedded broker, scored against its ground truth (hierarchy_mode.h).
cybersyn_cc_library(NAME hierarchy_score SRCS hierarchy_score.cc
  DEPS cybersyn::config cybersyn::proto)
cybersyn_cc_test(NAME hierarchy_score_test SRCS hierarchy_score_test.cc
  DEPS cybersyn::hierarchy_score)
cybersyn_cc_binary(NAME quality_harness SRCS quality_harness.cc hierarchy_mode.cc
  hierarchy_run.cc
  DEPS cybersyn::detectors cybersyn::detector_testing cybersyn::hierarchy_score
       cybersyn::aggregator cybersyn::alerts_service cybersyn::ingest cybersyn::observability)
cybersyn_embed_text(quality_harness ${PROJECT_SOURCE_DIR}/deploy/examples/demo.yaml DemoConfigYaml)
target_compile_definitions(quality_harness PRIVATE CYBERSYN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
if(CYBERSYN_BUILD_TESTS)
  add_test(NAME quality_harness_smoke
    COMMAND quality_harness --synthetic-only --series 10 --sweep 0.3,0.5,0.7,0.9)
  set_tests_properties(quality_harness_smoke PROPERTIES LABELS "unit;quality" TIMEOUT 120)
endif()
