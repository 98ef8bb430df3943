#include "lcio/policy/task_classifier.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>

#include "absl/strings/str_cat.h"
#include "lcio/data/json_parse.h"
#include "nlohmann/json.hpp"

namespace lcio::policy {
namespace {

constexpr char kFormat[] = "lcio-naive-bayes";
constexpr int kFormatVersion = 1;
// Bounds that keep a hand-edited or corrupt classifier from allocating without limit.
constexpr int kMaxHashBuckets = 1 << 22;
constexpr size_t kMaxTasks = 4096;
// The likelihood table holds hash_buckets x tasks floats: at most the most
// tasks at the default buckets, 2^27 (512 MiB; each bound alone allowed
// 64 GiB). M4A1's 4 tasks use 2^17.
constexpr size_t kMaxTableCells = kMaxTasks * (size_t{1} << 15);

absl::Status CheckTableSize(int hash_buckets, size_t tasks) {
  if (static_cast<size_t>(hash_buckets) * tasks > kMaxTableCells)
    return absl::InvalidArgumentError(absl::StrCat("hash_buckets x tasks = ", hash_buckets, " x ",
                                                   tasks, ": must be at most ", kMaxTableCells));
  return absl::OkStatus();
}

// FNV-1a, 64 bit: stable across compilers and platforms, unlike std::hash, so
// that a classifier trained on one machine scores identically on another.
// Incremental, so that a feature ("w:" + word, ...) hashes without being built.
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
uint64_t Fnv1a(uint64_t hash, std::string_view bytes) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}
// The same over exactly three bytes (a character trigram), without the loop.
uint64_t Fnv1a3(uint64_t hash, const char* bytes) {
  constexpr uint64_t kPrime = 0x100000001b3ull;
  hash = (hash ^ static_cast<unsigned char>(bytes[0])) * kPrime;
  hash = (hash ^ static_cast<unsigned char>(bytes[1])) * kPrime;
  return (hash ^ static_cast<unsigned char>(bytes[2])) * kPrime;
}

// A byte's form inside a word, or 0 when it separates words: lowercase
// ASCII letters and digits; bytes >= 0x80 belong to multi-byte UTF-8
// characters and stay inside words so that non-English text still forms
// tokens. A table: it is looked up for every byte of every prompt.
constexpr std::array<unsigned char, 256> kWordByte = [] {
  std::array<unsigned char, 256> form{};
  for (int c = 0; c < 256; ++c) {
    if (c >= 'A' && c <= 'Z') form[c] = static_cast<unsigned char>(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80)
      form[c] = static_cast<unsigned char>(c);
  }
  return form;
}();

// Calls emit(bucket) for each feature of the prompt, in a fixed order:
// lowercased word unigrams and bigrams, then character trigrams of the text
// normalised to " word word ... ". No allocation beyond `normalised`'s
// growth, which the serving path reuses per thread.
template <typename Emit>
void ForEachFeature(std::string_view prompt, int hash_buckets, std::string& normalised,
                    Emit&& emit) {
  normalised.assign(1, ' ');  // words separated by single spaces, padded
  bool in_word = false;
  for (char raw : prompt) {
    const unsigned char c = kWordByte[static_cast<unsigned char>(raw)];
    if (c != 0) {
      normalised.push_back(static_cast<char>(c));
      in_word = true;
    } else if (in_word) {
      normalised.push_back(' ');
      in_word = false;
    }
  }
  if (in_word) normalised.push_back(' ');

  const uint64_t n = static_cast<uint64_t>(hash_buckets);
  // h % n, as a mask when n is a power of two (the default 2^15): the same
  // bucket without a 64-bit division per feature.
  const bool power_of_two = (n & (n - 1)) == 0;
  const auto bucket = [n, power_of_two](uint64_t h) {
    return static_cast<uint32_t>(power_of_two ? h & (n - 1) : h % n);
  };
  const std::string_view text(normalised);
  const uint64_t word_seed = Fnv1a(kFnvOffset, "w:"), bigram_seed = Fnv1a(kFnvOffset, "b:");
  // Words are the runs between single spaces of `text`; a bigram is "w1 w2",
  // exactly the text from the first word's start to the second's end.
  size_t previous_start = std::string_view::npos;
  for (size_t start = 1; start < text.size();) {
    const size_t end = text.find(' ', start);
    const std::string_view word = text.substr(start, end - start);
    if (previous_start != std::string_view::npos)
      emit(bucket(Fnv1a(bigram_seed, text.substr(previous_start, end - previous_start))));
    emit(bucket(Fnv1a(word_seed, word)));
    previous_start = start;
    start = end + 1;
  }
  const uint64_t trigram_seed = Fnv1a(kFnvOffset, "c:");
  if (text.size() >= 3)
    for (size_t i = 0; i + 3 <= text.size(); ++i)
      emit(bucket(Fnv1a3(trigram_seed, text.data() + i)));
}

}  // namespace

