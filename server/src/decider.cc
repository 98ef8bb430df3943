#include "lcio/server/decider.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "lcio/env/shield.h"
#include "lcio/server/explain.h"
#include "lcio/server/log.h"
#include "lcio/server/metrics.h"

namespace lcio::server {
namespace {

std::string NewDecisionId(const std::string& conversation_id, int turn_index) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return absl::StrCat(conversation_id, "/", turn_index, "/", absl::StrFormat("%016x", rng()));
}

// Everything the batcher's callback needs, owned by the callback.
struct Pending {
  std::shared_ptr<const ServingPolicy> policy;
  const v1::DecideRequest* request;
  v1::DecideResponse* response;
  ParsedDecide parsed;
  bool uses_store = false;
  uint64_t fingerprint = 0;
  int task_index = 0;
  bool task_inferred = false;
  double task_confidence = 1;
  std::vector<double> predicted_responses;  // the response model's, per action
  absl::Time deadline;
  Decider::Done done;
};

}  // namespace

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

void Decider::Decide(const v1::DecideRequest& request, v1::DecideResponse* response,
                     absl::Time deadline, Done done, const std::string& peer_identity) {
  // Announced first, so that a batch forming now waits for this request.
  batcher_->Announce();
  auto fail = [&](const absl::Status& status) {
    batcher_->Withdraw();
    LogRejected(status, request.conversation_id(), request.turn_index());
    done(status);
  };
  std::shared_ptr<const ServingPolicy> policy = policies_->Get();
  if (policy == nullptr) return fail(absl::UnavailableError("no policy is loaded yet"));
  auto parsed = ParseDecideRequest(request, limits_, policy->spec());
  if (!parsed.ok()) return fail(parsed.status());

  auto pending = std::make_shared<Pending>();
  pending->policy = policy;
  pending->request = &request;
  pending->response = response;
  pending->parsed = *std::move(parsed);
  pending->deadline = deadline;
  const ParsedDecide& p = pending->parsed;
  const int turn = request.turn_index();

  std::vector<int> history_actions, history_tasks;
  if (p.has_history) {
    history_actions = p.history_actions;
    history_tasks = p.history_tasks;
  } else {
    pending->uses_store = true;
    pending->fingerprint = DecisionFingerprint(request);
    auto begun = store_->Begin(request.conversation_id(), turn, pending->fingerprint,
                               {policy->conversation_schema(), peer_identity}, absl::Now());
    if (!begun.ok()) return fail(begun.status());
    if (begun->replay) {
      if (!response->ParseFromString(begun->response))
        return fail(absl::InternalError("stored response is unreadable"));
      // The stored decision carries its explanation; shown only when asked.
      if (!request.explain()) response->clear_scores();
      batcher_->Withdraw();
      LogLine(LogLevel::kDebug, "decide_replayed")
          .Str("conversation_id", request.conversation_id())
          .Int("turn_index", turn)
          .Str("decision_id", response->decision_id());
      done(absl::OkStatus());
      return;
    }
    history_actions = std::move(begun->actions);
    history_tasks = std::move(begun->tasks);
  }
  // From here on a failure must release the conversation.
  auto release_and_fail = [&](const absl::Status& status) {
    if (pending->uses_store) store_->Abort(request.conversation_id(), turn);
    fail(status);
  };

  const policy::InferenceEngine& engine = policy->engine();
  if (p.task_index >= 0) {
    pending->task_index = p.task_index;
  } else {
    const policy::TaskClassifier::Prediction prediction =
        engine.classifier().Predict(request.prompt());
    pending->task_index = prediction.task;
    pending->task_inferred = true;
    pending->task_confidence = prediction.confidence;
  }

  // Only the last history_window turns are visible to the policy, and the
  // encoding of turn t >= window depends only on them: the context holds
  // min(turn, window) earlier turns.
  const int window = policy->spec().history_window;
  const int keep = std::min(turn, window);
  if (static_cast<int>(history_actions.size()) < keep)
    return release_and_fail(absl::InternalError("conversation history shorter than the window"));
  env::DecisionContext context;
  context.previous_actions.assign(history_actions.end() - keep, history_actions.end());
  context.previous_tasks.assign(history_tasks.end() - keep, history_tasks.end());
  context.task_index = pending->task_index;
  context.association = p.association;
  context.remaining_latency_s = p.latency_s;
  context.remaining_money_usd = p.money_usd;
  const env::ObservationEncoder& encoder = engine.encoder();
  // A profile_aware policy observes the request's own device and network.
  if (encoder.layout().profile_aware) {
    const env::CostModel* costs = policy->Costs(p.device, p.network);
    if (costs == nullptr)
      return release_and_fail(absl::InternalError("no cost model for the request's profile"));
    env::SetActionCosts(*costs, &context);
  }
  if (absl::Status s = encoder.Check(context); !s.ok())
    return release_and_fail(absl::InvalidArgumentError(s.message()));
  std::vector<float> row(encoder.size());
  encoder.Encode(context, row.data());
  // Explanations quote the model's predictions unscaled (empty when the
  // policy is not response-aware). Computed for every decision: a retry of
  // this turn may ask for the explanation this call did not.
  pending->predicted_responses = encoder.PredictResponses(context);
  if (absl::Now() > deadline)
    return release_and_fail(absl::DeadlineExceededError("deadline passed before scoring"));

  pending->done = std::move(done);
  std::shared_ptr<const BatchScorer> scorer = policy;
  batcher_->Submit(
      std::move(scorer), std::move(row), deadline,
      [this, pending](absl::Status status, std::vector<float> scores) {
        const v1::DecideRequest& request = *pending->request;
        auto finish = [&](const absl::Status& s) {
          if (pending->uses_store && !s.ok())
            store_->Abort(request.conversation_id(), request.turn_index());
          if (!s.ok())
            LogLine(LogLevel::kInfo, "decide_rejected")
                .Str("conversation_id", request.conversation_id())
                .Int("turn_index", request.turn_index())
                .Str("code", absl::StatusCodeToString(s.code()))
                .Str("error", s.message());
          pending->done(s);
        };
        if (!status.ok()) return finish(status);
        // A decision the caller can no longer receive is not recorded.
        if (absl::Now() > pending->deadline)
          return finish(absl::DeadlineExceededError("deadline passed while scoring"));
        const ServingPolicy& policy = *pending->policy;
        const ParsedDecide& p = pending->parsed;
        const env::ActionTable& actions = policy.engine().encoder().actions();
        const env::CostModel* costs = policy.Costs(p.device, p.network);
        if (costs == nullptr || static_cast<int>(scores.size()) != actions.size())
          return finish(absl::InternalError("no cost model or wrong score count"));
        const int proposed =
            static_cast<int>(std::max_element(scores.begin(), scores.end()) - scores.begin());
        const std::vector<double> ranking(scores.begin(), scores.end());
        const env::ShieldDecision shield =
            env::Shield(*costs, proposed, &ranking, p.latency_s, p.money_usd);
        const int action = shield.action;

        v1::DecideResponse& r = *pending->response;
        const PolicySpec& spec = policy.spec();
        r.set_decision_id(NewDecisionId(request.conversation_id(), request.turn_index()));
        const bool cloud = actions.is_cloud(action);
        r.set_target(cloud ? v1::TARGET_CLOUD : v1::TARGET_LOCAL);
        r.set_llm(cloud ? spec.catalog.cloud_llm.name : spec.catalog.local_llm.name);
        std::vector<std::string> uploaded;
        for (int v : actions.views(action)) {
          v1::UploadedView* view = r.add_upload();
          view->set_name(spec.view_names[v]);
          view->set_index(v);
          uploaded.push_back(spec.view_names[v]);
        }
        r.set_action(action);
        r.set_expected_latency_s(costs->time_s(action));
        r.set_expected_money_usd(costs->money_usd(action));
        r.mutable_budget_after()->set_latency_s(p.latency_s - costs->time_s(action));
        r.mutable_budget_after()->set_money_usd(p.money_usd - costs->money_usd(action));
        r.set_task(spec.tasks[pending->task_index]);
        r.set_task_inferred(pending->task_inferred);
        r.set_task_confidence(pending->task_confidence);
        r.set_policy_version(policy.version());
        r.set_shield_overridden(shield.overridden);
        r.set_nothing_fits(shield.nothing_fits);
        r.set_proposed_action(proposed);
        r.set_device(p.device);
        r.set_network(p.network);
        ExplainScores(actions, *costs, scores, pending->predicted_responses, p.latency_s,
                      p.money_usd, &r);
        const std::vector<std::string> warnings = policy.BudgetWarnings(p.latency_s, p.money_usd);
        r.set_budget_outside_training(!warnings.empty());
        for (const std::string& warning : warnings) r.add_warnings(warning);
        if (pending->uses_store)
          store_->Commit(request.conversation_id(), request.turn_index(), action,
                         pending->task_index, pending->fingerprint, r.SerializeAsString(),
                         absl::Now());
        if (!request.explain()) r.clear_scores();
        if (metrics_ != nullptr && !warnings.empty())
          metrics_->CountBudgetOutsideTraining(
              p.latency_s > policy.training_budget_max().latency_s,
              p.money_usd > policy.training_budget_max().money_usd);
        if (metrics_ != nullptr)
          metrics_->CountDecision(cloud, uploaded, shield.overridden, r.expected_money_usd(),
                                  r.expected_latency_s());
        if (LogEnabled(LogLevel::kDebug))
          LogLine(LogLevel::kDebug, "decide")
              .Str("conversation_id", request.conversation_id())
              .Int("turn_index", request.turn_index())
              .Str("decision_id", r.decision_id())
              .Str("action", actions.Describe(action))
              .Str("proposed", actions.Describe(proposed))
              .Bool("shield_overridden", shield.overridden)
              .Str("task", r.task())
              .Bool("task_inferred", pending->task_inferred)
              .Str("policy_version", r.policy_version());
        finish(absl::OkStatus());
      });
}

}  // namespace lcio::server
