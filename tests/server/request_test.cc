// One test per bad-input rule of Decide and Report: INVALID_ARGUMENT naming
// the field (and, where there is one, the rule's bound).
#include "lcio/server/request.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "lcio/data/message.h"
#include "lcio/policy/testing.h"
#include "lcio/server/conversation_store.h"
#include "lcio/server/log.h"

namespace lcio::server {
namespace {

class RequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto metadata = policy::testing::TestMetadata();
    ASSERT_TRUE(metadata.ok()) << metadata.status();
    metadata->num_actions = 8;
    auto spec = PolicySpec::FromMetadata(*metadata, "");
    ASSERT_TRUE(spec.ok()) << spec.status();
    spec_ = *std::move(spec);
  }

  v1::DecideRequest Good() const {
    v1::DecideRequest r;
    r.set_conversation_id("conv-1");
    r.set_turn_index(0);
    r.set_prompt("What is on the table?");
    for (int v = 0; v < 3; ++v) {
      v1::View* view = r.add_views();
      view->set_name(absl::StrCat("view", v));
      view->set_association(0.25 * v);
    }
    r.mutable_budget()->set_latency_s(30);
    r.mutable_budget()->set_money_usd(0.05);
    return r;
  }

  // Expects INVALID_ARGUMENT whose message contains every fragment.
  void ExpectInvalid(const v1::DecideRequest& r, std::initializer_list<const char*> fragments) {
    auto parsed = ParseDecideRequest(r, limits_, spec_);
    ASSERT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
    for (const char* f : fragments)
      EXPECT_NE(parsed.status().message().find(f), std::string::npos)
          << "'" << f << "' not in: " << parsed.status().message();
  }

  PolicySpec spec_;
  RequestLimits limits_;
};

TEST_F(RequestTest, AGoodRequestParsesIntoPolicyOrder) {
  v1::DecideRequest r = Good();
  r.mutable_views()->SwapElements(0, 2);
  r.set_task("Query");
  auto parsed = ParseDecideRequest(r, limits_, spec_);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->association, std::vector<double>({0, 0.25, 0.5}));
  EXPECT_EQ(parsed->task_index, 2);
  EXPECT_EQ(parsed->device, "Jetson TX2");
  EXPECT_EQ(parsed->network, "Wired");
  EXPECT_FALSE(parsed->has_history);
}

TEST_F(RequestTest, EmptyPrompt) {
  v1::DecideRequest r = Good();
  r.set_prompt("");
  ExpectInvalid(r, {"prompt", "empty"});
}

TEST_F(RequestTest, OversizedPrompt) {
  v1::DecideRequest r = Good();
  r.set_prompt(std::string(limits_.max_prompt_bytes + 1, 'a'));
  ExpectInvalid(r, {"prompt", "16385 bytes", "at most 16384"});
}

TEST_F(RequestTest, PromptThatIsNotUtf8) {
  v1::DecideRequest r = Good();
  r.set_prompt("caf\xe9");
  ExpectInvalid(r, {"prompt", "UTF-8"});
}

TEST_F(RequestTest, UnknownViewName) {
  v1::DecideRequest r = Good();
  r.mutable_views(1)->set_name("rear-camera");
  ExpectInvalid(r, {"views[1].name", "rear-camera", "unknown view", "view0, view1, view2"});
}

TEST_F(RequestTest, RepeatedView) {
  v1::DecideRequest r = Good();
  r.mutable_views(2)->set_name("view0");
  ExpectInvalid(r, {"views[2].name", "more than once"});
}

TEST_F(RequestTest, AssociationAboveOne) {
  v1::DecideRequest r = Good();
  r.mutable_views(0)->set_association(1.5);
  ExpectInvalid(r, {"views[0].association", "1.5", "[0, 1]"});
}

TEST_F(RequestTest, NegativeAssociation) {
  v1::DecideRequest r = Good();
  r.mutable_views(1)->set_association(-0.1);
  ExpectInvalid(r, {"views[1].association", "[0, 1]"});
}

TEST_F(RequestTest, NanAssociation) {
  v1::DecideRequest r = Good();
  r.mutable_views(2)->set_association(std::nan(""));
  ExpectInvalid(r, {"views[2].association", "nan"});
}

