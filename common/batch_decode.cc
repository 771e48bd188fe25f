#include "common/batch_decode.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace cybersyn {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

// Reads one length-delimited field's bytes (the tag was read). False at a broken length.
bool ReadBytes(CodedInputStream& in, absl::string_view whole, absl::string_view* out) {
  uint32_t len = 0;
  if (!in.ReadVarint32(&len)) return false;
  const int at = in.CurrentPosition();
  if (len > whole.size() - static_cast<size_t>(at)) return false;
  *out = whole.substr(static_cast<size_t>(at), len);
  return in.Skip(static_cast<int>(len));
}

// Checks a label map entry's key and value.
std::string LabelProblem(absl::string_view entry) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(entry.data()),
                      static_cast<int>(entry.size()));
  while (uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if ((field == 1 || field == 2) &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      absl::string_view s;
      if (!ReadBytes(in, entry, &s)) return "malformed record";
      if (!IsValidUtf8(s)) {
        return field == 1 ? "invalid UTF-8 in a label key" : "invalid UTF-8 in a label value";
      }
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return "malformed record";
    }
  }
  return in.ConsumedEntireMessage() ? "" : "malformed record";
}

// Why the wire bytes of a Record are not valid (strings not UTF-8, broken framing), or "".
std::string WireProblem(absl::string_view wire) {
  static constexpr const char* kStringFields[] = {nullptr, "node",  "indicator",
                                                  nullptr, nullptr, "gateway_id"};
  CodedInputStream in(reinterpret_cast<const uint8_t*>(wire.data()), static_cast<int>(wire.size()));
  while (uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const bool delimited =
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if (delimited && (field == 1 || field == 2 || field == 5 || field == 7)) {
      absl::string_view s;
      if (!ReadBytes(in, wire, &s)) return "malformed record";
      if (field == 7) {
        if (std::string p = LabelProblem(s); !p.empty()) return p;
      } else if (!IsValidUtf8(s)) {
        return absl::StrCat("invalid UTF-8 in ", kStringFields[field]);
      }
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return "malformed record";
    }
  }
  return in.ConsumedEntireMessage() ? "" : "malformed record";
}

}  // namespace

std::string RecordProblem(absl::string_view wire) {
  if (std::string p = WireProblem(wire); !p.empty()) return p;
  v1::Record r;
  return r.ParseFromArray(wire.data(), static_cast<int>(wire.size())) ? "" : "malformed record";
}

absl::Status DecodeRecordBatch(absl::string_view wire, v1::RecordBatch* batch,
                               std::vector<BadRecord>* bad) {
  bad->clear();
  if (batch->ParseFromArray(wire.data(), static_cast<int>(wire.size()))) return absl::OkStatus();
  // The slow path: field by field. Records already in `batch` are reused as the parse does.
  auto* records = batch->mutable_records();
  int kept = 0;
  batch->clear_enterprise();
  batch->clear_gateway_id();
  batch->clear_produced_at_ms();
  CodedInputStream in(reinterpret_cast<const uint8_t*>(wire.data()), static_cast<int>(wire.size()));
  int index = 0;
  bool framing_broken = false;  // the rest could not be split into fields
  int at = 0;                   // where the field being read starts
  auto header_error = [&](absl::string_view what) {
    records->DeleteSubrange(kept, records->size() - kept);
    return absl::InvalidArgumentError(absl::StrCat("RecordBatch: ", what, " at byte ", at));
  };
  while (true) {
    at = in.CurrentPosition();
    const uint32_t tag = in.ReadTag();
    if (tag == 0) {
      if (!in.ConsumedEntireMessage() && static_cast<size_t>(at) < wire.size()) {
        bad->push_back({index, absl::StrCat("unreadable bytes from byte ", at, " on"),
                        wire.substr(static_cast<size_t>(at))});
        framing_broken = true;
      }
      break;
    }
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const auto type = WireFormatLite::GetTagWireType(tag);
    if ((field == 1 || field == 2) && type == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      absl::string_view s;
      if (!ReadBytes(in, wire, &s)) return header_error("broken length");
      if (!IsValidUtf8(s)) {
        return header_error(field == 1 ? "invalid UTF-8 in enterprise"
                                       : "invalid UTF-8 in gateway_id");
      }
      if (field == 1) {
        batch->set_enterprise(std::string(s));
      } else {
        batch->set_gateway_id(std::string(s));
      }
    } else if (field == 3 && type == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      absl::string_view r;
      if (!ReadBytes(in, wire, &r)) {
        // The framing is broken here: the rest cannot be split into records.
        bad->push_back({index, absl::StrCat("record cut short or framing broken at byte ", at),
                        wire.substr(static_cast<size_t>(at))});
        framing_broken = true;
        break;
      }
      v1::Record* rec = kept < records->size() ? records->Mutable(kept) : records->Add();
      // The check first: a failed parse of invalid UTF-8 would log an error per record.
      if (std::string problem = WireProblem(r); !problem.empty()) {
        bad->push_back({index, std::move(problem), r});
      } else if (rec->ParseFromArray(r.data(), static_cast<int>(r.size()))) {
        ++kept;
      } else {
        bad->push_back({index, "malformed record", r});
      }
      ++index;
    } else if (field == 4 && type == WireFormatLite::WIRETYPE_VARINT) {
      uint64_t v = 0;
      if (!in.ReadVarint64(&v)) return header_error("broken produced_at_ms");
      batch->set_produced_at_ms(static_cast<int64_t>(v));
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      bad->push_back({index, absl::StrCat("unreadable bytes from byte ", at, " on"),
                      wire.substr(static_cast<size_t>(at))});
      framing_broken = true;
      break;
    }
  }
  records->DeleteSubrange(kept, records->size() - kept);
  // Broken framing before any record decoded: nothing of it is a record (random bytes, a batch
  // cut short), so the message as a whole is malformed.
  if (kept == 0 && framing_broken) {
    std::string reason = std::move(bad->back().reason);
    bad->clear();
    return absl::InvalidArgumentError(absl::StrCat("RecordBatch: ", reason));
  }
  return absl::OkStatus();
}

}  // namespace cybersyn
