// The decision log record (decision_log.h): exact round trip, and strict
// validation naming field, value and rule.
#include "lcio/data/decision_log.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace lcio::data {
namespace {

DecisionRecord Sample() {
  DecisionRecord r;
  r.decision_id = "c1/2/00000000deadbeef";
  r.time_utc = "2026-12-02T20:30:00.123456Z";
  r.policy_version = "rc-ppo-1";
  r.conversation_id = "c1";
  r.turn_index = 2;
  r.context.task = "recommend";
  r.context.task_inferred = true;
  r.context.task_confidence = 0.8125;
  r.context.view_names = {"front", "left", "right"};
  r.context.association = {0.21, 0.27, 0.1 + 0.2};  // not exactly representable
  r.context.latency_budget_s = 30;
  r.context.money_budget_usd = 0.05;
  r.context.request_money_budget_usd = 0.125;
  r.context.device = "jetson_tx2";
  r.context.network = "wired";
  r.context.history = {{0, "recommend"}, {3, "describe"}};
  for (int a = 0; a < 4; ++a) {
    DecisionAction action;
    action.description = a == 0 ? "local" : "cloud+{" + std::to_string(a - 1) + "}";
    action.score = -1.0 / 3 + a;
    action.probability = a == 1 ? 0.85 : 0.05;
    action.allowed = a != 3;
    action.expected_latency_s = 1.5 * a;
    action.expected_money_usd = 0.001 * a;
    r.actions.push_back(action);
  }
  r.proposed_action = 3;
  r.taken_action = 1;
  r.shield_overridden = true;
  r.exploration = {"epsilon", 0.15, false};
  r.expected_latency_s = 1.5;
  r.expected_money_usd = 0.001;
  return r;
}

void ExpectSame(const DecisionRecord& a, const DecisionRecord& b) {
  // Comparing the lines compares every field, doubles bit for bit (dumped
  // with round-trip precision).
  EXPECT_EQ(ToJsonLine(a), ToJsonLine(b));
  EXPECT_EQ(a.context.association, b.context.association);
  EXPECT_EQ(a.actions.size(), b.actions.size());
}

TEST(DecisionLog, RoundTripsEveryField) {
  DecisionRecord r = Sample();
  const std::string line = ToJsonLine(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto back = ParseDecisionLine(line + "\n");
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSame(r, *back);
  EXPECT_FALSE(back->shadow.has_value());
  EXPECT_DOUBLE_EQ(TakenProbability(*back), 0.85);
  EXPECT_EQ(back->context.history[1].action, 3);
  EXPECT_EQ(back->context.history[1].task, "describe");

  r.shadow = DecisionShadow{"rc-a2c-7", 2, 1, {0.5, 0.25, 3, -2}, {0, 1, 0, 0}, 1.5, 0.001};
  r.explored = true;
  auto with_shadow = ParseDecisionLine(ToJsonLine(r));
  ASSERT_TRUE(with_shadow.ok()) << with_shadow.status();
  ASSERT_TRUE(with_shadow->shadow.has_value());
  EXPECT_EQ(with_shadow->shadow->policy_version, "rc-a2c-7");
  EXPECT_EQ(with_shadow->shadow->scores, (std::vector<double>{0.5, 0.25, 3, -2}));
  ExpectSame(r, *with_shadow);
  EXPECT_FALSE(with_shadow->fallback);

  // A fallback decision says so; others carry no such key (same bytes).
  EXPECT_EQ(ToJsonLine(r).find("fallback"), std::string::npos);
  r.fallback = true;
  const std::string fallback_line = ToJsonLine(r);
  EXPECT_NE(fallback_line.find(R"("nothing_fits":false,"fallback":true,)"), std::string::npos)
      << fallback_line;
  auto with_fallback = ParseDecisionLine(fallback_line);
  ASSERT_TRUE(with_fallback.ok()) << with_fallback.status();
  EXPECT_TRUE(with_fallback->fallback);
  std::string not_bool = fallback_line;
  not_bool.replace(not_bool.find(R"("fallback":true)"), 15, R"("fallback":1.0)");
  EXPECT_FALSE(ParseDecisionLine(not_bool).ok());
  // The shadow's own fallback, the same way.
  r.shadow->fallback = true;
  const std::string shadow_line = ToJsonLine(r);
  EXPECT_NE(shadow_line.find(R"("expected_money_usd":0.001,"fallback":true})"), std::string::npos)
      << shadow_line;
  auto with_shadow_fallback = ParseDecisionLine(shadow_line);
  ASSERT_TRUE(with_shadow_fallback.ok()) << with_shadow_fallback.status();
  EXPECT_TRUE(with_shadow_fallback->shadow->fallback);
  EXPECT_FALSE(with_shadow->shadow->fallback);
}

// The exact bytes of a line (as the encoder wrote them before it was made
// faster): the layout readers and the schema's documentation rely on.
TEST(DecisionLog, TheLineIsByteForByteTheSameAsBefore) {
  EXPECT_EQ(
      ToJsonLine(Sample()),
      R"({"schema_version":2,"decision_id":"c1/2/00000000deadbeef","time_utc":"2026-12-02T20:30:00.123456Z","policy_version":"rc-ppo-1","conversation_id":"c1","turn_index":2,"context":{"task":"recommend","task_inferred":true,"task_confidence":0.8125,"view_names":["front","left","right"],"association":[0.21,0.27,0.30000000000000004],"latency_budget_s":30.0,"money_budget_usd":0.05,"request_money_budget_usd":0.125,"device":"jetson_tx2","network":"wired","history":[{"action":0,"task":"recommend"},{"action":3,"task":"describe"}]},"actions":{"description":["local","cloud+{0}","cloud+{1}","cloud+{2}"],"score":[-0.33333334,0.6666667,1.6666666,2.6666667],"probability":[0.05,0.85,0.05,0.05],"allowed":[true,true,true,false],"expected_latency_s":[0.0,1.5,3.0,4.5],"expected_money_usd":[0.0,0.001,0.002,0.003]},"proposed_action":3,"taken_action":1,"shield_overridden":true,"nothing_fits":false,"exploration":{"mode":"epsilon","parameter":0.15,"opted_out":false},"explored":false,"expected_latency_s":1.5,"expected_money_usd":0.001,"shadow":null})");
}

// The description and cost columns are remembered from the last record a
// thread wrote: a record of another policy (other descriptions or costs)
// still writes its own, and the one after it the first's again.
TEST(DecisionLog, RememberedColumnsFollowTheRecord) {
  const DecisionRecord first = Sample();
  DecisionRecord other = Sample();
  other.actions[1].description = "cloud+{\"0\"}";
  other.actions[2].expected_latency_s = 9.25;
  const std::string a = ToJsonLine(first), b = ToJsonLine(other), c = ToJsonLine(first);
  EXPECT_EQ(a, c);
  EXPECT_NE(b.find(R"("description":["local","cloud+{\"0\"}","cloud+{1}")"), std::string::npos)
      << b;
  EXPECT_NE(b.find(R"("expected_latency_s":[0.0,1.5,9.25,4.5])"), std::string::npos) << b;
  auto back = ParseDecisionLine(b);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->actions[1].description, other.actions[1].description);
}

// The line is written directly (not through a JSON document): every kind of
// string and double must read back exactly.
TEST(DecisionLog, EscapesStringsAndKeepsEveryDoubleExactly) {
  DecisionRecord r = Sample();
  const std::vector<std::string> valid = {"quote \" backslash \\ slash /",
                                          "line\nfeed\ttab\x01\x1f\x7f",
                                          "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", ""};
  r.context.view_names = valid;
  r.context.association = {0.1, 5e-324, 1.0, 0.0};
  // Scores are float32 values (the policy's): every float reads back.
  r.actions[0].score = -0.0;
  r.actions[1].score = 3.4028234663852886e38;  // the largest float
  r.actions[2].score = 1.401298464324817e-45;  // the smallest
  r.actions[3].score = -1.0f / 3;
  r.context.money_budget_usd = 1e-300;
  const std::string line = ToJsonLine(r);
  ASSERT_NO_THROW(nlohmann::json::parse(line));
  auto back = ParseDecisionLine(line);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << line;
  EXPECT_EQ(back->context.view_names, valid);
  EXPECT_EQ(back->context.association, r.context.association);
  EXPECT_EQ(back->context.money_budget_usd, 1e-300);
  for (int a = 0; a < 4; ++a) EXPECT_EQ(back->actions[a].score, r.actions[a].score) << a;
  EXPECT_TRUE(std::signbit(back->actions[0].score));
  EXPECT_EQ(ToJsonLine(*back), line);
  // Not UTF-8: a bad continuation, a surrogate, an overlong form, a cut
  // sequence at the end. Each bad byte becomes U+FFFD; the rest stays.
  const std::string replacement = "\xef\xbf\xbd";
  r.context.view_names = {"a\xc3\x28", "\xed\xa0\x80", "\xc0\xaf", "\xe2\x82"};
  auto replaced = ParseDecisionLine(ToJsonLine(r));
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(replaced->context.view_names[0], "a" + replacement + "(");
  EXPECT_EQ(replaced->context.view_names[1], replacement + replacement + replacement);
  EXPECT_EQ(replaced->context.view_names[2], replacement + replacement);
  EXPECT_EQ(replaced->context.view_names[3], replacement + replacement);
}

TEST(DecisionLog, ScoresBeyondFloat32AreRefusedNotRoundedToInfinity) {
  nlohmann::json j = nlohmann::json::parse(ToJsonLine(Sample()));
  j["actions"]["score"][2] = 3.4028235e38;  // the largest float, as written: read
  ASSERT_TRUE(ParseDecisionLine(j.dump()).ok());
  j["actions"]["score"][2] = 1e39;
  auto refused = ParseDecisionLine(j.dump());
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "actions.score[2]"))
      << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "float32")) << refused.status();
}

