// lcio-train: trains a PPO, A2C, DQN or Lagrangian resource-constrained
// (rc-*) policy on M4A1 and writes a policy artifact. Every flag has a
// default: `lcio-train --algo rc-a2c --timesteps 30000 --seed 1 --out policy.pt`
// works from the repository root.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli_common.h"
#include "cli_help.h"
#include "lcio/env/baselines.h"
#include "lcio/env/evaluator.h"
#include "lcio/policy/trainer.h"

ABSL_FLAG(std::string, algo, "rc-ppo", "ppo, a2c, dqn, rc-ppo, rc-a2c or rc-dqn");
ABSL_FLAG(int64_t, timesteps, 30000, "environment steps to train for");
ABSL_FLAG(uint64_t, seed, 1, "training seed (network init, sampling, episodes, budgets)");
ABSL_FLAG(std::string, out, "policy.pt", "where to write the policy artifact");
ABSL_FLAG(std::string, config, "",
          "JSON file: {\"algo\", \"timesteps\", \"seed\", \"hyperparameters\": {name: value}, "
          "\"budget_distribution\": {...}}; command-line flags override it");
ABSL_FLAG(std::string, torch_device, "auto", "LibTorch device: auto, cpu, cuda or cuda:N");
ABSL_FLAG(int, torch_threads, 1, "LibTorch intra-op threads");
ABSL_FLAG(std::string, split, "random",
          "random: train on the training side of --split_seed/--test_ratio (or "
          "--train_ids/--test_ids) and evaluate on the test side; none: train on every episode");
ABSL_FLAG(std::string, budget_dist, "mixture",
          "training budgets per episode: fixed (--latency_budget/--money_budget), uniform "
          "(between low and high), normal (around the budgets, clipped to [low, high]) or "
          "mixture (normal, with --budget_extreme_share near low or high)");
ABSL_FLAG(double, budget_low_latency, 2.0, "low end of training latency budgets, s");
ABSL_FLAG(double, budget_high_latency, 60.0, "high end of training latency budgets, s");
ABSL_FLAG(double, budget_low_money, 0.002, "low end of training money budgets, USD");
ABSL_FLAG(double, budget_high_money, 0.1, "high end of training money budgets, USD");
ABSL_FLAG(double, budget_sd_latency, 10.0, "standard deviation of latency budgets, s");
ABSL_FLAG(double, budget_sd_money, 0.02, "standard deviation of money budgets, USD");
ABSL_FLAG(double, budget_extreme_share, 0.2, "mixture: share of episodes with extreme budgets");
ABSL_FLAG(bool, prompt_aware, true, "observe each view's association with the prompt");
ABSL_FLAG(bool, budget_aware, true, "observe the remaining budgets");
ABSL_FLAG(bool, task_one_hot, true, "observe the current task one-hot");
ABSL_FLAG(bool, response_aware, false,
          "observe the response model's predicted response for each action (the artifact then "
          "carries the model)");
ABSL_FLAG(bool, fit_aware, false,
          "observe, for each action, whether it fits the remaining budgets by the shield's rule");
ABSL_FLAG(bool, profile_aware, false,
          "observe the request's own device and network: each action's latency and money and "
          "the remaining budgets relative to them (layout version 4)");
ABSL_FLAG(std::string, training_profiles, "",
          "draw each training episode's device and network: all (every device x network of the "
          "catalog, with --profiles) or device/network;device/network...; implies "
          "--profile_aware. Empty: every episode uses --device and --network");
ABSL_FLAG(int32_t, cross_fit_folds, 1,
          "score each training episode with a kNN fitted on the other folds (>= 2), as the test "
          "is; 1: one kNN on every training episode");
ABSL_FLAG(std::string, progress, "auto",
          "progress display: auto (bar on a terminal), bar, lines, off");
ABSL_FLAG(int64_t, log_every, 0, "steps between progress reports (0: about 50 per run)");
ABSL_FLAG(bool, evaluate, true, "evaluate on the test side at the end (with Greedy and Oracle)");
ABSL_FLAG(std::vector<std::string>, hp, {}, "hyperparameter overrides, name=value,...");

