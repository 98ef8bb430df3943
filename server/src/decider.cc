#include "lcio/server/decider.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lcio/data/decision_log.h"
#include "lcio/env/shield.h"
#include "lcio/server/decision_logger.h"
#include "lcio/server/explain.h"
#include "lcio/server/log.h"
#include "lcio/server/metrics.h"

namespace lcio::server {
namespace {

std::string NewDecisionId(const std::string& conversation_id, int turn_index) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return absl::StrCat(data::DecisionIdPrefix(conversation_id, turn_index),
                      absl::Hex(rng(), absl::kZeroPad16));
}

}  // namespace

// A decision answered without its explanation keeps what ExplainScores
// needs, so that a retry asking for it gets exactly the explanation the
// decision had (same policy, costs, scores and budgets), built then instead
// of on every call.
// It keeps the policy's small tables, not the policy: a stored conversation
// must not hold a replaced policy's weights until it expires.
struct StoredExplanation {
  std::shared_ptr<const ServingPolicy::DecisionTables> tables;
  const env::CostModel* costs = nullptr;  // owned by tables
  std::vector<float> scores;
  std::vector<double> predicted;
  double latency_s = 0, money_usd = 0;
  void ExplainInto(v1::DecideResponse* response) const {
    ExplainScores(tables->actions, tables->action_descriptions, *costs, scores, predicted,
                  latency_s, money_usd, response);
  }
};

// Everything the batcher's callback needs, owned by the callback.
struct Decider::Pending {
  std::shared_ptr<const ServingPolicy> policy;
  const v1::DecideRequest* request;
  v1::DecideResponse* response;
  std::string* serialized = nullptr;  // the caller's copy of the stored bytes, when asked
  // parsed.money_usd is the money budget the policy and the shield see: the
  // request's, or lower under fleet control; request_money_usd is the
  // request's own (budget_after is computed from it).
  ParsedDecide parsed;
  double request_money_usd = 0;
  bool uses_store = false;  // the conversation is held: Commit or Abort it
  uint64_t fingerprint = 0;
  int task_index = 0;
  bool task_inferred = false;
  double task_confidence = 1;
  // Earlier turns, oldest first: the store's (up to its window) or the
  // request's own.
  std::vector<int> history_actions, history_tasks;
  std::vector<double> predicted_responses;  // the response model's, per action
  // The artifact's fallback table's answer for this conversation: the fixed
  // action that answers it, or -1 where the network decides.
  int fallback_action = -1;
  // The fallback answers and nothing needs the network's values (only a
  // softmax draw does): the forward pass and the batch are skipped.
  bool skip_network = false;
  // Announced to the micro-batcher, and not yet withdrawn (Unannounce).
  bool announced = false;
  absl::Time deadline;
  Decider::Done done;
};

// What the scores, the shield and exploration make of a scored request.
struct Decider::Choice {
  const env::CostModel* costs = nullptr;
  std::string decision_id;
  int proposed = 0;
  bool fallback = false;  // the fallback table's fixed action was proposed
  // The fixed action did not fit and the cheapest that does replaced it
  // (the shield's rule, applied before the shield sees the proposal).
  bool fallback_substituted = false;
  env::ShieldDecision shield;
  ExploreChoice taken;  // .action is the answer
};

void Decider::LogRejected(const absl::Status& status, absl::string_view conversation_id,
                          int turn_index) {
  const bool internal = status.code() == absl::StatusCode::kInternal;
  int64_t suppressed = 0;
  if (!internal && (!LogEnabled(LogLevel::kInfo) || !rejected_log_.Allow(&suppressed))) return;
  LogLine line(internal ? LogLevel::kError : LogLevel::kInfo, "decide_rejected");
  line.Str("conversation_id", conversation_id.substr(0, RequestLimits::kMaxConversationIdBytes))
      .Int("turn_index", turn_index)
      .Str("code", absl::StatusCodeToString(status.code()))
      .Str("error", BoundMessage(status.message()));
  if (suppressed > 0) line.Int("suppressed", suppressed);
}

void Decider::Unannounce(Pending& pending) {
  if (!pending.announced) return;
  pending.announced = false;
  batcher_->Withdraw();
}

void Decider::Refuse(Pending& pending, const absl::Status& status) {
  const v1::DecideRequest& request = *pending.request;
  if (pending.uses_store) store_->Abort(request.conversation_id(), request.turn_index());
  LogRejected(status, request.conversation_id(), request.turn_index());
  pending.done(status);
}

