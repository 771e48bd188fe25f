#include "ingest/line_hashes.h"

#include <filesystem>

#include "gtest/gtest.h"

namespace cybersyn::ingest {
namespace {

TEST(LineHashesTest, PositionsRoundTripAndLegacyOnesParse) {
  LineHashes h;
  h.Add("node,indicator,value,time", true, false);
  h.Add("a,output,1,0", false, false);
  EXPECT_EQ(h.line(), 2);
  EXPECT_EQ(h.offset(), 26 + 12);
  auto p = LinePosition::Parse(h.Position({7, 9}));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->legacy);
  EXPECT_EQ(p->offset, 38);
  EXPECT_EQ(p->line, 2);
  EXPECT_EQ(p->hash, h.prefix_hash());
  EXPECT_EQ(p->file.device, 7u);
  EXPECT_EQ(p->file.inode, 9u);
  p = LinePosition::Parse("120:4:1");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->legacy);
  EXPECT_EQ(p->offset, 120);
  EXPECT_EQ(LinePosition::Parse("2:x").status().message(), "bad stored position \"2:x\"");
}

TEST(LineHashesTest, TheFileOfLineHashesNamesTheFirstChangedLine) {
  const std::string dir = ::testing::TempDir() + "/hashes-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  const std::string path = LineHashFilePath(dir, "csv:/data/x.csv");
  EXPECT_EQ(path.rfind(dir + "/inputs/", 0), 0u);
  uint64_t prefix = 0;
  {
    LineHashes h;
    h.SetFile(path);
    for (int i = 1; i <= 40000; ++i) h.Add("line " + std::to_string(i), true, false);
    h.Flush();
    prefix = h.prefix_hash();
  }
  EXPECT_EQ(std::filesystem::file_size(path), 40000u * 4);
  // The same lines verify; a change at line 31234 is found there.
  LineHashes v;
  v.SetFile(path);
  for (int i = 1; i <= 40000; ++i) {
    v.Add("line " + std::to_string(i) + (i == 31234 ? "!" : ""), true, true);
    if (v.mismatch()) break;
  }
  EXPECT_TRUE(v.mismatch());
  EXPECT_EQ(v.line(), 31234);
  // Unchanged: no mismatch and the same prefix hash; recording then cuts the file there.
  LineHashes w;
  w.SetFile(path);
  for (int i = 1; i <= 40000; ++i) w.Add("line " + std::to_string(i), true, true);
  EXPECT_FALSE(w.mismatch());
  EXPECT_EQ(w.prefix_hash(), prefix);
  LineHashes x;
  x.SetFile(path);
  for (int i = 1; i <= 10; ++i) x.Add("line " + std::to_string(i), true, true);
  ASSERT_TRUE(x.StartRecording().ok());
  x.Add("another", true, false);
  x.Flush();
  EXPECT_EQ(std::filesystem::file_size(path), 11u * 4);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cybersyn::ingest
