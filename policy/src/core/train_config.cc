// The loops over the option tables of train_config.h, and the training
// configuration's JSON (read by lcio-train --config and lcio-eval
// --train_config, written into every artifact).
#include "lcio/policy/train_config.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "lcio/data/json_parse.h"
#include "lcio/data/message.h"
#include "lcio/env/fallback.h"
#include "lcio/policy/trainer.h"

namespace lcio::policy {

// The one bound of a run's length (the config file's reader and the
// options' check both use it).
constexpr int64_t kMaxTimesteps = 1'000'000'000;

namespace {

template <typename T>
T FromDouble(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(std::llround(v));
  } else {
    return v;
  }
}

#define LCIO_OPTION_ROW(type, name, value, lo, hi, help)                     \
  OptionRow<Self>{#name,                                                     \
                  #type,                                                     \
                  static_cast<double>(value),                                \
                  static_cast<double>(lo),                                   \
                  static_cast<double>(hi),                                   \
                  help,                                                      \
                  [](const Self& c) { return static_cast<double>(c.name); }, \
                  [](Self& c, double v) { c.name = FromDouble<decltype(c.name)>(v); }},

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string text = absl::StrFormat("%g", v);
  if (const size_t e = text.find("e+0"); e != std::string::npos) text.replace(e, 3, "e");
  return text;
}

}  // namespace

template <>
const std::vector<OptionRow<PpoConfig>>& OptionTable<PpoConfig>() {
  using Self = PpoConfig;
  static const auto* rows = new std::vector<OptionRow<Self>>{LCIO_PPO_OPTIONS(LCIO_OPTION_ROW)};
  return *rows;
}
template <>
const std::vector<OptionRow<A2cConfig>>& OptionTable<A2cConfig>() {
  using Self = A2cConfig;
  static const auto* rows = new std::vector<OptionRow<Self>>{LCIO_A2C_OPTIONS(LCIO_OPTION_ROW)};
  return *rows;
}
template <>
const std::vector<OptionRow<DqnConfig>>& OptionTable<DqnConfig>() {
  using Self = DqnConfig;
  static const auto* rows = new std::vector<OptionRow<Self>>{LCIO_DQN_OPTIONS(LCIO_OPTION_ROW)};
  return *rows;
}
template <>
const std::vector<OptionRow<LagrangeConfig>>& OptionTable<LagrangeConfig>() {
  using Self = LagrangeConfig;
  static const auto* rows =
      new std::vector<OptionRow<Self>>{LCIO_LAGRANGE_OPTIONS(LCIO_OPTION_ROW)};
  return *rows;
}
template <>
const std::vector<OptionRow<ObservationConfig>>& OptionTable<ObservationConfig>() {
  using Self = ObservationConfig;
  static const auto* rows =
      new std::vector<OptionRow<Self>>{LCIO_OBSERVATION_OPTIONS(LCIO_OPTION_ROW)};
  return *rows;
}
#undef LCIO_OPTION_ROW

const std::vector<BudgetRow>& BudgetTable() {
  using B = env::BudgetDistribution;
#define LCIO_BUDGET_ROW(shared, flag, pointer, member, help) \
  BudgetRow{#flag,                                           \
            pointer,                                         \
            help,                                            \
            shared,                                          \
            [](const B& b) { return b.member; },             \
            [](B& b, double v) { b.member = v; }},
#define LCIO_MEAN_ROW(...) LCIO_BUDGET_ROW(true, __VA_ARGS__)
#define LCIO_SPREAD_ROW(...) LCIO_BUDGET_ROW(false, __VA_ARGS__)
  static const auto* rows = new std::vector<BudgetRow>{
      LCIO_BUDGET_MEAN_OPTIONS(LCIO_MEAN_ROW) LCIO_BUDGET_SPREAD_OPTIONS(LCIO_SPREAD_ROW)};
#undef LCIO_SPREAD_ROW
#undef LCIO_MEAN_ROW
#undef LCIO_BUDGET_ROW
  return *rows;
}

env::BudgetDistribution DefaultBudgetDistribution() {
  env::BudgetDistribution d;
  d.kind = kDefaultBudgetKind;
  return d;
}

