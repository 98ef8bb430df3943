#include "lcio/server/micro_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace lcio::server {
namespace {

// A real scorer: out[j] = (j + 1) * sum(row) + offset; records batch sizes.
// `batching_pays`: as a GPU's forward (true) or the CPU kernels' (false).
class SumScorer : public BatchScorer {
 public:
  explicit SumScorer(float offset, bool batching_pays = true)
      : offset_(offset), batching_pays_(batching_pays) {}
  int input_width() const override { return 3; }
  int output_width() const override { return 2; }
  bool batching_pays() const override { return batching_pays_; }
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
  bool batching_pays_;
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
  const absl::Time start = absl::Now();
  absl::Time scored;
  batcher.Submit(scorer, {1, 1, 1}, absl::InfiniteFuture(),
                 [&](absl::Status s, std::vector<float>) {
                   EXPECT_TRUE(s.ok());
                   scored = absl::Now();
                   done.Notify();
                 });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  // It waited for the announced request (a semantic bound, not a timing one:
  // closing before batch_wait would mean the announcement was ignored).
  EXPECT_GE(scored - start, absl::Milliseconds(20));
  EXPECT_EQ(scorer->sizes(), std::vector<int>({1}));
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
  for (bool batched : {true, false}) {
    auto scorer = std::make_shared<SumScorer>(0, /*batching_pays=*/batched);
    ASSERT_EQ(batcher.Batches(*scorer), batched);
    absl::Notification done;
    if (batched) batcher.Announce();
    batcher.Submit(scorer, {1, 2, 3}, absl::Now() - absl::Seconds(1),
                   [&](absl::Status s, std::vector<float> r) {
                     EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
                     EXPECT_TRUE(r.empty());
                     done.Notify();
                   });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_TRUE(scorer->sizes().empty());
  }
}

// A row of the wrong width is refused, batched or not, and never scored.
TEST(MicroBatcherTest, ARowOfTheWrongWidthIsInternalAndNotScored) {
  MicroBatcher batcher({});
  for (bool batched : {true, false}) {
    auto scorer = std::make_shared<SumScorer>(0, /*batching_pays=*/batched);
    absl::Notification done;
    if (batched) batcher.Announce();
    batcher.Submit(scorer, {1, 2}, absl::InfiniteFuture(),
                   [&](absl::Status s, std::vector<float> r) {
                     EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
                     EXPECT_TRUE(r.empty());
                     done.Notify();
                   });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_TRUE(scorer->sizes().empty());
  }
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

// Rows of a scorer that batching does not help are scored on the submitting
// thread before Submit returns, without waiting for a batch that is forming
// (here one held open for 30 s by an announced request that has not come).
TEST(MicroBatcherTest, ARowThatIsNotBatchedIsScoredAtOnceOnItsOwnThread) {
  MicroBatcherOptions options;
  options.batch_wait = absl::Seconds(30);
  MicroBatcher batcher(options);
  auto gpu = std::make_shared<SumScorer>(0, /*batching_pays=*/true);
  auto cpu = std::make_shared<SumScorer>(100, /*batching_pays=*/false);
  ASSERT_TRUE(batcher.Batches(*gpu));
  ASSERT_FALSE(batcher.Batches(*cpu));
  batcher.Announce();
  batcher.Announce();  // the second row is late: the batch waits for it
  absl::Notification leader_started, gpu_done;
  std::thread leader([&] {
    leader_started.Notify();
    batcher.Submit(gpu, {1, 0, 0}, absl::InfiniteFuture(), [&](absl::Status s, std::vector<float>) {
      EXPECT_TRUE(s.ok());
      gpu_done.Notify();
    });
  });
  leader_started.WaitForNotification();
  // Makes it likely that the batch is already waiting; the assertions below
  // hold in either order.
  absl::SleepFor(absl::Milliseconds(50));
  for (int i = 0; i < 3; ++i) {
    bool answered = false;
    std::thread::id answered_on;
    batcher.Submit(cpu, {1, 2, 3}, absl::InfiniteFuture(),
                   [&](absl::Status s, std::vector<float> r) {
                     EXPECT_TRUE(s.ok());
                     EXPECT_EQ(r, std::vector<float>({106, 112}));
                     answered = true;
                     answered_on = std::this_thread::get_id();
                   });
    EXPECT_TRUE(answered);  // before Submit returned
    EXPECT_EQ(answered_on, std::this_thread::get_id());
  }
  EXPECT_EQ(cpu->sizes(), std::vector<int>({1, 1, 1}));
  EXPECT_FALSE(gpu_done.HasBeenNotified());  // its batch is still waiting
  batcher.Withdraw();                        // the late row will not come
  ASSERT_TRUE(gpu_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  leader.join();
  EXPECT_EQ(gpu->sizes(), std::vector<int>({1}));
}

TEST(MicroBatcherTest, TheModeOverridesWhatTheScorerSays) {
  auto gpu = std::make_shared<SumScorer>(0, /*batching_pays=*/true);
  auto cpu = std::make_shared<SumScorer>(0, /*batching_pays=*/false);
  MicroBatcherOptions options;
  options.mode = MicroBatching::kOn;
  EXPECT_TRUE(MicroBatcher(options).Batches(*cpu));
  EXPECT_TRUE(MicroBatcher(options).Batches(*gpu));
  options.mode = MicroBatching::kOff;
  EXPECT_FALSE(MicroBatcher(options).Batches(*cpu));
  EXPECT_FALSE(MicroBatcher(options).Batches(*gpu));

  // kOn gathers rows of a scorer that does not ask for it into one batch.
  options.mode = MicroBatching::kOn;
  options.batch_max = 4;
  options.batch_wait = absl::Seconds(30);
  MicroBatcher batcher(options);
  for (int i = 0; i < 4; ++i) batcher.Announce();
  std::atomic<int> answered{0};
  absl::Notification all;
  std::vector<std::thread> submitters;
  for (int i = 0; i < 4; ++i)
    submitters.emplace_back([&] {
      batcher.Submit(cpu, {1, 0, 0}, absl::InfiniteFuture(),
                     [&](absl::Status s, std::vector<float>) {
                       EXPECT_TRUE(s.ok());
                       if (++answered == 4) all.Notify();
                     });
    });
  ASSERT_TRUE(all.WaitForNotificationWithTimeout(absl::Seconds(10)));
  for (std::thread& t : submitters) t.join();
  EXPECT_EQ(cpu->sizes(), std::vector<int>({4}));
}

TEST(MicroBatcherTest, TheModeFlagIsParsedStrictly) {
  EXPECT_EQ(*ParseMicroBatching("auto"), MicroBatching::kAuto);
  EXPECT_EQ(*ParseMicroBatching("on"), MicroBatching::kOn);
  EXPECT_EQ(*ParseMicroBatching("off"), MicroBatching::kOff);
  for (MicroBatching mode : {MicroBatching::kAuto, MicroBatching::kOn, MicroBatching::kOff})
    EXPECT_EQ(*ParseMicroBatching(MicroBatchingName(mode)), mode);
  for (const char* bad : {"", "ON", "yes", "auto "}) {
    auto parsed = ParseMicroBatching(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("micro_batching"), absl::string_view::npos);
    EXPECT_NE(parsed.status().message().find("auto, on or off"), absl::string_view::npos);
  }
}

}  // namespace
}  // namespace lcio::server
