#include "fuzz/record_source_fuzz.h"

#include <cmath>
#include <sstream>
#include <string>

#include "absl/strings/string_view.h"
#include "common/time_grammar.h"
#include "common/utf8.h"
#include "fuzz/fuzz_env.h"

namespace cybersyn::fuzz {
namespace {

void CheckAccepted(const Config& config, const v1::Record& r, const Hierarchy::Node* enterprise) {
  Check(enterprise != nullptr, "accepted record without enterprise");
  const Hierarchy::Node* node = config.hierarchy->Find(r.node());
  Check(node != nullptr, "accepted record with unknown node");
  Check(node->enterprise == enterprise, "accepted record's enterprise is not its node's");
  bool known = false;
  for (const IndicatorConfig& i : config.indicators) known |= i.name == r.indicator();
  Check(known, "accepted record with unknown indicator");
  Check(std::isfinite(r.value()), "accepted record with non-finite value");
  Check(r.labels_size() <= config.gateway.max_labels, "accepted record over max_labels");
  for (const auto& [k, v] : r.labels()) {
    Check(!k.empty(), "accepted record with empty label key");
    Check(IsValidUtf8(k) && IsValidUtf8(v), "accepted label that is not UTF-8");
  }
  Check(IsValidUtf8(r.node()) && IsValidUtf8(r.indicator()), "accepted string that is not UTF-8");
  TimeBounds bounds;
  bounds.min_ms = config.gateway.min_time_ms;
  bounds.max_age = config.gateway.max_age;
  bounds.max_future = config.gateway.max_future;
  Check(!CheckEventTime(r.event_time_ms(), TimeForm::kRfc3339, bounds, kFuzzNowMs).has_value(),
        "accepted record with a time out of range");
}

void CheckRejected(const ingest::RecordError& err) {
  Check(!err.reason.empty(), "rejection without reason");
  Check(!err.field.empty(), "rejection without field");
  Check(!err.problem.empty(), "rejection without problem");
  // Safe to print: no control character of the input reaches the terminal.
  for (const char c : err.ToString()) {
    const auto u = static_cast<unsigned char>(c);
    Check(u >= 0x20 && u != 0x7f, "control character in a rejection message");
  }
}

}  // namespace

void FuzzRecordSource(ingest::InputFormat format, const uint8_t* data, size_t size) {
  const std::shared_ptr<const Config> config = FuzzConfig();
  static const ingest::RecordValidator* validator =
      new ingest::RecordValidator(*config, FuzzClock());
  const std::string text(reinterpret_cast<const char*>(data), size);

  std::istringstream in(text);
  auto source = ingest::StreamSource(format, &in, "fuzz", validator);
  v1::Record record;
  const Hierarchy::Node* enterprise = nullptr;
  ingest::RecordError err;
  int64_t last_line = 0;
  for (size_t n = 0; n <= size + 1; ++n) {  // every call consumes >= 1 line: bounded
    enterprise = nullptr;
    const auto r = source->Next(&record, &enterprise, &err);
    if (r == ingest::RecordSource::Result::kEnd) break;
    if (r == ingest::RecordSource::Result::kRecord) {
      CheckAccepted(*config, record, enterprise);
    } else {
      CheckRejected(err);
      Check(err.line > last_line, "rejection line numbers do not increase");
      last_line = err.line;
    }
  }

  // The whole input as one line (the gRPC path hands single lines to the parser directly).
  ingest::RecordError one;
  v1::Record single;
  const absl::string_view line(text);
  const Hierarchy::Node* ent = format == ingest::InputFormat::kCsv
                                   ? ingest::ParseCsvLine(line, *validator, &single, &one)
                                   : ingest::ParseJsonLine(line, *validator, &single, &one);
  if (ent != nullptr) {
    CheckAccepted(*config, single, ent);
  } else {
    CheckRejected(one);
  }
}

}  // namespace cybersyn::fuzz
