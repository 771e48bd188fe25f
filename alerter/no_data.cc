#include "alerter/no_data.h"

#include <algorithm>

namespace cybersyn::alerter {

int64_t NoDataAfterMs(absl::Duration expect_every, int64_t window_ms,
                      const AggregatorConfig& aggregator) {
  const int64_t earliest =
      window_ms + absl::ToInt64Milliseconds(aggregator.allowed_lateness + aggregator.grace +
                                            aggregator.idle_advance);
  return std::max(absl::ToInt64Milliseconds(expect_every), earliest);
}

}  // namespace cybersyn::alerter