// One flag per hyperparameter; empty means "the algorithm's default".
#define LCIO_HP_FLAG(name) \
  ABSL_FLAG(std::string, name, "", "hyperparameter " #name " (empty: the algorithm's default)")
LCIO_HP_FLAG(learning_rate);
LCIO_HP_FLAG(n_steps);
LCIO_HP_FLAG(batch_size);
LCIO_HP_FLAG(n_epochs);
LCIO_HP_FLAG(gamma);
LCIO_HP_FLAG(gae_lambda);
LCIO_HP_FLAG(clip_range);
LCIO_HP_FLAG(ent_coef);
LCIO_HP_FLAG(vf_coef);
LCIO_HP_FLAG(max_grad_norm);
LCIO_HP_FLAG(normalize_advantage);
LCIO_HP_FLAG(adam_eps);
LCIO_HP_FLAG(rms_prop_alpha);
LCIO_HP_FLAG(rms_prop_eps);
LCIO_HP_FLAG(buffer_size);
LCIO_HP_FLAG(learning_starts);
LCIO_HP_FLAG(tau);
LCIO_HP_FLAG(train_freq);
LCIO_HP_FLAG(gradient_steps);
LCIO_HP_FLAG(target_update_interval);
LCIO_HP_FLAG(exploration_fraction);
LCIO_HP_FLAG(exploration_initial_eps);
LCIO_HP_FLAG(exploration_final_eps);
LCIO_HP_FLAG(hidden_size);
LCIO_HP_FLAG(hidden_layers);
LCIO_HP_FLAG(cost_limit_latency);
LCIO_HP_FLAG(cost_limit_money);
LCIO_HP_FLAG(lagrange_lr);
LCIO_HP_FLAG(lagrange_kp);
LCIO_HP_FLAG(lagrange_kd);
LCIO_HP_FLAG(lagrange_init);
LCIO_HP_FLAG(lagrange_max);
LCIO_HP_FLAG(lagrange_interval);

namespace {

using namespace lcio;

int Fail(const absl::Status& status) {
  std::cerr << "lcio-train: " << status << "\n";
  return 2;
}

const std::vector<std::pair<std::string, absl::Flag<std::string>*>>& HyperparameterFlags() {
#define LCIO_HP_ENTRY(name) \
  { #name, &FLAGS_##name }
  static const std::vector<std::pair<std::string, absl::Flag<std::string>*>> flags = {
      LCIO_HP_ENTRY(learning_rate),
      LCIO_HP_ENTRY(n_steps),
      LCIO_HP_ENTRY(batch_size),
      LCIO_HP_ENTRY(n_epochs),
      LCIO_HP_ENTRY(gamma),
      LCIO_HP_ENTRY(gae_lambda),
      LCIO_HP_ENTRY(clip_range),
      LCIO_HP_ENTRY(ent_coef),
      LCIO_HP_ENTRY(vf_coef),
      LCIO_HP_ENTRY(max_grad_norm),
      LCIO_HP_ENTRY(normalize_advantage),
      LCIO_HP_ENTRY(adam_eps),
      LCIO_HP_ENTRY(rms_prop_alpha),
      LCIO_HP_ENTRY(rms_prop_eps),
      LCIO_HP_ENTRY(buffer_size),
      LCIO_HP_ENTRY(learning_starts),
      LCIO_HP_ENTRY(tau),
      LCIO_HP_ENTRY(train_freq),
      LCIO_HP_ENTRY(gradient_steps),
      LCIO_HP_ENTRY(target_update_interval),
      LCIO_HP_ENTRY(exploration_fraction),
      LCIO_HP_ENTRY(exploration_initial_eps),
      LCIO_HP_ENTRY(exploration_final_eps),
      LCIO_HP_ENTRY(hidden_size),
      LCIO_HP_ENTRY(hidden_layers),
      LCIO_HP_ENTRY(cost_limit_latency),
      LCIO_HP_ENTRY(cost_limit_money),
      LCIO_HP_ENTRY(lagrange_lr),
      LCIO_HP_ENTRY(lagrange_kp),
      LCIO_HP_ENTRY(lagrange_kd),
      LCIO_HP_ENTRY(lagrange_init),
      LCIO_HP_ENTRY(lagrange_max),
      LCIO_HP_ENTRY(lagrange_interval)};
#undef LCIO_HP_ENTRY
  return flags;
}

absl::StatusOr<double> ParseNumber(const std::string& name, const std::string& text) {
  double value;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value))
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " = \"", text, "\": expected a finite number"));
  return value;
}

