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

namespace {

const std::map<std::string, double>& CommonDefaults() {
  static const auto* m =
      new std::map<std::string, double>{{"hidden_size", 64}, {"hidden_layers", 2}, {"gamma", 0.99}};
  return *m;
}

// The Lagrangian settings of the rc- variants (see docs/training.md).
const std::map<std::string, double>& LagrangeDefaults() {
  static const auto* m = new std::map<std::string, double>{
      {"cost_limit_latency", 0.02}, {"cost_limit_money", 0.02},  {"lagrange_lr", 0.5},
      {"lagrange_kp", 0},           {"lagrange_kd", 0},          {"lagrange_init", 0},
      {"lagrange_max", 100},        {"lagrange_interval", 1024}, {"violation_cost", 0}};
  return *m;
}

std::string BaseAlgo(const std::string& algo) {
  return algo.rfind("rc-", 0) == 0 ? algo.substr(3) : algo;
}

// Ranges checked before training so that a bad flag fails with a message.
absl::Status CheckHyperparameters(const std::map<std::string, double>& hp) {
  auto at_least = [&](const char* name, double lo) -> absl::Status {
    auto it = hp.find(name);
    if (it != hp.end() && !(it->second >= lo))
      return absl::InvalidArgumentError(
          absl::StrCat("hyperparameter ", name, " = ", it->second, ": must be >= ", lo));
    return absl::OkStatus();
  };
  auto in_unit = [&](const char* name) -> absl::Status {
    auto it = hp.find(name);
    if (it != hp.end() && !(it->second >= 0 && it->second <= 1))
      return absl::InvalidArgumentError(
          absl::StrCat("hyperparameter ", name, " = ", it->second, ": must be in [0, 1]"));
    return absl::OkStatus();
  };
  for (const auto& [name, value] : hp)
    if (!std::isfinite(value))
      return absl::InvalidArgumentError(
          absl::StrCat("hyperparameter ", name, " = ", value, ": must be finite"));
  for (const char* name :
       {"hidden_size", "hidden_layers", "n_steps", "batch_size", "n_epochs", "buffer_size",
        "train_freq", "target_update_interval", "lagrange_interval"})
    if (auto s = at_least(name, 1); !s.ok()) return s;
  if (hp.count("hidden_size") && hp.at("hidden_size") > 4096)
    return absl::InvalidArgumentError("hyperparameter hidden_size: must be <= 4096");
  if (hp.count("hidden_layers") && hp.at("hidden_layers") > 16)
    return absl::InvalidArgumentError("hyperparameter hidden_layers: must be <= 16");
  for (const char* name :
       {"learning_rate", "clip_range", "ent_coef", "vf_coef", "max_grad_norm", "adam_eps",
        "rms_prop_eps", "learning_starts", "gradient_steps", "lagrange_lr", "lagrange_kp",
        "lagrange_kd", "lagrange_init", "lagrange_max", "cost_limit_latency", "cost_limit_money",
        "violation_cost"})
    if (auto s = at_least(name, 0); !s.ok()) return s;
  for (const char* name :
       {"gamma", "gae_lambda", "tau", "exploration_fraction", "exploration_initial_eps",
        "exploration_final_eps", "rms_prop_alpha", "normalize_advantage"})
    if (auto s = in_unit(name); !s.ok()) return s;
  return absl::OkStatus();
}

}  // namespace

env::BudgetDistribution TrainOptions::DefaultBudgets() {
  env::BudgetDistribution d;
  d.kind = env::BudgetDistribution::Kind::kMixture;
  d.fixed = {30.0, 0.05};
  d.low = {2.0, 0.002};
  d.high = {60.0, 0.1};
  d.stddev = {10.0, 0.02};
  d.extreme_share = 0.2;
  return d;
}