TEST(DecisionLog, ScoresAreWrittenAsFloat32) {
  DecisionRecord r = Sample();
  r.actions[0].score = 1.0 / 3;  // not a float32: rounded
  auto back = ParseDecisionLine(ToJsonLine(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->actions[0].score, static_cast<double>(1.0f / 3));
  EXPECT_TRUE(absl::StrContains(ToJsonLine(r), "\"score\":[0.33333334,")) << ToJsonLine(r);
}

// The cost columns are memoised per thread: a record with other costs
// between two equal ones must still be written with its own.
TEST(DecisionLog, CostColumnsAreTheRecordsOwn) {
  const DecisionRecord a = Sample();
  DecisionRecord b = Sample();
  b.actions[2].expected_latency_s = 7.25;
  b.actions[3].expected_money_usd = 0.125;
  for (const DecisionRecord* r : std::vector<const DecisionRecord*>{&a, &b, &a, &b, &b, &a}) {
    auto back = ParseDecisionLine(ToJsonLine(*r));
    ASSERT_TRUE(back.ok()) << back.status();
    for (size_t i = 0; i < r->actions.size(); ++i) {
      EXPECT_EQ(back->actions[i].expected_latency_s, r->actions[i].expected_latency_s);
      EXPECT_EQ(back->actions[i].expected_money_usd, r->actions[i].expected_money_usd);
    }
  }
  // The taken action's costs are copied from the column's text only when
  // they are that action's, bit for bit.
  DecisionRecord c = Sample();
  c.taken_action = 0;  // costs 0.0 and 0.0
  c.expected_latency_s = 0.0;
  c.expected_money_usd = -0.0;
  c.actions[0].probability = 0.85;
  c.actions[1].probability = 0.05;
  for (const std::string& line : {ToJsonLine(c), ToJsonLine(c)})
    EXPECT_TRUE(absl::StrContains(
        line, R"("expected_latency_s":0.0,"expected_money_usd":-0.0,"shadow":null})"))
        << line;
  c.expected_latency_s = 1.5;  // another action's
  EXPECT_TRUE(absl::StrContains(ToJsonLine(c), R"("expected_latency_s":1.5,"expected_money_usd")"));
  // The request's money budget is written as the policy's when they are equal.
  c.context.request_money_budget_usd.reset();
  EXPECT_TRUE(absl::StrContains(ToJsonLine(c),
                                R"("money_budget_usd":0.05,"request_money_budget_usd":0.05,)"))
      << ToJsonLine(c);

  DecisionRecord fewer = Sample();
  fewer.actions.pop_back();
  fewer.actions[0].probability = 0.1;  // they sum to 1 again
  fewer.proposed_action = 0;
  fewer.context.history[1].action = 2;
  auto back = ParseDecisionLine(ToJsonLine(fewer));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->actions.size(), 3u);
  EXPECT_EQ(back->actions[2].expected_latency_s, 3);
}

