// The shared JSON nesting limit (json_depth.h) and the data loader behind it.
#include "lcio/data/json_depth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "lcio/data/json_parse.h"
#include "lcio/data/m4a1.h"

namespace lcio::data {
namespace {

std::string Nested(int depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

// What every reader's message must say: where, the rule and the limit.
void ExpectDepthError(const absl::Status& status, const std::string& source) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), source)) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "more than 64 levels deep (the limit)"))
      << status;
}

TEST(JsonDepth, AcceptsTheLimitAndRefusesOneMore) {
  EXPECT_TRUE(CheckJsonDepth(Nested(kMaxJsonDepth), "f.json").ok());
  const absl::Status s = CheckJsonDepth(Nested(kMaxJsonDepth + 1), "f.json");
  ExpectDepthError(s, "f.json");
  EXPECT_TRUE(absl::StrContains(s.message(), "byte offset 64")) << s;
  ExpectDepthError(CheckJsonDepth(Nested(100, '{', '}'), "f.json"), "f.json");
}

TEST(JsonDepth, BracketsInsideStringsDoNotCount) {
  const std::string deep_in_string = "[\"" + Nested(1000) + "\\\"" + std::string(1000, '{') + "\"]";
  EXPECT_TRUE(CheckJsonDepth(deep_in_string, "f.json").ok());
  // Siblings do not add up.
  std::string wide = "[";
  for (int i = 0; i < 1000; ++i) wide += Nested(10) + ",";
  wide += "1]";
  EXPECT_TRUE(CheckJsonDepth(wide, "f.json").ok());
}

TEST(JsonDepth, ParseJsonRefusesDeepTextAndNamesParseErrors) {
  absl::Status error;
  EXPECT_TRUE(ParseJson(Nested(100000), "x.json", &error).is_discarded());
  ExpectDepthError(error, "x.json");
  error = absl::OkStatus();
  EXPECT_TRUE(ParseJson("{\"a\": ", "x.json", &error).is_discarded());
  EXPECT_TRUE(absl::StrContains(error.message(), "x.json: ")) << error;
  EXPECT_EQ(ParseJson("{\"a\": [1, 2]}", "x.json")["a"][1], 2);
}

// nlohmann keeps the last of two values of one key in silence: a training
// config or profiles file saying two things about one field was read as the
// second.
TEST(JsonDepth, ParseJsonRefusesAKeyTwiceInOneObject) {
  absl::Status error;
  EXPECT_TRUE(
      ParseJson(R"({"timesteps": 2000, "timesteps": 3000})", "cfg.json", &error).is_discarded());
  EXPECT_NE(error.message().find("cfg.json: key \"timesteps\" appears twice in one object"),
            std::string::npos)
      << error;
  EXPECT_TRUE(ParseJson(R"([{"a": {"b": 1, "c": 2, "b": 3}}])", "x", &error).is_discarded());
  EXPECT_NE(error.message().find("key \"b\""), std::string::npos) << error;
  // One key in different objects is fine, nested or side by side.
  const auto ok = ParseJson(R"({"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}], "c": {}})", "x");
  ASSERT_FALSE(ok.is_discarded());
  EXPECT_EQ(ok["b"][1]["a"], 2);
  EXPECT_EQ(ok["a"]["a"], 1);
}

// nlohmann quotes the whole token it last read: a 2 MB string cut by a raw
// newline made a 2 MB message, in ParseJson and in the data loader alike.
TEST(JsonDepth, AParseErrorQuotesAtMost64BytesOfItsToken) {
  const std::string text = "{\"a\": \"" + std::string(2 << 20, 'x') + "\n\"}";
  absl::Status error;
  EXPECT_TRUE(ParseJson(text, "x.json", &error).is_discarded());
  EXPECT_LT(error.message().size(), 600u) << error.message().substr(0, 800);
  EXPECT_TRUE(absl::StrContains(error.message(), "last read: '\"xxx")) << error;
  EXPECT_TRUE(absl::StrContains(error.message(), "bytes)")) << error;  // Shorten's mark
  const std::string episodes = "[" + text + "]";
  const absl::Status loaded = ParseM4A1(episodes, "big.json").status();
  EXPECT_FALSE(loaded.ok());
  EXPECT_LT(loaded.message().size(), 1200u) << loaded.message().substr(0, 1500);
}

