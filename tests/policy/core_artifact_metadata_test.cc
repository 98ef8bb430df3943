#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lcio/env/action_table.h"
#include "lcio/env/fallback.h"
#include "lcio/env/observation.h"
#include "lcio/env/response_estimator.h"
#include "lcio/env/shield.h"
#include "lcio/policy/artifact.h"
#include "nlohmann/json.hpp"

namespace {

using lcio::policy::ArtifactMetadata;
using lcio::policy::MetadataFromJson;
using lcio::policy::MetadataToJson;
using lcio::policy::ValidateMetadata;
using Json = nlohmann::json;

ArtifactMetadata ValidMetadata() {
  ArtifactMetadata m;
  m.algo = "rc-ppo";
  m.policy_version = "rc-ppo-0123456789ab";
  m.layout.num_views = 3;
  m.layout.num_tasks = 2;
  m.layout.latency_scale_s = 12.5;
  m.layout.money_scale_usd = 0.0137;
  auto table = lcio::env::ActionTable::Create(3);
  m.num_actions = table->size();
  for (int a = 0; a < table->size(); ++a) m.action_views.push_back(table->views(a));
  m.tasks = {"control", "question"};
  m.view_names = {"front", "left", "right"};
  m.profiles_json = R"({"devices":[{"name":"d","peak_gflops":1.5,"max_power_w":7}]})";
  m.device = "Jetson TX2";
  m.network = "4G";
  m.weights.alpha = 0.7;
  m.reference_budget = {8.0, 0.01};
  m.training_config_json = R"({"lr":0.0003,"n_steps":2048})";
  m.data_sha256 = std::string(64, 'a');
  m.evaluation_json = R"({"reward":0.81})";
  m.created_utc = "2024-01-01T00:00:00Z";
  m.classifier_json =
      lcio::policy::TaskClassifier::Train({"turn on", "what is"}, {0, 1}, m.tasks)->ToJson();
  m.activation = "tanh";
  m.layer_sizes = {m.layout.size(), 64, 64, m.num_actions};
  return m;
}

TEST(ArtifactMetadata, JsonRoundTrip) {
  const ArtifactMetadata m = ValidMetadata();
  ASSERT_TRUE(ValidateMetadata(m, "x.pt").ok()) << ValidateMetadata(m, "x.pt");
  const std::string json = MetadataToJson(m, /*pretty=*/true);
  auto back = MetadataFromJson(json, "x.pt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->policy_version, m.policy_version);
  EXPECT_EQ(back->algo, m.algo);
  EXPECT_EQ(back->layout.size(), m.layout.size());
  EXPECT_EQ(back->layout.latency_scale_s, m.layout.latency_scale_s);
  EXPECT_EQ(back->layout.money_scale_usd, m.layout.money_scale_usd);
  EXPECT_EQ(back->action_views, m.action_views);
  EXPECT_EQ(back->tasks, m.tasks);
  EXPECT_EQ(back->view_names, m.view_names);
  EXPECT_EQ(back->device, m.device);
  EXPECT_EQ(back->network, m.network);
  EXPECT_EQ(back->weights.alpha, m.weights.alpha);
  EXPECT_EQ(back->reference_budget.money_usd, m.reference_budget.money_usd);
  EXPECT_EQ(Json::parse(back->profiles_json), Json::parse(m.profiles_json));
  EXPECT_EQ(Json::parse(back->training_config_json), Json::parse(m.training_config_json));
  EXPECT_EQ(back->data_sha256, m.data_sha256);
  EXPECT_EQ(back->created_utc, m.created_utc);
  EXPECT_EQ(back->layer_sizes, m.layer_sizes);
  EXPECT_EQ(back->activation, m.activation);
  EXPECT_EQ(MetadataToJson(*back), MetadataToJson(m));
  // Embedded documents read as JSON, not escaped strings.
  EXPECT_TRUE(Json::parse(json)["training_config"].is_object());
  EXPECT_EQ(Json::parse(json)["observation"]["feature_names"].size(), m.layout.size());
}

TEST(ArtifactMetadata, CarriesAFallbackTableFromFormatVersion2) {
  ArtifactMetadata m = ValidMetadata();
  lcio::env::FallbackEntry e;
  e.device = "Jetson TX2";
  e.network = "4G";
  e.budget = {8, 0.01};
  e.action_time_s.assign(m.num_actions, 1.0);
  e.action_money_usd.assign(m.num_actions, 0.001);
  e.fixed_action = 1;
  m.fallback_json = lcio::env::FallbackTable({e}).ToJson();
  m.format_version = 2;
  auto back = MetadataFromJson(MetadataToJson(m), "x.pt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->fallback_json, m.fallback_json);
  // A version-1 reader would ignore the table: version 1 with one is refused.
  m.format_version = 1;
  const absl::Status v1 = ValidateMetadata(m, "x.pt");
  EXPECT_NE(v1.message().find("fallback needs format_version >= 2"), std::string::npos) << v1;
  // A table that does not fit the actions is refused by name.
  m.format_version = 2;
  e.fixed_action = m.num_actions;
  m.fallback_json = lcio::env::FallbackTable({e}).ToJson();
  const absl::Status bad = ValidateMetadata(m, "x.pt");
  EXPECT_NE(bad.message().find("fixed_action = 9"), std::string::npos) << bad;
  m.fallback_json = R"({"method": "something else", "entries": []})";
  EXPECT_FALSE(ValidateMetadata(m, "x.pt").ok());
}

TEST(ArtifactMetadata, HashTextIgnoresVersionAndTimeOnly) {
  ArtifactMetadata a = ValidMetadata(), b = ValidMetadata();
  b.policy_version = "other";
  b.created_utc = "2030-01-01T00:00:00Z";
  EXPECT_EQ(MetadataHashText(a), MetadataHashText(b));
  b.data_sha256 = std::string(64, 'b');
  EXPECT_NE(MetadataHashText(a), MetadataHashText(b));
}

void ExpectJsonRejected(const std::function<void(Json&)>& edit, const std::string& needle) {
  Json json = Json::parse(MetadataToJson(ValidMetadata()));
  edit(json);
  auto parsed = MetadataFromJson(json.dump(), "/tmp/p.pt");
  ASSERT_FALSE(parsed.ok()) << "accepted an edit expected to fail with: " << needle;
  EXPECT_NE(parsed.status().message().find("/tmp/p.pt"), std::string::npos) << parsed.status();
  EXPECT_NE(parsed.status().message().find(needle), std::string::npos)
      << parsed.status() << " (wanted \"" << needle << "\")";
}

TEST(ArtifactMetadata, RejectsIncompatibleJson) {
  EXPECT_FALSE(MetadataFromJson("not json", "p").ok());
  EXPECT_FALSE(MetadataFromJson("[]", "p").ok());
  ExpectJsonRejected([](Json& j) { j["format"] = "zip"; }, "format must be");
  ExpectJsonRejected([](Json& j) { j["format_version"] = 3; }, "format_version = 3");
  ExpectJsonRejected([](Json& j) { j["format_version"] = 0; }, "format_version = 0");
  // Numbers an int cannot hold exactly are refused, not wrapped or truncated.
  ExpectJsonRejected([](Json& j) { j["format_version"] = 1180591620717411303424.0; },
                     "format_version = 1.1805916207174113e+21: must be a whole number");
  ExpectJsonRejected([](Json& j) { j["format_version"] = 1.5; }, "format_version = 1.5");
  ExpectJsonRejected([](Json& j) { j["format_version"] = 3.0; }, "format_version = 3");
  ExpectJsonRejected([](Json& j) { j["network"]["layer_sizes"][1] = 16.5; },
                     "network.layer_sizes[1] = 16.5: must be a whole number");
  ExpectJsonRejected([](Json& j) { j["actions"]["views"][2][0] = uint64_t{1} << 40; },
                     "actions.views[2][0] = 1099511627776: must be a whole number");
  ExpectJsonRejected(
      [](Json& j) {
        j["training_split"] = {{"seed", -1},
                               {"test_ratio", 0.2},
                               {"num_episodes", 100},
                               {"train_episodes", 80},
                               {"train_episodes_sha256", std::string(64, '0')}};
      },
      "training_split.seed = -1: must be a whole number in [0, 18446744073709551615]");
  ExpectJsonRejected(
      [](Json& j) { j["actions"]["num_actions"] = uint64_t{1} << 62; },
      "num_actions = 4611686018427387904: must be a whole number in [-2147483648, 2147483647]");
  ExpectJsonRejected([](Json& j) { j["observation"]["layout_version"] = 7; }, "layout_version = 7");
  ExpectJsonRejected([](Json& j) { j["observation"]["size"] = 5; }, "observation.size = 5");
  ExpectJsonRejected([](Json& j) { j["observation"]["budget_clip"] = 4; }, "budget_clip");
  ExpectJsonRejected([](Json& j) { j["observation"].erase("time_span"); }, "missing");
  ExpectJsonRejected([](Json& j) { j["actions"]["num_actions"] = 10; }, "num_actions = 10");
  ExpectJsonRejected([](Json& j) { std::swap(j["actions"]["views"][1], j["actions"]["views"][2]); },
                     "actions.views[1]");
  ExpectJsonRejected([](Json& j) { j["actions"]["views"].erase(7); }, "actions.views has 8");
  ExpectJsonRejected([](Json& j) { j["tasks"] = Json::array(); }, "tasks");
  ExpectJsonRejected([](Json& j) { j["tasks"] = {"a", "b", "c"}; }, "tasks has 3");
  // The decision log's readers take names up to 256 bytes: the server would
  // log decisions with a longer task that no reader accepts.
  ExpectJsonRejected([](Json& j) { j["tasks"][0] = std::string(257, 't'); },
                     "(257 bytes): a task name is 1 to 256 bytes");
  ExpectJsonRejected([](Json& j) { j["tasks"] = {"control", "other"}; }, "task_classifier");
  ExpectJsonRejected([](Json& j) { j["view_names"] = {"a"}; }, "view_names");
  ExpectJsonRejected([](Json& j) { j["task_classifier"] = nullptr; }, "task_classifier");
  ExpectJsonRejected([](Json& j) { j["task_classifier"]["smoothing"] = -1; }, "smoothing");
  ExpectJsonRejected([](Json& j) { j["training_config"] = "{broken"; }, "training_config");
  ExpectJsonRejected([](Json& j) { j["algo"] = "a b"; }, "algo");
  ExpectJsonRejected([](Json& j) { j["algo"] = ""; }, "algo");
  ExpectJsonRejected([](Json& j) { j["network"]["layer_sizes"][0] = 3; }, "network input size 3");
  ExpectJsonRejected([](Json& j) { j["network"]["layer_sizes"].back() = 4; },
                     "network output size 4");
  ExpectJsonRejected([](Json& j) { j["network"]["layer_sizes"] = {20}; }, "at least");
  ExpectJsonRejected([](Json& j) { j["network"]["activation"] = "gelu"; }, "activation");
  ExpectJsonRejected([](Json& j) { j["observation"]["num_views"] = 40; }, "num_views = 40");
  ExpectJsonRejected([](Json& j) { j["observation"]["latency_scale_s"] = -1; }, "latency_scale");
  ExpectJsonRejected([](Json& j) { j["reference_budget"]["money_usd"] = -1; }, "reference_budget");
}

// A response model over the layout's keys: two points per action bit.
std::string TestResponseModelJson(int key_width) {
  std::vector<double> keys, values;
  for (int i = 0; i < 4; ++i) {
    for (int d = 0; d < key_width; ++d) keys.push_back(d == key_width - 1 ? i % 2 : -1);
    values.push_back(0.5 + i);
  }
  return (*lcio::env::ResponseEstimator::FromPoints(key_width, keys, values, 2))->ToJson();
}

ArtifactMetadata ResponseAwareMetadata() {
  ArtifactMetadata m = ValidMetadata();
  m.layout.response_aware = true;
  m.layout.response_scale = 1.25;
  m.response_model_json = TestResponseModelJson(lcio::env::ResponseKeyWidth(3, 5));
  m.layer_sizes.front() = m.layout.size();
  return m;
}

// Layout version 2 adds response features; an artifact without them is still
// written as version 1, so that builds reading only version 1 keep reading it.
TEST(ArtifactMetadata, ResponseAwareLayoutsCarryTheirModel) {
  EXPECT_EQ(Json::parse(MetadataToJson(ValidMetadata()))["observation"]["layout_version"], 1);
  EXPECT_FALSE(Json::parse(MetadataToJson(ValidMetadata())).contains("response_model"));
  const ArtifactMetadata m = ResponseAwareMetadata();
  ASSERT_TRUE(ValidateMetadata(m, "r.pt").ok()) << ValidateMetadata(m, "r.pt");
  const Json json = Json::parse(MetadataToJson(m));
  EXPECT_EQ(json["observation"]["layout_version"], 2);
  EXPECT_EQ(json["observation"]["size"], 25 + 2 + 3 + 2 + 9);
  EXPECT_TRUE(json["response_model"].is_object());
  auto back = MetadataFromJson(MetadataToJson(m), "r.pt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->layout.response_aware);
  EXPECT_EQ(back->layout.response_scale, 1.25);
  EXPECT_EQ(Json::parse(back->response_model_json), Json::parse(m.response_model_json));
  EXPECT_EQ(MetadataToJson(*back), MetadataToJson(m));
  EXPECT_NE(MetadataHashText(*back), MetadataHashText(ValidMetadata()));

  auto rejected = [&m](const std::function<void(Json&)>& edit, const std::string& needle) {
    Json j = Json::parse(MetadataToJson(m));
    edit(j);
    auto parsed = MetadataFromJson(j.dump(), "r.pt");
    ASSERT_FALSE(parsed.ok()) << needle;
    EXPECT_NE(parsed.status().message().find(needle), std::string::npos) << parsed.status();
  };
  rejected([](Json& j) { j.erase("response_model"); }, "response_model is missing");
  rejected([](Json& j) { j["response_model"]["key_width"] = 3; }, "keys[0]");
  rejected([](Json& j) { j["response_model"] = {{"key_width", 1}}; }, "response model");
  // Integers exactly, and bounds that keep every prediction a number: keys of
  // 1e200 made each squared distance inf and each prediction NaN, served.
  rejected([](Json& j) { j["response_model"]["key_width"] = 29.5; }, "key_width = 29.5");
  rejected([](Json& j) { j["response_model"]["k_neighbors"] = 1e10; },
           "k_neighbors = 10000000000.0: must be a whole number in [1, 2147483647]");
  rejected([](Json& j) { j["response_model"]["keys"][1][0] = 1e200; },
           "keys[1][0] = 1e+200: must be within +-1000000");
  rejected([](Json& j) { j["response_model"]["values"][0] = 1.7e308; },
           "values[0] = 1.7e+308: must be within +-1000");
  // A million empty keys under a wide key_width: refused by their size, not
  // by a failed allocation of values x key_width.
  rejected(
      [](Json& j) {
        j["response_model"]["key_width"] = 4096;
        j["response_model"]["keys"] = Json::array();
        j["response_model"]["values"] = Json::array();
        for (int i = 0; i < 1000000; ++i) {
          j["response_model"]["keys"].push_back(Json::array());
          j["response_model"]["values"].push_back(0);
        }
      },
      "keys[0] must be an array of 4096 numbers");
  rejected([](Json& j) { j["observation"]["response_clip"] = 1; }, "response_clip = 1");
  rejected([](Json& j) { j["observation"]["response_scale"] = 0; }, "response_scale = 0");
  // A layout newer than this build speaks is refused by name.
  rejected(
      [](Json& j) {
        j["observation"]["layout_version"] = lcio::env::ObservationLayout::kVersion + 1;
      },
      absl::StrCat("layout_version = ", lcio::env::ObservationLayout::kVersion + 1,
                   ": this build encodes versions 1 to ", lcio::env::ObservationLayout::kVersion));
  // A version-1 reader of this file would see another size: the size rule.
  rejected([](Json& j) { j["observation"]["layout_version"] = 1; }, "observation.size = 41");
  ExpectJsonRejected(
      [](Json& j) {
        j["response_model"] = Json::parse(TestResponseModelJson(lcio::env::ResponseKeyWidth(3, 5)));
      },
      "response_model is present but observation.response_aware is false");
}

TEST(ArtifactMetadata, FitAwareLayoutsCarryTheirCosts) {
  ArtifactMetadata m = ValidMetadata();
  m.layout.fit_aware = true;
  m.layout.action_time_s = {0.01, 0.4, 16, 16, 16, 32, 32, 32, 48};
  m.layout.action_money_usd = {0, 0.0005, 0.005, 0.005, 0.005, 0.01, 0.01, 0.01, 0.015};
  m.layer_sizes.front() = m.layout.size();
  ASSERT_TRUE(ValidateMetadata(m, "f.pt").ok()) << ValidateMetadata(m, "f.pt");
  const Json json = Json::parse(MetadataToJson(m));
  EXPECT_EQ(json["observation"]["layout_version"], 3);
  EXPECT_EQ(json["observation"]["size"], 25 + 2 + 3 + 2 + 9);
  EXPECT_EQ(json["observation"]["fit_reserve_turns"], lcio::env::kDefaultReserveTurns);
  auto back = MetadataFromJson(MetadataToJson(m), "f.pt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->layout.fit_aware);
  EXPECT_EQ(back->layout.action_time_s, m.layout.action_time_s);
  EXPECT_EQ(back->layout.action_money_usd, m.layout.action_money_usd);
  EXPECT_EQ(MetadataToJson(*back), MetadataToJson(m));

  auto rejected = [&m](const std::function<void(Json&)>& edit, const std::string& needle) {
    Json j = Json::parse(MetadataToJson(m));
    edit(j);
    auto parsed = MetadataFromJson(j.dump(), "f.pt");
    ASSERT_FALSE(parsed.ok()) << needle;
    EXPECT_NE(parsed.status().message().find(needle), std::string::npos) << parsed.status();
  };
  rejected([](Json& j) { j["observation"]["action_time_s"].erase(0); }, "action_time_s has 8");
  rejected([](Json& j) { j["observation"]["action_money_usd"][4] = -0.5; },
           "action_money_usd[4] = -0.5");
  rejected([](Json& j) { j["observation"].erase("action_time_s"); }, "action_time_s");
  rejected([](Json& j) { j["observation"]["fit_reserve_turns"] = 2; }, "fit_reserve_turns = 2");
  // An older reader's view of this file has another size: the size rule.
  rejected([](Json& j) { j["observation"]["layout_version"] = 2; }, "observation.size = 41");
}

// Layout version 4 adds the request's own profile; its scales are recorded.
TEST(ArtifactMetadata, ProfileAwareLayoutsRecordTheirScales) {
  ArtifactMetadata m = ValidMetadata();
  m.layout.profile_aware = true;
  m.layer_sizes.front() = m.layout.size();
  ASSERT_TRUE(ValidateMetadata(m, "p.pt").ok()) << ValidateMetadata(m, "p.pt");
  const Json json = Json::parse(MetadataToJson(m));
  EXPECT_EQ(json["observation"]["layout_version"], 4);
  EXPECT_EQ(json["observation"]["size"], 25 + 2 + 3 + 2 + 9 + 9 + 2);
  EXPECT_EQ(json["observation"]["profile_time_scale_s"], 10.0);
  EXPECT_EQ(json["observation"]["profile_money_scale_usd"], 0.01);
  auto back = MetadataFromJson(MetadataToJson(m), "p.pt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->layout.profile_aware);
  EXPECT_EQ(MetadataToJson(*back), MetadataToJson(m));

  auto rejected = [&m](const std::function<void(Json&)>& edit, const std::string& needle) {
    Json j = Json::parse(MetadataToJson(m));
    edit(j);
    auto parsed = MetadataFromJson(j.dump(), "p.pt");
    ASSERT_FALSE(parsed.ok()) << needle;
    EXPECT_NE(parsed.status().message().find(needle), std::string::npos) << parsed.status();
  };
  rejected([](Json& j) { j["observation"].erase("profile_time_scale_s"); }, "profile_time_scale_s");
  rejected([](Json& j) { j["observation"]["profile_money_scale_usd"] = 0; },
           "profile_money_scale_usd = 0");
  rejected([](Json& j) { j["observation"]["layout_version"] = 5; }, "layout_version = 5");
  // A version-3 reader's view of this file has another size: the size rule.
  rejected([](Json& j) { j["observation"]["layout_version"] = 3; }, "observation.size = 52");
}

// A profile_aware layout decides with each request's costs; the training
// profile's it may carry as well are checked as a fit_aware layout's are, or
// left out.
TEST(ArtifactMetadata, ProfileAwareLayoutsCheckTheCostsTheyCarry) {
  ArtifactMetadata m = ValidMetadata();
  m.layout.fit_aware = true;
  m.layout.profile_aware = true;
  m.layer_sizes.front() = m.layout.size();
  ASSERT_TRUE(ValidateMetadata(m, "p.pt").ok()) << ValidateMetadata(m, "p.pt");  // none carried
  m.layout.action_time_s = {0.01, 0.4, 16, 16, 16, 32, 32, 32, 48};
  m.layout.action_money_usd = {0, 0.0005, 0.005, 0.005, 0.005, 0.01, 0.01, 0.01, 0.015};
  ASSERT_TRUE(ValidateMetadata(m, "p.pt").ok()) << ValidateMetadata(m, "p.pt");
  Json j = Json::parse(MetadataToJson(m));
  j["observation"]["action_money_usd"][4] = -0.5;
  auto parsed = MetadataFromJson(j.dump(), "p.pt");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("action_money_usd[4] = -0.5"), std::string::npos)
      << parsed.status();
  j = Json::parse(MetadataToJson(m));
  j["observation"]["action_time_s"].erase(0);
  parsed = MetadataFromJson(j.dump(), "p.pt");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("action_time_s has 8"), std::string::npos)
      << parsed.status();
}

TEST(ArtifactMetadata, UnknownKeysAreIgnored) {
  Json json = Json::parse(MetadataToJson(ValidMetadata()));
  json["added_in_a_later_minor_revision"] = {{"x", 1}};
  EXPECT_TRUE(MetadataFromJson(json.dump(), "p").ok());
}

// 100000 nested '[' in the metadata file meet the shared depth limit, not
// the stack (a deep embedded document used to crash the reader).
TEST(ArtifactMetadata, DeeplyNestedJsonIsRefusedByTheDepthLimit) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto parsed = MetadataFromJson(deep, "deep.pt");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("more than 64 levels deep (the limit)"),
            std::string::npos)
      << parsed.status();
  // Deep inside valid metadata, where the reader copies the value.
  std::string text = MetadataToJson(ValidMetadata());
  const size_t at = text.find("\"profiles\":{");
  ASSERT_NE(at, std::string::npos) << text;
  text.insert(at + 12, "\"deep\":" + deep + ",");
  parsed = MetadataFromJson(text, "deep.pt");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("more than 64 levels deep (the limit)"),
            std::string::npos)
      << parsed.status();
}

}  // namespace
