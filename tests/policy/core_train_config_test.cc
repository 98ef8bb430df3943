// The option tables: defaults as the artifacts record them, range checks that
// name the field, the value and the rule, and the training configuration's
// JSON (which table a file's hyperparameters fill).
#include <map>
#include <string>

#include "gtest/gtest.h"
#include "lcio/policy/train_config.h"
#include "lcio/policy/trainer.h"

namespace lcio::policy {
namespace {

TEST(OptionTables, DefaultsAreTheRecordedOnes) {
  // What artifacts trained at the defaults record (SB3's defaults).
  const std::map<std::string, double> ppo = {
      {"adam_eps", 1e-5},         {"batch_size", 64},     {"clip_range", 0.2},  {"ent_coef", 0},
      {"gae_lambda", 0.95},       {"gamma", 0.99},        {"hidden_layers", 2}, {"hidden_size", 64},
      {"learning_rate", 3e-4},    {"max_grad_norm", 0.5}, {"n_epochs", 10},     {"n_steps", 2048},
      {"normalize_advantage", 1}, {"vf_coef", 0.5}};
  EXPECT_EQ(*DefaultHyperparameters("ppo"), ppo);
  auto rc_dqn = DefaultHyperparameters("rc-dqn");
  ASSERT_TRUE(rc_dqn.ok());
  EXPECT_EQ(rc_dqn->size(), 16u + 10u);
  EXPECT_EQ(rc_dqn->at("buffer_size"), 1e6);
  EXPECT_EQ(rc_dqn->at("violation_cost"), 0);
  EXPECT_EQ(rc_dqn->at("shield_penalty"), 0);
  EXPECT_EQ(DefaultHyperparameters("a2c")->at("normalize_advantage"), 0);
  EXPECT_EQ(DefaultHyperparameters("sac").status().code(), absl::StatusCode::kInvalidArgument);
  const TrainOptions options;
  EXPECT_EQ(options.budgets.kind, env::BudgetDistribution::Kind::kMixture);
  EXPECT_EQ(options.budgets.fixed.latency_s, 30.0);
  EXPECT_EQ(options.budgets.low.money_usd, 0.002);
  EXPECT_EQ(options.budgets.extreme_share, 0.2);
}

TEST(OptionTables, SetHyperparameterChecksNameAndRange) {
  TrainOptions options;
  options.algo = "rc-ppo";
  ASSERT_TRUE(SetHyperparameter(&options, "clip_range", 0.3).ok());
  EXPECT_EQ(options.ppo.clip_range, 0.3);
  ASSERT_TRUE(SetHyperparameter(&options, "violation_cost", 0.5).ok());
  EXPECT_EQ(options.lagrange.violation_cost, 0.5);
  ASSERT_TRUE(SetHyperparameter(&options, "n_steps", 512).ok());
  EXPECT_EQ(options.ppo.n_steps, 512);
  EXPECT_EQ(options.a2c.n_steps, 5);  // another learner's table is untouched

  absl::Status s = SetHyperparameter(&options, "gamma", 1.5);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "hyperparameter gamma = 1.5: must be in [0, 1]");
  s = SetHyperparameter(&options, "n_steps", 2.5);
  EXPECT_EQ(s.message(), "hyperparameter n_steps = 2.5: must be a whole number");
  s = SetHyperparameter(&options, "n_steps", 1e18);
  EXPECT_NE(s.message().find("must be in [1, 1e+09]"), std::string::npos) << s.message();
  s = SetHyperparameter(&options, "learning_rate", -1);
  EXPECT_EQ(s.message(), "hyperparameter learning_rate = -1: must be in [0, 1]");
  // 1e308 trained a whole run into NaN parameters.
  s = SetHyperparameter(&options, "learning_rate", 1e308);
  EXPECT_EQ(s.message(), "hyperparameter learning_rate = 1e+308: must be in [0, 1]");
  s = SetHyperparameter(&options, "buffer_size", 100);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("\"buffer_size\" is not one of rc-ppo's"), std::string::npos);
  options.algo = "ppo";  // no Lagrangian settings without rc-
  EXPECT_FALSE(SetHyperparameter(&options, "violation_cost", 1).ok());
}

TEST(OptionTables, ValidationCoversEveryRowOfTheAlgorithm) {
  TrainOptions options;
  options.algo = "dqn";
  options.dqn.tau = 2;
  const absl::Status s = ValidateTrainOptions(options);
  EXPECT_EQ(s.message(), "hyperparameter tau = 2: must be in [0, 1]");
  options.dqn.tau = 1;
  options.ppo.clip_range = -1;  // not the algorithm's: not checked, not used
  EXPECT_TRUE(ValidateTrainOptions(options).ok());
}

// Pairs are drawn uniformly: a pair named twice trained at double weight, in
// silence.
TEST(OptionTables, ATrainingProfileNamedTwiceIsRefused) {
  TrainOptions options;
  ASSERT_TRUE(ApplyTrainConfigJson(R"({"training_profiles": [
      {"device": "Jetson TX2", "network": "4G"}, {"device": "Jetson TX2", "network": "Wired"},
      {"device": "Jetson TX2", "network": "4G"}]})",
                                   &options)
                  .ok());
  const absl::Status s = ValidateTrainOptions(options);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "training_profiles[2] = Jetson TX2/4G: repeats training_profiles[0]; each pair must "
            "be named once (pairs are drawn uniformly)");
  options.training_profiles.pop_back();
  EXPECT_TRUE(ValidateTrainOptions(options).ok());
}

