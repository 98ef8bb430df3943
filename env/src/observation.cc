#include "lcio/env/observation.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "lcio/env/profiles.h"
#include "lcio/env/response_estimator.h"
#include "lcio/env/shield.h"

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

void SetActionCosts(const CostModel& costs, DecisionContext* context) {
  context->action_time_s.resize(costs.num_actions());
  context->action_money_usd.resize(costs.num_actions());
  for (int a = 0; a < costs.num_actions(); ++a) {
    context->action_time_s[a] = costs.time_s(a);
    context->action_money_usd[a] = costs.money_usd(a);
  }
}

void EncodeHistory(const ActionTable& actions, int time_span, const DecisionContext& context,
                   double* out) {
  EncodeHistoryInto(actions, time_span, context, out);
}

namespace {
// The key's action part: [cloud, v_0..v_{X-1}].
void EncodeActionKey(const ActionTable& actions, int action, double* out) {
  out[0] = actions.is_cloud(action) ? 1.0 : 0.0;
  for (int v = 0; v < actions.num_views(); ++v) out[1 + v] = actions.uploads(action, v) ? 1.0 : 0.0;
}
}  // namespace

void EncodeResponseKey(const ActionTable& actions, int time_span, const DecisionContext& context,
                       int action, double* out) {
  EncodeHistory(actions, time_span, context, out);
  EncodeActionKey(actions, action, out + HistoryWidth(actions.num_views(), time_span));
}

absl::StatusOr<std::shared_ptr<const ResponseEstimator>> FitResponseEstimator(
    const data::Dataset& dataset, const std::vector<int>& episode_indices,
    const ActionTable& actions, int time_span, int k_neighbors, const data::RefusalRule& refusal,
    NeighbourRule rule) {
  const int width = ResponseKeyWidth(actions.num_views(), time_span);
  std::vector<double> keys, values;
  std::vector<double> key(width);
  for (int e : episode_indices) {
    if (e < 0 || e >= static_cast<int>(dataset.episodes.size()))
      return absl::OutOfRangeError(absl::StrCat("episode index ", e, " out of range"));
    const data::Episode& episode = dataset.episodes[e];
    DecisionContext context;
    for (const data::Turn& turn : episode.turns) {
      auto action = LoggedAction(actions, episode, context.turn_index());
      if (!action.ok()) return action.status();
      context.task_index = turn.task_index;
      EncodeResponseKey(actions, time_span, context, *action, key.data());
      keys.insert(keys.end(), key.begin(), key.end());
      values.push_back(refusal.ResponseScore(turn));
      context.previous_actions.push_back(*action);
      context.previous_tasks.push_back(turn.task_index);
    }
  }
  return ResponseEstimator::FromPoints(width, std::move(keys), std::move(values), k_neighbors,
                                       rule);
}

