// lcio-eval: baselines, the Oracle and trained policies on test episodes over
// K splits, as a Markdown table and JSON; optionally a budget sweep written as
// CSV and drawn with gnuplot (the cost-quality frontier).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "cli_common.h"
#include "cli_help.h"
#include "lcio/data/atomic_file.h"
#include "lcio/env/baselines.h"
#include "lcio/env/evaluator.h"
#include "lcio/env/task_rule.h"
#include "nlohmann/json.hpp"
#ifdef LCIO_WITH_POLICY
#include "lcio/data/message.h"
#include "lcio/policy/artifact_io.h"
#include "lcio/policy/artifact_policy.h"
#include "lcio/policy/trainer.h"
#endif

ABSL_FLAG(int, splits, 10, "number of random splits, 1 to 1000 (seeds --split_seed, +1, ...)");
ABSL_FLAG(std::string, shield, "both", "evaluate with the budget shield: on, off or both");
ABSL_FLAG(bool, fixed, true, "include every fixed action");
ABSL_FLAG(bool, task_rule, false,
          "add the candidate \"Task rule\": one fixed action per task, chosen on each split's "
          "training side for the worst case over the held-out scorers "
          "(env/include/lcio/env/task_rule.h), and the reference \"Task rule (hindsight)\": the "
          "best such rule chosen on the test side, under the held-out scorers (not in sweeps)");
ABSL_FLAG(bool, oracle, true, "include the Oracle");
ABSL_FLAG(std::vector<std::string>, algos, {},
          "train these algorithms on each split's training side and evaluate them "
          "(ppo,a2c,dqn,rc-ppo,rc-a2c,rc-dqn)");
ABSL_FLAG(int64_t, timesteps, 30000, "training timesteps per algorithm and split (--algos)");
ABSL_FLAG(uint64_t, train_seed, 1, "training seed (--algos)");
ABSL_FLAG(std::string, train_config, "",
          "training configuration for --algos: the JSON file lcio-train --config reads "
          "(hyperparameters, budget distribution...); --timesteps, --train_seed, "
          "--latency_budget and --money_budget win when given, the algorithm comes from --algos");
ABSL_FLAG(std::vector<std::string>, policy, {},
          "policy artifacts to evaluate as they are, costed with the profiles they carry "
          "(--profiles on top) (note: an artifact trained on the whole data set has seen the "
          "test episodes); a path with {split} is one artifact per split, {split} replaced by "
          "the split seed (as --save_policies writes them): each must record that split's "
          "training side, and its rows are then held out");
ABSL_FLAG(std::string, save_policies, "",
          "with --algos: write each split's trained policy to DIR/<algo>_split<seed>.pt, "
          "recording the split it was trained on (for --policy=DIR/<algo>_split{split}.pt)");
ABSL_FLAG(std::vector<std::string>, scorers,
          std::vector<std::string>({"in_sample", "held_out", "cross_fit", "task_action"}),
          "what scores the test episodes (docs/evaluation.md): in_sample (the training-side "
          "--response_model the decision makers were fitted on; labelled, decides nothing), "
          "held_out (kNN fitted "
          "on the test side), cross_fit (test-side kNN without the scored episode's fold), "
          "task_action (test-side task x action means); the worst case over the held-out ones "
          "is the headline");
ABSL_FLAG(bool, model_validity, false,
          "instead of evaluating decisions: each response model family's prediction error on "
          "the held-out logged turns of every split (fitted on the training side)");
ABSL_FLAG(std::string, format, "markdown", "stdout format: markdown or json");
ABSL_FLAG(std::string, json_out, "", "also write the JSON report to this file");
ABSL_FLAG(uint64_t, seed, 1, "seed of the randomised baselines and of the cross_fit folds");
ABSL_FLAG(std::vector<std::string>, sweep_latency, {},
          "budget sweep: latency budgets in seconds (with --sweep_money)");
ABSL_FLAG(std::vector<std::string>, sweep_money, {},
          "budget sweep: money budgets in USD (with --sweep_latency)");
ABSL_FLAG(std::string, sweep_out, "sweep",
          "budget sweep: writes PREFIX_<scorer>.csv, .dat, .gp and .svg (when gnuplot is "
          "installed) per scorer");

namespace {

using namespace lcio;

int Fail(const absl::Status& status) {
  std::cerr << "lcio-eval: " << status << "\n";
  return cli::ExitStatus(status);
}

absl::StatusOr<std::vector<double>> ParseNumbers(const std::vector<std::string>& text,
                                                 const char* flag) {
  std::vector<double> out;
  for (const auto& t : text) {
    double v;
    if (!absl::SimpleAtod(t, &v) || !(v >= 0))
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": \"", data::Shorten(t, 64), "\" is not a number >= 0"));
    out.push_back(v);
  }
  return out;
}

