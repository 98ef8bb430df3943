// lcio-train: trains a PPO, A2C, DQN or Lagrangian resource-constrained
// (rc-*) policy on M4A1 and writes a policy artifact. Every flag has a
// default: `lcio-train --algo rc-a2c --timesteps 30000 --seed 1 --out policy.pt`
// works from the repository root.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli_common.h"
#include "cli_help.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/message.h"
#include "lcio/env/baselines.h"
#include "lcio/env/evaluator.h"
#include "lcio/policy/train_config.h"
#include "lcio/policy/trainer.h"

ABSL_FLAG(std::string, algo, lcio::policy::TrainOptions{}.algo,
          "ppo, a2c, dqn, rc-ppo, rc-a2c or rc-dqn");
ABSL_FLAG(int64_t, timesteps, lcio::policy::TrainOptions{}.timesteps,
          "environment steps to train for");
ABSL_FLAG(uint64_t, seed, lcio::policy::TrainOptions{}.seed,
          "training seed (network init, sampling, episodes, budgets)");
ABSL_FLAG(
    std::string, out, "policy.pt",
    "where to write the policy artifact (a regular file or absent; written whole, then renamed)");
ABSL_FLAG(std::string, config, "",
          "JSON training configuration (docs/training.md); flags given on the command line win "
          "over it");
ABSL_FLAG(bool, print_options_markdown, false,
          "print every training option (the list in docs/training.md) and exit");
ABSL_FLAG(std::string, torch_device, lcio::policy::TrainOptions{}.device,
          "LibTorch device: auto, cpu, cuda or cuda:N");
ABSL_FLAG(int, torch_threads, lcio::policy::TrainOptions{}.torch_threads,
          "LibTorch intra-op threads");
ABSL_FLAG(std::string, split, "random",
          "random: train on the training side of --split_seed/--test_ratio (or "
          "--train_ids/--test_ids) and evaluate on the test side; none: train on every episode");
ABSL_FLAG(std::string, budget_dist,
          lcio::env::BudgetDistribution::KindName(lcio::policy::kDefaultBudgetKind),
          "training budgets per episode: fixed (--latency_budget/--money_budget), uniform "
          "(between low and high), normal (around the budgets, clipped to [low, high]) or "
          "mixture (normal, with --budget_extreme_share near low or high)");
// The distribution's spread and the observation options, from their tables
// (lcio/policy/train_config.h).
#define LCIO_BUDGET_FLAG(flag, pointer, member, help) \
  ABSL_FLAG(double, flag, lcio::env::BudgetDistribution{}.member, help);
LCIO_BUDGET_SPREAD_OPTIONS(LCIO_BUDGET_FLAG)
#undef LCIO_BUDGET_FLAG
#define LCIO_OBSERVATION_FLAG(type, name, value, lo, hi, help) ABSL_FLAG(type, name, value, help);
LCIO_OBSERVATION_OPTIONS(LCIO_OBSERVATION_FLAG)
#undef LCIO_OBSERVATION_FLAG
ABSL_FLAG(std::string, training_profiles, "",
          "draw each training episode's device and network: all (every device x network of the "
          "catalog, with --profiles) or device/network;device/network...; implies "
          "--profile_aware. Empty: every episode uses --device and --network");
ABSL_FLAG(int32_t, cross_fit_folds, lcio::policy::TrainOptions{}.cross_fit_folds,
          "score each training episode with a kNN fitted on the other folds (>= 2), as the test "
          "is; 1: one kNN on every training episode");
ABSL_FLAG(double, fallback_validation_share, lcio::policy::TrainOptions{}.fallback_validation_share,
          "> 0: hold this share of the training episodes out of learning and serve the network "
          "only per device x network x budget where it beats the best fixed action on them "
          "(the validated fallback, docs/training.md); 0: the network everywhere");
ABSL_FLAG(std::string, fallback_fixed_action, lcio::policy::TrainOptions{}.fallback_fixed_action,
          "with --fallback_validation_share > 0: per_cell (each device x network x budget's best "
          "fixed action), anchored (one for all cells unless validation confirms a cell's own), "
          "anchored_per_network or anchored_per_network_budget (one per network, per network x "
          "budget)");
ABSL_FLAG(std::string, progress, "auto",
          "progress display: auto (bar on a terminal), bar, lines, off");
