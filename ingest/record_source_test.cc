#include "ingest/record_source.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ingest/testdata/bad_corpus.h"

namespace cybersyn::ingest {
namespace {

using ::testing::ElementsAre;

const int64_t kNow = 1'714'521'600'000;  // 2024-05-01T00:00:00Z

struct Read {
  std::vector<std::string> errors;
  std::vector<v1::Record> records;
  std::vector<std::string> enterprises;
};

class RecordSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = LoadConfigString(SyntheticConfigYaml(1, 1, 2), "synthetic.yaml");
    ASSERT_TRUE(c.ok()) << c.status();
    config_ = *std::move(c);
  }
  Read ReadAll(RecordSource& src) {
    Read out;
    v1::Record r;
    const Hierarchy::Node* ent = nullptr;
    RecordError err;
    while (true) {
      auto res = src.Next(&r, &ent, &err);
      if (res == RecordSource::Result::kEnd) break;
      if (res == RecordSource::Result::kError) {
        out.errors.push_back(err.ToString());
      } else {
        out.records.push_back(r);
        out.enterprises.push_back(ent->path);
      }
    }
    return out;
  }
  Config config_;
  ManualClock clock_{absl::FromUnixMillis(kNow)};
};

// Found by fuzz/jsonl_line_fuzz: an empty JSON key gave "<file>:<line>: : unknown field".
TEST_F(RecordSourceTest, JsonEmptyKeyIsNamedInTheError) {
  RecordValidator v(config_, &clock_);
  v1::Record r;
  RecordError err;
  EXPECT_EQ(ParseJsonLine(R"({"node": "sim/s0/e0/u0", "": 1})", v, &r, &err), nullptr);
  EXPECT_EQ(err.field, "\"\"");
  EXPECT_EQ(err.reason, kReasonSyntax);
}

TEST_F(RecordSourceTest, CsvCorpusReportsEveryProblemExactlyAndKeepsGoodLines) {
  RecordValidator v(config_, &clock_);
  const std::string path = std::string(CYBERSYN_SOURCE_DIR) + "/ingest/testdata/bad.csv";
  auto src = OpenFileSource(InputFormat::kCsv, path, &v);
  ASSERT_TRUE(src.ok()) << src.status();
  Read got = ReadAll(**src);
  const std::string p = path + ":";
  EXPECT_THAT(got.errors, ::testing::ElementsAreArray(testdata::BadCsvErrors(p)));
  ASSERT_EQ(got.records.size(), 5u);
  EXPECT_EQ(got.records[0].node(), "sim/s0/e0/u0");
  EXPECT_EQ(got.records[0].value(), 1.5);
  EXPECT_EQ(got.records[0].event_time_ms(), kNow);
  EXPECT_EQ(got.records[1].labels().at("shift"), "night");
  EXPECT_EQ(got.records[1].labels().at("line"), "3");
  EXPECT_EQ(got.records[2].node(), "sim/s0/e0/u1");
  EXPECT_EQ(got.records[2].value(), 3.5);
  EXPECT_EQ(got.records[2].event_time_ms(), kNow);
  EXPECT_EQ(got.records[2].labels().at("note"), "a \"quoted\" word");
  // After a BOM at the start of its line (and a repeated header in capitals, with spaces).
  EXPECT_EQ(got.records[3].node(), "sim/s0/e0/u1");
  EXPECT_EQ(got.records[3].value(), 4.5);
  // Columns in the order of the header before it.
  EXPECT_EQ(got.records[4].node(), "sim/s0/e0/u1");
  EXPECT_EQ(got.records[4].indicator(), "output");
  EXPECT_EQ(got.records[4].value(), 5.5);
  EXPECT_EQ(got.records[4].event_time_ms(), kNow);
  EXPECT_THAT(got.enterprises, ::testing::Each("sim/s0/e0"));
}