// The features of a prompt as bucket indices (with repetition).
std::vector<uint32_t> TaskClassifierFeatures(std::string_view prompt, int hash_buckets) {
  std::vector<uint32_t> buckets;
  std::string normalised;
  ForEachFeature(prompt, hash_buckets, normalised,
                 [&](uint32_t bucket) { buckets.push_back(bucket); });
  return buckets;
}

absl::StatusOr<TaskClassifier> TaskClassifier::Train(const std::vector<std::string>& prompts,
                                                     const std::vector<int>& labels,
                                                     const std::vector<std::string>& tasks,
                                                     const TaskClassifierOptions& options) {
  if (tasks.empty()) return absl::InvalidArgumentError("task classifier: tasks is empty");
  if (tasks.size() > kMaxTasks)
    return absl::InvalidArgumentError(
        absl::StrCat("task classifier: ", tasks.size(), " tasks; at most ", kMaxTasks));
  if (prompts.size() != labels.size())
    return absl::InvalidArgumentError(absl::StrCat("task classifier: ", prompts.size(),
                                                   " prompts but ", labels.size(), " labels"));
  if (options.hash_buckets < 1 || options.hash_buckets > kMaxHashBuckets)
    return absl::InvalidArgumentError(
        absl::StrCat("task classifier: hash_buckets = ", options.hash_buckets, ": must be in [1, ",
                     kMaxHashBuckets, "]"));
  if (!(options.smoothing > 0) || !std::isfinite(options.smoothing))
    return absl::InvalidArgumentError(absl::StrCat(
        "task classifier: smoothing = ", options.smoothing, ": must be finite and > 0"));
  if (absl::Status size = CheckTableSize(options.hash_buckets, tasks.size()); !size.ok())
    return absl::InvalidArgumentError(absl::StrCat("task classifier: ", size.message()));
  TaskClassifier classifier;
  classifier.tasks_ = tasks;
  classifier.options_ = options;
  classifier.documents_.assign(tasks.size(), 0);
  std::vector<std::map<uint32_t, uint32_t>> counts(tasks.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int label = labels[i];
    if (label < 0 || label >= static_cast<int>(tasks.size()))
      return absl::InvalidArgumentError(absl::StrCat("task classifier: labels[", i, "] = ", label,
                                                     ": must be in [0, ", tasks.size() - 1, "]"));
    ++classifier.documents_[label];
    for (uint32_t bucket : TaskClassifierFeatures(prompts[i], options.hash_buckets))
      ++counts[label][bucket];
  }
  classifier.counts_.resize(tasks.size());
  for (size_t t = 0; t < tasks.size(); ++t)
    classifier.counts_[t].assign(counts[t].begin(), counts[t].end());
  classifier.Fit();
  return classifier;
}

