// lcio-eval: baselines, the Oracle (and trained policies) on test episodes,
// as a Markdown table and JSON.
#include <fstream>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "cli_common.h"
#include "lcio/env/baselines.h"
#include "lcio/env/evaluator.h"

ABSL_FLAG(int, splits, 10, "number of random splits (seeds --split_seed, +1, ...)");
ABSL_FLAG(std::string, shield, "both", "evaluate with the budget shield: on, off or both");
ABSL_FLAG(bool, fixed, true, "include every fixed action");
ABSL_FLAG(bool, oracle, true, "include the Oracle");
ABSL_FLAG(std::string, format, "markdown", "stdout format: markdown or json");
ABSL_FLAG(std::string, json_out, "", "also write the JSON report to this file");
ABSL_FLAG(uint64_t, seed, 1, "seed of randomised baselines");

namespace {

int Fail(const absl::Status& status) {
  std::cerr << "lcio-eval: " << status << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Evaluates baselines and the Oracle on M4A1 test splits.\n"
      "Run with no flags from the repository root for the reference defaults.");
  absl::ParseCommandLine(argc, argv);
  using namespace lcio;
  const std::string shield_mode = absl::GetFlag(FLAGS_shield);
  if (shield_mode != "on" && shield_mode != "off" && shield_mode != "both")
    return Fail(absl::InvalidArgumentError("--shield = \"" + shield_mode +
                                           "\": must be on, off or both"));
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format != "markdown" && format != "json")
    return Fail(absl::InvalidArgumentError("--format = \"" + format +
                                           "\": must be markdown or json"));
  auto dataset = cli::LoadDataset();
  if (!dataset.ok()) return Fail(dataset.status());
  auto config = cli::SimulatorConfigFromFlags();
  if (!config.ok()) return Fail(config.status());
  auto splits = cli::SplitsFromFlags(*dataset, absl::GetFlag(FLAGS_splits));
  if (!splits.ok()) return Fail(splits.status());
  const env::Budget budget = cli::BudgetFromFlags();

  std::vector<bool> shield_settings;
  if (shield_mode != "on") shield_settings.push_back(false);
  if (shield_mode != "off") shield_settings.push_back(true);

  std::vector<std::vector<env::PolicyResult>> results;
  for (size_t s = 0; s < splits->size(); ++s) {
    const env::Split& split = (*splits)[s];
    auto simulator = env::Simulator::Create(*dataset, split.train, *config);
    if (!simulator.ok()) return Fail(simulator.status());
    std::vector<env::PolicyResult> row;
    auto policies = env::MakeBaselines(*simulator, absl::GetFlag(FLAGS_fixed),
                                       absl::GetFlag(FLAGS_oracle));
    for (auto& policy : policies) {
      const bool is_oracle = policy->name() == "Oracle";
      for (bool shield : shield_settings) {
        // The Oracle plans within the budgets: the shield has nothing to do.
        if (is_oracle && shield != shield_settings.front()) continue;
        env::EvalOptions options{budget, shield, absl::GetFlag(FLAGS_seed)};
        row.push_back(env::EvaluatePolicy(**simulator, *dataset, split.test, *policy, options));
      }
    }
    results.push_back(std::move(row));
  }
  const auto rows = env::Aggregate(results);
  double oracle_reward = 0;
  for (const auto& r : rows)
    if (r.name == "Oracle") oracle_reward = r.reward;
  const std::string json = env::ToJson(rows, cli::SettingsJson(*config, budget));
  if (format == "json") {
    std::cout << json << "\n";
  } else {
    std::cout << "lcio-eval: " << dataset->source << ", " << splits->size() << " split(s), device "
              << config->device << ", network " << config->network << ", budgets "
              << budget.latency_s << " s / " << budget.money_usd << " USD\n\n"
              << env::ToMarkdown(rows, oracle_reward);
  }
  if (const std::string out = absl::GetFlag(FLAGS_json_out); !out.empty()) {
    std::ofstream file(out);
    file << json << "\n";
    if (!file) return Fail(absl::UnavailableError("cannot write " + out));
  }
  return 0;
}
