#include "lcio/server/request.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lcio/data/decision_log.h"
#include "lcio/data/message.h"
#include "lcio/data/utf8.h"
#include "lcio/server/log.h"

namespace lcio::server {
namespace {

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

// Every client value an error message quotes goes through the one helper.
std::string Quote(absl::string_view value) { return QuoteClientValue(value); }

absl::Status CheckPrompt(absl::string_view field, const std::string& prompt,
                         const RequestLimits& limits) {
  if (prompt.empty()) return Invalid(absl::StrCat(field, " is empty: a prompt is required"));
  if (static_cast<int64_t>(prompt.size()) > limits.max_prompt_bytes)
    return Invalid(absl::StrCat(field, " has ", prompt.size(), " bytes: at most ",
                                limits.max_prompt_bytes, " (--max_prompt_bytes)"));
  if (!data::IsValidUtf8(prompt)) return Invalid(absl::StrCat(field, " is not valid UTF-8"));
  return absl::OkStatus();
}

// `field` names the field for the error message; it is only called then, so
// the success path builds no strings.
template <typename Field>
absl::StatusOr<int> TaskIndex(Field field, const std::string& task, const PolicySpec& spec) {
  auto it = spec.task_index.find(task);
  if (it == spec.task_index.end())
    return Invalid(absl::StrCat(field(), " = ", Quote(task), ": unknown task; the policy knows ",
                                absl::StrJoin(spec.tasks, ", ")));
  return it->second;
}

absl::Status CheckAmount(absl::string_view field, double value) {
  if (!std::isfinite(value) || value < 0)
    return Invalid(
        absl::StrCat(field, " = ", data::ExactNumber(value), ": must be a finite number >= 0"));
  return absl::OkStatus();
}

absl::Status CheckAmount(absl::string_view field, double value, double max) {
  if (absl::Status s = CheckAmount(field, value); !s.ok()) return s;
  if (value > max)
    return Invalid(absl::StrCat(field, " = ", data::ExactNumber(value), ": must be <= ", max));
  return absl::OkStatus();
}

template <typename Field>
absl::Status CheckAssociation(Field field, double value) {
  if (!(value >= 0 && value <= 1))
    return Invalid(absl::StrCat(field(), " = ", data::ExactNumber(value), ": must be in [0, 1]"));
  return absl::OkStatus();
}

template <typename Field>
absl::StatusOr<int> ViewIndex(Field field, const std::string& name, const PolicySpec& spec) {
  auto it = spec.view_index.find(name);
  if (it == spec.view_index.end())
    return Invalid(absl::StrCat(field(), " = ", Quote(name),
                                ": unknown view; the policy's views are ",
                                absl::StrJoin(spec.view_names, ", ")));
  return it->second;
}

}  // namespace

absl::StatusOr<PolicySpec> PolicySpec::FromMetadata(const policy::ArtifactMetadata& metadata,
                                                    const std::string& extra_profiles_json) {
  PolicySpec spec;
  spec.view_names = metadata.view_names;
  if (static_cast<int>(spec.view_names.size()) != metadata.layout.num_views)
    return absl::FailedPreconditionError(absl::StrCat("artifact lists ", spec.view_names.size(),
                                                      " view names for ", metadata.layout.num_views,
                                                      " views"));
  for (size_t v = 0; v < spec.view_names.size(); ++v)
    if (!spec.view_index.emplace(spec.view_names[v], static_cast<int>(v)).second)
      return absl::FailedPreconditionError(
          absl::StrCat("artifact view name ", Quote(spec.view_names[v]), " is repeated"));
  spec.tasks = metadata.tasks;
  if (static_cast<int>(spec.tasks.size()) != metadata.layout.num_tasks)
    return absl::FailedPreconditionError(absl::StrCat("artifact lists ", spec.tasks.size(),
                                                      " tasks for ", metadata.layout.num_tasks));
  for (size_t t = 0; t < spec.tasks.size(); ++t)
    if (!spec.task_index.emplace(spec.tasks[t], static_cast<int>(t)).second)
      return absl::FailedPreconditionError(
          absl::StrCat("artifact task ", Quote(spec.tasks[t]), " is repeated"));
  spec.num_actions = metadata.num_actions;
  spec.history_window = metadata.layout.time_span;
  spec.catalog = env::ProfileCatalog::BuiltIn();
  if (!metadata.profiles_json.empty())
    if (absl::Status s = spec.catalog.MergeJson(metadata.profiles_json, "artifact profiles");
        !s.ok())
      return s;
  if (!extra_profiles_json.empty())
    if (absl::Status s = spec.catalog.MergeJson(extra_profiles_json, "--profiles"); !s.ok())
      return s;
  for (const env::DeviceProfile& d : spec.catalog.devices) spec.device_names.insert(d.name);
  for (const env::NetworkProfile& n : spec.catalog.networks) spec.network_names.insert(n.name);
  spec.default_device = metadata.device;
  spec.default_network = metadata.network;
  if (auto d = spec.catalog.Device(spec.default_device); !d.ok()) return d.status();
  if (auto n = spec.catalog.Network(spec.default_network); !n.ok()) return n.status();
  return spec;
}

absl::Status CheckConversationId(const std::string& id) {
  if (id.empty()) return Invalid("conversation_id is empty: an id of 1..128 bytes is required");
  if (id.size() > static_cast<size_t>(RequestLimits::kMaxConversationIdBytes))
    return Invalid(absl::StrCat("conversation_id has ", id.size(), " bytes: at most ",
                                RequestLimits::kMaxConversationIdBytes));
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '@' || c == '/' || c == '-';
    if (!ok)
      return Invalid(absl::StrCat("conversation_id = ", Quote(id),
                                  ": only letters, digits and . _ : @ / - are allowed"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ParsedDecide> ParseDecideRequest(const v1::DecideRequest& request,
                                                const RequestLimits& limits,
                                                const PolicySpec& spec) {
  ParsedDecide parsed;
  if (absl::Status s = CheckConversationId(request.conversation_id()); !s.ok()) return s;
  if (request.turn_index() < 0 || request.turn_index() > data::kMaxTurnIndex)
    return Invalid(absl::StrCat("turn_index = ", request.turn_index(), ": must be in [0, ",
                                data::kMaxTurnIndex, "]"));
  if (absl::Status s = CheckPrompt("prompt", request.prompt(), limits); !s.ok()) return s;
  if (!request.task().empty()) {
    auto task = TaskIndex([] { return "task"; }, request.task(), spec);
    if (!task.ok()) return task.status();
    parsed.task_index = *task;
  }
  const int num_views = static_cast<int>(spec.view_names.size());
  if (request.views_size() > limits.max_views)
    return Invalid(absl::StrCat("views has ", request.views_size(), " entries: at most ",
                                limits.max_views, " (--max_views)"));
  if (request.views_size() != num_views)
    return Invalid(absl::StrCat("views has ", request.views_size(), " entries: the policy has ",
                                num_views, " views (", absl::StrJoin(spec.view_names, ", "),
                                "), each must appear once"));
  parsed.association.assign(num_views, -1.0);
  for (int i = 0; i < request.views_size(); ++i) {
    const v1::View& view = request.views(i);
    auto index = ViewIndex([i] { return absl::StrCat("views[", i, "].name"); }, view.name(), spec);
    if (!index.ok()) return index.status();
    if (parsed.association[*index] >= 0)
      return Invalid(absl::StrCat("views[", i, "].name = ", Quote(view.name()),
                                  ": the view appears more than once"));
    if (absl::Status s = CheckAssociation(
            [i] { return absl::StrCat("views[", i, "].association"); }, view.association());
        !s.ok())
      return s;
    parsed.association[*index] = view.association();
  }
  if (!request.has_budget())
    return Invalid("budget is missing: the remaining latency_s and money_usd are required");
  if (absl::Status s = CheckAmount("budget.latency_s", request.budget().latency_s()); !s.ok())
    return s;
  if (absl::Status s = CheckAmount("budget.money_usd", request.budget().money_usd()); !s.ok())
    return s;
  parsed.latency_s = request.budget().latency_s();
  parsed.money_usd = request.budget().money_usd();
  parsed.device = request.device().empty() ? spec.default_device : request.device();
  parsed.network = request.network().empty() ? spec.default_network : request.network();
  // The catalog's own messages echo the name whole: list the known ones here.
  if (!spec.device_names.contains(parsed.device)) {
    std::vector<std::string> known;
    for (const env::DeviceProfile& d : spec.catalog.devices) known.push_back(d.name);
    return Invalid(absl::StrCat("device = ", Quote(parsed.device),
                                ": unknown device; known devices: ", absl::StrJoin(known, ", ")));
  }
  if (!spec.network_names.contains(parsed.network)) {
    std::vector<std::string> known;
    for (const env::NetworkProfile& n : spec.catalog.networks) known.push_back(n.name);
    return Invalid(absl::StrCat("network = ", Quote(parsed.network),
                                ": unknown network; known networks: ", absl::StrJoin(known, ", ")));
  }
  if (request.has_history()) {
    parsed.has_history = true;
    const auto& turns = request.history().turns();
    const int needed = std::min(request.turn_index(), spec.history_window);
    if (turns.size() < needed || turns.size() > request.turn_index())
      return Invalid(absl::StrCat("history.turns has ", turns.size(), " entries for turn_index ",
                                  request.turn_index(), ": must hold between ", needed,
                                  " (the last min(turn_index, ", spec.history_window,
                                  ") turns) and ", request.turn_index()));
    // Beyond the window only the validated fallback reads them (their costs);
    // every turn read is checked.
    const int read = std::min(turns.size(), std::max(needed, kHistoryTurnsRead));
    for (int i = turns.size() - read; i < turns.size(); ++i) {
      const v1::HistoryTurn& turn = turns[i];
      if (turn.action() < 0 || turn.action() >= spec.num_actions)
        return Invalid(absl::StrCat("history.turns[", i, "].action = ", turn.action(),
                                    ": must be in [0, ", spec.num_actions - 1, "]"));
      auto task =
          TaskIndex([i] { return absl::StrCat("history.turns[", i, "].task"); }, turn.task(), spec);
      if (!task.ok()) return task.status();
      parsed.history_actions.push_back(turn.action());
      parsed.history_tasks.push_back(*task);
    }
  }
  return parsed;
}

absl::StatusOr<ParsedReport> ParseReportRequest(const v1::ReportRequest& request,
                                                const RequestLimits& limits,
                                                const PolicySpec& spec) {
  ParsedReport parsed;
  if (absl::Status s = CheckConversationId(request.conversation_id()); !s.ok()) return s;
  if (request.turn_index() < 0 || request.turn_index() > data::kMaxTurnIndex)
    return Invalid(absl::StrCat("turn_index = ", request.turn_index(), ": must be in [0, ",
                                data::kMaxTurnIndex, "]"));
  if (request.decision_id().size() > 512)
    return Invalid(
        absl::StrCat("decision_id has ", request.decision_id().size(), " bytes: at most 512"));
  if (!request.decision_id().empty() &&
      !data::DecisionIdIsOfTurn(request.decision_id(), request.conversation_id(),
                                request.turn_index()))
    return Invalid(absl::StrCat(
        "decision_id = ", Quote(request.decision_id()),
        ": must be empty or the decision_id Decide answered for this conversation_id and "
        "turn_index (\"",
        data::DecisionIdPrefix(request.conversation_id(), request.turn_index()),
        "\" and 16 hex digits)"));
  if (absl::Status s = CheckPrompt("prompt", request.prompt(), limits); !s.ok()) return s;
  auto task = TaskIndex([] { return "task"; }, request.task(), spec);
  if (!task.ok()) return task.status();
  parsed.task_index = *task;
  if (request.target() != v1::TARGET_LOCAL && request.target() != v1::TARGET_CLOUD)
    return Invalid(
        absl::StrCat("target = ", request.target(), ": must be TARGET_LOCAL or TARGET_CLOUD"));
  parsed.cloud = request.target() == v1::TARGET_CLOUD;
  if (!parsed.cloud && request.uploaded_views_size() > 0)
    return Invalid("uploaded_views must be empty when target is TARGET_LOCAL");
  if (request.uploaded_views_size() > static_cast<int>(spec.view_names.size()))
    return Invalid(absl::StrCat("uploaded_views has ", request.uploaded_views_size(),
                                " entries: the policy has ", spec.view_names.size(), " views"));
  for (int i = 0; i < request.uploaded_views_size(); ++i) {
    auto index = ViewIndex([i] { return absl::StrCat("uploaded_views[", i, "]"); },
                           request.uploaded_views(i), spec);
    if (!index.ok()) return index.status();
    if (std::find(parsed.uploaded_views.begin(), parsed.uploaded_views.end(), *index) !=
        parsed.uploaded_views.end())
      return Invalid(absl::StrCat("uploaded_views[", i, "] = ", Quote(request.uploaded_views(i)),
                                  ": the view appears more than once"));
    parsed.uploaded_views.push_back(*index);
  }
  std::sort(parsed.uploaded_views.begin(), parsed.uploaded_views.end());
  if (request.association_size() != static_cast<int>(spec.view_names.size()))
    return Invalid(absl::StrCat("association has ", request.association_size(),
                                " values: one per view of the policy (", spec.view_names.size(),
                                ") is required"));
  for (int v = 0; v < request.association_size(); ++v) {
    if (absl::Status s = CheckAssociation([v] { return absl::StrCat("association[", v, "]"); },
                                          request.association(v));
        !s.ok())
      return s;
    parsed.association.push_back(request.association(v));
  }
  if (static_cast<int64_t>(request.answer().size()) > limits.max_answer_bytes)
    return Invalid(absl::StrCat("answer has ", request.answer().size(), " bytes: at most ",
                                limits.max_answer_bytes));
  // M4A1's own scale (finite, >= 0; the data's scores reach 9), so that
  // reported traffic trains on the same footing as the dataset.
  if (absl::Status s = CheckAmount("score", request.score(), RequestLimits::kMaxReportScore);
      !s.ok())
    return s;
  if (absl::Status s = CheckAmount("interaction_time_s", request.interaction_time_s(),
                                   RequestLimits::kMaxReportInteractionTimeS);
      !s.ok())
    return s;
  if (absl::Status s = CheckAmount("usage_cost_usd", request.usage_cost_usd(),
                                   RequestLimits::kMaxReportUsageCostUsd);
      !s.ok())
    return s;
  return parsed;
}

}  // namespace lcio::server

namespace lcio::server {

namespace {

bool HasUnknown(const google::protobuf::Message& message) {
  return !message.GetReflection()->GetUnknownFields(message).empty();
}

// Whether a double field of the request is -0.0: every double of
// DecideRequest (a new one must be added here and in DecisionFingerprint).
bool HasNegativeZero(const v1::DecideRequest& request) {
  auto negative_zero = [](double v) { return v == 0 && std::signbit(v); };
  if (negative_zero(request.budget().latency_s()) || negative_zero(request.budget().money_usd()))
    return true;
  for (const v1::View& view : request.views())
    if (negative_zero(view.association())) return true;
  return false;
}

// Whether the request or any message inside it carries unknown fields.
bool HasUnknownFields(const v1::DecideRequest& request) {
  if (HasUnknown(request)) return true;
  for (const v1::View& view : request.views())
    if (HasUnknown(view)) return true;
  if (request.has_budget() && HasUnknown(request.budget())) return true;
  if (request.has_history()) {
    if (HasUnknown(request.history())) return true;
    for (const v1::HistoryTurn& turn : request.history().turns())
      if (HasUnknown(turn)) return true;
  }
  return false;
}

}  // namespace

uint64_t DecisionFingerprint(const v1::DecideRequest& request) {
  // The hash of the request serialized without `explain` and unknown fields,
  // its views in name order (the same views in another order are the same
  // request: a client building them from a map may send either). Without
  // any of these (the usual request) that is the request's own
  // serialization: no copy, and no reflection to discard what is not there.
  const auto by_name = [](const v1::View& a, const v1::View& b) { return a.name() < b.name(); };
  const bool views_in_order =
      std::is_sorted(request.views().begin(), request.views().end(), by_name);
  if (!request.explain() && views_in_order && !HasUnknownFields(request) &&
      !HasNegativeZero(request))
    return std::hash<std::string>{}(request.SerializeAsString());
  v1::DecideRequest identity = request;
  identity.clear_explain();
  identity.DiscardUnknownFields();
  if (!views_in_order)
    std::stable_sort(identity.mutable_views()->begin(), identity.mutable_views()->end(), by_name);
  // -0.0 is serialized (0.0 is not) but means the same budget or association.
  auto positive = [](double v) { return v == 0 ? 0.0 : v; };
  if (identity.has_budget()) {
    v1::BudgetState* budget = identity.mutable_budget();
    budget->set_latency_s(positive(budget->latency_s()));
    budget->set_money_usd(positive(budget->money_usd()));
  }
  for (v1::View& view : *identity.mutable_views())
    view.set_association(positive(view.association()));
  return std::hash<std::string>{}(identity.SerializeAsString());
}

}  // namespace lcio::server
