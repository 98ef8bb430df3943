#include "lcio/policy/artifact_policy.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace lcio::policy {

absl::StatusOr<std::unique_ptr<ArtifactPolicy>> ArtifactPolicy::Load(const std::string& path,
                                                                     const std::string& device) {
  auto engine = InferenceEngine::Load(path, device);
  if (!engine.ok()) return engine.status();
  return std::make_unique<ArtifactPolicy>(*std::move(engine));
}

ArtifactPolicy::ArtifactPolicy(std::shared_ptr<const InferenceEngine> engine, std::string name)
    : engine_(std::move(engine)),
      name_(name.empty() ? engine_->metadata().policy_version : std::move(name)) {}

absl::Status ArtifactPolicy::CheckCompatible(int num_views, int num_tasks) const {
  const env::ObservationLayout& layout = engine_->encoder().layout();
  if (num_views != layout.num_views || num_tasks != layout.num_tasks)
    return absl::FailedPreconditionError(absl::StrCat(
        "policy ", name_, " was trained for ", layout.num_views, " views and ", layout.num_tasks,
        " tasks; the data has ", num_views, " views and ", num_tasks, " tasks"));
  return absl::OkStatus();
}

absl::StatusOr<int> ArtifactPolicy::Decide(const env::DecisionContext& context,
                                           std::vector<double>* scores, bool* overridden) const {
  if (overridden != nullptr) *overridden = false;
  const env::ObservationEncoder& encoder = engine_->encoder();
  if (absl::Status status = encoder.Check(context); !status.ok()) return status;
  // A conversation the fallback table gives to a fixed action: no scores, as
  // env::FixedPolicy, so the shield treats both alike.
  if (const int fixed = engine_->fallback().Decide(context, overridden); fixed >= 0) {
    if (scores != nullptr) scores->clear();
    return fixed;
  }
  std::vector<float> observation(encoder.size()), output(engine_->num_actions());
  encoder.Encode(context, observation.data());
  if (absl::Status status = engine_->Score(observation.data(), 1, output.data()); !status.ok())
    return status;
  for (size_t a = 0; a < output.size(); ++a)
    if (!std::isfinite(output[a]))  // an argmax over NaN would pick action 0 in silence
      return absl::InternalError(absl::StrCat("the policy's score for action ", a, " is ",
                                              output[a], ", not a number the decision can use"));
  if (scores != nullptr) scores->assign(output.begin(), output.end());
  return static_cast<int>(std::max_element(output.begin(), output.end()) - output.begin());
}

int ArtifactPolicy::Act(const env::DecisionContext& context, std::vector<double>* scores) {
  bool overridden = false;
  auto action = Decide(context, scores, &overridden);
  overrides_ += overridden;
  if (action.ok()) return *action;
  if (error_count_++ == 0) first_error_ = action.status();
  if (scores != nullptr) scores->clear();
  return 0;
}

}  // namespace lcio::policy