absl::Status CheckOptionValue(const std::string& what, const char* type, double value,
                              double lowest, double highest) {
  const std::string type_name = type;
  if (!std::isfinite(value))
    return absl::InvalidArgumentError(absl::StrCat(what, " = ", value, ": must be finite"));
  if (type_name == "bool" && value != 0 && value != 1)
    return absl::InvalidArgumentError(absl::StrCat(what, " = ", value, ": must be 0 or 1"));
  if (type_name != "double" && value != std::round(value))
    return absl::InvalidArgumentError(absl::StrCat(what, " = ", value, ": must be a whole number"));
  if (!(value >= lowest && value <= highest))
    return absl::InvalidArgumentError(
        std::isinf(highest)
            ? absl::StrCat(what, " = ", value, ": must be >= ", lowest)
            : absl::StrCat(what, " = ", value, ": must be in [", lowest, ", ", highest, "]"));
  return absl::OkStatus();
}

template <typename Config>
absl::Status SetOption(Config* config, const std::string& name, double value,
                       const std::string& what_prefix) {
  for (const OptionRow<Config>& row : OptionTable<Config>()) {
    if (name != row.name) continue;
    if (auto s = CheckOptionValue(what_prefix + name, row.type, value, row.lowest, row.highest);
        !s.ok())
      return s;
    row.set(*config, value);
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat(what_prefix, name, " is not known"));
}

template <typename Config>
std::map<std::string, double> OptionValues(const Config& config) {
  std::map<std::string, double> values;
  for (const OptionRow<Config>& row : OptionTable<Config>()) values[row.name] = row.get(config);
  return values;
}

template <typename Config>
std::vector<std::string> OptionNames() {
  std::vector<std::string> names;
  for (const OptionRow<Config>& row : OptionTable<Config>()) names.push_back(row.name);
  return names;
}

template <typename Config>
absl::Status CheckOptions(const Config& config, const std::string& what_prefix) {
  for (const OptionRow<Config>& row : OptionTable<Config>())
    if (auto s = CheckOptionValue(what_prefix + row.name, row.type, row.get(config), row.lowest,
                                  row.highest);
        !s.ok())
      return s;
  return absl::OkStatus();
}

#define LCIO_INSTANTIATE(Config)                                               \
  template absl::Status SetOption<Config>(Config*, const std::string&, double, \
                                          const std::string&);                 \
  template std::map<std::string, double> OptionValues<Config>(const Config&);  \
  template std::vector<std::string> OptionNames<Config>();                     \
  template absl::Status CheckOptions<Config>(const Config&, const std::string&);
LCIO_INSTANTIATE(PpoConfig)
LCIO_INSTANTIATE(A2cConfig)
LCIO_INSTANTIATE(DqnConfig)
LCIO_INSTANTIATE(LagrangeConfig)
LCIO_INSTANTIATE(ObservationConfig)
#undef LCIO_INSTANTIATE

namespace {

struct AlgoName {
  const char* name;
  AlgoSpec spec;
};
constexpr AlgoName kAlgorithms[] = {
    {"ppo", {Learner::kPpo, false}},   {"a2c", {Learner::kA2c, false}},
    {"dqn", {Learner::kDqn, false}},   {"rc-ppo", {Learner::kPpo, true}},
    {"rc-a2c", {Learner::kA2c, true}}, {"rc-dqn", {Learner::kDqn, true}}};

// Calls f(config) on the learner's table and, constrained, on the Lagrange
// table; stops at the first error.
template <typename Options, typename F>
absl::Status ForEachHyperparameterTable(Options& options, const AlgoSpec& spec, F f) {
  absl::Status s;
  switch (spec.learner) {
    case Learner::kPpo:
      s = f(options.ppo);
      break;
    case Learner::kA2c:
      s = f(options.a2c);
      break;
    case Learner::kDqn:
      s = f(options.dqn);
      break;
  }
  if (s.ok() && spec.constrained) s = f(options.lagrange);
  return s;
}

}  // namespace

absl::StatusOr<AlgoSpec> ParseAlgo(const std::string& algo) {
  for (const AlgoName& a : kAlgorithms)
    if (algo == a.name) return a.spec;
  return absl::InvalidArgumentError(absl::StrCat("algo = \"", data::Shorten(algo, 64),
                                                 "\": must be one of ",
                                                 absl::StrJoin(KnownAlgorithms(), ", ")));
}

