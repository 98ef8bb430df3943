// Flags and settings shared by lcio-eval and lcio-train: which data, which
// profiles, weights, budgets and splits. One definition for every binary.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/simulator.h"
#include "lcio/env/split.h"

ABSL_DECLARE_FLAG(std::string, data);
ABSL_DECLARE_FLAG(std::string, profiles);
ABSL_DECLARE_FLAG(std::string, device);
ABSL_DECLARE_FLAG(std::string, network);
ABSL_DECLARE_FLAG(double, latency_budget);
ABSL_DECLARE_FLAG(double, money_budget);
ABSL_DECLARE_FLAG(double, alpha);
ABSL_DECLARE_FLAG(double, beta_association);
ABSL_DECLARE_FLAG(double, beta_latency);
ABSL_DECLARE_FLAG(double, beta_usage);
ABSL_DECLARE_FLAG(int, time_span);
ABSL_DECLARE_FLAG(int, k_neighbors);
ABSL_DECLARE_FLAG(std::string, knn_rule);
ABSL_DECLARE_FLAG(std::string, response_model);
ABSL_DECLARE_FLAG(std::vector<std::string>, refusal_phrases);
ABSL_DECLARE_FLAG(uint64_t, split_seed);
ABSL_DECLARE_FLAG(double, test_ratio);
ABSL_DECLARE_FLAG(std::vector<std::string>, train_ids);
ABSL_DECLARE_FLAG(std::vector<std::string>, test_ids);

namespace lcio::cli {

// data/M4A1.json under the working directory, else under the source tree the
// binary was built from.
std::string DefaultDataPath();
absl::StatusOr<data::Dataset> LoadDataset();
// The input files the shared flags name (--data or its default, --profiles),
// plus `more` (a tool's own, e.g. --config): what no output may replace
// (data::CheckOutputIsNoInput).
std::vector<std::string> InputFiles(std::vector<std::string> more = {});
// Also checks --latency_budget and --money_budget (finite, >= 0) and the
// reward weights (finite), naming the flag.
absl::StatusOr<env::SimulatorConfig> SimulatorConfigFromFlags();
env::Budget BudgetFromFlags();
// Far more splits than 100 episodes can make different, and a bound on what
// a mistyped count may allocate.
inline constexpr int kMaxSplits = 1000;
// `count` (1..kMaxSplits) seeded random splits starting at --split_seed
// (seed, seed+1, ...), or the one explicit split of --train_ids/--test_ids.
absl::StatusOr<std::vector<env::Split>> SplitsFromFlags(const data::Dataset& dataset, int count);
// Whether the flag `name` was given on the command line (or in a --flagfile),
// whatever its value: a flag given at its default value still counts.
bool FlagGiven(const std::string& name);

// A setting that a command-line flag decides when given.
struct FlagOverride {
  std::string flag;
  std::function<absl::Status()> apply;  // copies the flag's value into the setting
};
// The precedence rule of every tool, in one place: the defaults, then the
// JSON configuration file named by the flag `file_flag` (`path`; none when
// empty), read and handed to `apply_file`, then every override whose flag was
// given on the command line, in order. Errors name the file.
absl::Status ApplyFileThenFlags(const std::string& file_flag, const std::string& path,
                                const std::function<absl::Status(const std::string&)>& apply_file,
                                const std::vector<FlagOverride>& overrides);

// The settings above as JSON, recorded beside results and in artifacts.
std::string SettingsJson(const env::SimulatorConfig& config, const env::Budget& budget);

}  // namespace lcio::cli
