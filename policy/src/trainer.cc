#include "lcio/policy/trainer.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "device.h"
#include "lcio/data/json_parse.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/scorer.h"
#include "lcio/env/split.h"
#include "lcio/policy/algorithms.h"
#include "lcio/policy/trainer_internal.h"

namespace lcio::policy {

absl::StatusOr<std::string> ResolveDevice(const std::string& device) {
  // Validated by the parser the inference engine uses, so a typo fails here
  // as it would there; but these networks train on the CPU kernels
  // (network.h) whatever the string, and the summary says so.
  if (auto parsed = internal::ParseTorchDevice(device); !parsed.ok()) return parsed.status();
  return std::string("cpu");
}

void ConfigureTorchThreads(int threads) {
  at::set_num_threads(std::max(1, threads));
  // Inter-op threads may be set once per process, before any parallel work.
  static std::once_flag once;
  std::call_once(once, [&] {
    try {
      at::set_num_interop_threads(std::max(1, threads));
    } catch (const std::exception&) {
      // Already started by an earlier LibTorch call: keep what it has.
    }
  });
}

NetworkPolicy::NetworkPolicy(std::string name, Network network, env::ObservationEncoder encoder,
                             std::vector<int> decision_model_episodes)
    : name_(std::move(name)),
      decision_model_episodes_(std::move(decision_model_episodes)),
      network_(std::move(network)),
      encoder_(std::move(encoder)),
      observation_(encoder_.size()),
      scores_(network_.sizes.back()) {}

int NetworkPolicy::Act(const env::DecisionContext& context, std::vector<double>* scores) {
  encoder_.Encode(context, observation_.data());
  network_.Forward(observation_.data(), 1, scores_.data());
  const int best =
      static_cast<int>(std::max_element(scores_.begin(), scores_.end()) - scores_.begin());
  if (scores) scores->assign(scores_.begin(), scores_.end());
  return best;
}

namespace {

// The training environment, with its kNN cross-fitted when asked (see
// TrainOptions::cross_fit_folds): simulators[1 + fold] scores that fold.
absl::StatusOr<env::TrainingEnv> MakeTrainingEnv(const data::Dataset& dataset,
                                                 const std::vector<int>& train_episodes,
                                                 const env::SimulatorConfig& config,
                                                 std::shared_ptr<const env::Simulator> primary,
                                                 const env::ObservationLayout& layout,
                                                 const TrainOptions& options,
                                                 const std::vector<env::ProfilePair>& profiles) {
  const uint64_t env_seed = env::MixSeed(options.seed, 1);
  const int folds = std::min<int>(options.cross_fit_folds, static_cast<int>(train_episodes.size()));
  if (folds < 2)
    return env::TrainingEnv::Create({std::move(primary)}, dataset, train_episodes,
                                    std::vector<int>(train_episodes.size(), 0), layout,
                                    options.budgets, env_seed, profiles);
  auto cross_fit =
      env::FitCrossFolds(dataset, train_episodes, folds, env::MixSeed(options.seed, 3), config);
  if (!cross_fit.ok()) return cross_fit.status();
  std::vector<int> scorer(cross_fit->fold_of.size());
  for (size_t i = 0; i < scorer.size(); ++i) scorer[i] = 1 + cross_fit->fold_of[i];
  std::vector<std::shared_ptr<const env::Simulator>> simulators{std::move(primary)};
  for (auto& simulator : cross_fit->simulators) simulators.push_back(std::move(simulator));
  return env::TrainingEnv::Create(std::move(simulators), dataset, train_episodes, std::move(scorer),
                                  layout, options.budgets, env_seed, profiles);
}

// Each learner's entry point (algorithms.h); the rc- variants are the same
// learner with AlgoContext::constrained().
constexpr struct {
  Learner learner;
  Network (*train)(AlgoContext&);
} kLearners[] = {{Learner::kPpo, TrainPpo}, {Learner::kA2c, TrainA2c}, {Learner::kDqn, TrainDqn}};

absl::Status CheckEpisodes(const data::Dataset& dataset, const std::vector<int>& train_episodes,
                           const std::vector<int>& evaluation_episodes) {
  if (train_episodes.empty()) return absl::InvalidArgumentError("no training episodes");
  const int n = static_cast<int>(dataset.episodes.size());
  for (const auto& [episodes, what] :
       {std::pair{&train_episodes, "training"}, std::pair{&evaluation_episodes, "evaluation"}})
    for (int e : *episodes)
      if (e < 0 || e >= n)
        return absl::InvalidArgumentError(
            absl::StrCat(what, " episode index ", e, " is out of range [0, ", n, ")"));
  return absl::OkStatus();
}

// What the policy observes, from the options and the simulator fitted on the
// training episodes (its response scale and the training profile's costs).
env::ObservationLayout MakeLayout(const env::Simulator& simulator, const TrainOptions& options) {
  env::ObservationLayout layout = simulator.DefaultLayout();
  layout.prompt_aware = options.prompt_aware;
  layout.budget_aware = options.budget_aware;
  layout.task_one_hot = options.task_one_hot;
  if (!options.prompt_aware && !options.budget_aware && !options.task_one_hot)
    layout =
        env::ObservationLayout::Reference(layout.num_views, layout.num_tasks, layout.time_span);
  layout.response_aware = options.response_aware;
  if (options.response_aware)
    layout.response_scale =
        simulator.estimator()->mean_value() > 0 ? simulator.estimator()->mean_value() : 1.0;
  layout.fit_aware = options.fit_aware;
  if (options.fit_aware) {
    const env::CostModel& costs = simulator.costs();
    layout.action_time_s.resize(costs.num_actions());
    layout.action_money_usd.resize(costs.num_actions());
    for (int a = 0; a < costs.num_actions(); ++a) {
      layout.action_time_s[a] = costs.time_s(a);
      layout.action_money_usd[a] = costs.money_usd(a);
    }
  }
  layout.profile_aware = options.profile_aware || options.DrawsProfiles();
  return layout;
}

// Seeds LibTorch and the learner's own generator, then runs the learner.
std::pair<Network, TrainSummary> RunLearner(env::TrainingEnv& training_env,
                                            const TrainOptions& options) {
  const AlgoSpec spec = *ParseAlgo(options.algo);  // validated by ValidateTrainOptions
  ConfigureTorchThreads(options.torch_threads);
  torch::manual_seed(options.seed);
  TrainOptions context_options = options;
  context_options.seed = env::MixSeed(options.seed, 2);
  AlgoContext context(training_env, spec.constrained, context_options);
  Network output;
  for (const auto& entry : kLearners)
    if (entry.learner == spec.learner) output = entry.train(context);
  return {std::move(output), context.Finish()};
}

nlohmann::json FiguresJson(const EvaluationFigures& f) {
  return {{"reward", f.reward},
          {"response", f.response},
          {"association", f.association},
          {"latency_s", f.latency_s},
          {"money_usd", f.money_usd},
          {"share_over_latency", f.share_over_latency},
          {"share_over_money", f.share_over_money},
          {"episodes", f.episodes},
          {"shield_overrides", f.shield_overrides}};
}

// The trained network on the evaluation episodes at the fixed budget, with
// and without the shield, into the summary (figures and their JSON).
absl::Status EvaluateTrained(const env::Simulator& simulator, const data::Dataset& dataset,
                             const TrainOptions& options, const TrainResult& result,
                             TrainSummary* summary) {
  summary->evaluated = true;
  nlohmann::json eval;
  for (bool shield : {false, true}) {
    auto encoder = env::ObservationEncoder::Create(result.layout, result.response_model);
    if (!encoder.ok()) return encoder.status();
    env::FallbackPolicy policy(
        std::make_unique<NetworkPolicy>(options.algo, result.network, *std::move(encoder)),
        result.fallback, {});
    env::EvalOptions eval_options{options.budgets.fixed, shield, options.seed};
    const env::PolicyResult r =
        env::EvaluatePolicy(simulator, dataset, options.evaluation_episodes, policy, eval_options);
    EvaluationFigures& f = shield ? summary->evaluation_shielded : summary->evaluation;
    f = {r.reward,           r.response,
         r.association,      r.latency_s,
         r.money_usd,        r.share_over_latency,
         r.share_over_money, static_cast<int>(r.episodes.size()),
         r.shield_overrides};
    eval[shield ? "shielded" : "unshielded"] = FiguresJson(f);
  }
  eval["budget"] = {{"latency_s", options.budgets.fixed.latency_s},
                    {"money_usd", options.budgets.fixed.money_usd}};
  summary->evaluation_json = eval.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return absl::OkStatus();
}

// The training side dealt into (learn on, validation): a seeded portable
// shuffle, the first round(share * n) positions validating.
absl::StatusOr<std::pair<std::vector<int>, std::vector<int>>> HoldOutValidation(
    const std::vector<int>& episodes, double share, uint64_t seed) {
  const size_t n = episodes.size();
  const size_t held = static_cast<size_t>(std::lround(share * static_cast<double>(n)));
  if (held < 2 || n - held < 2)
    return absl::InvalidArgumentError(absl::StrCat("fallback_validation_share = ", share, " of ", n,
                                                   " training episodes holds out ", held,
                                                   "; at least 2 must validate and 2 train"));
  // DealFolds with one fold per position is a seeded permutation.
  const std::vector<int> rank =
      env::DealFolds(n, static_cast<int>(n), env::MixSeed(seed, 0xfa11bac6));
  std::pair<std::vector<int>, std::vector<int>> out;
  for (size_t i = 0; i < n; ++i)
    (static_cast<size_t>(rank[i]) < held ? out.second : out.first).push_back(episodes[i]);
  return out;
}

}  // namespace

absl::StatusOr<TrainRun> RunTraining(const data::Dataset& dataset,
                                     const std::vector<int>& train_episodes,
                                     const env::SimulatorConfig& config,
                                     const TrainOptions& options) {
  if (auto s = ValidateTrainOptions(options); !s.ok()) return s;
  auto hp = Hyperparameters(options);
  if (!hp.ok()) return hp.status();
  auto device = ResolveDevice(options.device);
  if (!device.ok()) return device.status();
  if (auto s = CheckEpisodes(dataset, train_episodes, options.evaluation_episodes); !s.ok())
    return s;

  // With the validated fallback, a share of the training side is held out
  // of learning to judge the network on.
  std::vector<int> learn_on = train_episodes, validation;
  if (options.fallback_validation_share > 0) {
    auto held = HoldOutValidation(train_episodes, options.fallback_validation_share, options.seed);
    if (!held.ok()) return held.status();
    std::tie(learn_on, validation) = *std::move(held);
  }
  auto simulator = env::Simulator::Create(dataset, learn_on, config);
  if (!simulator.ok()) return simulator.status();
  const env::ObservationLayout layout = MakeLayout(**simulator, options);
  const std::vector<env::ProfilePair> profiles =
      options.all_profiles ? env::AllProfilePairs(config.catalog) : options.training_profiles;
  auto training_env =
      MakeTrainingEnv(dataset, learn_on, config, *simulator, layout, options, profiles);
  if (!training_env.ok()) return training_env.status();

  auto [output, summary] = RunLearner(*training_env, options);
  TrainRun run;
  run.result.summary = std::move(summary);
  run.result.summary.algo = options.algo;
  run.result.summary.device = *device;
  run.result.summary.config_json = TrainingConfigJson(options, config, *hp, *device, profiles);
  run.result.layout = layout;
  if (layout.response_aware) run.result.response_model = (*simulator)->estimator();
  run.result.decision_model_episodes = (*simulator)->fitted_episodes();
  run.result.network = std::move(output);
  run.simulator = *simulator;
  if (!validation.empty()) {
    auto encoder = env::ObservationEncoder::Create(layout, run.result.response_model);
    if (!encoder.ok()) return encoder.status();
    NetworkPolicy candidate(options.algo, run.result.network, *std::move(encoder),
                            run.result.decision_model_episodes);
    env::FallbackSelectionOptions selection;
    selection.budgets = env::DefaultFallbackBudgets();
    selection.seed = options.seed;
    auto rule = env::ParseFixedActionRule(options.fallback_fixed_action);
    if (!rule.ok()) return rule.status();
    selection.fixed_action_rule = *rule;
    std::vector<int> consulted;
    auto table = env::SelectFallback(dataset, train_episodes, validation, config, candidate,
                                     selection, &consulted);
    if (!table.ok()) return table.status();
    run.result.fallback = std::make_shared<const env::FallbackTable>(*std::move(table));
    // What the network's decision model was fitted on and what the table's
    // selection consulted, as each reports it.
    std::set<int> all(consulted.begin(), consulted.end());
    all.insert(run.result.decision_model_episodes.begin(),
               run.result.decision_model_episodes.end());
    run.result.decision_model_episodes.assign(all.begin(), all.end());
    run.result.summary.fallback_description =
        env::DescribeFallback(*run.result.fallback, (*simulator)->actions());
  }
  if (!options.evaluation_episodes.empty())
    if (auto s = EvaluateTrained(**simulator, dataset, options, run.result, &run.result.summary);
        !s.ok())
      return s;
  return run;
}

absl::StatusOr<TrainResult> Train(const data::Dataset& dataset,
                                  const std::vector<int>& train_episodes,
                                  const env::SimulatorConfig& config, const TrainOptions& options) {
  auto run = RunTraining(dataset, train_episodes, config, options);
  if (!run.ok()) return run.status();
  return std::move(run->result);
}

}  // namespace lcio::policy
