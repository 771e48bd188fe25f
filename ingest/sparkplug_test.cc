#include "ingest/sparkplug.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sparkplug_b/sparkplug_b.pb.h"

namespace cybersyn::ingest {
namespace {

using org::eclipse::tahu::protobuf::Payload;
using ::testing::HasSubstr;

constexpr uint64_t kT = 1'714'564'800'000;

Config MakeConfig() {
  Config c;
  GatewayConfig::Sparkplug node{"plant", "edge1", "", "a/b", {{"Temp", "temperature"}}};
  GatewayConfig::Sparkplug dev{"plant", "edge1", "pump", "a/b/c", {{"Flow", "output"}}};
  c.gateway.sparkplug = {node, dev};
  return c;
}

SparkplugTopic Topic(const std::string& type, const std::string& device = "") {
  return SparkplugTopic{"plant", type, "edge1", device};
}

void AddMetric(Payload* p, const std::string& name, uint64_t alias, double v) {
  Payload::Metric* m = p->add_metrics();
  if (!name.empty()) m->set_name(name);
  m->set_alias(alias);
  m->set_datatype(10);
  m->set_double_value(v);
  m->set_timestamp(kT);
}

std::string Birth(uint64_t bd_seq, uint64_t seq) {
  Payload p;
  p.set_timestamp(kT);
  p.set_seq(seq);
  Payload::Metric* bd = p.add_metrics();
  bd->set_name("bdSeq");
  bd->set_datatype(8);
  bd->set_long_value(bd_seq);
  AddMetric(&p, "Temp", 1, 20.5);
  AddMetric(&p, "Unmapped", 2, 1);
  return p.SerializeAsString();
}

std::string Data(uint64_t seq, uint64_t alias, double v, uint64_t t = kT + 1) {
  Payload p;
  p.set_timestamp(t);
  p.set_seq(seq);
  AddMetric(&p, "", alias, v);
  return p.SerializeAsString();
}

TEST(SparkplugTopicTest, NodeAndDeviceTopics) {
  std::string problem;
  EXPECT_FALSE(ParseSparkplugTopic("plant/x", &problem).has_value());
  auto n = ParseSparkplugTopic("spBv1.0/g/NDATA/e", &problem);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->type, "NDATA");
  EXPECT_EQ(n->edge_node, "e");
  auto d = ParseSparkplugTopic("spBv1.0/g/DDATA/e/d", &problem);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->device, "d");
  auto bad = ParseSparkplugTopic("spBv1.0/g/DDATA/e", &problem);
  ASSERT_TRUE(bad.has_value());
  EXPECT_TRUE(bad->type.empty());
  EXPECT_THAT(problem, HasSubstr("not a Sparkplug B topic: \"spBv1.0/g/DDATA/e\""));
}

TEST(SparkplugDecoderTest, BirthDeclaresAliasesAndDataIsDecodedByThem) {
  Config c = MakeConfig();
  SparkplugDecoder d(c);
  SparkplugResult birth = d.Decode(Topic("NBIRTH"), Birth(0, 0));
  ASSERT_EQ(birth.records.size(), 1u);  // Temp's current value; Unmapped ignored
  EXPECT_EQ(birth.records[0].node(), "a/b");
  EXPECT_EQ(birth.records[0].indicator(), "temperature");
  EXPECT_EQ(birth.ignored_metrics, 1u);
  SparkplugResult data = d.Decode(Topic("NDATA"), Data(1, 1, 21.0));
  ASSERT_EQ(data.records.size(), 1u);
  EXPECT_EQ(data.records[0].value(), 21.0);
  EXPECT_EQ(data.records[0].event_time_ms(), static_cast<int64_t>(kT));
  EXPECT_FALSE(data.rebirth);
  // The device: DBIRTH, then DDATA by alias.
  Payload db;
  db.set_timestamp(kT);
  db.set_seq(2);
  AddMetric(&db, "Flow", 7, 3.5);
  ASSERT_EQ(d.Decode(Topic("DBIRTH", "pump"), db.SerializeAsString()).records.size(), 1u);
  SparkplugResult dd = d.Decode(Topic("DDATA", "pump"), Data(3, 7, 4.5));
  ASSERT_EQ(dd.records.size(), 1u);
  EXPECT_EQ(dd.records[0].node(), "a/b/c");
  EXPECT_EQ(dd.records[0].value(), 4.5);
}