absl::Status ApplyTrainConfigJson(const std::string& json, TrainOptions* options) {
  absl::Status error;
  const nlohmann::json j = data::ParseJson(json, "training config", &error);
  if (!error.ok()) return error;
  if (!j.is_object()) return absl::InvalidArgumentError("training config: not a JSON object");
  env::BudgetDistribution& b = options->budgets;
  try {
    for (const auto& [key, value] : j.items()) {
      if (key == "algo") {
        options->algo = value.get<std::string>();
      } else if (key == "timesteps") {
        options->timesteps = value.get<int64_t>();
      } else if (key == "seed") {
        options->seed = value.get<uint64_t>();
      } else if (key == "hyperparameters") {
        for (const auto& [name, v] : value.items())
          options->hyperparameters[name] = v.get<double>();
      } else if (key == "budget_distribution") {
        for (const auto& [name, v] : value.items()) {
          if (name == "kind") {
            auto k = env::BudgetDistribution::ParseKind(v.get<std::string>());
            if (!k.ok()) return k.status();
            b.kind = *k;
          } else if (name == "extreme_share") {
            b.extreme_share = v.get<double>();
          } else if (name == "fixed" || name == "low" || name == "high" || name == "stddev") {
            env::Budget& target = name == "fixed"  ? b.fixed
                                  : name == "low"  ? b.low
                                  : name == "high" ? b.high
                                                   : b.stddev;
            target.latency_s = v.at("latency_s").get<double>();
            target.money_usd = v.at("money_usd").get<double>();
          } else {
            return absl::InvalidArgumentError(
                absl::StrCat("training config: budget_distribution.", name,
                             " is not known (kind, fixed, low, high, stddev, extreme_share)"));
          }
        }
      } else if (key == "training_profiles") {
        options->all_profiles = value.is_string() && value.get<std::string>() == "all";
        options->training_profiles.clear();
        if (value.is_string() && !options->all_profiles)
          return absl::InvalidArgumentError(absl::StrCat(
              "training config: training_profiles = \"", value.get<std::string>().substr(0, 64),
              "\": must be \"all\" or a list of {device, network}"));
        if (value.is_array())
          for (const auto& pair : value)
            options->training_profiles.push_back(
                {pair.at("device").get<std::string>(), pair.at("network").get<std::string>()});
        else if (!value.is_string())
          return absl::InvalidArgumentError(
              "training config: training_profiles must be \"all\" or a list of {device, network}");
      } else if (key == "cross_fit_folds") {
        options->cross_fit_folds = value.get<int>();
      } else if (key == "prompt_aware" || key == "budget_aware" || key == "task_one_hot" ||
                 key == "response_aware" || key == "fit_aware" || key == "profile_aware") {
        (key == "prompt_aware"     ? options->prompt_aware
         : key == "budget_aware"   ? options->budget_aware
         : key == "task_one_hot"   ? options->task_one_hot
         : key == "response_aware" ? options->response_aware
         : key == "fit_aware"      ? options->fit_aware
                                   : options->profile_aware) = value.get<bool>();
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "training config: key \"", key,
            "\" is not known (algo, timesteps, seed, hyperparameters, budget_distribution, "
            "cross_fit_folds, prompt_aware, budget_aware, task_one_hot, response_aware, "
            "fit_aware, profile_aware, training_profiles)"));
      }
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("training config: ", e.what()));
  }
  return absl::OkStatus();
}

std::vector<std::string> KnownAlgorithms() {
  return {"ppo", "a2c", "dqn", "rc-ppo", "rc-a2c", "rc-dqn"};
}

absl::StatusOr<std::map<std::string, double>> DefaultHyperparameters(const std::string& algo) {
  const std::vector<std::string> known = KnownAlgorithms();
  if (std::find(known.begin(), known.end(), algo) == known.end())
    return absl::InvalidArgumentError(
        absl::StrCat("algo = \"", algo, "\": must be one of ", absl::StrJoin(known, ", ")));
  std::map<std::string, double> hp = CommonDefaults();
  const std::string base = BaseAlgo(algo);
  if (base == "ppo") {
    hp.insert({{"learning_rate", 3e-4},
               {"n_steps", 2048},
               {"batch_size", 64},
               {"n_epochs", 10},
               {"gae_lambda", 0.95},
               {"clip_range", 0.2},
               {"ent_coef", 0.0},
               {"vf_coef", 0.5},
               {"max_grad_norm", 0.5},
               {"normalize_advantage", 1},
               {"adam_eps", 1e-5}});
  } else if (base == "a2c") {
    hp.insert({{"learning_rate", 7e-4},
               {"n_steps", 5},
               {"gae_lambda", 1.0},
               {"ent_coef", 0.0},
               {"vf_coef", 0.5},
               {"max_grad_norm", 0.5},
               {"normalize_advantage", 0},
               {"rms_prop_alpha", 0.99},
               {"rms_prop_eps", 1e-5}});
  } else {
    hp.insert({{"learning_rate", 1e-4},
               {"buffer_size", 1e6},
               {"learning_starts", 100},
               {"batch_size", 32},
               {"tau", 1.0},
               {"train_freq", 4},
               {"gradient_steps", 1},
               {"target_update_interval", 10000},
               {"exploration_fraction", 0.1},
               {"exploration_initial_eps", 1.0},
               {"exploration_final_eps", 0.05},
               {"max_grad_norm", 10},
               {"adam_eps", 1e-8}});
  }
  if (algo != base) hp.insert(LagrangeDefaults().begin(), LagrangeDefaults().end());
  return hp;
}

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

