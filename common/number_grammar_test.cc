#include "common/number_grammar.h"

#include "gtest/gtest.h"

namespace cybersyn {
namespace {

TEST(NumberGrammarTest, JsonNumbers) {
  EXPECT_EQ(*ParseNumber("12.5"), 12.5);
  EXPECT_EQ(*ParseNumber("-3e2"), -300);
  EXPECT_EQ(*ParseNumber("0"), 0);
  EXPECT_EQ(*ParseNumber("-0.25E+1"), -2.5);
  EXPECT_EQ(*ParseNumber("1e-400"), 0);  // underflow reads as 0, as in JSON parsers
  EXPECT_EQ(*ParseNumber("1.7976931348623157e308"), 1.7976931348623157e308);
  EXPECT_TRUE(IsIntegerSyntax("-12"));
  EXPECT_FALSE(IsIntegerSyntax("1.0"));
  EXPECT_FALSE(IsIntegerSyntax("1e3"));
}

std::string Error(absl::string_view text) {
  absl::StatusOr<double> d = ParseNumber(text);
  EXPECT_FALSE(d.ok()) << text << " parsed as " << (d.ok() ? *d : 0);
  return std::string(d.status().message());
}

TEST(NumberGrammarTest, WhatJsonRejectsCsvRejectsToo) {
  EXPECT_EQ(Error("0x10"), "expected a number, got \"0x10\" (hexadecimal is not accepted)");
  EXPECT_EQ(Error("0x1p3"), "expected a number, got \"0x1p3\" (hexadecimal is not accepted)");
  EXPECT_EQ(Error("+1"), "expected a number, got \"+1\" (no leading '+')");
  EXPECT_EQ(Error(".5"), "expected a number, got \".5\" (write a digit before the point: 0.5)");
  EXPECT_EQ(Error("5."), "expected a number, got \"5.\" (write a digit after the point: 5.0)");
  EXPECT_EQ(Error("007"), "expected a number, got \"007\" (no leading zeros)");
  EXPECT_EQ(Error("1,5"), "expected a number, got \"1,5\" (the decimal separator is '.')");
  EXPECT_EQ(Error("abc"), "expected a number, got \"abc\"");
  EXPECT_EQ(Error(""), "expected a number, got \"\"");
  EXPECT_EQ(Error("1 000"), "expected a number, got \"1 000\"");
  EXPECT_EQ(Error("1e"), "expected a number, got \"1e\"");
}

TEST(NumberGrammarTest, NonFiniteAndOverflow) {
  EXPECT_EQ(Error("nan"), "must be finite, got nan");
  EXPECT_EQ(Error("NaN"), "must be finite, got nan");
  EXPECT_EQ(Error("inf"), "must be finite, got inf");
  EXPECT_EQ(Error("-Infinity"), "must be finite, got -inf");
  EXPECT_EQ(Error("1e999"), "1e999 is out of range for a number (a double reaches about 1.8e308)");
  EXPECT_EQ(Error("-1e999"),
            "-1e999 is out of range for a number (a double reaches about 1.8e308)");
}

TEST(NumberGrammarTest, Integers) {
  EXPECT_EQ(*ParseInteger("-9223372036854775808"), INT64_MIN);
  EXPECT_EQ(ParseInteger("9223372036854775808").status().message(),
            "9223372036854775808 is out of range (a signed 64-bit integer)");
  EXPECT_EQ(ParseInteger("1.5").status().message(), "expected an integer, got \"1.5\"");
}

}  // namespace
}  // namespace cybersyn