TEST(SparkplugDecoderTest, ASeqGapAsksForARebirthOnce) {
  Config c = MakeConfig();
  SparkplugDecoder d(c);
  d.Decode(Topic("NBIRTH"), Birth(0, 0));
  EXPECT_FALSE(d.Decode(Topic("NDATA"), Data(1, 1, 1)).rebirth);
  SparkplugResult gap = d.Decode(Topic("NDATA"), Data(5, 1, 2));
  EXPECT_TRUE(gap.rebirth);
  EXPECT_EQ(gap.records.size(), 1u);  // the values are still taken
  EXPECT_FALSE(d.Decode(Topic("NDATA"), Data(9, 1, 3)).rebirth) << "asked already";
  d.Decode(Topic("NBIRTH"), Birth(1, 0));
  EXPECT_TRUE(d.Decode(Topic("NDATA"), Data(7, 1, 2)).rebirth) << "a new birth, a new gap";
  EXPECT_EQ(SparkplugDecoder::NcmdTopic(Topic("NDATA")), "spBv1.0/plant/NCMD/edge1");
  Payload req;
  ASSERT_TRUE(req.ParseFromString(RebirthRequestPayload(kT)));
  ASSERT_EQ(req.metrics_size(), 1);
  EXPECT_EQ(req.metrics(0).name(), "Node Control/Rebirth");
  EXPECT_TRUE(req.metrics(0).boolean_value());
}

TEST(SparkplugDecoderTest, ARedeliveredMessageIsNotCountedTwice) {
  Config c = MakeConfig();
  SparkplugDecoder d(c);
  d.Decode(Topic("NBIRTH"), Birth(3, 0));
  EXPECT_EQ(d.Decode(Topic("NDATA"), Data(1, 1, 1)).records.size(), 1u);
  SparkplugResult again = d.Decode(Topic("NDATA"), Data(1, 1, 1));
  EXPECT_TRUE(again.duplicate);
  EXPECT_TRUE(again.records.empty());
  EXPECT_FALSE(again.rebirth);
  // The same seq 256 messages later (seq wraps) has another timestamp: not a duplicate.
  EXPECT_EQ(d.Decode(Topic("NDATA"), Data(2, 1, 1, kT + 999)).records.size(), 1u);
  EXPECT_TRUE(d.Decode(Topic("NBIRTH"), Birth(3, 0)).duplicate) << "the birth too";
}

TEST(SparkplugDecoderTest, DeathsStopTheSeriesAndDataAfterThemAsksForABirth) {
  Config c = MakeConfig();
  SparkplugDecoder d(c);
  d.Decode(Topic("NBIRTH"), Birth(4, 0));
  Payload death;
  death.set_timestamp(kT + 5);
  death.set_seq(1);
  EXPECT_EQ(d.Decode(Topic("DDEATH", "pump"), death.SerializeAsString()).stopped,
            "plant/edge1/pump");
  // An NDEATH of an older session (a stale will) is not this session's death.
  Payload old;
  Payload::Metric* bd = old.add_metrics();
  bd->set_name("bdSeq");
  bd->set_long_value(3);
  EXPECT_EQ(d.Decode(Topic("NDEATH"), old.SerializeAsString()).stopped, "");
  bd->set_long_value(4);
  EXPECT_EQ(d.Decode(Topic("NDEATH"), old.SerializeAsString()).stopped, "plant/edge1");
  SparkplugResult after = d.Decode(Topic("NDATA"), Data(2, 1, 1));
  EXPECT_TRUE(after.records.empty());
  ASSERT_EQ(after.errors.size(), 1u);
  EXPECT_EQ(after.errors[0].reason, kReasonNoBirth);
  EXPECT_TRUE(after.rebirth);
}

TEST(SparkplugDecoderTest, BadPayloadsNameTheirReason) {
  Config c = MakeConfig();
  SparkplugDecoder d(c);
  EXPECT_EQ(d.Decode(Topic("NDATA"), "\xff\xff garbage").errors.at(0).reason, kReasonSyntax);
  d.Decode(Topic("NBIRTH"), Birth(0, 0));
  EXPECT_EQ(d.Decode(Topic("NDATA"), Data(1, 99, 1)).errors.at(0).reason, kReasonUnknownAlias);
  Payload p;
  p.set_seq(300);
  EXPECT_EQ(d.Decode(Topic("NDATA"), p.SerializeAsString()).errors.at(0).reason, kReasonBadSeq);
  Payload s;
  s.set_seq(2);
  s.set_timestamp(kT);
  Payload::Metric* m = s.add_metrics();
  m->set_alias(1);
  m->set_datatype(12);
  m->set_string_value("hot");
  SparkplugResult str = d.Decode(Topic("NDATA"), s.SerializeAsString());
  ASSERT_EQ(str.errors.size(), 1u);
  EXPECT_EQ(str.errors[0].reason, kReasonBadValue);
  EXPECT_THAT(str.errors[0].problem, HasSubstr("\"Temp\": datatype 12 is not a number"));
  Payload nt;
  nt.set_seq(3);
  Payload::Metric* m2 = nt.add_metrics();
  m2->set_alias(1);
  m2->set_double_value(1);
  EXPECT_EQ(d.Decode(Topic("NDATA"), nt.SerializeAsString()).errors.at(0).reason, kReasonBadTime);
}

}  // namespace
}  // namespace cybersyn::ingest
