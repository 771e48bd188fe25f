# RecordBatch decoding record by record: the aggregator salvages a partly bad batch, the gateway
# re-packs a batch the broker refuses.
cybersyn_cc_library(NAME batch_decode SRCS batch_decode.cc
  DEPS cybersyn::grammar cybersyn::proto absl::status absl::strings)
cybersyn_cc_test(NAME batch_decode_test SRCS batch_decode_test.cc DEPS cybersyn::batch_decode)
