// The offline trainer's entry points: PPO, A2C, DQN and their Lagrangian
// resource-constrained variants (rc-ppo, rc-a2c, rc-dqn) on env::TrainingEnv.
// LibTorch-free header: lcio-train, lcio-eval and tests include it cheaply.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/fallback.h"
#include "lcio/env/policy_interface.h"
#include "lcio/env/simulator.h"
#include "lcio/env/training_env.h"
#include "lcio/policy/artifact.h"
#include "lcio/policy/network.h"
#include "lcio/policy/train_config.h"

namespace lcio::policy {

// Progress reported every TrainOptions::log_every_steps steps and at the end.
struct TrainProgress {
  int64_t steps = 0, total_steps = 0, episodes = 0;
  double seconds = 0;
  // Over the episodes finished since the previous report.
  double mean_episode_reward = 0;        // mean turn reward per episode, as the evaluator's
  double mean_episode_cost_latency = 0;  // constraint cost per episode (see docs/training.md)
  double mean_episode_cost_money = 0;
  double share_over_budget = 0;  // episodes over either budget
  // With the shield in training (LagrangeConfig::shield_penalty > 0): the
  // share of each episode's turns whose proposal it replaced, averaged.
  bool shield_in_training = false;
  double share_shield_overrides = 0;
  std::vector<double> multipliers;  // [latency, money]; empty for unconstrained algorithms
};

// Everything a training run takes. The observation options (prompt_aware,
// budget_aware, task_one_hot, response_aware, fit_aware, profile_aware) are
// members through ObservationConfig; every table-declared option is in
// train_config.h.
struct TrainOptions : ObservationConfig {
  std::string algo = "rc-ppo";  // KnownAlgorithms()
  int64_t timesteps = 30000;
  uint64_t seed = 1;
  int torch_threads = 1;
  std::string device = "auto";  // auto, cpu, cuda, cuda:N (see docs/training.md)
  // Each training episode's budgets. Default: mostly normal around the
  // reference budget with extremes (so that one policy serves any budget).
  env::BudgetDistribution budgets = DefaultBudgetDistribution();
  // Device x network pairs drawn uniformly per training episode, each episode
  // simulated with that profile's costs. all_profiles: every device x network
  // of the simulator's catalog (built-in plus --profiles). Empty and false:
  // every episode uses SimulatorConfig::device/network (as before). A
  // distribution implies profile_aware: a policy serving many profiles must
  // see which one it serves.
  bool all_profiles = false;
  std::vector<env::ProfilePair> training_profiles;
  bool DrawsProfiles() const { return all_profiles || !training_profiles.empty(); }
  // Cross-fitting of the simulator's kNN (K >= 2): the training episodes are
  // dealt into K folds and each fold is scored by a kNN fitted on the other
  // folds, so that training, like the test, never scores an episode with its
  // own logged turns. 1: one kNN on every training episode (the original's
  // way). Clamped to the number of training episodes.
  int cross_fit_folds = 1;
  // The validated fallback (env/fallback.h, docs/training.md): > 0 holds
  // this share of the training episodes out of learning, and after training
  // chooses, per device x network x budget, the network only where it beats
  // the best fixed action on them under every held-out scorer (fitted on
  // them), two standard errors clear; elsewhere that fixed action answers. The
  // table goes into the artifact. 0: no table, the network everywhere.
  double fallback_validation_share = 0;
  // How the fallback's fixed action is chosen per cell: "per_cell" (each
  // cell's best on the training side), "anchored" (one action for all
  // cells, a cell's own only where the validation episodes confirm it),
  // "anchored_per_network" or "anchored_per_network_budget" (one such
  // action per network, per network x budget; env::FixedActionRule). Read only with
  // fallback_validation_share > 0.
  std::string fallback_fixed_action = "per_cell";
  // Hyperparameters, typed. The algorithm reads its learner's (ppo, a2c or
  // dqn); the rc- variants also read `lagrange`. By name: SetHyperparameter.
  PpoConfig ppo;
  A2cConfig a2c;
  DqnConfig dqn;
  LagrangeConfig lagrange;
  // Evaluated at the end (EvaluatePolicy at budgets.fixed, with and without
  // the shield) and recorded in the summary and the artifact.
  std::vector<int> evaluation_episodes;
  int64_t log_every_steps = 2048;
  std::function<void(const TrainProgress&)> on_progress;  // optional
};

struct EvaluationFigures {
  double reward = 0, response = 0, association = 0, latency_s = 0, money_usd = 0;
  double share_over_latency = 0, share_over_money = 0;
  int episodes = 0;
  int64_t shield_overrides = 0;  // decisions the shield replaced
};

struct TrainSummary {
  std::string algo;
  double seconds = 0;  // training wall time (no data loading, no evaluation)
  int64_t steps = 0, episodes = 0, gradient_steps = 0;
  double mean_episode_reward = 0;  // over the last 10% of training episodes
  double mean_episode_cost_latency = 0, mean_episode_cost_money = 0;
  double share_over_budget = 0;
  bool shield_in_training = false;    // LagrangeConfig::shield_penalty > 0
  double share_shield_overrides = 0;  // as in TrainProgress, over the last 10% of episodes
  std::vector<double> multipliers;    // final [latency, money]; empty when unconstrained
  // env::DescribeFallback of the validated fallback table; empty without one.
  std::string fallback_description;
  std::string device;       // resolved device
  std::string config_json;  // every hyperparameter and option
  // Present when TrainOptions::evaluation_episodes was not empty.
  bool evaluated = false;
  EvaluationFigures evaluation, evaluation_shielded;
  std::string evaluation_json;
};

struct TrainResult {
  TrainSummary summary;
  Network network;  // what the artifact stores and the engine serves
  env::ObservationLayout layout;
  // The model a response_aware layout predicts with; null otherwise.
  std::shared_ptr<const env::ResponseEstimator> response_model;
  // The episodes (dataset indices, sorted) the training simulator was fitted
  // on, and the fallback's validation episodes: what the decisions depend
  // on, for the evaluator's held-out check.
  std::vector<int> decision_model_episodes;
  // With TrainOptions::fallback_validation_share > 0: the validated
  // fallback table (null otherwise), applied wherever the network decides.
  std::shared_ptr<const env::FallbackTable> fallback;
};

// The hyperparameters of options.algo by name (its learner's table, plus the
// Lagrange table for rc-*), as the artifact records them.
absl::StatusOr<std::map<std::string, double>> Hyperparameters(const TrainOptions& options);
// The same at their defaults. InvalidArgument for an unknown algo.
absl::StatusOr<std::map<std::string, double>> DefaultHyperparameters(const std::string& algo);
// Sets one hyperparameter of options->algo by name, checking its range.
// InvalidArgument listing the algorithm's names when it has no such one.
absl::Status SetHyperparameter(TrainOptions* options, const std::string& name, double value);
// Every range: the algorithm's hyperparameters, timesteps, threads, folds,
// the budget distribution.
absl::Status ValidateTrainOptions(const TrainOptions& options);

// Applies a training configuration (the JSON object lcio-train --config reads,
// see docs/training.md: algo, timesteps, seed, hyperparameters,
// budget_distribution, the observation options, training_profiles: "all" or
// [{"device", "network"}], cross_fit_folds) on top of *options; keys it does
// not give keep their value. The hyperparameters fill the table of the file's
// algo, or of options->algo when keep_algo (the caller's command line named
// the algorithm, which wins). InvalidArgument naming the key for malformed
// JSON, an unknown key, an unknown hyperparameter or a value out of range.
absl::Status ApplyTrainConfigJson(const std::string& json, TrainOptions* options,
                                  bool keep_algo = false);

// The training configuration recorded in artifacts (JSON; keys sorted).
std::string TrainingConfigJson(const TrainOptions& options, const env::SimulatorConfig& config,
                               const std::map<std::string, double>& hp, const std::string& device,
                               const std::vector<env::ProfilePair>& profiles);

// Trains in memory (no artifact).
absl::StatusOr<TrainResult> Train(const data::Dataset& dataset,
                                  const std::vector<int>& train_episodes,
                                  const env::SimulatorConfig& config, const TrainOptions& options);

// Trains and writes the artifact (policy::SaveArtifact) with full metadata:
// algo, layout, action table, tasks, profiles, training configuration, data
// hash (data::Sha256Hex of data::ToM4A1Json(dataset), i.e. of the canonical
// serialisation, so it does not depend on file formatting), the task
// classifier trained on the training episodes' prompts and the evaluation.
absl::StatusOr<TrainSummary> TrainPolicy(const data::Dataset& dataset,
                                         const std::vector<int>& train_episodes,
                                         const env::SimulatorConfig& config,
                                         const TrainOptions& options,
                                         const std::string& artifact_out_path);

// Writes a training run's result as TrainPolicy does (same metadata), with
// `training_split` recorded (lcio-eval --save_policies; unknown by default).
absl::Status SaveTrainResult(const data::Dataset& dataset, const std::vector<int>& train_episodes,
                             const env::SimulatorConfig& config, const TrainOptions& options,
                             const TrainResult& result, const std::string& artifact_out_path,
                             const TrainingSplit& training_split = {});

// An env::Policy that scores through a trained network (argmax; fills the
// scores so the shield can rank fallbacks). For evaluating in memory.
class NetworkPolicy : public env::Policy {
 public:
  NetworkPolicy(std::string name, Network network, env::ObservationEncoder encoder,
                std::vector<int> decision_model_episodes = {});
  std::string name() const override { return name_; }
  int Act(const env::DecisionContext& context, std::vector<double>* scores) override;
  std::vector<int> DecisionModelEpisodes() const override { return decision_model_episodes_; }

 private:
  std::string name_;
  std::vector<int> decision_model_episodes_;
  Network network_;
  env::ObservationEncoder encoder_;
  std::vector<float> observation_, scores_;
};

}  // namespace lcio::policy