// Options from --config (if any), then the command line on top.
absl::StatusOr<policy::TrainOptions> OptionsFromFlags() {
  policy::TrainOptions options;
  const env::Budget center = cli::BudgetFromFlags();
  env::BudgetDistribution& b = options.budgets;
  auto kind = env::BudgetDistribution::ParseKind(absl::GetFlag(FLAGS_budget_dist));
  if (!kind.ok()) return kind.status();
  b.kind = *kind;
  b.fixed = center;
  b.low = {absl::GetFlag(FLAGS_budget_low_latency), absl::GetFlag(FLAGS_budget_low_money)};
  b.high = {absl::GetFlag(FLAGS_budget_high_latency), absl::GetFlag(FLAGS_budget_high_money)};
  b.stddev = {absl::GetFlag(FLAGS_budget_sd_latency), absl::GetFlag(FLAGS_budget_sd_money)};
  b.extreme_share = absl::GetFlag(FLAGS_budget_extreme_share);
  options.algo = absl::GetFlag(FLAGS_algo);
  options.timesteps = absl::GetFlag(FLAGS_timesteps);
  options.seed = absl::GetFlag(FLAGS_seed);

  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    std::ifstream file(path);
    if (!file) return absl::NotFoundError(absl::StrCat("--config = \"", path, "\": cannot read"));
    std::stringstream text;
    text << file.rdbuf();
    if (auto s = policy::ApplyTrainConfigJson(text.str(), &options); !s.ok())
      return absl::Status(s.code(), absl::StrCat("--config = \"", path, "\": ", s.message()));
  }
  // Explicit flags win over the config file.
  auto is_set = [](const char* name) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    // (this abseil keeps IsSpecifiedOnCommandLine private: a flag set to its
    // default value leaves the config file in charge)
    return flag != nullptr && flag->CurrentValue() != flag->DefaultValue();
  };
  if (is_set("algo")) options.algo = absl::GetFlag(FLAGS_algo);
  // The budget distribution, field by field: a config file's distribution
  // keeps what the command line does not name.
  if (is_set("latency_budget")) b.fixed.latency_s = center.latency_s;
  if (is_set("money_budget")) b.fixed.money_usd = center.money_usd;
  if (is_set("budget_dist")) b.kind = *kind;
  if (is_set("budget_low_latency")) b.low.latency_s = absl::GetFlag(FLAGS_budget_low_latency);
  if (is_set("budget_low_money")) b.low.money_usd = absl::GetFlag(FLAGS_budget_low_money);
  if (is_set("budget_high_latency")) b.high.latency_s = absl::GetFlag(FLAGS_budget_high_latency);
  if (is_set("budget_high_money")) b.high.money_usd = absl::GetFlag(FLAGS_budget_high_money);
  if (is_set("budget_sd_latency")) b.stddev.latency_s = absl::GetFlag(FLAGS_budget_sd_latency);
  if (is_set("budget_sd_money")) b.stddev.money_usd = absl::GetFlag(FLAGS_budget_sd_money);
  if (is_set("budget_extreme_share")) b.extreme_share = absl::GetFlag(FLAGS_budget_extreme_share);
  if (is_set("timesteps")) options.timesteps = absl::GetFlag(FLAGS_timesteps);
  if (is_set("seed")) options.seed = absl::GetFlag(FLAGS_seed);
  if (is_set("prompt_aware") || absl::GetFlag(FLAGS_config).empty())
    options.prompt_aware = absl::GetFlag(FLAGS_prompt_aware);
  if (is_set("budget_aware") || absl::GetFlag(FLAGS_config).empty())
    options.budget_aware = absl::GetFlag(FLAGS_budget_aware);
  if (is_set("task_one_hot") || absl::GetFlag(FLAGS_config).empty())
    options.task_one_hot = absl::GetFlag(FLAGS_task_one_hot);
  if (is_set("response_aware")) options.response_aware = absl::GetFlag(FLAGS_response_aware);
  if (is_set("fit_aware")) options.fit_aware = absl::GetFlag(FLAGS_fit_aware);
  if (is_set("profile_aware")) options.profile_aware = absl::GetFlag(FLAGS_profile_aware);
  if (is_set("training_profiles")) {
    const std::string text = absl::GetFlag(FLAGS_training_profiles);
    options.all_profiles = text == "all";
    options.training_profiles.clear();
    if (!options.all_profiles && !text.empty())
      for (const std::string& item : std::vector<std::string>(absl::StrSplit(text, ';'))) {
        std::vector<std::string> parts = absl::StrSplit(item, absl::MaxSplits('/', 1));
        if (parts.size() != 2 || parts[0].empty() || parts[1].empty())
          return absl::InvalidArgumentError(absl::StrCat(
              "--training_profiles item \"", item.substr(0, 64), "\": expected device/network"));
        options.training_profiles.push_back({parts[0], parts[1]});
      }
  }
  if (is_set("cross_fit_folds")) options.cross_fit_folds = absl::GetFlag(FLAGS_cross_fit_folds);
  for (const std::string& item : absl::GetFlag(FLAGS_hp)) {
    std::vector<std::string> parts = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (parts.size() != 2)
      return absl::InvalidArgumentError(
          absl::StrCat("--hp item \"", item, "\": expected name=value"));
    auto value = ParseNumber(parts[0], parts[1]);
    if (!value.ok()) return value.status();
    options.hyperparameters[parts[0]] = *value;
  }
  for (const auto& [name, flag] : HyperparameterFlags()) {
    const std::string text = absl::GetFlag(*flag);
    if (text.empty()) continue;
    auto value = ParseNumber(name, text);
    if (!value.ok()) return value.status();
    options.hyperparameters[name] = *value;
  }
  options.device = absl::GetFlag(FLAGS_torch_device);
  options.torch_threads = absl::GetFlag(FLAGS_torch_threads);
  return options;
}

