#include "lcio/data/m4a1.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "test_util.h"

namespace lcio::data {
namespace {

using json = nlohmann::json;
using testing::ExpectError;
using testing::ExpectSameDataset;
constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

const std::string kM4A1Path = std::string(LCIO_SOURCE_DIR) + "/data/M4A1.json";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A valid small document: two episodes, three views, two turns each; episode
// 1's turn 1 is a cloud call with views [2, 0].
json MakeTurn(int action, json image_index, const std::string& task = "Query") {
  return json{{"question", "What is on the table?"},
              {"task_cat", task},
              {"action", action},
              {"image_index", std::move(image_index)},
              {"answer", "A cup of tea."},
              {"score", 7.5},
              {"interaction_time", 2.25},
              {"usage_cost", 6.75e-05}};
}

json MakeEpisode(int64_t id) {
  return json{
      {"id", id},
      {"image_paths", {"a.jpg", "b.jpg", "c.jpg"}},
      {"interactions", {MakeTurn(0, nullptr, "Query"), MakeTurn(1, {2, 0}, "Assistive System")}},
      {"association_score", {{0.2, 0.15, 0.25}, {0.13, 0.28, 0.2}}}};
}

json MakeDoc() { return json::array({MakeEpisode(0), MakeEpisode(1)}); }

absl::Status Parse(const json& doc, const LoadOptions& options = {}) {
  return ParseM4A1(doc.dump(), "test.json", options).status();
}
absl::Status ParseText(const std::string& text, const LoadOptions& options = {}) {
  return ParseM4A1(text, "test.json", options).status();
}

TEST(M4A1Parse, ValidDocument) {
  auto d = ParseM4A1(MakeDoc().dump(), "test.json");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->source, "test.json");
  EXPECT_EQ(d->num_views, 3);
  EXPECT_EQ(d->tasks, (std::vector<std::string>{"Assistive System", "Query"}));
  ASSERT_EQ(d->episodes.size(), 2u);
  EXPECT_EQ(d->num_turns(), 4u);
  const Turn& t = d->episodes[1].turns[1];
  EXPECT_EQ(t.target, Target::kCloud);
  EXPECT_EQ(t.uploaded_views, (std::vector<int>{2, 0}));  // file order kept
  EXPECT_EQ(t.task, "Assistive System");
  EXPECT_EQ(t.task_index, 0);
  EXPECT_EQ(d->episodes[1].turns[0].task_index, 1);
  EXPECT_EQ(t.score, 7.5);
  EXPECT_EQ(t.interaction_time_s, 2.25);
  EXPECT_EQ(t.usage_cost_usd, 6.75e-05);
  EXPECT_EQ(d->episodes[0].association[1], (std::vector<double>{0.13, 0.28, 0.2}));
  EXPECT_EQ(d->IndexOfEpisode(1), 1);
  EXPECT_EQ(d->IndexOfEpisode(7), -1);
}

TEST(M4A1Parse, IntegerScoreAndUnknownExtraFieldsAccepted) {
  json doc = MakeDoc();
  doc[0]["interactions"][0]["score"] = 9;  // M4A1 itself writes two scores as integers
  doc[0]["interactions"][0]["comment"] = "extra fields are ignored";
  doc[0]["scene"] = 46;
  auto d = ParseM4A1(doc.dump(), "test.json");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->episodes[0].turns[0].score, 9.0);
}

TEST(M4A1Parse, NonContiguousIdsAndIndexOfEpisode) {
  json doc = json::array({MakeEpisode(42), MakeEpisode(-3), MakeEpisode(0)});
  auto d = ParseM4A1(doc.dump(), "test.json");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->IndexOfEpisode(42), 0);
  EXPECT_EQ(d->IndexOfEpisode(-3), 1);
  EXPECT_EQ(d->IndexOfEpisode(0), 2);
  EXPECT_EQ(d->IndexOfEpisode(1), -1);
}