std::string TrainingConfigJson(const TrainOptions& options, const env::SimulatorConfig& config,
                               const std::map<std::string, double>& hp, const std::string& device,
                               const std::vector<env::ProfilePair>& profiles) {
  nlohmann::json j;
  j["algo"] = options.algo;
  j["timesteps"] = options.timesteps;
  j["seed"] = options.seed;
  j["torch_threads"] = options.torch_threads;
  j["device"] = device;
  j["prompt_aware"] = options.prompt_aware;
  j["budget_aware"] = options.budget_aware;
  j["task_one_hot"] = options.task_one_hot;
  j["response_aware"] = options.response_aware;
  j["fit_aware"] = options.fit_aware;
  j["cross_fit_folds"] = options.cross_fit_folds;
  // Only when used, so that single-profile artifacts stay byte-identical.
  if (options.profile_aware || !profiles.empty()) j["profile_aware"] = true;
  if (!profiles.empty()) {
    j["training_profiles"] = nlohmann::json::array();
    for (const env::ProfilePair& p : profiles)
      j["training_profiles"].push_back({{"device", p.device}, {"network", p.network}});
    j["training_profile_draw"] = "uniform per episode";
  }
  const env::BudgetDistribution& b = options.budgets;
  j["budget_distribution"] = {
      {"kind", env::BudgetDistribution::KindName(b.kind)},
      {"fixed", {{"latency_s", b.fixed.latency_s}, {"money_usd", b.fixed.money_usd}}},
      {"low", {{"latency_s", b.low.latency_s}, {"money_usd", b.low.money_usd}}},
      {"high", {{"latency_s", b.high.latency_s}, {"money_usd", b.high.money_usd}}},
      {"stddev", {{"latency_s", b.stddev.latency_s}, {"money_usd", b.stddev.money_usd}}},
      {"extreme_share", b.extreme_share}};
  j["hyperparameters"] = hp;
  j["simulator"] = {{"device", config.device},
                    {"network", config.network},
                    {"alpha", config.weights.alpha},
                    {"beta_association", config.weights.beta_association},
                    {"beta_latency", config.weights.beta_latency},
                    {"beta_usage", config.weights.beta_usage},
                    {"time_span", config.time_span},
                    {"k_neighbors", config.k_neighbors},
                    {"refusal_phrases", config.refusal.phrases}};
  // Only when not the default, so that kNN-trained artifacts stay byte-identical.
  if (config.response_model != env::ResponseModelFamily::kKnn)
    j["simulator"]["response_model"] = env::ResponseModelFamilyName(config.response_model);
  return j.dump();
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

}  // namespace

