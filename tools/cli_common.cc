#include "cli_common.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/flags/internal/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli_help.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/message.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, data, "", "M4A1 JSON file (default: the embedded data/M4A1.json)");
ABSL_FLAG(std::string, profiles, "",
          "JSON file adding or replacing device/network/LLM/price profiles");
ABSL_FLAG(std::string, device, "Jetson TX2", "local device profile");
ABSL_FLAG(std::string, network, "Wired", "network profile to the cloud LLM");
ABSL_FLAG(double, latency_budget, lcio::env::Budget{}.latency_s,
          "per-conversation latency budget, seconds");
ABSL_FLAG(double, money_budget, lcio::env::Budget{}.money_usd,
          "per-conversation money budget, USD");
ABSL_FLAG(double, alpha, 1.0, "reward weight of the response score");
ABSL_FLAG(double, beta_association, 1.0 / 3, "reward weight of the view association");
ABSL_FLAG(double, beta_latency, 1.0 / 3, "reward weight of the normalised latency");
ABSL_FLAG(double, beta_usage, 1.0 / 3, "reward weight of the normalised money");
ABSL_FLAG(int, time_span, 5, "turns in the observation window, 1 to 1000");
ABSL_FLAG(int, k_neighbors, 5, "k of the kNN response estimator");
ABSL_FLAG(std::string, knn_rule, "tie_inclusive",
          "kNN neighbour rule: tie_inclusive (lcio) or scikit_kd_tree (only to reproduce the "
          "original implementation's figures; see docs/simulator.md)");
ABSL_FLAG(std::string, response_model, "knn",
          "the decision model's response family, fitted on the training side: knn (the "
          "history-window kNN), task_action (history-free task x action means) or pessimistic "
          "(the smaller of the two); what a trained policy optimises and Greedy decides with "
          "(docs/evaluation.md)");
ABSL_FLAG(std::vector<std::string>, refusal_phrases,
          std::vector<std::string>({"sorry", "I don't have", "can't"}),
          "answers containing any of these score 0 (comma-separated)");
ABSL_FLAG(uint64_t, split_seed, 1, "seed of the first random 80/20 split");
ABSL_FLAG(double, test_ratio, 0.2, "share of episodes in the test side");
ABSL_FLAG(std::vector<std::string>, train_ids, {}, "explicit train episode ids (with --test_ids)");
ABSL_FLAG(std::vector<std::string>, test_ids, {}, "explicit test episode ids (with --train_ids)");

namespace lcio::cli {

std::string DefaultDataPath() { return DefaultDataFile("data/M4A1.json"); }

std::vector<std::string> InputFiles(std::vector<std::string> more) {
  const std::string data = absl::GetFlag(FLAGS_data);
  more.push_back(data.empty() ? DefaultDataPath() : data);
  more.push_back(absl::GetFlag(FLAGS_profiles));
  return more;
}

absl::StatusOr<data::Dataset> LoadDataset() {
  std::string path = absl::GetFlag(FLAGS_data);
  if (path.empty()) path = DefaultDataPath();
  return data::LoadM4A1File(path);
}

absl::StatusOr<env::SimulatorConfig> SimulatorConfigFromFlags() {
  env::SimulatorConfig config;
  if (const std::string file = absl::GetFlag(FLAGS_profiles); !file.empty())
    if (auto s = config.catalog.MergeJsonFile(file); !s.ok()) return s;
  config.device = absl::GetFlag(FLAGS_device);
  config.network = absl::GetFlag(FLAGS_network);
  config.weights = {absl::GetFlag(FLAGS_alpha), absl::GetFlag(FLAGS_beta_association),
                    absl::GetFlag(FLAGS_beta_latency), absl::GetFlag(FLAGS_beta_usage)};
  // Checked here, naming the flag, before NaN or inf spreads into every
  // figure of a run that exits 0.
  const std::pair<const char*, double> weights[] = {
      {"alpha", config.weights.alpha},
      {"beta_association", config.weights.beta_association},
      {"beta_latency", config.weights.beta_latency},
      {"beta_usage", config.weights.beta_usage}};
  for (const auto& [flag, value] : weights)
    if (!(std::abs(value) <= env::kMaxRewardWeight))
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag, " = ", data::ExactNumber(value), ": must be a finite number in [-",
          env::kMaxRewardWeight, ", ", env::kMaxRewardWeight, "]"));
  const std::pair<const char*, double> budgets[] = {
      {"latency_budget", absl::GetFlag(FLAGS_latency_budget)},
      {"money_budget", absl::GetFlag(FLAGS_money_budget)}};
  for (const auto& [flag, value] : budgets)
    if (!(std::isfinite(value) && value >= 0))
      return absl::InvalidArgumentError(absl::StrCat("--", flag, " = ", data::ExactNumber(value),
                                                     ": must be a finite number >= 0"));
  config.time_span = absl::GetFlag(FLAGS_time_span);
  config.k_neighbors = absl::GetFlag(FLAGS_k_neighbors);
  config.refusal.phrases = absl::GetFlag(FLAGS_refusal_phrases);
  const std::string rule = absl::GetFlag(FLAGS_knn_rule);
  if (rule == "tie_inclusive") {
    config.knn_rule = env::NeighbourRule::kTieInclusive;
  } else if (rule == "scikit_kd_tree") {
    config.knn_rule = env::NeighbourRule::kScikitKdTree;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--knn_rule = \"", data::Shorten(rule, 64),
                                                   "\": must be tie_inclusive or scikit_kd_tree"));
  }
  auto family = env::ParseResponseModelFamily(absl::GetFlag(FLAGS_response_model));
  if (!family.ok())
    return absl::InvalidArgumentError(absl::StrCat("--", family.status().message()));
  config.response_model = *family;
  // Fail early on unknown names, with the list of known ones.
  if (auto d = config.catalog.Device(config.device); !d.ok()) return d.status();
  if (auto n = config.catalog.Network(config.network); !n.ok()) return n.status();
  return config;
}

