#include "lcio/server/conversation_store.h"

#include <gtest/gtest.h>

#include <limits>

namespace lcio::server {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000000);

TEST(ConversationStoreTest, TurnsAdvanceInOrderAndKeepTheHistory) {
  ConversationStore store({});
  for (int turn = 0; turn < 4; ++turn) {
    auto begun = store.Begin("c1", turn, 100 + turn, kT0);
    ASSERT_TRUE(begun.ok()) << begun.status();
    EXPECT_FALSE(begun->replay);
    ASSERT_EQ(begun->actions.size(), static_cast<size_t>(turn));
    for (int k = 0; k < turn; ++k) {
      EXPECT_EQ(begun->actions[k], k + 1);
      EXPECT_EQ(begun->tasks[k], k % 2);
    }
    store.Commit("c1", turn, turn + 1, turn % 2, 100 + turn, "response", kT0);
  }
  EXPECT_EQ(store.size(), 1u);
}

TEST(ConversationStoreTest, OutOfOrderTurnsAreRefusedWithTheExpectedTurn) {
  ConversationStore store({});
  auto skipped = store.Begin("c1", 1, 1, kT0);
  EXPECT_EQ(skipped.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(skipped.status().message().find("turn_index 0"), std::string::npos);
  ASSERT_TRUE(store.Begin("c1", 0, 1, kT0).ok());
  store.Commit("c1", 0, 0, 0, 1, "r0", kT0);
  auto ahead = store.Begin("c1", 2, 2, kT0);
  EXPECT_EQ(ahead.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(ahead.status().message().find("next turn of this conversation is 1"), std::string::npos)
      << ahead.status();
  auto behind = store.Begin("c1", 0, 99, kT0);  // turn 0 again, different request
  EXPECT_EQ(behind.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ConversationStoreTest, TheSameRequestForTheLastTurnIsReplayed) {
  ConversationStore store({});
  ASSERT_TRUE(store.Begin("c1", 0, 7, kT0).ok());
  store.Commit("c1", 0, 3, 1, 7, "decision-0", kT0);
  auto again = store.Begin("c1", 0, 7, kT0);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replay);
  EXPECT_EQ(again->response, "decision-0");
  // The replay did not advance or lock the conversation.
  EXPECT_TRUE(store.Begin("c1", 1, 8, kT0).ok());
}

TEST(ConversationStoreTest, TheLargestTurnIndexIsRefusedWithoutOverflow) {
  ConversationStore store({});
  ASSERT_TRUE(store.Begin("c1", 0, 1, kT0).ok());
  store.Commit("c1", 0, 0, 0, 1, "r", kT0);
  EXPECT_EQ(store.Begin("c1", std::numeric_limits<int>::max(), 1, kT0).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ConversationStoreTest, ConcurrentDecisionsOfOneConversationAreRefused) {
  ConversationStore store({});
  ASSERT_TRUE(store.Begin("c1", 0, 1, kT0).ok());
  EXPECT_EQ(store.Begin("c1", 0, 1, kT0).status().code(), absl::StatusCode::kAborted);
  store.Abort("c1", 0);
  EXPECT_TRUE(store.Begin("c1", 0, 1, kT0).ok());
}

TEST(ConversationStoreTest, AbortLeavesTheConversationWhereItWas) {
  ConversationStore store({});
  ASSERT_TRUE(store.Begin("c1", 0, 1, kT0).ok());
  store.Commit("c1", 0, 2, 0, 1, "r", kT0);
  ASSERT_TRUE(store.Begin("c1", 1, 2, kT0).ok());
  store.Abort("c1", 1);
  auto retry = store.Begin("c1", 1, 3, kT0);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->actions, std::vector<int>({2}));
}

TEST(ConversationStoreTest, IdleConversationsExpire) {
  ConversationStoreOptions options;
  options.idle_expiry = absl::Seconds(10);
  ConversationStore store(options);
  ASSERT_TRUE(store.Begin("c1", 0, 1, kT0).ok());
  store.Commit("c1", 0, 0, 0, 1, "r", kT0);
  EXPECT_EQ(store.ExpireIdle(kT0 + absl::Seconds(5)), 0u);
  EXPECT_TRUE(store.Begin("c1", 1, 2, kT0 + absl::Seconds(5)).ok());
  store.Commit("c1", 1, 0, 0, 2, "r", kT0 + absl::Seconds(5));
  // Idle for 11 s since the last use: gone, and the next turn says so.
  auto expired = store.Begin("c1", 2, 3, kT0 + absl::Seconds(16));
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(expired.status().message().find("no history"), std::string::npos);
  EXPECT_EQ(store.size(), 0u);
}

TEST(ConversationStoreTest, LeastRecentlyUsedConversationsAreEvictedAtTheBound) {
  ConversationStoreOptions options;
  options.max_conversations = 3;
  ConversationStore store(options);
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_TRUE(store.Begin(id, 0, 1, kT0).ok());
    store.Commit(id, 0, 0, 0, 1, "r", kT0);
  }
  ASSERT_TRUE(store.Begin("a", 1, 2, kT0).ok());  // a becomes the most recent
  store.Commit("a", 1, 0, 0, 2, "r", kT0);
  ASSERT_TRUE(store.Begin("d", 0, 1, kT0).ok());  // evicts b
  store.Commit("d", 0, 0, 0, 1, "r", kT0);
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.Begin("b", 1, 2, kT0).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store.Begin("a", 2, 3, kT0).ok());
  EXPECT_TRUE(store.Begin("c", 1, 3, kT0).ok());
}

TEST(ConversationStoreTest, HistoryIsBoundedByTheWindow) {
  ConversationStoreOptions options;
  options.history_window = 4;
  ConversationStore store(options);
  for (int turn = 0; turn < 10; ++turn) {
    auto begun = store.Begin("c", turn, turn, kT0);
    ASSERT_TRUE(begun.ok());
    EXPECT_LE(begun->actions.size(), 4u);
    if (turn >= 4) EXPECT_EQ(begun->actions.back(), turn - 1);
    store.Commit("c", turn, turn, 0, turn, "r", kT0);
  }
}

}  // namespace
}  // namespace lcio::server
