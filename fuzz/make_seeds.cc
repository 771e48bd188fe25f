// Writes the binary seed corpora of the fuzz targets (record_batch, changelog, command) into
// DIR/<target>/ using the real encoders, so seeds stay valid when the formats change:
//   ninja -C BUILD fuzz_seeds && BUILD/fuzz/fuzz_seeds fuzz/corpus
// Text seeds (csv_line, jsonl_line, config) are plain files kept by hand.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "aggregator/model.h"
#include "aggregator/rollup.h"
#include "aggregator/windows.h"
#include "alerter/alerter_state.h"
#include "alerter/signal_book.h"
#include "cybersyn/v1/command.pb.h"
#include "cybersyn/v1/record.pb.h"
#include "fuzz/fuzz_env.h"

namespace cybersyn::fuzz {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

v1::Record Rec(const std::string& node, const std::string& indicator, double value, int64_t t,
               uint64_t seq) {
  v1::Record r;
  r.set_node(node);
  r.set_indicator(indicator);
  r.set_value(value);
  r.set_event_time_ms(t);
  r.set_sequence(seq);
  return r;
}

std::vector<v1::RecordBatch> Batches() {
  const int64_t t = kFuzzNowMs - 30'000;
  std::vector<v1::RecordBatch> out;
  v1::RecordBatch good;
  good.set_enterprise("cl/textiles/yarur");
  good.set_gateway_id("gw-1");
  uint64_t seq = 1;
  for (const char* unit : {"cl/textiles/yarur/spinning", "cl/textiles/yarur/weaving"}) {
    for (const char* ind : {"output", "capacity", "temp", "level"}) {
      for (int i = 0; i < 3; ++i)
        *good.add_records() = Rec(unit, ind, 10 + i, t + i * 7'000, seq++);
    }
  }
  (*good.mutable_records(0)->mutable_labels())["shift"] = "night";
  out.push_back(good);
  v1::RecordBatch bad = good;  // duplicates, then one of every rejection
  bad.clear_records();
  *bad.add_records() = Rec("cl/textiles/yarur/spinning", "output", 1, t, 5);
  *bad.add_records() = Rec("cl/textiles/yarur/spinning", "output", 1, t, 5);  // duplicate
  *bad.add_records() = Rec("cl/textiles/nope/x", "output", 1, t, 6);
  *bad.add_records() = Rec("cl/textiles", "output", 1, t, 7);               // above enterprise
  *bad.add_records() = Rec("cl/mining/chuqui/smelter", "output", 1, t, 8);  // wrong enterprise
  *bad.add_records() = Rec("cl/textiles/yarur/spinning", "speed", 1, t, 9);
  *bad.add_records() =
      Rec("cl/textiles/yarur/spinning", "output", std::numeric_limits<double>::quiet_NaN(), t, 10);
  *bad.add_records() = Rec("cl/textiles/yarur/spinning", "output", 1, 5, 11);
  *bad.add_records() = Rec("cl/textiles/yarur/spinning", "output", 1, t + 3'600'000, 12);
  *bad.add_records() = Rec("cl/textiles/yarur/spinning", "output", 1, t + 120'000, 13);
  *bad.add_records() = Rec("cl/textiles/yarur/spinning", "output", 1, t - 120'000, 14);  // late
  out.push_back(bad);
  v1::RecordBatch unkeyed;  // no enterprise key, per-record gateway ids, extreme values
  *unkeyed.add_records() = Rec("cl/mining/teniente/extraction", "temp", 1e308, t, 1);
  *unkeyed.add_records() = Rec("cl/mining/teniente/extraction", "temp", 1e308, t + 1, 2);
  *unkeyed.add_records() = Rec("cl/mining/teniente/smelter", "level", -1e308, t, 3);
  unkeyed.mutable_records(2)->set_gateway_id("gw-2");
  out.push_back(unkeyed);
  return out;
}

std::string Entry(char selector, const std::string& key, const std::string& value) {
  return std::string(1, selector) + key + "\n" + value;
}

void Run(const fs::path& root) {
  const std::shared_ptr<const Config> config = FuzzConfig();
  const aggregator::Model model(config);
  const std::vector<v1::RecordBatch> batches = Batches();
  int i = 0;
  for (const v1::RecordBatch& b : batches) {
    Write(root / "record_batch", "batch-" + std::to_string(i++), b.SerializeAsString());
  }

  // Changelog: aggregator windows ("w/..." and "p"), roll-up parents ("r/..."), open signals.
  aggregator::PartitionWindows windows(&model, kFuzzNowMs);
  for (const v1::RecordBatch& b : batches) {
    const int ke = b.enterprise().empty() ? -1 : model.NodeIndex(b.enterprise());
    for (const v1::Record& r : b.records()) windows.Offer(b.gateway_id(), r, ke, kFuzzNowMs);
  }
  std::vector<aggregator::StateChange> changes;
  windows.TakeChanges(&changes);
  std::vector<aggregator::Emission> closed;
  windows.AdvanceIdle(kFuzzNowMs + 600'000, true, &closed);
  aggregator::RollupWindows rollup(&model);
  std::vector<aggregator::Emission> up;
  for (const aggregator::Emission& e : closed) {
    if (!e.rollup_parent.empty()) (void)rollup.Offer(e.aggregate, kFuzzNowMs + 600'000, &up);
  }
  std::vector<aggregator::StateChange> rchanges;
  rollup.TakeChanges(&rchanges);
  i = 0;
  for (const auto& c : changes) {
    if (!c.value.empty() && i < 12)
      Write(root / "changelog", "windows-" + std::to_string(i++), Entry('\0', c.key, c.value));
  }
  i = 0;
  for (const auto& c : rchanges) {
    if (!c.value.empty() && i < 6)
      Write(root / "changelog", "rollup-" + std::to_string(i++), Entry('\1', c.key, c.value));
  }
  alerter::SignalBook book(config->hierarchy, alerter::SignalBookOptions{});
  std::vector<std::string> ids;
  for (const char* node : {"cl/textiles/yarur/spinning", "cl/textiles/sumar", "cl/mining"}) {
    alerter::Detection d;
    d.series.set_node(node);
    d.series.set_indicator("output");
    d.series.set_window_ms(10'000);
    d.kind = v1::SIGNAL_KIND_STEP;
    d.window_start_ms = kFuzzNowMs - 120'000;
    book.OnDetection(d, kFuzzNowMs - 60'000);
  }
  book.Tick(kFuzzNowMs);
  i = 0;
  for (const auto& [id, s] : book.open()) {
    Write(root / "changelog", "signal-" + std::to_string(i++),
          std::string(1, '\2') + alerter::EncodeOpenSignal(s));
  }

  // Commands: every kind, in and out of scope, forged scopes, unknown operators and tokens.
  struct C {
    const char* header;
    v1::CommandKind kind;
    const char* signal;
    const char* op;
    const char* scope;
    int64_t silence_ms;
  };
  const C cmds[] = {
      {"Bearer tok-tex", v1::COMMAND_KIND_ACKNOWLEDGE, "#0", "textiles", "cl/textiles", 0},
      {"Bearer tok-tex", v1::COMMAND_KIND_RESOLVE, "#1", "textiles", "cl/textiles", 0},
      {"Bearer tok-yarur", v1::COMMAND_KIND_SILENCE, "#2", "yarur", "cl/textiles/yarur", 600'000},
      {"bearer  tok-cl ", v1::COMMAND_KIND_UNSILENCE, "#3", "planning", "", 0},
      {"Bearer tok-yarur", v1::COMMAND_KIND_RESOLVE, "#4", "yarur", "cl", 0},  // forged scope
      {"Bearer nope", v1::COMMAND_KIND_ACKNOWLEDGE, "#0", "nobody", "cl", 0},
      {"Basic dG9rLWNs", v1::COMMAND_KIND_UNSPECIFIED, "sig-0000000000000000", "planning", "cl/x",
       -5},
  };
  i = 0;
  for (const C& c : cmds) {
    v1::Command cmd;
    cmd.set_id("cmd-" + std::to_string(i));
    cmd.set_kind(c.kind);
    cmd.set_signal_id(c.signal);
    cmd.set_operator_id(c.op);
    cmd.set_operator_scope(c.scope);
    cmd.set_reason("crew on site");
    cmd.set_silence_for_ms(c.silence_ms);
    cmd.set_issued_at_ms(kFuzzNowMs);
    cmd.set_signal_node("cl/textiles/yarur/spinning");
    Write(root / "command", "cmd-" + std::to_string(i++),
          std::string(c.header) + "\n" + cmd.SerializeAsString());
  }
}

}  // namespace
}  // namespace cybersyn::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (e.g. fuzz/corpus)\n", argv[0]);
    return 2;
  }
  cybersyn::fuzz::Run(argv[1]);
  std::printf("seeds written under %s\n", argv[1]);
  return 0;
}
