#include "lcio/server/conversation_store.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"

namespace lcio::server {

ConversationStore::ConversationStore(const ConversationStoreOptions& options) : options_(options) {
  options_.shards = std::max(1, options_.shards);
  options_.history_window = std::max(1, options_.history_window);
  options_.max_conversations = std::max<size_t>(1, options_.max_conversations);
  // Small stores get one shard so that the bound is exact.
  if (options_.max_conversations < static_cast<size_t>(options_.shards) * 64) options_.shards = 1;
  per_shard_capacity_ =
      (options_.max_conversations + options_.shards - 1) / static_cast<size_t>(options_.shards);
  shards_ = std::make_unique<Shard[]>(options_.shards);
}

ConversationStore::Shard& ConversationStore::ShardOf(const std::string& id) const {
  return shards_[std::hash<std::string>{}(id) % static_cast<size_t>(options_.shards)];
}

size_t ConversationStore::ExpireShard(Shard& shard, absl::Time now) const {
  size_t removed = 0;
  while (!shard.lru.empty()) {
    Conversation& oldest = shard.lru.back();
    if (oldest.deciding || now - oldest.last_used <= options_.idle_expiry) break;
    shard.index.erase(oldest.id);
    shard.lru.pop_back();
    ++removed;
  }
  return removed;
}

absl::StatusOr<ConversationStore::Begun> ConversationStore::Begin(const std::string& id,
                                                                  int turn_index,
                                                                  uint64_t fingerprint,
                                                                  absl::Time now) {
  Shard& shard = ShardOf(id);
  absl::MutexLock lock(&shard.mu);
  ExpireShard(shard, now);
  auto found = shard.index.find(id);
  if (found == shard.index.end()) {
    if (turn_index != 0)
      return absl::FailedPreconditionError(absl::StrCat(
          "conversation_id = \"", id, "\", turn_index = ", turn_index,
          ": the server holds no history for this conversation (never started, idle longer than ",
          absl::FormatDuration(options_.idle_expiry),
          ", or evicted); start it at turn_index 0 or send its history"));
    // Evict least recently used conversations that are not being decided.
    for (auto it = shard.lru.end();
         shard.lru.size() >= per_shard_capacity_ && it != shard.lru.begin();) {
      --it;
      if (it->deciding) continue;
      shard.index.erase(it->id);
      it = shard.lru.erase(it);
    }
    if (shard.lru.size() >= per_shard_capacity_)
      return absl::ResourceExhaustedError(
          "conversation store is full of conversations being decided; retry later");
    Conversation conversation;
    conversation.id = id;
    shard.lru.push_front(std::move(conversation));
    found = shard.index.emplace(id, shard.lru.begin()).first;
  } else {
    shard.lru.splice(shard.lru.begin(), shard.lru, found->second);
  }
  Conversation& c = *found->second;
  c.last_used = now;
  Begun begun;
  if (c.next_turn - 1 == turn_index && fingerprint == c.last_fingerprint &&
      !c.last_response.empty()) {
    begun.replay = true;
    begun.response = c.last_response;
    return begun;
  }
  if (c.deciding)
    return absl::AbortedError(absl::StrCat("conversation_id = \"", id,
                                           "\", turn_index = ", turn_index,
                                           ": another request is deciding this conversation's "
                                           "turn right now; turns must be sent one at a time"));
  if (turn_index != c.next_turn)
    return absl::FailedPreconditionError(absl::StrCat(
        "conversation_id = \"", id, "\", turn_index = ", turn_index,
        ": out of order; the next turn of this conversation is ", c.next_turn,
        turn_index < c.next_turn ? " (this turn was already decided with a different request)"
                                 : ""));
  c.deciding = true;
  begun.actions = c.actions;
  begun.tasks = c.tasks;
  return begun;
}

void ConversationStore::Commit(const std::string& id, int turn_index, int action, int task,
                               uint64_t fingerprint, std::string response, absl::Time now) {
  Shard& shard = ShardOf(id);
  absl::MutexLock lock(&shard.mu);
  auto found = shard.index.find(id);
  if (found == shard.index.end()) return;
  Conversation& c = *found->second;
  if (!c.deciding || c.next_turn != turn_index) return;
  c.deciding = false;
  c.next_turn = turn_index + 1;
  c.actions.push_back(action);
  c.tasks.push_back(task);
  if (static_cast<int>(c.actions.size()) > options_.history_window) {
    c.actions.erase(c.actions.begin());
    c.tasks.erase(c.tasks.begin());
  }
  c.last_fingerprint = fingerprint;
  c.last_response = std::move(response);
  c.last_used = now;
}

void ConversationStore::Abort(const std::string& id, int turn_index) {
  Shard& shard = ShardOf(id);
  absl::MutexLock lock(&shard.mu);
  auto found = shard.index.find(id);
  if (found == shard.index.end()) return;
  Conversation& c = *found->second;
  if (c.next_turn != turn_index) return;
  c.deciding = false;
  // A conversation that never got its first turn holds nothing worth keeping.
  if (c.next_turn == 0) {
    shard.lru.erase(found->second);
    shard.index.erase(found);
  }
}

size_t ConversationStore::ExpireIdle(absl::Time now) {
  size_t removed = 0;
  for (int s = 0; s < options_.shards; ++s) {
    absl::MutexLock lock(&shards_[s].mu);
    removed += ExpireShard(shards_[s], now);
  }
  return removed;
}

size_t ConversationStore::size() const {
  size_t total = 0;
  for (int s = 0; s < options_.shards; ++s) {
    absl::MutexLock lock(&shards_[s].mu);
    total += shards_[s].lru.size();
  }
  return total;
}

}  // namespace lcio::server
