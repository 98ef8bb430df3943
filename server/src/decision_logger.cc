#include "lcio/server/decision_logger.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "lcio/server/log.h"
#include "lcio/server/policy_holder.h"

namespace lcio::server {
namespace {

// The last min(turn, window) turns: what a policy with that window observes.
int Keep(const DecisionEvent& e, int window) {
  return std::min({e.turn_index, window, static_cast<int>(e.history_actions.size())});
}

int ArgMax(const float* scores, int n) {
  return static_cast<int>(std::max_element(scores, scores + n) - scores);
}

// Whether `shadow` can read the events of `serving`: the same views, tasks
// and actions (indices mean the same), and no longer window than the
// history at hand. Empty when it can; else why not.
std::string Incompatibility(const ServingPolicy& shadow, const ServingPolicy& serving) {
  const PolicySpec& a = shadow.spec();
  const PolicySpec& b = serving.spec();
  if (a.view_names != b.view_names) return "views differ";
  if (a.tasks != b.tasks) return "tasks differ";
  const env::ActionTable& x = shadow.engine().encoder().actions();
  const env::ActionTable& y = serving.engine().encoder().actions();
  if (x.size() != y.size()) return "action tables differ";
  for (int i = 0; i < x.size(); ++i)
    if (x.Describe(i) != y.Describe(i)) return "action tables differ";
  return "";
}

}  // namespace

void FormatDecisionTime(absl::Time t, std::string* out) {
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) {
    *out = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
    return;
  }
  // Whole seconds and microseconds, both rounded toward the past as
  // FormatTime's are.
  const absl::Duration since_epoch = t - absl::UnixEpoch();
  const int64_t second = absl::ToInt64Seconds(absl::Floor(since_epoch, absl::Seconds(1)));
  const int64_t micro = absl::ToInt64Microseconds(
      absl::Floor(since_epoch - absl::Seconds(second), absl::Microseconds(1)));
  thread_local int64_t cached_second = 0;
  thread_local std::string cached_prefix;  // "%Y-%m-%dT%H:%M:%S" of cached_second
  if (cached_prefix.empty() || second != cached_second) {
    cached_prefix =
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second), absl::UTCTimeZone());
    cached_second = second;
  }
  char fraction[8] = {'.', '0', '0', '0', '0', '0', '0', 'Z'};
  int64_t rest = micro;
  for (int i = 6; i >= 1; --i, rest /= 10) fraction[i] = static_cast<char>('0' + rest % 10);
  out->assign(cached_prefix);
  out->append(fraction, sizeof fraction);
}

void BuildDecisionRecord(const DecisionEvent& e, const ExploreConfig& explore,
                         data::DecisionRecord* record) {
  // Every field is assigned (strings and vectors keep their capacity: the
  // worker reuses its records from batch to batch).
  const ServingPolicy& policy = *e.policy;
  const PolicySpec& spec = policy.spec();
  const env::ActionTable& actions = policy.engine().encoder().actions();
  const std::vector<std::string>& descriptions = policy.action_descriptions();
  const env::CostModel* costs = policy.Costs(e.parsed.device, e.parsed.network);
  data::DecisionRecord& r = *record;
  r.schema_version = data::kDecisionLogSchemaVersion;
  r.decision_id = e.decision_id;
  FormatDecisionTime(e.time, &r.time_utc);
  r.policy_version = policy.version();
  r.conversation_id = e.conversation_id;
  r.turn_index = e.turn_index;
  data::DecisionContext& c = r.context;
  c.task = spec.tasks[e.task_index];
  c.task_inferred = e.task_inferred;
  c.task_confidence = std::clamp(e.task_confidence, 0.0, 1.0);
  c.view_names = spec.view_names;
  c.association = e.parsed.association;
  c.latency_budget_s = e.parsed.latency_s;
  c.money_budget_usd = e.parsed.money_usd;
  if (e.request_money_usd > e.parsed.money_usd)
    c.request_money_budget_usd = e.request_money_usd;
  else
    c.request_money_budget_usd.reset();
  c.device = e.parsed.device;
  c.network = e.parsed.network;
  const int keep = Keep(e, spec.history_window);
  const size_t first = e.history_actions.size() - static_cast<size_t>(keep);
  c.history.resize(static_cast<size_t>(keep));
  for (size_t i = first; i < e.history_actions.size(); ++i) {
    c.history[i - first].action = e.history_actions[i];
    c.history[i - first].task = spec.tasks[e.history_tasks[i]];
  }
  r.actions.resize(actions.size());
  for (int a = 0; a < actions.size(); ++a) {
    data::DecisionAction& action = r.actions[a];
    action.description = descriptions[a];
    action.score = e.scores[a];
    action.probability = e.choice.probabilities[a];
    action.allowed =
        costs != nullptr && env::Fits(*costs, a, c.latency_budget_s, c.money_budget_usd);
    action.expected_latency_s = costs != nullptr ? costs->time_s(a) : 0;
    action.expected_money_usd = costs != nullptr ? costs->money_usd(a) : 0;
  }
  r.proposed_action = e.proposed;
  r.taken_action = e.choice.action;
  r.shield_overridden = e.shield.overridden;
  r.nothing_fits = e.shield.nothing_fits;
  r.fallback = e.fallback;
  r.exploration.mode = explore.ModeName();
  r.exploration.parameter = explore.enabled() ? explore.parameter : 0;
  r.exploration.opted_out = e.opted_out;
  r.explored = e.choice.explored;
  r.expected_latency_s = r.actions[r.taken_action].expected_latency_s;
  r.expected_money_usd = r.actions[r.taken_action].expected_money_usd;
  r.shadow.reset();
}

