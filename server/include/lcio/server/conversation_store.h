// The server-side conversation store: each conversation's last decided turns
// (enough for any policy's history window), bounded in count (LRU eviction)
// and in idle time. Turns of one conversation are strictly ordered: only the
// next turn can be decided, one request at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lcio::env {
class ActionTable;
}

namespace lcio::server {

// What the stored action and task indices of a conversation mean: the task
// names and each action's identity (local, or cloud with a set of view
// names) of the policy that decided them. A conversation carries the schema
// of its turns, so that after a reload its history is remapped by name, or
// the client is told to restart it, and never silently reinterpreted.
class ConversationSchema {
 public:
  static std::shared_ptr<const ConversationSchema> Create(
      const std::string& policy_version, const std::vector<std::string>& tasks,
      const std::vector<std::string>& view_names, const env::ActionTable& actions);

  const std::string& policy_version() const { return policy_version_; }
  // Same names in the same order: indices mean the same.
  bool SameMeaning(const ConversationSchema& other) const {
    return tasks_ == other.tasks_ && action_keys_ == other.action_keys_;
  }
  // `from`'s action (task) in this schema, or -1 when this schema lacks it.
  int MapAction(const ConversationSchema& from, int action) const;
  int MapTask(const ConversationSchema& from, int task) const;
  // "local", "cloud", "cloud+{front,left}" (bounded), for messages.
  std::string DescribeAction(int action) const;
  const std::string& task(int task) const { return tasks_[task]; }

 private:
  ConversationSchema() = default;
  std::string policy_version_;
  std::vector<std::string> tasks_;
  absl::flat_hash_map<std::string, int> task_index_;
  // Unambiguous identity: target, then the sorted view names, length-prefixed.
  std::vector<std::string> action_keys_;
  absl::flat_hash_map<std::string, int> action_index_;
  std::vector<std::string> action_names_;
};

struct ConversationStoreOptions {
  // Exactly this many conversations are held at most (and held, when that
  // many are active): a new one beyond evicts the least recently used of the
  // whole store.
  size_t max_conversations = 100000;
  absl::Duration idle_expiry = absl::Minutes(30);
  // Turns kept per conversation; policies with a longer history window are
  // refused at load.
  int history_window = 64;
  int shards = 16;
};

// What a retry that asks for the explanation needs when the stored response
// was answered without it (decider.cc); the store only keeps it.
struct StoredExplanation;

class ConversationStore {
 public:
  explicit ConversationStore(const ConversationStoreOptions& options);

  // Who decides a turn: the serving policy's schema and, under mutual TLS,
  // the client's identity (empty otherwise).
  struct Caller {
    std::shared_ptr<const ConversationSchema> schema;
    std::string identity;
  };
  struct Begun {
    // The last min(turn_index, history_window) decided turns, oldest first,
    // in the caller's schema.
    std::vector<int> actions, tasks;
    // Set when the request repeats the conversation's last decided turn
    // exactly (same fingerprint): the stored response is the answer.
    bool replay = false;
    std::string response;
    std::shared_ptr<const StoredExplanation> explanation;  // as committed (may be null)
  };
  // Starts deciding `turn_index` of conversation `id`. FailedPrecondition when
  // the turn is not the next one (or the conversation is unknown or expired
  // and turn_index > 0), or when its history names an action or task the
  // caller's schema lacks (turn_index 0 then restarts it); PermissionDenied
  // when the conversation was started by another identity; Aborted when a
  // concurrent request is deciding it; ResourceExhausted when every held
  // conversation is being decided. Only OK results count as use (a failed
  // call never postpones expiry). Every OK result that is not a replay must
  // be followed by Commit or Abort.
  absl::StatusOr<Begun> Begin(const std::string& id, int turn_index, uint64_t fingerprint,
                              const Caller& caller, absl::Time now);
  // Records the decided turn (the final, shielded action) and its response,
  // with what a replay needs to add the explanation (null: none needed).
  void Commit(const std::string& id, int turn_index, int action, int task, uint64_t fingerprint,
              std::string response, absl::Time now,
              std::shared_ptr<const StoredExplanation> explanation = nullptr);
  // The decision failed: the conversation stays where it was.
  void Abort(const std::string& id, int turn_index);

  // Drops conversations idle longer than the expiry; returns how many.
  size_t ExpireIdle(absl::Time now);
  size_t size() const;
  const ConversationStoreOptions& options() const { return options_; }

 private:
  struct Conversation {
    std::string id;
    std::string owner;  // the identity that started it (mutual TLS), else empty
    std::shared_ptr<const ConversationSchema> schema;  // of actions and tasks
    int next_turn = 0;
    bool deciding = false;
    std::vector<int> actions, tasks;  // ring of the last history_window turns
    uint64_t last_fingerprint = 0;
    std::string last_response;
    std::shared_ptr<const StoredExplanation> last_explanation;
    absl::Time last_used;
  };
  struct Shard {
    mutable absl::Mutex mu;
    // Most recently used first.
    std::list<Conversation> lru ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<std::string, std::list<Conversation>::iterator> index ABSL_GUARDED_BY(mu);
  };
  Shard& ShardOf(const std::string& id) const;
  size_t ExpireShard(Shard& shard, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Takes a slot for a new conversation when the store is below capacity.
  bool TryReserve();
  // Evicts the least recently used conversation not being decided, across
  // all shards, and keeps its slot for the caller. False when there is none.
  bool EvictOldest();
  absl::StatusOr<Begun> BeginExisting(Shard& shard, std::list<Conversation>::iterator it,
                                      int turn_index, uint64_t fingerprint, const Caller& caller,
                                      absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  ConversationStoreOptions options_;
  std::unique_ptr<Shard[]> shards_;
  // Conversations held plus slots reserved for ones being created; never
  // above max_conversations.
  std::atomic<size_t> used_{0};
};

}  // namespace lcio::server