// 100000 levels crashed the loader (stack overflow) before the limit.
TEST(JsonDepth, TheDataLoaderRefusesDeepNesting) {
  ExpectDepthError(ParseM4A1(Nested(100000), "deep.json").status(), "deep.json");
  const std::string in_an_episode =
      "[{\"id\": 0, \"image_paths\": " + std::string(100000, '[') + std::string(100000, ']') + "}]";
  ExpectDepthError(ParseM4A1(in_an_episode, "deep.json").status(), "deep.json");
}

TEST(WholeNumber, ReadsIntegersExactlyOrNamesTheRule) {
  using Json = nlohmann::json;
  auto read_int = [](const Json& v) { return WholeNumber<int>(v, "n", -5, 1 << 20); };
  EXPECT_EQ(*read_int(Json(7)), 7);
  EXPECT_EQ(*read_int(Json(-5)), -5);
  EXPECT_EQ(*read_int(Json(6e5)), 600000);  // a whole number written as a decimal
  EXPECT_EQ(*read_int(Json(9.0)), 9);
  for (const Json& bad :
       {Json(1.5), Json(-6), Json(1 << 21), Json(1e10), Json(1e300), Json(NAN), Json("7"),
        Json(nullptr), Json::array({1}), Json(uint64_t{1} << 63), Json(-(int64_t{1} << 40))}) {
    auto out = read_int(bad);
    ASSERT_FALSE(out.ok()) << bad.dump();
    EXPECT_TRUE(absl::StrContains(
        out.status().message(), "n = " + bad.dump() + ": must be a whole number in [-5, 1048576]"))
        << out.status();
  }
  // Unsigned 64-bit: the whole range, no negative number wrapping to 2^64 - 1.
  EXPECT_EQ(*WholeNumber<uint64_t>(Json(UINT64_MAX), "seed", 0, UINT64_MAX), UINT64_MAX);
  EXPECT_FALSE(WholeNumber<uint64_t>(Json(-1), "seed", 0, UINT64_MAX).ok());
  // Past 2^53 a double no longer holds every integer: refused as a decimal.
  EXPECT_FALSE(WholeNumber<int64_t>(Json(1e17), "big", 0, INT64_MAX).ok());
  EXPECT_EQ(*WholeNumber<int64_t>(Json(int64_t{1} << 60), "big", 0, INT64_MAX), int64_t{1} << 60);
  // Bounds of either sign are compared as such: a negative maximum is not
  // read as a huge one, a minimum past INT64_MAX not as a negative one.
  EXPECT_FALSE(WholeNumber<int>(Json(5), "n", -10, -1).ok());
  EXPECT_EQ(*WholeNumber<int>(Json(-3), "n", -10, -1), -3);
  EXPECT_FALSE(WholeNumber<int>(Json(-3.0), "n", -2, -1).ok());
  EXPECT_FALSE(WholeNumber<uint64_t>(Json(-1), "n", uint64_t{1} << 63, UINT64_MAX).ok());
  EXPECT_EQ(*WholeNumber<uint64_t>(Json(UINT64_MAX), "n", uint64_t{1} << 63, UINT64_MAX),
            UINT64_MAX);
  EXPECT_EQ(*WholeNumber<int64_t>(Json(INT64_MIN), "n", INT64_MIN, 0), INT64_MIN);
  // A positive lower bound holds for unsigned and signed storage alike.
  EXPECT_FALSE(WholeNumber<int>(Json(0), "k", 1, 10).ok());
  EXPECT_FALSE(WholeNumber<int>(Json(uint64_t{0}), "k", 1, 10).ok());
}

}  // namespace
}  // namespace lcio::data