TEST(M4A1Parse, LocalTurnWithEmptyListOrNullAccepted) {
  json doc = MakeDoc();
  doc[0]["interactions"][0]["image_index"] = json::array();
  doc[1]["interactions"][0]["image_index"] = nullptr;
  doc[1]["interactions"][1]["image_index"] = nullptr;  // text-only cloud call
  auto d = ParseM4A1(doc.dump(), "test.json");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->episodes[0].turns[0].uploaded_views.empty());
  EXPECT_TRUE(d->episodes[1].turns[1].uploaded_views.empty());
  EXPECT_EQ(d->episodes[1].turns[1].target, Target::kCloud);
}

// ---- One test per validation rule ----

TEST(M4A1Rules, EmptyFile) {
  ExpectError(ParseText(""), kInvalid, {"test.json", "empty", "0 bytes"});
  ExpectError(ParseText("  \n\t"), kInvalid, {"test.json", "empty", "4 bytes"});
}

TEST(M4A1Rules, TruncatedJsonReportsByteOffset) {
  const std::string text = MakeDoc().dump();
  // Cut inside a string, and cut cleanly between two members.
  const std::string mid = text.substr(0, 150);
  ExpectError(ParseText(mid), kInvalid,
              {"test.json", "invalid JSON", "byte offset 150 (end of input",
               "missing closing quote", "episode id 0 (index 0)"});
  const std::string clean = text.substr(0, text.rfind(",\"image_paths\"") + 1);
  ExpectError(ParseText(clean), kInvalid,
              {"test.json", "invalid JSON", absl::StrCat("byte offset ", clean.size()),
               "unexpected end of input", "episode id 1 (index 1)"});
}

TEST(M4A1Rules, InvalidJsonReportsByteOffsetAndLine) {
  // The stray comma is at 0-based byte 11, line 2 column 1.
  ExpectError(ParseText("[{\"id\": 0,\n,}]"), kInvalid,
              {"test.json", "invalid JSON", "byte offset 11", "line 2, column 1",
               "episode id 0 (index 0)"});
  ExpectError(ParseText("[{\"id\" 0}]"), kInvalid,
              {"invalid JSON", "byte offset 7", "line 1, column 8"});
  ExpectError(ParseText(MakeDoc().dump() + "x"), kInvalid, {"invalid JSON"});
  ExpectError(ParseText("[\"\xff\"]"), kInvalid, {"invalid JSON", "UTF-8"});
}

TEST(M4A1Rules, TopLevelNotArray) {
  ExpectError(ParseText("{\"id\": 0}"), kInvalid, {"'<top level>'", "object", "must be an array"});
  ExpectError(ParseText("42"), kInvalid, {"'<top level>'", "= 42", "must be an array"});
  ExpectError(ParseText("\"x\""), kInvalid, {"'<top level>'", "string", "must be an array"});
}

TEST(M4A1Rules, EmptyTopLevelArray) {
  ExpectError(ParseText("[]"), kInvalid, {"'<top level>'", "at least one episode"});
}

TEST(M4A1Rules, EpisodeNotAnObject) {
  ExpectError(ParseText("[7]"), kInvalid, {"episode index 0", "'<episode>'", "7", "object"});
  ExpectError(ParseText("[[1]]"), kInvalid, {"episode index 0", "[1]", "must be an object"});
}

TEST(M4A1Rules, TurnNotAnObject) {
  json doc = MakeDoc();
  doc[1]["interactions"][1] = "hello";
  ExpectError(Parse(doc), kInvalid,
              {"episode id 1", "turn 1", "'interactions[1]'", "\"hello\"", "must be an object"});
}

TEST(M4A1Rules, MissingEpisodeField) {
  for (const char* field : {"image_paths", "interactions", "association_score"}) {
    SCOPED_TRACE(field);
    json doc = MakeDoc();
    doc[1].erase(field);
    ExpectError(Parse(doc), kInvalid,
                {"test.json", "episode id 1 (index 1)", absl::StrCat("field '", field, "'"),
                 "<missing>", "required"});
  }
}

TEST(M4A1Rules, MissingIdNamesEpisodeIndex) {
  json doc = MakeDoc();
  doc[1].erase("id");
  ExpectError(Parse(doc), kInvalid, {"test.json", "episode index 1", "field 'id'", "<missing>"});
}

