# Detectors: cyberstride and its baselines, behind the Detector interface (detector.h).
cybersyn_cc_library(NAME detectors
  SRCS detector.cc cyberstride.cc ewma.cc cusum.cc bocpd.cc threshold.cc calibration.cc seasonal.cc
       internal/detector_util.cc
  DEPS cybersyn::proto cybersyn::status absl::strings absl::status absl::statusor
       absl::flat_hash_map)

# Synthetic series shared by the detector tests and the quality harness.
cybersyn_cc_library(NAME detector_testing SRCS internal/synthetic.cc DEPS cybersyn::detectors)

cybersyn_cc_test(NAME detector_test SRCS detector_test.cc
  DEPS cybersyn::detectors cybersyn::detector_testing)
cybersyn_cc_test(NAME cyberstride_test SRCS cyberstride_test.cc
  DEPS cybersyn::detectors cybersyn::detector_testing)
cybersyn_cc_test(NAME baselines_test SRCS ewma_test.cc cusum_test.cc bocpd_test.cc threshold_test.cc
  DEPS cybersyn::detectors cybersyn::detector_testing)
cybersyn_cc_test(NAME calibration_test SRCS calibration_test.cc
  DEPS cybersyn::detectors cybersyn::detector_testing)
cybersyn_cc_test(NAME shapes_test SRCS shapes_test.cc
  DEPS cybersyn::detectors cybersyn::detector_testing)