env::Budget BudgetFromFlags() {
  return {absl::GetFlag(FLAGS_latency_budget), absl::GetFlag(FLAGS_money_budget)};
}

absl::StatusOr<std::vector<env::Split>> SplitsFromFlags(const data::Dataset& dataset, int count) {
  const auto train_text = absl::GetFlag(FLAGS_train_ids);
  const auto test_text = absl::GetFlag(FLAGS_test_ids);
  if (!train_text.empty() || !test_text.empty()) {
    auto parse = [](const std::vector<std::string>& text,
                    const char* flag) -> absl::StatusOr<std::vector<int64_t>> {
      std::vector<int64_t> ids;
      for (const auto& t : text) {
        int64_t id;
        if (!absl::SimpleAtoi(t, &id))
          return absl::InvalidArgumentError(
              absl::StrCat("--", flag, ": \"", data::Shorten(t, 64), "\" is not an episode id"));
        ids.push_back(id);
      }
      return ids;
    };
    auto train = parse(train_text, "train_ids");
    if (!train.ok()) return train.status();
    auto test = parse(test_text, "test_ids");
    if (!test.ok()) return test.status();
    auto split = env::SplitFromIds(dataset, *train, *test);
    if (!split.ok()) return split.status();
    return std::vector<env::Split>{*split};
  }
  if (count < 1 || count > kMaxSplits)
    return absl::InvalidArgumentError(
        absl::StrCat("--splits = ", count, ": must be in [1, ", kMaxSplits, "]"));
  std::vector<env::Split> splits;
  for (int i = 0; i < count; ++i) {
    auto split =
        env::RandomSplit(static_cast<int>(dataset.episodes.size()),
                         absl::GetFlag(FLAGS_split_seed) + i, absl::GetFlag(FLAGS_test_ratio));
    if (!split.ok()) return split.status();
    splits.push_back(*std::move(split));
  }
  return splits;
}

bool FlagGiven(const std::string& name) {
  // absl 20220623 keeps CommandLineFlag::IsSpecifiedOnCommandLine private; the
  // parser's own record of the command line answers the same question.
  return absl::flags_internal::WasPresentOnCommandLine(name);
}

absl::Status ApplyFileThenFlags(const std::string& file_flag, const std::string& path,
                                const std::function<absl::Status(const std::string&)>& apply_file,
                                const std::vector<FlagOverride>& overrides) {
  if (!path.empty()) {
    auto text = data::ReadRegularFile(
        path, absl::StrCat("--", file_flag, " = \"", data::Shorten(path, 256), "\""),
        "a JSON file");
    if (!text.ok()) return text.status();
    if (auto s = apply_file(*text); !s.ok())
      return absl::Status(s.code(), absl::StrCat("--", file_flag, " = \"", data::Shorten(path, 256),
                                                 "\": ", s.message()));
  }
  for (const FlagOverride& o : overrides)
    if (FlagGiven(o.flag))
      if (auto s = o.apply(); !s.ok()) return s;
  return absl::OkStatus();
}

std::string SettingsJson(const env::SimulatorConfig& config, const env::Budget& budget) {
  nlohmann::json j = {
      {"device", config.device},
      {"network", config.network},
      {"weights",
       {{"alpha", config.weights.alpha},
        {"beta_association", config.weights.beta_association},
        {"beta_latency", config.weights.beta_latency},
        {"beta_usage", config.weights.beta_usage}}},
      {"time_span", config.time_span},
      {"k_neighbors", config.k_neighbors},
      {"knn_rule",
       config.knn_rule == env::NeighbourRule::kTieInclusive ? "tie_inclusive" : "scikit_kd_tree"},
      {"response_model", env::ResponseModelFamilyName(config.response_model)},
      {"refusal_phrases", config.refusal.phrases},
      {"latency_budget_s", budget.latency_s},
      {"money_budget_usd", budget.money_usd},
  };
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace lcio::cli
