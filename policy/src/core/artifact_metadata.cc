#include <algorithm>
#include <cmath>
#include <limits>
#include <regex>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lcio/data/json_parse.h"
#include "lcio/data/m4a1.h"
#include "lcio/data/message.h"
#include "lcio/env/action_table.h"
#include "lcio/env/fallback.h"
#include "lcio/env/response_estimator.h"
#include "lcio/env/shield.h"
#include "lcio/policy/artifact.h"
#include "nlohmann/json.hpp"

namespace lcio::policy {
namespace {

using Json = nlohmann::json;

// Embedded JSON documents: an empty string is stored as null.
Json EmbedJson(const std::string& text) {
  if (text.empty()) return nullptr;
  Json json = data::ParseJson(text, "embedded JSON");
  // Invalid (or too deep) text is kept as a string so that ValidateMetadata can name it.
  return json.is_discarded() ? Json(text) : json;
}
std::string UnembedJson(const Json& json) {
  if (json.is_null()) return "";
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Json ToJsonValue(const ArtifactMetadata& m) {
  const env::ObservationLayout& l = m.layout;
  // The lowest layout version that describes the layout, so that builds
  // reading only version 1 keep reading every artifact without the version-2
  // response features.
  Json observation = {{"layout_version", l.profile_aware    ? 4
                                         : l.fit_aware      ? 3
                                         : l.response_aware ? 2
                                                            : 1},
                      {"num_views", l.num_views},
                      {"num_tasks", l.num_tasks},
                      {"time_span", l.time_span},
                      {"task_one_hot", l.task_one_hot},
                      {"prompt_aware", l.prompt_aware},
                      {"budget_aware", l.budget_aware},
                      {"latency_scale_s", l.latency_scale_s},
                      {"money_scale_usd", l.money_scale_usd},
                      {"budget_clip", env::ObservationLayout::kBudgetClip},
                      {"size", l.size()},
                      {"feature_names", l.FeatureNames()}};
  if (l.response_aware) {
    observation["response_aware"] = true;
    observation["response_scale"] = l.response_scale;
    observation["response_clip"] = env::ObservationLayout::kResponseClip;
  }
  if (l.fit_aware) {
    observation["fit_aware"] = true;
    observation["action_time_s"] = l.action_time_s;
    observation["action_money_usd"] = l.action_money_usd;
    observation["fit_reserve_turns"] = env::kDefaultReserveTurns;
  }
  if (l.profile_aware) {
    observation["profile_aware"] = true;
    observation["profile_time_scale_s"] = l.profile_time_scale_s;
    observation["profile_money_scale_usd"] = l.profile_money_scale_usd;
  }
  Json json{
      {"format", "lcio-policy"},
      {"format_version", m.format_version},
      {"policy_version", m.policy_version},
      {"algo", m.algo},
      {"created_utc", m.created_utc},
      {"observation", std::move(observation)},
      {"actions", {{"num_actions", m.num_actions}, {"views", m.action_views}}},
      {"network", {{"activation", m.activation}, {"layer_sizes", m.layer_sizes}}},
      {"tasks", m.tasks},
      {"view_names", m.view_names},
      {"cost_profile", {{"device", m.device}, {"network", m.network}}},
      {"profiles", EmbedJson(m.profiles_json)},
      {"reward_weights",
       {{"alpha", m.weights.alpha},
        {"beta_association", m.weights.beta_association},
        {"beta_latency", m.weights.beta_latency},
        {"beta_usage", m.weights.beta_usage}}},
      {"reference_budget",
       {{"latency_s", m.reference_budget.latency_s}, {"money_usd", m.reference_budget.money_usd}}},
      {"training_config", EmbedJson(m.training_config_json)},
      {"data_sha256", m.data_sha256},
      {"evaluation", EmbedJson(m.evaluation_json)},
      {"task_classifier", EmbedJson(m.classifier_json)},
  };
  if (!m.response_model_json.empty()) json["response_model"] = EmbedJson(m.response_model_json);
  if (!m.fallback_json.empty()) json["fallback"] = EmbedJson(m.fallback_json);
  if (const TrainingSplit& t = m.training_split; t.known)
    json["training_split"] = {{"seed", t.seed},
                              {"test_ratio", t.test_ratio},
                              {"num_episodes", t.num_episodes},
                              {"train_episodes", t.train_episodes},
                              {"train_episodes_sha256", t.train_episodes_sha256}};
  return json;
}

absl::Status Fail(const std::string& source, const std::string& rule) {
  return absl::InvalidArgumentError(absl::StrCat("artifact ", data::Shorten(source), ": ", rule));
}

absl::Status CheckEmbedded(const std::string& text, const char* field, const std::string& source) {
  if (text.empty()) return absl::OkStatus();
  absl::Status error;
  if (!data::ParseJson(text, field, &error).is_object())
    return Fail(source, absl::StrCat(field, " must be a JSON object (or empty)",
                                     error.ok() ? "" : ": ", error.message()));
  return absl::OkStatus();
}

}  // namespace

std::string MetadataToJson(const ArtifactMetadata& metadata, bool pretty) {
  return ToJsonValue(metadata).dump(pretty ? 2 : -1, ' ', false,
                                    nlohmann::json::error_handler_t::replace);
}

std::string MetadataHashText(const ArtifactMetadata& metadata) {
  Json json = ToJsonValue(metadata);
  json.erase("policy_version");
  json.erase("created_utc");
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// An int exactly (data::WholeNumber); `name` names it in the error.
int IntValue(const Json& v, const std::string& name) {
  auto out = data::WholeNumber<int>(v, name, std::numeric_limits<int>::min(),
                                    std::numeric_limits<int>::max());
  if (!out.ok()) throw std::invalid_argument(std::string(out.status().message()));
  return *out;
}

int IntField(const Json& parent, const char* key) { return IntValue(parent.at(key), key); }

// A list of ints, each exactly (`name`[i] in the error).
std::vector<int> IntList(const Json& list, const std::string& name) {
  if (!list.is_array()) throw std::invalid_argument(absl::StrCat(name, " must be a list"));
  std::vector<int> out;
  for (size_t i = 0; i < list.size(); ++i)
    out.push_back(IntValue(list[i], absl::StrCat(name, "[", i, "]")));
  return out;
}

// An unsigned 64-bit seed exactly (-1 would wrap to 2^64 - 1).
uint64_t SeedValue(const Json& v, const std::string& name) {
  auto out = data::WholeNumber<uint64_t>(v, name, 0, std::numeric_limits<uint64_t>::max());
  if (!out.ok()) throw std::invalid_argument(std::string(out.status().message()));
  return *out;
}

absl::StatusOr<ArtifactMetadata> MetadataFromJson(const std::string& text,
                                                  const std::string& source) {
  absl::Status error;
  Json json = data::ParseJson(text, kMetadataFile, &error);
  if (json.is_discarded())
    return Fail(source, absl::StrCat(kMetadataFile, " is not valid JSON: ", error.message()));
  if (!json.is_object()) return Fail(source, absl::StrCat(kMetadataFile, " must be a JSON object"));
  ArtifactMetadata m;
  try {
    if (json.value("format", "") != "lcio-policy")
      return Fail(source, "metadata format must be \"lcio-policy\"");
    // The version gates everything else: a newer format may mean anything.
    m.format_version = IntField(json, "format_version");
    if (m.format_version < 1 || m.format_version > ArtifactMetadata::kFormatVersion)
      return Fail(source, absl::StrCat("format_version = ", m.format_version,
                                       ": this build reads versions 1 to ",
                                       ArtifactMetadata::kFormatVersion));
    const Json& observation = json.at("observation");
    const int layout_version = IntField(observation, "layout_version");
    if (layout_version < 1 || layout_version > env::ObservationLayout::kVersion)
      return Fail(source, absl::StrCat("observation.layout_version = ", layout_version,
                                       ": this build encodes versions 1 to ",
                                       env::ObservationLayout::kVersion));
    m.layout.num_views = IntField(observation, "num_views");
    m.layout.num_tasks = IntField(observation, "num_tasks");
    m.layout.time_span = IntField(observation, "time_span");
    m.layout.task_one_hot = observation.at("task_one_hot").get<bool>();
    m.layout.prompt_aware = observation.at("prompt_aware").get<bool>();
    m.layout.budget_aware = observation.at("budget_aware").get<bool>();
    m.layout.latency_scale_s = observation.at("latency_scale_s").get<double>();
    m.layout.money_scale_usd = observation.at("money_scale_usd").get<double>();
    if (layout_version >= 2) {
      m.layout.response_aware = observation.value("response_aware", false);
      if (m.layout.response_aware) {
        m.layout.response_scale = observation.at("response_scale").get<double>();
        if (observation.at("response_clip").get<double>() != env::ObservationLayout::kResponseClip)
          return Fail(source, absl::StrCat("observation.response_clip = ",
                                           observation.at("response_clip").get<double>(),
                                           ": this build clips at ",
                                           env::ObservationLayout::kResponseClip));
      }
    }
    if (layout_version >= 3) {
      m.layout.fit_aware = observation.value("fit_aware", false);
      if (m.layout.fit_aware) {
        m.layout.action_time_s = observation.at("action_time_s").get<std::vector<double>>();
        m.layout.action_money_usd = observation.at("action_money_usd").get<std::vector<double>>();
        if (IntField(observation, "fit_reserve_turns") != env::kDefaultReserveTurns)
          return Fail(source,
                      absl::StrCat("observation.fit_reserve_turns = ",
                                   IntField(observation, "fit_reserve_turns"),
                                   ": this build reserves ", env::kDefaultReserveTurns, " turns"));
      }
    }
    if (layout_version >= 4) {
      m.layout.profile_aware = observation.value("profile_aware", false);
      if (m.layout.profile_aware) {
        m.layout.profile_time_scale_s = observation.at("profile_time_scale_s").get<double>();
        m.layout.profile_money_scale_usd = observation.at("profile_money_scale_usd").get<double>();
      }
    }
    if (observation.contains("budget_clip") &&
        observation.at("budget_clip").get<double>() != env::ObservationLayout::kBudgetClip)
      return Fail(
          source,
          absl::StrCat("observation.budget_clip = ", observation.at("budget_clip").get<double>(),
                       ": this build clips at ", env::ObservationLayout::kBudgetClip));
    const int size = IntField(observation, "size");
    if (m.layout.time_span >= 1 && m.layout.time_span <= env::ObservationLayout::kMaxTimeSpan &&
        m.layout.num_views >= 0 && m.layout.num_views <= env::ActionTable::kMaxViews &&
        m.layout.num_tasks >= 0 && m.layout.num_tasks <= 100000 && size != m.layout.size())
      return Fail(source, absl::StrCat("observation.size = ", size, " but the layout gives ",
                                       m.layout.size()));
    m.policy_version = json.at("policy_version").get<std::string>();
    m.algo = json.at("algo").get<std::string>();
    m.created_utc = json.value("created_utc", "");
    m.num_actions = IntField(json.at("actions"), "num_actions");
    const Json& views = json.at("actions").at("views");
    if (!views.is_array()) throw std::invalid_argument("actions.views must be a list of lists");
    m.action_views.clear();
    for (size_t a = 0; a < views.size(); ++a)
      m.action_views.push_back(IntList(views[a], absl::StrCat("actions.views[", a, "]")));
    m.activation = json.at("network").at("activation").get<std::string>();
    m.layer_sizes = IntList(json.at("network").at("layer_sizes"), "network.layer_sizes");
    m.tasks = json.at("tasks").get<std::vector<std::string>>();
    m.view_names = json.at("view_names").get<std::vector<std::string>>();
    m.device = json.at("cost_profile").at("device").get<std::string>();
    m.network = json.at("cost_profile").at("network").get<std::string>();
    m.profiles_json = UnembedJson(json.at("profiles"));
    const Json& weights = json.at("reward_weights");
    m.weights.alpha = weights.at("alpha").get<double>();
    m.weights.beta_association = weights.at("beta_association").get<double>();
    m.weights.beta_latency = weights.at("beta_latency").get<double>();
    m.weights.beta_usage = weights.at("beta_usage").get<double>();
    m.reference_budget.latency_s = json.at("reference_budget").at("latency_s").get<double>();
    m.reference_budget.money_usd = json.at("reference_budget").at("money_usd").get<double>();
    m.training_config_json = UnembedJson(json.at("training_config"));
    m.data_sha256 = json.at("data_sha256").get<std::string>();
    m.evaluation_json = UnembedJson(json.at("evaluation"));
    m.classifier_json = UnembedJson(json.at("task_classifier"));
    if (json.contains("response_model"))
      m.response_model_json = UnembedJson(json.at("response_model"));
    if (json.contains("fallback")) m.fallback_json = UnembedJson(json.at("fallback"));
    if (json.contains("training_split")) {  // absent: an unknown split
      const Json& t = json.at("training_split");
      m.training_split.known = true;
      m.training_split.seed = SeedValue(t.at("seed"), "training_split.seed");
      m.training_split.test_ratio = t.at("test_ratio").get<double>();
      m.training_split.num_episodes = IntField(t, "num_episodes");
      m.training_split.train_episodes = IntField(t, "train_episodes");
      m.training_split.train_episodes_sha256 = t.at("train_episodes_sha256").get<std::string>();
    }
  } catch (const Json::exception& e) {
    return Fail(source, absl::StrCat("metadata field missing or of the wrong type: ", e.what()));
  } catch (const std::invalid_argument& e) {
    return Fail(source, absl::StrCat("metadata ", e.what()));
  }
  if (absl::Status status = ValidateMetadata(m, source); !status.ok()) return status;
  return m;
}

absl::Status ValidateMetadata(const ArtifactMetadata& m, const std::string& source) {
  if (m.format_version < 1 || m.format_version > ArtifactMetadata::kFormatVersion)
    return Fail(source, absl::StrCat("format_version = ", m.format_version,
                                     ": this build reads versions 1 to ",
                                     ArtifactMetadata::kFormatVersion));
  static const std::regex kLabel("[A-Za-z0-9._-]{1,64}");
  if (!std::regex_match(m.algo, kLabel))
    return Fail(source, absl::StrCat("algo = \"", data::Shorten(m.algo, 64),
                                     "\": must be 1 to 64 characters of [A-Za-z0-9._-]"));
  if (!m.policy_version.empty() && !std::regex_match(m.policy_version, kLabel))
    return Fail(source, absl::StrCat("policy_version = \"", data::Shorten(m.policy_version, 64),
                                     "\": must be 1 to 64 characters of [A-Za-z0-9._-]"));
  if (m.layout.num_views < 0 || m.layout.num_views > env::ActionTable::kMaxViews)
    return Fail(source, absl::StrCat("observation.num_views = ", m.layout.num_views,
                                     ": must be in [0, ", env::ActionTable::kMaxViews, "]"));
  if (m.layout.time_span < 1 || m.layout.time_span > env::ObservationLayout::kMaxTimeSpan)
    return Fail(source,
                absl::StrCat("observation.time_span = ", m.layout.time_span, ": must be in [1, ",
                             env::ObservationLayout::kMaxTimeSpan, "]"));
  std::shared_ptr<const env::ResponseEstimator> response_model;
  if (m.layout.response_aware) {
    if (m.response_model_json.empty())
      return Fail(source, "observation.response_aware is true but response_model is missing");
    auto model = env::ResponseEstimator::FromJson(m.response_model_json);
    if (!model.ok()) return Fail(source, std::string(model.status().message()));
    response_model = *std::move(model);
  } else if (!m.response_model_json.empty()) {
    return Fail(source, "response_model is present but observation.response_aware is false");
  }
  auto encoder = env::ObservationEncoder::Create(m.layout, std::move(response_model));
  if (!encoder.ok()) return Fail(source, absl::StrCat("observation: ", encoder.status().message()));
  const env::ActionTable& table = encoder->actions();
  if (m.num_actions != table.size())
    return Fail(source, absl::StrCat("actions.num_actions = ", m.num_actions, " but ",
                                     m.layout.num_views, " views give ", table.size(), " actions"));
  if (static_cast<int>(m.action_views.size()) != table.size())
    return Fail(source, absl::StrCat("actions.views has ", m.action_views.size(), " entries; ",
                                     m.layout.num_views, " views give ", table.size(), " actions"));
  for (int a = 0; a < table.size(); ++a)
    if (m.action_views[a] != table.views(a))
      return Fail(source, absl::StrCat("actions.views[", a, "] differs from the action table (",
                                       table.Describe(a),
                                       "): the artifact was trained with another action order"));
  if (m.tasks.empty()) return Fail(source, "tasks is empty");
  for (const std::string& task : m.tasks)
    if (task.empty() || task.size() > data::kMaxNameBytes)
      return Fail(source,
                  absl::StrCat("tasks has \"", data::Shorten(task, 64), "\" (", task.size(),
                               " bytes): a task name is 1 to ", data::kMaxNameBytes, " bytes"));
  if (static_cast<int>(m.tasks.size()) != m.layout.num_tasks)
    return Fail(source, absl::StrCat("tasks has ", m.tasks.size(),
                                     " names but observation.num_tasks = ", m.layout.num_tasks));
  if (static_cast<int>(m.view_names.size()) != m.layout.num_views)
    return Fail(source, absl::StrCat("view_names has ", m.view_names.size(),
                                     " names but observation.num_views = ", m.layout.num_views));
  for (double v :
       {m.weights.alpha, m.weights.beta_association, m.weights.beta_latency, m.weights.beta_usage})
    if (!std::isfinite(v)) return Fail(source, "reward_weights must be finite");
  if (std::isnan(m.reference_budget.latency_s) || m.reference_budget.latency_s < 0 ||
      std::isnan(m.reference_budget.money_usd) || m.reference_budget.money_usd < 0)
    return Fail(source, "reference_budget values must be numbers >= 0");
  if (!m.layer_sizes.empty()) {  // empty before SaveArtifact fills it
    if (m.layer_sizes.size() < 2)
      return Fail(source, "network.layer_sizes needs at least the input and output sizes");
    for (int width : m.layer_sizes)
      if (width < 1 || width > (1 << 20))
        return Fail(source,
                    absl::StrCat("network.layer_sizes has ", width, ": must be in [1, 2^20]"));
    if (m.layer_sizes.front() != m.layout.size())
      return Fail(source, absl::StrCat("network input size ", m.layer_sizes.front(),
                                       " != observation size ", m.layout.size()));
    if (m.layer_sizes.back() != m.num_actions)
      return Fail(source, absl::StrCat("network output size ", m.layer_sizes.back(),
                                       " != number of actions ", m.num_actions));
    if (m.activation != "tanh" && m.activation != "relu")
      return Fail(source, absl::StrCat("network.activation = \"", m.activation,
                                       "\": must be \"tanh\" or \"relu\""));
  }
  for (auto [text, field] :
       {std::pair<const std::string*, const char*>{&m.profiles_json, "profiles"},
        {&m.training_config_json, "training_config"},
        {&m.evaluation_json, "evaluation"}})
    if (absl::Status s = CheckEmbedded(*text, field, source); !s.ok()) return s;
  if (!m.fallback_json.empty()) {
    // A version-1 reader would ignore the table and serve the network where
    // validation said not to.
    if (m.format_version < 2)
      return Fail(source, absl::StrCat("fallback needs format_version >= 2; the file says ",
                                       m.format_version));
    auto fallback = env::FallbackTable::FromJson(m.fallback_json, source);
    if (!fallback.ok()) return fallback.status();
    if (absl::Status s = fallback->Validate(m.num_actions, source); !s.ok()) return s;
  }
  if (const TrainingSplit& t = m.training_split; t.known) {
    if (!(t.test_ratio > 0 && t.test_ratio < 1))
      return Fail(source, absl::StrCat("training_split.test_ratio = ", t.test_ratio,
                                       ": must be in (0, 1)"));
    if (t.num_episodes < 1 || t.train_episodes < 1 || t.train_episodes > t.num_episodes)
      return Fail(source, absl::StrCat("training_split.train_episodes = ", t.train_episodes,
                                       " of num_episodes = ", t.num_episodes,
                                       ": must be in [1, num_episodes]"));
    static const std::regex kSha256("[0-9a-f]{64}");
    if (!std::regex_match(t.train_episodes_sha256, kSha256))
      return Fail(source, absl::StrCat("training_split.train_episodes_sha256 = \"",
                                       data::Shorten(t.train_episodes_sha256, 80),
                                       "\": must be 64 lowercase hex digits"));
  }
  if (m.classifier_json.empty()) return Fail(source, "task_classifier is missing");
  auto classifier = TaskClassifier::FromJson(m.classifier_json);
  if (!classifier.ok()) return Fail(source, std::string(classifier.status().message()));
  if (classifier->tasks() != m.tasks)
    return Fail(source, "task_classifier's tasks differ from the artifact's tasks");
  return absl::OkStatus();
}

std::string TrainEpisodesSha256(std::vector<int> episodes) {
  std::sort(episodes.begin(), episodes.end());
  return data::Sha256Hex(absl::StrJoin(episodes, ","));
}

absl::Status CheckTrainingSplit(const ArtifactMetadata& metadata, const std::string& data_sha256,
                                uint64_t seed, double test_ratio,
                                const std::vector<int>& train_episodes, const std::string& source) {
  const TrainingSplit& t = metadata.training_split;
  const std::string expected =
      absl::StrCat("the training side of split seed ", seed, " (test_ratio ", test_ratio, ", ",
                   train_episodes.size(), " episodes)");
  if (!t.known)
    return absl::FailedPreconditionError(
        absl::StrCat("artifact ", source, ": training_split is unknown (no training_split in ",
                     "its metadata), expected ", expected));
  if (metadata.data_sha256 != data_sha256)
    return absl::FailedPreconditionError(absl::StrCat(
        "artifact ", source, ": data_sha256 = ", data::Shorten(metadata.data_sha256, 64),
        " but the evaluated data set's is ", data_sha256, ": trained on another data set"));
  if (t.train_episodes_sha256 != TrainEpisodesSha256(train_episodes))
    return absl::FailedPreconditionError(
        absl::StrCat("artifact ", source, ": training_split is split seed ", t.seed,
                     " (test_ratio ", t.test_ratio, ", ", t.train_episodes, " of ", t.num_episodes,
                     " episodes, train_episodes_sha256 ", t.train_episodes_sha256,
                     ") but expected ", expected, ": trained on other episodes"));
  return absl::OkStatus();
}

}  // namespace lcio::policy