std::vector<std::string> KnownAlgorithms() {
  std::vector<std::string> names;
  for (const AlgoName& a : kAlgorithms) names.push_back(a.name);
  return names;
}

absl::StatusOr<std::map<std::string, double>> Hyperparameters(const TrainOptions& options) {
  auto spec = ParseAlgo(options.algo);
  if (!spec.ok()) return spec.status();
  std::map<std::string, double> values;
  if (auto s = ForEachHyperparameterTable(options, *spec,
                                          [&](const auto& config) {
                                            values.merge(OptionValues(config));
                                            return absl::OkStatus();
                                          });
      !s.ok())
    return s;
  return values;
}

absl::StatusOr<std::map<std::string, double>> DefaultHyperparameters(const std::string& algo) {
  TrainOptions options;
  options.algo = algo;
  return Hyperparameters(options);
}

absl::Status SetHyperparameter(TrainOptions* options, const std::string& name, double value) {
  auto spec = ParseAlgo(options->algo);
  if (!spec.ok()) return spec.status();
  bool found = false;
  absl::Status s = ForEachHyperparameterTable(*options, *spec, [&](auto& config) {
    absl::Status set = SetOption(&config, name, value, "hyperparameter ");
    if (absl::IsNotFound(set)) return absl::OkStatus();
    found = true;
    return set;
  });
  if (!s.ok()) return s;
  if (!found) {
    const std::map<std::string, double> known = *Hyperparameters(*options);
    std::vector<std::string> names;
    for (const auto& entry : known) names.push_back(entry.first);
    return absl::InvalidArgumentError(absl::StrCat("hyperparameter \"", data::Shorten(name, 64),
                                                   "\" is not one of ", options->algo,
                                                   "'s: ", absl::StrJoin(names, ", ")));
  }
  return absl::OkStatus();
}

