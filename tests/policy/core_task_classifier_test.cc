#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lcio/env/split.h"
#include "lcio/policy/task_classifier.h"
#include "nlohmann/json.hpp"
#include "test_support.h"

namespace {

using lcio::policy::TaskClassifier;
using lcio::policy::TaskClassifierFeatures;

struct Corpus {
  std::vector<std::string> prompts;
  std::vector<int> labels;
};

Corpus PromptsOf(const lcio::data::Dataset& dataset, const std::vector<int>& episodes) {
  Corpus corpus;
  for (int e : episodes)
    for (const auto& turn : dataset.episodes[e].turns) {
      corpus.prompts.push_back(turn.question);
      corpus.labels.push_back(turn.task_index);
    }
  return corpus;
}

TaskClassifier TrainOn(const lcio::data::Dataset& dataset, const std::vector<int>& episodes) {
  Corpus corpus = PromptsOf(dataset, episodes);
  auto classifier = TaskClassifier::Train(corpus.prompts, corpus.labels, dataset.tasks);
  EXPECT_TRUE(classifier.ok()) << classifier.status();
  return *std::move(classifier);
}

std::vector<int> AllEpisodes(const lcio::data::Dataset& dataset) {
  std::vector<int> all(dataset.episodes.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  return all;
}

TEST(TaskClassifierFeatures, NormalisesCaseAndPunctuation) {
  EXPECT_EQ(TaskClassifierFeatures("Hello, WORLD!", 1 << 15),
            TaskClassifierFeatures("hello   world", 1 << 15));
  // 2 unigrams + 1 bigram + the 11 trigrams of " hello world ".
  EXPECT_EQ(TaskClassifierFeatures("hello world", 1 << 15).size(), 14u);
  EXPECT_TRUE(TaskClassifierFeatures("", 1 << 15).empty());
}

TEST(TaskClassifierFeatures, HashIsFnv1aAndStable) {
  // FNV-1a 64 of "w:a" and "c: a " modulo 2^15, computed independently: the
  // features must not depend on the platform's std::hash.
  EXPECT_EQ(TaskClassifierFeatures("a", 1 << 15), (std::vector<uint32_t>{7711, 28625}));
  // Any bucket count, power of two or not (the former masks, the latter divides).
  const auto fnv = [](const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
  };
  for (uint64_t n : {1000ull, 1ull << 15, 3ull, 1ull})
    EXPECT_EQ(TaskClassifierFeatures("a", static_cast<int>(n)),
              (std::vector<uint32_t>{static_cast<uint32_t>(fnv("w:a") % n),
                                     static_cast<uint32_t>(fnv("c: a ") % n)}))
        << n;
}

// Every feature of prompts with capitals, digits, punctuation, UTF-8 and
// bytes that are not UTF-8, as the classifier of the shipped artifacts
// computed them (2026-12-03): a trained classifier's buckets must not move.
TEST(TaskClassifierFeatures, PinnedForMixedBytes) {
  EXPECT_EQ(
      TaskClassifierFeatures("Is the RED car #2 left of Caf\xc3\xa9-42?", 1 << 15),
      (std::vector<uint32_t>{
          24076, 3346,  13399, 3403,  29907, 25890, 5370,  29515, 20034, 26494, 30405, 28681, 21877,
          23622, 24266, 13477, 17862, 13888, 16016, 15605, 17972, 25491, 15133, 27285, 113,   12127,
          25371, 11245, 13424, 2582,  17713, 27256, 25354, 16450, 3627,  7847,  12005, 4478,  7577,
          19609, 7403,  32759, 13424, 30130, 18668, 9430,  7912,  21463, 32338, 10758}));
  EXPECT_EQ(TaskClassifierFeatures("x\xff\x80 Y9\tz", 1 << 15),
            (std::vector<uint32_t>{21763, 11350, 27450, 21141, 18586, 32189, 24439, 31277, 30131,
                                   17262, 6298, 30537, 27714}));
}

TEST(TaskClassifier, HeldOutAccuracyOnM4A1EpisodeSplits) {
  // What the service sees: the test conversations' prompts, training on the
  // others. (M4A1 reuses a small set of prompts across conversations, so this
  // mostly measures memorisation; the next test measures generalisation.)
  const auto& dataset = lcio::testing::EmbeddedDataset();
  ASSERT_FALSE(dataset.episodes.empty());
  double accuracy_sum = 0;
  constexpr int kSplits = 5;
  for (int seed = 1; seed <= kSplits; ++seed) {
    auto split = lcio::env::RandomSplit(static_cast<int>(dataset.episodes.size()), seed, 0.2);
    ASSERT_TRUE(split.ok());
    const TaskClassifier classifier = TrainOn(dataset, split->train);
    const Corpus test = PromptsOf(dataset, split->test);
    int correct = 0;
    for (size_t i = 0; i < test.prompts.size(); ++i)
      correct += classifier.Predict(test.prompts[i]).task == test.labels[i];
    accuracy_sum += static_cast<double>(correct) / test.prompts.size();
  }
  const double accuracy = accuracy_sum / kSplits;
  std::printf("task accuracy on the test side of %d 80/20 episode splits: %.3f (chance %.3f)\n",
              kSplits, accuracy, 1.0 / dataset.tasks.size());
  EXPECT_GT(accuracy, 0.6);
}

TEST(TaskClassifier, LeaveOnePromptOutAccuracyOnM4A1) {
  // Generalisation: every distinct prompt is classified by a classifier that
  // never saw it (trained on all the other distinct prompts).
  const auto& dataset = lcio::testing::EmbeddedDataset();
  std::map<std::string, int> distinct;
  for (const auto& episode : dataset.episodes)
    for (const auto& turn : episode.turns) distinct.emplace(turn.question, turn.task_index);
  ASSERT_GE(distinct.size(), 8u);
  int correct = 0;
  for (const auto& [held_out, label] : distinct) {
    std::vector<std::string> prompts;
    std::vector<int> labels;
    for (const auto& [prompt, task] : distinct)
      if (prompt != held_out) {
        prompts.push_back(prompt);
        labels.push_back(task);
      }
    auto classifier = TaskClassifier::Train(prompts, labels, dataset.tasks);
    ASSERT_TRUE(classifier.ok());
    correct += classifier->Predict(held_out).task == label;
  }
  const double accuracy = static_cast<double>(correct) / distinct.size();
  std::printf(
      "leave-one-prompt-out task accuracy over M4A1's %zu distinct prompts: %d/%zu = %.3f "
      "(chance %.3f)\n",
      distinct.size(), correct, distinct.size(), accuracy, 1.0 / dataset.tasks.size());
  // Five prompts per task are little to generalise from; chance is 0.25 and
  // 8 of 20 or more happens by chance with probability ~0.1.
  EXPECT_GT(accuracy, 0.35);
}

TEST(TaskClassifier, AnyPromptGetsAValidAnswer) {
  const auto& dataset = lcio::testing::EmbeddedDataset();
  const TaskClassifier classifier = TrainOn(dataset, AllEpisodes(dataset));
  const std::string long_prompt(200000, 'x');
  const std::vector<std::string> prompts = {"",
                                            " ",
                                            "zzqx vbnm qwprt",
                                            "\xff\xfe\x80\x81 \xc3\xa9t\xc3\xa9",
                                            std::string("a\0b\0", 4),
                                            "Bitte schalte das Licht aus",
                                            "!!!???...",
                                            long_prompt,
                                            "\x7f\x01\x02"};
  for (const std::string& prompt : prompts) {
    const auto prediction = classifier.Predict(prompt);
    EXPECT_GE(prediction.task, 0);
    EXPECT_LT(prediction.task, static_cast<int>(dataset.tasks.size()));
    EXPECT_TRUE(std::isfinite(prediction.confidence));
    EXPECT_GE(prediction.confidence, 1.0 / dataset.tasks.size() - 1e-12);
    EXPECT_LE(prediction.confidence, 1.0);
  }
}

TEST(TaskClassifier, EmptyPromptFallsBackToThePrior) {
  auto classifier = TaskClassifier::Train({"a", "b", "c", "d"}, {1, 1, 1, 0}, {"x", "y"});
  ASSERT_TRUE(classifier.ok());
  const auto prediction = classifier->Predict("");
  EXPECT_EQ(prediction.task, 1);
  EXPECT_NEAR(prediction.confidence, 4.0 / 6.0, 1e-9);  // add-one prior: (3+1)/(4+2)
}

TEST(TaskClassifier, LearnsObviousWords) {
  auto classifier = TaskClassifier::Train(
      {"turn on the lights", "switch off the lamp", "what is the weather", "what time is it"},
      {0, 0, 1, 1}, {"control", "question"});
  ASSERT_TRUE(classifier.ok());
  EXPECT_EQ(classifier->Predict("please turn on the lamp").task, 0);
  EXPECT_EQ(classifier->Predict("what is it").task, 1);
  EXPECT_GT(classifier->Predict("turn on the lights").confidence, 0.9);
}

// Predict is naive Bayes over the prompt's features, written out here from
// the model's JSON (documents, counts, smoothing): the serving path (four
// tasks summed in registers, any other count in a loop) must give the same
// task and the same confidence, bit for bit.
void ExpectPredictIsTheNaiveBayesSum(const TaskClassifier& classifier,
                                     const std::vector<std::string>& prompts) {
  const nlohmann::json j = nlohmann::json::parse(classifier.ToJson());
  const int buckets = j["hash_buckets"];
  const double alpha = j["smoothing"];
  const size_t tasks = j["tasks"].size();
  double total_documents = 0;
  for (const auto& d : j["documents"]) total_documents += d.get<double>();
  std::vector<double> prior(tasks);
  std::vector<std::map<uint32_t, float>> seen(tasks);
  std::vector<float> unseen(tasks);
  for (size_t t = 0; t < tasks; ++t) {
    prior[t] = std::log((j["documents"][t].get<double>() + 1.0) /
                        (total_documents + static_cast<double>(tasks)));
    const auto& counts = j["feature_counts"][t];
    double total = 0;
    for (const auto& c : counts["counts"]) total += c.get<double>();
    const double denominator = total + alpha * buckets;
    unseen[t] = static_cast<float>(std::log(alpha / denominator));
    for (size_t k = 0; k < counts["buckets"].size(); ++k)
      seen[t][counts["buckets"][k].get<uint32_t>()] =
          static_cast<float>(std::log((counts["counts"][k].get<double>() + alpha) / denominator));
  }
  for (const std::string& prompt : prompts) {
    std::vector<double> score = prior;
    for (uint32_t bucket : TaskClassifierFeatures(prompt, buckets))
      for (size_t t = 0; t < tasks; ++t) {
        const auto it = seen[t].find(bucket);
        score[t] += it != seen[t].end() ? it->second : unseen[t];
      }
    const size_t best = std::max_element(score.begin(), score.end()) - score.begin();
    double sum = 0;
    for (double s : score) sum += std::exp(s - score[best]);
    const auto prediction = classifier.Predict(prompt);
    EXPECT_EQ(prediction.task, static_cast<int>(best)) << prompt;
    EXPECT_EQ(prediction.confidence, 1.0 / sum) << prompt;
  }
}

TEST(TaskClassifier, PredictIsTheNaiveBayesSumOfItsFeatures) {
  const auto& dataset = lcio::testing::EmbeddedDataset();
  const Corpus corpus = PromptsOf(dataset, AllEpisodes(dataset));
  std::vector<std::string> prompts(corpus.prompts.begin(), corpus.prompts.begin() + 200);
  prompts.insert(prompts.end(), {"", "!!", "Caf\xc3\xa9 OR tea?", "x y z", "unseen words only"});
  ASSERT_EQ(dataset.tasks.size(), 4u);  // the four-task path
  ExpectPredictIsTheNaiveBayesSum(TrainOn(dataset, AllEpisodes(dataset)), prompts);
  // Three and five tasks: the general path.
  for (const size_t tasks : {3u, 5u}) {
    std::vector<std::string> names;
    for (size_t t = 0; t < tasks; ++t) names.push_back("task" + std::to_string(t));
    std::vector<int> labels(corpus.labels.size());
    for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>(i % tasks);
    auto classifier = TaskClassifier::Train(corpus.prompts, labels, names, {1000, 0.25});
    ASSERT_TRUE(classifier.ok()) << classifier.status();
    ExpectPredictIsTheNaiveBayesSum(*classifier, prompts);
  }
}

TEST(TaskClassifier, JsonRoundTripIsExactAndSmall) {
  const auto& dataset = lcio::testing::EmbeddedDataset();
  const TaskClassifier classifier = TrainOn(dataset, AllEpisodes(dataset));
  const std::string json = classifier.ToJson();
  std::printf("classifier JSON: %zu bytes\n", json.size());
  EXPECT_LT(json.size(), 2u << 20);
  auto restored = TaskClassifier::FromJson(json);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->tasks(), classifier.tasks());
  EXPECT_EQ(restored->ToJson(), json);
  for (const auto& prompt : PromptsOf(dataset, AllEpisodes(dataset)).prompts) {
    const auto a = classifier.Predict(prompt), b = restored->Predict(prompt);
    EXPECT_EQ(a.task, b.task);
    EXPECT_EQ(a.confidence, b.confidence);
  }
}

TEST(TaskClassifier, TrainRejectsBadInput) {
  EXPECT_FALSE(TaskClassifier::Train({"a"}, {0}, {}).ok());
  EXPECT_FALSE(TaskClassifier::Train({"a", "b"}, {0}, {"x"}).ok());
  auto out_of_range = TaskClassifier::Train({"a"}, {3}, {"x", "y"});
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_NE(out_of_range.status().message().find("labels[0] = 3"), std::string::npos)
      << out_of_range.status();
  lcio::policy::TaskClassifierOptions options;
  options.hash_buckets = 0;
  EXPECT_FALSE(TaskClassifier::Train({"a"}, {0}, {"x"}, options).ok());
  options = {};
  options.smoothing = -1;
  EXPECT_FALSE(TaskClassifier::Train({"a"}, {0}, {"x"}, options).ok());
  options.smoothing = NAN;
  EXPECT_FALSE(TaskClassifier::Train({"a"}, {0}, {"x"}, options).ok());
}

TEST(TaskClassifier, BadJsonIsAnErrorNamingTheRule) {
  auto classifier = TaskClassifier::Train({"turn on", "what is"}, {0, 1}, {"a", "b"});
  ASSERT_TRUE(classifier.ok());
  const nlohmann::json good = nlohmann::json::parse(classifier->ToJson());
  auto expect_error = [](const std::string& text, const std::string& needle) {
    auto parsed = TaskClassifier::FromJson(text);
    ASSERT_FALSE(parsed.ok()) << "accepted: " << text.substr(0, 200);
    EXPECT_NE(parsed.status().message().find(needle), std::string::npos)
        << parsed.status() << " (wanted \"" << needle << "\")";
  };
  expect_error("", "not valid JSON");
  expect_error("{", "not valid JSON");
  expect_error("[1, 2]", "must be an object");
  auto edited = [&good](auto edit) {
    nlohmann::json json = good;
    edit(json);
    return json.dump();
  };
  expect_error(edited([](auto& j) { j["format"] = "other"; }), "format");
  expect_error(edited([](auto& j) { j["format_version"] = 99; }), "format_version = 99");
  expect_error(edited([](auto& j) { j.erase("tasks"); }), "missing or mistyped");
  expect_error(edited([](auto& j) { j["tasks"] = nlohmann::json::array(); }), "tasks has 0");
  expect_error(edited([](auto& j) { j["hash_buckets"] = 0; }), "hash_buckets = 0");
  expect_error(edited([](auto& j) { j["hash_buckets"] = 1 << 30; }), "hash_buckets");
  expect_error(edited([](auto& j) { j["smoothing"] = -0.5; }), "smoothing");
  expect_error(edited([](auto& j) { j["documents"] = nlohmann::json::array({1}); }),
               "documents must be an array of 2 counts");
  expect_error(edited([](auto& j) {
                 j["documents"] = nlohmann::json::array({1, -1});
               }),
               "documents[1] = -1");
  expect_error(edited([](auto& j) { j["feature_counts"].erase(1); }), "feature_counts");
  expect_error(edited([](auto& j) { j["feature_counts"][0]["buckets"][0] = 1 << 20; }),
               "must be a whole number in [0, 32767]");
  expect_error(edited([](auto& j) { j["feature_counts"][0]["counts"].push_back(1); }),
               "buckets and counts must be arrays of the same size");
  expect_error(edited([](auto& j) {
                 auto& b = j["feature_counts"][0]["buckets"];
                 std::swap(b[0], b[1]);
               }),
               "ascending");
  expect_error(edited([](auto& j) { j["feature_counts"][0]["counts"][0] = 0; }), "counts[0] = 0");
  expect_error(edited([](auto& j) { j["feature_counts"][0]["counts"][0] = "x"; }),
               "counts[0] = \"x\": must be a whole number");
  // Integers are read exactly: a fraction is not truncated, a number past
  // the type is not wrapped (1e10 was undefined behaviour, read as INT_MIN).
  expect_error(edited([](auto& j) { j["format_version"] = 1.5; }), "format_version = 1.5");
  expect_error(edited([](auto& j) { j["format_version"] = 4294967297.0; }),
               "format_version = 4294967297");
  expect_error(edited([](auto& j) { j["hash_buckets"] = 32768.7; }), "hash_buckets = 32768.7");
  expect_error(edited([](auto& j) { j["hash_buckets"] = 1e10; }), "hash_buckets = 10000000000");
  expect_error(edited([](auto& j) { j["documents"][0] = 99.9; }), "documents[0] = 99.9");
  expect_error(edited([](auto& j) { j["documents"][0] = 1e30; }), "documents[0] = 1e+30");
  expect_error(edited([](auto& j) { j["feature_counts"][0]["buckets"][0] = 0.5; }),
               "buckets[0] = 0.5");
  expect_error(edited([](auto& j) { j["feature_counts"][0]["counts"][0] = 1.5; }),
               "counts[0] = 1.5");
  // Each bound alone allowed a 64 GiB table (4096 tasks x 2^22 buckets),
  // allocated before the artifact's own tasks were compared.
  expect_error(edited([](auto& j) {
                 j["hash_buckets"] = 1 << 22;
                 for (int t = 2; t < 64; ++t) {
                   j["tasks"].push_back(absl::StrCat("t", t));
                   j["documents"].push_back(0);
                   j["feature_counts"].push_back({{"buckets", {}}, {"counts", {}}});
                 }
               }),
               "hash_buckets x tasks = 4194304 x 64: must be at most 134217728");
}

}  // namespace