// Version 1 wrote one object per action; logs written before version 2 must
// still read, as the same record.
nlohmann::json AsVersion1(nlohmann::json j) {
  const nlohmann::json columns = j["actions"];
  nlohmann::json actions = nlohmann::json::array();
  for (size_t i = 0; i < columns["description"].size(); ++i)
    actions.push_back({{"action", i},
                       {"description", columns["description"][i]},
                       {"score", columns["score"][i]},
                       {"probability", columns["probability"][i]},
                       {"allowed", columns["allowed"][i]},
                       {"expected_latency_s", columns["expected_latency_s"][i]},
                       {"expected_money_usd", columns["expected_money_usd"][i]}});
  j["actions"] = actions;
  j["schema_version"] = 1;
  j["context"].erase("request_money_budget_usd");
  return j;
}

// Whole numbers are written without the shortest-digit search: the text
// must be what that search writes (digits and ".0" up to 5 digits, the
// exponent form from 1e+05 on), for float32 scores and doubles alike.
TEST(DecisionLog, WholeNumbersAreWrittenAsTheShortestDigitsWouldBe) {
  auto shortest = [](auto v) {
    char text[64];
    const auto end = std::to_chars(text, text + sizeof text, v).ptr;
    std::string s(text, end);
    if (s.find_first_of(".e") == std::string::npos) s += ".0";
    return s;
  };
  std::vector<double> values;
  for (int v = -100002; v <= 100002; ++v) values.push_back(v);
  for (double v : {1e5, -1e5, 1e6, 123456.0, 99999.5, -99999.5, 0.5, 1e15, 4294967296.0})
    values.push_back(v);
  DecisionRecord r = Sample();
  for (size_t i = 0; i < values.size(); i += 4) {
    std::string want_scores = "\"score\":[";
    for (size_t a = 0; a < 4; ++a) {
      const double v = values[std::min(i + a, values.size() - 1)];
      r.actions[a].score = v;
      want_scores += (a ? "," : "") + shortest(static_cast<float>(v));
    }
    // The same four values as doubles, in four number fields.
    const auto value = [&](size_t a) { return values[std::min(i + a, values.size() - 1)]; };
    r.context.latency_budget_s = value(0);
    r.context.money_budget_usd = value(1);
    r.context.task_confidence = value(2);
    r.exploration.parameter = value(3);
    const std::string line = ToJsonLine(r);
    ASSERT_NE(line.find(want_scores + "]"), std::string::npos) << want_scores << "\n" << line;
    for (const auto& [key, a] :
         std::vector<std::pair<std::string, size_t>>{{"\"latency_budget_s\":", 0},
                                                     {"\"money_budget_usd\":", 1},
                                                     {"\"task_confidence\":", 2},
                                                     {"\"parameter\":", 3}}) {
      const std::string want = key + shortest(value(a)) + ",";
      ASSERT_NE(line.find(want), std::string::npos) << want << "\n" << line;
    }
  }
}