// A row of the evaluation and what it is to the protocol.
struct Method {
  std::unique_ptr<env::Policy> policy;
  env::MethodRole role;
  // False for an artifact trained on the evaluated data set: it has seen the
  // test episodes (unless it records this split's training side: --policy
  // with {split}).
  bool held_out = true;
  // The Oracle: plans within the budgets, so it runs without the shield only,
  // and the table's "% of Oracle" refers to it.
  bool oracle = false;
  // Chosen with one shield setting (the rule in hindsight): evaluated with
  // that setting only.
  std::optional<bool> only_shield = std::nullopt;
};

// What the flags ask for, read once in main and handed down.
struct EvalSettings {
  bool fixed_actions = true, oracle = true;
  bool task_rule = false;  // --task_rule
  env::Budget budget;      // the evaluated budget (the task rule is selected at it)
  uint64_t seed = 1;       // randomised baselines and the evaluator
#ifdef LCIO_WITH_POLICY
  std::vector<policy::TrainOptions> training;  // one per --algos entry
#endif
  std::vector<std::string> artifacts;  // --policy
  std::string save_dir;                // --save_policies
  std::string data_sha256;             // of the evaluated data set (artifacts' check)
};

// The placeholder of per-split artifact paths (--policy).
constexpr char kSplitPlaceholder[] = "{split}";
bool PerSplit(const std::string& path) { return path.find(kSplitPlaceholder) != std::string::npos; }

// The seed of the i-th split (--split_seed, +1, ...), or an error when the
// splits are not seeded (--train_ids).
absl::StatusOr<uint64_t> SplitSeed(size_t i, const char* what) {
  if (!absl::GetFlag(FLAGS_train_ids).empty() || !absl::GetFlag(FLAGS_test_ids).empty())
    return absl::InvalidArgumentError(
        absl::StrCat(what, " needs seeded splits (--split_seed), not --train_ids/--test_ids"));
  return absl::GetFlag(FLAGS_split_seed) + i;
}

// `path` with {split} replaced by the i-th split's seed.
absl::StatusOr<std::string> SplitPath(const std::string& path, size_t i) {
  if (!PerSplit(path)) return path;
  auto seed = SplitSeed(i, "--policy with {split}");
  if (!seed.ok()) return seed.status();
  return absl::StrReplaceAll(path, {{kSplitPlaceholder, absl::StrCat(*seed)}});
}

// The row name of per-split artifacts: the pattern's file name without ".pt"
// (e.g. "rc-ppo_split{split}"), the same in every split.
std::string PerSplitName(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (name.size() > 3 && name.substr(name.size() - 3) == ".pt") name.resize(name.size() - 3);
  return data::Shorten(name, 128);
}

#ifdef LCIO_WITH_POLICY
// The training options of one --algos entry: the defaults, --train_config,
// then the flags given on the command line (the rule lcio-train follows).
absl::StatusOr<policy::TrainOptions> TrainOptionsFor(const std::string& algo) {
  policy::TrainOptions options;
  options.algo = algo;  // --algos names the algorithm, whatever the file says
  auto set = [](auto* field, const auto& flag) {
    return [field, &flag] {
      *field = absl::GetFlag(flag);
      return absl::OkStatus();
    };
  };
  env::BudgetDistribution& b = options.budgets;
  if (auto s = cli::ApplyFileThenFlags(
          "train_config", absl::GetFlag(FLAGS_train_config),
          [&](const std::string& text) {
            return policy::ApplyTrainConfigJson(text, &options, /*keep_algo=*/true);
          },
          {{"timesteps", set(&options.timesteps, FLAGS_timesteps)},
           {"train_seed", set(&options.seed, FLAGS_train_seed)},
           {"latency_budget", set(&b.fixed.latency_s, FLAGS_latency_budget)},
           {"money_budget", set(&b.fixed.money_usd, FLAGS_money_budget)}});
      !s.ok())
    return s;
  return options;
}
#endif