absl::Status ValidateTrainOptions(const TrainOptions& options) {
  auto spec = ParseAlgo(options.algo);
  if (!spec.ok()) return spec.status();
  if (auto s = ForEachHyperparameterTable(
          options, *spec,
          [](const auto& config) { return CheckOptions(config, "hyperparameter "); });
      !s.ok())
    return s;
  if (options.timesteps < 1 || options.timesteps > kMaxTimesteps)
    return absl::InvalidArgumentError(
        absl::StrCat("timesteps = ", options.timesteps, ": must be in [1, 1e9]"));
  // Rollouts run whole (as in Stable-Baselines3): a rollout set longer than
  // the run takes that many steps. Defaults are exempt (a short test run with
  // PPO's 2048 is one rollout, as it always was).
  const int n_steps = spec->learner == Learner::kPpo   ? options.ppo.n_steps
                      : spec->learner == Learner::kA2c ? options.a2c.n_steps
                                                       : 0;
  const int default_n_steps = spec->learner == Learner::kPpo   ? PpoConfig{}.n_steps
                              : spec->learner == Learner::kA2c ? A2cConfig{}.n_steps
                                                               : 0;
  if (n_steps > options.timesteps && n_steps > default_n_steps)
    return absl::InvalidArgumentError(absl::StrCat(
        "hyperparameter n_steps = ", n_steps, " is more than timesteps = ", options.timesteps,
        ": a rollout runs whole, so the run would take ", n_steps,
        " steps; lower n_steps or raise timesteps"));
  // A DQN minibatch draws its rows from the replay buffer, which holds at
  // most min(buffer_size, timesteps): a larger batch only costs memory (a
  // billion rows aborted the run out of memory). Defaults are exempt, as above.
  if (spec->learner == Learner::kDqn) {
    const int64_t holds = std::min<int64_t>(options.dqn.buffer_size, options.timesteps);
    if (options.dqn.batch_size > holds && options.dqn.batch_size > DqnConfig{}.batch_size)
      return absl::InvalidArgumentError(absl::StrCat(
          "hyperparameter batch_size = ", options.dqn.batch_size,
          " is more than the replay buffer holds (min(buffer_size, timesteps) = ", holds,
          "): a minibatch draws its rows from it"));
  }
  if (options.torch_threads < 1 || options.torch_threads > 256)
    return absl::InvalidArgumentError(
        absl::StrCat("torch_threads = ", options.torch_threads, ": must be in [1, 256]"));
  if (options.cross_fit_folds < 1 || options.cross_fit_folds > 100)
    return absl::InvalidArgumentError(
        absl::StrCat("cross_fit_folds = ", options.cross_fit_folds, ": must be in [1, 100]"));
  if (!(options.fallback_validation_share >= 0 && options.fallback_validation_share <= 0.5))
    return absl::InvalidArgumentError(
        absl::StrCat("fallback_validation_share = ", options.fallback_validation_share,
                     ": must be in [0, 0.5]"));
  if (auto rule = env::ParseFixedActionRule(options.fallback_fixed_action); !rule.ok())
    return absl::InvalidArgumentError(absl::StrCat(
        "fallback_fixed_action = \"", data::Shorten(options.fallback_fixed_action, 64),
        "\": must be per_cell, anchored, anchored_per_network or anchored_per_network_budget"));
  // Pairs are drawn uniformly, so a repeated pair would silently weigh double.
  const std::vector<env::ProfilePair>& pairs = options.training_profiles;
  for (size_t i = 0; i < pairs.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (pairs[i] == pairs[j])
        return absl::InvalidArgumentError(
            absl::StrCat("training_profiles[", i, "] = ", data::Shorten(pairs[i].device, 64), "/",
                         data::Shorten(pairs[i].network, 64), ": repeats training_profiles[", j,
                         "]; each pair must be named once (pairs are drawn uniformly)"));
  return options.budgets.Validate();
}

namespace {

// A value of the wrong type, named by its field: "training config:
// hyperparameters.gamma = "NaN": must be a number".
absl::Status WrongValue(const std::string& field, const nlohmann::json& value,
                        absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(
      "training config: ", data::Shorten(field, 96), " = ",
      data::Shorten(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 64), ": ",
      rule));
}
absl::StatusOr<double> ConfigNumber(const nlohmann::json& value, const std::string& field) {
  if (!value.is_number()) return WrongValue(field, value, "must be a number");
  return value.get<double>();
}
absl::StatusOr<std::string> ConfigString(const nlohmann::json& value, const std::string& field) {
  if (!value.is_string()) return WrongValue(field, value, "must be a string");
  return value.get<std::string>();
}
absl::StatusOr<bool> ConfigBool(const nlohmann::json& value, const std::string& field) {
  if (!value.is_boolean()) return WrongValue(field, value, "must be true or false");
  return value.get<bool>();
}

absl::Status ApplyBudgetJson(const nlohmann::json& value, env::BudgetDistribution* b) {
  if (!value.is_object())
    return absl::InvalidArgumentError("training config: budget_distribution must be an object");
  for (const auto& [name, v] : value.items()) {
    const std::string field = absl::StrCat("budget_distribution.", name);
    if (name == "kind") {
      auto kind = ConfigString(v, field);
      if (!kind.ok()) return kind.status();
      auto k = env::BudgetDistribution::ParseKind(*kind);
      if (!k.ok()) return k.status();
      b->kind = *k;
      continue;
    }
    bool known = false;
    for (const BudgetRow& row : BudgetTable()) {
      const std::string pointer = row.json_pointer;
      if (pointer == "/" + name) {
        auto number = ConfigNumber(v, field);
        if (!number.ok()) return number.status();
        row.set(*b, *number);
        known = true;
      } else if (pointer.rfind("/" + name + "/", 0) == 0) {
        // A pair {latency_s, money_usd} gives both figures, as it always has.
        const std::string member = pointer.substr(name.size() + 2);
        if (!v.is_object() || !v.contains(member))
          return WrongValue(field, v, "must be {\"latency_s\": number, \"money_usd\": number}");
        auto number = ConfigNumber(v.at(member), absl::StrCat(field, ".", member));
        if (!number.ok()) return number.status();
        row.set(*b, *number);
        known = true;
      }
    }
    if (!known)
      return absl::InvalidArgumentError(
          absl::StrCat("training config: budget_distribution.", data::Shorten(name, 64),
                       " is not known (kind, fixed, low, high, stddev, extreme_share)"));
  }
  return absl::OkStatus();
}

absl::Status ApplyProfilesJson(const nlohmann::json& value, TrainOptions* options) {
  options->all_profiles = value.is_string() && value.get<std::string>() == "all";
  options->training_profiles.clear();
  if (value.is_string() && !options->all_profiles)
    return absl::InvalidArgumentError(absl::StrCat(
        "training config: training_profiles = \"", data::Shorten(value.get<std::string>(), 64),
        "\": must be \"all\" or a list of {device, network}"));
  // An empty list read as no key at all (the --device/--network pair alone):
  // a list left empty by mistake trained on one profile in silence.
  if (value.is_array() && value.empty())
    return WrongValue("training_profiles", value,
                      "must name at least one {\"device\": name, \"network\": name}, or be "
                      "\"all\" (leave the key out for the --device/--network pair alone)");
  if (value.is_array())
    for (size_t i = 0; i < value.size(); ++i) {
      const nlohmann::json& pair = value[i];
      const std::string field = absl::StrCat("training_profiles[", i, "]");
      if (!pair.is_object() || !pair.contains("device") || !pair.contains("network"))
        return WrongValue(field, pair, "must be {\"device\": name, \"network\": name}");
      auto device = ConfigString(pair.at("device"), field + ".device");
      if (!device.ok()) return device.status();
      auto network = ConfigString(pair.at("network"), field + ".network");
      if (!network.ok()) return network.status();
      options->training_profiles.push_back({*device, *network});
    }
  else if (!value.is_string())
    return absl::InvalidArgumentError(
        "training config: training_profiles must be \"all\" or a list of {device, network}");
  return absl::OkStatus();
}

}  // namespace