void Decider::Decide(const v1::DecideRequest& request, v1::DecideResponse* response,
                     absl::Time deadline, Done done, const std::string& peer_identity,
                     std::string* serialized) {
  auto pending = std::make_shared<Pending>();
  pending->request = &request;
  pending->response = response;
  pending->serialized = serialized;
  pending->deadline = deadline;
  pending->done = std::move(done);
  auto refuse = [&](const absl::Status& status) {
    Unannounce(*pending);
    Refuse(*pending, status);
  };
  pending->policy = policies_->Get();
  if (pending->policy == nullptr) return refuse(absl::UnavailableError("no policy is loaded yet"));
  // Announced before anything else, so that a batch forming now waits for
  // this request (a row the batcher does not batch is scored on this thread).
  if (batcher_->Batches(*pending->policy)) {
    batcher_->Announce();
    pending->announced = true;
  }
  auto parsed = ParseDecideRequest(request, limits_, pending->policy->spec());
  if (!parsed.ok()) return refuse(parsed.status());
  pending->parsed = *std::move(parsed);
  pending->request_money_usd = pending->parsed.money_usd;
  if (fleet_ != nullptr)
    pending->parsed.money_usd = fleet_->EffectiveMoney(pending->parsed.money_usd);
  bool replayed = false;
  if (absl::Status s = RecallHistory(*pending, peer_identity, &replayed); !s.ok()) return refuse(s);
  if (replayed) {
    Unannounce(*pending);
    pending->done(absl::OkStatus());
    return;
  }
  std::vector<float> row;
  if (absl::Status s = Encode(*pending, &row); !s.ok()) return refuse(s);
  if (pending->skip_network) {
    // Answered here, on this thread: no row for the batch (Encode withdrew
    // the announcement as soon as it knew).
    return Scored(pending, absl::OkStatus(),
                  FallbackRankValues(pending->policy->engine().num_actions()));
  }
  std::shared_ptr<const BatchScorer> scorer = pending->policy;
  pending->announced = false;  // Submit takes the announcement, if there is one
  batcher_->Submit(std::move(scorer), std::move(row), deadline,
                   [this, pending](absl::Status status, std::vector<float> scores) {
                     Scored(pending, std::move(status), std::move(scores));
                   });
}

// The earlier turns: the request's own (stateless), or the store's, which
// also answers a repeated last turn with its stored answer (*replayed).
absl::Status Decider::RecallHistory(Pending& pending, const std::string& peer_identity,
                                    bool* replayed) {
  const v1::DecideRequest& request = *pending.request;
  if (pending.parsed.has_history) {
    pending.history_actions = pending.parsed.history_actions;
    pending.history_tasks = pending.parsed.history_tasks;
    return absl::OkStatus();
  }
  pending.fingerprint = DecisionFingerprint(request);
  auto begun = store_->Begin(request.conversation_id(), request.turn_index(), pending.fingerprint,
                             {pending.policy->conversation_schema(), peer_identity}, absl::Now());
  if (!begun.ok()) return begun.status();
  if (begun->replay) {
    if (!pending.response->ParseFromString(begun->response))
      return absl::InternalError("stored response is unreadable");
    // The explanation is shown only when asked: the stored one, or the one
    // the decision was answered without, built now.
    if (!request.explain())
      DropExplanation(pending.response);
    else if (begun->explanation != nullptr)
      begun->explanation->ExplainInto(pending.response);
    LogLine(LogLevel::kDebug, "decide_replayed")
        .Str("conversation_id", request.conversation_id())
        .Int("turn_index", request.turn_index())
        .Str("decision_id", pending.response->decision_id());
    *replayed = true;
    return absl::OkStatus();
  }
  pending.uses_store = true;  // from here on a refusal releases the conversation
  pending.history_actions = std::move(begun->actions);
  pending.history_tasks = std::move(begun->tasks);
  return absl::OkStatus();
}

