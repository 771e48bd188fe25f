// libFuzzer target: the aggregator's side of a RecordBatch (aggregator/windows, aggregator/rollup).
// The input is the Kafka message value: decoded as v1::RecordBatch record by record (what the
// aggregator salvages of a partly bad batch, common/batch_decode.h), each record offered to the
// partition's windows (dedup, validation, window assignment), every window closed and the
// enterprise windows rolled up. Invariants: an applied record passed every validation; state
// written to the changelog loads back; a closed enterprise window is a valid roll-up input.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "aggregator/model.h"
#include "aggregator/rollup.h"
#include "aggregator/windows.h"
#include "common/batch_decode.h"
#include "cybersyn/v1/record.pb.h"
#include "fuzz/fuzz_env.h"

namespace cybersyn::fuzz {
namespace {

using aggregator::Emission;
using aggregator::Model;
using aggregator::Outcome;
using aggregator::StateChange;

void CheckApplied(const Model& model, const v1::Record& r, int key_enterprise, int64_t now) {
  const int node = model.NodeIndex(r.node());
  Check(node >= 0, "applied record with unknown node");
  Check(model.node(node).enterprise >= 0, "applied record above the enterprise level");
  Check(key_enterprise < 0 || model.node(node).enterprise == key_enterprise,
        "applied record outside its batch's enterprise");
  Check(model.IndicatorIndex(r.indicator()) >= 0, "applied record with unknown indicator");
  Check(std::isfinite(r.value()), "applied record with non-finite value");
  Check(r.event_time_ms() >= aggregator::kMinEventTimeMs &&
            r.event_time_ms() <= now + model.max_future_ms(),
        "applied record with time out of range");
}

template <typename State>
void CheckReloads(const Model& model, State& restored, std::vector<StateChange>& changes) {
  for (const StateChange& c : changes) {
    if (c.value.empty()) continue;  // a delete
    Check(restored.Load(c.key, c.value).ok(), "state written to the changelog does not load");
  }
}

}  // namespace
}  // namespace cybersyn::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cybersyn;
  using namespace cybersyn::fuzz;
  static const aggregator::Model* model = new aggregator::Model(FuzzConfig());
  v1::RecordBatch batch;
  std::vector<BadRecord> bad;
  const absl::string_view wire(reinterpret_cast<const char*>(data), size);
  if (!DecodeRecordBatch(wire, &batch, &bad).ok()) return 0;
  int last = -1;
  for (const BadRecord& b : bad) {
    Check(b.index > last, "bad records out of order");
    Check(!b.reason.empty(), "a bad record without a reason");
    Check(b.wire.data() >= wire.data() && b.wire.end() <= wire.end(), "bad bytes outside input");
    last = b.index;
  }
  v1::RecordBatch whole;
  if (whole.ParseFromArray(data, static_cast<int>(size))) {
    Check(bad.empty() && whole.records_size() == batch.records_size(),
          "a batch protobuf parses whole lost records");
  }

  const int64_t now = kFuzzNowMs;
  aggregator::PartitionWindows windows(model, now);
  const int key_enterprise = batch.enterprise().empty() ? -1 : model->NodeIndex(batch.enterprise());
  for (const v1::Record& r : batch.records()) {
    if (windows.Offer(batch.gateway_id(), r, key_enterprise, now) ==
        aggregator::Outcome::kApplied) {
      CheckApplied(*model, r, key_enterprise, now);
    }
  }
  std::vector<aggregator::StateChange> changes;
  windows.TakeChanges(&changes);
  aggregator::PartitionWindows restored(model, now);
  CheckReloads(*model, restored, changes);

  // An idle, caught-up partition a day later closes every window (times are <= now + max_future).
  std::vector<aggregator::Emission> closed;
  const int64_t later = now + 86'400'000;
  windows.AdvanceIdle(later, /*caught_up=*/true, &closed);
  Check(windows.open_windows() == 0, "windows left open after the watermark passed them");
  aggregator::RollupWindows rollup(model);
  std::vector<aggregator::Emission> up;
  for (const aggregator::Emission& e : closed) {
    Check(model->NodeIndex(e.aggregate.series().node()) >= 0, "emission for an unknown node");
    if (e.rollup_parent.empty()) continue;
    absl::Status s = rollup.Offer(e.aggregate, later, &up);
    Check(s.ok(), "a closed enterprise window is rejected by the roll-up");
  }
  rollup.Tick(later + 86'400'000, &up);
  changes.clear();
  rollup.TakeChanges(&changes);
  aggregator::RollupWindows rollup_restored(model);
  CheckReloads(*model, rollup_restored, changes);
  return 0;
}