// `value` as an integer in [min, max] (data::WholeNumber), the message
// prefixed as every training config error.
template <typename Int>
absl::StatusOr<Int> WholeNumber(const nlohmann::json& value, const std::string& key, Int min,
                                Int max) {
  absl::StatusOr<Int> out = data::WholeNumber<Int>(value, key, min, max);
  if (!out.ok())
    return absl::InvalidArgumentError(absl::StrCat("training config: ", out.status().message()));
  return out;
}

absl::Status ApplyTrainConfigJson(const std::string& json, TrainOptions* options, bool keep_algo) {
  absl::Status error;
  const nlohmann::json j = data::ParseJson(json, "training config", &error);
  if (!error.ok()) return error;
  if (!j.is_object()) return absl::InvalidArgumentError("training config: not a JSON object");
  try {
    // The algorithm first: it decides which table the hyperparameters fill.
    if (j.contains("algo") && !keep_algo) {
      auto algo = ConfigString(j.at("algo"), "algo");
      if (!algo.ok()) return algo.status();
      options->algo = *algo;
    }
    for (const auto& [key, value] : j.items()) {
      if (key == "algo") continue;
      if (key == "timesteps") {
        auto timesteps = WholeNumber<int64_t>(value, key, 1, kMaxTimesteps);
        if (!timesteps.ok()) return timesteps.status();
        options->timesteps = *timesteps;
      } else if (key == "seed") {
        auto seed = WholeNumber<uint64_t>(value, key, 0, std::numeric_limits<uint64_t>::max());
        if (!seed.ok()) return seed.status();
        options->seed = *seed;
      } else if (key == "hyperparameters") {
        if (!value.is_object())
          return absl::InvalidArgumentError(
              "training config: hyperparameters must be an object {name: number}");
        for (const auto& [name, v] : value.items()) {
          // A switch (normalize_advantage) may be written true / false: 1 / 0.
          auto number = v.is_boolean() ? absl::StatusOr<double>(v.get<bool>() ? 1.0 : 0.0)
                                       : ConfigNumber(v, absl::StrCat("hyperparameters.", name));
          if (!number.ok()) return number.status();
          if (auto s = SetHyperparameter(options, name, *number); !s.ok())
            return absl::InvalidArgumentError(absl::StrCat("training config: ", s.message()));
        }
      } else if (key == "budget_distribution") {
        if (auto s = ApplyBudgetJson(value, &options->budgets); !s.ok()) return s;
      } else if (key == "training_profiles") {
        if (auto s = ApplyProfilesJson(value, options); !s.ok()) return s;
      } else if (key == "cross_fit_folds") {
        auto folds = WholeNumber<int>(value, key, 0, std::numeric_limits<int>::max());
        if (!folds.ok()) return folds.status();
        options->cross_fit_folds = *folds;
      } else if (key == "fallback_validation_share") {
        auto share = ConfigNumber(value, key);
        if (!share.ok()) return share.status();
        options->fallback_validation_share = *share;
      } else if (key == "fallback_fixed_action") {
        auto rule = ConfigString(value, key);
        if (!rule.ok()) return rule.status();
        options->fallback_fixed_action = *rule;
      } else {
        const std::vector<std::string> observation = OptionNames<ObservationConfig>();
        if (std::find(observation.begin(), observation.end(), key) == observation.end())
          return absl::InvalidArgumentError(absl::StrCat(
              "training config: key \"", data::Shorten(key, 64),
              "\" is not known (algo, timesteps, seed, hyperparameters, budget_distribution, "
              "cross_fit_folds, fallback_validation_share, fallback_fixed_action, ",
              absl::StrJoin(observation, ", "), ", training_profiles)"));
        auto on = ConfigBool(value, key);
        if (!on.ok()) return on.status();
        if (auto s = SetOption<ObservationConfig>(options, key, *on, ""); !s.ok()) return s;
      }
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("training config: ", e.what()));
  }
  return absl::OkStatus();
}

