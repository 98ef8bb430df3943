#include "lcio/server/micro_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "absl/synchronization/notification.h"

namespace lcio::server {
namespace {

// A real scorer: out[j] = (j + 1) * sum(row) + offset; records batch sizes.
class SumScorer : public BatchScorer {
 public:
  explicit SumScorer(float offset) : offset_(offset) {}
  int input_width() const override { return 3; }
  int output_width() const override { return 2; }
  absl::Status ScoreBatch(const float* in, int n, float* out) const override {
    std::lock_guard<std::mutex> lock(mu_);
    sizes_.push_back(n);
    for (int i = 0; i < n; ++i) {
      const float sum = in[3 * i] + in[3 * i + 1] + in[3 * i + 2];
      out[2 * i] = sum + offset_;
      out[2 * i + 1] = 2 * sum + offset_;
    }
    return absl::OkStatus();
  }
  std::vector<int> sizes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sizes_;
  }

 private:
  float offset_;
  mutable std::mutex mu_;
  mutable std::vector<int> sizes_;
};

TEST(MicroBatcherTest, ALoneRequestIsScoredWithoutWaiting) {
  MicroBatcherOptions options;
  options.batch_wait = absl::Seconds(30);  // would hang the test if it waited
  MicroBatcher batcher(options);
  auto scorer = std::make_shared<SumScorer>(0);
  absl::Notification done;
  std::vector<float> result;
  batcher.Announce();
  batcher.Submit(scorer, {1, 2, 3}, absl::InfiniteFuture(),
                 [&](absl::Status s, std::vector<float> r) {
                   EXPECT_TRUE(s.ok());
                   result = r;
                   done.Notify();
                 });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(result, std::vector<float>({6, 12}));
}

TEST(MicroBatcherTest, AnnouncedRequestsAreGatheredIntoOneBatch) {
  MicroBatcherOptions options;
  options.batch_max = 8;
  options.batch_wait = absl::Seconds(30);
  MicroBatcher batcher(options);
  auto scorer = std::make_shared<SumScorer>(0);
  for (int i = 0; i < 8; ++i) batcher.Announce();
  std::atomic<int> answered{0};
  absl::Notification all;
  std::vector<float> results(8);
  // Concurrent submitters, as the gRPC threads are: the first leads and
  // waits for the announced others.
  std::vector<std::thread> submitters;
  for (int i = 0; i < 8; ++i)
    submitters.emplace_back([&, i] {
      batcher.Submit(scorer, {static_cast<float>(i), 0, 0}, absl::InfiniteFuture(),
                     [&, i](absl::Status s, std::vector<float> r) {
                       ASSERT_TRUE(s.ok());
                       results[i] = r[1];
                       if (++answered == 8) all.Notify();
                     });
    });
  ASSERT_TRUE(all.WaitForNotificationWithTimeout(absl::Seconds(10)));
  for (std::thread& t : submitters) t.join();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(results[i], 2.0f * i);  // each row got its own scores
  EXPECT_EQ(scorer->sizes(), std::vector<int>({8}));
}

TEST(MicroBatcherTest, ABatchClosesAfterTheWaitWhenAnnouncedRequestsDoNotCome) {
  MicroBatcherOptions options;
  options.batch_wait = absl::Milliseconds(20);
  MicroBatcher batcher(options);
  auto scorer = std::make_shared<SumScorer>(0);
  batcher.Announce();
  batcher.Announce();  // never submitted
  absl::Notification done;
  batcher.Submit(scorer, {1, 1, 1}, absl::InfiniteFuture(),
                 [&](absl::Status s, std::vector<float>) {
                   EXPECT_TRUE(s.ok());
                   done.Notify();
                 });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  batcher.Withdraw();
}

TEST(MicroBatcherTest, RowsOfDifferentScorersNeverShareABatch) {
  MicroBatcherOptions options;
  options.batch_wait = absl::Seconds(30);
  MicroBatcher batcher(options);
  auto old_policy = std::make_shared<SumScorer>(0);
  auto new_policy = std::make_shared<SumScorer>(100);
  for (int i = 0; i < 6; ++i) batcher.Announce();
  std::atomic<int> answered{0};
  absl::Notification all;
  std::vector<float> results(6);
  std::vector<std::thread> submitters;
  for (int i = 0; i < 6; ++i)
    submitters.emplace_back([&, i] {
      auto scorer = i % 2 == 0 ? old_policy : new_policy;
      batcher.Submit(scorer, {1, 0, 0}, absl::InfiniteFuture(),
                     [&, i](absl::Status s, std::vector<float> r) {
                       ASSERT_TRUE(s.ok());
                       results[i] = r[0];
                       if (++answered == 6) all.Notify();
                     });
    });
  ASSERT_TRUE(all.WaitForNotificationWithTimeout(absl::Seconds(10)));
  for (std::thread& t : submitters) t.join();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(results[i], i % 2 == 0 ? 1.0f : 101.0f);
  int old_rows = 0, new_rows = 0;
  for (int n : old_policy->sizes()) old_rows += n;
  for (int n : new_policy->sizes()) new_rows += n;
  EXPECT_EQ(old_rows, 3);
  EXPECT_EQ(new_rows, 3);
}

TEST(MicroBatcherTest, ExpiredRowsAreNotScored) {
  MicroBatcher batcher({});
  auto scorer = std::make_shared<SumScorer>(0);
  absl::Notification done;
  batcher.Announce();
  batcher.Submit(scorer, {1, 2, 3}, absl::Now() - absl::Seconds(1),
                 [&](absl::Status s, std::vector<float> r) {
                   EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
                   EXPECT_TRUE(r.empty());
                   done.Notify();
                 });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(scorer->sizes().empty());
}

TEST(MicroBatcherTest, EverySubmittedRowIsAnsweredBeforeDestructionReturns) {
  auto scorer = std::make_shared<SumScorer>(0);
  std::atomic<int> answered{0};
  {
    MicroBatcher batcher({});
    for (int i = 0; i < 50; ++i)
      batcher.Submit(scorer, {1, 1, 1}, absl::InfiniteFuture(),
                     [&](absl::Status s, std::vector<float>) {
                       EXPECT_TRUE(s.ok());
                       ++answered;
                     });
  }
  EXPECT_EQ(answered.load(), 50);
}

}  // namespace
}  // namespace lcio::server