TEST_F(RequestTest, NegativeLatencyBudget) {
  v1::DecideRequest r = Good();
  r.mutable_budget()->set_latency_s(-1);
  ExpectInvalid(r, {"budget.latency_s", "-1", ">= 0"});
}

TEST_F(RequestTest, NanMoneyBudget) {
  v1::DecideRequest r = Good();
  r.mutable_budget()->set_money_usd(std::nan(""));
  ExpectInvalid(r, {"budget.money_usd", "finite"});
}

TEST_F(RequestTest, InfiniteLatencyBudget) {
  v1::DecideRequest r = Good();
  r.mutable_budget()->set_latency_s(std::numeric_limits<double>::infinity());
  ExpectInvalid(r, {"budget.latency_s", "inf"});
}

TEST_F(RequestTest, MissingBudget) {
  v1::DecideRequest r = Good();
  r.clear_budget();
  ExpectInvalid(r, {"budget", "missing"});
}

TEST_F(RequestTest, TooManyViews) {
  v1::DecideRequest r = Good();
  for (int v = 3; v < 70; ++v) r.add_views()->set_name(absl::StrCat("view", v));
  ExpectInvalid(r, {"views", "70 entries", "at most 64"});
}

TEST_F(RequestTest, ViewCountDifferentFromThePolicy) {
  v1::DecideRequest r = Good();
  r.mutable_views()->RemoveLast();
  ExpectInvalid(r, {"views", "2 entries", "the policy has 3 views"});
}

TEST_F(RequestTest, UnknownTask) {
  v1::DecideRequest r = Good();
  r.set_task("Poetry");
  ExpectInvalid(r, {"task", "Poetry", "unknown task", "Query"});
}

TEST_F(RequestTest, UnknownDeviceListsKnownOnes) {
  v1::DecideRequest r = Good();
  r.set_device("Toaster");
  ExpectInvalid(r, {"device", "Toaster", "Jetson TX2"});
}

TEST_F(RequestTest, UnknownNetworkListsKnownOnes) {
  v1::DecideRequest r = Good();
  r.set_network("Carrier pigeon");
  ExpectInvalid(r, {"network", "Carrier pigeon", "Wired"});
}

TEST_F(RequestTest, NegativeTurnIndex) {
  v1::DecideRequest r = Good();
  r.set_turn_index(-3);
  ExpectInvalid(r, {"turn_index = -3: must be in [0, 1073741824]"});
}

TEST_F(RequestTest, EmptyConversationId) {
  v1::DecideRequest r = Good();
  r.set_conversation_id("");
  ExpectInvalid(r, {"conversation_id", "empty"});
}

TEST_F(RequestTest, ConversationIdWithForbiddenCharacters) {
  v1::DecideRequest r = Good();
  r.set_conversation_id("a b\n");
  ExpectInvalid(r, {"conversation_id", "only letters"});
}

TEST_F(RequestTest, OversizedConversationId) {
  v1::DecideRequest r = Good();
  r.set_conversation_id(std::string(200, 'c'));
  ExpectInvalid(r, {"conversation_id", "200 bytes", "at most 128"});
}

TEST_F(RequestTest, HistoryShorterThanTheWindow) {
  v1::DecideRequest r = Good();
  r.set_turn_index(3);
  r.mutable_history()->add_turns()->set_task("Query");
  ExpectInvalid(r, {"history.turns", "1 entries", "turn_index 3", "between 3"});
}

TEST_F(RequestTest, HistoryWithAnActionOutOfRange) {
  v1::DecideRequest r = Good();
  r.set_turn_index(1);
  v1::HistoryTurn* turn = r.mutable_history()->add_turns();
  turn->set_action(8);
  turn->set_task("Query");
  ExpectInvalid(r, {"history.turns[0].action", "8", "[0, 7]"});
}

TEST_F(RequestTest, HistoryWithAnUnknownTask) {
  v1::DecideRequest r = Good();
  r.set_turn_index(1);
  r.mutable_history()->add_turns()->set_task("Nope");
  ExpectInvalid(r, {"history.turns[0].task", "Nope"});
}

