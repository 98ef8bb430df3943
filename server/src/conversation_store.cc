#include "lcio/server/conversation_store.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lcio/data/message.h"
#include "lcio/env/action_table.h"

namespace lcio::server {

std::shared_ptr<const ConversationSchema> ConversationSchema::Create(
    const std::string& policy_version, const std::vector<std::string>& tasks,
    const std::vector<std::string>& view_names, const env::ActionTable& actions) {
  std::shared_ptr<ConversationSchema> schema(new ConversationSchema());
  schema->policy_version_ = policy_version;
  schema->tasks_ = tasks;
  for (size_t t = 0; t < tasks.size(); ++t) schema->task_index_.emplace(tasks[t], t);
  for (int a = 0; a < actions.size(); ++a) {
    std::vector<std::string> names;
    for (int v : actions.views(a)) names.push_back(view_names[v]);
    std::string name = !actions.is_cloud(a) ? "local"
                       : names.empty()      ? "cloud"
                                       : absl::StrCat("cloud+{", absl::StrJoin(names, ","), "}");
    std::sort(names.begin(), names.end());
    std::string key = actions.is_cloud(a) ? "C" : "L";
    for (const std::string& n : names) absl::StrAppend(&key, n.size(), ":", n);
    schema->action_index_.emplace(key, a);
    schema->action_keys_.push_back(std::move(key));
    schema->action_names_.push_back(data::Shorten(name));
  }
  return schema;
}

int ConversationSchema::MapAction(const ConversationSchema& from, int action) const {
  if (action < 0 || action >= static_cast<int>(from.action_keys_.size())) return -1;
  auto it = action_index_.find(from.action_keys_[action]);
  return it == action_index_.end() ? -1 : it->second;
}

int ConversationSchema::MapTask(const ConversationSchema& from, int task) const {
  if (task < 0 || task >= static_cast<int>(from.tasks_.size())) return -1;
  auto it = task_index_.find(from.tasks_[task]);
  return it == task_index_.end() ? -1 : static_cast<int>(it->second);
}

std::string ConversationSchema::DescribeAction(int action) const {
  if (action < 0 || action >= static_cast<int>(action_names_.size())) return "?";
  return action_names_[action];
}

ConversationStore::ConversationStore(const ConversationStoreOptions& options) : options_(options) {
  options_.shards = std::max(1, options_.shards);
  options_.history_window = std::max(1, options_.history_window);
  options_.max_conversations = std::max<size_t>(1, options_.max_conversations);
  // Small stores get one shard: eviction there is exactly LRU.
  if (options_.max_conversations < static_cast<size_t>(options_.shards) * 64) options_.shards = 1;
  shards_ = std::make_unique<Shard[]>(options_.shards);
}

ConversationStore::Shard& ConversationStore::ShardOf(const std::string& id) const {
  return shards_[std::hash<std::string>{}(id) % static_cast<size_t>(options_.shards)];
}

size_t ConversationStore::ExpireShard(Shard& shard, absl::Time now) {
  size_t removed = 0;
  while (!shard.lru.empty()) {
    Conversation& oldest = shard.lru.back();
    if (oldest.deciding || now - oldest.last_used <= options_.idle_expiry) break;
    shard.index.erase(oldest.id);
    shard.lru.pop_back();
    ++removed;
  }
  if (removed > 0) used_.fetch_sub(removed);
  return removed;
}

bool ConversationStore::TryReserve() {
  size_t used = used_.load();
  while (used < options_.max_conversations)
    if (used_.compare_exchange_weak(used, used + 1)) return true;
  return false;
}

bool ConversationStore::EvictOldest() {
  // Each shard's list is ordered by last use: its oldest evictable entry is
  // near the back. The store's oldest is the oldest of those. Shards are
  // locked one at a time (never two), so this cannot deadlock with Begin.
  for (int attempt = 0; attempt < 4; ++attempt) {
    int best = -1;
    absl::Time oldest = absl::InfiniteFuture();
    for (int s = 0; s < options_.shards; ++s) {
      absl::MutexLock lock(&shards_[s].mu);
      for (auto it = shards_[s].lru.rbegin(); it != shards_[s].lru.rend(); ++it) {
        if (it->deciding) continue;
        if (best < 0 || it->last_used < oldest) {
          best = s;
          oldest = it->last_used;
        }
        break;
      }
    }
    if (best < 0) return false;
    Shard& shard = shards_[best];
    absl::MutexLock lock(&shard.mu);
    for (auto it = shard.lru.end(); it != shard.lru.begin();) {
      --it;
      if (it->deciding) continue;
      // The slot passes to the caller: used_ stays.
      shard.index.erase(it->id);
      shard.lru.erase(it);
      return true;
    }
    // Another thread took that shard's entries meanwhile: look again.
  }
  return false;
}

absl::StatusOr<ConversationStore::Begun> ConversationStore::Begin(const std::string& id,
                                                                  int turn_index,
                                                                  uint64_t fingerprint,
                                                                  const Caller& caller,
                                                                  absl::Time now) {
  Shard& shard = ShardOf(id);
  bool reserved = false;
  auto release = [&] {
    if (reserved) used_.fetch_sub(1);
    reserved = false;
  };
  // Two rounds at most: when the store is full, the second round has the
  // slot of the conversation evicted in between.
  for (int round = 0; round < 2; ++round) {
    {
      absl::MutexLock lock(&shard.mu);
      ExpireShard(shard, now);
      auto found = shard.index.find(id);
      if (found != shard.index.end()) {
        release();
        return BeginExisting(shard, found->second, turn_index, fingerprint, caller, now);
      }
      if (turn_index != 0) {
        release();
        return absl::FailedPreconditionError(absl::StrCat(
            "conversation_id = \"", id, "\", turn_index = ", turn_index,
            ": the server holds no history for this conversation (never started, idle longer "
            "than ",
            absl::FormatDuration(options_.idle_expiry),
            ", or evicted); start it at turn_index 0 or send its history"));
      }
      if (reserved || TryReserve()) {
        Conversation conversation;
        conversation.id = id;
        conversation.owner = caller.identity;
        conversation.schema = caller.schema;
        conversation.last_used = now;
        shard.lru.push_front(std::move(conversation));
        found = shard.index.emplace(id, shard.lru.begin()).first;
        return BeginExisting(shard, found->second, turn_index, fingerprint, caller, now);
      }
    }
    if (!EvictOldest()) break;
    reserved = true;
  }
  release();
  return absl::ResourceExhaustedError(
      absl::StrCat("conversation store is full (", options_.max_conversations,
                   ", --max_conversations) of conversations being decided; retry later"));
}

absl::StatusOr<ConversationStore::Begun> ConversationStore::BeginExisting(
    Shard& shard, std::list<Conversation>::iterator it, int turn_index, uint64_t fingerprint,
    const Caller& caller, absl::Time now) {
  Conversation& c = *it;
  // A successful call is a use: most recent in the LRU, expiry postponed.
  auto touch = [&] {
    c.last_used = now;
    shard.lru.splice(shard.lru.begin(), shard.lru, it);
  };
  // Checked first: another identity learns nothing, not even a replay.
  if (c.owner != caller.identity)
    return absl::PermissionDeniedError(absl::StrCat(
        "conversation_id = \"", c.id,
        "\": started by another client identity; under mutual TLS a conversation belongs to the "
        "certificate identity that started it (use your own conversation_id)"));
  Begun begun;
  if (c.next_turn - 1 == turn_index && fingerprint == c.last_fingerprint &&
      !c.last_response.empty()) {
    touch();
    begun.replay = true;
    begun.response = c.last_response;
    begun.explanation = c.last_explanation;
    return begun;
  }
  if (c.deciding)
    return absl::AbortedError(absl::StrCat("conversation_id = \"", c.id,
                                           "\", turn_index = ", turn_index,
                                           ": another request is deciding this conversation's "
                                           "turn right now; turns must be sent one at a time"));
  // History decided under another policy's schema: remapped by name, or,
  // when the serving policy lacks a name it needs, the client must restart.
  std::vector<int> actions, tasks;
  const bool remap = c.schema != caller.schema && !caller.schema->SameMeaning(*c.schema);
  if (remap) {
    std::string missing;
    for (size_t i = 0; i < c.actions.size() && missing.empty(); ++i) {
      actions.push_back(caller.schema->MapAction(*c.schema, c.actions[i]));
      tasks.push_back(caller.schema->MapTask(*c.schema, c.tasks[i]));
      if (actions.back() < 0)
        missing = absl::StrCat("action \"", c.schema->DescribeAction(c.actions[i]), "\"");
      else if (tasks.back() < 0)
        missing = absl::StrCat("task \"", data::Shorten(c.schema->task(c.tasks[i])), "\"");
    }
    if (!missing.empty()) {
      if (turn_index != 0)
        return absl::FailedPreconditionError(absl::StrCat(
            "conversation_id = \"", c.id, "\", turn_index = ", turn_index,
            ": its earlier turns were decided by policy ",
            data::Shorten(c.schema->policy_version()), " with ", missing,
            ", which the serving policy ", data::Shorten(caller.schema->policy_version()),
            " does not have; restart the conversation at turn_index 0 (or send its history)"));
      // The restart the message above asks for: the old history is dropped.
      c.next_turn = 0;
      c.actions.clear();
      c.tasks.clear();
      c.last_fingerprint = 0;
      c.last_response.clear();
      c.last_explanation.reset();
      actions.clear();
      tasks.clear();
    }
  }
  if (turn_index != c.next_turn)
    return absl::FailedPreconditionError(absl::StrCat(
        "conversation_id = \"", c.id, "\", turn_index = ", turn_index,
        ": out of order; the next turn of this conversation is ", c.next_turn,
        turn_index == c.next_turn - 1
            ? " (this turn was already decided with a different request)"
            : (turn_index < c.next_turn ? " (this turn was already decided and is not the last: "
                                          "only the last turn's answer is kept for a retry)"
                                        : "")));
  if (remap) {
    c.actions = std::move(actions);
    c.tasks = std::move(tasks);
  }
  c.schema = caller.schema;
  c.deciding = true;
  touch();
  begun.actions = c.actions;
  begun.tasks = c.tasks;
  return begun;
}

void ConversationStore::Commit(const std::string& id, int turn_index, int action, int task,
                               uint64_t fingerprint, std::string response, absl::Time now,
                               std::shared_ptr<const StoredExplanation> explanation) {
  Shard& shard = ShardOf(id);
  // The explanation replaced is released after the lock (it may hold the
  // last reference to a policy reloaded since).
  std::shared_ptr<const StoredExplanation> replaced;
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
  replaced = std::exchange(c.last_explanation, std::move(explanation));
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
    used_.fetch_sub(1);
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
