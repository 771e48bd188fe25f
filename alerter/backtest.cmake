# The backtest runner behind `cybersyn backtest`: a detector over CSV files.
cybersyn_cc_library(NAME backtest SRCS backtest.cc
  DEPS cybersyn::detectors cybersyn::status absl::strings absl::status absl::statusor)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::detectors cybersyn::backtest)
cybersyn_cc_test(NAME backtest_test SRCS backtest_test.cc DEPS cybersyn::backtest)
