#include "ingest/message_limit.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace cybersyn::ingest {
namespace {

size_t VarintBytes(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, ++n;
  return n;
}

size_t Delimited(size_t len) { return 1 + VarintBytes(len) + len; }

std::string OneDecimal(double v, const char* unit) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  std::string s = buf;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return absl::StrCat(s, " ", unit);
}

}  // namespace

uint64_t SingleRecordBatchBytes(const v1::Record& record, absl::string_view enterprise,
                                absl::string_view gateway_id) {
  const size_t sequence = record.sequence() == 0 ? 11 : 0;  // field 6 at its widest (10 bytes)
  const size_t r = record.ByteSizeLong() + sequence;
  return Delimited(enterprise.size()) + Delimited(gateway_id.size()) + Delimited(r) + 11;
}

std::string FormatMessageBytes(uint64_t bytes) {
  if (bytes < 1000) return absl::StrCat(bytes, " bytes");
  if (bytes < 999'950) return OneDecimal(static_cast<double>(bytes) / 1e3, "kB");
  return OneDecimal(static_cast<double>(bytes) / 1e6, "MB");
}

}  // namespace cybersyn::ingest