TEST(M4A1Rules, MissingTurnField) {
  for (const char* field : {"question", "task_cat", "action", "image_index", "answer", "score",
                            "interaction_time", "usage_cost"}) {
    SCOPED_TRACE(field);
    json doc = MakeDoc();
    doc[1]["interactions"][1].erase(field);
    ExpectError(Parse(doc), kInvalid,
                {"test.json", "episode id 1 (index 1), turn 1", absl::StrCat("field '", field, "'"),
                 "<missing>"});
  }
}

TEST(M4A1Rules, WrongTypes) {
  struct Case {
    json::json_pointer where;
    json value;
    std::vector<std::string_view> expect;
  };
  const std::vector<Case> cases = {
      {"/1/interactions/1/score"_json_pointer,
       "high",
       {"field 'score'", "\"high\"", "string", "must be a number"}},
      {"/1/id"_json_pointer, 1.5, {"field 'id'", "1.5", "must be an integer"}},
      {"/1/id"_json_pointer, "1", {"field 'id'", "\"1\"", "must be an integer"}},
      {"/1/interactions/0/question"_json_pointer,
       5,
       {"turn 0", "field 'question'", "= 5", "must be a string"}},
      {"/1/interactions/0/answer"_json_pointer,
       nullptr,
       {"field 'answer'", "null", "must be a string"}},
      {"/1/interactions/0/task_cat"_json_pointer,
       json::array(),
       {"field 'task_cat'", "[]", "must be a string"}},
      {"/1/interactions/0/action"_json_pointer,
       true,
       {"field 'action'", "true", "boolean", "integer 0 or 1"}},
      {"/1/interactions/0/action"_json_pointer, 1.0, {"field 'action'", "1.0", "integer 0 or 1"}},
      {"/1/interactions/1/image_index"_json_pointer,
       2,
       {"field 'image_index'", "= 2", "null or an array"}},
      {"/1/interactions/1/image_index/0"_json_pointer,
       "2",
       {"field 'image_index[0]'", "\"2\"", "integer view index"}},
      {"/1/interactions/1/usage_cost"_json_pointer,
       "0.01",
       {"field 'usage_cost'", "\"0.01\"", "must be a number"}},
      {"/1/interactions/1/interaction_time"_json_pointer,
       json::object(),
       {"field 'interaction_time'", "{}", "must be a number"}},
      {"/1/image_paths"_json_pointer,
       "a.jpg",
       {"field 'image_paths'", "\"a.jpg\"", "array of strings"}},
      {"/1/image_paths/2"_json_pointer, 3, {"field 'image_paths[2]'", "= 3", "must be a string"}},
      {"/1/interactions"_json_pointer,
       json::object(),
       {"field 'interactions'", "{}", "array of turns"}},
      {"/1/association_score"_json_pointer,
       0.5,
       {"field 'association_score'", "0.5", "array of rows"}},
      {"/1/association_score/1"_json_pointer,
       "x",
       {"turn 1", "field 'association_score[1]'", "\"x\"", "array of numbers"}},
      {"/1/association_score/1/2"_json_pointer,
       nullptr,
       {"turn 1", "field 'association_score[1][2]'", "null", "must be a number"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.where.to_string());
    json doc = MakeDoc();
    doc[c.where] = c.value;
    absl::Status s = Parse(doc);
    ExpectError(s, kInvalid, {"test.json"});
    for (std::string_view p : c.expect) ExpectError(s, kInvalid, {p});
  }
}

TEST(M4A1Rules, IdTooLargeForInt64) {
  json doc = MakeDoc();
  doc[1]["id"] = uint64_t{18446744073709551615u};
  ExpectError(Parse(doc), kInvalid, {"field 'id'", "18446744073709551615", "signed 64-bit"});
}

TEST(M4A1Rules, DuplicateEpisodeId) {
  json doc = json::array({MakeEpisode(5), MakeEpisode(6), MakeEpisode(5)});
  ExpectError(Parse(doc), kInvalid,
              {"episode id 5 (index 2)", "field 'id'", "= 5", "duplicate episode id", "index 0"});
}

TEST(M4A1Rules, DuplicateKey) {
  const std::string text =
      R"([{"id": 0, "id": 1, "image_paths": ["a"], "interactions": [], "association_score": []}])";
  ExpectError(ParseText(text), kInvalid, {"field 'id'", "duplicate key"});
}

TEST(M4A1Rules, EpisodeWithNoTurns) {
  json doc = MakeDoc();
  doc[1]["interactions"] = json::array();
  doc[1]["association_score"] = json::array();
  ExpectError(Parse(doc), kInvalid,
              {"episode id 1", "field 'interactions'", "[]", "at least one turn"});
}

TEST(M4A1Rules, ImageIndexNamesMissingView) {
  json doc = MakeDoc();
  doc[1]["interactions"][1]["image_index"] = {0, 3};
  ExpectError(
      Parse(doc), kInvalid,
      {"episode id 1", "turn 1", "field 'image_index[1]'", "= 3", "does not exist", "0..2"});
  doc[1]["interactions"][1]["image_index"] = {-1};
  ExpectError(Parse(doc), kInvalid, {"field 'image_index[0]'", "= -1", "does not exist"});
  doc[1]["interactions"][1]["image_index"] = {uint64_t{1} << 63};
  ExpectError(Parse(doc), kInvalid, {"field 'image_index[0]'", "does not exist"});
}

TEST(M4A1Rules, ImageIndexNamesViewTwice) {
  json doc = MakeDoc();
  doc[1]["interactions"][1]["image_index"] = {2, 0, 2};
  ExpectError(Parse(doc), kInvalid,
              {"episode id 1", "turn 1", "field 'image_index[2]'", "= 2", "same view twice"});
}

TEST(M4A1Rules, ImageIndexOnLocalTurn) {
  json doc = MakeDoc();
  doc[0]["interactions"][0]["image_index"] = {1};
  ExpectError(Parse(doc), kInvalid,
              {"episode id 0", "turn 0", "field 'image_index'", "[1]", "local turn (action 0)",
               "null or []"});
}

TEST(M4A1Rules, ActionNotZeroOrOne) {
  for (int action : {2, -1}) {
    json doc = MakeDoc();
    doc[1]["interactions"][0]["action"] = action;
    ExpectError(Parse(doc), kInvalid,
                {"episode id 1", "turn 0", "field 'action'", absl::StrCat("= ", action),
                 "must be 0 (local) or 1 (cloud)"});
  }
}

TEST(M4A1Rules, AssociationRowCountDiffersFromTurns) {
  json doc = MakeDoc();
  doc[1]["association_score"].push_back({0.1, 0.1, 0.1});
  ExpectError(Parse(doc), kInvalid,
              {"episode id 1", "field 'association_score'", "has 3 rows", "2 turns"});
}

TEST(M4A1Rules, AssociationRowWrongWidth) {
  json doc = MakeDoc();
  doc[1]["association_score"][1] = {0.1, 0.2};
  ExpectError(Parse(doc), kInvalid,
              {"episode id 1", "turn 1", "field 'association_score[1]'", "[0.1,0.2]",
               "has 2 entries", "3 views"});
}

TEST(M4A1Rules, InfiniteNumbers) {
  // JSON has no NaN/Infinity literal; an exponent too large for a double is
  // the way an infinity gets into a file.
  const std::string base = MakeDoc().dump();
  struct Case {
    std::string from, to;
    std::vector<std::string_view> expect;
  };
  const std::vector<Case> cases = {
      {"\"score\":7.5", "\"score\":1e999", {"field 'interactions[0].score'", "1e999", "finite"}},
      {"\"interaction_time\":2.25",
       "\"interaction_time\":-1e400",
       {"field 'interactions[0].interaction_time'", "-1e400", "finite"}},
      {"\"usage_cost\":6.75e-05", "\"usage_cost\":2E+309", {"usage_cost", "2E+309", "finite"}},
      {"[0.2,0.15,0.25]",
       "[0.2,1e999,0.25]",
       {"episode index 0", "field 'association_score[0][1]'", "1e999", "finite"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.to);
    std::string text = base;
    size_t pos = text.find(c.from);
    ASSERT_NE(pos, std::string::npos);
    text.replace(pos, c.from.size(), c.to);
    const size_t colon = c.to.find(':');
    const std::string number = c.to.substr(colon == std::string::npos ? 5 : colon + 1, 6);
    pos = text.find(number.substr(0, number.find(',')));  // where the number starts
    absl::Status s = ParseText(text);
    // Keys are dumped sorted, so "association_score" comes before "id".
    ExpectError(s, kInvalid,
                {"test.json", "index 0", absl::StrCat("byte offset ", pos, ", line 1")});
    for (std::string_view p : c.expect) ExpectError(s, kInvalid, {p});
  }
}

TEST(M4A1Rules, NegativeNumbers) {
  struct Case {
    json::json_pointer where;
    json value;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"/1/interactions/1/score"_json_pointer, -1, "score"},
      {"/1/interactions/1/interaction_time"_json_pointer, -0.5, "interaction_time"},
      {"/1/interactions/1/usage_cost"_json_pointer, -1e-06, "usage_cost"},
      {"/1/association_score/1/0"_json_pointer, -0.1, "association_score[1][0]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    json doc = MakeDoc();
    doc[c.where] = c.value;
    ExpectError(Parse(doc), kInvalid,
                {"episode id 1", "turn 1", absl::StrCat("field '", c.field, "'"),
                 absl::StrCat("= ", c.value.dump())});
  }
  json doc = MakeDoc();
  doc[1]["interactions"][1]["score"] = -1;
  ExpectError(Parse(doc), kInvalid, {"must be >= 0"});
  // Past the data set's bounds a mean or a reward overflows (1e308 gave inf).
  doc = MakeDoc();
  doc[1]["interactions"][1]["score"] = 1e308;
  ExpectError(Parse(doc), kInvalid, {"field 'score'", "must be <= 1000"});
  doc = MakeDoc();
  doc[1]["interactions"][0]["interaction_time"] = 2e6;
  ExpectError(Parse(doc), kInvalid, {"field 'interaction_time'", "must be <= 1e+06"});
  doc = MakeDoc();
  doc[1]["interactions"][0]["usage_cost"] = 1e7;
  ExpectError(Parse(doc), kInvalid, {"field 'usage_cost'", "must be <= 1e+06"});
  doc = MakeDoc();
  doc[1]["interactions"][1]["score"] = kMaxTurnScore;  // the bound itself is a score
  EXPECT_TRUE(Parse(doc).ok());
}

TEST(M4A1Rules, AssociationOutsideUnitInterval) {
  json doc = MakeDoc();
  doc[1]["association_score"][0][2] = 1.5;
  ExpectError(Parse(doc), kInvalid,
              {"episode id 1", "turn 0", "field 'association_score[0][2]'", "1.5", "[0, 1]"});
  doc[1]["association_score"][0][2] = 1;  // bounds are inclusive
  EXPECT_TRUE(Parse(doc).ok());
}

TEST(M4A1Rules, UnknownTaskWithFixedVocabulary) {
  LoadOptions o;
  o.task_vocabulary = std::vector<std::string>{"Query", "Assistive System", "Other"};
  auto d = ParseM4A1(MakeDoc().dump(), "test.json", o);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->tasks, *o.task_vocabulary);  // given order, not sorted
  EXPECT_EQ(d->episodes[0].turns[0].task_index, 0);
  EXPECT_EQ(d->episodes[0].turns[1].task_index, 1);

  json doc = MakeDoc();
  doc[1]["interactions"][1]["task_cat"] = "Cooking";
  ExpectError(Parse(doc, o), kInvalid,
              {"episode id 1", "turn 1", "field 'task_cat'", "\"Cooking\"", "unknown task",
               "Query, Assistive System, Other"});
}

// Joined logs declare the serving policy's vocabulary, which the turns may
// not all show: it is the data's, in its order, for training as for
// evaluation.
TEST(M4A1Rules, EpisodesDeclareTheTaskVocabulary) {
  const std::vector<std::string> declared = {"Query", "Recommendation", "Assistive System"};
  json doc = MakeDoc();
  doc[1]["tasks"] = declared;  // one episode declaring is enough
  auto d = ParseM4A1(doc.dump(), "test.json");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->tasks, declared);
  EXPECT_EQ(d->episodes[0].turns[0].task_index, 0);  // Query
  EXPECT_EQ(d->episodes[1].turns[1].task_index, 2);  // Assistive System
  doc[0]["tasks"] = {"Query", "Assistive System"};
  ExpectError(Parse(doc), kInvalid,
              {"episode id 1", "field 'tasks'", "the same list in every episode"});
  doc[0]["tasks"] = declared;
  doc[1]["interactions"][1]["task_cat"] = "Cooking";
  ExpectError(Parse(doc), kInvalid, {"field 'task_cat'", "\"Cooking\"", "declared vocabulary"});
  doc[1]["interactions"][1]["task_cat"] = "Query";
  doc[1]["tasks"] = {"Query", "Query"};
  ExpectError(Parse(doc), kInvalid, {"field 'tasks'", "names a task twice"});
  doc[1]["tasks"] = json::array();
  ExpectError(Parse(doc), kInvalid, {"field 'tasks'", "non-empty list"});
  // A caller's fixed vocabulary takes precedence.
  doc[1]["tasks"] = declared;
  LoadOptions o;
  o.task_vocabulary = std::vector<std::string>{"Assistive System", "Query"};
  auto fixed = ParseM4A1(doc.dump(), "test.json", o);
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ(fixed->tasks, *o.task_vocabulary);
}