absl::StatusOr<EvalSettings> SettingsFromFlags() {
  EvalSettings settings;
  settings.fixed_actions = absl::GetFlag(FLAGS_fixed);
  settings.oracle = absl::GetFlag(FLAGS_oracle);
  settings.seed = absl::GetFlag(FLAGS_seed);
  settings.task_rule = absl::GetFlag(FLAGS_task_rule);
  settings.budget = cli::BudgetFromFlags();
  settings.artifacts = absl::GetFlag(FLAGS_policy);
  settings.save_dir = absl::GetFlag(FLAGS_save_policies);
  if (!settings.save_dir.empty()) {
    if (absl::GetFlag(FLAGS_algos).empty())
      return absl::InvalidArgumentError("--save_policies: needs --algos (what to train and save)");
    if (auto seed = SplitSeed(0, "--save_policies"); !seed.ok()) return seed.status();
  }
  // A configuration nothing trains with would be ignored, unchecked.
  if (!absl::GetFlag(FLAGS_train_config).empty() && absl::GetFlag(FLAGS_algos).empty())
    return absl::InvalidArgumentError(
        "--train_config: needs --algos (the algorithms trained with it)");
#ifdef LCIO_WITH_POLICY
  for (const std::string& algo : absl::GetFlag(FLAGS_algos)) {
    auto options = TrainOptionsFor(algo);
    if (!options.ok()) return options.status();
    settings.training.push_back(*std::move(options));
  }
#else
  if (!absl::GetFlag(FLAGS_algos).empty() || !settings.artifacts.empty())
    return absl::FailedPreconditionError(
        "--algos and --policy need lcio built with LCIO_BUILD_POLICY=ON");
#endif
  return settings;
}
#ifdef LCIO_WITH_POLICY
// Artifacts carry the profile catalog they were trained with (for data of
// other than 3 views, tables the built-in catalog lacks): evaluate with it,
// --profiles on top. Artifacts with different catalogs need --profiles.
absl::Status UseArtifactProfiles(env::SimulatorConfig* config) {
  std::vector<std::string> paths;
  for (const std::string& path : absl::GetFlag(FLAGS_policy))
    for (int i = 0; i < (PerSplit(path) ? absl::GetFlag(FLAGS_splits) : 1); ++i) {
      auto expanded = SplitPath(path, i);
      if (!expanded.ok()) return expanded.status();
      paths.push_back(*std::move(expanded));
    }
  std::string profiles_json, first;
  for (const std::string& path : paths) {
    auto metadata = policy::ReadArtifactMetadata(path);
    if (!metadata.ok()) return metadata.status();
    if (first.empty()) {
      first = path, profiles_json = metadata->profiles_json;
    } else if (metadata->profiles_json != profiles_json && absl::GetFlag(FLAGS_profiles).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--policy: ", data::Shorten(first, 256), " and ", data::Shorten(path, 256),
                       " carry different profiles; pass --profiles to cost every method alike"));
    }
  }
  if (profiles_json.empty()) return absl::OkStatus();
  env::ProfileCatalog catalog = env::ProfileCatalog::BuiltIn();
  if (auto s = catalog.MergeJson(profiles_json, first); !s.ok()) return s;
  if (const std::string file = absl::GetFlag(FLAGS_profiles); !file.empty())
    if (auto s = catalog.MergeJsonFile(file); !s.ok()) return s;
  if (auto d = catalog.Device(config->device); !d.ok()) return d.status();
  if (auto n = catalog.Network(config->network); !n.ok()) return n.status();
  config->catalog = std::move(catalog);
  return absl::OkStatus();
}
#endif

