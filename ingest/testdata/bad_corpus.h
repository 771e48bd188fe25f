// The messages the bad-input corpora (bad.csv, bad.jsonl beside this file) must give, in order:
// one list for the unit test (ingest/record_source_test.cc) and the real-broker test
// (tests/ingest_kafka_test.cc). `p` is the file's path followed by ':'.
#ifndef CYBERSYN_INGEST_TESTDATA_BAD_CORPUS_H_
#define CYBERSYN_INGEST_TESTDATA_BAD_CORPUS_H_

#include <string>
#include <vector>

namespace cybersyn::ingest::testdata {

inline std::vector<std::string> BadCsvErrors(const std::string& p) {
  return {p + "4: node: unknown node \"sim/s0/e0/nope\"",
          p + "5: indicator: unknown indicator \"speed\"",
          p + "6: value: expected a number, got \"abc\"", p + "7: value: must be finite, got nan",
          p + "8: value: must be finite, got inf",
          p + "9: time: expected RFC 3339 or epoch milliseconds, got \"yesterday\"",
          p + "10: time: 2024-05-01T01:00:00.000Z is 1h ahead of the gateway "
              "clock (max_future 5m)",
          p + "11: time: missing", p + "12: node: missing",
          p + "14: labels: 17 labels, at most 16 allowed",
          p + "15: labels: expected key=value, got \"shift\"",
          p + "16: labels: duplicate key \"a\"", p + "17: line: unterminated quoted field",
          p + "18: line: expected at most 5 fields "
              "(node,indicator,value,time,labels), got 6",
          p + "19: node: \"sim/s0\" is above the enterprise level",
          // Issue 22's kinds.
          p + "22: labels: the value of \"note\" is not valid UTF-8 (byte 0xe9 at offset "
              "3 of \"caf\\xe9\")",
          p + "23: value: expected a number, got \"0x10\" (hexadecimal is not accepted)",
          p + "24: time: 1714521600 looks like epoch seconds (2024-05-01T00:00:00.000Z); "
              "epoch milliseconds are expected, e.g. 1714521600000",
          p + "25: time: 0 (1970-01-01T00:00:00.000Z) is before gateway.min_time "
              "2000-01-01T00:00:00.000Z (a time that early is almost always a unit "
              "mistake)",
          p + "26: time: 0001-01-01T00:00:00.000Z is before gateway.min_time "
              "2000-01-01T00:00:00.000Z (a time that early is almost always a unit "
              "mistake)",
          p + "27: time: -5 (1969-12-31T23:59:59.995Z) is before gateway.min_time "
              "2000-01-01T00:00:00.000Z (a time that early is almost always a unit "
              "mistake)",
          p + "28: time: expected RFC 3339 or epoch milliseconds, got "
              "\"2024-05-01T03:00:00+0300\" (the zone offset needs a colon: +03:00)",
          p + "29: time: 18446744073709551615 is out of range for epoch milliseconds (a "
              "signed 64-bit integer)",
          p + "30: node: unknown node \"sim/s0/e0/\\x1b[2J\\rok\"",
          p + "31: node: unknown node \"sim/s0/\\u04350/u0\"",
          p + "32: time: expected RFC 3339 or epoch milliseconds, got "
              "\"2024-02-30T00:00:00Z\" (day 30 is out of range for 2024-02)",
          p + "37: value: expected a number, got \"sim/s0/e0/u1\""};
}

inline std::vector<std::string> BadJsonlErrors(const std::string& p) {
  return {p + "2: line: invalid JSON at byte 70", p + "3: line: expected a JSON object, got array",
          p + "4: value: expected a number, got string", p + "5: indicator: missing",
          p + "6: time: missing",
          p + "7: time: expected an RFC 3339 string or integer epoch milliseconds, got "
              "boolean",
          p + "8: value: 1e999 is out of range for a number (a double reaches about "
              "1.8e308)",
          p + "9: colour: unknown field (expected node, indicator, value, time, labels)",
          p + "10: labels.k: expected a string, got number",
          p + "11: node: expected a string, got number",
          p + "14: time: 2024-05-01T00:10:00.000Z is 10m ahead of the gateway clock "
              "(max_future 5m)",
          p + "15: time: expected an RFC 3339 string or integer epoch milliseconds, got "
              "1714521600000.5",
          // Issue 22's kinds.
          p + "17: time: 18446744073709551615 is out of range for epoch milliseconds (a "
              "signed 64-bit integer)",
          p + "18: time: 9223372036854775808 is out of range for epoch milliseconds (a "
              "signed 64-bit integer)",
          p + "19: time: -1 (1969-12-31T23:59:59.999Z) is before gateway.min_time "
              "2000-01-01T00:00:00.000Z (a time that early is almost always a unit "
              "mistake)",
          p + "20: time: 1714521600 looks like epoch seconds (2024-05-01T00:00:00.000Z); "
              "epoch milliseconds are expected, e.g. 1714521600000",
          p + "21: time: 0001-01-01T00:00:00.000Z is before gateway.min_time "
              "2000-01-01T00:00:00.000Z (a time that early is almost always a unit "
              "mistake)",
          p + "22: time: expected RFC 3339 or epoch milliseconds, got "
              "\"2024-05-01T03:00:00+0300\" (the zone offset needs a colon: +03:00)",
          p + "23: line: duplicate key \"node\"", p + "24: labels: duplicate key \"a\"",
          p + "25: line: invalid JSON at byte 108 (not valid UTF-8)",
          p + "26: node: unknown node \"\\x1b[2J\"", p + "27: line: invalid JSON at byte 59"};
}

}  // namespace cybersyn::ingest::testdata

#endif  // CYBERSYN_INGEST_TESTDATA_BAD_CORPUS_H_