TEST_F(RecordSourceTest, JsonLinesCorpusReportsEveryProblemExactlyAndKeepsGoodLines) {
  RecordValidator v(config_, &clock_);
  const std::string path = std::string(CYBERSYN_SOURCE_DIR) + "/ingest/testdata/bad.jsonl";
  auto src = OpenFileSource(InputFormat::kJsonLines, path, &v);
  ASSERT_TRUE(src.ok()) << src.status();
  Read got = ReadAll(**src);
  const std::string p = path + ":";
  EXPECT_THAT(got.errors, ::testing::ElementsAreArray(testdata::BadJsonlErrors(p)));
  ASSERT_EQ(got.records.size(), 3u);
  EXPECT_EQ(got.records[0].value(), 1.5);
  EXPECT_EQ(got.records[1].indicator(), "energy");
  EXPECT_EQ(got.records[1].value(), -2);
  EXPECT_EQ(got.records[1].labels().at("shift"), "day");
  EXPECT_EQ(got.records[2].value(), 7.5);  // after a BOM
}

TEST_F(RecordSourceTest, TooManyLabelsFollowsConfig) {
  config_.gateway.max_labels = 1;
  RecordValidator v(config_, &clock_);
  std::istringstream in("sim/s0/e0/u0,output,1,1714521600000,a=1;b=2\n");
  auto src = StreamSource(InputFormat::kCsv, &in, "-", &v);
  Read got = ReadAll(*src);
  EXPECT_THAT(got.errors, ElementsAre("-:1: labels: 2 labels, at most 1 allowed"));
}

TEST_F(RecordSourceTest, FileSourceResumesAfterPosition) {
  RecordValidator v(config_, &clock_);
  const std::string path = std::string(CYBERSYN_SOURCE_DIR) + "/ingest/testdata/bad.csv";
  auto a = OpenFileSource(InputFormat::kCsv, path, &v);
  ASSERT_TRUE(a.ok());
  v1::Record r;
  const Hierarchy::Node* ent;
  RecordError err;
  ASSERT_EQ((*a)->Next(&r, &ent, &err), RecordSource::Result::kRecord);  // line 3
  ASSERT_EQ((*a)->Next(&r, &ent, &err), RecordSource::Result::kError);   // line 4
  const std::string pos = (*a)->Position();
  auto b = OpenFileSource(InputFormat::kCsv, path, &v);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*a)->Identity(), (*b)->Identity());
  ASSERT_TRUE((*b)->Seek(pos).ok());
  ASSERT_EQ((*b)->Next(&r, &ent, &err), RecordSource::Result::kError);
  EXPECT_EQ(err.line, 5);
  EXPECT_EQ(err.field, "indicator");
}

