#include "lcio/data/message.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace lcio::data {
namespace {

TEST(Shorten, KeepsShortTextAndCutsLongTextOnACharacterBoundary) {
  EXPECT_EQ(Shorten("Jetson TX2"), "Jetson TX2");
  EXPECT_EQ(Shorten(std::string(128, 'x')), std::string(128, 'x'));
  EXPECT_EQ(Shorten(std::string(100000, 'x')), std::string(128, 'x') + "...(100000 bytes)");
  EXPECT_EQ(Shorten("abcdef", 3), "abc...(6 bytes)");
  // "é" is two bytes: a cut inside it backs up to before it.
  EXPECT_EQ(Shorten("ab\xc3\xa9z", 3), "ab...(5 bytes)");
  EXPECT_EQ(Shorten("ab\xc3\xa9z", 4), "ab\xc3\xa9...(5 bytes)");
}

TEST(ExactNumber, IsTheShortestTextThatReadsBackExactly) {
  EXPECT_EQ(ExactNumber(1.5), "1.5");
  EXPECT_EQ(ExactNumber(1.0000001), "1.0000001");
  EXPECT_EQ(ExactNumber(1000000.4), "1000000.4");
  EXPECT_EQ(ExactNumber(0.1), "0.1");
  EXPECT_EQ(ExactNumber(-0.0), "-0");
  EXPECT_EQ(ExactNumber(std::nan("")), "nan");
  EXPECT_EQ(ExactNumber(-INFINITY), "-inf");
  for (double v : {0.1 + 0.2, 1e-300, 1.7976931348623157e308, 123456789.123456789})
    EXPECT_EQ(std::stod(ExactNumber(v)), v) << ExactNumber(v);
}

}  // namespace
}  // namespace lcio::data