// The task (given or inferred) and the observation row the policy scores.
absl::Status Decider::Encode(Pending& pending, std::vector<float>* row) {
  const v1::DecideRequest& request = *pending.request;
  const ParsedDecide& p = pending.parsed;
  const ServingPolicy& policy = *pending.policy;
  const policy::InferenceEngine& engine = policy.engine();
  if (p.task_index >= 0) {
    pending.task_index = p.task_index;
  } else {
    const policy::TaskClassifier::Prediction prediction =
        engine.classifier().Predict(request.prompt());
    pending.task_index = prediction.task;
    pending.task_inferred = true;
    pending.task_confidence = prediction.confidence;
  }
  // Only the last history_window turns are visible to the policy, and the
  // encoding of turn t >= window depends only on them: the context holds
  // min(turn, window) earlier turns.
  const int window = policy.spec().history_window;
  const int keep = std::min(request.turn_index(), window);
  const std::vector<int>& actions = pending.history_actions;
  const std::vector<int>& tasks = pending.history_tasks;
  if (static_cast<int>(actions.size()) < keep)
    return absl::InternalError("conversation history shorter than the window");
  env::DecisionContext context;
  context.previous_actions.assign(actions.end() - keep, actions.end());
  context.previous_tasks.assign(tasks.end() - keep, tasks.end());
  context.task_index = pending.task_index;
  context.association = p.association;
  context.remaining_latency_s = p.latency_s;
  context.remaining_money_usd = p.money_usd;
  const env::ObservationEncoder& encoder = engine.encoder();
  const env::FallbackTable& fallback = engine.fallback();
  // A profile_aware policy observes the request's own device and network;
  // the fallback table is keyed on them (a policy that is not profile_aware
  // encodes as before: its layout carries the training profile's costs).
  if (encoder.layout().profile_aware || !fallback.empty()) {
    const env::CostModel* costs = policy.Costs(p.device, p.network);
    if (costs == nullptr) return absl::InternalError("no cost model for the request's profile");
    env::SetActionCosts(*costs, &context);
  }
  if (absl::Status s = encoder.Check(context); !s.ok())
    return absl::InvalidArgumentError(s.message());
  // The context the policy observes, as ArtifactPolicy::Decide looks it up,
  // with every earlier turn the conversation has (the store keeps more than
  // the policy's window), as the evaluator counts them.
  pending.fallback_action = fallback.Lookup(context, &actions);
  // The network's values would only be reassigned in the fallback's ranking;
  // a softmax draw is the one use of their spread.
  pending.skip_network = pending.fallback_action >= 0 &&
                         !FallbackNeedsNetworkValues(explore_, pending.request->no_explore());
  if (pending.skip_network) {
    Unannounce(pending);  // a batch forming now need not wait for a row that will not come
  } else {
    row->resize(encoder.size());
    encoder.Encode(context, row->data());
  }
  // Explanations quote the model's predictions unscaled (empty when the
  // policy is not response-aware).
  // Computed for every decision: a retry of this turn may ask for the
  // explanation this call did not.
  pending.predicted_responses = encoder.PredictResponses(context);
  if (absl::Now() > pending.deadline)
    return absl::DeadlineExceededError("deadline passed before scoring");
  return absl::OkStatus();
}

// Once the row is scored (or failed): on the thread that led its batch, or on
// the calling thread (a row the batcher does not batch, a fallback decision).
void Decider::Scored(const PendingPtr& pending, absl::Status status, std::vector<float> scores) {
  if (!status.ok()) return Refuse(*pending, status);
  // A decision the caller can no longer receive is not recorded.
  if (absl::Now() > pending->deadline)
    return Refuse(*pending, absl::DeadlineExceededError("deadline passed while scoring"));
  absl::StatusOr<Choice> choice = Choose(*pending, scores);
  if (!choice.ok()) return Refuse(*pending, choice.status());
  Answer(*pending, *choice, scores);
  Record(pending, *std::move(choice), std::move(scores));
  pending->done(absl::OkStatus());
}

