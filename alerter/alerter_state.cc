#include "alerter/alerter_state.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace cybersyn::alerter {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;
using google::protobuf::io::StringOutputStream;

constexpr char kLegacySeriesVersion = '\x01';

absl::StatusOr<v1::AlerterSeriesState> DecodeLegacySeries(absl::string_view bytes) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()) + 1,
                      static_cast<int>(bytes.size()) - 1);
  uint64_t windows = 0, start = 0, arrival = 0, raised = 0;
  if (!in.ReadVarint64(&windows) || !in.ReadVarint64(&start) || !in.ReadVarint64(&arrival) ||
      !in.ReadVarint64(&raised)) {
    return absl::DataLossError("series state (version 1): truncated header");
  }
  v1::AlerterSeriesState s;
  s.set_windows(windows);
  s.set_last_window_start_ms(WireFormatLite::ZigZagDecode64(start));
  s.set_last_arrival_ms(WireFormatLite::ZigZagDecode64(arrival));
  s.set_no_data_raised_for_ms(WireFormatLite::ZigZagDecode64(raised));
  s.set_detector(std::string(bytes.substr(1 + in.CurrentPosition())));
  return s;
}

absl::StatusOr<OpenSignal> DecodeLegacyOpenSignal(absl::string_view bytes) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  uint32_t n = 0;
  if (!in.ReadVarint32(&n)) return absl::DataLossError("open signal (version 1): bad counter");
  OpenSignal s;
  s.normal_windows = static_cast<int>(std::min<uint32_t>(n, 1u << 30));
  const absl::string_view rest = bytes.substr(in.CurrentPosition());
  if (!s.signal.ParseFromArray(rest.data(), static_cast<int>(rest.size())) ||
      s.signal.id().empty()) {
    return absl::DataLossError("open signal (version 1): bad Signal bytes");
  }
  return s;
}

}  // namespace

std::string EncodeSeriesState(const v1::AlerterSeriesState& s) { return s.SerializeAsString(); }

absl::StatusOr<v1::AlerterSeriesState> DecodeSeriesState(absl::string_view bytes, bool* legacy) {
  if (legacy != nullptr) *legacy = false;
  if (bytes.empty()) return absl::DataLossError("series state: empty");
  if (bytes[0] == kLegacySeriesVersion) {
    if (legacy != nullptr) *legacy = true;
    return DecodeLegacySeries(bytes);
  }
  v1::AlerterSeriesState s;
  if (!s.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) || s.windows() == 0) {
    return absl::DataLossError("series state: not an AlerterSeriesState");
  }
  return s;
}

std::string EncodeOpenSignal(const OpenSignal& s) {
  v1::OpenSignalState m;
  *m.mutable_signal() = s.signal;
  m.set_normal_windows(static_cast<uint32_t>(std::max(0, s.normal_windows)));
  return m.SerializeAsString();
}

absl::StatusOr<OpenSignal> DecodeOpenSignal(absl::string_view bytes, bool* legacy) {
  if (legacy != nullptr) *legacy = false;
  if (bytes.empty()) return absl::DataLossError("open signal: empty");
  // A message starts with its Signal (field 1, length-delimited: 0x0a) and holds nothing else
  // unknown; the older encoding starts with its counter (usually below 0x08, never a valid tag).
  if (static_cast<uint8_t>(bytes[0]) == 0x0a) {
    v1::OpenSignalState m;
    if (m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) &&
        !m.signal().id().empty() && m.GetReflection()->GetUnknownFields(m).empty()) {
      OpenSignal s;
      s.signal = std::move(*m.mutable_signal());
      s.normal_windows = static_cast<int>(std::min<uint32_t>(m.normal_windows(), 1u << 30));
      return s;
    }
  }
  auto s = DecodeLegacyOpenSignal(bytes);
  if (!s.ok()) return absl::DataLossError("open signal: neither an OpenSignalState nor version 1");
  if (legacy != nullptr) *legacy = true;
  return s;
}

std::string EncodeAppliedCommand(int64_t applied_at_ms) {
  v1::AppliedCommand m;
  m.set_applied_at_ms(std::max<int64_t>(1, applied_at_ms));  // (never an empty value)
  return m.SerializeAsString();
}

absl::StatusOr<int64_t> DecodeAppliedCommand(absl::string_view bytes, bool* legacy) {
  if (legacy != nullptr) *legacy = false;
  if (!bytes.empty() && std::all_of(bytes.begin(), bytes.end(), absl::ascii_isdigit)) {
    int64_t at = 0;
    if (!absl::SimpleAtoi(bytes, &at)) return absl::DataLossError("applied command: bad time");
    if (legacy != nullptr) *legacy = true;
    return at;
  }
  v1::AppliedCommand m;
  if (bytes.empty() || !m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("applied command: not an AppliedCommand");
  }
  return m.applied_at_ms();
}

std::string EncodeLegacySeriesStateForTest(const v1::AlerterSeriesState& s) {
  std::string out(1, kLegacySeriesVersion);
  {
    StringOutputStream stream(&out);
    CodedOutputStream o(&stream);
    o.WriteVarint64(s.windows());
    o.WriteVarint64(WireFormatLite::ZigZagEncode64(s.last_window_start_ms()));
    o.WriteVarint64(WireFormatLite::ZigZagEncode64(s.last_arrival_ms()));
    o.WriteVarint64(WireFormatLite::ZigZagEncode64(s.no_data_raised_for_ms()));
  }
  return absl::StrCat(out, s.detector());
}

std::string EncodeLegacyOpenSignalForTest(const OpenSignal& s) {
  std::string out;
  {
    StringOutputStream stream(&out);
    CodedOutputStream o(&stream);
    o.WriteVarint32(static_cast<uint32_t>(std::max(0, s.normal_windows)));
  }
  s.signal.AppendToString(&out);
  return out;
}

}  // namespace cybersyn::alerter