// Beyond the policy's window (5 here) the carried turns are read as far back
// as the conversation store keeps them (the validated fallback counts their
// costs), each checked; older ones are not read.
TEST_F(RequestTest, LongHistoryIsReadBackToTheStoresDepth) {
  v1::DecideRequest r = Good();
  r.set_turn_index(9);
  for (int t = 0; t < 9; ++t) {
    v1::HistoryTurn* turn = r.mutable_history()->add_turns();
    turn->set_action(t % 8);
    turn->set_task("Query");
  }
  auto parsed = ParseDecideRequest(r, limits_, spec_);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->history_actions, std::vector<int>({0, 1, 2, 3, 4, 5, 6, 7, 0}));
  EXPECT_EQ(parsed->history_tasks.size(), 9u);

  const int turns = kHistoryTurnsRead + 6;
  EXPECT_EQ(kHistoryTurnsRead, ConversationStoreOptions{}.history_window);
  r.set_turn_index(turns);
  r.mutable_history()->clear_turns();
  for (int t = 0; t < turns; ++t) {
    v1::HistoryTurn* turn = r.mutable_history()->add_turns();
    turn->set_action(t < 6 ? 8 : t % 8);  // the first 6 are out of range and not read
    turn->set_task(t < 6 ? "Nope" : "Query");
  }
  parsed = ParseDecideRequest(r, limits_, spec_);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->history_actions.size(), static_cast<size_t>(kHistoryTurnsRead));
  EXPECT_EQ(parsed->history_actions.front(), 6);
  EXPECT_EQ(parsed->history_actions.back(), (turns - 1) % 8);
  r.mutable_history()->mutable_turns(6)->set_action(9);  // read: refused, named
  ExpectInvalid(r, {"history.turns[6].action", "9", "[0, 7]"});
}

// The fingerprint is the hash of the request serialized without `explain`
// and unknown fields, whichever path computes it.
TEST_F(RequestTest, FingerprintIgnoresExplainAndUnknownFieldsOnly) {
  auto reference = [](const v1::DecideRequest& request) {
    v1::DecideRequest identity = request;
    identity.clear_explain();
    identity.DiscardUnknownFields();
    return std::hash<std::string>{}(identity.SerializeAsString());
  };
  v1::DecideRequest plain = Good();
  v1::DecideRequest with_history = Good();
  with_history.set_turn_index(2);
  for (int t = 0; t < 2; ++t) {
    v1::HistoryTurn* turn = with_history.mutable_history()->add_turns();
    turn->set_action(t + 1);
    turn->set_task("Query");
  }
  with_history.set_no_explore(true);
  for (const v1::DecideRequest& base : {plain, with_history}) {
    const uint64_t fingerprint = DecisionFingerprint(base);
    EXPECT_EQ(fingerprint, reference(base));
    v1::DecideRequest explained = base;
    explained.set_explain(true);
    EXPECT_EQ(DecisionFingerprint(explained), fingerprint);
    // Unknown fields at every level, with and without explain.
    std::vector<v1::DecideRequest> unknown(5, base);
    auto add_unknown = [](google::protobuf::Message* m) {
      m->GetReflection()->MutableUnknownFields(m)->AddVarint(99, 7);
    };
    add_unknown(&unknown[0]);
    add_unknown(unknown[1].mutable_views(1));
    add_unknown(unknown[2].mutable_budget());
    add_unknown(unknown[3].mutable_history());
    add_unknown(unknown[4].mutable_history()->add_turns());
    for (v1::DecideRequest& r : unknown) {
      EXPECT_EQ(DecisionFingerprint(r), reference(r));
      r.set_explain(true);
      EXPECT_EQ(DecisionFingerprint(r), reference(r));
    }
    EXPECT_EQ(DecisionFingerprint(unknown[0]), fingerprint);
    EXPECT_EQ(DecisionFingerprint(unknown[1]), fingerprint);
    EXPECT_EQ(DecisionFingerprint(unknown[2]), fingerprint);
  }
  // Any decision-relevant field changes it.
  v1::DecideRequest other = plain;
  other.set_prompt("What is under the table?");
  EXPECT_NE(DecisionFingerprint(other), DecisionFingerprint(plain));
  other = plain;
  other.mutable_views(2)->set_association(0.75);
  EXPECT_NE(DecisionFingerprint(other), DecisionFingerprint(plain));
  other = plain;
  other.set_no_explore(true);
  EXPECT_NE(DecisionFingerprint(other), DecisionFingerprint(plain));
}

