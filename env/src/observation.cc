#include "lcio/env/observation.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace lcio::env {

int HistoryWidth(int num_views, int time_span) { return (num_views + 2) * time_span; }
int ResponseKeyWidth(int num_views, int time_span) {
  return HistoryWidth(num_views, time_span) + 1 + num_views;
}

namespace {

template <typename T>
void EncodeHistoryInto(const ActionTable& actions, int time_span, const DecisionContext& context,
                       T* out) {
  const int x = actions.num_views();
  const int t = context.turn_index();
  for (int slot = 0; slot < time_span; ++slot) {
    const int j = t - (time_span - 1) + slot;  // turn whose state fills this slot
    T* s = out + slot * (x + 2);
    if (j < 0) {
      std::fill(s, s + x + 2, T(-1));
      continue;
    }
    if (j == 0) {
      s[0] = T(-1);
      std::fill(s + 1, s + 1 + x, T(0));
    } else {
      const int previous = context.previous_actions[j - 1];
      s[0] = actions.is_cloud(previous) ? T(1) : T(0);
      for (int v = 0; v < x; ++v) s[1 + v] = actions.uploads(previous, v) ? T(1) : T(0);
    }
    s[x + 1] = static_cast<T>(j == t ? context.task_index : context.previous_tasks[j]);
  }
}

}  // namespace

void EncodeHistory(const ActionTable& actions, int time_span, const DecisionContext& context,
                   double* out) {
  EncodeHistoryInto(actions, time_span, context, out);
}

void EncodeResponseKey(const ActionTable& actions, int time_span, const DecisionContext& context,
                       int action, double* out) {
  EncodeHistory(actions, time_span, context, out);
  double* a = out + HistoryWidth(actions.num_views(), time_span);
  a[0] = actions.is_cloud(action) ? 1.0 : 0.0;
  for (int v = 0; v < actions.num_views(); ++v) a[1 + v] = actions.uploads(action, v) ? 1.0 : 0.0;
}

int ObservationLayout::size() const {
  return HistoryWidth(num_views, time_span) + (task_one_hot ? num_tasks : 0) +
         (prompt_aware ? num_views : 0) + (budget_aware ? 2 : 0);
}

std::vector<std::string> ObservationLayout::FeatureNames() const {
  std::vector<std::string> names;
  for (int slot = 0; slot < time_span; ++slot) {
    const std::string at = absl::StrCat("t-", time_span - 1 - slot);
    names.push_back(absl::StrCat("prev_cloud@", at));
    for (int v = 0; v < num_views; ++v) names.push_back(absl::StrCat("prev_view", v, "@", at));
    names.push_back(absl::StrCat("task@", at));
  }
  if (task_one_hot)
    for (int k = 0; k < num_tasks; ++k) names.push_back(absl::StrCat("task_is_", k));
  if (prompt_aware)
    for (int v = 0; v < num_views; ++v) names.push_back(absl::StrCat("association_view", v));
  if (budget_aware) {
    names.push_back("remaining_latency");
    names.push_back("remaining_money");
  }
  return names;
}

ObservationLayout ObservationLayout::Reference(int num_views, int num_tasks, int time_span) {
  ObservationLayout layout;
  layout.num_views = num_views;
  layout.num_tasks = num_tasks;
  layout.time_span = time_span;
  layout.task_one_hot = false;
  layout.prompt_aware = false;
  layout.budget_aware = false;
  return layout;
}

absl::StatusOr<ObservationEncoder> ObservationEncoder::Create(const ObservationLayout& layout) {
  if (layout.num_tasks < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("num_tasks = ", layout.num_tasks, ": must be >= 1"));
  if (layout.time_span < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("time_span = ", layout.time_span, ": must be >= 1"));
  if (!(layout.latency_scale_s > 0) || !(layout.money_scale_usd > 0) ||
      !std::isfinite(layout.latency_scale_s) || !std::isfinite(layout.money_scale_usd))
    return absl::InvalidArgumentError("latency_scale_s and money_scale_usd must be finite and > 0");
  auto actions = ActionTable::Create(layout.num_views);
  if (!actions.ok()) return actions.status();
  return ObservationEncoder(layout, *std::move(actions));
}

absl::Status ObservationEncoder::Check(const DecisionContext& c) const {
  if (c.previous_actions.size() != c.previous_tasks.size())
    return absl::InvalidArgumentError(absl::StrCat("history: ", c.previous_actions.size(),
                                                   " actions but ", c.previous_tasks.size(),
                                                   " tasks"));
  for (size_t i = 0; i < c.previous_actions.size(); ++i) {
    if (c.previous_actions[i] < 0 || c.previous_actions[i] >= actions_.size())
      return absl::InvalidArgumentError(
          absl::StrCat("history[", i, "].action = ", c.previous_actions[i], ": must be in [0, ",
                       actions_.size() - 1, "]"));
    if (c.previous_tasks[i] < 0 || c.previous_tasks[i] >= layout_.num_tasks)
      return absl::InvalidArgumentError(
          absl::StrCat("history[", i, "].task = ", c.previous_tasks[i], ": must be in [0, ",
                       layout_.num_tasks - 1, "]"));
  }
  if (c.task_index < 0 || c.task_index >= layout_.num_tasks)
    return absl::InvalidArgumentError(
        absl::StrCat("task = ", c.task_index, ": must be in [0, ", layout_.num_tasks - 1, "]"));
  if (static_cast<int>(c.association.size()) != layout_.num_views)
    return absl::InvalidArgumentError(absl::StrCat("association has ", c.association.size(),
                                                   " values; the policy has ", layout_.num_views,
                                                   " views"));
  for (size_t v = 0; v < c.association.size(); ++v)
    if (!(c.association[v] >= 0 && c.association[v] <= 1))
      return absl::InvalidArgumentError(
          absl::StrCat("association[", v, "] = ", c.association[v], ": must be in [0, 1]"));
  if (std::isnan(c.remaining_latency_s) || c.remaining_latency_s < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("remaining_latency_s = ", c.remaining_latency_s, ": must be a number >= 0"));
  if (std::isnan(c.remaining_money_usd) || c.remaining_money_usd < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("remaining_money_usd = ", c.remaining_money_usd, ": must be a number >= 0"));
  return absl::OkStatus();
}

void ObservationEncoder::Encode(const DecisionContext& context, float* out) const {
  const int width = HistoryWidth(layout_.num_views, layout_.time_span);
  EncodeHistoryInto(actions_, layout_.time_span, context, out);
  float* o = out + width;
  if (layout_.task_one_hot) {
    for (int k = 0; k < layout_.num_tasks; ++k) o[k] = k == context.task_index ? 1.0f : 0.0f;
    o += layout_.num_tasks;
  }
  if (layout_.prompt_aware) {
    for (int v = 0; v < layout_.num_views; ++v) o[v] = static_cast<float>(context.association[v]);
    o += layout_.num_views;
  }
  if (layout_.budget_aware) {
    auto scaled = [](double remaining, double scale) {
      return static_cast<float>(std::clamp(remaining / scale, 0.0, ObservationLayout::kBudgetClip));
    };
    o[0] = scaled(context.remaining_latency_s, layout_.latency_scale_s);
    o[1] = scaled(context.remaining_money_usd, layout_.money_scale_usd);
  }
}

}  // namespace lcio::env
