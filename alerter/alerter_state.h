// The alerter's persisted state: one entry per series, open signal and applied command, the
// values of its compacted changelog (<prefix>.alerter-changelog) and of its local store. The
// values are messages of proto/cybersyn/v1/state.proto:
//
//   "d/<node>|<indicator>|<window ms>"  AlerterSeriesState (detector, window bookkeeping)
//   "s/<signal id>"                     OpenSignalState (the signal, its hysteresis counter)
//   "c/<command id>"                    AppliedCommand (when it was applied)
//   "w/<series id>#<window start ms>"   PendingDetection (attribution's wait)
//   "v/<signal id>", "g/<partition>"    ViewEntry (the shared view, shared_view.h)
//
// The version before these messages wrote its own encodings under the same keys: a series as
// "\x01" + varints + the detector's bytes, an open signal as a varint counter + Signal bytes, a
// command as decimal milliseconds. Decoding reads both and says which it read (`legacy`), so
// that an upgraded alerter rewrites what it restored in the current encoding at its next
// commit. The two can be told apart: no message starts with the byte 0x01 or with a byte
// below 0x08 (field number 0 does not exist), an open signal's message starts with its Signal
// (0x0a), and a message is never all decimal digits.
//
// Thread-safety: stateless functions.
#ifndef CYBERSYN_ALERTER_ALERTER_STATE_H_
#define CYBERSYN_ALERTER_ALERTER_STATE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "alerter/signal_book.h"
#include "cybersyn/v1/state.pb.h"

namespace cybersyn::alerter {

inline constexpr absl::string_view kSeriesKeyPrefix = "d/";
inline constexpr absl::string_view kSignalKeyPrefix = "s/";
inline constexpr absl::string_view kCommandKeyPrefix = "c/";
// A detection waiting for the shared view (PendingDetection); the view itself is under "v/" and
// "g/" (shared_view.h).
inline constexpr absl::string_view kPendingKeyPrefix = "w/";

// Never empty (an empty value deletes a key): windows is at least 1 once a series is persisted.
std::string EncodeSeriesState(const v1::AlerterSeriesState& s);
// DATA_LOSS when `bytes` is neither encoding.
absl::StatusOr<v1::AlerterSeriesState> DecodeSeriesState(absl::string_view bytes,
                                                         bool* legacy = nullptr);

std::string EncodeOpenSignal(const OpenSignal& s);
absl::StatusOr<OpenSignal> DecodeOpenSignal(absl::string_view bytes, bool* legacy = nullptr);

std::string EncodeAppliedCommand(int64_t applied_at_ms);
absl::StatusOr<int64_t> DecodeAppliedCommand(absl::string_view bytes, bool* legacy = nullptr);

// The encodings of the version before state.proto, for tests of the upgrade.
std::string EncodeLegacySeriesStateForTest(const v1::AlerterSeriesState& s);
std::string EncodeLegacyOpenSignalForTest(const OpenSignal& s);

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_ALERTER_STATE_H_
