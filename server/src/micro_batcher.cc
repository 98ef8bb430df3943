#include "lcio/server/micro_batcher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lcio/server/log.h"

namespace lcio::server {

MicroBatcher::MicroBatcher(const MicroBatcherOptions& options, BatchObserver observer)
    : options_(options), observer_(std::move(observer)) {
  options_.batch_max = std::max(1, options_.batch_max);
  if (options_.batch_wait < absl::ZeroDuration()) options_.batch_wait = absl::ZeroDuration();
}

MicroBatcher::~MicroBatcher() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](MicroBatcher* self)
           ABSL_NO_THREAD_SAFETY_ANALYSIS { return !self->leading_ && self->queue_.empty(); },
      this));
}

absl::StatusOr<MicroBatching> ParseMicroBatching(absl::string_view flag) {
  if (flag == "auto") return MicroBatching::kAuto;
  if (flag == "on") return MicroBatching::kOn;
  if (flag == "off") return MicroBatching::kOff;
  return absl::InvalidArgumentError(
      absl::StrCat("micro_batching = ", QuoteClientValue(flag), ": must be auto, on or off"));
}

absl::string_view MicroBatchingName(MicroBatching mode) {
  switch (mode) {
    case MicroBatching::kOn:
      return "on";
    case MicroBatching::kOff:
      return "off";
    case MicroBatching::kAuto:
      break;
  }
  return "auto";
}

bool MicroBatcher::Batches(const BatchScorer& scorer) const {
  switch (options_.mode) {
    case MicroBatching::kOn:
      return true;
    case MicroBatching::kOff:
      return false;
    case MicroBatching::kAuto:
      break;
  }
  return scorer.batching_pays();
}

void MicroBatcher::Announce() {
  absl::MutexLock lock(&mu_);
  ++announced_;
}

void MicroBatcher::Withdraw() {
  absl::MutexLock lock(&mu_);
  if (announced_ > 0) --announced_;
}

void MicroBatcher::Submit(std::shared_ptr<const BatchScorer> scorer, std::vector<float> row,
                          absl::Time deadline, Done done) {
  if (!Batches(*scorer)) return ScoreAlone(*scorer, row, deadline, done);
  {
    absl::MutexLock lock(&mu_);
    if (announced_ > 0) --announced_;
    queue_.push_back(Item{std::move(scorer), std::move(row), deadline, std::move(done)});
    if (leading_) return;  // the leader will take this row
    leading_ = true;
  }
  Lead();
}

void MicroBatcher::Lead() {
  std::vector<Item> batch;
  for (;;) {
    batch.clear();
    {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) {
        leading_ = false;
        return;
      }
      // Wait for announced requests to join, bounded by batch_wait from now.
      const absl::Time close_at = absl::Now() + options_.batch_wait;
      const absl::Condition full(
          +[](MicroBatcher* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return self->announced_ == 0 ||
                   static_cast<int>(self->queue_.size()) >= self->options_.batch_max;
          },
          this);
      mu_.AwaitWithDeadline(full, close_at);
      const BatchScorer* scorer = queue_.front().scorer.get();
      for (auto it = queue_.begin();
           it != queue_.end() && static_cast<int>(batch.size()) < options_.batch_max;) {
        if (it->scorer.get() == scorer) {
          batch.push_back(std::move(*it));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
    }
    ScoreAndReply(batch);
  }
}

// A batch of one, on the submitting thread, as ScoreAndReply would score it.
void MicroBatcher::ScoreAlone(const BatchScorer& scorer, const std::vector<float>& row,
                              absl::Time deadline, const Done& done) {
  const absl::Time start = absl::Now();
  if (deadline < start) return done(absl::DeadlineExceededError("deadline passed"), {});
  if (static_cast<int>(row.size()) != scorer.input_width())
    return done(absl::InternalError("row width does not match the scorer"), {});
  std::vector<float> scores(scorer.output_width());
  const absl::Status status = scorer.ScoreBatch(row.data(), 1, scores.data());
  if (observer_) observer_(BatchStats{1, absl::Now() - start});
  if (!status.ok()) return done(status, {});
  done(absl::OkStatus(), std::move(scores));
}

void MicroBatcher::ScoreAndReply(std::vector<Item>& batch) {
  const absl::Time now = absl::Now();
  std::vector<Item*> live;
  live.reserve(batch.size());
  for (Item& item : batch) {
    if (item.deadline < now) {
      item.done(absl::DeadlineExceededError("deadline passed while waiting for a batch"), {});
    } else if (static_cast<int>(item.row.size()) != item.scorer->input_width()) {
      item.done(absl::InternalError("row width does not match the scorer"), {});
    } else {
      live.push_back(&item);
    }
  }
  if (live.empty()) return;
  const BatchScorer& scorer = *live.front()->scorer;
  const int in = scorer.input_width(), out = scorer.output_width();
  const int n = static_cast<int>(live.size());
  std::vector<float> inputs(static_cast<size_t>(n) * in);
  for (int i = 0; i < n; ++i)
    std::copy(live[i]->row.begin(), live[i]->row.end(),
              inputs.begin() + static_cast<size_t>(i) * in);
  std::vector<float> outputs(static_cast<size_t>(n) * out);
  const absl::Time start = absl::Now();
  const absl::Status status = scorer.ScoreBatch(inputs.data(), n, outputs.data());
  if (observer_) observer_(BatchStats{n, absl::Now() - start});
  for (int i = 0; i < n; ++i) {
    if (!status.ok()) {
      live[i]->done(status, {});
      continue;
    }
    const auto first = outputs.begin() + static_cast<size_t>(i) * out;
    live[i]->done(absl::OkStatus(), std::vector<float>(first, first + out));
  }
}

}  // namespace lcio::server
