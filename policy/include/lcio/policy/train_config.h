// The trainer's typed configuration: one struct per concern, each declared
// once as a table of rows X(type, name, default, lowest, highest, help). From
// each table come the struct's members and defaults, range validation, JSON
// read/write (training configs and artifacts), lcio-train's flags and the
// option list of docs/training.md (lcio-train --print_options_markdown).
// Adding a hyperparameter is one row in one table. LibTorch-free.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lcio/env/training_env.h"

namespace lcio::policy {

inline constexpr double kNoLimit = std::numeric_limits<double>::infinity();
// Integer options stop here so that a huge value cannot overflow a counter.
inline constexpr double kMaxCount = 1e9;

// Rows every algorithm has: the network shape and the discount.
#define LCIO_NETWORK_OPTIONS(X)                                                      \
  X(int, hidden_size, 64, 1, 4096, "units per hidden layer")                         \
  X(int, hidden_layers, 2, 1, 16, "hidden layers of the actor, critic or Q network") \
  X(double, gamma, 0.99, 0, 1, "discount factor")

// PPO (Schulman et al. 2017), Stable-Baselines3's defaults.
#define LCIO_PPO_OPTIONS(X)                                                      \
  LCIO_NETWORK_OPTIONS(X)                                                        \
  X(double, learning_rate, 3e-4, 0, 1, "Adam step size")                         \
  X(int, n_steps, 2048, 1, kMaxCount, "environment steps per rollout")           \
  X(int, batch_size, 64, 1, kMaxCount, "minibatch size")                         \
  X(int, n_epochs, 10, 1, kMaxCount, "passes over each rollout")                 \
  X(double, gae_lambda, 0.95, 0, 1, "GAE lambda")                                \
  X(double, clip_range, 0.2, 0, kNoLimit, "probability ratio clip epsilon")      \
  X(double, ent_coef, 0.0, 0, kNoLimit, "entropy bonus weight")                  \
  X(double, vf_coef, 0.5, 0, kNoLimit, "value loss weight")                      \
  X(double, max_grad_norm, 0.5, 0, kNoLimit, "gradient norm clip")               \
  X(bool, normalize_advantage, true, 0, 1, "normalise advantages per minibatch") \
  X(double, adam_eps, 1e-5, 0, kNoLimit, "Adam epsilon")

// A2C (Mnih et al. 2016), Stable-Baselines3's defaults.
#define LCIO_A2C_OPTIONS(X)                                                    \
  LCIO_NETWORK_OPTIONS(X)                                                      \
  X(double, learning_rate, 7e-4, 0, 1, "RMSprop step size")                    \
  X(int, n_steps, 5, 1, kMaxCount, "environment steps per update")             \
  X(double, gae_lambda, 1.0, 0, 1, "GAE lambda")                               \
  X(double, ent_coef, 0.0, 0, kNoLimit, "entropy bonus weight")                \
  X(double, vf_coef, 0.5, 0, kNoLimit, "value loss weight")                    \
  X(double, max_grad_norm, 0.5, 0, kNoLimit, "gradient norm clip")             \
  X(bool, normalize_advantage, false, 0, 1, "normalise advantages per update") \
  X(double, rms_prop_alpha, 0.99, 0, 1, "RMSprop smoothing")                   \
  X(double, rms_prop_eps, 1e-5, 0, kNoLimit, "RMSprop epsilon")

// DQN (Mnih et al. 2015), Stable-Baselines3's defaults.
#define LCIO_DQN_OPTIONS(X)                                                                    \
  LCIO_NETWORK_OPTIONS(X)                                                                      \
  X(double, learning_rate, 1e-4, 0, 1, "Adam step size")                                       \
  X(int64_t, buffer_size, 1000000, 1, kMaxCount, "replay buffer capacity (at most timesteps)") \
  X(int64_t, learning_starts, 100, 0, kMaxCount, "steps before the first update")              \
  X(int, batch_size, 32, 1, kMaxCount, "minibatch size")                                       \
  X(double, tau, 1.0, 0, 1, "target network soft update coefficient")                          \
  X(int64_t, train_freq, 4, 1, kMaxCount, "environment steps between updates")                 \
  X(int64_t, gradient_steps, 1, 0, kMaxCount, "gradient steps per update")                     \
  X(int64_t, target_update_interval, 10000, 1, kMaxCount, "steps between target updates")      \
  X(double, exploration_fraction, 0.1, 0, 1, "share of training over which epsilon decays")    \
  X(double, exploration_initial_eps, 1.0, 0, 1, "initial epsilon")                             \
  X(double, exploration_final_eps, 0.05, 0, 1, "final epsilon")                                \
  X(double, max_grad_norm, 10, 0, kNoLimit, "gradient norm clip")                              \
  X(double, adam_eps, 1e-8, 0, kNoLimit, "Adam epsilon")

// The Lagrangian settings of the rc- variants (docs/training.md).
#define LCIO_LAGRANGE_OPTIONS(X)                                                                  \
  X(double, cost_limit_latency, 0.02, 0, kNoLimit, "latency cost per episode the policy aims at") \
  X(double, cost_limit_money, 0.02, 0, kNoLimit, "money cost per episode the policy aims at")     \
  X(double, lagrange_lr, 0.5, 0, kNoLimit, "multiplier step size (integral gain)")                \
  X(double, lagrange_kp, 0, 0, kNoLimit, "multiplier proportional gain")                          \
  X(double, lagrange_kd, 0, 0, kNoLimit, "multiplier derivative gain")                            \
  X(double, lagrange_init, 0, 0, kNoLimit, "initial multiplier")                                  \
  X(double, lagrange_max, 100, 0, kNoLimit, "largest multiplier")                                 \
  X(int64_t, lagrange_interval, 1024, 1, kMaxCount, "steps between multiplier updates")           \
  X(double, violation_cost, 0, 0, kNoLimit, "extra cost on the step that first breaks a budget")  \
  X(double, shield_penalty, 0, 0, kNoLimit,                                                       \
    "> 0: the budget shield replaces proposals that do not fit, as in serving, and each "         \
    "replaced proposal costs this much reward; 0: proposals are taken as they are")

// What the policy observes (env::ObservationLayout); all of the first three
// false gives the reference layout.
#define LCIO_OBSERVATION_OPTIONS(X)                                                         \
  X(bool, prompt_aware, true, 0, 1, "observe each view's association with the prompt")      \
  X(bool, budget_aware, true, 0, 1, "observe the remaining budgets")                        \
  X(bool, task_one_hot, true, 0, 1, "observe the current task one-hot")                     \
  X(bool, response_aware, false, 0, 1,                                                      \
    "observe the response model's prediction for each action (the artifact then carries "   \
    "the model)")                                                                           \
  X(bool, fit_aware, false, 0, 1,                                                           \
    "observe, for each action, whether it fits the remaining budgets by the shield's rule") \
  X(bool, profile_aware, false, 0, 1,                                                       \
    "observe the request's own device and network (layout version 4)")

// How each training episode's budgets are drawn (env::BudgetDistribution,
// whose member initialisers are the defaults): X(flag, JSON pointer, member,
// help). The mean is the shared --latency_budget/--money_budget (defined in
// tools/cli_common.cc); the spread's flags are lcio-train's. Ranges: every
// figure >= 0, extreme_share in [0, 1] (BudgetDistribution::Validate).
#define LCIO_BUDGET_MEAN_OPTIONS(X)                                                \
  X(latency_budget, "/fixed/latency_s", fixed.latency_s, "mean latency budget, s") \
  X(money_budget, "/fixed/money_usd", fixed.money_usd, "mean money budget, USD")
#define LCIO_BUDGET_SPREAD_OPTIONS(X)                                                              \
  X(budget_low_latency, "/low/latency_s", low.latency_s, "low end of training latency budgets, s") \
  X(budget_low_money, "/low/money_usd", low.money_usd, "low end of training money budgets, USD")   \
  X(budget_high_latency, "/high/latency_s", high.latency_s,                                        \
    "high end of training latency budgets, s")                                                     \
  X(budget_high_money, "/high/money_usd", high.money_usd,                                          \
    "high end of training money budgets, USD")                                                     \
  X(budget_sd_latency, "/stddev/latency_s", stddev.latency_s,                                      \
    "standard deviation of latency budgets, s")                                                    \
  X(budget_sd_money, "/stddev/money_usd", stddev.money_usd,                                        \
    "standard deviation of money budgets, USD")                                                    \
  X(budget_extreme_share, "/extreme_share", extreme_share,                                         \
    "mixture: share of episodes with extreme budgets")
// Training draws from the mixture unless told otherwise (--budget_dist).
inline constexpr env::BudgetDistribution::Kind kDefaultBudgetKind =
    env::BudgetDistribution::Kind::kMixture;

#define LCIO_DECLARE_OPTION_MEMBER(type, name, value, lo, hi, help) type name = value;
struct PpoConfig {
  LCIO_PPO_OPTIONS(LCIO_DECLARE_OPTION_MEMBER)
};
struct A2cConfig {
  LCIO_A2C_OPTIONS(LCIO_DECLARE_OPTION_MEMBER)
};
struct DqnConfig {
  LCIO_DQN_OPTIONS(LCIO_DECLARE_OPTION_MEMBER)
};
struct LagrangeConfig {
  LCIO_LAGRANGE_OPTIONS(LCIO_DECLARE_OPTION_MEMBER)
};
struct ObservationConfig {
  LCIO_OBSERVATION_OPTIONS(LCIO_DECLARE_OPTION_MEMBER)
};
#undef LCIO_DECLARE_OPTION_MEMBER

// The three learners; each has an rc- (Lagrangian, resource-constrained)
// variant that adds LagrangeConfig.
enum class Learner { kPpo, kA2c, kDqn };
struct AlgoSpec {
  Learner learner;
  bool constrained;
};
// "ppo", "a2c", "dqn", "rc-ppo", "rc-a2c", "rc-dqn"; InvalidArgument naming
// the known ones otherwise.
absl::StatusOr<AlgoSpec> ParseAlgo(const std::string& algo);
std::vector<std::string> KnownAlgorithms();

// One row of a table, for the loops that validate, read, write and list.
// Values travel as double (the artifact records every hyperparameter as a
// JSON number); `set` rounds integers and maps nonzero to true.
template <typename Config>
struct OptionRow {
  const char* name;
  const char* type;  // "double", "int", "int64_t", "bool"
  double default_value, lowest, highest;
  const char* help;
  double (*get)(const Config&);
  void (*set)(Config&, double);
};

template <typename Config>
const std::vector<OptionRow<Config>>& OptionTable();
template <>
const std::vector<OptionRow<PpoConfig>>& OptionTable<PpoConfig>();
template <>
const std::vector<OptionRow<A2cConfig>>& OptionTable<A2cConfig>();
template <>
const std::vector<OptionRow<DqnConfig>>& OptionTable<DqnConfig>();
template <>
const std::vector<OptionRow<LagrangeConfig>>& OptionTable<LagrangeConfig>();
template <>
const std::vector<OptionRow<ObservationConfig>>& OptionTable<ObservationConfig>();

// A row of the budget tables. `shared_flag`: the flag is tools/cli_common's.
struct BudgetRow {
  const char* flag;
  const char* json_pointer;
  const char* help;
  bool shared_flag;
  double (*get)(const env::BudgetDistribution&);
  void (*set)(env::BudgetDistribution&, double);
};
const std::vector<BudgetRow>& BudgetTable();

// The training budget distribution by default: env::BudgetDistribution's
// figures, drawn as kDefaultBudgetKind.
env::BudgetDistribution DefaultBudgetDistribution();

// Checks `value` against a row: finite, within [lowest, highest], an integer
// for integer rows. The message names `what` (e.g. "hyperparameter
// clip_range"), the value and the rule.
absl::Status CheckOptionValue(const std::string& what, const char* type, double value,
                              double lowest, double highest);

// Sets the row `name` of `config` after checking the value; NotFound when the
// table has no such row.
template <typename Config>
absl::Status SetOption(Config* config, const std::string& name, double value,
                       const std::string& what_prefix);
// Every row of `config`, by name (as the artifact's JSON records them).
template <typename Config>
std::map<std::string, double> OptionValues(const Config& config);
// The rows' names, in table order.
template <typename Config>
std::vector<std::string> OptionNames();
// Validates every row of `config`.
template <typename Config>
absl::Status CheckOptions(const Config& config, const std::string& what_prefix);

// A Markdown table of every option (docs/training.md's list, generated by
// lcio-train --print_options_markdown).
std::string OptionsMarkdown();

}  // namespace lcio::policy