TEST(TrainConfigJson, HyperparametersFillTheFileOrTheCallersAlgorithm) {
  const std::string file = R"({"algo": "rc-dqn", "hyperparameters": {"batch_size": 128}})";
  TrainOptions from_file;
  ASSERT_TRUE(ApplyTrainConfigJson(file, &from_file).ok());
  EXPECT_EQ(from_file.algo, "rc-dqn");
  EXPECT_EQ(from_file.dqn.batch_size, 128);
  EXPECT_EQ(from_file.ppo.batch_size, 64);

  TrainOptions pinned;
  pinned.algo = "ppo";  // named on the command line: wins over the file's
  ASSERT_TRUE(ApplyTrainConfigJson(file, &pinned, /*keep_algo=*/true).ok());
  EXPECT_EQ(pinned.algo, "ppo");
  EXPECT_EQ(pinned.ppo.batch_size, 128);

  TrainOptions bad;
  absl::Status s = ApplyTrainConfigJson(R"({"hyperparameters": {"clip_range": 7e400}})", &bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = ApplyTrainConfigJson(R"({"hyperparameters": {"gamma": 2}})", &bad);
  EXPECT_EQ(s.message(), "training config: hyperparameter gamma = 2: must be in [0, 1]");
  s = ApplyTrainConfigJson(R"({"budget_distribution": {"middle": 3}})", &bad);
  EXPECT_NE(s.message().find("budget_distribution.middle is not known"), std::string::npos);
  s = ApplyTrainConfigJson(R"({"verbose": true})", &bad);
  EXPECT_NE(s.message().find("key \"verbose\" is not known"), std::string::npos);
  ASSERT_TRUE(ApplyTrainConfigJson(R"({"fit_aware": true, "budget_distribution":
      {"kind": "uniform", "low": {"latency_s": 4, "money_usd": 0.004}, "extreme_share": 0.4}})",
                                   &bad)
                  .ok());
  EXPECT_TRUE(bad.fit_aware);
  EXPECT_EQ(bad.budgets.kind, env::BudgetDistribution::Kind::kUniform);
  EXPECT_EQ(bad.budgets.low.latency_s, 4);
  EXPECT_EQ(bad.budgets.extreme_share, 0.4);
}

// A value of the wrong type read "type must be number, but is string": no
// field, no value.
TEST(TrainConfigJson, AValueOfTheWrongTypeIsNamedByItsField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"hyperparameters": {"gamma": "NaN"}})",
       "training config: hyperparameters.gamma = \"NaN\": must be a number"},
      {R"({"budget_distribution": {"fixed": "x"}})",
       "training config: budget_distribution.fixed = \"x\": must be {\"latency_s\": number, "
       "\"money_usd\": number}"},
      {R"({"budget_distribution": {"low": {"latency_s": "4", "money_usd": 0.004}}})",
       "training config: budget_distribution.low.latency_s = \"4\": must be a number"},
      {R"({"budget_distribution": {"extreme_share": [0.4]}})",
       "training config: budget_distribution.extreme_share = [0.4]: must be a number"},
      {R"({"budget_distribution": {"kind": 5}})",
       "training config: budget_distribution.kind = 5: must be a string"},
      {R"({"training_profiles": []})",
       "training config: training_profiles = []: must name at least one {\"device\": name, "
       "\"network\": name}, or be \"all\" (leave the key out for the --device/--network pair "
       "alone)"},
      {R"({"training_profiles": [5]})",
       "training config: training_profiles[0] = 5: must be {\"device\": name, \"network\": "
       "name}"},
      {R"({"training_profiles": [{"device": "Jetson TX2", "network": 4}]})",
       "training config: training_profiles[0].network = 4: must be a string"},
      {R"({"fallback_validation_share": "0.1"})",
       "training config: fallback_validation_share = \"0.1\": must be a number"},
      {R"({"fallback_fixed_action": 1})",
       "training config: fallback_fixed_action = 1: must be a string"},
      {R"({"fit_aware": 1})", "training config: fit_aware = 1: must be true or false"},
      {R"({"algo": ["ppo"]})", "training config: algo = [\"ppo\"]: must be a string"},
  };
  for (const auto& [json, message] : cases) {
    TrainOptions options;
    const absl::Status s = ApplyTrainConfigJson(json, &options);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_EQ(s.message(), message) << json;
  }
  // A switch may be written as a JSON bool (nlohmann read it as 1 or 0).
  TrainOptions switched;
  ASSERT_TRUE(ApplyTrainConfigJson(R"({"algo": "ppo", "hyperparameters": {"normalize_advantage":
      false}})",
                                   &switched)
                  .ok());
  EXPECT_FALSE(switched.ppo.normalize_advantage);
}