// One split's decision makers. Everything they consult is fitted on the
// split's training side (`decision_model`); CheckDecisionModelHeldOut enforces it.
absl::StatusOr<std::vector<Method>> MakeDecisionMakers(
    const data::Dataset& dataset, const env::Split& split, size_t split_index,
    const env::SimulatorConfig& config, std::shared_ptr<const env::Simulator> decision_model,
    const EvalSettings& settings) {
  std::vector<Method> m;
  for (auto& p : env::MakeModelFreeBaselines(decision_model->actions(), settings.fixed_actions)) {
    // Cloud and Random draw at random: shown for reference, not a bar to clear.
    const bool random = dynamic_cast<env::RandomPolicy*>(p.get()) != nullptr;
    m.push_back({std::move(p), random ? env::MethodRole::kReference : env::MethodRole::kBaseline});
  }
  m.push_back({std::make_unique<env::GreedyPolicy>(decision_model), env::MethodRole::kBaseline});
  if (settings.task_rule) {
    // Selected with the shield on: the service always shields.
    const env::EvalOptions selection{settings.budget, /*shield=*/true, settings.seed};
    auto selected = env::SelectTaskRule(dataset, split.train, config, selection, settings.seed);
    if (!selected.ok()) return selected.status();
    std::cerr << "task rule: "
              << env::DescribeTaskRule(selected->rule, dataset, decision_model->actions())
              << " (training-side worst margin " << selected->worst_margin
              << ", best single action " << selected->start_worst_margin << ")\n";
    m.push_back(
        {std::make_unique<env::TaskRulePolicy>(selected->rule, selected->consulted_episodes),
         env::MethodRole::kCandidate});
  }
#ifdef LCIO_WITH_POLICY
  for (const policy::TrainOptions& options : settings.training) {
    auto trained = policy::Train(dataset, split.train, config, options);
    if (!trained.ok()) return trained.status();
    if (!settings.save_dir.empty()) {
      auto seed = SplitSeed(split_index, "--save_policies");
      if (!seed.ok()) return seed.status();
      policy::TrainingSplit recorded;
      recorded.known = true;
      recorded.seed = *seed;
      recorded.test_ratio = absl::GetFlag(FLAGS_test_ratio);
      recorded.num_episodes = static_cast<int>(dataset.episodes.size());
      recorded.train_episodes = static_cast<int>(split.train.size());
      recorded.train_episodes_sha256 = policy::TrainEpisodesSha256(split.train);
      const std::string path = (std::filesystem::path(settings.save_dir) /
                                absl::StrCat(options.algo, "_split", *seed, ".pt"))
                                   .string();
      if (auto s = policy::SaveTrainResult(dataset, split.train, config, options, *trained, path,
                                           recorded);
          !s.ok())
        return s;
      std::cerr << "lcio-eval: wrote " << path << "\n";
    }
    auto encoder = env::ObservationEncoder::Create(trained->layout, trained->response_model);
    if (!encoder.ok()) return encoder.status();
    if (!trained->summary.fallback_description.empty())
      std::cerr << "lcio-eval: " << options.algo
                << " validated fallback: " << trained->summary.fallback_description << "\n";
    std::vector<int> decided_with = trained->decision_model_episodes;
    m.push_back({std::make_unique<env::FallbackPolicy>(
                     std::make_unique<policy::NetworkPolicy>(
                         options.algo, std::move(trained->network), *std::move(encoder),
                         trained->decision_model_episodes),
                     trained->fallback, std::move(decided_with)),
                 env::MethodRole::kCandidate});
  }
  for (const std::string& pattern : settings.artifacts) {
    auto path = SplitPath(pattern, split_index);
    if (!path.ok()) return path.status();
    auto engine = policy::InferenceEngine::Load(*path, "cpu");
    if (!engine.ok()) return engine.status();
    const policy::ArtifactMetadata& metadata = (*engine)->metadata();
    if (PerSplit(pattern)) {
      // One artifact per split: it must record this split's training side.
      if (auto s = policy::CheckTrainingSplit(metadata, settings.data_sha256,
                                              *SplitSeed(split_index, "--policy"),
                                              absl::GetFlag(FLAGS_test_ratio), split.train, *path);
          !s.ok())
        return s;
    }
    auto loaded = std::make_unique<policy::ArtifactPolicy>(
        *std::move(engine), PerSplit(pattern) ? PerSplitName(pattern) : "");
    if (auto s = loaded->CheckCompatible(dataset.num_views, static_cast<int>(dataset.tasks.size()));
        !s.ok())
      return s;
    // Trained on this very data set, an artifact has seen the test episodes
    // and its rows are not held out, unless it was verified above to be
    // trained on this split's training side.
    const bool seen = !PerSplit(pattern) && metadata.data_sha256 == settings.data_sha256;
    // It is shown, never ranked: a verdict on episodes it trained on would
    // read as a held-out one.
    m.push_back({std::move(loaded),
                 seen ? env::MethodRole::kNotHeldOut : env::MethodRole::kCandidate, !seen});
  }
#else
  (void)dataset, (void)config;
#endif
  for (const Method& method : m)
    if (auto s = env::CheckDecisionModelHeldOut(*method.policy, split.test); !s.ok()) return s;
  return m;
}

// The bounds that know the scorer: Greedy deciding with it (not under
// in_sample, where it is the Greedy baseline itself) and the Oracle.
std::vector<Method> MakeBounds(const std::shared_ptr<const env::Scorer>& scorer, bool held_out,
                               bool oracle) {
  std::vector<Method> m;
  if (held_out)
    m.push_back({std::make_unique<env::GreedyPolicy>(scorer, "Greedy (clairvoyant)", true),
                 env::MethodRole::kBound});
  if (oracle)
    m.push_back({std::make_unique<env::OraclePolicy>(scorer), env::MethodRole::kBound,
                 /*held_out=*/true, /*oracle=*/true});
  return m;
}

// Per scorer and split: the scorer and its bounds.
struct ScorerRun {
  env::ScorerKind kind;
  std::vector<std::shared_ptr<const env::Scorer>> by_split;
  std::vector<std::vector<Method>> bounds;  // [split]
};

// The task rule in hindsight (--task_rule): chosen on split `index`'s test
// side by its held-out scorers, at the run's budget and headline shield
// setting, and added to those scorers' bounds for that setting only; it tells
// whether any task rule could meet them all, which the training-side rule
// then tries to. Skipped, with a note, where it cannot be searched.
void AddTaskRuleInHindsight(const data::Dataset& dataset, const env::Split& split, size_t index,
                            const EvalSettings& settings, bool shield,
                            std::vector<ScorerRun>& scorers) {
  std::vector<std::shared_ptr<const env::Scorer>> held_out;
  for (const ScorerRun& run : scorers)
    if (env::IsHeldOut(run.kind)) held_out.push_back(run.by_split[index]);
  if (held_out.empty()) return;
  const env::EvalOptions options{settings.budget, shield, settings.seed};
  auto best = env::BestTaskRuleInHindsight(held_out, dataset, split.test, options);
  if (!best.ok()) {
    if (index == 0) std::cerr << "lcio-eval: left out: " << best.status().message() << "\n";
    return;
  }
  std::cerr << "task rule in hindsight: "
            << env::DescribeTaskRule(best->rule, dataset, held_out.front()->primary().actions())
            << " (test-side worst margin " << best->worst_margin << ", best single action "
            << best->start_worst_margin << ")\n";
  for (ScorerRun& run : scorers) {
    if (!env::IsHeldOut(run.kind)) continue;
    Method method{
        std::make_unique<env::TaskRulePolicy>(best->rule, split.test, "Task rule (hindsight)",
                                              /*in_hindsight=*/true),
        env::MethodRole::kHindsight};
    method.only_shield = shield;
    run.bounds[index].push_back(std::move(method));
  }
}

