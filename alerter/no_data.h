// When a series counts as silent (no-data signals).
//
// `expect_every` (indicators[].expect_every) says how often a plant reports, but a series of
// window size W cannot deliver a closed window more often than every W, and each window reaches
// the alerter only after the aggregator's allowed lateness and grace (plus, above the
// enterprise, the roll-up's idle_advance wait for children that never report). A 1m series with
// expect_every 30s therefore looked silent after every window: in `cybersyn demo` every 1m
// output series raised a no-data signal 30 s after the fast replay ended and the windows came at
// their real-time pace (the burst at the replay -> live switch).
//
// Thread-safety: pure function.
#ifndef CYBERSYN_ALERTER_NO_DATA_H_
#define CYBERSYN_ALERTER_NO_DATA_H_

#include <cstdint>

#include "absl/time/time.h"
#include "common/config.h"

namespace cybersyn::alerter {

// Milliseconds of processing time without a closed window after which a series of `window_ms`
// is silent: max(expect_every, window + allowed_lateness + grace + idle_advance).
// REQUIRES: expect_every set.
int64_t NoDataAfterMs(absl::Duration expect_every, int64_t window_ms,
                      const AggregatorConfig& aggregator);

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_NO_DATA_H_
