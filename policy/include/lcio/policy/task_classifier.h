// Infers a prompt's task when the caller does not name it. Trained by
// lcio-train on the data's prompts and kept in the policy artifact. Plain C++
// (no LibTorch): multinomial naive Bayes over hashed word unigrams, bigrams
// and character trigrams, so prompts with unseen words still get an answer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace lcio::policy {

struct TaskClassifierOptions {
  int hash_buckets = 1 << 15;
  double smoothing = 0.5;  // additive (Lidstone) smoothing
};

class TaskClassifier {
 public:
  struct Prediction {
    int task = 0;           // index into tasks()
    double confidence = 0;  // posterior probability of that task, in (0, 1]
  };

  static absl::StatusOr<TaskClassifier> Train(const std::vector<std::string>& prompts,
                                              const std::vector<int>& labels,
                                              const std::vector<std::string>& tasks,
                                              const TaskClassifierOptions& options = {});
  Prediction Predict(std::string_view prompt) const;
  const std::vector<std::string>& tasks() const { return tasks_; }

  // Compact JSON kept inside the artifact's metadata.
  std::string ToJson() const;
  static absl::StatusOr<TaskClassifier> FromJson(const std::string& json);

 private:
  void Fit();  // log_prior_ and log_likelihood_ from documents_ and counts_

  std::vector<std::string> tasks_;
  TaskClassifierOptions options_;
  std::vector<int64_t> documents_;  // [task] training prompts
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>>
      counts_;                         // [task] (bucket, count), ascending
  std::vector<double> log_prior_;      // [task]
  std::vector<float> log_likelihood_;  // [bucket][task]: one cache line per feature
};

// The hashed features of a prompt, one bucket per occurrence (exposed for tests).
std::vector<uint32_t> TaskClassifierFeatures(std::string_view prompt, int hash_buckets);

}  // namespace lcio::policy