TEST(M4A1Rules, EmptyTaskName) {
  json doc = MakeDoc();
  doc[0]["interactions"][1]["task_cat"] = "";
  ExpectError(Parse(doc), kInvalid, {"turn 1", "field 'task_cat'", "\"\"", "must not be empty"});
  // The decision log's readers take names up to 256 bytes.
  doc[0]["interactions"][1]["task_cat"] = std::string(257, 't');
  ExpectError(Parse(doc), kInvalid, {"turn 1", "field 'task_cat'", "must be at most 256 bytes"});
  doc[0]["interactions"][1]["task_cat"] = "Query";
  doc[0]["tasks"] = {"Query", std::string(257, 't')};
  ExpectError(Parse(doc), kInvalid, {"field 'tasks'", "names a task longer than 256 bytes"});
}

TEST(M4A1Rules, BadVocabularyOptions) {
  LoadOptions o;
  o.task_vocabulary = std::vector<std::string>{};
  ExpectError(Parse(MakeDoc(), o), kInvalid, {"task_vocabulary", "needs a task"});
  o.task_vocabulary = std::vector<std::string>{"Query", "Query"};
  ExpectError(Parse(MakeDoc(), o), kInvalid, {"task_vocabulary[1]", "\"Query\"", "duplicate"});
  o.task_vocabulary = std::vector<std::string>{""};
  ExpectError(Parse(MakeDoc(), o), kInvalid, {"task_vocabulary[0]", "must not be empty"});
}

