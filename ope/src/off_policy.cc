#include "lcio/ope/off_policy.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lcio/data/message.h"
#include "lcio/env/scorer.h"
#include "lcio/env/shield.h"
#include "lcio/env/split.h"

namespace lcio::ope {
namespace {

// `request_money_usd`: the request's own remaining money budget where fleet
// control lowered the context's below it (the server's fallback), else none.
int Choose(env::Policy& policy, const env::DecisionContext& context, const env::CostModel& costs,
           bool shield, std::vector<double>* scores,
           std::optional<double> request_money_usd = std::nullopt) {
  scores->clear();
  const int action = policy.Act(context, scores);
  if (!shield) return action;
  // The evaluator's and the server's rule (env/shield.h).
  return env::ShieldWithinRequestBudget(costs, action, scores->empty() ? nullptr : scores,
                                        context.remaining_latency_s, context.remaining_money_usd,
                                        request_money_usd.value_or(context.remaining_money_usd))
      .action;
}

env::Budget BudgetOf(const JoinedLog& log, size_t e, const env::Budget& fallback) {
  env::Budget b = fallback;
  if (e < log.budget.size()) {
    if (log.budget[e].latency_s) b.latency_s = *log.budget[e].latency_s;
    if (log.budget[e].money_usd) b.money_usd = *log.budget[e].money_usd;
  }
  return b;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const env::Scorer>> ServedPricing(
    std::shared_ptr<const env::Simulator> model, const JoinedLog& log) {
  std::vector<std::shared_ptr<const env::Simulator>> simulators = {model};
  std::map<std::pair<std::string, std::string>, int> index_of;
  absl::flat_hash_map<int64_t, int> simulator_of_episode;
  const env::SimulatorConfig& config = model->config();
  for (size_t e = 0; e < log.dataset.episodes.size() && e < log.profile.size(); ++e) {
    const ServedProfile& p = log.profile[e];
    if (!p.known() || (p.device == config.device && p.network == config.network)) continue;
    auto [it, fresh] = index_of.try_emplace({p.device, p.network}, 0);
    if (fresh) {
      auto made = model->WithProfile({p.device, p.network});
      if (!made.ok())
        return absl::InvalidArgumentError(absl::StrCat(
            log.dataset.source, ": episode ", log.dataset.episodes[e].id, " was served for ",
            data::Shorten(p.device, 64), " / ", data::Shorten(p.network, 64), ": ",
            made.status().message(), " (--profiles adds devices and networks)"));
      it->second = static_cast<int>(simulators.size());
      simulators.push_back(*std::move(made));
    }
    simulator_of_episode[log.dataset.episodes[e].id] = it->second;
  }
  return env::Scorer::ByEpisode("served", std::move(simulators), std::move(simulator_of_episode));
}

absl::StatusOr<int> LoggedAction(const env::ActionTable& actions, const data::Turn& turn) {
  return actions.IndexOf(turn.target == data::Target::kCloud, turn.uploaded_views);
}

absl::StatusOr<OpeReport> EvaluateOffPolicy(const JoinedLog& log, env::Policy& candidate,
                                            const OpeOptions& options,
                                            const env::Simulator* truth) {
  const data::Dataset& ds = log.dataset;
  if (auto s = ValidateIntervalOptions(options.interval); !s.ok()) return s;
  if (ds.episodes.size() < 2)
    return absl::InvalidArgumentError(absl::StrCat(
        ds.source, ": ", ds.episodes.size(),
        " conversations; off-policy evaluation needs at least 2 (intervals and cross-fitting)"));
  if (log.propensity.size() != ds.episodes.size())
    return absl::InvalidArgumentError("joined log: propensities do not match the episodes");
  std::vector<int> all(ds.episodes.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  env::SimulatorConfig dm_config = options.config;
  dm_config.response_model = options.direct_method;
  auto dm = env::FitCrossFolds(ds, all, options.folds, options.seed, dm_config);
  if (!dm.ok()) return dm.status();
  const env::Simulator& primary = *dm->simulators.front();
  const env::ActionTable& actions = primary.actions();
  // A conversation is priced under the profile it was served for, when the
  // log names one: each fold's model with that profile's costs.
  std::vector<std::shared_ptr<const env::Scorer>> served;
  for (const auto& fold_model : dm->simulators) {
    auto pricing = ServedPricing(fold_model, log);
    if (!pricing.ok()) return pricing.status();
    served.push_back(*std::move(pricing));
  }

  OpeReport report;
  report.num_actions = actions.size();
  std::vector<OpeTurn> turns;
  std::vector<int> task_of;
  std::vector<double> truth_of;
  std::vector<double> scores;
  double logged_reward = 0, logged_square = 0, spend = 0, logged_spend = 0;
  int64_t cloud = 0, logged_cloud = 0;
  for (size_t e = 0; e < ds.episodes.size(); ++e) {
    const data::Episode& episode = ds.episodes[e];
    if (log.propensity[e].size() != episode.turns.size())
      return absl::InvalidArgumentError(
          absl::StrCat("joined log: episode ", episode.id, " propensities do not match its turns"));
    const env::Simulator& model = served[dm->fold_of[e]]->For(episode);
    const env::CostModel& costs = model.costs();
    const env::Budget budget = BudgetOf(log, e, options.default_budget);
    candidate.BeginEpisode(episode, budget, env::MixSeed(options.seed, episode.id));
    // The context is the logged conversation's: its own history and the
    // budgets the serving policy saw (logged by lcio-join; else what the
    // logged decisions left of the conversation's budgets under the cost
    // model).
    env::EpisodeRun run(model, episode, budget);
    static const ConversationBudget kNotLogged;
    const ConversationBudget& logged_budget = e < log.budget.size() ? log.budget[e] : kNotLogged;
    env::DecisionContext context;
    while (!run.done()) {
      const int t = run.turn();
      const data::Turn& turn = episode.turns[t];
      auto logged = LoggedAction(actions, turn);
      if (!logged.ok())
        return absl::InvalidArgumentError(absl::StrCat(
            ds.source, ": episode ", episode.id, ", turn ", t, ": ", logged.status().message()));
      context = run.context();
      if (static_cast<size_t>(t) < logged_budget.remaining_latency_s.size() &&
          logged_budget.remaining_latency_s[t])
        context.remaining_latency_s = *logged_budget.remaining_latency_s[t];
      if (static_cast<size_t>(t) < logged_budget.remaining_money_usd.size() &&
          logged_budget.remaining_money_usd[t])
        context.remaining_money_usd = *logged_budget.remaining_money_usd[t];
      std::optional<double> request_money_usd;
      if (static_cast<size_t>(t) < logged_budget.remaining_request_money_usd.size())
        request_money_usd = logged_budget.remaining_request_money_usd[t];
      const int action =
          Choose(candidate, context, costs, options.shield, &scores, request_money_usd);
      if (action < 0 || action >= actions.size())
        return absl::InternalError(
            absl::StrCat(candidate.name(), " chose action ", action, " of ", actions.size()));
      double association = 0;
      for (int v : actions.views(*logged)) association += context.association[v];
      OpeTurn o;
      o.cluster = static_cast<int64_t>(e);
      o.reward = model.Reward(options.config.refusal.ResponseScore(turn), association, *logged);
      o.propensity = log.propensity[e][t];
      o.match = action == *logged;
      o.dm_candidate = model.Evaluate(context, action).reward;
      o.dm_logged = model.Evaluate(context, *logged).reward;
      o.action = action;
      if (truth != nullptr) truth_of.push_back(truth->Evaluate(context, action).reward);
      turns.push_back(o);
      task_of.push_back(turn.task_index);
      logged_reward += o.reward;
      logged_square += o.reward * o.reward;
      cloud += actions.is_cloud(action);
      logged_cloud += actions.is_cloud(*logged);
      spend += costs.money_usd(action);
      logged_spend += costs.money_usd(*logged);
      run.Step(*logged);
    }
  }
  const double n = std::max<double>(1, static_cast<double>(turns.size()));
  const double conversations = static_cast<double>(ds.episodes.size());
  report.overall = Estimate(turns, options.interval);
  report.logged_value = logged_reward / n;
  report.logged_mean_square_reward = logged_square / n;
  report.cloud_share = cloud / n;
  report.logged_cloud_share = logged_cloud / n;
  report.spend_per_conversation_usd = spend / conversations;
  report.logged_spend_per_conversation_usd = logged_spend / conversations;
  for (size_t i = 0; i < truth_of.size(); ++i) report.true_value += truth_of[i] / n;
  for (int task = 0; task < static_cast<int>(ds.tasks.size()); ++task) {
    std::vector<OpeTurn> subset;
    double true_sum = 0;
    for (size_t i = 0; i < turns.size(); ++i)
      if (task_of[i] == task) {
        subset.push_back(turns[i]);
        if (truth != nullptr) true_sum += truth_of[i];
      }
    if (subset.empty()) continue;
    TaskEstimates te;
    te.task = ds.tasks[task];
    te.estimates = Estimate(subset, options.interval);
    te.true_value = true_sum / static_cast<double>(subset.size());
    report.per_task.push_back(std::move(te));
  }
  report.turns = std::move(turns);
  report.turn_task = std::move(task_of);
  report.turn_truth = std::move(truth_of);
  return report;
}

absl::StatusOr<PairedReport> ComparePaired(const JoinedLog& log, const OpeReport& candidate,
                                           const OpeReport& baseline,
                                           const IntervalOptions& interval) {
  if (auto s = ValidateIntervalOptions(interval); !s.ok()) return s;
  for (const OpeReport* r : {&candidate, &baseline})
    if (r->turn_task.size() != r->turns.size())
      return absl::InvalidArgumentError(
          "paired comparison: a report without its per-turn tasks (not from EvaluateOffPolicy)");
  if (candidate.turn_task != baseline.turn_task)
    return absl::InvalidArgumentError(
        "paired comparison: the candidate's and the baseline's turns differ in their tasks: both "
        "must be evaluated on the same log");
  PairedReport out;
  auto overall = EstimateDifference(candidate.turns, baseline.turns, interval);
  if (!overall.ok()) return overall.status();
  out.overall = *overall;
  const bool truth =
      !candidate.turn_truth.empty() && candidate.turn_truth.size() == baseline.turn_truth.size();
  const double n = std::max<double>(1, static_cast<double>(candidate.turns.size()));
  if (truth)
    for (size_t i = 0; i < candidate.turn_truth.size(); ++i)
      out.true_difference += (candidate.turn_truth[i] - baseline.turn_truth[i]) / n;
  for (int task = 0; task < static_cast<int>(log.dataset.tasks.size()); ++task) {
    std::vector<OpeTurn> c, b;
    double true_sum = 0;
    for (size_t i = 0; i < candidate.turns.size(); ++i)
      if (candidate.turn_task[i] == task) {
        c.push_back(candidate.turns[i]);
        b.push_back(baseline.turns[i]);
        if (truth) true_sum += candidate.turn_truth[i] - baseline.turn_truth[i];
      }
    if (c.empty()) continue;
    auto d = EstimateDifference(c, b, interval);
    if (!d.ok()) return d.status();
    out.per_task.push_back({log.dataset.tasks[task], *d, true_sum / static_cast<double>(c.size())});
  }
  return out;
}

absl::StatusOr<JoinedLog> SimulateExploringLog(const env::Simulator& truth,
                                               const data::Dataset& source,
                                               const std::vector<int>& episodes, env::Policy& base,
                                               const ExplorationOptions& options) {
  if (!(options.epsilon >= 0 && options.epsilon <= 1))
    return absl::InvalidArgumentError(
        absl::StrCat("epsilon = ", options.epsilon, ": must be in [0, 1]"));
  if (options.copies < 1 || options.copies > ExplorationOptions::kMaxCopies)
    return absl::InvalidArgumentError(absl::StrCat("copies = ", options.copies, ": must be in [1, ",
                                                   ExplorationOptions::kMaxCopies, "]"));
  const env::ActionTable& actions = truth.actions();
  const int num_actions = actions.size();
  JoinedLog log;
  log.dataset.tasks = source.tasks;
  log.dataset.num_views = source.num_views;
  log.dataset.source = "<simulated>";
  int64_t next_id = 0;
  std::mt19937_64 rng(options.seed);
  std::vector<double> scores;
  for (int copy = 0; copy < options.copies; ++copy) {
    for (int index : episodes) {
      const data::Episode& original = source.episodes.at(index);
      data::Episode episode = original;
      episode.id = next_id++;
      std::vector<double> propensity;
      base.BeginEpisode(original, options.budget, env::MixSeed(options.seed, episode.id));
      env::EpisodeRun run(truth, original, options.budget);
      while (!run.done()) {
        const int t = run.turn();
        const int proposed = Choose(base, run.context(), truth.costs(), options.shield, &scores);
        int action = proposed;
        if (env::UniformUnit(rng) < options.epsilon)
          action = static_cast<int>(env::UniformIndex(rng, num_actions));
        propensity.push_back(options.epsilon / num_actions +
                             (action == proposed ? 1 - options.epsilon : 0.0));
        const env::TurnOutcome out = run.Step(action);
        data::Turn& turn = episode.turns[t];
        turn.target = actions.is_cloud(action) ? data::Target::kCloud : data::Target::kLocal;
        turn.uploaded_views = actions.views(action);
        // No refusal phrase: the simulated response is the score as it is.
        turn.answer = "(simulated)";
        turn.score = out.response;
        turn.interaction_time_s = out.time_s;
        turn.usage_cost_usd = out.money_usd;
      }
      log.dataset.episodes.push_back(std::move(episode));
      log.propensity.push_back(std::move(propensity));
      ConversationBudget budget;
      budget.latency_s = options.budget.latency_s;
      budget.money_usd = options.budget.money_usd;
      log.budget.push_back(std::move(budget));
    }
  }
  return log;
}

}  // namespace lcio::ope
