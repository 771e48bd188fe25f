#include "common/safe_text.h"

#include <string>

#include "gtest/gtest.h"

namespace cybersyn {
namespace {

TEST(SafeTextTest, QuotesAndEscapesWhatATerminalWouldActOn) {
  EXPECT_EQ(SafeQuote("cl/textiles"), "\"cl/textiles\"");
  EXPECT_EQ(SafeQuote("\x1b[2Jgone"), "\"\\x1b[2Jgone\"");
  EXPECT_EQ(SafeQuote("a\rb\nc\td"), "\"a\\rb\\nc\\td\"");
  EXPECT_EQ(SafeQuote(std::string("cut\0here", 8)), "\"cut\\x00here\"");
  EXPECT_EQ(SafeQuote("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
  EXPECT_EQ(SafeQuote("\x7f"), "\"\\x7f\"");
}

TEST(SafeTextTest, NonAsciiIsShownByCodePointSoHomoglyphsStandOut) {
  EXPECT_EQ(SafeQuote("\xd1\x81l/textiles"), "\"\\u0441l/textiles\"");  // Cyrillic es
  EXPECT_EQ(SafeQuote("\xef\xbb\xbfnode"), "\"\\ufeffnode\"");          // a BOM
  EXPECT_EQ(SafeQuote("\xf0\x9f\x98\x80"), "\"\\U0001f600\"");
  EXPECT_EQ(SafeQuote("bad\xff"), "\"bad\\xff\"");
}

TEST(SafeTextTest, LongTextIsCutWithItsLength) {
  const std::string big(1 << 20, 'x');
  EXPECT_EQ(SafeQuote(big), "\"" + std::string(100, 'x') + "\"... (1048576 bytes)");
  EXPECT_EQ(SafeQuote("abcdef", 3), "\"abc\"... (6 bytes)");
  EXPECT_EQ(SafeQuote("abc", 3), "\"abc\"");
  EXPECT_EQ(SafeName("abcdef", 3), "abc... (6 bytes)");
}

TEST(SafeTextTest, SafeLineKeepsPrintableUnicodeAndEscapesControls) {
  EXPECT_EQ(SafeLine("lecturas-a\xc3\xb1o.csv:3: node: \"x\\y\""),
            "lecturas-a\xc3\xb1o.csv:3: node: \"x\\y\"");
  EXPECT_EQ(SafeLine("a\x1b[2Jb\r\xc2\x9b"), "a\\x1b[2Jb\\x0d\\u009b");
}

}  // namespace
}  // namespace cybersyn