TEST(DecisionLog, ReadsVersion1Lines) {
  const DecisionRecord r = Sample();
  const nlohmann::json v2 = nlohmann::json::parse(ToJsonLine(r));
  EXPECT_EQ(v2["schema_version"], 2);
  auto back = ParseDecisionLine(AsVersion1(v2).dump());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->schema_version, 1);
  // Version 1 had no fleet controller: the request's budget is the one seen.
  EXPECT_FALSE(back->context.request_money_budget_usd.has_value());
  EXPECT_EQ(back->context.RequestMoneyBudget(), r.context.money_budget_usd);
  DecisionRecord same = r;
  same.context.request_money_budget_usd.reset();
  ExpectSame(same, *back);
  nlohmann::json bad = AsVersion1(v2);
  bad["actions"][2]["action"] = 7;
  auto refused = ParseDecisionLine(bad.dump());
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "actions[2].action = 7"))
      << refused.status();
}

TEST(DecisionLog, InvalidUtf8IsReplacedNotThrown) {
  DecisionRecord r = Sample();
  r.conversation_id = "c\xff";
  auto back = ParseDecisionLine(ToJsonLine(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_NE(back->conversation_id, r.conversation_id);
}

// Edits the sample's JSON and expects a refusal whose message names `field`
// and contains `rule`.
void ExpectRefused(const std::function<void(nlohmann::json&)>& edit, const std::string& field,
                   const std::string& rule) {
  nlohmann::json j = nlohmann::json::parse(ToJsonLine(Sample()));
  edit(j);
  auto r = ParseDecisionLine(j.dump());
  ASSERT_FALSE(r.ok()) << "accepted after editing " << field;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), field)) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), rule)) << r.status();
  EXPECT_LE(r.status().message().size(), 400u) << r.status();
}