TEST(M4A1Rules, ImagePathsMismatchViewCount) {
  json doc = MakeDoc();
  doc[1]["image_paths"] = {"a.jpg", "b.jpg"};
  ExpectError(Parse(doc), kInvalid,
              {"episode id 1", "field 'image_paths'", "has 2 entries", "3 views",
               "set by episode index 0"});
  LoadOptions o;
  o.num_views = 4;
  ExpectError(Parse(MakeDoc(), o), kInvalid,
              {"episode id 0", "field 'image_paths'", "has 3 entries", "4 views",
               "LoadOptions::num_views"});
}

TEST(M4A1Rules, NumViewsZero) {
  json doc = MakeDoc();
  doc[0]["image_paths"] = json::array();
  ExpectError(Parse(doc), kInvalid, {"episode id 0", "field 'image_paths'", "[]", "num_views 0"});
  LoadOptions o;
  o.num_views = 0;
  ExpectError(Parse(MakeDoc(), o), kInvalid, {"LoadOptions::num_views", "= 0", "must be >= 1"});
}

TEST(M4A1Rules, LongValuesAreShortenedInMessages) {
  json doc = MakeDoc();
  doc[1]["interactions"][0]["score"] = std::string(10000, 'x');
  absl::Status s = Parse(doc);
  ExpectError(s, kInvalid, {"field 'score'", "xxx...", "must be a number"});
  EXPECT_LT(s.message().size(), 300u);
}

