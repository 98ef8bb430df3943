// The report log under injected disk faults (fault_shim.cc, LD_PRELOAD):
// a write cut short by a full disk and a failing fdatasync must never cost
// an acknowledged record, and a record that was not acknowledged must not
// be left half-written in front of the next one.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "lcio/server/report_log.h"
#include "test_support.h"

namespace lcio::server {
namespace {

ReportRecord Record(int turn) {
  ReportRecord r;
  r.conversation_id = "c";
  r.turn_index = turn;
  r.prompt = absl::StrCat("prompt of turn ", turn, std::string(200, 'p'));
  r.task = "Query";
  r.view_names = {"view0", "view1"};
  r.association = {0.25, 0.75};
  r.tasks = {"Query", "Recommendation"};
  return r;
}

int64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

std::vector<int> TurnsOnDisk(const std::string& path, int* skipped) {
  auto contents = ReadReportLog(path);
  EXPECT_TRUE(contents.ok()) << contents.status();
  std::vector<int> turns;
  if (!contents.ok()) return turns;
  for (const ReportRecord& r : contents->records) turns.push_back(r.turn_index);
  *skipped = contents->skipped_lines;
  return turns;
}

class ReportLogFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(::dlsym(RTLD_DEFAULT, "lcio_fault_shim_loaded"), nullptr)
        << "the fault shim is not preloaded";
    path_ = dir_.File("reports.log");
    ::setenv("LCIO_FAULT_PATH", "reports.log", 1);
  }
  void TearDown() override {
    ::unsetenv("LCIO_FAULT_PATH");
    ::unsetenv("LCIO_FAULT_WRITE_ENOSPC_AFTER");
    ::unsetenv("LCIO_FAULT_FSYNC_EIO");
    ::unsetenv("LCIO_FAULT_FSYNC_ENOSPC");
    ::unsetenv("LCIO_FAULT_FSYNC_DELAY_MS");
    ::unsetenv("LCIO_FAULT_FTRUNCATE_EIO");
    ::unsetenv("LCIO_FAULT_DIR_FSYNC_EIO");
  }
  test::TempDir dir_;
  std::string path_;
};

TEST_F(ReportLogFaultTest, AShortWriteDoesNotLoseTheNextAcknowledgedRecord) {
  auto writer = ReportLogWriter::Open(path_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(Record(0)).ok());
  const int64_t good = FileSize(path_);
  // The disk fills up half-way through the next line.
  const size_t half = EncodeReportLine(Record(1)).size() / 2;
  ::setenv("LCIO_FAULT_WRITE_ENOSPC_AFTER", std::to_string(good + half).c_str(), 1);
  EXPECT_FALSE((*writer)->Append(Record(1)).ok());
  EXPECT_EQ(FileSize(path_), good) << "the torn bytes stayed in the log";
  ::unsetenv("LCIO_FAULT_WRITE_ENOSPC_AFTER");  // space again
  ASSERT_TRUE((*writer)->Append(Record(2)).ok());
  int skipped = -1;
  EXPECT_EQ(TurnsOnDisk(path_, &skipped), std::vector<int>({0, 2}));
  EXPECT_EQ(skipped, 0);
}

// Record 0 appended, then record 1 torn by a full disk with ftruncate
// failing, so the torn bytes stay (LCIO_FAULT_FTRUNCATE_EIO is left set).
void TearABatchThatCannotBeCutBack(ReportLogWriter& writer, const std::string& path) {
  ASSERT_TRUE(writer.Append(Record(0)).ok());
  const int64_t good = FileSize(path);
  const size_t half = EncodeReportLine(Record(1)).size() / 2;
  ::setenv("LCIO_FAULT_WRITE_ENOSPC_AFTER", std::to_string(good + half).c_str(), 1);
  ::setenv("LCIO_FAULT_FTRUNCATE_EIO", "1", 1);
  EXPECT_FALSE(writer.Append(Record(1)).ok());  // torn, and cannot be cut back
  EXPECT_GT(FileSize(path), good);
  ::unsetenv("LCIO_FAULT_WRITE_ENOSPC_AFTER");
}

