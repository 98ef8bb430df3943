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

TEST(Shorten, EscapesControlCharactersAndBytesThatAreNotUtf8) {
  // A terminal escape sequence, a NUL, DEL, a C1 control (U+0085) and a
  // stray continuation byte: each byte as \xNN; well-formed text as it is.
  EXPECT_EQ(Shorten(std::string("a\x1b[31mb\0c\x7f", 10)), "a\\x1b[31mb\\x00c\\x7f");
  EXPECT_EQ(Shorten("x\xc2\x85y\x80\xffz"), "x\\xc2\\x85y\\x80\\xffz");
  EXPECT_EQ(Shorten("line\nnext\ttab"), "line\\x0anext\\x09tab");
  EXPECT_EQ(Shorten("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  // Overlong forms and surrogates are not UTF-8.
  EXPECT_EQ(Shorten("\xc0\xaf\xed\xa0\x80"), "\\xc0\\xaf\\xed\\xa0\\x80");
  // The bound holds after escaping: an escape is never cut in two, and the
  // note gives the input's length.
  EXPECT_EQ(Shorten("ab\x01"
                    "cd",
                    5),
            "ab...(5 bytes)");
  EXPECT_EQ(Shorten("ab\x01"
                    "cd",
                    6),
            "ab\\x01...(5 bytes)");
  EXPECT_EQ(Shorten(std::string(100, '\xff'), 8), "\\xff\\xff...(100 bytes)");
  for (size_t max : {0, 1, 7, 64}) {
    const std::string text = "\x1b\xff\xc3\xa9" + std::string(300, '\x01');
    const std::string out = Shorten(text, max);
    EXPECT_LE(out.find("...("), max) << out;
  }
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