void TaskClassifier::Fit() {
  const size_t num_tasks = tasks_.size();
  const double buckets = options_.hash_buckets;
  const double alpha = options_.smoothing;
  double total_documents = 0;
  for (int64_t d : documents_) total_documents += static_cast<double>(d);
  log_prior_.assign(num_tasks, 0);
  log_likelihood_.assign(static_cast<size_t>(options_.hash_buckets) * num_tasks, 0.0f);
  for (size_t t = 0; t < num_tasks; ++t) {
    // Add-one on the prior too, so a task without examples is unlikely, not impossible.
    log_prior_[t] = std::log((static_cast<double>(documents_[t]) + 1.0) /
                             (total_documents + static_cast<double>(num_tasks)));
    double total = 0;
    for (const auto& [bucket, count] : counts_[t]) total += count;
    const double denominator = total + alpha * buckets;
    const float unseen = static_cast<float>(std::log(alpha / denominator));
    for (size_t bucket = 0; bucket < static_cast<size_t>(options_.hash_buckets); ++bucket)
      log_likelihood_[bucket * num_tasks + t] = unseen;
    for (const auto& [bucket, count] : counts_[t])
      log_likelihood_[static_cast<size_t>(bucket) * num_tasks + t] =
          static_cast<float>(std::log((count + alpha) / denominator));
  }
}

TaskClassifier::Prediction TaskClassifier::Predict(std::string_view prompt) const {
  Prediction prediction;
  if (tasks_.empty()) return prediction;   // default-constructed: nothing to choose from
  thread_local std::vector<double> score;  // reused: no allocation per prompt
  score.assign(log_prior_.begin(), log_prior_.end());
  const size_t num_tasks = score.size();
  thread_local std::string normalised;  // reused: no allocation per prompt
  if (num_tasks == 4) {
    // M4A1's four tasks: the sums in registers, four lanes at once (each
    // task's additions in the same order, so the same sums).
    double sum[4] = {score[0], score[1], score[2], score[3]};
    ForEachFeature(prompt, options_.hash_buckets, normalised, [&](uint32_t bucket) {
      const float* row = log_likelihood_.data() + static_cast<size_t>(bucket) * 4;
      for (size_t t = 0; t < 4; ++t) sum[t] += row[t];
    });
    score.assign(sum, sum + 4);
  } else {
    ForEachFeature(prompt, options_.hash_buckets, normalised, [&](uint32_t bucket) {
      const float* row = log_likelihood_.data() + static_cast<size_t>(bucket) * num_tasks;
      for (size_t t = 0; t < num_tasks; ++t) score[t] += row[t];
    });
  }
  const size_t best = std::max_element(score.begin(), score.end()) - score.begin();
  // Posterior by a numerically stable softmax; the best task's term is exp(0) = 1.
  double sum = 0;
  for (double s : score) sum += std::exp(s - score[best]);
  prediction.task = static_cast<int>(best);
  prediction.confidence = 1.0 / sum;
  return prediction;
}

