// Validation of requests against the serving policy: every field is checked
// before anything is decided or logged. Errors are INVALID_ARGUMENT and name
// the field, its value and the rule.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/profiles.h"
#include "lcio/policy/artifact.h"
#include "lcio/v1/offloader.pb.h"

namespace lcio::server {

// A Decide request's identity for idempotent retries: a hash of its
// decision-relevant fields, i.e. all but `explain` (which changes only what
// the response shows) and unknown fields.
uint64_t DecisionFingerprint(const v1::DecideRequest& request);

struct RequestLimits {
  int max_prompt_bytes = 16384;
  int max_views = 64;
  int max_answer_bytes = 1 << 20;
  static constexpr int kMaxConversationIdBytes = 128;
  // Report's values: far above anything real (M4A1's scores reach 9), low
  // enough that sums over a whole log stay finite and meaningful.
  // A Report becomes an M4A1 turn: the data set's own bounds.
  static constexpr double kMaxReportScore = data::kMaxTurnScore;
  static constexpr double kMaxReportInteractionTimeS = data::kMaxTurnTimeS;
  static constexpr double kMaxReportUsageCostUsd = data::kMaxTurnCostUsd;
};

// What requests are checked against: the serving policy's views, tasks,
// actions and known profiles.
struct PolicySpec {
  std::vector<std::string> view_names;
  absl::flat_hash_map<std::string, int> view_index;
  std::vector<std::string> tasks;
  absl::flat_hash_map<std::string, int> task_index;
  int num_actions = 0;
  int history_window = 1;  // the observation's time span
  env::ProfileCatalog catalog;
  absl::flat_hash_set<std::string> device_names, network_names;
  std::string default_device, default_network;

  // The catalog is the built-in one, then the artifact's profiles, then
  // `extra_profiles_json` (may be empty).
  static absl::StatusOr<PolicySpec> FromMetadata(const policy::ArtifactMetadata& metadata,
                                                 const std::string& extra_profiles_json);
};

struct ParsedDecide {
  std::vector<double> association;  // in the policy's view order
  int task_index = -1;              // -1: infer from the prompt
  std::string device, network;      // resolved (defaults applied)
  double latency_s = 0, money_usd = 0;
  bool has_history = false;  // the request carries its history
  // With has_history: the last turns the request carries, at least
  // min(turn_index, history_window) and up to kHistoryTurnsRead (more than
  // the window: the validated fallback counts every earlier turn's cost, as
  // it does with the conversation store's history).
  std::vector<int> history_actions, history_tasks;
};
// Earlier turns a request's own history is read back to: as many as the
// conversation store keeps (ConversationStoreOptions::history_window).
inline constexpr int kHistoryTurnsRead = 64;

absl::Status CheckConversationId(const std::string& id);
absl::StatusOr<ParsedDecide> ParseDecideRequest(const v1::DecideRequest& request,
                                                const RequestLimits& limits,
                                                const PolicySpec& spec);

// A validated Report.
struct ParsedReport {
  int task_index = 0;
  bool cloud = false;
  std::vector<int> uploaded_views;  // ascending view indices
  std::vector<double> association;
};
absl::StatusOr<ParsedReport> ParseReportRequest(const v1::ReportRequest& request,
                                                const RequestLimits& limits,
                                                const PolicySpec& spec);

}  // namespace lcio::server