TEST(DecisionLog, RefusesEveryBrokenRuleNamingFieldValueAndRule) {
  ExpectRefused([](auto& j) { j["schema_version"] = 3; }, "schema_version = 3",
                "this reader knows schema_version 1 to 2");
  ExpectRefused([](auto& j) { j.erase("schema_version"); }, "schema_version", "missing");
  ExpectRefused([](auto& j) { j["surprise"] = 1; }, "surprise = 1",
                "is not a field of this schema_version");
  ExpectRefused([](auto& j) { j["context"]["extra"] = true; }, "context.extra", "is not a field");
  ExpectRefused([](auto& j) { j["actions"]["extra"] = true; }, "actions.extra", "is not a field");
  ExpectRefused([](auto& j) { j["decision_id"] = ""; }, "decision_id", "must not be empty");
  ExpectRefused([](auto& j) { j["decision_id"] = std::string(1000, 'x'); }, "decision_id",
                "at most 256 bytes");
  ExpectRefused([](auto& j) { j["time_utc"] = "yesterday"; }, "time_utc = \"yesterday\"",
                "RFC 3339");
  ExpectRefused([](auto& j) { j["turn_index"] = -1; }, "turn_index = -1", "must be in [0,");
  ExpectRefused([](auto& j) { j["turn_index"] = 1.5; }, "turn_index = 1.5", "integer");
  ExpectRefused([](auto& j) { j["context"]["association"][1] = 1.5; },
                "context.association[1] = 1.5", "must be <= 1");
  ExpectRefused([](auto& j) { j["context"]["association"].erase(0); }, "context.association",
                "one value per view (3)");
  ExpectRefused([](auto& j) { j["context"]["money_budget_usd"] = -0.5; },
                "context.money_budget_usd = -0.5", "must be >= 0");
  ExpectRefused([](auto& j) { j["context"]["request_money_budget_usd"] = 0.01; },
                "context.request_money_budget_usd = 0.01", "must be >= context.money_budget_usd");
  ExpectRefused([](auto& j) { j["context"].erase("request_money_budget_usd"); },
                "context.request_money_budget_usd", "missing");
  ExpectRefused([](auto& j) { j["context"]["latency_budget_s"] = "30"; },
                "context.latency_budget_s", "must be a number");
  ExpectRefused([](auto& j) { j["context"]["history"][0]["action"] = 4; },
                "context.history[0].action = 4", "must be in [0, 3]");
  ExpectRefused([](auto& j) { j["actions"]["probability"][0] = 0.5; }, "actions.probability",
                "sum to 1");
  ExpectRefused([](auto& j) { j["actions"]["probability"][0] = -0.05; },
                "actions.probability[0] = -0.05", "must be >= 0");
  ExpectRefused([](auto& j) { j["actions"]["score"].erase(1); }, "actions.score",
                "one value per action (4)");
  ExpectRefused([](auto& j) { j["actions"]["allowed"][2] = 1; }, "actions.allowed[2] = 1",
                "must be true or false");
  ExpectRefused([](auto& j) { j["actions"]["expected_money_usd"][3] = -1; },
                "actions.expected_money_usd[3] = -1", "must be >= 0");
  ExpectRefused([](auto& j) { j["actions"]["description"] = nlohmann::json::array(); },
                "actions.description", "at least one action");
  ExpectRefused([](auto& j) { j["actions"] = nlohmann::json::array(); }, "actions",
                "must be a JSON object");
  ExpectRefused([](auto& j) { j["taken_action"] = 9; }, "taken_action = 9", "must be in [0, 3]");
  ExpectRefused(
      [](auto& j) {
        j["actions"]["probability"][1] = 0.0;
        j["actions"]["probability"][0] = 0.9;
      },
      "taken_action = 1", "its probability must be > 0");
  ExpectRefused([](auto& j) { j["exploration"]["mode"] = "greedy"; },
                "exploration.mode = \"greedy\"", "none, epsilon or softmax");
  ExpectRefused([](auto& j) { j["exploration"]["parameter"] = 2; }, "exploration.parameter = 2",
                "epsilon must be in [0, 1]");
  ExpectRefused(
      [](auto& j) {
        j["exploration"] = {{"mode", "none"}, {"parameter", 0}, {"opted_out", false}};
        j["explored"] = true;
      },
      "explored = true", "must be false when exploration.mode is none");
  ExpectRefused(
      [](auto& j) {
        j["shadow"] = {{"policy_version", "x"}};
      },
      "shadow.proposed_action", "missing");
  ExpectRefused(
      [](auto& j) {
        j["shadow"] = {
            {"policy_version", "x"},  {"proposed_action", 0},          {"action", 0},
            {"scores", {1, 2}},       {"probabilities", {1, 0, 0, 0}}, {"expected_latency_s", 0},
            {"expected_money_usd", 0}};
      },
      "shadow.scores", "one value per action (4)");
  ExpectRefused([](auto& j) { j.erase("shadow"); }, "shadow", "missing");
}