TEST(TrainConfigJson, FallbackFixedActionRuleIsReadCheckedAndRecordedWhenNotTheDefault) {
  TrainOptions options;
  EXPECT_EQ(options.fallback_fixed_action, "per_cell");
  ASSERT_TRUE(
      ApplyTrainConfigJson(
          R"({"fallback_validation_share": 0.2, "fallback_fixed_action": "anchored"})", &options)
          .ok());
  EXPECT_EQ(options.fallback_fixed_action, "anchored");
  EXPECT_TRUE(ValidateTrainOptions(options).ok());
  const std::string json =
      TrainingConfigJson(options, env::SimulatorConfig(), *Hyperparameters(options), "cpu", {});
  EXPECT_NE(json.find("\"fallback_fixed_action\":\"anchored\""), std::string::npos) << json;
  options.fallback_fixed_action = "per_cell";
  EXPECT_EQ(
      TrainingConfigJson(options, env::SimulatorConfig(), *Hyperparameters(options), "cpu", {})
          .find("fallback_fixed_action"),
      std::string::npos);
  options.fallback_fixed_action = "mode";
  const absl::Status s = ValidateTrainOptions(options);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "fallback_fixed_action = \"mode\": must be per_cell, anchored, anchored_per_network or "
            "anchored_per_network_budget");
  EXPECT_NE(OptionsMarkdown().find("| `--fallback_fixed_action` | `fallback_fixed_action` |"),
            std::string::npos);
}

// Whole-number keys refuse what they cannot hold exactly instead of
// truncating or wrapping it (1e308 steps read as -9223372036854775808, a
// seed of -1 as 18446744073709551615).
TEST(TrainConfigJson, WholeNumbersAreCheckedNotTruncatedOrWrapped) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"timesteps": 256.7})", "timesteps = 256.7: must be a whole number in [1, "},
      {R"({"timesteps": 1e308})", "timesteps = 1e+308: must be a whole number"},
      {R"({"timesteps": 0})", "timesteps = 0: must be a whole number in [1, "},
      {R"({"seed": -1})", "seed = -1: must be a whole number in [0, 18446744073709551615]"},
      {R"({"seed": 1180591620717411303424})", "seed = 1.1805916207174113e+21: must be"},
      {R"({"seed": 1.5})", "seed = 1.5: must be a whole number"},
      {R"({"cross_fit_folds": 1099511627776})",
       "cross_fit_folds = 1099511627776: must be a whole number in [0, 2147483647]"},
      {R"({"timesteps": "many"})", "timesteps = \"many\": must be a whole number"},
  };
  for (const auto& [json, message] : cases) {
    TrainOptions options;
    const absl::Status s = ApplyTrainConfigJson(json, &options);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_NE(s.message().find(message), std::string::npos) << json << ": " << s;
  }
  TrainOptions options;
  ASSERT_TRUE(
      ApplyTrainConfigJson(R"({"timesteps": 4096, "seed": 18446744073709551615})", &options).ok());
  EXPECT_EQ(options.timesteps, 4096);
  EXPECT_EQ(options.seed, 18446744073709551615u);
  // A whole number written as a decimal is that number.
  const absl::Status decimals =
      ApplyTrainConfigJson(R"({"timesteps": 6e5, "seed": 7.0, "cross_fit_folds": 5.0})", &options);
  ASSERT_TRUE(decimals.ok()) << decimals;
  EXPECT_EQ(options.timesteps, 600000);
  EXPECT_EQ(options.seed, 7u);
  EXPECT_EQ(options.cross_fit_folds, 5);
}

TEST(TrainConfigJson, RecordsTheAlgorithmsTablesAsNumbers) {
  TrainOptions options;
  options.algo = "rc-a2c";
  options.a2c.n_steps = 16;
  options.lagrange.cost_limit_money = 0.01;
  options.budgets.high.latency_s = 45;
  options.response_aware = true;
  const std::string json =
      TrainingConfigJson(options, env::SimulatorConfig(), *Hyperparameters(options), "cpu", {});
  EXPECT_NE(json.find("\"n_steps\":16.0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"cost_limit_money\":0.01"), std::string::npos) << json;
  EXPECT_NE(json.find("\"high\":{\"latency_s\":45.0"), std::string::npos) << json;
  EXPECT_EQ(json.find("profile_aware"), std::string::npos) << json;
}

TEST(OptionsMarkdown, ListsEveryRowOfEveryTable) {
  const std::string md = OptionsMarkdown();
  for (const std::string& algo : KnownAlgorithms()) {
    const std::map<std::string, double> defaults = *DefaultHyperparameters(algo);
    for (const auto& [name, value] : defaults)
      EXPECT_NE(md.find("| `" + name + "` |"), std::string::npos) << name;
  }
  for (const std::string& name : OptionNames<ObservationConfig>())
    EXPECT_NE(md.find("| `" + name + "` |"), std::string::npos) << name;
  for (const BudgetRow& row : BudgetTable())
    EXPECT_NE(md.find(std::string("`--") + row.flag + "`"), std::string::npos) << row.flag;
}

}  // namespace
}  // namespace lcio::policy
