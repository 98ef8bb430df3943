// Flags and settings shared by lcio-eval and lcio-train: which data, which
// profiles, weights, budgets and splits. One definition for every binary.
#pragma once

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
absl::StatusOr<env::SimulatorConfig> SimulatorConfigFromFlags();
env::Budget BudgetFromFlags();
// `count` seeded random splits starting at --split_seed (seed, seed+1, ...),
// or the one explicit split of --train_ids/--test_ids.
absl::StatusOr<std::vector<env::Split>> SplitsFromFlags(const data::Dataset& dataset, int count);
// The settings above as JSON, recorded beside results and in artifacts.
std::string SettingsJson(const env::SimulatorConfig& config, const env::Budget& budget);

}  // namespace lcio::cli