std::string FormatSeconds(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) return absl::StrFormat("%.1fs", s);
  return absl::StrFormat("%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
}

void PrintProgress(const policy::TrainProgress& p, bool bar) {
  const double fraction = p.total_steps > 0 ? std::min(1.0, double(p.steps) / p.total_steps) : 1;
  const double rate = p.seconds > 0 ? p.steps / p.seconds : 0;
  const double eta = rate > 0 ? (p.total_steps - p.steps) / rate : 0;
  std::string multipliers;
  if (!p.multipliers.empty())
    multipliers = absl::StrFormat(" lambda %.3f/%.3f", p.multipliers[0], p.multipliers[1]);
  const std::string stats = absl::StrFormat(
      "%lld/%lld steps %.0f steps/s reward %.3f cost %.3f/%.3f over %.0f%%%s ETA %s",
      static_cast<long long>(p.steps), static_cast<long long>(p.total_steps), rate,
      p.mean_episode_reward, p.mean_episode_cost_latency, p.mean_episode_cost_money,
      100 * p.share_over_budget, multipliers, FormatSeconds(eta));
  if (bar) {
    const int width = 24, filled = static_cast<int>(fraction * width);
    std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, '-') << "] "
              << stats << "\033[K" << std::flush;
  } else {
    std::cerr << "lcio-train: " << stats << "\n";
  }
}

void PrintRow(const env::PolicyResult& r) {
  std::cout << absl::StrFormat(
      "| %-22s | %-3s | %.3f | %.3f | %6.2f | %.4f | %.3f | %3.0f%% | %3.0f%% |\n", r.name,
      r.shielded ? "on" : "off", r.response, r.association, r.latency_s, r.money_usd, r.reward,
      100 * r.share_over_latency, 100 * r.share_over_money);
}

}  // namespace

