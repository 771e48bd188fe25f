// How the gateway sizes its RocksDB disk buffer. Batches live there for milliseconds while the
// broker keeps up (written, produced, deleted on confirmation), so with room to spare the buffer
// uses large memtables (most batches are deleted before a flush ever writes them) and no
// compression (a flush would compress data that is deleted soon after): flushes and compactions
// drop from ~8% to ~3% of the gateway's CPU (bench/ingest_bench). On a small disk or with a small
// --buffer-max-bytes it keeps the compact settings: RocksDbStore refuses writes while less than one
// memtable (plus 1 MiB) is free, so a 32 MiB memtable would cost a small disk 16 MiB more of its
// space and stop the gateway that much earlier. (64 MiB memtables measured no better than 32 MiB in
// bench/ingest_bench, for twice the memory.)
#ifndef CYBERSYN_INGEST_BUFFER_SIZING_H_
#define CYBERSYN_INGEST_BUFFER_SIZING_H_

#include <cstdint>
#include <string>

namespace cybersyn::ingest {

struct BufferSizing {
  uint64_t write_buffer_bytes = 0;  // memtable size
  uint64_t memory_limit_bytes = 0;  // RocksDB memory (block cache incl. memtables)
  bool compress = true;
};

// At least 1 GiB free on the buffer's device and buffer_max_bytes >= 256 MiB: 32 MiB memtables,
// a 128 MiB memory limit, no compression. Otherwise 16 MiB memtables, 64 MiB, LZ4 (as before).
BufferSizing SizeBuffer(uint64_t free_disk_bytes, uint64_t buffer_max_bytes);

// The soft bound on unconfirmed bytes of a gateway whose source can wait
// (PublisherOptions::soft_max_buffer_bytes): two of librdkafka's produce batches (batch.size) for
// each partition the records can go to (min(partitions, enterprises): records are keyed by
// enterprise), so that one is in flight while the next fills. With less, every partition sends
// batches cut short by linger.ms, or waits it out with the source stalled: with 4 partitions,
// 4 MiB measured a median ratio of 0.66-0.79 to the bare producer in ingest_bench, 8 MiB
// 0.84-0.90. Within [floor, ceiling].
uint64_t SoftBoundBytes(int partitions, int enterprises, uint64_t produce_batch_bytes,
                        uint64_t floor, uint64_t ceiling);

// Bytes available to an unprivileged writer on the device holding `dir` (0 if unknown).
uint64_t FreeDiskBytes(const std::string& dir);

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_BUFFER_SIZING_H_