absl::StatusOr<TrainRun> RunTraining(const data::Dataset& dataset,
                                     const std::vector<int>& train_episodes,
                                     const env::SimulatorConfig& config,
                                     const TrainOptions& options) {
  auto hp = DefaultHyperparameters(options.algo);
  if (!hp.ok()) return hp.status();
  for (const auto& [name, value] : options.hyperparameters) {
    if (!hp->count(name)) {
      std::vector<std::string> names;
      for (const auto& entry : *hp) names.push_back(entry.first);
      return absl::InvalidArgumentError(absl::StrCat("hyperparameter \"", name, "\" is not one of ",
                                                     options.algo,
                                                     "'s: ", absl::StrJoin(names, ", ")));
    }
    (*hp)[name] = value;
  }
  if (auto s = CheckHyperparameters(*hp); !s.ok()) return s;
  if (options.timesteps < 1 || options.timesteps > 1'000'000'000)
    return absl::InvalidArgumentError(
        absl::StrCat("timesteps = ", options.timesteps, ": must be in [1, 1e9]"));
  if (options.torch_threads < 1 || options.torch_threads > 256)
    return absl::InvalidArgumentError(
        absl::StrCat("torch_threads = ", options.torch_threads, ": must be in [1, 256]"));
  if (options.cross_fit_folds < 1 || options.cross_fit_folds > 100)
    return absl::InvalidArgumentError(
        absl::StrCat("cross_fit_folds = ", options.cross_fit_folds, ": must be in [1, 100]"));
  if (auto s = options.budgets.Validate(); !s.ok()) return s;
  auto device = ResolveDevice(options.device);
  if (!device.ok()) return device.status();
  if (train_episodes.empty()) return absl::InvalidArgumentError("no training episodes");
  for (int e : train_episodes)
    if (e < 0 || e >= static_cast<int>(dataset.episodes.size()))
      return absl::InvalidArgumentError(absl::StrCat(
          "training episode index ", e, " is out of range [0, ", dataset.episodes.size(), ")"));
  for (int e : options.evaluation_episodes)
    if (e < 0 || e >= static_cast<int>(dataset.episodes.size()))
      return absl::InvalidArgumentError(absl::StrCat(
          "evaluation episode index ", e, " is out of range [0, ", dataset.episodes.size(), ")"));

  auto simulator = env::Simulator::Create(dataset, train_episodes, config);
  if (!simulator.ok()) return simulator.status();
  env::ObservationLayout layout = (*simulator)->DefaultLayout();
  layout.prompt_aware = options.prompt_aware;
  layout.budget_aware = options.budget_aware;
  layout.task_one_hot = options.task_one_hot;
  if (!options.prompt_aware && !options.budget_aware && !options.task_one_hot)
    layout =
        env::ObservationLayout::Reference(layout.num_views, layout.num_tasks, layout.time_span);
  layout.response_aware = options.response_aware;
  if (options.response_aware)
    layout.response_scale =
        (*simulator)->estimator()->mean_value() > 0 ? (*simulator)->estimator()->mean_value() : 1.0;
  layout.fit_aware = options.fit_aware;
  if (options.fit_aware) {
    const env::CostModel& costs = (*simulator)->costs();
    layout.action_time_s.resize(costs.num_actions());
    layout.action_money_usd.resize(costs.num_actions());
    for (int a = 0; a < costs.num_actions(); ++a) {
      layout.action_time_s[a] = costs.time_s(a);
      layout.action_money_usd[a] = costs.money_usd(a);
    }
  }
  layout.profile_aware = options.profile_aware || options.DrawsProfiles();
  const std::vector<env::ProfilePair> profiles =
      options.all_profiles ? env::AllProfilePairs(config.catalog) : options.training_profiles;
  auto training_env =
      MakeTrainingEnv(dataset, train_episodes, config, *simulator, layout, options, profiles);
  if (!training_env.ok()) return training_env.status();

  ConfigureTorchThreads(options.torch_threads);
  torch::manual_seed(options.seed);
  const bool constrained = options.algo.rfind("rc-", 0) == 0;
  TrainOptions context_options = options;
  context_options.seed = env::MixSeed(options.seed, 2);
  AlgoContext context(*training_env, *hp, constrained, context_options);
  const std::string base = BaseAlgo(options.algo);
  TrainRun run;
  run.result.network = base == "ppo"   ? TrainPpo(context)
                       : base == "a2c" ? TrainA2c(context)
                                       : TrainDqn(context);
  run.result.summary = context.Finish();
  run.result.summary.algo = options.algo;
  run.result.summary.device = *device;
  run.result.summary.config_json = TrainingConfigJson(options, config, *hp, *device, profiles);
  run.result.layout = layout;
  if (layout.response_aware) run.result.response_model = (*simulator)->estimator();
  run.result.decision_model_episodes = (*simulator)->fitted_episodes();
  const Network& net = run.result.network;
  run.simulator = *simulator;

  if (!options.evaluation_episodes.empty()) {
    TrainSummary& s = run.result.summary;
    s.evaluated = true;
    nlohmann::json eval;
    for (bool shield : {false, true}) {
      auto encoder = env::ObservationEncoder::Create(layout, run.result.response_model);
      if (!encoder.ok()) return encoder.status();
      NetworkPolicy policy(options.algo, net, *std::move(encoder));
      env::EvalOptions eval_options{options.budgets.fixed, shield, options.seed};
      const env::PolicyResult r = env::EvaluatePolicy(
          **simulator, dataset, options.evaluation_episodes, policy, eval_options);
      EvaluationFigures& f = shield ? s.evaluation_shielded : s.evaluation;
      f = {r.reward,           r.response,
           r.association,      r.latency_s,
           r.money_usd,        r.share_over_latency,
           r.share_over_money, static_cast<int>(r.episodes.size())};
      eval[shield ? "shielded" : "unshielded"] = {{"reward", r.reward},
                                                  {"response", r.response},
                                                  {"association", r.association},
                                                  {"latency_s", r.latency_s},
                                                  {"money_usd", r.money_usd},
                                                  {"share_over_latency", r.share_over_latency},
                                                  {"share_over_money", r.share_over_money},
                                                  {"episodes", r.episodes.size()},
                                                  {"shield_overrides", r.shield_overrides}};
    }
    eval["budget"] = {{"latency_s", options.budgets.fixed.latency_s},
                      {"money_usd", options.budgets.fixed.money_usd}};
    s.evaluation_json = eval.dump();
  }
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
