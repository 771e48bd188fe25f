// Whether the gateway's disk buffer writes RocksDB's write-ahead log, and the run marker that
// keeps sequence numbers from being reused after an unclean stop, in either mode.
//
// The WAL costs the publisher's writer thread ~37% of its CPU (Debian's librocksdb computes its
// CRC32c in software, plus a copy of every batch). Without it, a kill -9 leaves the buffer as of
// its last memtable flush: a consistent but older prefix of the writes, with the source position
// and next sequence number of that prefix. That loses nothing when the input can be read again
// from that position with the same records (a file, a simulator run with a fixed start): the
// gateway re-reads them, gives them the same sequence numbers, and consumers drop those already in
// Kafka as duplicates of (gateway, sequence). It would lose records from stdin or gRPC pushes
// (acknowledged as on disk), so those keep the WAL.
//
// The hazard: batches reach Kafka before their sequence numbers are durable. Without the WAL that
// is the case until the next flush; with it, until the OS writes the log back (buffer writes are
// not fsynced), so a power cut loses the tail of the log, next sequence number included. If the
// next run then reads a different input, or one that cannot be re-read (stdin, gRPC), it would
// reuse those numbers for different records, which consumers would drop as duplicates, silently.
// So every run writes a marker file naming its input into the buffer directory (fsynced) before
// its first write and removes it only after a clean close (flushed). A start that finds the marker
// and is not the same input resuming moves the next sequence number forward by kSequenceJump,
// past anything the unclean run can have produced non-durably. (After a kill -9 of a WAL run
// nothing was lost, and the jump is merely harmless: consumers only need increasing numbers.)
//
// Thread-safety: free functions, no shared state.
#ifndef CYBERSYN_INGEST_BUFFER_WAL_H_
#define CYBERSYN_INGEST_BUFFER_WAL_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cybersyn::ingest {

enum class BufferWal { kAuto, kOn, kOff };

// "auto" | "on" | "off"; INVALID_ARGUMENT naming the accepted values otherwise.
absl::StatusOr<BufferWal> ParseBufferWal(absl::string_view text);

// What the gateway will read, as far as the buffer mode is concerned.
struct BufferWalInput {
  // Identity of the resumable input Gateway::Run will read (RecordSource::Identity()); empty when
  // there is none or it cannot resume (stdin, a simulator run without a fixed --start).
  std::string identity;
  // Paced (--rate, or a simulator speedup): the WAL costs little at such rates, and a WAL-less
  // crash would replay the records since the last flush at the paced rate, delaying live data.
  bool paced = false;
  // A gRPC Ingest listener: its OK promises the records are on disk (kill -9 safe).
  bool grpc = false;
  // An MQTT subscription (ingest/mqtt_input.h): its messages are acknowledged to the broker, so
  // they must be on disk (kill -9 safe) before the next one is taken.
  bool mqtt = false;
};

struct BufferWalChoice {
  bool wal = true;
  std::string reason;  // for the start-up log line
};

// kOn: WAL. kAuto: no WAL exactly when the input is resumable, unpaced and there is no gRPC
// listener. kOff: no WAL, INVALID_ARGUMENT when that could lose records (no resumable input, or a
// gRPC listener); pacing is allowed.
absl::StatusOr<BufferWalChoice> ChooseBufferWal(BufferWal setting, const BufferWalInput& input);

// More than the sequence numbers one run can hand out after its last durable write: those records
// are all in the unflushed memtables (at most 2 x 32 MiB, >= 10 bytes per record, so < 2^23); a
// memtable flush syncs what it wrote, with the WAL or without.
// Sequence numbers are uint64 and consumers only need them to increase, so gaps are free.
inline constexpr uint64_t kSequenceJump = uint64_t{1} << 32;

// "<dir>/CYBERSYN-RUNNING" (RocksDB leaves files it does not know alone).
std::string RunMarkerPath(const std::string& buffer_dir);
// The input identity of a run that did not close cleanly ("" for an input that cannot be re-read),
// or nullopt (no marker). Also reads the marker of earlier versions, CYBERSYN-WAL-LESS-RUN.
absl::StatusOr<std::optional<std::string>> ReadRunMarker(const std::string& buffer_dir);
// Writes the marker atomically (temporary file, fsync, rename, fsync of the directory).
absl::Status WriteRunMarker(const std::string& buffer_dir, absl::string_view identity);
// Removes the marker, an earlier version's included (and fsyncs the directory). OK if none.
absl::Status RemoveRunMarker(const std::string& buffer_dir);

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_BUFFER_WAL_H_
