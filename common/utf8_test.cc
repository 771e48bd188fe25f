#include "common/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace cybersyn {
namespace {

TEST(Utf8Test, ValidText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii that is longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("a\xc3\xb1o"));                    // año
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac 10"));               // € 10
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));              // U+1F600
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0inside", 10)));  // NUL is valid UTF-8
}

TEST(Utf8Test, InvalidTextAndWhereItStops) {
  EXPECT_EQ(ValidUtf8Prefix("abc\xff"), 3u);
  EXPECT_EQ(ValidUtf8Prefix("0123456789\x80"), 10u);   // a lone continuation byte
  EXPECT_EQ(ValidUtf8Prefix("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(ValidUtf8Prefix("\xed\xa0\x80"), 0u);      // a surrogate
  EXPECT_EQ(ValidUtf8Prefix("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(ValidUtf8Prefix("x\xe2\x82"), 1u);         // cut short
  char32_t cp = 0;
  EXPECT_EQ(DecodeUtf8("\xd1\x81", &cp), 2);  // Cyrillic es
  EXPECT_EQ(cp, U'\u0441');
  EXPECT_EQ(DecodeUtf8("", &cp), 0);
}

}  // namespace
}  // namespace cybersyn
