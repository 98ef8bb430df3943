// Decider::Decide's `serialized`: the bytes a decision the conversation store
// keeps is sent as (the server sends them instead of serializing the response
// again). They must be that answer exactly, and come with nothing else.
#include "lcio/server/decider.h"

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "lcio/policy/testing.h"
#include "lcio/server/conversation_store.h"
#include "lcio/server/micro_batcher.h"
#include "lcio/server/policy_holder.h"
#include "test_support.h"

namespace lcio::server {
namespace {

class DeciderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = dir_.File("policy.pt");
    ASSERT_TRUE(policy::testing::WriteTestArtifact(path).ok());
    PolicyHolderOptions options;
    options.path = path;
    options.torch_device = "cpu";
    policies_ = std::make_unique<PolicyHolder>(options, nullptr);
    ASSERT_TRUE(policies_->Reload("test").ok());
    store_ = std::make_unique<ConversationStore>(ConversationStoreOptions{});
    batcher_ = std::make_unique<MicroBatcher>(MicroBatcherOptions{});
    decider_ = std::make_unique<Decider>(RequestLimits{}, policies_.get(), store_.get(),
                                         batcher_.get(), nullptr);
  }

  // Decides `request`; *serialized is what the decider left for the sender.
  absl::Status Decide(const v1::DecideRequest& request, v1::DecideResponse* response,
                      std::string* serialized) {
    std::promise<absl::Status> promise;
    decider_->Decide(
        request, response, absl::Now() + absl::Seconds(30),
        [&promise](absl::Status s) { promise.set_value(std::move(s)); }, "", serialized);
    return promise.get_future().get();
  }

  test::TempDir dir_;
  std::unique_ptr<PolicyHolder> policies_;
  std::unique_ptr<ConversationStore> store_;
  std::unique_ptr<MicroBatcher> batcher_;
  std::unique_ptr<Decider> decider_;
};

TEST_F(DeciderTest, AStoredDecisionLeavesTheBytesOfItsAnswer) {
  v1::DecideResponse first;
  std::string bytes;
  ASSERT_TRUE(Decide(test::QueryTurn("c", 0), &first, &bytes).ok());
  ASSERT_FALSE(bytes.empty());
  EXPECT_EQ(bytes, first.SerializeAsString());
  // The next turn: its own answer's bytes.
  v1::DecideResponse second;
  std::string next;
  ASSERT_TRUE(Decide(test::QueryTurn("c", 1), &second, &next).ok());
  EXPECT_EQ(next, second.SerializeAsString());
  EXPECT_NE(next, bytes);
  // Asked for the explanation, the stored answer carries it: the same rule.
  v1::DecideRequest explained = test::QueryTurn("e", 0);
  explained.set_explain(true);
  v1::DecideResponse with_scores;
  std::string explained_bytes;
  ASSERT_TRUE(Decide(explained, &with_scores, &explained_bytes).ok());
  ASSERT_GT(with_scores.scores_size(), 0);
  EXPECT_EQ(explained_bytes, with_scores.SerializeAsString());
}

TEST_F(DeciderTest, NothingElseLeavesBytes) {
  v1::DecideResponse response;
  std::string bytes;
  ASSERT_TRUE(Decide(test::QueryTurn("r", 0), &response, &bytes).ok());
  // A retry is answered from the store, not by a new decision.
  v1::DecideResponse again;
  std::string retry_bytes;
  ASSERT_TRUE(Decide(test::QueryTurn("r", 0), &again, &retry_bytes).ok());
  EXPECT_EQ(again.decision_id(), response.decision_id());
  EXPECT_TRUE(retry_bytes.empty());
  // A refused request.
  v1::DecideRequest bad = test::QueryTurn("r", 1);
  bad.mutable_budget()->set_latency_s(-1);
  v1::DecideResponse refused;
  std::string refused_bytes;
  EXPECT_FALSE(Decide(bad, &refused, &refused_bytes).ok());
  EXPECT_TRUE(refused_bytes.empty());
  // A stateless request (the caller carries the history): nothing is stored.
  v1::DecideRequest stateless = test::QueryTurn("s", 1);
  v1::HistoryTurn* turn = stateless.mutable_history()->add_turns();
  turn->set_action(0);
  turn->set_task("Query");
  v1::DecideResponse answered;
  std::string stateless_bytes;
  ASSERT_TRUE(Decide(stateless, &answered, &stateless_bytes).ok());
  EXPECT_TRUE(stateless_bytes.empty());
}

// A conversation answered without its explanation keeps what a retry needs
// to add it, but not the policy: a reload frees the old policy's weights
// while the conversation lives on (it used to hold them until it expired,
// a policy per reload), and the retry still gets the explanation.
TEST_F(DeciderTest, AStoredConversationDoesNotKeepAReplacedPolicy) {
  std::weak_ptr<const ServingPolicy> first = policies_->Get();
  v1::DecideResponse answered;
  std::string bytes;
  ASSERT_TRUE(Decide(test::QueryTurn("kept", 0), &answered, &bytes).ok());
  EXPECT_EQ(answered.scores_size(), 0);
  ASSERT_TRUE(policy::testing::WriteTestArtifact(dir_.File("policy.pt")).ok());
  ASSERT_TRUE(policies_->Reload("test").ok());
  ASSERT_NE(policies_->Get(), first.lock());
  // The decision's own references (the batch, the callback) go with it.
  for (int i = 0; i < 200 && !first.expired(); ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_TRUE(first.expired()) << "the stored conversation keeps the replaced policy";
  v1::DecideRequest retry = test::QueryTurn("kept", 0);
  retry.set_explain(true);
  v1::DecideResponse explained;
  ASSERT_TRUE(Decide(retry, &explained, &bytes).ok());
  EXPECT_EQ(explained.decision_id(), answered.decision_id());
  EXPECT_GT(explained.scores_size(), 0);
}

}  // namespace
}  // namespace lcio::server