data::DecisionRecord BuildDecisionRecord(const DecisionEvent& e, const ExploreConfig& explore) {
  data::DecisionRecord r;
  BuildDecisionRecord(e, explore, &r);
  return r;
}

DecisionLogger::DecisionLogger(const DecisionLoggerOptions& options,
                               std::unique_ptr<GroupCommitter> log, PolicyHolder* shadow,
                               Metrics* metrics)
    : options_(options), log_(std::move(log)), shadow_(shadow), metrics_(metrics) {
  options_.queue_max = std::max(1, options_.queue_max);
  worker_ = std::thread([this] { WorkerLoop(); });
}

DecisionLogger::~DecisionLogger() { Stop(absl::Now()); }

void DecisionLogger::Dropped(Metrics::DecisionLogDrop reason, int64_t n) {
  if (metrics_ != nullptr && log_ != nullptr && n > 0) metrics_->CountDecisionLogDropped(reason, n);
}

void DecisionLogger::Submit(DecisionEvent event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      Dropped(Metrics::DecisionLogDrop::kShutdown, 1);
      return;
    }
    if (queue_.size() >= static_cast<size_t>(options_.queue_max)) {
      Dropped(Metrics::DecisionLogDrop::kQueueFull, 1);
      if (shadow_ != nullptr && metrics_ != nullptr)
        metrics_->CountShadowSkipped(Metrics::ShadowSkip::kQueueFull);
      return;
    }
    queue_.push_back(std::move(event));
    // A busy worker takes the whole queue when it is done: waking it costs
    // a futex call per Decide for nothing.
    if (!waiting_) return;
  }
  wake_.notify_one();
}

void DecisionLogger::WorkerLoop() {
  pthread_setname_np(pthread_self(), "lcio-decisions");  // top -H, perf: its cost is visible
  if (options_.worker_nice != 0)
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options_.worker_nice);
  std::vector<DecisionEvent> events;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    waiting_ = true;
    wake_.wait(lock, [this] { return exit_ || !queue_.empty(); });
    waiting_ = false;
    if (exit_) break;
    // Let a batch gather: one wake-up (a futex call on the Decide thread,
    // a context switch here, cold caches) per batch rather than per record
    // when the server is busy. Stop wakes it at once.
    if (options_.gather_interval > absl::ZeroDuration() && last_batch_ && !stopping_)
      wake_.wait_until(lock, *last_batch_ + absl::ToChronoNanoseconds(options_.gather_interval),
                       [this] { return stopping_ || exit_; });
    if (exit_) break;
    if (queue_.empty()) continue;  // Stop abandoned it meanwhile
    last_batch_ = std::chrono::steady_clock::now();
    // O(1) under the lock (Decide threads wait on it to queue): the queue
    // gets the last batch's emptied storage, the events are moved and freed
    // outside.
    events.swap(queue_);
    busy_ = true;
    lock.unlock();
    Process(events);
    events.clear();
    lock.lock();
    busy_ = false;
    if (queue_.empty()) drained_.notify_all();
  }
}

