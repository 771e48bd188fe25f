#include "ingest/record_source.h"

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

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
  EXPECT_THAT(
      got.errors,
      ElementsAre(p + "4: node: unknown node \"sim/s0/e0/nope\"",
                  p + "5: indicator: unknown indicator \"speed\"",
                  p + "6: value: expected a number, got \"abc\"",
                  p + "7: value: must be finite, got nan", p + "8: value: must be finite, got inf",
                  p + "9: time: expected RFC 3339 or epoch milliseconds, got \"yesterday\"",
                  p + "10: time: 2024-05-01T01:00:00.000Z is 1h ahead of the gateway "
                      "clock (max_future 5m)",
                  p + "11: time: missing", p + "12: node: missing",
                  p + "14: labels: 17 labels, at most 16 allowed",
                  p + "15: labels: expected key=value, got \"shift\"",
                  p + "16: labels: duplicate key \"a\"", p + "17: line: unterminated quoted field",
                  p + "18: line: expected at most 5 fields "
                      "(node,indicator,value,time,labels), got 6",
                  p + "19: node: \"sim/s0\" is above the enterprise level"));
  ASSERT_EQ(got.records.size(), 3u);
  EXPECT_EQ(got.records[0].node(), "sim/s0/e0/u0");
  EXPECT_EQ(got.records[0].value(), 1.5);
  EXPECT_EQ(got.records[0].event_time_ms(), kNow);
  EXPECT_EQ(got.records[1].labels().at("shift"), "night");
  EXPECT_EQ(got.records[1].labels().at("line"), "3");
  EXPECT_EQ(got.records[2].node(), "sim/s0/e0/u1");
  EXPECT_EQ(got.records[2].value(), 3.5);
  EXPECT_EQ(got.records[2].event_time_ms(), kNow);
  EXPECT_EQ(got.records[2].labels().at("note"), "a \"quoted\" word");
  EXPECT_THAT(got.enterprises, ElementsAre("sim/s0/e0", "sim/s0/e0", "sim/s0/e0"));
}

TEST_F(RecordSourceTest, JsonLinesCorpusReportsEveryProblemExactlyAndKeepsGoodLines) {
  RecordValidator v(config_, &clock_);
  const std::string path = std::string(CYBERSYN_SOURCE_DIR) + "/ingest/testdata/bad.jsonl";
  auto src = OpenFileSource(InputFormat::kJsonLines, path, &v);
  ASSERT_TRUE(src.ok()) << src.status();
  Read got = ReadAll(**src);
  const std::string p = path + ":";
  EXPECT_THAT(
      got.errors,
      ElementsAre(p + "2: line: invalid JSON at byte 70",
                  p + "3: line: expected a JSON object, got array",
                  p + "4: value: expected a number, got string", p + "5: indicator: missing",
                  p + "6: time: missing",
                  p + "7: time: expected an RFC 3339 string or integer epoch milliseconds, got "
                      "boolean",
                  p + "8: line: number overflow parsing '1e999'",
                  p + "9: colour: unknown field (expected node, indicator, value, time, labels)",
                  p + "10: labels.k: expected a string, got number",
                  p + "11: node: expected a string, got number",
                  p + "14: time: 2024-05-01T00:10:00.000Z is 10m ahead of the gateway clock "
                      "(max_future 5m)",
                  p + "15: time: expected an RFC 3339 string or integer epoch milliseconds, got "
                      "1714521600000.5"));
  ASSERT_EQ(got.records.size(), 2u);
  EXPECT_EQ(got.records[0].value(), 1.5);
  EXPECT_EQ(got.records[1].indicator(), "energy");
  EXPECT_EQ(got.records[1].value(), -2);
  EXPECT_EQ(got.records[1].labels().at("shift"), "day");
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

}  // namespace
}  // namespace cybersyn::ingest
