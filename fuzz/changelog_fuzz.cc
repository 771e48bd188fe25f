// libFuzzer target: decoding of state changelog records, the entries a restarting aggregator or
// alerter replays from Kafka into RocksDB and loads (aggregator/windows, aggregator/rollup,
// alerter/signal_book). Input: one selector byte, then for the aggregator "<key>\n<value>", for
// the alerter the open-signal value. A loaded entry must then be usable: windows close and emit,
// roll-ups publish, signals tick and re-encode to what was decoded.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "aggregator/model.h"
#include "aggregator/rollup.h"
#include "aggregator/windows.h"
#include "alerter/alerter_state.h"
#include "alerter/signal_book.h"
#include "fuzz/fuzz_env.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cybersyn;
  using namespace cybersyn::fuzz;
  static const aggregator::Model* model = new aggregator::Model(FuzzConfig());
  if (size == 0) return 0;
  const int selector = data[0] % 3;
  absl::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const int64_t now = kFuzzNowMs;
  const int64_t later = now + 86'400'000;

  if (selector == 2) {
    auto s = alerter::DecodeOpenSignal(in);
    if (!s.ok()) return 0;
    const std::string again = alerter::EncodeOpenSignal(*s);
    auto back = alerter::DecodeOpenSignal(again);
    Check(back.ok(), "a re-encoded open signal does not decode");
    Check(back->signal.SerializeAsString() == s->signal.SerializeAsString(),
          "open signal changed across encode/decode");
    alerter::SignalBook book(FuzzConfig()->hierarchy, alerter::SignalBookOptions{});
    book.Restore(*std::move(s));
    book.Tick(now);
    book.Tick(later);
    book.TakeDirty();
    return 0;
  }

  const size_t nl = in.find('\n');
  if (nl == absl::string_view::npos) return 0;
  const absl::string_view key = in.substr(0, nl);
  const absl::string_view value = in.substr(nl + 1);
  std::vector<aggregator::Emission> out;
  std::vector<aggregator::StateChange> changes;
  if (selector == 0) {
    aggregator::PartitionWindows windows(model, now);
    if (!windows.Load(key, value).ok()) return 0;
    windows.AdvanceIdle(later, /*caught_up=*/true, &out);
    windows.TakeChanges(&changes);
  } else {
    aggregator::RollupWindows rollup(model);
    if (!rollup.Load(key, value).ok()) return 0;
    rollup.Tick(later, &out);
    rollup.TakeChanges(&changes);
  }
  for (const aggregator::Emission& e : out) {
    Check(model->NodeIndex(e.aggregate.series().node()) >= 0, "emission for an unknown node");
  }
  return 0;
}