ABSL_FLAG(int64_t, log_every, 0, "steps between progress reports (0: about 50 per run)");
ABSL_FLAG(bool, evaluate, true,
          "evaluate on the test side at the end (scored by the training-side kNN: in-sample)");
ABSL_FLAG(bool, compare_baselines, false,
          "with --evaluate, also Greedy and the exhaustive Oracle on the test side (slow; "
          "lcio-eval compares under held-out scorers)");
ABSL_FLAG(std::vector<std::string>, hp, {},
          "hyperparameter overrides, name=value,... (also --NAME VALUE for each hyperparameter "
          "of the algorithm; --print_options_markdown lists them)");

namespace {

using namespace lcio;

int Fail(const absl::Status& status) {
  std::cerr << "lcio-train: " << status << "\n";
  return cli::ExitStatus(status);
}

// Every hyperparameter name of every algorithm's table: lcio-train takes
// --NAME VALUE for each. A name means different things (and has different
// defaults) for different learners, so these are not absl flags; they are
// taken off the command line before absl parses the rest.
std::vector<std::string> HyperparameterNames() {
  std::vector<std::string> names;
  for (const std::string& algo : policy::KnownAlgorithms()) {
    const std::map<std::string, double> defaults = *policy::DefaultHyperparameters(algo);
    for (const auto& [name, value] : defaults)
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

// Removes --NAME=VALUE and --NAME VALUE for every hyperparameter name from
// argv (before "--"), returning them in command-line order.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> TakeHyperparameterArgs(
    int* argc, char** argv) {
  const std::vector<std::string> names = HyperparameterNames();
  std::vector<std::pair<std::string, std::string>> taken;
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      while (i < *argc) argv[out++] = argv[i++];
      break;
    }
    const size_t dashes = arg.rfind("--", 0) == 0 ? 2 : arg.rfind("-", 0) == 0 ? 1 : 0;
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(dashes, eq == std::string::npos ? eq : eq - dashes);
    if (dashes == 0 || std::find(names.begin(), names.end(), name) == names.end()) {
      argv[out++] = argv[i];
      continue;
    }
    if (eq != std::string::npos) {
      taken.push_back({name, arg.substr(eq + 1)});
    } else if (i + 1 < *argc) {
      taken.push_back({name, argv[++i]});
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, ": missing value"));
    }
  }
  *argc = out;
  argv[out] = nullptr;
  return taken;
}

absl::StatusOr<double> ParseNumber(const std::string& name, const std::string& text) {
  double value;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value))
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " = \"", data::Shorten(text, 64), "\": expected a finite number"));
  return value;
}

absl::StatusOr<std::vector<env::ProfilePair>> ParseProfiles(const std::string& text) {
  std::vector<env::ProfilePair> pairs;
  for (const std::string& item : std::vector<std::string>(absl::StrSplit(text, ';'))) {
    std::vector<std::string> parts = absl::StrSplit(item, absl::MaxSplits('/', 1));
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty())
      return absl::InvalidArgumentError(absl::StrCat(
          "--training_profiles item \"", data::Shorten(item, 64), "\": expected device/network"));
    pairs.push_back({parts[0], parts[1]});
  }
  return pairs;
}

