# Input grammars shared by every source and the config: durations and byte sizes, event times,
# numbers, UTF-8 validity and text safe to print in messages.
cybersyn_cc_library(NAME grammar
  SRCS duration.cc time_grammar.cc number_grammar.cc utf8.cc safe_text.cc
  DEPS absl::time absl::strings absl::str_format absl::status absl::statusor)
cybersyn_cc_test(NAME duration_test SRCS duration_test.cc DEPS cybersyn::grammar)
cybersyn_cc_test(NAME time_grammar_test SRCS time_grammar_test.cc DEPS cybersyn::grammar)
cybersyn_cc_test(NAME number_grammar_test SRCS number_grammar_test.cc DEPS cybersyn::grammar)
cybersyn_cc_test(NAME utf8_test SRCS utf8_test.cc DEPS cybersyn::grammar)
cybersyn_cc_test(NAME safe_text_test SRCS safe_text_test.cc DEPS cybersyn::grammar)