std::string TrainingConfigJson(const TrainOptions& options, const env::SimulatorConfig& config,
                               const std::map<std::string, double>& hp, const std::string& device,
                               const std::vector<env::ProfilePair>& profiles) {
  nlohmann::json j;
  j["algo"] = options.algo;
  j["timesteps"] = options.timesteps;
  j["seed"] = options.seed;
  j["torch_threads"] = options.torch_threads;
  j["device"] = device;
  for (const auto& row : OptionTable<ObservationConfig>())
    if (std::string(row.name) != "profile_aware") j[row.name] = row.get(options) != 0;
  j["cross_fit_folds"] = options.cross_fit_folds;
  // Only when used, so that artifacts without a fallback stay byte-identical.
  if (options.fallback_validation_share > 0)
    j["fallback_validation_share"] = options.fallback_validation_share;
  // Only when not the default, so that earlier artifacts stay byte-identical.
  if (options.fallback_validation_share > 0 && options.fallback_fixed_action != "per_cell")
    j["fallback_fixed_action"] = options.fallback_fixed_action;
  // Only when used, so that single-profile artifacts stay byte-identical.
  if (options.profile_aware || !profiles.empty()) j["profile_aware"] = true;
  if (!profiles.empty()) {
    j["training_profiles"] = nlohmann::json::array();
    for (const env::ProfilePair& p : profiles)
      j["training_profiles"].push_back({{"device", p.device}, {"network", p.network}});
    j["training_profile_draw"] = "uniform per episode";
  }
  const env::BudgetDistribution& b = options.budgets;
  nlohmann::json& budgets = j["budget_distribution"];
  budgets["kind"] = env::BudgetDistribution::KindName(b.kind);
  for (const BudgetRow& row : BudgetTable())
    budgets[nlohmann::json::json_pointer(row.json_pointer)] = row.get(b);
  j["hyperparameters"] = hp;
  j["simulator"] = {{"device", config.device},
                    {"network", config.network},
                    {"alpha", config.weights.alpha},
                    {"beta_association", config.weights.beta_association},
                    {"beta_latency", config.weights.beta_latency},
                    {"beta_usage", config.weights.beta_usage},
                    {"time_span", config.time_span},
                    {"k_neighbors", config.k_neighbors},
                    {"refusal_phrases", config.refusal.phrases}};
  // Only when not the default, so that kNN-trained artifacts stay byte-identical.
  if (config.response_model != env::ResponseModelFamily::kKnn)
    j["simulator"]["response_model"] = env::ResponseModelFamilyName(config.response_model);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

// `bool_range`: how a bool is written where the table is read from (JSON
// true/false for the observation, 0/1 among the numeric hyperparameters).
template <typename Config>
void AppendTable(const std::string& title, const std::string& intro, const char* bool_range,
                 std::string* out) {
  absl::StrAppend(out, "### ", title, "\n\n", intro,
                  "\n\n| option | type | default | range | meaning |\n|---|---|---|---|---|\n");
  for (const OptionRow<Config>& row : OptionTable<Config>()) {
    const std::string type = row.type;
    const std::string value =
        type == "bool" ? (row.default_value != 0 ? "true" : "false") : Number(row.default_value);
    const std::string range =
        type == "bool" ? std::string(bool_range)
        : std::isinf(row.highest)
            ? absl::StrCat(">= ", Number(row.lowest))
            : absl::StrCat("[", Number(row.lowest), ", ", Number(row.highest), "]");
    absl::StrAppend(out, "| `", row.name, "` | ", type == "int64_t" ? "int" : type, " | ", value,
                    " | ", range, " | ", row.help, " |\n");
  }
  absl::StrAppend(out, "\n");
}

}  // namespace