// Evaluates every method of every split under every scorer at one budget.
std::vector<env::ScoredRows> EvaluateAll(const data::Dataset& dataset,
                                         const std::vector<env::Split>& splits,
                                         std::vector<std::vector<Method>>& decision_makers,
                                         std::vector<ScorerRun>& scorers, const env::Budget& budget,
                                         const std::vector<bool>& shield_settings, uint64_t seed) {
  std::vector<env::ScoredRows> out;
  for (ScorerRun& run : scorers) {
    env::ScoredRows scored;
    scored.scorer = env::ScorerKindName(run.kind);
    scored.held_out = env::IsHeldOut(run.kind);
    std::vector<std::vector<env::PolicyResult>> results;
    for (size_t s = 0; s < splits.size(); ++s) {
      std::vector<env::PolicyResult> row;
      const bool first_split = s == 0;
      auto evaluate = [&](Method& method) {
        for (bool shield : shield_settings) {
          // The Oracle runs once and unshielded: the shield's reserve of cheap
          // turns would overrule plans that fit and lower the bound.
          if (method.oracle && shield != shield_settings.front()) continue;
          if (method.only_shield && shield != *method.only_shield) continue;
          if (first_split) {
            if (method.oracle) scored.oracle = static_cast<int>(scored.roles.size());
            scored.roles.push_back(method.role);
          }
          env::EvalOptions options{budget, shield && !method.oracle, seed};
          row.push_back(env::EvaluatePolicy(*run.by_split[s], dataset, splits[s].test,
                                            *method.policy, options));
        }
      };
      for (Method& method : decision_makers[s]) evaluate(method);
      for (Method& method : run.bounds[s]) evaluate(method);
      results.push_back(std::move(row));
    }
    scored.rows = env::Aggregate(results);
    out.push_back(std::move(scored));
  }
  return out;
}

// Response-model validity: each family fitted on the training side, asked
// for the test side's logged turns.
// --json_out: the same JSON as --format=json, published whole (a reader sees
// the old file or the complete new one).
absl::Status WriteJsonOut(const std::string& json) {
  const std::string out = absl::GetFlag(FLAGS_json_out);
  if (out.empty()) return absl::OkStatus();
  if (absl::Status replaceable = data::CheckReplaceableOutput(out); !replaceable.ok())
    return absl::InvalidArgumentError(absl::StrCat("--json_out: ", replaceable.message()));
  const std::string temp = data::TemporaryPathFor(out);
  {
    std::ofstream file(temp, std::ios::binary | std::ios::trunc);
    file << json << "\n";
    file.close();
    if (!file) {
      std::remove(temp.c_str());
      return absl::UnavailableError(
          absl::StrCat("--json_out = \"", data::Shorten(out, 256), "\": cannot write"));
    }
  }
  return data::PublishTemporaryFile(temp, out);
}

int PrintModelValidity(const data::Dataset& dataset, const std::vector<env::Split>& splits,
                       const env::SimulatorConfig& config, const std::string& format) {
  const std::pair<env::ResponseModelFamily, const char*> families[] = {
      {env::ResponseModelFamily::kKnn,
       "kNN over the history window (in_sample, held_out, cross_fit)"},
      {env::ResponseModelFamily::kTaskActionMeans, "task x action means (task_action)"}};
  struct MeanSd {
    double mean = 0, sd = 0;
  };
  auto mean_sd = [](const std::vector<double>& v) {
    double sum = 0, sum2 = 0;
    for (double x : v) sum += x, sum2 += x * x;
    const double n = v.size(), mean = sum / n;
    return MeanSd{mean, n > 1 ? std::sqrt(std::max(0.0, (sum2 - sum * mean) / (n - 1))) : 0.0};
  };
  auto text = [](MeanSd m) { return absl::StrFormat("%.3f ± %.3f", m.mean, m.sd); };
  auto json_of = [](MeanSd m) { return nlohmann::json{{"mean", m.mean}, {"sd", m.sd}}; };
  std::string table =
      "| family | turns | RMSE | RMSE of the training mean | concordance "
      "|\n|---|---|---|---|---|\n";
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& [family, name] : families) {
    env::SimulatorConfig c = config;
    c.response_model = family;
    std::vector<double> rmse, rmse_mean, concordance;
    int turns = 0;
    for (const env::Split& split : splits) {
      auto model = env::Simulator::Create(dataset, split.train, c);
      if (!model.ok()) return Fail(model.status());
      auto error = env::LoggedTurnError(**model, dataset, split.test);
      if (!error.ok()) return Fail(error.status());
      rmse.push_back(error->rmse);
      rmse_mean.push_back(error->rmse_of_mean);
      concordance.push_back(error->concordance);
      turns += error->turns;
    }
    absl::StrAppend(&table, "| ", name, " | ", turns, " | ", text(mean_sd(rmse)), " | ",
                    text(mean_sd(rmse_mean)), " | ", text(mean_sd(concordance)), " |\n");
    rows.push_back({{"family", env::ResponseModelFamilyName(family)},
                    {"description", name},
                    {"turns", turns},
                    {"rmse", json_of(mean_sd(rmse))},
                    {"rmse_of_training_mean", json_of(mean_sd(rmse_mean))},
                    {"concordance", json_of(mean_sd(concordance))}});
  }
  const std::string json = nlohmann::json{
      {"data", dataset.source},
      {"splits", splits.size()},
      {"model_validity", rows}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (format == "json") {
    std::cout << json << "\n";
  } else {
    std::cout << "lcio-eval: response-model validity, " << dataset.source << ", " << splits.size()
              << " split(s): fitted on each training side, predicting the test side's logged "
                 "turns (mean ± sd over splits)\n\n"
              << table;
  }
  if (absl::Status written = WriteJsonOut(json); !written.ok()) return Fail(written);
  return 0;
}

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

