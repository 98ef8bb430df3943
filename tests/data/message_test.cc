#include "lcio/data/message.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace lcio::data