// The same views in another order are the same request: a client that
// builds them from a map (Python's dict) may retry in another order, and
// was refused as another request and decided twice.
TEST_F(RequestTest, FingerprintTakesTheViewsInAnyOrder) {
  const v1::DecideRequest plain = Good();  // view0, view1, view2
  v1::DecideRequest reordered = plain;
  std::swap(*reordered.mutable_views(0), *reordered.mutable_views(2));
  ASSERT_NE(reordered.SerializeAsString(), plain.SerializeAsString());
  EXPECT_EQ(DecisionFingerprint(reordered), DecisionFingerprint(plain));
  reordered.set_explain(true);
  EXPECT_EQ(DecisionFingerprint(reordered), DecisionFingerprint(plain));
  // The associations still belong to their views.
  reordered.mutable_views(0)->set_association(0.125);
  EXPECT_NE(DecisionFingerprint(reordered), DecisionFingerprint(plain));
}

// -0.0 is serialized where 0.0 is not, but it is the same budget or
// association: a retry that sends one for the other is the same request.
TEST_F(RequestTest, FingerprintTakesNegativeZeroForZero) {
  v1::DecideRequest zero = Good();  // views[0].association is 0
  zero.mutable_budget()->set_money_usd(0);
  ASSERT_EQ(zero.views(0).association(), 0.0);
  const uint64_t fingerprint = DecisionFingerprint(zero);
  std::vector<v1::DecideRequest> signed_zero(3, zero);
  signed_zero[0].mutable_budget()->set_money_usd(-0.0);
  signed_zero[1].mutable_views(0)->set_association(-0.0);
  signed_zero[2].mutable_budget()->set_latency_s(0);
  zero.mutable_budget()->set_latency_s(0);
  const uint64_t no_latency = DecisionFingerprint(zero);
  signed_zero[2].mutable_budget()->set_latency_s(-0.0);
  ASSERT_NE(signed_zero[0].SerializeAsString(), Good().SerializeAsString());
  EXPECT_EQ(DecisionFingerprint(signed_zero[0]), fingerprint);
  EXPECT_EQ(DecisionFingerprint(signed_zero[1]), fingerprint);
  EXPECT_EQ(DecisionFingerprint(signed_zero[2]), no_latency);
  signed_zero[1].set_explain(true);
  EXPECT_EQ(DecisionFingerprint(signed_zero[1]), fingerprint);
  // A value that is not zero still counts.
  signed_zero[0].mutable_budget()->set_money_usd(1e-300);
  EXPECT_NE(DecisionFingerprint(signed_zero[0]), fingerprint);
}

v1::ReportRequest GoodReport() {
  v1::ReportRequest r;
  r.set_conversation_id("conv-1");
  r.set_prompt("What is on the table?");
  r.set_task("Query");
  r.set_target(v1::TARGET_CLOUD);
  r.add_uploaded_views("view2");
  r.add_uploaded_views("view0");
  for (double a : {0.1, 0.2, 0.3}) r.add_association(a);
  r.set_score(0.8);
  r.set_interaction_time_s(2.5);
  r.set_usage_cost_usd(0.009);
  return r;
}

TEST_F(RequestTest, AGoodReportParses) {
  auto parsed = ParseReportRequest(GoodReport(), limits_, spec_);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->uploaded_views, std::vector<int>({0, 2}));
  EXPECT_TRUE(parsed->cloud);
}

// The decision log's readers take turns up to 2^30: a Decide past it was
// answered and logged in a form every reader refused.
TEST_F(RequestTest, TurnIndexPastTheDecisionLogsBound) {
  v1::DecideRequest r = Good();
  r.set_turn_index(data::kMaxTurnIndex + 1);
  ExpectInvalid(r, {"turn_index = 1073741825: must be in [0, 1073741824]"});
  v1::ReportRequest report = GoodReport();
  report.set_turn_index(data::kMaxTurnIndex + 1);
  auto parsed = ParseReportRequest(report, limits_, spec_);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("turn_index = 1073741825: must be in [0, 1073741824]"),
            std::string::npos)
      << parsed.status();
}

