// Between trainer.cc and train_output.cc: a training run with what the
// artifact writer needs beyond TrainResult (the simulator).
#pragma once

#include <memory>

#include "lcio/policy/algorithms.h"
#include "lcio/policy/trainer.h"

namespace lcio::policy {

struct TrainRun {
  TrainResult result;
  std::shared_ptr<const env::Simulator> simulator;
};

absl::StatusOr<TrainRun> RunTraining(const data::Dataset& dataset,
                                     const std::vector<int>& train_episodes,
                                     const env::SimulatorConfig& config,
                                     const TrainOptions& options);
// Checks a --torch_device string ("auto", "cpu", "cuda", "cuda:N") and
// returns the device training runs on: always "cpu" (the kernels).
absl::StatusOr<std::string> ResolveDevice(const std::string& device);
std::string TrainingConfigJson(const TrainOptions& options, const env::SimulatorConfig& config,
                               const std::map<std::string, double>& hp, const std::string& device,
                               const std::vector<env::ProfilePair>& profiles);

}  // namespace lcio::policy