// Any prefix or single-byte corruption of the real file must give an error
// or a dataset, never a crash or an exception.
TEST(M4A1Robustness, TruncationsAndCorruptionsNeverCrash) {
  const std::string text = ReadFile(kM4A1Path);
  ASSERT_FALSE(text.empty());
  for (size_t cut = 0; cut < text.size(); cut += 997) {
    absl::Status s = ParseText(text.substr(0, cut));
    EXPECT_FALSE(s.ok()) << "prefix " << cut;
  }
  std::mt19937_64 rng(7);
  const char replacements[] = {'\0', '"', ',', ']', '}', '{', '[', '-', '9', 'e', '\\', '\xff'};
  for (int i = 0; i < 300; ++i) {
    std::string t = text;
    t[rng() % t.size()] = replacements[rng() % sizeof(replacements)];
    auto d = ParseM4A1(t, "corrupt.json");
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), kInvalid) << d.status();
    }
  }
}

// ---- The embedded M4A1 sample ----

TEST(M4A1File, LoadsWithTheReferenceShape) {
  auto d = LoadM4A1File(kM4A1Path);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->source, kM4A1Path);
  EXPECT_EQ(d->episodes.size(), 100u);
  EXPECT_EQ(d->num_turns(), 352u);
  EXPECT_EQ(d->num_views, 3);
  EXPECT_EQ(d->tasks, (std::vector<std::string>{"Assistive System", "Message Editing", "Query",
                                                "Recommendation"}));
  std::map<size_t, int> turns_per_episode;
  std::map<std::string, int> per_task;
  int cloud = 0;
  double lo = 1, hi = 0;
  for (size_t i = 0; i < d->episodes.size(); ++i) {
    const Episode& e = d->episodes[i];
    EXPECT_EQ(e.id, static_cast<int64_t>(i));
    EXPECT_EQ(e.image_paths.size(), 3u);
    ++turns_per_episode[e.turns.size()];
    for (const Turn& t : e.turns) {
      ++per_task[t.task];
      EXPECT_EQ(d->tasks[t.task_index], t.task);
      cloud += t.target == Target::kCloud;
      if (t.target == Target::kLocal) {
        EXPECT_TRUE(t.uploaded_views.empty());
      }
    }
    for (const auto& row : e.association) {
      for (double a : row) {
        lo = std::min(lo, a);
        hi = std::max(hi, a);
      }
    }
  }
  EXPECT_EQ(turns_per_episode, (std::map<size_t, int>{{2, 20}, {3, 32}, {4, 24}, {5, 24}}));
  EXPECT_EQ(per_task, (std::map<std::string, int>{{"Assistive System", 99},
                                                  {"Message Editing", 82},
                                                  {"Query", 80},
                                                  {"Recommendation", 91}}));
  EXPECT_EQ(cloud, 182);
  EXPECT_GT(lo, 0.13);
  EXPECT_LT(hi, 0.28);
  EXPECT_EQ(d->episodes[0].turns[0].score, 0.5);
  EXPECT_EQ(d->episodes[0].turns[0].usage_cost_usd, 6.75e-05);
}