absl::Status WriteSweep(const std::string& prefix, const std::vector<double>& latencies,
                        const std::vector<double>& moneys,
                        const std::vector<env::ScoredRows>& grid) {
  const std::string csv_path = prefix + ".csv";
  std::ofstream csv(csv_path);
  csv << "latency_budget_s,money_budget_usd,method,shield,reward,reward_sd,percent_of_oracle,"
         "share_over_latency,share_over_money,latency_s,usage_usd,shield_overrides\n";
  std::vector<std::string> methods;
  size_t cell = 0;
  for (double l : latencies) {
    for (double m : moneys) {
      const auto& rows = grid[cell++].rows;
      const double oracle = grid[cell - 1].oracle_reward();
      for (const auto& r : rows) {
        const std::string method = r.name + (r.shielded ? " +shield" : "");
        if (std::find(methods.begin(), methods.end(), method) == methods.end())
          methods.push_back(method);
        csv << l << "," << m << "," << Quote(r.name) << "," << (r.shielded ? "on" : "off") << ","
            << r.reward << "," << r.reward_sd << "," << (oracle > 0 ? 100 * r.reward / oracle : 0)
            << "," << r.share_over_latency << "," << r.share_over_money << "," << r.latency_s << ","
            << r.money_usd << "," << r.shield_overrides << "\n";
      }
    }
  }
  csv.close();
  if (!csv) return absl::UnavailableError("cannot write " + csv_path);
  // gnuplot reads blocks: one per (latency budget, method), rows of money
  // budget, reward and the share of episodes over either budget.
  const std::string dat_path = prefix + ".dat";
  std::ofstream dat(dat_path);
  for (size_t li = 0; li < latencies.size(); ++li) {
    for (const auto& method : methods) {
      dat << "# latency " << latencies[li] << " s, " << method << "\n";
      for (size_t mi = 0; mi < moneys.size(); ++mi) {
        for (const auto& r : grid[li * moneys.size() + mi].rows) {
          if (r.name + (r.shielded ? " +shield" : "") != method) continue;
          dat << moneys[mi] << " " << r.reward << " "
              << std::max(r.share_over_latency, r.share_over_money) << "\n";
        }
      }
      dat << "\n\n";
    }
  }
  dat.close();
  if (!dat) return absl::UnavailableError("cannot write " + dat_path);
  // One column per latency budget: reward against the money budget (top) and
  // the share of episodes over a budget (bottom), one line per method.
  const std::string gp_path = prefix + ".gp";
  std::ofstream gp(gp_path);
  gp << "set terminal svg size " << 460 * latencies.size() << ",900 dynamic\nset output '" << prefix
     << ".svg'\nset key outside bottom center "
     << "horizontal font ',8'\nset logscale x\nset multiplot layout 2," << latencies.size()
     << " title 'lcio budget sweep: reward and budget violations'\n";
  for (int row = 0; row < 2; ++row) {
    for (size_t li = 0; li < latencies.size(); ++li) {
      gp << "set title 'latency budget " << latencies[li]
         << " s'\nset xlabel 'money budget (USD)'\n"
         << "set ylabel '" << (row == 0 ? "mean reward" : "share of episodes over a budget")
         << "'\nplot ";
      std::vector<std::string> plots;
      for (size_t k = 0; k < methods.size(); ++k)
        plots.push_back(absl::StrCat("'", dat_path, "' index ", li * methods.size() + k,
                                     " using 1:", row == 0 ? 2 : 3, " with linespoints title '",
                                     methods[k], "'"));
      gp << absl::StrJoin(plots, ", \\\n     ") << "\n";
    }
  }
  gp << "unset multiplot\n";
  if (!gp) return absl::UnavailableError("cannot write " + gp_path);
  gp.close();
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    const std::string command = "gnuplot '" + gp_path + "'";
    if (std::system(command.c_str()) != 0)
      return absl::InternalError("gnuplot failed on " + gp_path);
    std::cerr << "lcio-eval: wrote " << csv_path << ", " << dat_path << ", " << gp_path << ", "
              << prefix << ".svg\n";
  } else {
    std::cerr << "lcio-eval: wrote " << csv_path << " and " << gp_path
              << " (install gnuplot to draw " << prefix << ".svg)\n";
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  lcio::cli::ParseCommandLine(
      argc, argv, "[flags]",
      "Evaluates baselines, the Oracle and trained policies on M4A1 test splits.\n"
      "Run with no flags for the reference defaults.");
  const std::string shield_mode = absl::GetFlag(FLAGS_shield);
  if (shield_mode != "on" && shield_mode != "off" && shield_mode != "both")
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--shield = \"", data::Shorten(shield_mode, 64), "\": must be on, off or both")));
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format != "markdown" && format != "json")
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--format = \"", data::Shorten(format, 64), "\": must be markdown or json")));
  // Checked before the work, not after it.
  if (const std::string out = absl::GetFlag(FLAGS_json_out); !out.empty()) {
    if (absl::Status replaceable = data::CheckReplaceableOutput(out); !replaceable.ok())
      return Fail(absl::InvalidArgumentError(absl::StrCat("--json_out: ", replaceable.message())));
    std::vector<std::string> inputs = absl::GetFlag(FLAGS_policy);  // artifacts
    inputs.push_back(absl::GetFlag(FLAGS_train_config));
    if (absl::Status s = data::CheckOutputIsNoInput("--json_out", out, cli::InputFiles(inputs));
        !s.ok())
      return Fail(s);
  }
  auto sweep_l = ParseNumbers(absl::GetFlag(FLAGS_sweep_latency), "sweep_latency");
  if (!sweep_l.ok()) return Fail(sweep_l.status());
  auto sweep_m = ParseNumbers(absl::GetFlag(FLAGS_sweep_money), "sweep_money");
  if (!sweep_m.ok()) return Fail(sweep_m.status());
  if (sweep_l->empty() != sweep_m->empty())
    return Fail(absl::InvalidArgumentError("--sweep_latency and --sweep_money go together"));
  auto dataset = cli::LoadDataset();
  if (!dataset.ok()) return Fail(dataset.status());
  auto config = cli::SimulatorConfigFromFlags();
  if (!config.ok()) return Fail(config.status());
