# Scoring detections against labelled anomaly windows (NAB's rules) and corpus backtests, behind
# `cybersyn backtest --labels` and bench/nab_bench.
cybersyn_cc_library(NAME evaluation
  SRCS evaluation/nab_score.cc evaluation/labels.cc evaluation/corpus.cc evaluation/evaluate.cc
       evaluation/report.cc
  DEPS cybersyn::backtest cybersyn::detectors cybersyn::status nlohmann_json::nlohmann_json
       absl::strings absl::str_format absl::status absl::statusor Threads::Threads)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::evaluation)

cybersyn_cc_test(NAME evaluation_test
  SRCS evaluation/nab_score_test.cc evaluation/labels_test.cc evaluation/corpus_test.cc
  DEPS cybersyn::evaluation)
