# The aggregator against the real broker: in-process correctness, late/duplicate, poison input;
# and the crash/scale-out tests that kill -9 the real `cybersyn aggregator` binary.
if(TARGET cybersyn_aggregator)
  # ~15 s a test under ASan (label fast: the CI's ASan+UBSan step runs it too).
  cybersyn_cc_test(NAME aggregator_test SRCS aggregator_test.cc
    DEPS cybersyn::aggregator cybersyn::testing LABELS fast KAFKA TIMEOUT 300)
endif()
if(TARGET cybersyn_aggregator)
  cybersyn_cc_test(NAME aggregator_crash_test SRCS aggregator_crash_test.cc
    DEPS cybersyn::aggregator cybersyn::config cybersyn::testing KAFKA TIMEOUT 600)
  # Runs the real binary ${CYBERSYN_BINARY_DIR}/cli/cybersyn (or $CYBERSYN_AGGREGATOR_BIN): build
  # the `cybersyn` target first.
endif()
if(TARGET aggregator_crash_test AND TARGET cybersyn)
  add_dependencies(aggregator_crash_test cybersyn)  # it runs the real binary
endif()
