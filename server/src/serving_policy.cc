#include "lcio/server/serving_policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/message.h"
#include "lcio/env/fallback.h"
#include "lcio/server/log.h"
#include "nlohmann/json.hpp"

namespace lcio::server {
namespace {

// The upper end of the training budget distribution (docs/training.md):
// "fixed" for a fixed budget, else "high" (the uniform range's top and the
// clip of the normal and mixture draws). Remaining budgets shrink during a
// conversation, so anything from 0 up to it was seen. Artifacts without a
// distribution were trained at their reference budget.
env::Budget TrainingBudgetMax(const policy::ArtifactMetadata& metadata) {
  env::Budget max = metadata.reference_budget;
  const auto config = nlohmann::json::parse(metadata.training_config_json, nullptr, false);
  if (!config.is_object() || !config.contains("budget_distribution")) return max;
  const nlohmann::json& d = config["budget_distribution"];
  if (!d.is_object()) return max;
  // Field by field, each type checked: the file is outside input, and a
  // json::value() of another type throws (an artifact whose "kind" was a
  // number aborted the server at its reload).
  const bool fixed = d.contains("kind") && d["kind"].is_string() && d["kind"] == "fixed";
  const char* key = fixed ? "fixed" : "high";
  if (!d.contains(key) || !d[key].is_object()) return max;
  const nlohmann::json& b = d[key];
  if (b.contains("latency_s") && b["latency_s"].is_number())
    max.latency_s = std::max(max.latency_s, b["latency_s"].get<double>());
  if (b.contains("money_usd") && b["money_usd"].is_number())
    max.money_usd = std::max(max.money_usd, b["money_usd"].get<double>());
  return max;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const ServingPolicy>> ServingPolicy::Load(
    const std::string& path, const std::string& torch_device,
    const std::string& extra_profiles_json, int max_history_window) {
  auto engine = policy::InferenceEngine::Load(path, torch_device);
  if (!engine.ok()) return engine.status();
  auto serving = Create(*std::move(engine), extra_profiles_json, max_history_window);
  if (!serving.ok())
    return absl::Status(serving.status().code(),
                        absl::StrCat(path, ": ", serving.status().message()));
  return serving;
}

absl::StatusOr<std::string> ServingPolicy::ReadProfilesFile(const std::string& path) {
  const std::string label = absl::StrCat("profiles = \"", data::Shorten(path), "\"");
  auto text = data::ReadRegularFile(path, label, "a profiles file is a JSON object");
  if (text.ok() && text->empty())
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": is empty (a profiles file is a JSON object; docs/profiles.md)"));
  return text;
}

std::vector<std::string> ServingPolicy::BudgetWarnings(double latency_s, double money_usd) const {
  std::vector<std::string> warnings;
  auto check = [&](const char* field, double value, double max, const char* unit) {
    if (value > max)
      warnings.push_back(absl::StrCat("budget.", field, " = ", data::ExactNumber(value), " ", unit,
                                      " is above the largest the policy was trained for (", max,
                                      " ", unit, "): decided, within budget, but extrapolated"));
  };
  check("latency_s", latency_s, training_budget_max_.latency_s, "s");
  check("money_usd", money_usd, training_budget_max_.money_usd, "USD");
  return warnings;
}

absl::StatusOr<std::shared_ptr<const ServingPolicy>> ServingPolicy::Create(
    std::shared_ptr<const policy::InferenceEngine> engine, const std::string& extra_profiles_json,
    int max_history_window) {
  // A JSON exception past the field checks is a refusal, never a terminate:
  // this runs on the watcher thread, where an exception would end the server.
  try {
    return CreateChecked(std::move(engine), extra_profiles_json, max_history_window);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy metadata: a field of the wrong type: ", data::Shorten(e.what(), 200)));
  }
}

absl::StatusOr<std::shared_ptr<const ServingPolicy>> ServingPolicy::CreateChecked(
    std::shared_ptr<const policy::InferenceEngine> engine, const std::string& extra_profiles_json,
    int max_history_window) {
  if (engine == nullptr) return absl::InvalidArgumentError("no engine");
  const policy::ArtifactMetadata& metadata = engine->metadata();
  auto spec = PolicySpec::FromMetadata(metadata, extra_profiles_json);
  if (!spec.ok()) return spec.status();
  if (spec->history_window > max_history_window)
    return absl::FailedPreconditionError(
        absl::StrCat("policy time_span = ", spec->history_window,
                     ": exceeds the server's conversation history window ", max_history_window));
  const env::ActionTable& actions = engine->encoder().actions();
  if (actions.size() != engine->num_actions() || spec->num_actions != engine->num_actions())
    return absl::FailedPreconditionError(
        absl::StrCat("policy has ", engine->num_actions(), " outputs for ", actions.size(),
                     " actions (metadata: ", spec->num_actions, ")"));
  std::shared_ptr<ServingPolicy> serving(new ServingPolicy());
  serving->engine_ = std::move(engine);
  serving->spec_ = *std::move(spec);
  const PolicySpec& s = serving->spec_;
  auto tables = std::make_shared<DecisionTables>(actions);
  for (int a = 0; a < actions.size(); ++a)
    tables->action_descriptions.push_back(actions.Describe(a));
  for (const env::DeviceProfile& device : s.catalog.devices)
    for (const env::NetworkProfile& network : s.catalog.networks) {
      auto costs = env::CostModel::Create(s.catalog, device.name, network.name, actions);
      if (!costs.ok())
        return absl::FailedPreconditionError(absl::StrCat(
            "profiles ", device.name, " / ", network.name, ": ", costs.status().message()));
      tables->costs[{device.name, network.name}] =
          std::make_unique<env::CostModel>(*std::move(costs));
    }
  serving->tables_ = std::move(tables);
  serving->schema_ =
      ConversationSchema::Create(metadata.policy_version, s.tasks, s.view_names, actions);
  const env::CostModel* training = serving->Costs(s.default_device, s.default_network);
  if (training == nullptr)
    return absl::FailedPreconditionError("the training profile has no cost model");

  v1::PolicyInfo& info = serving->info_;
  info.set_policy_version(metadata.policy_version);
  info.set_algo(metadata.algo);
  for (const std::string& v : s.view_names) info.add_view_names(v);
  for (const std::string& t : s.tasks) info.add_tasks(t);
  for (int a = 0; a < actions.size(); ++a) {
    v1::ActionInfo* action = info.add_actions();
    action->set_index(a);
    action->set_description(serving->action_descriptions()[a]);
    action->set_cloud(actions.is_cloud(a));
    for (int v : actions.views(a)) action->add_views(v);
    action->set_latency_s(training->time_s(a));
    action->set_money_usd(training->money_usd(a));
  }
  for (const env::DeviceProfile& d : s.catalog.devices) info.add_devices(d.name);
  for (const env::NetworkProfile& n : s.catalog.networks) info.add_networks(n.name);
  info.set_default_device(s.default_device);
  info.set_default_network(s.default_network);
  info.set_local_llm(s.catalog.local_llm.name);
  info.set_cloud_llm(s.catalog.cloud_llm.name);
  info.set_history_window(s.history_window);
  info.set_created_utc(metadata.created_utc);
  info.set_torch_device(serving->engine_->device_name());
  info.set_profiles_json(s.catalog.ToJson());
  info.mutable_reference_budget()->set_latency_s(metadata.reference_budget.latency_s);
  info.mutable_reference_budget()->set_money_usd(metadata.reference_budget.money_usd);
  serving->training_budget_max_ = TrainingBudgetMax(metadata);
  info.mutable_training_budget_max()->set_latency_s(serving->training_budget_max_.latency_s);
  info.mutable_training_budget_max()->set_money_usd(serving->training_budget_max_.money_usd);
  const env::FallbackTable& fallback = serving->engine_->fallback();
  info.set_fallback_cells(static_cast<int>(fallback.entries().size()));
  int policy_cells = 0;
  for (const env::FallbackEntry& entry : fallback.entries()) policy_cells += entry.serve_policy;
  info.set_fallback_policy_cells(policy_cells);
  return std::shared_ptr<const ServingPolicy>(std::move(serving));
}

const env::CostModel* ServingPolicy::Costs(const std::string& device,
                                           const std::string& network) const {
  auto it = tables_->costs.find(std::make_pair(device, network));
  return it == tables_->costs.end() ? nullptr : it->second.get();
}

}  // namespace lcio::server