std::string OptionsMarkdown() {
  const TrainOptions defaults;
  std::string out;
  absl::StrAppend(
      &out, "### Run\n\n| option | JSON key | default | meaning |\n|---|---|---|---|\n",
      "| `--algo` | `algo` | ", defaults.algo, " | ", absl::StrJoin(KnownAlgorithms(), ", "),
      " |\n", "| `--timesteps` | `timesteps` | ", defaults.timesteps,
      " | environment steps, in [1, 1e9] |\n", "| `--seed` | `seed` | ", defaults.seed,
      " | network init, sampling, episodes, budgets |\n",
      "| `--cross_fit_folds` | `cross_fit_folds` | ", defaults.cross_fit_folds,
      " | in [1, 100]; >= 2 scores each training episode with a kNN fitted on the "
      "other folds |\n",
      "| `--fallback_validation_share` | `fallback_validation_share` | ",
      defaults.fallback_validation_share,
      " | in [0, 0.5]; > 0 holds that share of the training episodes out of learning "
      "to validate the network against the best fixed action per device x network x "
      "budget (the validated fallback) |\n",
      "| `--fallback_fixed_action` | `fallback_fixed_action` | ", defaults.fallback_fixed_action,
      " | per_cell, anchored, anchored_per_network or anchored_per_network_budget: the "
      "fallback's fixed action is each cell's best on the training side, or an anchor "
      "(the action most cells choose: of all cells, of the network's, or of the network "
      "x budget's) unless the validation episodes confirm a cell's own |\n",
      "| `--training_profiles` | `training_profiles` | (none) | \"all\" or a list of "
      "device/network pairs drawn per episode; implies profile_aware |\n",
      "| `--torch_threads` | (recorded) | ", defaults.torch_threads,
      " | LibTorch intra-op threads, in [1, 256] |\n",
      "| `--torch_device` | (recorded as `device`) | ", defaults.device,
      " | auto, cpu, cuda or cuda:N |\n\n");
  AppendTable<ObservationConfig>("Observation", "Flags of the same name; top-level JSON keys.",
                                 "true, false", &out);
  const env::BudgetDistribution budgets = DefaultBudgetDistribution();
  absl::StrAppend(&out,
                  "### Budget distribution\n\nJSON object `budget_distribution`; every figure is "
                  ">= 0.\n\n| flag | JSON | default | meaning |\n|---|---|---|---|\n",
                  "| `--budget_dist` | `kind` | ", env::BudgetDistribution::KindName(budgets.kind),
                  " | fixed, uniform (between low and high), normal (around fixed, clipped to "
                  "[low, high]) or mixture (normal, with extreme_share near low or high) |\n");
  for (const BudgetRow& row : BudgetTable())
    absl::StrAppend(&out, "| `--", row.flag, "` | `", std::string(row.json_pointer).substr(1),
                    "` | ", Number(row.get(budgets)), " | ", row.help, " |\n");
  absl::StrAppend(&out, "\n");
  const std::string hp_intro =
      "JSON object `hyperparameters`, `--NAME VALUE` or `--hp NAME=VALUE,...`.";
  AppendTable<PpoConfig>("PPO (ppo, rc-ppo)", hp_intro, "0, 1", &out);
  AppendTable<A2cConfig>("A2C (a2c, rc-a2c)", hp_intro, "0, 1", &out);
  AppendTable<DqnConfig>("DQN (dqn, rc-dqn)", hp_intro, "0, 1", &out);
  AppendTable<LagrangeConfig>("Lagrange (rc-ppo, rc-a2c, rc-dqn)", hp_intro, "0, 1", &out);
  return out;
}

}  // namespace lcio::policy