void DecisionLogger::Process(std::vector<DecisionEvent>& events) {
  // The worker's records are reused from batch to batch: in the steady
  // state building one allocates nothing.
  std::vector<data::DecisionRecord>& records = records_;
  if (records.size() < events.size()) records.resize(events.size());
  for (size_t i = 0; i < events.size(); ++i)
    BuildDecisionRecord(events[i], options_.explore, &records[i]);
  if (shadow_ != nullptr) Shadow(events, &records);
  if (log_ == nullptr) return;
  // The lines go to the writer in chunks reserved once at kChunkBytes:
  // no reallocation while they grow, and small enough to come from the
  // heap, not from fresh (page-faulted) mappings.
  // (kRecordBytes: room left for the next record; a larger one, long ids
  // or a shadow, only makes its chunk reallocate once.)
  constexpr size_t kChunkBytes = 64 << 10, kRecordBytes = 4 << 10;
  std::string chunk;
  int64_t in_chunk = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (chunk.capacity() < kChunkBytes) chunk.reserve(kChunkBytes);
    data::AppendJsonLine(records[i], &chunk);
    ++in_chunk;
    if (chunk.size() + kRecordBytes > kChunkBytes) {
      SubmitLines(std::move(chunk), in_chunk);
      chunk = std::string();
      in_chunk = 0;
    }
  }
  if (in_chunk > 0) SubmitLines(std::move(chunk), in_chunk);
}

void DecisionLogger::SubmitLines(std::string lines, int64_t n) {
  // Answered on the writer thread, or in log_->Stop (never after it).
  absl::Status queued = log_->Submit(
      std::move(lines),
      [this, n](absl::StatusOr<uint64_t> sequence) {
        if (metrics_ == nullptr) return;
        if (sequence.ok())
          metrics_->CountDecisionLogged(n);
        else
          metrics_->CountDecisionLogDropped(stopping_writer_.load()
                                                ? Metrics::DecisionLogDrop::kShutdown
                                                : Metrics::DecisionLogDrop::kWriteFailed,
                                            n);
      },
      static_cast<int>(n));
  if (!queued.ok())
    Dropped(queued.code() == absl::StatusCode::kResourceExhausted
                ? Metrics::DecisionLogDrop::kQueueFull
                : Metrics::DecisionLogDrop::kShutdown,
            n);
}