#ifdef LCIO_WITH_POLICY
  if (auto s = UseArtifactProfiles(&*config); !s.ok()) return Fail(s);
#endif
  auto splits = cli::SplitsFromFlags(*dataset, absl::GetFlag(FLAGS_splits));
  if (!splits.ok()) return Fail(splits.status());
  const env::Budget budget = cli::BudgetFromFlags();
  auto settings = SettingsFromFlags();
  if (!settings.ok()) return Fail(settings.status());
  if (!settings->artifacts.empty())
    settings->data_sha256 = data::Sha256Hex(data::ToM4A1Json(*dataset));
  if (!settings->save_dir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(settings->save_dir, error);
    if (error)
      return Fail(absl::UnavailableError(absl::StrCat("--save_policies = \"", settings->save_dir,
                                                      "\": cannot create it: ", error.message())));
  }

  if (absl::GetFlag(FLAGS_model_validity))
    return PrintModelValidity(*dataset, *splits, *config, format);

  std::vector<bool> shield_settings;
  if (shield_mode != "on") shield_settings.push_back(false);
  if (shield_mode != "off") shield_settings.push_back(true);

  std::vector<ScorerRun> scorers;
  for (const std::string& name : absl::GetFlag(FLAGS_scorers)) {
    auto kind = env::ParseScorerKind(name);
    if (!kind.ok())
      return Fail(absl::InvalidArgumentError(absl::StrCat("--scorers: ", kind.status().message())));
    scorers.push_back({*kind, {}, {}});
  }
  if (scorers.empty()) return Fail(absl::InvalidArgumentError("--scorers: name at least one"));
  std::vector<std::vector<Method>> decision_makers;
  for (const env::Split& split : *splits) {
    // The decision model: fitted on the training side only.
    auto decision_model = env::Simulator::Create(*dataset, split.train, *config);
    if (!decision_model.ok()) return Fail(decision_model.status());
    auto m = MakeDecisionMakers(*dataset, split, decision_makers.size(), *config, *decision_model,
                                *settings);
    if (!m.ok()) return Fail(m.status());
    decision_makers.push_back(*std::move(m));
    for (ScorerRun& run : scorers) {
      auto scorer =
          env::Scorer::Create(run.kind, *dataset, split, *config, settings->seed, *decision_model);
      if (!scorer.ok()) return Fail(scorer.status());
      run.bounds.push_back(MakeBounds(*scorer, env::IsHeldOut(run.kind), settings->oracle));
      run.by_split.push_back(*std::move(scorer));
    }
    // Chosen at one budget, the rule in hindsight is no reference at others.
    if (settings->task_rule && !sweep_l->empty() && decision_makers.size() == 1)
      std::cerr << "lcio-eval: sweeps leave out the task rule in hindsight (it is chosen at one "
                   "budget)\n";
    if (settings->task_rule && sweep_l->empty()) {
      AddTaskRuleInHindsight(*dataset, split, decision_makers.size() - 1, *settings,
                             shield_settings.back(), scorers);
    }
  }

  if (!sweep_l->empty()) {
    std::vector<std::vector<env::ScoredRows>> grid;  // [cell][scorer]
    for (double l : *sweep_l)
      for (double m : *sweep_m) {
        grid.push_back(EvaluateAll(*dataset, *splits, decision_makers, scorers, {l, m},
                                   shield_settings, settings->seed));
        std::cerr << "lcio-eval: swept " << l << " s / " << m << " USD\n";
      }
    for (size_t k = 0; k < scorers.size(); ++k) {
      std::vector<env::ScoredRows> cells;
      for (const auto& cell : grid) cells.push_back(cell[k]);
      const std::string prefix =
          absl::StrCat(absl::GetFlag(FLAGS_sweep_out), "_", env::ScorerKindName(scorers[k].kind));
      if (auto s = WriteSweep(prefix, *sweep_l, *sweep_m, cells); !s.ok()) return Fail(s);
    }
    return 0;
  }

  const std::vector<env::ScoredRows> scored = EvaluateAll(
      *dataset, *splits, decision_makers, scorers, budget, shield_settings, settings->seed);
  // The headline: shielded rows when the shield was on.
  const std::vector<env::WorstCaseRow> worst =
      env::WorstCase(scored, /*shielded=*/shield_settings.back());
  // The settings, plus whether each decision maker's rows are held out.
  nlohmann::json settings_json = nlohmann::json::parse(cli::SettingsJson(*config, budget));
  // What else decides the figures, so a report says how to run it again.
  const bool seeded = absl::GetFlag(FLAGS_train_ids).empty();
  settings_json["splits"] = splits->size();
  settings_json["split_seed"] =
      seeded ? nlohmann::json(absl::GetFlag(FLAGS_split_seed)) : nlohmann::json(nullptr);
  settings_json["test_ratio"] =
      seeded ? nlohmann::json(absl::GetFlag(FLAGS_test_ratio)) : nlohmann::json(nullptr);
  settings_json["seed"] = settings->seed;
  settings_json["shield"] = absl::GetFlag(FLAGS_shield);
  settings_json["decision_makers"] = nlohmann::json::array();
  for (const Method& method : decision_makers.front())
    settings_json["decision_makers"].push_back(
        {{"name", method.policy->name()}, {"held_out", method.held_out}});
  const std::string json = env::ToJson(
      scored, worst, settings_json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  if (format == "json") {
    std::cout << json << "\n";
  } else {
    std::cout << "lcio-eval: " << dataset->source << ", " << splits->size() << " split(s), device "
              << config->device << ", network " << config->network << ", budgets "
              << budget.latency_s << " s / " << budget.money_usd << " USD\n";
    std::vector<std::string> held_out;
    for (const auto& s : scored)
      if (s.held_out) held_out.push_back(s.scorer);
    for (const Method& method : decision_makers.front())
      if (!method.held_out)
        std::cout << "\nNote: " << method.policy->name()
                  << " was trained on this data set (its data_sha256 matches) and has seen the "
                     "test episodes: its rows are not held out under any scorer.\n";
    for (const std::string& pattern : settings->artifacts)
      if (PerSplit(pattern))
        std::cout << "\nNote: " << PerSplitName(pattern)
                  << ": each split's artifact records that split's training side (checked): its "
                     "rows are held out.\n";
    if (!worst.empty())
      std::cout << "\n## Worst case over the held-out scorers (" << absl::StrJoin(held_out, ", ")
                << "), shield " << (shield_settings.back() ? "on" : "off")
                << "\n\nEach method's smallest paired margin (mean over splits) over the best of "
                   "Local, the fixed actions and Greedy with the training model; a shortfall "
                   "within one standard error is a tie. A row of role hindsight was chosen on "
                   "the test side it is scored on: a reference, not a result.\n\n"
                << env::WorstCaseMarkdown(worst);
    for (const auto& s : scored)
      std::cout << "\n## Scorer " << s.scorer
                << (s.held_out ? " (held out)"
                               : " (in-sample: the model the decision makers were fitted on; "
                                 "figures under it decide nothing)")
                << "\n\n"
                << env::ToMarkdown(s.rows, s.oracle_reward());
  }
  if (absl::Status written = WriteJsonOut(json); !written.ok()) return Fail(written);
  return 0;
}
