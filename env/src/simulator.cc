#include "lcio/env/simulator.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lcio/data/message.h"

namespace lcio::env {

std::string ResponseModelFamilyName(ResponseModelFamily family) {
  switch (family) {
    case ResponseModelFamily::kKnn:
      return "knn";
    case ResponseModelFamily::kTaskActionMeans:
      return "task_action";
    case ResponseModelFamily::kPessimistic:
      return "pessimistic";
  }
  return "unknown";
}

absl::StatusOr<ResponseModelFamily> ParseResponseModelFamily(const std::string& name) {
  if (name == "knn") return ResponseModelFamily::kKnn;
  if (name == "task_action") return ResponseModelFamily::kTaskActionMeans;
  if (name == "pessimistic") return ResponseModelFamily::kPessimistic;
  return absl::InvalidArgumentError(absl::StrCat("response_model = \"", data::Shorten(name, 64),
                                                 "\": must be knn, task_action or pessimistic"));
}

namespace {

// OK when every network and the cloud LLM of the catalog can cost an upload
// of 0..num_views views, not only the pair simulated: an artifact carries
// the catalog, and a server refuses one that cannot cost every pair it may
// be asked for. The built-in tables are the reference's 3-view ones.
absl::Status CheckProfilesCoverViews(const ProfileCatalog& catalog, int num_views) {
  const size_t needed = static_cast<size_t>(std::max(num_views, 0)) + 1;
  std::vector<std::string> short_tables;
  int more = 0;
  auto note = [&](std::string what) {
    if (short_tables.size() < 6)
      short_tables.push_back(std::move(what));
    else
      ++more;
  };
  for (const NetworkProfile& n : catalog.networks)
    if (n.cloud_time_s.size() < needed)
      note(absl::StrCat("network \"", data::Shorten(n.name, 64), "\" cloud_time_s has ",
                        n.cloud_time_s.size()));
  if (catalog.cloud_llm.money_usd.size() < needed)
    note(absl::StrCat("cloud_llm \"", data::Shorten(catalog.cloud_llm.name, 64),
                      "\" money_usd has ", catalog.cloud_llm.money_usd.size()));
  if (short_tables.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the data has ", num_views, " views, so every cost table needs ", needed, " entries (0..",
      num_views, " views uploaded): ", absl::StrJoin(short_tables, ", "),
      more > 0 ? absl::StrCat(" and ", more, " more") : "", "; give tables for ", num_views,
      " views in a --profiles file (docs/profiles.md)"));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Simulator>> Simulator::Create(
    const data::Dataset& dataset, const std::vector<int>& train_episodes,
    const SimulatorConfig& config) {
  if (config.time_span < 1 || config.time_span > ObservationLayout::kMaxTimeSpan)
    return absl::InvalidArgumentError(absl::StrCat("time_span = ", config.time_span,
                                                   ": must be in [1, ",
                                                   ObservationLayout::kMaxTimeSpan, "]"));
  for (const auto& [name, w] : {std::pair{"alpha", config.weights.alpha},
                                {"beta_association", config.weights.beta_association},
                                {"beta_latency", config.weights.beta_latency},
                                {"beta_usage", config.weights.beta_usage}})
    if (!(std::abs(w) <= kMaxRewardWeight))
      return absl::InvalidArgumentError(
          absl::StrCat("reward weight ", name, " = ", w, ": must be a finite number in [-",
                       kMaxRewardWeight, ", ", kMaxRewardWeight, "]"));
  auto actions = ActionTable::Create(dataset.num_views);
  if (!actions.ok()) return actions.status();
  if (auto s = CheckProfilesCoverViews(config.catalog, dataset.num_views); !s.ok()) return s;
  auto costs = CostModel::Create(config.catalog, config.device, config.network, *actions);
  if (!costs.ok()) return costs.status();
  std::shared_ptr<Simulator> sim(new Simulator(config, *actions, *std::move(costs)));
  sim->num_tasks_ = static_cast<int>(dataset.tasks.size());
  auto estimator = FitResponseEstimator(dataset, train_episodes, sim->actions_, config.time_span,
                                        config.k_neighbors, config.refusal, config.knn_rule);
  if (!estimator.ok()) return estimator.status();
  sim->estimator_ = *std::move(estimator);
  if (config.response_model != ResponseModelFamily::kKnn) {
    auto means = TaskActionMeans::Fit(dataset, train_episodes, sim->actions_, config.refusal);
    if (!means.ok()) return means.status();
    sim->task_action_means_ = *std::move(means);
  }
  sim->fitted_episodes_ = train_episodes;
  std::sort(sim->fitted_episodes_.begin(), sim->fitted_episodes_.end());
  return std::shared_ptr<const Simulator>(std::move(sim));
}

double Simulator::Reward(double response, double association, int action) const {
  const RewardWeights& w = config_.weights;
  return w.alpha * response + w.beta_association * association -
         w.beta_latency * costs_.norm_time(action) - w.beta_usage * costs_.norm_money(action);
}

double Simulator::max_response() const {
  switch (config_.response_model) {
    case ResponseModelFamily::kKnn:
      return estimator_->max_value();
    case ResponseModelFamily::kTaskActionMeans:
      return task_action_means_->max_value();
    case ResponseModelFamily::kPessimistic:
      return std::min(estimator_->max_value(), task_action_means_->max_value());
  }
  return estimator_->max_value();
}

double Simulator::Response(const DecisionContext& context, int action,
                           CachedEstimator* cache) const {
  const ResponseModelFamily family = config_.response_model;
  if (family == ResponseModelFamily::kTaskActionMeans)
    return task_action_means_->Estimate(context.task_index, action);
  const int width = estimator_->key_width();
  double stack_key[128];
  std::vector<double> heap_key;
  double* key = stack_key;
  if (width > 128) {
    heap_key.resize(width);
    key = heap_key.data();
  }
  EncodeResponseKey(actions_, config_.time_span, context, action, key);
  const double knn = cache ? cache->Estimate(key) : estimator_->Estimate(key);
  if (family == ResponseModelFamily::kPessimistic)
    return std::min(knn, task_action_means_->Estimate(context.task_index, action));
  return knn;
}

TurnOutcome Simulator::Evaluate(const DecisionContext& context, int action,
                                CachedEstimator* cache) const {
  TurnOutcome out;
  out.response = Response(context, action, cache);
  for (int v : actions_.views(action)) out.association += context.association[v];
  out.time_s = costs_.time_s(action);
  out.money_usd = costs_.money_usd(action);
  out.norm_time = costs_.norm_time(action);
  out.norm_money = costs_.norm_money(action);
  out.reward = Reward(out.response, out.association, action);
  return out;
}

ObservationLayout Simulator::DefaultLayout() const {
  ObservationLayout layout;
  layout.num_views = num_views();
  layout.num_tasks = num_tasks_;
  layout.time_span = config_.time_span;
  layout.latency_scale_s = costs_.max_time_s();
  layout.money_scale_usd = costs_.max_money_usd();
  return layout;
}

absl::StatusOr<std::shared_ptr<const Simulator>> Simulator::WithProfile(
    const ProfilePair& profile) const {
  auto costs = CostModel::Create(config_.catalog, profile.device, profile.network, actions_);
  if (!costs.ok()) return costs.status();
  SimulatorConfig config = config_;
  config.device = profile.device;
  config.network = profile.network;
  std::shared_ptr<Simulator> sim(new Simulator(std::move(config), actions_, *std::move(costs)));
  sim->num_tasks_ = num_tasks_;
  sim->estimator_ = estimator_;
  sim->task_action_means_ = task_action_means_;
  sim->fitted_episodes_ = fitted_episodes_;
  return std::shared_ptr<const Simulator>(std::move(sim));
}

EpisodeRun::EpisodeRun(const Simulator& simulator, const data::Episode& episode,
                       const Budget& budget, CachedEstimator* cache)
    : simulator_(&simulator), episode_(&episode), budget_(budget), cache_(cache) {
  SetActionCosts(simulator.costs(), &context_);
  PrepareContext();
}

void EpisodeRun::PrepareContext() {
  if (done()) return;
  context_.task_index = episode_->turns[turn_].task_index;
  context_.association = episode_->association[turn_];
  context_.remaining_latency_s = std::max(0.0, budget_.latency_s - spent_time_s_);
  context_.remaining_money_usd = std::max(0.0, budget_.money_usd - spent_money_usd_);
}

TurnOutcome EpisodeRun::Step(int action) {
  TurnOutcome out = simulator_->Evaluate(context_, action, cache_);
  spent_time_s_ += out.time_s;
  spent_money_usd_ += out.money_usd;
  sum_reward_ += out.reward;
  sum_response_ += out.response;
  sum_association_ += out.association;
  context_.previous_actions.push_back(action);
  context_.previous_tasks.push_back(context_.task_index);
  ++turn_;
  PrepareContext();
  return out;
}

}  // namespace lcio::env