TEST(M4A1File, Sha256MatchesTheRecordedDigest) {
  EXPECT_EQ(Sha256Hex(ReadFile(kM4A1Path)),
            "9e767a55eff47436c46ca4bb9a226a7a584948e8fd04993d7b8669dcbfe1f9ce");
}

TEST(M4A1File, RoundTripsExactly) {
  auto d = LoadM4A1File(kM4A1Path);
  ASSERT_TRUE(d.ok()) << d.status();
  for (bool pretty : {false, true}) {
    SCOPED_TRACE(pretty);
    const std::string text = ToM4A1Json(*d, pretty);
    auto back = ParseM4A1(text, "<roundtrip>");
    ASSERT_TRUE(back.ok()) << back.status();
    ExpectSameDataset(*d, *back);
    EXPECT_EQ(ToM4A1Json(*back, pretty), text);  // serialisation is a fixed point
    // Same JSON value as the original file, key order and spacing aside.
    EXPECT_EQ(json::parse(text), json::parse(ReadFile(kM4A1Path)));
  }
}

TEST(M4A1File, StreamedWriteMatchesToM4A1Json) {
  auto d = LoadM4A1File(kM4A1Path);
  ASSERT_TRUE(d.ok()) << d.status();
  for (bool pretty : {false, true}) {
    std::ostringstream out;
    ASSERT_TRUE(WriteM4A1Json(*d, out, pretty).ok());
    EXPECT_EQ(out.str(), ToM4A1Json(*d, pretty));
  }
  std::ostringstream broken;
  broken.setstate(std::ios::badbit);
  EXPECT_EQ(WriteM4A1Json(*d, broken).code(), absl::StatusCode::kDataLoss);
}