// The policy's proposal, the shield's verdict and, with --explore, the
// sampled action among those the shield allows.
absl::StatusOr<Decider::Choice> Decider::Choose(const Pending& pending,
                                                std::vector<float>& scores) const {
  const ServingPolicy& policy = *pending.policy;
  const ParsedDecide& p = pending.parsed;
  const env::ActionTable& actions = policy.engine().encoder().actions();
  Choice choice;
  choice.costs = policy.Costs(p.device, p.network);
  if (choice.costs == nullptr || static_cast<int>(scores.size()) != actions.size())
    return absl::InternalError("no cost model or wrong score count");
  // The network's values decide (argmax, a softmax draw): a NaN would pick
  // the first action in silence, so such a row is refused, not decided.
  if (!pending.skip_network)
    for (size_t a = 0; a < scores.size(); ++a)
      if (!std::isfinite(scores[a]))
        return absl::InternalError(absl::StrCat("the policy's score for action ", a, " is ",
                                                scores[a], ", not a number the decision can use"));
  // The proposal: the fallback table's fixed action, shielded as the
  // evaluator shields a fixed action (no scores: the cheapest fitting action
  // replaces it), else the network's argmax, shielded by its scores.
  choice.fallback = pending.fallback_action >= 0;
  std::vector<double> ranking;
  if (choice.fallback) {
    // FallbackTable::Decide's rule: the fixed action where it fits, else the
    // cheapest that does (the shield's choice without scores), so the shield
    // below never overrides it.
    const env::ShieldDecision fitted =
        env::Shield(*choice.costs, pending.fallback_action, nullptr, p.latency_s, p.money_usd);
    choice.proposed = fitted.action;
    choice.fallback_substituted = fitted.overridden;
    // From here on the scores are the fallback's ranking (the fixed action
    // first, then the others cheapest first): exploration, the explanation
    // and the decision log use them as any scores.
    FallbackRanking(*choice.costs, choice.proposed, &scores);
  } else {
    choice.proposed =
        static_cast<int>(std::max_element(scores.begin(), scores.end()) - scores.begin());
    ranking.assign(scores.begin(), scores.end());
  }
  const std::vector<double>* ranked = choice.fallback ? nullptr : &ranking;
  // Under fleet control p.money_usd is the lowered budget: never past the
  // request's own budget because of it.
  choice.shield = env::ShieldWithinRequestBudget(
      *choice.costs, choice.proposed, ranked, p.latency_s, p.money_usd, pending.request_money_usd);
  choice.decision_id =
      NewDecisionId(pending.request->conversation_id(), pending.request->turn_index());
  const bool explore = explore_.enabled() && !pending.request->no_explore();
  std::vector<bool> allowed;
  if (explore) {
    allowed.resize(actions.size());
    for (int a = 0; a < actions.size(); ++a)
      allowed[a] = env::Fits(*choice.costs, a, p.latency_s, p.money_usd);
  }
  choice.taken = Explore(explore ? explore_ : ExploreConfig{}, scores, allowed,
                         choice.shield.action, explore ? ExplorationDraw(choice.decision_id) : 0.0);
  return choice;
}

void Decider::Answer(Pending& pending, const Choice& choice, const std::vector<float>& scores) {
  const ServingPolicy& policy = *pending.policy;
  const ParsedDecide& p = pending.parsed;
  const env::ActionTable& actions = policy.engine().encoder().actions();
  const env::CostModel& costs = *choice.costs;
  const PolicySpec& spec = policy.spec();
  const int action = choice.taken.action;
  v1::DecideResponse& r = *pending.response;
  r.set_decision_id(choice.decision_id);
  const bool cloud = actions.is_cloud(action);
  r.set_target(cloud ? v1::TARGET_CLOUD : v1::TARGET_LOCAL);
  r.set_llm(cloud ? spec.catalog.cloud_llm.name : spec.catalog.local_llm.name);
  for (int v : actions.views(action)) {
    v1::UploadedView* view = r.add_upload();
    view->set_name(spec.view_names[v]);
    view->set_index(v);
  }
  r.set_action(action);
  r.set_expected_latency_s(costs.time_s(action));
  r.set_expected_money_usd(costs.money_usd(action));
  r.mutable_budget_after()->set_latency_s(p.latency_s - costs.time_s(action));
  // The client carries budget_after into its next turn: the request's own
  // budget, not the lowered one (which would compound turn after turn).
  r.mutable_budget_after()->set_money_usd(pending.request_money_usd - costs.money_usd(action));
  r.set_task(spec.tasks[pending.task_index]);
  r.set_task_inferred(pending.task_inferred);
  r.set_task_confidence(pending.task_confidence);
  r.set_policy_version(policy.version());
  r.set_shield_overridden(choice.shield.overridden);
  r.set_nothing_fits(choice.shield.nothing_fits);
  r.set_proposed_action(choice.proposed);
  r.set_fallback_fixed_action(choice.fallback);
  r.set_probability(choice.taken.probabilities[action]);
  r.set_explored(choice.taken.explored);
  r.set_device(p.device);
  r.set_network(p.network);
  for (const std::string& warning : policy.BudgetWarnings(p.latency_s, p.money_usd))
    r.add_warnings(warning);
  r.set_budget_outside_training(r.warnings_size() > 0);
  // Built only when asked: a decision answered without it keeps what a retry
  // asking for it needs (Record). After the budget warnings: it may add the
  // fallback note.
  if (pending.request->explain())
    ExplainScores(actions, policy.action_descriptions(), costs, scores, pending.predicted_responses,
                  p.latency_s, p.money_usd, &r);
}