std::string TaskClassifier::ToJson() const {
  nlohmann::json counts = nlohmann::json::array();
  for (const auto& task_counts : counts_) {
    // Only the buckets a task has seen: every other bucket is the smoothing default.
    nlohmann::json buckets = nlohmann::json::array(), values = nlohmann::json::array();
    for (const auto& [bucket, count] : task_counts) {
      buckets.push_back(bucket);
      values.push_back(count);
    }
    counts.push_back({{"buckets", std::move(buckets)}, {"counts", std::move(values)}});
  }
  nlohmann::json json = {{"format", kFormat},
                         {"format_version", kFormatVersion},
                         {"features", "fnv1a64: lowercase word unigrams, bigrams, char trigrams"},
                         {"tasks", tasks_},
                         {"hash_buckets", options_.hash_buckets},
                         {"smoothing", options_.smoothing},
                         {"documents", documents_},
                         {"feature_counts", std::move(counts)}};
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<TaskClassifier> TaskClassifier::FromJson(const std::string& text) {
  auto error = [](const std::string& rule) {
    return absl::InvalidArgumentError(absl::StrCat("task classifier JSON: ", rule));
  };
  absl::Status parse_error;
  nlohmann::json json = data::ParseJson(text, "text", &parse_error);
  if (json.is_discarded())
    return error(absl::StrCat("not valid JSON (", parse_error.message(), ")"));
  if (!json.is_object()) return error("must be an object");
  try {
    if (json.value("format", "") != kFormat)
      return error(absl::StrCat("format must be \"", kFormat, "\""));
    // Every integer exactly (data::WholeNumber): get<int>() truncated 1.5
    // and was undefined for 1e10.
    auto whole = [&](const nlohmann::json& value, const std::string& name, int64_t min,
                     int64_t max) -> absl::StatusOr<int64_t> {
      auto out = data::WholeNumber<int64_t>(value, name, min, max);
      if (!out.ok()) return error(std::string(out.status().message()));
      return out;
    };
    auto version = whole(json.at("format_version"), "format_version", 0, INT32_MAX);
    if (!version.ok()) return version.status();
    if (*version != kFormatVersion)
      return error(
          absl::StrCat("format_version = ", *version, ": this build reads ", kFormatVersion));
    TaskClassifierOptions options;
    auto hash_buckets = whole(json.at("hash_buckets"), "hash_buckets", 1, kMaxHashBuckets);
    if (!hash_buckets.ok()) return hash_buckets.status();
    options.hash_buckets = static_cast<int>(*hash_buckets);
    options.smoothing = json.at("smoothing").get<double>();
    if (!(options.smoothing > 0) || !std::isfinite(options.smoothing))
      return error(absl::StrCat("smoothing = ", options.smoothing, ": must be finite and > 0"));
    TaskClassifier classifier;
    classifier.options_ = options;
    classifier.tasks_ = json.at("tasks").get<std::vector<std::string>>();
    if (classifier.tasks_.empty() || classifier.tasks_.size() > kMaxTasks)
      return error(absl::StrCat("tasks has ", classifier.tasks_.size(), " entries: must be in [1, ",
                                kMaxTasks, "]"));
    if (absl::Status size = CheckTableSize(options.hash_buckets, classifier.tasks_.size());
        !size.ok())
      return error(std::string(size.message()));
    const nlohmann::json& documents = json.at("documents");
    if (!documents.is_array() || documents.size() != classifier.tasks_.size())
      return error(absl::StrCat("documents must be an array of ", classifier.tasks_.size(),
                                " counts, one per task"));
    for (size_t t = 0; t < documents.size(); ++t) {
      auto count = whole(documents[t], absl::StrCat("documents[", t, "]"), 0, INT64_MAX);
      if (!count.ok()) return count.status();
      classifier.documents_.push_back(*count);
    }
    const nlohmann::json& counts = json.at("feature_counts");
    if (!counts.is_array() || counts.size() != classifier.tasks_.size())
      return error("feature_counts must be an array with one entry per task");
    classifier.counts_.resize(classifier.tasks_.size());
    for (size_t t = 0; t < counts.size(); ++t) {
      const nlohmann::json& buckets = counts[t].at("buckets");
      const nlohmann::json& values = counts[t].at("counts");
      if (!buckets.is_array() || !values.is_array() || buckets.size() != values.size())
        return error(absl::StrCat("feature_counts[", t,
                                  "]: buckets and counts must be arrays of the same size"));
      int64_t previous = -1;
      for (size_t i = 0; i < buckets.size(); ++i) {
        auto bucket = whole(buckets[i], absl::StrCat("feature_counts[", t, "].buckets[", i, "]"), 0,
                            options.hash_buckets - 1);
        if (!bucket.ok()) return bucket.status();
        if (*bucket <= previous)
          return error(absl::StrCat("feature_counts[", t, "].buckets must be strictly ascending"));
        previous = *bucket;
        auto count = whole(values[i], absl::StrCat("feature_counts[", t, "].counts[", i, "]"), 1,
                           UINT32_MAX);
        if (!count.ok()) return count.status();
        classifier.counts_[t].emplace_back(static_cast<uint32_t>(*bucket),
                                           static_cast<uint32_t>(*count));
      }
    }
    classifier.Fit();
    return classifier;
  } catch (const nlohmann::json::exception& e) {
    return error(absl::StrCat("missing or mistyped field: ", e.what()));
  }
}

}  // namespace lcio::policy