TEST(M4A1File, NotFoundAndDirectory) {
  auto missing = LoadM4A1File("/nonexistent/dir/M4A1.json");
  ExpectError(missing.status(), absl::StatusCode::kNotFound, {"/nonexistent/dir/M4A1.json"});
  auto dir = LoadM4A1File(std::string(LCIO_SOURCE_DIR) + "/data");
  ExpectError(dir.status(), kInvalid, {"directory"});
}

TEST(M4A1File, EmptyFileOnDisk) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "lcio_data_test_empty.json").string();
  { std::ofstream(path, std::ios::trunc); }
  ExpectError(LoadM4A1File(path).status(), kInvalid, {path, "empty"});
  std::filesystem::remove(path);
}

TEST(ToM4A1Json, TaskFallsBackToVocabularyAndInvalidUtf8DoesNotThrow) {
  Dataset d;
  d.tasks = {"A", "B"};
  d.num_views = 1;
  Episode e;
  e.id = 3;
  e.image_paths = {"v.jpg"};
  Turn t;
  t.task_index = 1;  // task left empty: written from the vocabulary
  t.answer = "bad \xff byte";
  e.turns.push_back(t);
  e.association = {{0.5}};
  d.episodes.push_back(e);
  const std::string text = ToM4A1Json(d);
  auto back = ParseM4A1(text, "<mem>");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->episodes[0].turns[0].task, "B");
  EXPECT_EQ(back->episodes[0].turns[0].answer, "bad \xEF\xBF\xBD byte");  // U+FFFD
}

// ---- Refusal rule ----

TEST(RefusalRule, DefaultPhrasesCaseSensitive) {
  RefusalRule r;
  EXPECT_TRUE(r.IsRefusal("I'm sorry, I cannot."));
  EXPECT_TRUE(r.IsRefusal("Well, I don't have access."));
  EXPECT_TRUE(r.IsRefusal("I can't see the image"));
  EXPECT_FALSE(r.IsRefusal("Sorry about that"));  // case-sensitive
  EXPECT_FALSE(r.IsRefusal("I do not have it; I cannot"));
  EXPECT_FALSE(r.IsRefusal(""));
  Turn t;
  t.score = 7;
  t.answer = "Here you go.";
  EXPECT_EQ(r.ResponseScore(t), 7);
  t.answer = "sorry";
  EXPECT_EQ(r.ResponseScore(t), 0);
  RefusalRule custom{{"nope", ""}};  // an empty phrase matches nothing
  EXPECT_FALSE(custom.IsRefusal("sorry"));
  EXPECT_TRUE(custom.IsRefusal("nope"));
}

TEST(RefusalRule, OnM4A1) {
  auto d = LoadM4A1File(kM4A1Path);
  ASSERT_TRUE(d.ok()) << d.status();
  RefusalRule r;
  int refusals = 0;
  double logged = 0, response = 0;
  for (const Episode& e : d->episodes) {
    for (const Turn& t : e.turns) {
      refusals += r.IsRefusal(t.answer);
      logged += t.score;
      response += r.ResponseScore(t);
    }
  }
  // Figures computed independently with Python on the same file.
  EXPECT_EQ(refusals, 50);
  EXPECT_NEAR(logged, 368.5055555555557, 1e-9);
  EXPECT_NEAR(response, 340.223015873016, 1e-9);
}

// ---- SHA-256 ----

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundaries) {
  // Lengths around the one/two padding-block boundary (hashlib reference).
  const std::map<size_t, std::string> expected = {
      {55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
      {56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
      {63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
      {64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
      {119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"},
      {120, "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98"},
  };
  for (const auto& [n, hex] : expected) EXPECT_EQ(Sha256Hex(std::string(n, 'x')), hex) << n;
}

}  // namespace
}  // namespace lcio::data