// The defaults, then --config, then every flag given on the command line
// (cli::ApplyFileThenFlags), then the hyperparameter flags.
absl::StatusOr<policy::TrainOptions> OptionsFromFlags(
    const std::vector<std::pair<std::string, std::string>>& hyperparameter_args) {
  policy::TrainOptions options;
  auto set = [](auto* field, const auto& flag) {
    return [field, &flag] {
      *field = absl::GetFlag(flag);
      return absl::OkStatus();
    };
  };
  env::BudgetDistribution& b = options.budgets;
  std::vector<cli::FlagOverride> overrides = {
      {"algo", set(&options.algo, FLAGS_algo)},
      {"timesteps", set(&options.timesteps, FLAGS_timesteps)},
      {"seed", set(&options.seed, FLAGS_seed)},
      {"torch_device", set(&options.device, FLAGS_torch_device)},
      {"torch_threads", set(&options.torch_threads, FLAGS_torch_threads)},
      {"cross_fit_folds", set(&options.cross_fit_folds, FLAGS_cross_fit_folds)},
      {"fallback_validation_share",
       set(&options.fallback_validation_share, FLAGS_fallback_validation_share)},
      {"fallback_fixed_action", set(&options.fallback_fixed_action, FLAGS_fallback_fixed_action)},
      {"budget_dist",
       [&b] {
         auto kind = env::BudgetDistribution::ParseKind(absl::GetFlag(FLAGS_budget_dist));
         if (!kind.ok())
           return absl::InvalidArgumentError(
               absl::StrCat("--budget_dist: ", kind.status().message()));
         b.kind = *kind;
         return absl::OkStatus();
       }},
      {"training_profiles", [&options]() -> absl::Status {
         const std::string text = absl::GetFlag(FLAGS_training_profiles);
         options.all_profiles = text == "all";
         options.training_profiles.clear();
         if (options.all_profiles || text.empty()) return absl::OkStatus();
         auto pairs = ParseProfiles(text);
         if (!pairs.ok()) return pairs.status();
         options.training_profiles = *std::move(pairs);
         return absl::OkStatus();
       }}};
  overrides.push_back({"latency_budget", set(&b.fixed.latency_s, FLAGS_latency_budget)});
  overrides.push_back({"money_budget", set(&b.fixed.money_usd, FLAGS_money_budget)});
#define LCIO_BUDGET_OVERRIDE(flag, pointer, member, help) \
  overrides.push_back({#flag, set(&b.member, FLAGS_##flag)});
  LCIO_BUDGET_SPREAD_OPTIONS(LCIO_BUDGET_OVERRIDE)
#undef LCIO_BUDGET_OVERRIDE
#define LCIO_OBSERVATION_OVERRIDE(type, name, value, lo, hi, help) \
  overrides.push_back({#name, set(&options.name, FLAGS_##name)});
  LCIO_OBSERVATION_OPTIONS(LCIO_OBSERVATION_OVERRIDE)
#undef LCIO_OBSERVATION_OVERRIDE

  const bool algo_given = cli::FlagGiven("algo");
  if (algo_given) options.algo = absl::GetFlag(FLAGS_algo);
  if (auto s = cli::ApplyFileThenFlags(
          "config", absl::GetFlag(FLAGS_config),
          [&](const std::string& text) {
            return policy::ApplyTrainConfigJson(text, &options, /*keep_algo=*/algo_given);
          },
          overrides);
      !s.ok())
    return s;

  // Hyperparameters last: they belong to the algorithm decided above.
  std::vector<std::pair<std::string, std::string>> hp;
  for (const std::string& item : absl::GetFlag(FLAGS_hp)) {
    std::vector<std::string> parts = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (parts.size() != 2)
      return absl::InvalidArgumentError(
          absl::StrCat("--hp item \"", data::Shorten(item, 64), "\": expected name=value"));
    hp.push_back({parts[0], parts[1]});
  }
  hp.insert(hp.end(), hyperparameter_args.begin(), hyperparameter_args.end());
  for (size_t i = 0; i < hp.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (hp[i].first == hp[j].first)
        return absl::InvalidArgumentError(
            absl::StrCat("hyperparameter ", data::Shorten(hp[i].first, 64), " is given twice (",
                         data::Shorten(hp[j].second, 32), " and ", data::Shorten(hp[i].second, 32),
                         "): which holds would be an accident"));
  for (const auto& [name, text] : hp) {
    auto value = ParseNumber(name, text);
    if (!value.ok()) return value.status();
    if (auto s = policy::SetHyperparameter(&options, name, *value); !s.ok()) return s;
  }
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
  const std::string shielded =
      p.shield_in_training ? absl::StrFormat(" shielded %.1f%%", 100 * p.share_shield_overrides)
                           : "";
  const std::string stats = absl::StrFormat(
      "%lld/%lld steps %.0f steps/s reward %.3f cost %.3f/%.3f over %.0f%%%s%s ETA %s",
      static_cast<long long>(p.steps), static_cast<long long>(p.total_steps), rate,
      p.mean_episode_reward, p.mean_episode_cost_latency, p.mean_episode_cost_money,
      100 * p.share_over_budget, shielded, multipliers, FormatSeconds(eta));
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
  // Hyperparameter flags (--NAME VALUE, one table per algorithm) are taken
  // off the command line before abseil parses the rest.
  auto hyperparameter_args = TakeHyperparameterArgs(&argc, argv);
  if (!hyperparameter_args.ok()) return Fail(hyperparameter_args.status());
  lcio::cli::ParseCommandLine(
      argc, argv, "[flags] --out=FILE",
      "Trains a PPO, A2C, DQN or Lagrangian rc-* policy on M4A1 and writes an artifact.\n"
      "Hyperparameters are --NAME VALUE flags; --print_options_markdown lists them.\n"
      "Example: lcio-train --algo rc-a2c --timesteps 30000 --seed 1 --out policy.pt");
  if (absl::GetFlag(FLAGS_print_options_markdown)) {
    std::cout << policy::OptionsMarkdown();
    return 0;
  }
  auto options = OptionsFromFlags(*hyperparameter_args);
  if (!options.ok()) return Fail(options.status());
  // Checked again when the artifact is written; here so that a bad --out
  // fails before a long run, not after it.
  if (absl::Status out = data::CheckReplaceableOutput(absl::GetFlag(FLAGS_out)); !out.ok())
    return Fail(absl::InvalidArgumentError(absl::StrCat("--out: ", out.message())));
  if (absl::Status s = data::CheckOutputIsNoInput("--out", absl::GetFlag(FLAGS_out),
                                                  cli::InputFiles({absl::GetFlag(FLAGS_config)}));
      !s.ok())
    return Fail(s);
  auto dataset = cli::LoadDataset();
  if (!dataset.ok()) return Fail(dataset.status());
  auto config = cli::SimulatorConfigFromFlags();
  if (!config.ok()) return Fail(config.status());

  const std::string split_mode = absl::GetFlag(FLAGS_split);
  env::Split split;
  if (split_mode == "none") {
    // Explicit ids ask for a split: ignored here, the run would train on all.
    if (!absl::GetFlag(FLAGS_train_ids).empty() || !absl::GetFlag(FLAGS_test_ids).empty())
      return Fail(absl::InvalidArgumentError(
          "--split = \"none\" trains on every episode: --train_ids and --test_ids need "
          "--split random"));
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
        absl::StrCat("--split = \"", data::Shorten(split_mode, 64), "\": must be random or none")));
  }
  const bool evaluate = absl::GetFlag(FLAGS_evaluate) && !split.test.empty();
  if (evaluate) options->evaluation_episodes = split.test;

  const std::string progress = absl::GetFlag(FLAGS_progress);
  if (progress != "auto" && progress != "bar" && progress != "lines" && progress != "off")
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--progress = \"", data::Shorten(progress, 64), "\": must be auto, bar, lines or off")));
  const bool bar = progress == "bar" || (progress == "auto" && isatty(STDERR_FILENO));
  if (progress != "off") {
    const int64_t every = absl::GetFlag(FLAGS_log_every);
    options->log_every_steps = every > 0 ? every : std::max<int64_t>(1, options->timesteps / 50);
    options->on_progress = [bar](const policy::TrainProgress& p) { PrintProgress(p, bar); };
  }

  const std::string out = absl::GetFlag(FLAGS_out);
  std::cerr << "lcio-train: " << data::Shorten(options->algo, 64) << ", " << options->timesteps
            << " steps, seed " << options->seed << ", " << split.train.size()
            << " training episodes" << (split_mode == "none" ? " (all)" : "") << ", device "
            << config->device << ", network " << config->network << "\n";
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
  if (summary->shield_in_training)
    std::cout << absl::StrFormat(", turns shielded %.1f%%", 100 * summary->share_shield_overrides);
  if (!summary->multipliers.empty())
    std::cout << absl::StrFormat(", multipliers %.3f (latency) %.3f (money)",
                                 summary->multipliers[0], summary->multipliers[1]);
  if (!summary->fallback_description.empty())
    std::cout << "\nvalidated fallback: " << summary->fallback_description;
  std::cout << "\nwrote " << out << "\n";

  if (evaluate) {
    const env::Budget budget = options->budgets.fixed;
    std::cout << "\nTest side: " << split.test.size() << " episodes, budgets " << budget.latency_s
              << " s / " << budget.money_usd
              << " USD; scored by the training-side kNN (in-sample: lcio-eval scores held out)\n\n"
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
    // The Oracle's exhaustive search costs seconds: only when asked.
    if (!absl::GetFlag(FLAGS_compare_baselines)) return 0;
    auto simulator = env::Simulator::Create(*dataset, split.train, *config);
    if (!simulator.ok()) return Fail(simulator.status());
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