// Scores every event the shadow can read in one forward pass, applies the
// same fallback table rule (the shadow's own table), shield and exploration
// rule as the serving policy (same draw), and fills the records' shadow part.
void DecisionLogger::Shadow(const std::vector<DecisionEvent>& events,
                            std::vector<data::DecisionRecord>* records) {
  std::shared_ptr<const ServingPolicy> shadow = shadow_->Get();
  if (shadow == nullptr) return;
  const policy::InferenceEngine& engine = shadow->engine();
  const env::ObservationEncoder& encoder = engine.encoder();
  const int width = encoder.size();
  const int n_actions = engine.num_actions();
  std::vector<float> rows;
  std::vector<size_t> scored;  // event index of each row
  std::vector<const env::CostModel*> row_costs;
  std::vector<int> row_fallback;  // the shadow's fallback table's fixed action, or -1
  std::vector<int> row_of;        // its row in `rows`, or -1 when the network is not run
  const env::FallbackTable& fallback = engine.fallback();
  const ServingPolicy* checked_against = nullptr;
  std::string incompatible;
  auto skip = [&](Metrics::ShadowSkip reason, const std::string& why) {
    if (metrics_ != nullptr) metrics_->CountShadowSkipped(reason);
    int64_t suppressed = 0;
    if (shadow_log_.Allow(&suppressed))
      LogLine(LogLevel::kWarning, "shadow_skipped")
          .Str("shadow_version", shadow->version())
          .Str("error", BoundMessage(why))
          .Int("suppressed", suppressed);
  };
  for (size_t i = 0; i < events.size(); ++i) {
    const DecisionEvent& e = events[i];
    if (checked_against != e.policy.get()) {  // usually one serving policy per batch
      checked_against = e.policy.get();
      incompatible = Incompatibility(*shadow, *e.policy);
    }
    if (!incompatible.empty()) {
      skip(Metrics::ShadowSkip::kIncompatible,
           absl::StrCat("shadow policy ", shadow->version(), " cannot read decisions of ",
                        e.policy->version(), ": ", incompatible));
      continue;
    }
    const env::CostModel* costs = shadow->Costs(e.parsed.device, e.parsed.network);
    const int window = shadow->spec().history_window;
    const int keep = Keep(e, window);
    if (costs == nullptr || keep < std::min(e.turn_index, window)) {
      skip(Metrics::ShadowSkip::kIncompatible,
           costs == nullptr ? "the shadow has no cost model for the request's profiles"
                            : "the request's history is shorter than the shadow's window");
      continue;
    }
    env::DecisionContext context;
    context.previous_actions.assign(e.history_actions.end() - keep, e.history_actions.end());
    context.previous_tasks.assign(e.history_tasks.end() - keep, e.history_tasks.end());
    context.task_index = e.task_index;
    context.association = e.parsed.association;
    context.remaining_latency_s = e.parsed.latency_s;
    context.remaining_money_usd = e.parsed.money_usd;
    if (encoder.layout().profile_aware || !fallback.empty()) env::SetActionCosts(*costs, &context);
    if (absl::Status s = encoder.Check(context); !s.ok()) {
      skip(Metrics::ShadowSkip::kIncompatible, std::string(s.message()));
      continue;
    }
    row_fallback.push_back(fallback.Lookup(context, &e.history_actions));
    // As the Decider: a fallback answer needs the network only for a softmax draw.
    if (row_fallback.back() >= 0 && !FallbackNeedsNetworkValues(options_.explore, e.opted_out)) {
      row_of.push_back(-1);
    } else {
      row_of.push_back(static_cast<int>(rows.size() / std::max(width, 1)));
      rows.resize(rows.size() + width);
      encoder.Encode(context, rows.data() + rows.size() - width);
    }
    scored.push_back(i);
    row_costs.push_back(costs);
  }
  if (scored.empty()) return;
  const int num_rows = static_cast<int>(rows.size() / std::max(width, 1));
  std::vector<float> scores(static_cast<size_t>(num_rows) * n_actions);
  absl::Status scored_status;
  if (num_rows > 0) scored_status = engine.Score(rows.data(), num_rows, scores.data());
  const std::vector<float> rank_values = FallbackRankValues(n_actions);
  for (size_t k = 0; k < scored.size(); ++k) {
    // A failed forward pass loses the rows that needed it, not the fallback's.
    if (row_of[k] >= 0 && !scored_status.ok()) {
      skip(Metrics::ShadowSkip::kError, std::string(scored_status.message()));
      continue;
    }
    const DecisionEvent& e = events[scored[k]];
    const env::CostModel& costs = *row_costs[k];
    const float* row = row_of[k] < 0 ? rank_values.data()
                                     : scores.data() + static_cast<size_t>(row_of[k]) * n_actions;
    if (row_of[k] >= 0 &&
        !std::all_of(row, row + n_actions, [](float v) { return std::isfinite(v); })) {
      skip(Metrics::ShadowSkip::kError, "the shadow policy's scores are not all numbers");
      continue;
    }
    std::vector<float> own(row, row + n_actions);
    // As the Decider: the fixed action where it fits, else the cheapest that does.
    const int fixed = row_fallback[k] < 0 ? -1
                                          : env::Shield(costs, row_fallback[k], nullptr,
                                                        e.parsed.latency_s, e.parsed.money_usd)
                                                .action;
    if (fixed >= 0) FallbackRanking(costs, fixed, &own);
    const int proposed = fixed >= 0 ? fixed : ArgMax(row, n_actions);
    const std::vector<double> ranking(own.begin(), own.end());
    const env::ShieldDecision shield =
        env::ShieldWithinRequestBudget(costs, proposed, fixed >= 0 ? nullptr : &ranking,
                                       e.parsed.latency_s, e.parsed.money_usd, e.request_money_usd);
    std::vector<bool> allowed(n_actions);
    for (int a = 0; a < n_actions; ++a)
      allowed[a] = env::Fits(costs, a, e.parsed.latency_s, e.parsed.money_usd);
    const ExploreChoice choice = Explore(e.opted_out ? ExploreConfig{} : options_.explore, own,
                                         allowed, shield.action, ExplorationDraw(e.decision_id));
    data::DecisionShadow& s = (*records)[scored[k]].shadow.emplace();
    s.policy_version = shadow->version();
    s.proposed_action = proposed;
    s.action = choice.action;
    s.scores = ranking;
    s.probabilities = choice.probabilities;
    s.expected_latency_s = costs.time_s(choice.action);
    s.expected_money_usd = costs.money_usd(choice.action);
    s.fallback = fixed >= 0;
    if (metrics_ != nullptr)
      metrics_->CountShadowDecision(choice.action == e.choice.action,
                                    engine.encoder().actions().is_cloud(choice.action),
                                    s.expected_money_usd);
  }
}

void DecisionLogger::Stop(absl::Time deadline) {
  int64_t abandoned = 0;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
    wake_.notify_all();  // a worker letting a batch gather takes it now
    drained_.wait_until(lock, absl::ToChronoTime(deadline),
                        [this] { return queue_.empty() && !busy_; });
    abandoned = static_cast<int64_t>(queue_.size());
    queue_.clear();
    exit_ = true;
  }
  wake_.notify_all();
  worker_.join();  // its batch is CPU work and queueing, never the disk
  Dropped(Metrics::DecisionLogDrop::kShutdown, abandoned);
  stopping_writer_.store(true);
  if (log_ != nullptr) log_->Stop(deadline);
}

}  // namespace lcio::server