TEST_F(RecordSourceTest, MissingFileIsNotFound) {
  RecordValidator v(config_, &clock_);
  auto src = OpenFileSource(InputFormat::kCsv, "/nonexistent/x.csv", &v);
  EXPECT_EQ(src.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(src.status().message(), "cannot open /nonexistent/x.csv: No such file or directory");
}

TEST_F(RecordSourceTest, SimulatorSourceYieldsValidRecords) {
  RecordValidator v(config_, &clock_);
  SimulatorOptions o = *SimulatorPreset("bench");
  o.max_records = 1000;
  auto src = SimulatorSource(config_, o, "sim:bench", &v, &clock_);
  ASSERT_TRUE(src.ok()) << src.status();
  Read got = ReadAll(**src);
  EXPECT_TRUE(got.errors.empty());
  EXPECT_EQ(got.records.size(), 1000u);
  EXPECT_LT(got.records.back().event_time_ms(), kNow);  // unpaced runs start in the past
  ASSERT_NE(SimulatorOf(**src), nullptr);
}

// The gateway reads the simulator by reference (NextRef, no v1::Record built): the same records,
// enterprises and positions as Next of a source with the same seed.
TEST_F(RecordSourceTest, SimulatorNextRefMatchesNext) {
  RecordValidator v(config_, &clock_);
  SimulatorOptions o = *SimulatorPreset("bench");
  o.max_records = 2000;
  o.faults_per_series_per_day = 5000;  // outages skip samples: positions must still agree
  auto a = SimulatorSource(config_, o, "sim:bench", &v, &clock_);
  auto b = SimulatorSource(config_, o, "sim:bench", &v, &clock_);
  ASSERT_TRUE(a.ok() && b.ok());
  v1::Record r;
  RecordRef ref;
  const Hierarchy::Node* ea = nullptr;
  const Hierarchy::Node* eb = nullptr;
  RecordError err;
  int n = 0;
  while (true) {
    const auto ra = (*a)->Next(&r, &ea, &err);
    const auto rb = (*b)->NextRef(&ref, &eb, &err);
    ASSERT_EQ(ra, rb);
    if (ra == RecordSource::Result::kEnd) break;
    ASSERT_EQ(ra, RecordSource::Result::kRecord) << err.ToString();
    EXPECT_EQ(ref.node, r.node());
    EXPECT_EQ(ref.indicator, r.indicator());
    EXPECT_EQ(ref.value, r.value());
    EXPECT_EQ(ref.event_time_ms, r.event_time_ms());
    EXPECT_EQ(ref.labels, nullptr);
    // The pre-encoded node and indicator are exactly their protobuf encoding.
    v1::Record keys;
    ASSERT_TRUE(keys.ParseFromArray(ref.node_indicator_pb.data(),
                                    static_cast<int>(ref.node_indicator_pb.size())));
    EXPECT_EQ(keys.node(), r.node());
    EXPECT_EQ(keys.indicator(), r.indicator());
    keys.clear_node();
    keys.clear_indicator();
    EXPECT_EQ(keys.ByteSizeLong(), 0u) << "nothing but node and indicator";
    EXPECT_EQ(ea, eb);
    EXPECT_EQ((*a)->Position(), (*b)->Position());
    ++n;
  }
  EXPECT_EQ(n, 2000);
}

// The demo's replay-then-live: one simulation whose pace changes at realtime_from_ms. The
// records are those of the same simulation unpaced (the same plants and faults before and after
// the switch, no jump at it), and speedup() is the replay's before the switch and 1 from it on.
TEST_F(RecordSourceTest, SimulatorReplayContinuesLiveAsOneSimulation) {
  RecordValidator v(config_, &clock_);
  SimulatorOptions o = *SimulatorPreset("small");
  o.seed = 7;
  o.start_ms = kNow - 3'600'000;
  o.speedup = 30;
  o.realtime_from_ms = kNow - 1'800'000;
  o.faults_per_series_per_day = 2000;  // faults across the switch too
  o.max_records = 2 * 4 * 3600;        // 2 units x 4 indicators, one hour
  SimulatorOptions unpaced = o;
  unpaced.speedup = 0;
  unpaced.realtime_from_ms = 0;
  auto paced = SimulatorSource(config_, o, "sim:demo", &v, &clock_);
  auto plain = SimulatorSource(config_, unpaced, "sim:plain", &v, &clock_);
  ASSERT_TRUE(paced.ok() && plain.ok());
  EXPECT_EQ((*paced)->speedup(), 30);
  v1::Record a, b;
  const Hierarchy::Node* ent = nullptr;
  RecordError err;
  uint64_t n = 0, live = 0;
  while ((*paced)->Next(&a, &ent, &err) == RecordSource::Result::kRecord) {
    ASSERT_EQ((*plain)->Next(&b, &ent, &err), RecordSource::Result::kRecord);
    ASSERT_EQ(a.node(), b.node());
    ASSERT_EQ(a.indicator(), b.indicator());
    ASSERT_EQ(a.event_time_ms(), b.event_time_ms());
    ASSERT_EQ(a.value(), b.value())
        << a.node() << " " << a.indicator() << " at " << a.event_time_ms();
    const bool is_live = a.event_time_ms() >= o.realtime_from_ms;
    EXPECT_EQ((*paced)->speedup(), is_live ? 1 : 30) << a.event_time_ms();
    live += is_live;
    ++n;
  }
  EXPECT_GT(n, 10'000u);
  EXPECT_GT(live, n / 3);
  // The faults are one list across the switch.
  ASSERT_NE(SimulatorOf(**paced), nullptr);
  EXPECT_EQ(SimulatorOf(**paced)->faults(), SimulatorOf(**plain)->faults());
}

// The simulator's records skip the per-record node and indicator lookups, not validation: values
// that are not finite (here: steps of 1e308 noise sigmas overflow) and times too far ahead of the
// clock are rejected with the validator's messages, by Next and NextRef alike, and none of them
// is returned as a record.
TEST_F(RecordSourceTest, SimulatorSourceStillRejectsBadValuesAndTimes) {
  RecordValidator v(config_, &clock_);
  SimulatorOptions o = *SimulatorPreset("bench");
  o.max_records = 4000;
  o.faults_per_series_per_day = 20'000;  // a fault every ~4 s per series
  o.fault_weights = {1, 0, 0, 0};        // steps only
  o.fault_size_min = o.fault_size_max = 1e308;
  for (bool by_ref : {false, true}) {
    auto src = SimulatorSource(config_, o, "sim:bench", &v, &clock_);
    ASSERT_TRUE(src.ok()) << src.status();
    v1::Record r;
    RecordRef ref;
    const Hierarchy::Node* ent = nullptr;
    RecordError err;
    int records = 0, rejected = 0;
    while (true) {
      const auto res = by_ref ? (*src)->NextRef(&ref, &ent, &err) : (*src)->Next(&r, &ent, &err);
      if (res == RecordSource::Result::kEnd) break;
      if (res == RecordSource::Result::kError) {
        ++rejected;
        EXPECT_EQ(err.reason, kReasonNonFinite);
        EXPECT_EQ(err.source, "sim");
        EXPECT_EQ(err.field, "value");
        EXPECT_THAT(err.problem, ::testing::StartsWith("must be finite, got "));
        continue;
      }
      ++records;
      EXPECT_TRUE(std::isfinite(by_ref ? ref.value : r.value()));
    }
    EXPECT_GT(rejected, 500) << by_ref;
    EXPECT_GT(records, 500) << by_ref;
    EXPECT_EQ(records + rejected, 4000) << by_ref;
  }

  // A run that starts an hour ahead of the gateway clock (max_future 5m): every record rejected.
  o = *SimulatorPreset("bench");
  o.max_records = 100;
  o.start_ms = kNow + 3'600'000;
  auto src = SimulatorSource(config_, o, "sim:bench", &v, &clock_);
  ASSERT_TRUE(src.ok()) << src.status();
  RecordRef ref;
  const Hierarchy::Node* ent = nullptr;
  RecordError err;
  int rejected = 0;
  while (true) {
    const auto res = (*src)->NextRef(&ref, &ent, &err);
    if (res == RecordSource::Result::kEnd) break;
    ASSERT_EQ(res, RecordSource::Result::kError);
    EXPECT_EQ(err.reason, kReasonFuture);
    EXPECT_EQ(err.field, "time");
    ++rejected;
  }
  EXPECT_EQ(rejected, 100);
}

// The default NextRef (file sources) refers to the record Next parsed, labels included.
TEST_F(RecordSourceTest, FileSourceNextRefCarriesLabels) {
  RecordValidator v(config_, &clock_);
  std::istringstream in(
      "sim/s0/e0/u0,output,1.5,2024-04-30T23:00:00Z,shift=night\n"
      "sim/s0/e0/u1,energy,2,1714518000000\n");
  auto src = StreamSource(InputFormat::kCsv, &in, "t.csv", &v);
  RecordRef ref;
  const Hierarchy::Node* ent = nullptr;
  RecordError err;
  ASSERT_EQ(src->NextRef(&ref, &ent, &err), RecordSource::Result::kRecord) << err.ToString();
  EXPECT_EQ(ref.node, "sim/s0/e0/u0");
  EXPECT_EQ(ref.indicator, "output");
  EXPECT_EQ(ref.value, 1.5);
  EXPECT_EQ(ref.event_time_ms, kNow - 3'600'000);
  ASSERT_NE(ref.labels, nullptr);
  EXPECT_EQ(ref.labels->size(), 1u);
  EXPECT_EQ(ref.labels->at("shift"), "night");
  EXPECT_EQ(ent->path, "sim/s0/e0");
  ASSERT_EQ(src->NextRef(&ref, &ent, &err), RecordSource::Result::kRecord) << err.ToString();
  EXPECT_EQ(ref.node, "sim/s0/e0/u1");
  EXPECT_EQ(ref.labels, nullptr) << "labels of the previous line must not carry over";
  EXPECT_EQ(src->NextRef(&ref, &ent, &err), RecordSource::Result::kEnd);
}

// Issue 22 (5): a BOM before a header-less file was part of the first node.
TEST_F(RecordSourceTest, AByteOrderMarkIsDropped) {
  RecordValidator v(config_, &clock_);
  std::istringstream in("\xEF\xBB\xBFsim/s0/e0/u0,output,1,1714521600000\n");
  Read got = ReadAll(*StreamSource(InputFormat::kCsv, &in, "t.csv", &v));
  EXPECT_TRUE(got.errors.empty()) << got.errors[0];
  ASSERT_EQ(got.records.size(), 1u);
  EXPECT_EQ(got.records[0].node(), "sim/s0/e0/u0");
}

TEST_F(RecordSourceTest, HeadersNameColumnsInAnyOrderAndCase) {
  RecordValidator v(config_, &clock_);
  std::istringstream in(
      "\xEF\xBB\xBF Time , LABELS,Value,indicator, NODE\n"
      "1714521600000,shift=day,2.5,output,sim/s0/e0/u1\n"
      "time,labels,value,indicator,node\n"  // repeated mid-file: skipped
      "1714521600000,,3.5,energy,sim/s0/e0/u0\n");
  Read got = ReadAll(*StreamSource(InputFormat::kCsv, &in, "t.csv", &v));
  EXPECT_TRUE(got.errors.empty()) << got.errors[0];
  ASSERT_EQ(got.records.size(), 2u);
  EXPECT_EQ(got.records[0].node(), "sim/s0/e0/u1");
  EXPECT_EQ(got.records[0].value(), 2.5);
  EXPECT_EQ(got.records[0].labels().at("shift"), "day");
  EXPECT_EQ(got.records[1].indicator(), "energy");
  EXPECT_TRUE(got.records[1].labels().empty());
}

TEST_F(RecordSourceTest, AHeaderThatCannotBeUsedEndsTheFileWithItsReason) {
  RecordValidator v(config_, &clock_);
  for (const auto& [header, problem] : std::vector<std::pair<std::string, std::string>>{
           {"node,indicator,value,timestamp",
            "unknown column \"timestamp\" (expected node, "
            "indicator, value, time, labels)"},
           {"node,indicator,value,time,node", "column \"node\" given twice"},
           {"node,indicator,time", "no value column"}}) {
    std::istringstream in(header + "\nsim/s0/e0/u0,output,1,1714521600000\n");
    auto src = StreamSource(InputFormat::kCsv, &in, "t.csv", &v);
    v1::Record r;
    const Hierarchy::Node* ent;
    RecordError err;
    ASSERT_EQ(src->Next(&r, &ent, &err), RecordSource::Result::kError) << header;
    EXPECT_EQ(err.ToString(), "t.csv:1: header: " + problem);
    EXPECT_EQ(err.reason, kReasonBadHeader);
    EXPECT_EQ(src->Next(&r, &ent, &err), RecordSource::Result::kEnd) << header;
  }
  // A data line with a column name in it is data.
  std::istringstream in("node,output,1,1714521600000\n");
  Read got = ReadAll(*StreamSource(InputFormat::kCsv, &in, "t.csv", &v));
  EXPECT_THAT(got.errors, ElementsAre("t.csv:1: node: unknown node \"node\""));
}

TEST_F(RecordSourceTest, RejectedLinesCarryTheirTextAndTheHeaderInForce) {
  RecordValidator v(config_, &clock_);
  std::istringstream in(
      "sim/s0/e0/u0,output,x,1714521600000\r\n"
      "time,node,indicator,value\n"
      "1714521600000,sim/s0/e0/u0,output,y\n");
  auto src = StreamSource(InputFormat::kCsv, &in, "t.csv", &v);
  v1::Record r;
  const Hierarchy::Node* ent;
  RecordError err;
  ASSERT_EQ(src->Next(&r, &ent, &err), RecordSource::Result::kError);
  EXPECT_EQ(err.raw_line, "sim/s0/e0/u0,output,x,1714521600000");
  EXPECT_EQ(err.header_line, "");
  ASSERT_EQ(src->Next(&r, &ent, &err), RecordSource::Result::kError);
  EXPECT_EQ(err.raw_line, "1714521600000,sim/s0/e0/u0,output,y");
  EXPECT_EQ(err.header_line, "time,node,indicator,value");
}

TEST_F(RecordSourceTest, ErrorMessagesAreSafeToPrint) {
  RecordValidator v(config_, &clock_);
  const std::string big(1 << 20, 'n');
  std::istringstream in(std::string("sim/s0/e0/\x1b[2J\0x,output,1,1714521600000\n", 40) + big +
                        ",output,1,1714521600000\n");
  Read got = ReadAll(*StreamSource(InputFormat::kCsv, &in, "t.csv", &v));
  EXPECT_THAT(got.errors, ElementsAre("t.csv:1: node: unknown node \"sim/s0/e0/\\x1b[2J\\x00x\"",
                                      "t.csv:2: node: unknown node \"" + std::string(100, 'n') +
                                          "\"... (1048576 bytes)"));
}

// Issue 22 (4): a second "node" silently moved a record to another enterprise.
TEST_F(RecordSourceTest, JsonDuplicateKeysAreRejectedWithTheKeyNamed) {
  RecordValidator v(config_, &clock_);
  v1::Record r;
  RecordError err;
  EXPECT_EQ(ParseJsonLine(R"({"node": "sim/s0/e0/u0", "indicator": "output", "value": 1,)"
                          R"( "time": 1714521600000, "node": "sim/s0/e0/u1"})",
                          v, &r, &err),
            nullptr);
  EXPECT_EQ(err.field, "line");
  EXPECT_EQ(err.problem, "duplicate key \"node\"");
  // A syntax error later in the line is what is reported.
  EXPECT_EQ(ParseJsonLine(R"({"node": 1, "indicator": "output",,})", v, &r, &err), nullptr);
  EXPECT_EQ(err.field, "line");
  EXPECT_EQ(err.problem, "invalid JSON at byte 35");
  // Values of the wrong shape do not leak into the record.
  EXPECT_EQ(ParseJsonLine(R"({"node": {"x": "sim/s0/e0/u0"}, "indicator": "output", "value": 1,)"
                          R"( "time": 1714521600000})",
                          v, &r, &err),
            nullptr);
  EXPECT_EQ(err.ToString(), ":0: node: expected a string, got object");
  EXPECT_EQ(r.node(), "");
}

// Issue 22 (3, 4): the same grammar for CSV text and JSON numbers.
TEST_F(RecordSourceTest, CsvAndJsonAgreeOnNumbersAndTimes) {
  RecordValidator v(config_, &clock_);
  struct Case {
    std::string value, time, problem;
  };
  for (const Case& c :
       std::vector<Case>{{"0x10", "1714521600000",
                          "value: expected a number, got \"0x10\" (hexadecimal is "
                          "not accepted)"},
                         {"1", "-1",
                          "time: -1 (1969-12-31T23:59:59.999Z) is before gateway.min_time "
                          "2000-01-01T00:00:00.000Z (a time that early is almost always a unit "
                          "mistake)"},
                         {"1", "18446744073709551615",
                          "time: 18446744073709551615 is out of range for epoch "
                          "milliseconds (a signed 64-bit integer)"},
                         {"1e999", "1714521600000",
                          "value: 1e999 is out of range for a number (a double "
                          "reaches about 1.8e308)"},
                         {"1", "1714521600",
                          "time: 1714521600 looks like epoch seconds "
                          "(2024-05-01T00:00:00.000Z); epoch milliseconds are expected, e.g. "
                          "1714521600000"}}) {
    v1::Record r;
    RecordError csv, json;
    EXPECT_EQ(ParseCsvLine("sim/s0/e0/u0,output," + c.value + "," + c.time, v, &r, &csv), nullptr);
    EXPECT_EQ(absl::StrCat(csv.field, ": ", csv.problem), c.problem);
    const std::string line = R"({"node": "sim/s0/e0/u0", "indicator": "output", "value": )" +
                             c.value + R"(, "time": )" + c.time + "}";
    const Hierarchy::Node* ent = ParseJsonLine(line, v, &r, &json);
    if (c.value == "0x10") {  // not JSON at all
      EXPECT_EQ(ent, nullptr);
      EXPECT_EQ(json.field, "line");
      continue;
    }
    EXPECT_EQ(ent, nullptr) << line;
    EXPECT_EQ(absl::StrCat(json.field, ": ", json.problem), c.problem) << line;
  }
}

TEST_F(RecordSourceTest, TimeBoundsFollowTheConfig) {
  config_.gateway.max_age = absl::Hours(24);
  config_.gateway.min_time_ms = 0;
  RecordValidator v(config_, &clock_);
  v1::Record r;
  RecordError err;
  EXPECT_EQ(ParseCsvLine("sim/s0/e0/u0,output,1,2024-04-29T00:00:00Z", v, &r, &err), nullptr);
  EXPECT_EQ(err.problem,
            "2024-04-29T00:00:00.000Z is 2d older than the gateway clock (max_age 1d)");
  EXPECT_EQ(err.reason, kReasonBadTime);
  EXPECT_NE(ParseCsvLine("sim/s0/e0/u0,output,1,2024-04-30T01:00:00Z", v, &r, &err), nullptr);
}

// Issue 22 (2): the gRPC path (and any source) checks strings are UTF-8.
TEST_F(RecordSourceTest, StringsMustBeUtf8InEverySource) {
  RecordValidator v(config_, &clock_);
  v1::Record r;
  r.set_node("sim/s0/e0/u0");
  r.set_indicator("output");
  r.set_value(1);
  r.set_event_time_ms(kNow);
  (*r.mutable_labels())["caf\xe9"] = "x";
  RecordError err;
  EXPECT_EQ(v.Validate(r, &err), nullptr);
  EXPECT_EQ(err.field, "labels");
  EXPECT_EQ(err.problem, "a key is not valid UTF-8 (byte 0xe9 at offset 3 of \"caf\\xe9\")");
  EXPECT_EQ(err.reason, kReasonNotUtf8);
  r.clear_labels();
  r.set_indicator("out\xffput");
  EXPECT_EQ(v.Validate(r, &err), nullptr);
  EXPECT_EQ(err.problem,
            "the indicator is not valid UTF-8 (byte 0xff at offset 3 of \"out\\xffput\")");
}

// Issue 22 (1): a record that cannot fit a message is rejected at validation, with its line.
TEST_F(RecordSourceTest, ARecordOverTheMessageLimitIsRejected) {
  RecordValidator v(config_, &clock_);
  const std::string line =
      "sim/s0/e0/u0,output,1,1714521600000,note=" + std::string(1'200'000, 'x');
  v1::Record r;
  RecordError err;
  EXPECT_NE(ParseCsvLine(line, v, &r, &err), nullptr) << "no limit set: no check";
  v.SetMessageLimit(1'000'000);
  EXPECT_EQ(ParseCsvLine(line, v, &r, &err), nullptr);
  EXPECT_EQ(absl::StrCat(err.field, ": ", err.problem),
            "labels: record of 1.2 MB exceeds the 1 MB message limit");
  EXPECT_EQ(err.reason, kReasonTooLarge);
  EXPECT_NE(ParseCsvLine("sim/s0/e0/u0,output,1,1714521600000,note=" + std::string(990'000, 'x'), v,
                         &r, &err),
            nullptr);
}

class FileResumeTest : public RecordSourceTest {
 protected:
  void SetUp() override {
    RecordSourceTest::SetUp();
    dir_ = ::testing::TempDir() + "/resume-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = dir_ + "/in.csv";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::vector<std::string>& lines) {
    std::ofstream out(path_, std::ios::trunc);
    for (const std::string& l : lines) out << l << "\n";
  }
  std::vector<std::string> Lines(int n) {
    std::vector<std::string> lines = {"time,node,indicator,value"};
    for (int i = 1; i < n; ++i) {
      lines.push_back(absl::StrCat(kNow, ",sim/s0/e0/u0,output,", i));
    }
    return lines;
  }
  // Reads `count` records (or all) and returns the position there.
  std::string ReadSome(RecordSource& src, int count) {
    v1::Record r;
    const Hierarchy::Node* ent;
    RecordError err;
    for (int i = 0; i < count; ++i) {
      EXPECT_EQ(src.Next(&r, &ent, &err), RecordSource::Result::kRecord) << err.ToString();
    }
    return src.Position();
  }
  std::unique_ptr<RecordSource> Open(const RecordValidator& v) {
    auto src = OpenFileSource(InputFormat::kCsv, path_, &v);
    EXPECT_TRUE(src.ok()) << src.status();
    (*src)->SetStateDir(dir_ + "/state");
    return *std::move(src);
  }
  std::string dir_, path_;
};

TEST_F(FileResumeTest, AnUnchangedOrAppendedFileResumesWithItsColumns) {
  RecordValidator v(config_, &clock_);
  Write(Lines(11));
  auto a = Open(v);
  const std::string pos = ReadSome(*a, 6);
  auto lines = Lines(11);
  lines.push_back(absl::StrCat(kNow, ",sim/s0/e0/u1,output,99"));
  Write(lines);  // appended (a new inode is fine too: the content is what counts)
  auto b = Open(v);
  ASSERT_TRUE(b->Seek(pos).ok());
  Read rest = ReadAll(*b);
  EXPECT_TRUE(rest.errors.empty());
  ASSERT_EQ(rest.records.size(), 5u);
  EXPECT_EQ(rest.records[0].value(), 7);  // the header before the position set the columns
  EXPECT_EQ(rest.records.back().value(), 99);
}

// Issue 22 (8): a line fixed in place before the resume point is found, not skipped.
TEST_F(FileResumeTest, AChangeBeforeTheResumePointIsRefusedNamingTheLine) {
  RecordValidator v(config_, &clock_);
  Write(Lines(101));
  auto a = Open(v);
  const std::string pos = ReadSome(*a, 80);
  auto lines = Lines(101);
  lines[41] = absl::StrCat(kNow, ",sim/s0/e0/u0,output,41.5");  // line 42 fixed in place
  Write(lines);
  auto b = Open(v);
  absl::Status s = b->Seek(pos);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(s.message(), path_ +
                             " changed before the point where the last run stopped (line 81): "
                             "line 42 is not what was read before");
  // Without the per-line hashes the change is still found, without its line.
  std::filesystem::remove_all(dir_ + "/state");
  auto c = Open(v);
  s = c->Seek(pos);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()),
              ::testing::HasSubstr("a line before line 82 is not what was read before"));
  // Truncated.
  Write(Lines(30));
  auto d = Open(v);
  s = d->Seek(pos);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("it has only 30 lines now"));
}

TEST_F(FileResumeTest, SeekLineStartsThereWithTheHeadersBeforeIt) {
  RecordValidator v(config_, &clock_);
  Write(Lines(11));
  auto a = Open(v);
  ASSERT_TRUE(a->SeekLine(9).ok());
  Read got = ReadAll(*a);
  ASSERT_EQ(got.records.size(), 3u);
  EXPECT_EQ(got.records[0].value(), 8);
  auto b = Open(v);
  absl::Status s = b->SeekLine(13);
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(s.message(), path_ + " has only 11 lines; line 13 is past its end");
}

}  // namespace
}  // namespace cybersyn::ingest
