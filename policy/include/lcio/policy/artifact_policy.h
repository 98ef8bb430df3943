// A trained policy artifact as an env::Policy, so that lcio-eval evaluates
// artifacts next to the baselines. LibTorch-free header.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lcio/env/policy_interface.h"
#include "lcio/policy/inference.h"

namespace lcio::policy {

class ArtifactPolicy : public env::Policy {
 public:
  // Loads `path` on `device` ("auto", "cpu", "cuda[:N]").
  static absl::StatusOr<std::unique_ptr<ArtifactPolicy>> Load(const std::string& path,
                                                              const std::string& device = "cpu");
  // `name` defaults to the artifact's policy_version.
  explicit ArtifactPolicy(std::shared_ptr<const InferenceEngine> engine, std::string name = "");

  const InferenceEngine& engine() const { return *engine_; }
  // Whether an evaluation setup (data views and tasks) fits the artifact.
  absl::Status CheckCompatible(int num_views, int num_tasks) const;

  std::string name() const override { return name_; }
  // The action with the highest score; fills `scores` (one per action) for the
  // shield. Where the artifact's fallback table names a fixed action, that
  // action, with `scores` left empty (env::FallbackPolicy's rule). A context the artifact cannot
  // encode (see Decide) yields action 0 (local) and is counted in error_count(), with the first
  // error kept.
  int Act(const env::DecisionContext& context, std::vector<double>* scores) override;
  // Act with the error returned instead of a fallback.
  // `*overridden` (optional): the fallback's fixed action did not fit and was
  // replaced.
  absl::StatusOr<int> Decide(const env::DecisionContext& context, std::vector<double>* scores,
                             bool* overridden = nullptr) const;
  int64_t TakeShieldOverrides() override { return std::exchange(overrides_, 0); }

  int64_t error_count() const { return error_count_; }
  const absl::Status& first_error() const { return first_error_; }

 private:
  std::shared_ptr<const InferenceEngine> engine_;
  std::string name_;
  int64_t error_count_ = 0;
  absl::Status first_error_;
  int64_t overrides_ = 0;
};

}  // namespace lcio::policy
