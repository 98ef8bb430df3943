// The decision log and the shadow policy, off the request path. Decide
// hands over what it decided (a DecisionEvent: moved, never encoded there)
// to a bounded queue; one worker thread lets the shadow policy score the
// requests (in batches, after they were answered), builds the records
// (data/decision_log.h) and queues their lines for the append log's writer
// (group commit). A full queue drops the record and counts it
// (lcio_decision_log_dropped_total): Decide never waits for the log.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "lcio/data/decision_log.h"
#include "lcio/env/shield.h"
#include "lcio/server/append_log.h"
#include "lcio/server/exploration.h"
#include "lcio/server/log.h"
#include "lcio/server/metrics.h"
#include "lcio/server/request.h"
#include "lcio/server/serving_policy.h"

namespace lcio::server {

class PolicyHolder;

// One answered Decide, as the decision path knew it.
struct DecisionEvent {
  std::shared_ptr<const ServingPolicy> policy;
  std::string decision_id;
  absl::Time time;
  std::string conversation_id;
  int turn_index = 0;
  ParsedDecide parsed;           // parsed.money_usd: what the policy and the shield saw
  double request_money_usd = 0;  // the request's own (higher under --fleet_control)
  int task_index = 0;
  bool task_inferred = false;
  double task_confidence = 1;
  // The conversation's earlier turns (at least the policy's window), oldest
  // first, in the policy's indices.
  std::vector<int> history_actions, history_tasks;
  std::vector<float> scores;
  int proposed = 0;
  env::ShieldDecision shield;
  ExploreChoice choice;
  bool opted_out = false;  // the request set no_explore
  bool fallback = false;   // the artifact's fallback table answered (proposed)
};

// `t` as absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, UTC) writes it (the
// record's time_utc), into `out`. The date and time up to the second are
// formatted once per second per thread: the worker's events come in time
// order.
void FormatDecisionTime(absl::Time t, std::string* out);

// The record of an event (without the shadow's part).
data::DecisionRecord BuildDecisionRecord(const DecisionEvent& event, const ExploreConfig& explore);
// The same into `record`, every field assigned (its storage reused).
void BuildDecisionRecord(const DecisionEvent& event, const ExploreConfig& explore,
                         data::DecisionRecord* record);

struct DecisionLoggerOptions {
  int queue_max = 4096;  // events waiting for the worker, and lines for the writer
  ExploreConfig explore;
  // The worker's nice value: it competes with Decide for the cores only
  // where they are idle; when it falls behind, records are dropped and
  // counted rather than Decide slowed.
  int worker_nice = kDecisionLogNice;
  static constexpr int kDecisionLogNice = 10;
  // The worker takes the queue at most once per interval (records wait up
  // to this long before they are built and handed to the writer).
  absl::Duration gather_interval = absl::Milliseconds(20);
};

class DecisionLogger {
 public:
  // `log` (the decision log) or `shadow` (the shadow policy's holder) may be
  // null, not both; `metrics` may be null.
  DecisionLogger(const DecisionLoggerOptions& options, std::unique_ptr<GroupCommitter> log,
                 PolicyHolder* shadow, Metrics* metrics);
  ~DecisionLogger();  // Stop(now)
  DecisionLogger(const DecisionLogger&) = delete;
  DecisionLogger& operator=(const DecisionLogger&) = delete;

  // Never blocks: a full queue drops the event (counted).
  void Submit(DecisionEvent event);
  // Stops accepting; the worker finishes what is queued until `deadline`
  // (the rest is dropped and counted), then the writer gets until
  // `deadline` to make the lines durable. Idempotent.
  void Stop(absl::Time deadline);

 private:
  void WorkerLoop();
  void Process(std::vector<DecisionEvent>& events);
  // Queues `n` records' lines for the writer (counted when durable).
  void SubmitLines(std::string lines, int64_t n);
  void Shadow(const std::vector<DecisionEvent>& events, std::vector<data::DecisionRecord>* records);
  void Dropped(Metrics::DecisionLogDrop reason, int64_t n);

  DecisionLoggerOptions options_;
  std::unique_ptr<GroupCommitter> log_;
  PolicyHolder* shadow_;
  Metrics* metrics_;
  std::mutex mu_;
  std::condition_variable wake_, drained_;
  std::vector<DecisionEvent> queue_;
  bool busy_ = false, stopping_ = false, exit_ = false, stopped_ = false;
  bool waiting_ = false;  // the worker is blocked on wake_
  // When the worker last took the queue; none before the first batch, which
  // is taken at once (not an interval after the clock's epoch, often boot).
  std::optional<std::chrono::steady_clock::time_point> last_batch_;
  std::atomic<bool> stopping_writer_{false};   // lines failing now: shutdown
  LogRateLimiter shadow_log_{1};               // shadow_skipped lines a second
  std::vector<data::DecisionRecord> records_;  // the worker's, reused
  std::thread worker_;
};

}  // namespace lcio::server