int main(int argc, char** argv) {
  lcio::cli::ParseCommandLine(
      argc, argv, "[flags] --out=FILE",
      "Trains a PPO, A2C, DQN or Lagrangian rc-* policy on M4A1 and writes an artifact.\n"
      "Example: lcio-train --algo rc-a2c --timesteps 30000 --seed 1 --out policy.pt");
  auto options = OptionsFromFlags();
  if (!options.ok()) return Fail(options.status());
  auto dataset = cli::LoadDataset();
  if (!dataset.ok()) return Fail(dataset.status());
  auto config = cli::SimulatorConfigFromFlags();
  if (!config.ok()) return Fail(config.status());

  const std::string split_mode = absl::GetFlag(FLAGS_split);
  env::Split split;
  if (split_mode == "none") {
    for (size_t e = 0; e < dataset->episodes.size(); ++e)
      split.train.push_back(static_cast<int>(e));
  } else if (split_mode == "random") {
    auto splits = cli::SplitsFromFlags(*dataset, 1);
    // Small data (a first Report export) cannot spare a test side: say how to train anyway.
    if (!splits.ok())
      return Fail(absl::Status(
          splits.status().code(),
          absl::StrCat(splits.status().message(), " (", dataset->episodes.size(),
                       " episodes in --data; --split none trains on all of them, holding none "
                       "out)")));
    split = splits->front();
  } else {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--split = \"", split_mode, "\": must be random or none")));
  }
  const bool evaluate = absl::GetFlag(FLAGS_evaluate) && !split.test.empty();
  if (evaluate) options->evaluation_episodes = split.test;

  const std::string progress = absl::GetFlag(FLAGS_progress);
  if (progress != "auto" && progress != "bar" && progress != "lines" && progress != "off")
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--progress = \"", progress, "\": must be auto, bar, lines or off")));
  const bool bar = progress == "bar" || (progress == "auto" && isatty(STDERR_FILENO));
  if (progress != "off") {
    const int64_t every = absl::GetFlag(FLAGS_log_every);
    options->log_every_steps = every > 0 ? every : std::max<int64_t>(1, options->timesteps / 50);
    options->on_progress = [bar](const policy::TrainProgress& p) { PrintProgress(p, bar); };
  }

  const std::string out = absl::GetFlag(FLAGS_out);
  std::cerr << "lcio-train: " << options->algo << ", " << options->timesteps << " steps, seed "
            << options->seed << ", " << split.train.size() << " training episodes"
            << (split_mode == "none" ? " (all)" : "") << ", device " << config->device
            << ", network " << config->network << "\n";
  auto summary = policy::TrainPolicy(*dataset, split.train, *config, *options, out);
  if (bar) std::cerr << "\n";
  if (!summary.ok()) return Fail(summary.status());
  std::cout << absl::StrFormat(
      "trained %s: %lld steps, %lld episodes, %lld gradient steps in %.2f s (%s); last 10%% "
      "of episodes: reward %.3f, over budget %.0f%%",
      summary->algo, static_cast<long long>(summary->steps),
      static_cast<long long>(summary->episodes), static_cast<long long>(summary->gradient_steps),
      summary->seconds, summary->device, summary->mean_episode_reward,
      100 * summary->share_over_budget);
  if (!summary->multipliers.empty())
    std::cout << absl::StrFormat(", multipliers %.3f (latency) %.3f (money)",
                                 summary->multipliers[0], summary->multipliers[1]);
  std::cout << "\nwrote " << out << "\n";

  if (evaluate) {
    auto simulator = env::Simulator::Create(*dataset, split.train, *config);
    if (!simulator.ok()) return Fail(simulator.status());
    const env::Budget budget = options->budgets.fixed;
    std::cout << "\nTest side: " << split.test.size() << " episodes, budgets " << budget.latency_s
              << " s / " << budget.money_usd << " USD\n\n"
              << "| policy | shield | response | association | latency s | usage USD | reward | "
                 "over latency | over money |\n|---|---|---|---|---|---|---|---|---|\n";
    for (bool shielded : {false, true}) {
      const policy::EvaluationFigures& f =
          shielded ? summary->evaluation_shielded : summary->evaluation;
      env::PolicyResult r;
      r.name = summary->algo;
      r.shielded = shielded;
      r.response = f.response;
      r.association = f.association;
      r.latency_s = f.latency_s;
      r.money_usd = f.money_usd;
      r.reward = f.reward;
      r.share_over_latency = f.share_over_latency;
      r.share_over_money = f.share_over_money;
      PrintRow(r);
    }
    env::GreedyPolicy greedy(*simulator);
    env::OraclePolicy oracle(*simulator);
    env::EvalOptions eval_options{budget, false, options->seed};
    const env::PolicyResult g =
        env::EvaluatePolicy(**simulator, *dataset, split.test, greedy, eval_options);
    const env::PolicyResult o =
        env::EvaluatePolicy(**simulator, *dataset, split.test, oracle, eval_options);
    PrintRow(g);
    PrintRow(o);
    if (o.reward > 0)
      std::cout << absl::StrFormat(
          "\n%s reaches %.1f%% of the Oracle's reward (shielded %.1f%%); Greedy %.1f%%.\n",
          summary->algo, 100 * summary->evaluation.reward / o.reward,
          100 * summary->evaluation_shielded.reward / o.reward, 100 * g.reward / o.reward);
  }
  return 0;
}
