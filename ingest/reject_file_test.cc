#include "ingest/reject_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace cybersyn::ingest {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(RejectFileTest, CommentsLinesAndTheHeaderInForce) {
  const std::string dir = ::testing::TempDir() + "/reject-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  RejectFile f(dir + "/rejected/x.csv");
  EXPECT_FALSE(std::filesystem::exists(f.path())) << "created on the first line only";
  ASSERT_TRUE(f.Append("x.csv:3: value: expected a number, got \"abc\"", "a,output,abc,0").ok());
  ASSERT_TRUE(f.Append("x.csv:9: time: missing", "a,output,1", "time,node,indicator,value").ok());
  ASSERT_TRUE(f.Append("x.csv:10: node: missing\r\x1b[2J", ",output,1", "time,node,indicator,value",
                       /*sync=*/true)
                  .ok());
  ASSERT_TRUE(f.Append("x.csv:11: line: read error", "").ok());
  EXPECT_EQ(Read(f.path()),
            "# x.csv:3: value: expected a number, got \"abc\"\n"
            "a,output,abc,0\n"
            "time,node,indicator,value\n"
            "# x.csv:9: time: missing\n"
            "a,output,1\n"
            "# x.csv:10: node: missing\\x0d\\x1b[2J\n"
            ",output,1\n"
            "# x.csv:11: line: read error\n");
  EXPECT_EQ(f.records(), 3u);
  std::filesystem::remove_all(dir);
}

TEST(RejectFileTest, RecordsAsJsonLinesTheGatewayReadsBack) {
  v1::Record r;
  r.set_node("cl/e/u");
  r.set_indicator("output");
  r.set_value(0.1);
  r.set_event_time_ms(1'714'564'800'000);
  (*r.mutable_labels())["shift"] = "night \"2\"";
  EXPECT_EQ(RecordAsJsonLine(r),
            R"({"indicator":"output","labels":{"shift":"night \"2\""},"node":"cl/e/u",)"
            R"("time":1714564800000,"value":0.1})");
  EXPECT_EQ(RejectFileName("set-aside", "jsonl").size(),
            std::string("set-aside-20240501T120000Z.jsonl").size());
}

}  // namespace
}  // namespace cybersyn::ingest
