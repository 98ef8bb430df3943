// The decision log record (decision_log.h): exact round trip, and strict
// validation naming field, value and rule.
#include "lcio/data/decision_log.h"

#include <gtest/gtest.h>

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
  r.actions[0].score = -0.0;
  r.actions[1].score = 1.7976931348623157e308;
  r.actions[2].score = 30;
  r.actions[3].score = -1.0 / 3;
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
  ExpectRefused([](auto& j) { j["schema_version"] = 2; }, "schema_version = 2",
                "this reader knows schema_version 1");
  ExpectRefused([](auto& j) { j.erase("schema_version"); }, "schema_version", "missing");
  ExpectRefused([](auto& j) { j["surprise"] = 1; }, "surprise = 1",
                "is not a field of schema_version 1");
  ExpectRefused([](auto& j) { j["context"]["extra"] = true; }, "context.extra", "is not a field");
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
  ExpectRefused([](auto& j) { j["context"]["latency_budget_s"] = "30"; },
                "context.latency_budget_s", "must be a number");
  ExpectRefused([](auto& j) { j["context"]["history"][0]["action"] = 4; },
                "context.history[0].action = 4", "must be in [0, 3]");
  ExpectRefused([](auto& j) { j["actions"][2]["action"] = 7; }, "actions[2].action = 7",
                "must equal its position");
  ExpectRefused([](auto& j) { j["actions"][0]["probability"] = 0.5; }, "actions[*].probability",
                "sum to 1");
  ExpectRefused([](auto& j) { j["actions"][0]["probability"] = -0.05; },
                "actions[0].probability = -0.05", "must be >= 0");
  ExpectRefused([](auto& j) { j["actions"] = nlohmann::json::array(); }, "actions",
                "at least one action");
  ExpectRefused([](auto& j) { j["taken_action"] = 9; }, "taken_action = 9", "must be in [0, 3]");
  ExpectRefused(
      [](auto& j) {
        j["actions"][1]["probability"] = 0.0;
        j["actions"][0]["probability"] = 0.9;
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