TEST_F(RequestTest, ReportRules) {
  struct Case {
    std::function<void(v1::ReportRequest&)> change;
    const char* field;
  };
  const std::vector<Case> cases = {
      {[](v1::ReportRequest& r) { r.set_target(v1::TARGET_UNSPECIFIED); }, "target"},
      {[](v1::ReportRequest& r) { r.set_target(v1::TARGET_LOCAL); },
       "uploaded_views must be empty"},
      {[](v1::ReportRequest& r) { r.set_uploaded_views(0, "view9"); }, "uploaded_views[0]"},
      {[](v1::ReportRequest& r) { r.set_uploaded_views(1, "view2"); }, "more than once"},
      {[](v1::ReportRequest& r) { r.set_association(1, 2.0); }, "association[1]"},
      {[](v1::ReportRequest& r) { r.add_association(0.5); }, "association has 4"},
      {[](v1::ReportRequest& r) { r.set_score(-0.5); }, "score"},
      {[](v1::ReportRequest& r) { r.set_score(std::nan("")); }, "score"},
      {[](v1::ReportRequest& r) { r.set_score(INFINITY); }, "score"},
      {[](v1::ReportRequest& r) { r.set_interaction_time_s(-1); }, "interaction_time_s"},
      {[](v1::ReportRequest& r) { r.set_usage_cost_usd(std::nan("")); }, "usage_cost_usd"},
      {[](v1::ReportRequest& r) { r.set_task(""); }, "task"},
      {[](v1::ReportRequest& r) { r.set_prompt(""); }, "prompt"},
  };
  for (const Case& c : cases) {
    v1::ReportRequest r = GoodReport();
    c.change(r);
    auto parsed = ParseReportRequest(r, limits_, spec_);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(parsed.status().message().find(c.field), std::string::npos)
        << c.field << " not in " << parsed.status().message();
  }
}

// A Report quoting another conversation's or turn's decision would attach
// its outcome to that decision when the logs are joined.
TEST_F(RequestTest, AReportsDecisionIdMustBeOneOfItsOwnTurn) {
  v1::ReportRequest report = GoodReport();
  report.set_turn_index(1);
  for (const std::string id : {"", "conv-1/1/0123456789abcdef"}) {
    report.set_decision_id(id);
    auto parsed = ParseReportRequest(report, limits_, spec_);
    EXPECT_TRUE(parsed.ok()) << id << ": " << parsed.status();
  }
  for (const std::string id :
       {"conv-2/1/0123456789abcdef", "conv-1/0/0123456789abcdef", "conv-1/1/0123456789ABCDEF",
        "conv-1/1/0123456789abcde", "conv-1/1/", "x"}) {
    report.set_decision_id(id);
    auto parsed = ParseReportRequest(report, limits_, spec_);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << id;
    EXPECT_NE(parsed.status().message().find("decision_id = \"" + id +
                                             "\": must be empty or the decision_id Decide "
                                             "answered for this conversation_id and turn_index "
                                             "(\"conv-1/1/\" and 16 hex digits)"),
              std::string::npos)
        << parsed.status();
  }
  // Conversation ids may hold '/': "a/1/" starts conversation "a/1"'s ids too.
  report.set_conversation_id("a");
  report.set_decision_id("a/1/3/0123456789abcdef");
  EXPECT_FALSE(ParseReportRequest(report, limits_, spec_).ok());
  report.set_conversation_id("a/1");
  report.set_turn_index(3);
  EXPECT_TRUE(ParseReportRequest(report, limits_, spec_).ok());
}

// A value just past a bound is quoted exactly, not rounded onto the bound
// (absl::StrCat's 6 digits would print 1.0000001 as 1).
TEST_F(RequestTest, AValueJustPastItsBoundIsQuotedExactly) {
  v1::DecideRequest r = Good();
  r.mutable_views(0)->set_association(1.0000001);
  ExpectInvalid(r, {"views[0].association = 1.0000001: must be in [0, 1]"});
  r = Good();
  r.mutable_budget()->set_money_usd(-1e-300);
  ExpectInvalid(r, {"budget.money_usd = -1e-300: must be"});
  v1::ReportRequest report = GoodReport();
  report.set_score(RequestLimits::kMaxReportScore + 1e-7);
  auto parsed = ParseReportRequest(report, limits_, spec_);
  EXPECT_NE(parsed.status().message().find("score = 1000.0000001: must be <= 1000"),
            std::string::npos)
      << parsed.status();
}

}  // namespace
}  // namespace lcio::server
