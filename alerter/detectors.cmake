# Detectors (cyberstride and its baselines) and the backtest runner behind `cybersyn backtest`.
cybersyn_cc_library(NAME detectors
  SRCS detector.cc cyberstride.cc ewma.cc cusum.cc bocpd.cc threshold.cc
       internal/detector_util.cc
  DEPS cybersyn::status absl::strings absl::status absl::statusor absl::flat_hash_map)
cybersyn_cc_library(NAME backtest SRCS backtest.cc
  DEPS cybersyn::detectors cybersyn::status absl::strings absl::status absl::statusor)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::detectors cybersyn::backtest)

# Synthetic series shared by the detector tests and the quality harness.
cybersyn_cc_library(NAME detector_testing SRCS internal/synthetic.cc DEPS cybersyn::detectors)

cybersyn_cc_test(NAME detector_test SRCS detector_test.cc
  DEPS cybersyn::detectors cybersyn::detector_testing)
cybersyn_cc_test(NAME cyberstride_test SRCS cyberstride_test.cc
  DEPS cybersyn::detectors cybersyn::detector_testing)
cybersyn_cc_test(NAME baselines_test SRCS ewma_test.cc cusum_test.cc bocpd_test.cc threshold_test.cc
  DEPS cybersyn::detectors cybersyn::detector_testing)
cybersyn_cc_test(NAME backtest_test SRCS backtest_test.cc DEPS cybersyn::backtest)
