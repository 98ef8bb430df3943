// Gathers concurrent scoring requests into one forward pass. A batch closes
// when it holds batch_max rows, when batch_wait has passed since it started
// forming, or at once when no other admitted request is still on its way (so
// a lone caller never waits). Rows for different scorers (a hot reload in
// between) never share a batch.
//
// Only where batching pays: a scorer whose cost per row is barely lower in a
// batch (the CPU kernels' forward) gains little from one and would
// pay its queue, its lock and one thread finishing everyone's calls; by
// default (MicroBatching::kAuto) its rows are scored at once on the
// submitting thread.
//
// No thread of its own: the first submitter to find no batch in progress
// leads, forming and scoring batches on its own thread until the queue is
// empty, and runs every row's callback. With the gRPC callback API nobody
// else blocks, and a lone request is scored without a thread hand-off.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lcio::server {

// What a batch is scored with: n rows of input_width() floats in, n rows of
// output_width() floats out.
class BatchScorer {
 public:
  virtual ~BatchScorer() = default;
  virtual int input_width() const = 0;
  virtual int output_width() const = 0;
  virtual absl::Status ScoreBatch(const float* inputs, int n, float* outputs) const = 0;
  // Whether a row costs less in a bigger batch (a GPU's forward), so that
  // gathering rows is worth their wait.
  virtual bool batching_pays() const = 0;
};

// --micro_batching: kAuto batches the rows of scorers whose batching_pays();
// kOn batches every row, kOff none.
enum class MicroBatching { kAuto, kOn, kOff };
absl::StatusOr<MicroBatching> ParseMicroBatching(absl::string_view flag);
absl::string_view MicroBatchingName(MicroBatching mode);

struct MicroBatcherOptions {
  int batch_max = 32;
  absl::Duration batch_wait = absl::Microseconds(200);
  MicroBatching mode = MicroBatching::kAuto;
};

struct BatchStats {
  int size = 0;
  absl::Duration score_time;
};

class MicroBatcher {
 public:
  // Called with the row's scores (empty on error), on the leading
  // submitter's thread, or on the submitting one for a row not batched.
  using Done = std::function<void(absl::Status, std::vector<float> scores)>;
  using BatchObserver = std::function<void(const BatchStats&)>;

  explicit MicroBatcher(const MicroBatcherOptions& options, BatchObserver observer = nullptr);
  ~MicroBatcher();  // waits for the leader to finish what is queued

  // Whether rows for `scorer` are batched (the mode and batching_pays());
  // those that are not are scored on their Submit's thread.
  bool Batches(const BatchScorer& scorer) const;
  // A request that will Submit a row that Batches soon: while any are
  // announced, a partial batch waits (up to batch_wait) for them. Rows that
  // are not batched are not announced.
  void Announce();
  void Withdraw();  // an announced request will not Submit after all
  // Queues one row (input_width() floats); `done` runs exactly once, on
  // this thread or the leader's (possibly before Submit returns). Rows whose
  // deadline has passed when their batch forms get DeadlineExceeded without
  // being scored. Submit of a row that Batches implies Withdraw of one
  // announcement; a row that does not is scored, and `done` run, before
  // Submit returns, without the batcher's lock.
  void Submit(std::shared_ptr<const BatchScorer> scorer, std::vector<float> row,
              absl::Time deadline, Done done);

  const MicroBatcherOptions& options() const { return options_; }

 private:
  struct Item {
    std::shared_ptr<const BatchScorer> scorer;
    std::vector<float> row;
    absl::Time deadline;
    Done done;
  };
  void Lead();
  void ScoreAndReply(std::vector<Item>& batch);
  void ScoreAlone(const BatchScorer& scorer, const std::vector<float>& row, absl::Time deadline,
                  const Done& done);

  MicroBatcherOptions options_;
  BatchObserver observer_;
  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  int64_t announced_ ABSL_GUARDED_BY(mu_) = 0;
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lcio::server
