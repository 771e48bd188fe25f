// EncodedVarint: a protobuf varint encoded once and copied into many records. The gateway's
// encoder writes two per record: the event time, which repeats across the records of one tick of
// a source, and the sequence number, which goes up by one (Increment changes only its first byte
// 127 times in 128). Encoding both per record was a fifth of the encoder's time.
#ifndef CYBERSYN_INGEST_VARINT_H_
#define CYBERSYN_INGEST_VARINT_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace cybersyn::ingest {

// Writes `v` as a varint at `p` (up to 10 bytes); returns the end.
inline char* PutVarintRaw(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

struct EncodedVarint {
  uint64_t value = 0;
  size_t size = 1;
  alignas(8) char bytes[10] = {};  // the first `size` are the encoding; 0 encodes as one zero byte

  void Set(uint64_t v) {
    value = v;
    size = static_cast<size_t>(PutVarintRaw(bytes, v) - bytes);
  }

  // Set(value + 1), from the current bytes.
  void Increment() {
    ++value;
    if (value == 0) {  // wrapped around
      Set(0);
      return;
    }
    if constexpr (std::endian::native == std::endian::little) {
      // The common case as one 8-byte add: a 1-byte store followed by CopyTo's 8-byte load of
      // the same bytes cannot be store-forwarded, and that stall cost more than the encoding.
      uint64_t first;
      std::memcpy(&first, bytes, sizeof first);
      if ((first & 0x7F) != 0x7F) {
        ++first;
        std::memcpy(bytes, &first, sizeof first);
        return;
      }
    }
    for (size_t i = 0;; ++i) {
      if ((bytes[i] & 0x7F) != 0x7F) {  // no carry: the continuation bit stays as it was
        ++bytes[i];
        return;
      }
      if (i + 1 == size) {  // 0x7F in the last byte: it continues into a new byte 1
        bytes[i] = static_cast<char>(0x80);
        bytes[i + 1] = 1;
        ++size;
        return;
      }
      bytes[i] = static_cast<char>(0x80);  // payload 0, carry on
    }
  }

  // Copies the encoding to `p` and returns its end. REQUIRES: 10 writable bytes at `p` (a
  // fixed-size copy, which compiles to two moves).
  char* CopyTo(char* p) const {
    std::memcpy(p, bytes, sizeof bytes);
    return p + size;
  }
};

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_VARINT_H_