TEST_F(ReportLogFaultTest, AWriterThatCannotCutBackRefusesUntilItCan) {
  auto writer = ReportLogWriter::Open(path_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  TearABatchThatCannotBeCutBack(**writer, path_);
  const int64_t torn = FileSize(path_);
  auto refused = (*writer)->Append(Record(2));  // space again, still torn: refused
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_EQ(FileSize(path_), torn) << "appended after torn bytes";
  ::unsetenv("LCIO_FAULT_FTRUNCATE_EIO");
  ASSERT_TRUE((*writer)->Append(Record(3)).ok());
  int skipped = -1;
  EXPECT_EQ(TurnsOnDisk(path_, &skipped), std::vector<int>({0, 3}));
  EXPECT_EQ(skipped, 0);
}

// A writer closed while bytes of a failed batch are still in the file (it
// could not cut them back) tries once more: the next writer should not find
// lines that may never have reached the disk.
TEST_F(ReportLogFaultTest, AWriterClosedWhileDamagedCutsBackWhatIsNotDurable) {
  {
    auto writer = ReportLogWriter::Open(path_);
    ASSERT_TRUE(writer.ok()) << writer.status();
    TearABatchThatCannotBeCutBack(**writer, path_);
    ::unsetenv("LCIO_FAULT_FTRUNCATE_EIO");
  }
  int skipped = -1;
  EXPECT_EQ(TurnsOnDisk(path_, &skipped), std::vector<int>({0}));
  EXPECT_EQ(skipped, 0) << "the failed batch's bytes were left behind";
}

// A full disk or quota that only the sync reports is a full disk, not an
// I/O error: RESOURCE_EXHAUSTED, as a failed write's.
TEST_F(ReportLogFaultTest, AFullDiskReportedAtSyncIsResourceExhausted) {
  auto writer = ReportLogWriter::Open(path_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ::setenv("LCIO_FAULT_FSYNC_ENOSPC", "1", 1);
  auto refused = (*writer)->Append(Record(0));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_NE(refused.status().message().find("not acknowledged"), std::string::npos)
      << refused.status();
  ::unsetenv("LCIO_FAULT_FSYNC_ENOSPC");
  ASSERT_TRUE((*writer)->Append(Record(1)).ok());
  int skipped = -1;
  EXPECT_EQ(TurnsOnDisk(path_, &skipped), std::vector<int>({1}));
  EXPECT_EQ(skipped, 0);
}

// A crash's torn line on a disk that is full at startup: the writer opens
// (the server keeps serving), refuses records while the disk is full, and
// once there is space the first batch terminates the torn line.
TEST_F(ReportLogFaultTest, ATornTailOnAFullDiskRefusesRecordsInsteadOfFailingTheOpen) {
  const std::string whole = EncodeReportLine(Record(0));
  const std::string torn = EncodeReportLine(Record(1)).substr(0, 100);
  test::WriteFile(path_, whole + torn);
  const int64_t size = FileSize(path_);
  ::setenv("LCIO_FAULT_WRITE_ENOSPC_AFTER", std::to_string(size).c_str(), 1);
  auto writer = ReportLogWriter::Open(path_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  auto refused = (*writer)->Append(Record(2));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_EQ(FileSize(path_), size);
  ::unsetenv("LCIO_FAULT_WRITE_ENOSPC_AFTER");  // space again
  ASSERT_TRUE((*writer)->Append(Record(3)).ok());
  int skipped = -1;
  EXPECT_EQ(TurnsOnDisk(path_, &skipped), std::vector<int>({0, 3}));
  EXPECT_EQ(skipped, 1);  // the torn line, terminated
}

// A rotation renames the file and creates a new one: both are durable only
// once the directory is synced. While that fails nothing is acknowledged,
// and nothing is left written; the first batch after it succeeds is.
TEST_F(ReportLogFaultTest, NoRecordIsAcknowledgedInARotatedLogBeforeItsDirectoryIsSynced) {
  ReportLogOptions options;
  options.rotate_bytes = static_cast<int64_t>(EncodeReportLine(Record(0)).size());
  auto writer = ReportLogWriter::Open(path_, options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(Record(0)).ok());
  ::setenv("LCIO_FAULT_DIR_FSYNC_EIO", "1", 1);
  for (int turn : {1, 2}) {  // the first rotates, the second retries the sync
    auto refused = (*writer)->Append(Record(turn));
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
    EXPECT_NE(refused.status().message().find("syncing its directory"), std::string::npos)
        << refused.status();
    EXPECT_EQ(FileSize(path_), 0) << turn;
  }
  ::unsetenv("LCIO_FAULT_DIR_FSYNC_EIO");
  ASSERT_TRUE((*writer)->Append(Record(3)).ok());
  int skipped = -1;
  EXPECT_EQ(TurnsOnDisk(RotatedReportLogPath(path_, 1), &skipped), std::vector<int>({0}));
  EXPECT_EQ(TurnsOnDisk(path_, &skipped), std::vector<int>({3}));
  EXPECT_EQ(skipped, 0);
}

// A log whose directory cannot be synced cannot hold acknowledged records:
// refused at open, naming the directory, where an operator sees it.
TEST_F(ReportLogFaultTest, ALogWhoseDirectoryCannotBeSyncedIsRefusedAtOpen) {
  ::setenv("LCIO_FAULT_DIR_FSYNC_EIO", "1", 1);
  auto writer = ReportLogWriter::Open(path_);
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(writer.status().message().find("cannot sync the directory " + dir_.File("")),
            std::string::npos)
      << writer.status();
  // And a missing directory made for the log is made durable in its parent.
  auto created = CreateLogDirectory(dir_.File("new/sub/reports.log"));
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.status().message().find("(where " + dir_.File("new") + " was created)"),
            std::string::npos)
      << created.status();
  ::unsetenv("LCIO_FAULT_DIR_FSYNC_EIO");
  created = CreateLogDirectory(dir_.File("new/sub/reports.log"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(*created);
  EXPECT_TRUE(ReportLogWriter::Open(dir_.File("new/sub/reports.log")).ok());
  created = CreateLogDirectory(dir_.File("new/sub/reports.log"));
  ASSERT_TRUE(created.ok());
  EXPECT_FALSE(*created);
}

TEST_F(ReportLogFaultTest, AFailedFdatasyncAcknowledgesNothingAndRestoresTheDurableLength) {
  auto writer = ReportLogWriter::Open(path_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(Record(0)).ok());
  const int64_t durable = FileSize(path_);
  ::setenv("LCIO_FAULT_FSYNC_EIO", "1", 1);
  EXPECT_FALSE((*writer)->Append(Record(1)).ok());
  EXPECT_FALSE((*writer)->Append(Record(2)).ok());  // still failing: nothing acknowledged
  ::unsetenv("LCIO_FAULT_FSYNC_EIO");
  // The failed records are gone rather than in an unknown state.
  ASSERT_TRUE((*writer)->Append(Record(3)).ok());
  int skipped = -1;
  EXPECT_EQ(TurnsOnDisk(path_, &skipped), std::vector<int>({0, 3}));
  EXPECT_EQ(skipped, 0);
  EXPECT_GT(FileSize(path_), durable);
}

TEST_F(ReportLogFaultTest, RecordsQueuedBehindASlowFdatasyncShareTheNextOne) {
  ::setenv("LCIO_FAULT_FSYNC_DELAY_MS", "300", 1);
  auto writer = ReportLogWriter::Open(path_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ReportCommitter committer(*std::move(writer), 1000);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint64_t> sequences;
  constexpr int kRecords = 50;
  for (int t = 0; t < kRecords; ++t)
    ASSERT_TRUE(committer
                    .Submit(EncodeReportLine(Record(t)),
                            [&](absl::StatusOr<uint64_t> sequence) {
                              std::lock_guard<std::mutex> lock(mu);
                              sequences.push_back(sequence.ok() ? *sequence : 0);
                              cv.notify_all();
                            })
                    .ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(
        cv.wait_for(lock, std::chrono::seconds(120), [&] { return sequences.size() == kRecords; }));
  }
  for (int t = 0; t < kRecords; ++t) EXPECT_EQ(sequences[t], uint64_t(t + 1));
  // The first record may go alone; everything queued meanwhile goes with
  // the next fdatasync, not one each.
  EXPECT_LE(committer.batches(), 3u);
}

TEST_F(ReportLogFaultTest, AHungDiskFillsTheBoundedQueueAndStopStillAnswersEveryWaiter) {
  ::setenv("LCIO_FAULT_FSYNC_DELAY_MS", "5000", 1);
  auto writer = ReportLogWriter::Open(path_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ReportCommitter committer(*std::move(writer), 2);
  std::mutex mu;
  std::vector<absl::Status> answers;
  auto done = [&](absl::StatusOr<uint64_t> sequence) {
    std::lock_guard<std::mutex> lock(mu);
    answers.push_back(sequence.status());
  };
  ASSERT_TRUE(committer.Submit(EncodeReportLine(Record(0)), done).ok());
  ASSERT_TRUE(committer.Submit(EncodeReportLine(Record(1)), done).ok());
  // Both are stuck behind the slow fdatasync: the bound holds.
  EXPECT_EQ(committer.Submit(EncodeReportLine(Record(2)), done).code(),
            absl::StatusCode::kResourceExhausted);
  // The deadline passes long before the disk answers; Stop does not wait
  // for it, and nobody was told OK.
  committer.Stop(absl::Now() + absl::Milliseconds(100));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(answers.size(), 2u);
  for (const absl::Status& s : answers) EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(committer.Submit("x", done).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace lcio::server

// Re-executes the test under the shim when it was started without it (by
// hand), so that the faults are always really injected.
int main(int argc, char** argv) {
  if (::dlsym(RTLD_DEFAULT, "lcio_fault_shim_loaded") == nullptr &&
      std::getenv("LCIO_FAULT_REEXEC") == nullptr) {
    ::setenv("LD_PRELOAD", LCIO_FAULT_SHIM, 1);
    ::setenv("LCIO_FAULT_REEXEC", "1", 1);
    ::execv("/proc/self/exe", argv);
    return 127;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