// The answered decision: the conversation's history, metrics, the debug
// line and the decision log (handed over, never written here).
void Decider::Record(PendingPtr pending, Choice choice, std::vector<float> scores) {
  const v1::DecideRequest& request = *pending->request;
  const v1::DecideResponse& r = *pending->response;
  const int action = choice.taken.action;
  const absl::Time now = absl::Now();
  if (pending->uses_store) {
    // Stored as answered; without the explanation, with what a retry needs
    // to add it.
    std::shared_ptr<const StoredExplanation> explanation;
    if (!request.explain()) {
      auto stored = std::make_shared<StoredExplanation>();
      stored->tables = pending->policy->tables();
      stored->costs = choice.costs;
      stored->scores = scores;
      stored->predicted = std::move(pending->predicted_responses);
      stored->latency_s = pending->parsed.latency_s;
      stored->money_usd = pending->parsed.money_usd;
      explanation = std::move(stored);
    }
    std::string bytes = r.SerializeAsString();
    // The answer is final here (done() only sends it): the caller sends
    // these bytes rather than serializing the response a second time.
    if (pending->serialized != nullptr) *pending->serialized = bytes;
    store_->Commit(request.conversation_id(), request.turn_index(), action, pending->task_index,
                   pending->fingerprint, std::move(bytes), now, std::move(explanation));
  }
  if (metrics_ != nullptr && r.budget_outside_training()) {
    const env::Budget& max = pending->policy->training_budget_max();
    metrics_->CountBudgetOutsideTraining(pending->parsed.latency_s > max.latency_s,
                                         pending->parsed.money_usd > max.money_usd);
  }
  if (metrics_ != nullptr) {
    std::vector<std::string> uploaded;
    for (const v1::UploadedView& view : r.upload()) uploaded.push_back(view.name());
    metrics_->CountDecision(r.target() == v1::TARGET_CLOUD, uploaded, choice.shield.overridden,
                            r.expected_money_usd(), r.expected_latency_s());
    if (request.turn_index() == 0) metrics_->CountConversationStarted();
    if (choice.fallback) metrics_->CountFallbackDecision(choice.fallback_substituted);
  }
  if (fleet_ != nullptr)
    fleet_->Observe(r.target() == v1::TARGET_CLOUD, r.expected_money_usd(),
                    request.turn_index() == 0);
  if (LogEnabled(LogLevel::kDebug)) {
    const env::ActionTable& actions = pending->policy->engine().encoder().actions();
    LogLine(LogLevel::kDebug, "decide")
        .Str("conversation_id", request.conversation_id())
        .Int("turn_index", request.turn_index())
        .Str("decision_id", r.decision_id())
        .Str("action", actions.Describe(action))
        .Str("proposed", actions.Describe(choice.proposed))
        .Bool("shield_overridden", choice.shield.overridden)
        .Bool("fallback_fixed_action", choice.fallback)
        .Bool("explored", choice.taken.explored)
        .Str("task", r.task())
        .Bool("task_inferred", pending->task_inferred)
        .Str("policy_version", r.policy_version());
  }
  if (decision_log_ == nullptr) return;
  DecisionEvent event;
  event.policy = pending->policy;
  event.decision_id = std::move(choice.decision_id);
  event.time = now;
  event.conversation_id = request.conversation_id();
  event.turn_index = request.turn_index();
  event.parsed = std::move(pending->parsed);
  event.request_money_usd = pending->request_money_usd;
  event.task_index = pending->task_index;
  event.task_inferred = pending->task_inferred;
  event.task_confidence = pending->task_confidence;
  event.history_actions = std::move(pending->history_actions);
  event.history_tasks = std::move(pending->history_tasks);
  event.scores = std::move(scores);
  event.proposed = choice.proposed;
  event.shield = choice.shield;
  event.choice = std::move(choice.taken);
  event.opted_out = request.no_explore();
  event.fallback = choice.fallback;
  decision_log_->Submit(std::move(event));
}

}  // namespace lcio::server
