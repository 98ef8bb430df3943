#include "lcio/server/conversation_store.h"

#include <gtest/gtest.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "lcio/env/action_table.h"

namespace lcio::server {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000000);

// The schema of a policy with these views and tasks (actions: every subset).
std::shared_ptr<const ConversationSchema> Schema(const std::vector<std::string>& views,
                                                 const std::vector<std::string>& tasks,
                                                 const std::string& version = "v") {
  auto actions = env::ActionTable::Create(static_cast<int>(views.size()));
  return ConversationSchema::Create(version, tasks, views, *actions);
}

// One schema, one caller without an identity: what most tests need.
ConversationStore::Caller Caller() {
  static const auto* schema = new std::shared_ptr<const ConversationSchema>(
      Schema({"view0", "view1", "view2"}, {"A", "B", "C", "D"}));
  return {*schema, ""};
}

TEST(ConversationStoreTest, TurnsAdvanceInOrderAndKeepTheHistory) {
  ConversationStore store({});
  for (int turn = 0; turn < 4; ++turn) {
    auto begun = store.Begin("c1", turn, 100 + turn, Caller(), kT0);
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
  auto skipped = store.Begin("c1", 1, 1, Caller(), kT0);
  EXPECT_EQ(skipped.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(skipped.status().message().find("turn_index 0"), std::string::npos);
  ASSERT_TRUE(store.Begin("c1", 0, 1, Caller(), kT0).ok());
  store.Commit("c1", 0, 0, 0, 1, "r0", kT0);
  auto ahead = store.Begin("c1", 2, 2, Caller(), kT0);
  EXPECT_EQ(ahead.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(ahead.status().message().find("next turn of this conversation is 1"), std::string::npos)
      << ahead.status();
  auto behind = store.Begin("c1", 0, 99, Caller(), kT0);  // turn 0 again, different request
  EXPECT_EQ(behind.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(behind.status().message().find("already decided with a different request"),
            std::string::npos)
      << behind.status();
  // An earlier turn, even the very request that decided it, is no longer
  // replayed: the message must not call it a different request.
  ASSERT_TRUE(store.Begin("c1", 1, 2, Caller(), kT0).ok());
  store.Commit("c1", 1, 0, 0, 2, "r1", kT0);
  auto older = store.Begin("c1", 0, 1, Caller(), kT0);
  EXPECT_EQ(older.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(older.status().message().find("different request"), std::string::npos)
      << older.status();
  EXPECT_NE(older.status().message().find("only the last turn's answer is kept"), std::string::npos)
      << older.status();
}

TEST(ConversationStoreTest, TheSameRequestForTheLastTurnIsReplayed) {
  ConversationStore store({});
  ASSERT_TRUE(store.Begin("c1", 0, 7, Caller(), kT0).ok());
  store.Commit("c1", 0, 3, 1, 7, "decision-0", kT0);
  auto again = store.Begin("c1", 0, 7, Caller(), kT0);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replay);
  EXPECT_EQ(again->response, "decision-0");
  // The replay did not advance or lock the conversation.
  EXPECT_TRUE(store.Begin("c1", 1, 8, Caller(), kT0).ok());
}

TEST(ConversationStoreTest, TheLargestTurnIndexIsRefusedWithoutOverflow) {
  ConversationStore store({});
  ASSERT_TRUE(store.Begin("c1", 0, 1, Caller(), kT0).ok());
  store.Commit("c1", 0, 0, 0, 1, "r", kT0);
  EXPECT_EQ(store.Begin("c1", std::numeric_limits<int>::max(), 1, Caller(), kT0).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ConversationStoreTest, ConcurrentDecisionsOfOneConversationAreRefused) {
  ConversationStore store({});
  ASSERT_TRUE(store.Begin("c1", 0, 1, Caller(), kT0).ok());
  EXPECT_EQ(store.Begin("c1", 0, 1, Caller(), kT0).status().code(), absl::StatusCode::kAborted);
  store.Abort("c1", 0);
  EXPECT_TRUE(store.Begin("c1", 0, 1, Caller(), kT0).ok());
}

TEST(ConversationStoreTest, AbortLeavesTheConversationWhereItWas) {
  ConversationStore store({});
  ASSERT_TRUE(store.Begin("c1", 0, 1, Caller(), kT0).ok());
  store.Commit("c1", 0, 2, 0, 1, "r", kT0);
  ASSERT_TRUE(store.Begin("c1", 1, 2, Caller(), kT0).ok());
  store.Abort("c1", 1);
  auto retry = store.Begin("c1", 1, 3, Caller(), kT0);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->actions, std::vector<int>({2}));
}

TEST(ConversationStoreTest, IdleConversationsExpire) {
  ConversationStoreOptions options;
  options.idle_expiry = absl::Seconds(10);
  ConversationStore store(options);
  ASSERT_TRUE(store.Begin("c1", 0, 1, Caller(), kT0).ok());
  store.Commit("c1", 0, 0, 0, 1, "r", kT0);
  EXPECT_EQ(store.ExpireIdle(kT0 + absl::Seconds(5)), 0u);
  EXPECT_TRUE(store.Begin("c1", 1, 2, Caller(), kT0 + absl::Seconds(5)).ok());
  store.Commit("c1", 1, 0, 0, 2, "r", kT0 + absl::Seconds(5));
  // Idle for 11 s since the last use: gone, and the next turn says so.
  auto expired = store.Begin("c1", 2, 3, Caller(), kT0 + absl::Seconds(16));
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(expired.status().message().find("no history"), std::string::npos);
  EXPECT_EQ(store.size(), 0u);
}

TEST(ConversationStoreTest, LeastRecentlyUsedConversationsAreEvictedAtTheBound) {
  ConversationStoreOptions options;
  options.max_conversations = 3;
  ConversationStore store(options);
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_TRUE(store.Begin(id, 0, 1, Caller(), kT0).ok());
    store.Commit(id, 0, 0, 0, 1, "r", kT0);
  }
  ASSERT_TRUE(store.Begin("a", 1, 2, Caller(), kT0).ok());  // a becomes the most recent
  store.Commit("a", 1, 0, 0, 2, "r", kT0);
  ASSERT_TRUE(store.Begin("d", 0, 1, Caller(), kT0).ok());  // evicts b
  store.Commit("d", 0, 0, 0, 1, "r", kT0);
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.Begin("b", 1, 2, Caller(), kT0).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store.Begin("a", 2, 3, Caller(), kT0).ok());
  EXPECT_TRUE(store.Begin("c", 1, 3, Caller(), kT0).ok());
}

TEST(ConversationStoreTest, HistoryIsBoundedByTheWindow) {
  ConversationStoreOptions options;
  options.history_window = 4;
  ConversationStore store(options);
  for (int turn = 0; turn < 10; ++turn) {
    auto begun = store.Begin("c", turn, turn, Caller(), kT0);
    ASSERT_TRUE(begun.ok());
    EXPECT_LE(begun->actions.size(), 4u);
    if (turn >= 4) {
      EXPECT_EQ(begun->actions.back(), turn - 1);
    }
    store.Commit("c", turn, turn, 0, turn, "r", kT0);
  }
}

// The bound is exact: a sharded store holds --max_conversations, not fewer
// (per-shard capacities used to evict early in the fullest shard).
TEST(ConversationStoreTest, HoldsExactlyMaxConversations) {
  ConversationStoreOptions options;
  options.max_conversations = 100000;
  ConversationStore store(options);
  for (int i = 0; i < 101000; ++i) {
    const std::string id = absl::StrCat("c", i);
    ASSERT_TRUE(store.Begin(id, 0, 1, Caller(), kT0).ok()) << i;
    store.Commit(id, 0, 0, 0, 1, "r", kT0);
    if (i == 99999) {
      ASSERT_EQ(store.size(), 100000u);
    }
  }
  EXPECT_EQ(store.size(), 100000u);
}

// Eviction is global: the store's least recently used conversation goes,
// whichever shard the new one lands in.
TEST(ConversationStoreTest, TheLeastRecentlyUsedOfTheWholeStoreIsEvicted) {
  ConversationStoreOptions options;
  options.max_conversations = 2048;  // sharded
  ConversationStore store(options);
  for (int i = 0; i < 2048; ++i) {
    const std::string id = absl::StrCat("c", i);
    const absl::Time t = kT0 + absl::Milliseconds(i);
    ASSERT_TRUE(store.Begin(id, 0, 1, Caller(), t).ok());
    store.Commit(id, 0, 0, 0, 1, "r", t);
  }
  for (int i = 0; i < 10; ++i) {
    const std::string id = absl::StrCat("new", i);
    ASSERT_TRUE(store.Begin(id, 0, 1, Caller(), kT0 + absl::Seconds(10)).ok());
    store.Commit(id, 0, 0, 0, 1, "r", kT0 + absl::Seconds(10));
  }
  EXPECT_EQ(store.size(), 2048u);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(
        store.Begin(absl::StrCat("c", i), 1, 2, Caller(), kT0 + absl::Seconds(11)).status().code(),
        absl::StatusCode::kFailedPrecondition)
        << i;
  for (int i = 10; i < 2048; ++i)
    ASSERT_TRUE(store.Begin(absl::StrCat("c", i), 1, 2, Caller(), kT0 + absl::Seconds(11)).ok())
        << i;
}

// Only successful calls count as use: a client repeating a failing call does
// not keep its conversation from expiring.
TEST(ConversationStoreTest, FailedCallsDoNotPostponeExpiry) {
  ConversationStoreOptions options;
  options.idle_expiry = absl::Seconds(10);
  ConversationStore store(options);
  ASSERT_TRUE(store.Begin("c1", 0, 1, Caller(), kT0).ok());
  store.Commit("c1", 0, 0, 0, 1, "r", kT0);
  for (int s = 2; s <= 8; s += 2)
    EXPECT_EQ(store.Begin("c1", 5, 2, Caller(), kT0 + absl::Seconds(s)).status().code(),
              absl::StatusCode::kFailedPrecondition);
  auto expired = store.Begin("c1", 1, 2, Caller(), kT0 + absl::Seconds(12));
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(expired.status().message().find("no history"), std::string::npos) << expired.status();
}

// A reload to a policy with the same names in another order: the history is
// remapped by name (views reordered, so the action indices change too).
TEST(ConversationStoreTest, HistoryIsRemappedByNameAfterAReload) {
  ConversationStore store({});
  ConversationStore::Caller before = Caller();
  // Action 3 is cloud+{view1}; task 1 is B.
  ASSERT_TRUE(store.Begin("c", 0, 1, before, kT0).ok());
  store.Commit("c", 0, 3, 1, 1, "r", kT0);
  ConversationStore::Caller after{Schema({"view1", "view2", "view0"}, {"D", "B", "A", "C"}), ""};
  auto begun = store.Begin("c", 1, 2, after, kT0);
  ASSERT_TRUE(begun.ok()) << begun.status();
  ASSERT_EQ(begun->actions.size(), 1u);
  EXPECT_EQ(after.schema->DescribeAction(begun->actions[0]), "cloud+{view1}");
  EXPECT_EQ(begun->actions[0], 2);
  EXPECT_EQ(begun->tasks, std::vector<int>({1}));
  store.Commit("c", 1, 0, 3, 2, "r", kT0);
  // And back: the stored history is in the new schema now, mapped back again.
  begun = store.Begin("c", 2, 3, before, kT0);
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_EQ(begun->actions, std::vector<int>({3, 0}));
  EXPECT_EQ(begun->tasks, std::vector<int>({1, 2}));
}

// A reload to a policy without an action or task the history needs: the next
// turn is refused with a restart hint, without touching the conversation, and
// the restart at turn 0 works.
TEST(ConversationStoreTest, HistoryTheNewSchemaCannotExpressAsksForARestart) {
  ConversationStoreOptions options;
  options.idle_expiry = absl::Seconds(10);
  for (const auto& schema : {Schema({"view0", "view1"}, {"A", "B", "C", "D"}, "small"),
                             Schema({"view0", "view1", "view2"}, {"A", "X", "C", "D"}, "other")}) {
    ConversationStore store(options);
    ASSERT_TRUE(store.Begin("c", 0, 1, Caller(), kT0).ok());
    store.Commit("c", 0, 7, 1, 1, "r", kT0);  // cloud+{view1,view2}, task B
    ConversationStore::Caller after{schema, ""};
    auto refused = store.Begin("c", 1, 2, after, kT0 + absl::Seconds(5));
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(refused.status().message().find("restart the conversation at turn_index 0"),
              std::string::npos)
        << refused.status();
    EXPECT_NE(refused.status().message().find(schema->policy_version()), std::string::npos);
    // The old policy would still continue it: nothing was changed.
    ASSERT_TRUE(store.Begin("c", 1, 2, Caller(), kT0 + absl::Seconds(5)).ok());
    store.Abort("c", 1);
    auto restarted = store.Begin("c", 0, 3, after, kT0 + absl::Seconds(6));
    ASSERT_TRUE(restarted.ok()) << restarted.status();
    EXPECT_TRUE(restarted->actions.empty());
    store.Commit("c", 0, 1, 0, 3, "r", kT0 + absl::Seconds(6));
    auto next = store.Begin("c", 1, 4, after, kT0 + absl::Seconds(6));
    ASSERT_TRUE(next.ok()) << next.status();
    EXPECT_EQ(next->actions, std::vector<int>({1}));
  }
}

// Under mutual TLS a conversation belongs to the identity that started it:
// another identity can neither advance it nor replay its last answer.
TEST(ConversationStoreTest, AConversationIsBoundToTheIdentityThatStartedIt) {
  ConversationStore store({});
  ConversationStore::Caller alice = Caller(), bob = Caller();
  alice.identity = "CN=alice";
  bob.identity = "CN=bob";
  ASSERT_TRUE(store.Begin("c", 0, 1, alice, kT0).ok());
  store.Commit("c", 0, 1, 0, 1, "secret", kT0);
  auto advance = store.Begin("c", 1, 2, bob, kT0);
  EXPECT_EQ(advance.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(advance.status().message().find("alice"), std::string::npos) << advance.status();
  EXPECT_EQ(store.Begin("c", 0, 1, bob, kT0).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(store.Begin("c", 1, 2, Caller(), kT0).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(store.Begin("c", 1, 2, alice, kT0).ok());
}

}  // namespace
}  // namespace lcio::server