int ObservationLayout::size() const {
  return HistoryWidth(num_views, time_span) + (task_one_hot ? num_tasks : 0) +
         (prompt_aware ? num_views : 0) + (budget_aware ? 2 : 0) +
         (response_aware ? num_actions() : 0) + (fit_aware ? num_actions() : 0) +
         (profile_aware ? 2 * num_actions() + 2 : 0);
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
  if (response_aware)
    for (int a = 0; a < num_actions(); ++a)
      names.push_back(absl::StrCat("predicted_response_action", a));
  if (fit_aware)
    for (int a = 0; a < num_actions(); ++a) names.push_back(absl::StrCat("fits_action", a));
  if (profile_aware) {
    for (int a = 0; a < num_actions(); ++a) names.push_back(absl::StrCat("latency_action", a));
    for (int a = 0; a < num_actions(); ++a) names.push_back(absl::StrCat("money_action", a));
    names.push_back("remaining_latency_per_max_action");
    names.push_back("remaining_money_per_max_action");
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

absl::StatusOr<ObservationEncoder> ObservationEncoder::Create(
    const ObservationLayout& layout, std::shared_ptr<const ResponseEstimator> response_model) {
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
  if (layout.response_aware) {
    if (response_model == nullptr)
      return absl::InvalidArgumentError(
          "the observation layout is response_aware but no response model was given");
    const int width = ResponseKeyWidth(layout.num_views, layout.time_span);
    if (response_model->key_width() != width)
      return absl::InvalidArgumentError(
          absl::StrCat("response model key width = ", response_model->key_width(),
                       ": the layout's views and time span need ", width));
    if (!(layout.response_scale > 0) || !std::isfinite(layout.response_scale))
      return absl::InvalidArgumentError(
          absl::StrCat("response_scale = ", layout.response_scale, ": must be finite and > 0"));
  } else {
    response_model = nullptr;
  }
  if (layout.profile_aware &&
      (!(layout.profile_time_scale_s > 0) || !(layout.profile_money_scale_usd > 0) ||
       !std::isfinite(layout.profile_time_scale_s) ||
       !std::isfinite(layout.profile_money_scale_usd)))
    return absl::InvalidArgumentError(absl::StrCat(
        "profile_time_scale_s = ", layout.profile_time_scale_s, ", profile_money_scale_usd = ",
        layout.profile_money_scale_usd, ": must be finite and > 0"));
  // A profile_aware layout takes its costs from each context instead; the
  // training profile's it may still carry (for people) are checked alike.
  if (layout.fit_aware) {
    for (const auto* costs : {&layout.action_time_s, &layout.action_money_usd}) {
      const char* name = costs == &layout.action_time_s ? "action_time_s" : "action_money_usd";
      if (layout.profile_aware && costs->empty()) continue;
      if (static_cast<int>(costs->size()) != actions->size())
        return absl::InvalidArgumentError(
            absl::StrCat(name, " has ", costs->size(), " costs: the layout's ", layout.num_views,
                         " views give ", actions->size(), " actions"));
      for (size_t a = 0; a < costs->size(); ++a)
        if (!std::isfinite((*costs)[a]) || (*costs)[a] < 0)
          return absl::InvalidArgumentError(
              absl::StrCat(name, "[", a, "] = ", (*costs)[a], ": must be finite and >= 0"));
    }
  }
  return ObservationEncoder(layout, *std::move(actions), std::move(response_model));
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
  const bool has_costs = !c.action_time_s.empty() || !c.action_money_usd.empty();
  if (layout_.profile_aware && !has_costs)
    return absl::InvalidArgumentError(
        "action costs: none given; the policy is profile_aware and needs one per action");
  if (has_costs) {
    for (const auto* costs : {&c.action_time_s, &c.action_money_usd}) {
      const char* name = costs == &c.action_time_s ? "action_time_s" : "action_money_usd";
      if (static_cast<int>(costs->size()) != actions_.size())
        return absl::InvalidArgumentError(absl::StrCat(
            name, " has ", costs->size(), " costs; the policy has ", actions_.size(), " actions"));
      for (size_t a = 0; a < costs->size(); ++a)
        if (!std::isfinite((*costs)[a]) || (*costs)[a] < 0)
          return absl::InvalidArgumentError(
              absl::StrCat(name, "[", a, "] = ", (*costs)[a], ": must be finite and >= 0"));
    }
  }
  return absl::OkStatus();
}

// The response model's predictions by history window (the key's prefix,
// which fixes every action's key), for concurrent readers: sharded maps under
// their own mutex, each cleared when full so memory stays bounded.
class ResponsePredictionMemo {
 public:
  bool Lookup(const std::string& key, std::vector<double>* out) {
    Shard& shard = ShardOf(key);
    absl::MutexLock lock(&shard.mu);
    auto it = shard.map.find(key);
    if (it == shard.map.end()) return false;
    *out = it->second;
    return true;
  }
  void Insert(const std::string& key, const std::vector<double>& predicted) {
    Shard& shard = ShardOf(key);
    absl::MutexLock lock(&shard.mu);
    if (shard.map.size() >= kEntriesPerShard) shard.map.clear();
    shard.map.emplace(key, predicted);
  }

 private:
  static constexpr size_t kShards = 16, kEntriesPerShard = 1024;
  struct Shard {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, std::vector<double>> map;
  };
  Shard& ShardOf(const std::string& key) { return shards_[absl::HashOf(key) % kShards]; }
  Shard shards_[kShards];
};

ObservationEncoder::ObservationEncoder(ObservationLayout layout, ActionTable actions,
                                       std::shared_ptr<const ResponseEstimator> response_model)
    : layout_(std::move(layout)),
      actions_(std::move(actions)),
      response_model_(std::move(response_model)) {
  if (response_model_ != nullptr) memo_ = std::make_shared<ResponsePredictionMemo>();
  if (layout_.fit_aware && !layout_.profile_aware) {
    min_action_time_s_ =
        *std::min_element(layout_.action_time_s.begin(), layout_.action_time_s.end());
    min_action_money_usd_ =
        *std::min_element(layout_.action_money_usd.begin(), layout_.action_money_usd.end());
  }
}

std::vector<double> ObservationEncoder::PredictResponses(const DecisionContext& context,
                                                         CachedEstimator* cache) const {
  std::vector<double> predicted;
  if (!layout_.response_aware) return predicted;
  const int history = HistoryWidth(layout_.num_views, layout_.time_span);
  const int suffix = 1 + layout_.num_views;  // [cloud, v_0..v_{X-1}]
  std::vector<double> key(history + suffix);
  EncodeHistory(actions_, layout_.time_span, context, key.data());
  std::vector<double> suffixes(static_cast<size_t>(actions_.size()) * suffix);
  for (int a = 0; a < actions_.size(); ++a)
    EncodeActionKey(actions_, a, suffixes.data() + static_cast<size_t>(a) * suffix);
  predicted.resize(actions_.size());
  if (cache == nullptr) {
    // The server and the evaluator: memoised by the history window, else one
    // pass over the model for every action.
    std::string window(reinterpret_cast<const char*>(key.data()), sizeof(double) * history);
    if (memo_->Lookup(window, &predicted)) return predicted;
    response_model_->EstimateSharedPrefix(key.data(), history, suffixes.data(), actions_.size(),
                                          predicted.data());
    memo_->Insert(window, predicted);
    return predicted;
  }
  for (int a = 0; a < actions_.size(); ++a) {
    std::copy(suffixes.begin() + static_cast<ptrdiff_t>(a) * suffix,
              suffixes.begin() + static_cast<ptrdiff_t>(a + 1) * suffix, key.begin() + history);
    predicted[a] = cache->Estimate(key.data());
  }
  return predicted;
}

void ObservationEncoder::Encode(const DecisionContext& context, float* out,
                                CachedEstimator* cache) const {
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
    o += 2;
  }
  if (layout_.response_aware) {
    const std::vector<double> predicted = PredictResponses(context, cache);
    for (size_t a = 0; a < predicted.size(); ++a)
      o[a] = static_cast<float>(
          std::clamp(predicted[a] / layout_.response_scale, 0.0, ObservationLayout::kResponseClip));
    o += predicted.size();
  }
  // The profile the features describe: the context's own, or (before
  // profile_aware) the training profile's that the layout carries.
  const int n = layout_.num_actions();
  const bool own = layout_.profile_aware;
  const double* time_s = own ? context.action_time_s.data() : layout_.action_time_s.data();
  const double* money_usd = own ? context.action_money_usd.data() : layout_.action_money_usd.data();
  if (layout_.fit_aware) {
    const double min_time_s = own ? *std::min_element(time_s, time_s + n) : min_action_time_s_;
    const double min_money_usd =
        own ? *std::min_element(money_usd, money_usd + n) : min_action_money_usd_;
    for (int a = 0; a < n; ++a)
      o[a] =
          FitsCosts(time_s[a], money_usd[a], min_time_s, min_money_usd, context.remaining_latency_s,
                    context.remaining_money_usd, kDefaultReserveTurns)
              ? 1.0f
              : 0.0f;
    o += n;
  }
  if (layout_.profile_aware) {
    auto clipped = [](double v) {
      return static_cast<float>(std::clamp(v, 0.0, ObservationLayout::kBudgetClip));
    };
    // A profile whose actions all cost nothing leaves any budget unlimited.
    auto relative = [&](double remaining, double max_cost) {
      return max_cost > 0 ? clipped(remaining / max_cost)
                          : (remaining > 0 ? clipped(ObservationLayout::kBudgetClip) : 0.0f);
    };
    for (int a = 0; a < n; ++a) o[a] = clipped(time_s[a] / layout_.profile_time_scale_s);
    for (int a = 0; a < n; ++a) o[n + a] = clipped(money_usd[a] / layout_.profile_money_scale_usd);
    o[2 * n] = relative(context.remaining_latency_s, *std::max_element(time_s, time_s + n));
    o[2 * n + 1] =
        relative(context.remaining_money_usd, *std::max_element(money_usd, money_usd + n));
  }
}

}  // namespace lcio::env
