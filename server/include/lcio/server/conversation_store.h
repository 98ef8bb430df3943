// The server-side conversation store: each conversation's last decided turns
// (enough for any policy's history window), bounded in count (LRU eviction)
// and in idle time. Turns of one conversation are strictly ordered: only the
// next turn can be decided, one request at a time.
#pragma once

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

namespace lcio::server {

struct ConversationStoreOptions {
  size_t max_conversations = 100000;
  absl::Duration idle_expiry = absl::Minutes(30);
  // Turns kept per conversation; policies with a longer history window are
  // refused at load.
  int history_window = 64;
  int shards = 16;
};

class ConversationStore {
 public:
  explicit ConversationStore(const ConversationStoreOptions& options);

  struct Begun {
    // The last min(turn_index, history_window) decided turns, oldest first.
    std::vector<int> actions, tasks;
    // Set when the request repeats the conversation's last decided turn
    // exactly (same fingerprint): the stored response is the answer.
    bool replay = false;
    std::string response;
  };
  // Starts deciding `turn_index` of conversation `id`. FailedPrecondition when
  // the turn is not the next one (or the conversation is unknown or expired
  // and turn_index > 0); Aborted when a concurrent request is deciding it.
  // Every OK result that is not a replay must be followed by Commit or Abort.
  absl::StatusOr<Begun> Begin(const std::string& id, int turn_index, uint64_t fingerprint,
                              absl::Time now);
  // Records the decided turn (the final, shielded action) and its response.
  void Commit(const std::string& id, int turn_index, int action, int task, uint64_t fingerprint,
              std::string response, absl::Time now);
  // The decision failed: the conversation stays where it was.
  void Abort(const std::string& id, int turn_index);

  // Drops conversations idle longer than the expiry; returns how many.
  size_t ExpireIdle(absl::Time now);
  size_t size() const;
  const ConversationStoreOptions& options() const { return options_; }

 private:
  struct Conversation {
    std::string id;
    int next_turn = 0;
    bool deciding = false;
    std::vector<int> actions, tasks;  // ring of the last history_window turns
    uint64_t last_fingerprint = 0;
    std::string last_response;
    absl::Time last_used;
  };
  struct Shard {
    mutable absl::Mutex mu;
    // Most recently used first.
    std::list<Conversation> lru ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<std::string, std::list<Conversation>::iterator> index ABSL_GUARDED_BY(mu);
  };
  Shard& ShardOf(const std::string& id) const;
  size_t ExpireShard(Shard& shard, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  ConversationStoreOptions options_;
  size_t per_shard_capacity_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace lcio::server