TEST(DecisionLog, RefusesWhatIsNotARecord) {
  for (const std::string& line : {std::string(""), std::string("[]"), std::string("{"),
                                  std::string("null"), std::string(100000, '[')}) {
    auto r = ParseDecisionLine(line);
    EXPECT_FALSE(r.ok()) << line.substr(0, 20);
    EXPECT_LE(r.status().message().size(), 400u) << r.status();
  }
}

TEST(DecisionLog, ScanSkipsBadAndTornLinesAndKeepsTheRest) {
  const std::string path = ::testing::TempDir() + "/decision_log_scan.jsonl";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    DecisionRecord r = Sample();
    out << ToJsonLine(r) << "\n";
    out << "not json\n";
    r.turn_index = 3;
    out << ToJsonLine(r) << "\n";
    out << ToJsonLine(r).substr(0, 40);  // torn by a crash
  }
  std::vector<int> turns;
  auto scan = ScanDecisionLog(path, [&](DecisionRecord r) { turns.push_back(r.turn_index); });
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_EQ(turns, (std::vector<int>{2, 3}));
  EXPECT_EQ(scan->records, 2);
  EXPECT_EQ(scan->skipped_lines, 2);
  ASSERT_EQ(scan->problems.size(), 2u);
  EXPECT_TRUE(absl::StrContains(scan->problems[0], "line 2")) << scan->problems[0];
  EXPECT_TRUE(absl::StrContains(scan->problems[1], "torn")) << scan->problems[1];
  std::remove(path.c_str());
}

}  // namespace
}  // namespace lcio::data
