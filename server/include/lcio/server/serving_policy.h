// A loaded policy as the server serves it: the inference engine, the checks
// requests are validated against, a cost model for every known (device,
// network) pair, and the GetPolicy answer. Immutable once created; replaced
// as a whole on reload.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "lcio/env/profiles.h"
#include "lcio/policy/inference.h"
#include "lcio/server/conversation_store.h"
#include "lcio/server/micro_batcher.h"
#include "lcio/server/request.h"
#include "lcio/v1/offloader.pb.h"

namespace lcio::server {

class ServingPolicy : public BatchScorer {
 public:
  // extra_profiles_json: the --profiles file's text (may be empty).
  // max_history_window: the conversation store's window; a policy looking
  // further back is refused.
  static absl::StatusOr<std::shared_ptr<const ServingPolicy>> Create(
      std::shared_ptr<const policy::InferenceEngine> engine, const std::string& extra_profiles_json,
      int max_history_window);
  // The text of a --profiles file (the server's and lcio-policy-info's):
  // NOT_FOUND when it cannot be read, INVALID_ARGUMENT when it is not a
  // regular file or is empty (an empty file would mean "no profiles" in
  // silence, and a directory reads as empty).
  static absl::StatusOr<std::string> ReadProfilesFile(const std::string& path);
  // Loads the artifact at `path` and validates it completely: exactly what
  // the server checks before serving a file (lcio-policy-info calls this
  // too, so that it accepts what the server accepts and nothing else).
  static absl::StatusOr<std::shared_ptr<const ServingPolicy>> Load(
      const std::string& path, const std::string& torch_device,
      const std::string& extra_profiles_json,
      int max_history_window = ConversationStoreOptions().history_window);

  const policy::InferenceEngine& engine() const { return *engine_; }
  const PolicySpec& spec() const { return spec_; }
  const v1::PolicyInfo& info() const { return info_; }
  const std::string& version() const { return engine_->metadata().policy_version; }
  // What this policy's action and task indices mean, for stored conversations.
  const std::shared_ptr<const ConversationSchema>& conversation_schema() const { return schema_; }
  // The largest remaining budgets the policy saw in training
  // (PolicyInfo.training_budget_max).
  const env::Budget& training_budget_max() const { return training_budget_max_; }
  // What explaining a decision needs besides the network and the response
  // model. A conversation answered without its explanation keeps these, not
  // the policy, so that a reload frees the old policy's weights and response
  // model while its conversations live on.
  struct DecisionTables {
    explicit DecisionTables(env::ActionTable table) : actions(std::move(table)) {}
    env::ActionTable actions;
    std::vector<std::string> action_descriptions;  // actions.Describe(a), made once
    // One per known (device, network).
    absl::flat_hash_map<std::pair<std::string, std::string>, std::unique_ptr<env::CostModel>> costs;
  };
  const std::shared_ptr<const DecisionTables>& tables() const { return tables_; }
  // engine().encoder().actions().Describe(a) for every action, made once.
  const std::vector<std::string>& action_descriptions() const {
    return tables_->action_descriptions;
  }
  // Notes for a request whose budget is above training_budget_max(), one per
  // budget (empty when inside).
  std::vector<std::string> BudgetWarnings(double latency_s, double money_usd) const;
  // Names were validated against spec().catalog: always found for those.
  const env::CostModel* Costs(const std::string& device, const std::string& network) const;

  int input_width() const override { return engine_->observation_size(); }
  int output_width() const override { return engine_->num_actions(); }
  absl::Status ScoreBatch(const float* inputs, int n, float* outputs) const override {
    return engine_->Score(inputs, n, outputs);
  }
  bool batching_pays() const override { return !engine_->on_cpu(); }

 private:
  // Create without its catch of JSON exceptions.
  static absl::StatusOr<std::shared_ptr<const ServingPolicy>> CreateChecked(
      std::shared_ptr<const policy::InferenceEngine> engine, const std::string& extra_profiles_json,
      int max_history_window);
  ServingPolicy() = default;
  std::shared_ptr<const policy::InferenceEngine> engine_;
  PolicySpec spec_;
  v1::PolicyInfo info_;
  env::Budget training_budget_max_;
  std::shared_ptr<const DecisionTables> tables_;
  std::shared_ptr<const ConversationSchema> schema_;
};

}  // namespace lcio::server
