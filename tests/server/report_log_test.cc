#include "lcio/server/report_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "lcio/data/m4a1.h"
#include "nlohmann/json.hpp"
#include "test_support.h"

namespace lcio::server {
namespace {

ReportRecord Record(const std::string& conversation, int turn, bool cloud) {
  ReportRecord r;
  r.conversation_id = conversation;
  r.turn_index = turn;
  r.decision_id = absl::StrCat(conversation, "/", turn, "/x");
  r.prompt = absl::StrCat("What is on the table? \"quoted\"\nline ", turn, " \xc3\xa9");
  r.task = "Query";
  r.cloud = cloud;
  if (cloud) r.uploaded_views = {0, 2};
  r.view_names = {"view0", "view1", "view2"};
  // Every number differs by turn, so that a field read from another record
  // or another field shows.
  r.association = {0.1 + 0.001 * (turn % 500), 0.5, 0.9};
  r.answer = absl::StrCat("an answer to turn ", turn);
  r.score = 0.75 + 0.125 * turn;
  r.interaction_time_s = 1.5 + turn;
  r.usage_cost_usd = (cloud ? 0.009 : 0.0001) + 1e-5 * turn;
  r.tasks = {"Assistive System", "Message Editing", "Query", "Recommendation"};
  r.policy_version = absl::StrCat("v", turn);
  r.received_utc = absl::StrCat("2026-12-04T10:00:0", turn, ".000000Z");
  return r;
}

void ExpectSameRecord(const ReportRecord& got, const ReportRecord& want) {
  EXPECT_EQ(got.conversation_id, want.conversation_id);
  EXPECT_EQ(got.turn_index, want.turn_index);
  EXPECT_EQ(got.decision_id, want.decision_id);
  EXPECT_EQ(got.prompt, want.prompt);
  EXPECT_EQ(got.task, want.task);
  EXPECT_EQ(got.cloud, want.cloud);
  EXPECT_EQ(got.uploaded_views, want.uploaded_views);
  EXPECT_EQ(got.view_names, want.view_names);
  EXPECT_EQ(got.association, want.association);
  EXPECT_EQ(got.answer, want.answer);
  EXPECT_EQ(got.score, want.score);
  EXPECT_EQ(got.interaction_time_s, want.interaction_time_s);
  EXPECT_EQ(got.usage_cost_usd, want.usage_cost_usd);
  EXPECT_EQ(got.tasks, want.tasks);
  EXPECT_EQ(got.policy_version, want.policy_version);
  EXPECT_EQ(got.received_utc, want.received_utc);
}

TEST(ReportLogTest, Crc32MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
}

TEST(ReportLogTest, AppendedRecordsReadBackExactly) {
  test::TempDir dir;
  const std::string path = dir.File("reports.log");
  {
    auto writer = ReportLogWriter::Open(path);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (int t = 0; t < 3; ++t)
      ASSERT_EQ(*(*writer)->Append(Record("c1", t, t == 1)), uint64_t(t + 1));
  }
  auto contents = ReadReportLog(path);
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(contents->skipped_lines, 0);
  ASSERT_EQ(contents->records.size(), 3u);
  for (int t = 0; t < 3; ++t) {
    SCOPED_TRACE(t);
    ExpectSameRecord(contents->records[t], Record("c1", t, t == 1));
  }
  EXPECT_EQ(contents->records[1].uploaded_views, std::vector<int>({0, 2}));
}

// A record with a good checksum but outside what Report admits (hand-written,
// or from another version) is skipped and counted, never exported into data
// the trainer refuses.
TEST(ReportLogTest, RecordsOutsideTheReportRulesAreSkippedWithTheFieldAndTheRule) {
  test::TempDir dir;
  const std::string path = dir.File("reports.log");
  const std::pair<std::function<void(nlohmann::json&)>, const char*> cases[] = {
      {[](nlohmann::json& j) { j["score"] = -1; }, "'score' = -1: must be in [0, 1000]"},
      {[](nlohmann::json& j) { j["score"] = 1e308; }, "'score' = 1e+308: must be in [0, 1000]"},
      {[](nlohmann::json& j) { j["interaction_time_s"] = -1; }, "'interaction_time_s' = -1"},
      {[](nlohmann::json& j) { j["usage_cost_usd"] = 2e6; }, "'usage_cost_usd' = 2e+06"},
      {[](nlohmann::json& j) { j["uploaded_views"] = {7}; }, "'uploaded_views' = 7: must index"},
      {[](nlohmann::json& j) {
         j["uploaded_views"] = {0, 0};
       },
       "more than once"},
      {[](nlohmann::json& j) { j["cloud"] = false; }, "must be empty for a local answer"},
      {[](nlohmann::json& j) {
         j["association"] = {0.5, 2.0, 0.1};
       },
       "'association' = 2"},
      {[](nlohmann::json& j) { j["association"] = {0.5}; }, "needs one per view (3)"},
      // The bound every reader of turns shares (data::kMaxTurnIndex).
      {[](nlohmann::json& j) { j["turn_index"] = (1 << 30) + 1; },
       "'turn_index' = 1073741825: must be a whole number in [0, 1073741824]"},
      {[](nlohmann::json& j) { j["turn_index"] = -1; }, "'turn_index' = -1"},
      // Types are checked before any value is read, and named with it.
      {[](nlohmann::json& j) { j["turn_index"] = 1e30; },
       "'turn_index' = 1e+30: must be a whole number in [0, 1073741824]"},
      {[](nlohmann::json& j) { j["uploaded_views"] = {1e30}; },
       "'uploaded_views' = 1e+30: must be a whole number"},
      {[](nlohmann::json& j) { j["prompt"] = 5; }, "'prompt' = 5: must be a string"},
      {[](nlohmann::json& j) { j["association"] = {nullptr}; },
       "'association' = null: must be a number"},
      {[](nlohmann::json& j) { j["view_names"] = "front"; },
       "'view_names' = \"front\": must be an array"},
      {[](nlohmann::json& j) { j["decision_id"] = false; },
       "'decision_id' = false: must be a string"},
      {[](nlohmann::json& j) { j.erase("score"); }, "'score' is missing"},
      // lcio-join took these, and its log then failed the policies it served.
      {[](nlohmann::json& j) { j["task"] = "Nope"; }, "'task' = \"Nope\": must be one of 'tasks'"},
      {[](nlohmann::json& j) { j["tasks"] = nlohmann::json::array(); },
       "'tasks' = []: must name the policy's tasks"},
  };
  std::string text = EncodeReportLine(Record("c", 0, true));
  for (const auto& [change, rule] : cases) {
    nlohmann::json j = nlohmann::json::parse(ReportRecordToJson(Record("c", 1, true)));
    change(j);
    const std::string json = j.dump();
    text += absl::StrCat(absl::StrFormat("%08x", Crc32(json)), " ", json, "\n");
  }
  test::WriteFile(path, text);
  auto contents = ReadReportLog(path);
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(contents->records.size(), 1u);
  EXPECT_EQ(contents->skipped_lines, static_cast<int>(std::size(cases)));
  ASSERT_EQ(contents->problems.size(), std::size(cases));
  for (size_t i = 0; i < std::size(cases); ++i)
    EXPECT_NE(contents->problems[i].find(cases[i].second), std::string::npos)
        << contents->problems[i];
}

TEST(ReportLogTest, ATornLastLineIsSkippedAndTheWriterStartsAFreshLine) {
  test::TempDir dir;
  const std::string path = dir.File("reports.log");
  const std::string first = EncodeReportLine(Record("c1", 0, false));
  const std::string second = EncodeReportLine(Record("c1", 1, true));
  test::WriteFile(path, first + second.substr(0, second.size() / 2));  // crash mid-write
  auto torn = ReadReportLog(path);
  ASSERT_TRUE(torn.ok());
  EXPECT_EQ(torn->records.size(), 1u);
  EXPECT_EQ(torn->skipped_lines, 1);
  {
    auto writer = ReportLogWriter::Open(path);
    ASSERT_TRUE(writer.ok());
    // Opening writes nothing: the newline goes with the first batch.
    EXPECT_EQ(test::ReadFile(path), first + second.substr(0, second.size() / 2));
    ASSERT_TRUE((*writer)->Append(Record("c1", 1, true)).ok());
  }
  auto repaired = ReadReportLog(path);
  ASSERT_TRUE(repaired.ok());
  ASSERT_EQ(repaired->records.size(), 2u);
  EXPECT_EQ(repaired->records[1].turn_index, 1);
  EXPECT_EQ(repaired->skipped_lines, 1);  // the torn half-line, now terminated
}

// A writer that stopped (or crashed) after a failed fdatasync may leave
// lines that read whole from the page cache but never reach the disk: after a
// reboot those bytes can read as zeros, newline included. The next writer's
// first record must still start a line of its own.
TEST(ReportLogTest, TheFirstRecordAfterAnOpenStartsALineOfItsOwn) {
  test::TempDir dir;
  const std::string path = dir.File("reports.log");
  const std::string first = EncodeReportLine(Record("c1", 0, false));
  const std::string lost = EncodeReportLine(Record("c1", 1, true));
  test::WriteFile(path, first + lost);
  {
    auto writer = ReportLogWriter::Open(path);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append(Record("c1", 2, false)).ok());  // acknowledged
    ASSERT_TRUE((*writer)->Append(Record("c1", 3, false)).ok());
  }
  // The reboot: the pages of `lost` read as zeros.
  std::string bytes = test::ReadFile(path);
  ASSERT_EQ(bytes.compare(0, first.size() + lost.size(), first + lost), 0);
  std::fill(bytes.begin() + first.size(), bytes.begin() + first.size() + lost.size(), '\0');
  test::WriteFile(path, bytes);
  auto contents = ReadReportLog(path);
  ASSERT_TRUE(contents.ok()) << contents.status();
  ASSERT_EQ(contents->records.size(), 3u);
  EXPECT_EQ(contents->records[0].turn_index, 0);
  ExpectSameRecord(contents->records[1], Record("c1", 2, false));
  ExpectSameRecord(contents->records[2], Record("c1", 3, false));
  EXPECT_EQ(contents->skipped_lines, 1);  // the zeros, ended by the newline
  // One newline per open, and only before the first batch: a whole file
  // reopened again reads the same records.
  {
    auto writer = ReportLogWriter::Open(path);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append(Record("c1", 4, false)).ok());
  }
  EXPECT_EQ(test::ReadFile(path), bytes + "\n" + EncodeReportLine(Record("c1", 4, false)));
}

TEST(ReportLogTest, ACorruptLineInTheMiddleIsSkippedAndTheRestKept) {
  test::TempDir dir;
  const std::string path = dir.File("reports.log");
  std::string middle = EncodeReportLine(Record("c1", 1, false));
  middle[20] = middle[20] == 'a' ? 'b' : 'a';  // one flipped byte
  test::WriteFile(path, EncodeReportLine(Record("c1", 0, false)) + middle +
                            EncodeReportLine(Record("c1", 2, false)));
  auto contents = ReadReportLog(path);
  ASSERT_TRUE(contents.ok());
  ASSERT_EQ(contents->records.size(), 2u);
  EXPECT_EQ(contents->skipped_lines, 1);
  EXPECT_NE(contents->problems[0].find("checksum"), std::string::npos);
}

void WriteLog(const std::string& path, const std::vector<ReportRecord>& records) {
  std::string text;
  for (const ReportRecord& r : records) text += EncodeReportLine(r);
  test::WriteFile(path, text);
}

absl::StatusOr<ExportSummary> Export(const std::vector<std::string>& files, std::string* json,
                                     const std::string& rejects = "") {
  std::ostringstream out;
  auto summary = ExportReportLogs(files, out, false, rejects);
  *json = out.str();
  return summary;
}

// An output whose first write runs `on_first_write`. The export writes
// nothing before its first pass ends, so that is where a test changes the
// log under it.
class FirstWriteHook : public std::stringbuf {
 public:
  explicit FirstWriteHook(std::function<void()> on_first_write)
      : on_first_write_(std::move(on_first_write)) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    Fire();
    return std::stringbuf::xsputn(s, n);
  }
  int_type overflow(int_type c) override {
    Fire();
    return std::stringbuf::overflow(c);
  }

 private:
  void Fire() {
    if (on_first_write_) std::exchange(on_first_write_, nullptr)();
  }
  std::function<void()> on_first_write_;
};

// A log cut back after a failed batch and written anew can hold another
// whole, valid record at an offset the first pass indexed: its checksum
// holds, so it must be caught by what it is (conversation b's turn was
// exported inside conversation a's episode).
TEST(ReportLogTest, AnotherWholeRecordAtAnIndexedOffsetFailsTheExport) {
  test::TempDir dir;
  const std::string log = dir.File("r.log");
  WriteLog(log, {Record("a", 0, false)});
  FirstWriteHook hook([&] {
    std::ofstream rewritten(log, std::ios::binary | std::ios::trunc);  // the same file
    rewritten << EncodeReportLine(Record("b", 0, false));
  });
  std::ostream out(&hook);
  auto exported = ExportReportLogs({log}, out, false, "");
  EXPECT_EQ(exported.status().code(), absl::StatusCode::kDataLoss) << exported.status();
  EXPECT_NE(exported.status().message().find("another record is there now"), std::string::npos)
      << exported.status();
}

// A record read again must be the record indexed: other bytes at its offset
// (a log cut back and written anew) are refused, not exported.
TEST(ReportLogTest, ARecordWhoseBytesChangedSinceItWasIndexedIsRefused) {
  test::TempDir dir;
  const std::string log = dir.File("r.log");
  WriteLog(log, {Record("a", 0, false)});
  std::string line = test::ReadFile(log);
  std::ifstream in(log, std::ios::binary);
  ASSERT_TRUE(ReadReportRecordAt(in, 0, log).ok());
  line[line.find("\"a\"") + 1] = 'b';  // the same length, the checksum no longer holds
  test::WriteFile(log, line);
  std::ifstream changed(log, std::ios::binary);
  auto read = ReadReportRecordAt(changed, 0, log);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << read.status();
}

TEST(ReportLogTest, ExportIsM4A1DataTheLoaderAccepts) {
  test::TempDir dir;
  WriteLog(dir.File("r.log"), {Record("a", 1, true), Record("b", 0, false), Record("a", 0, false),
                               Record("a", 1, false)});
  std::string json;
  auto exported = Export({dir.File("r.log")}, &json);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->episodes, 2);
  EXPECT_EQ(exported->turns, 3);
  auto parsed = data::ParseM4A1(json, "export");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->episodes.size(), 2u);
  ASSERT_EQ(parsed->episodes[0].turns.size(), 2u);
  // Turn order by index, and the later record of a repeated turn wins.
  EXPECT_EQ(parsed->episodes[0].turns[1].target, data::Target::kLocal);
  EXPECT_EQ(parsed->episodes[0].turns[0].question, Record("a", 0, false).prompt);
  EXPECT_DOUBLE_EQ(parsed->episodes[0].association[0][2], 0.9);
  EXPECT_EQ(parsed->num_views, 3);
  // The streamed text is what the in-memory writer makes of the same data.
  EXPECT_EQ(json, data::ToM4A1Json(*parsed));
}

TEST(ReportLogTest, RecordsOfAnotherSchemaFailTheExportOrGoToTheRejectsFile) {
  test::TempDir dir;
  ReportRecord other = Record("b", 0, false);
  other.view_names = {"front", "back"};
  other.association = {0.5, 0.5};
  WriteLog(dir.File("r.log"), {Record("a", 0, false), other, Record("a", 1, true)});
  std::string json;
  auto refused = Export({dir.File("r.log")}, &json);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("--rejects"), absl::string_view::npos);
  auto exported = Export({dir.File("r.log")}, &json, dir.File("rejects.log"));
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->rejected, 1);
  EXPECT_EQ(exported->turns, 2);
  // The rejects file is a report log of its own: it exports on its own.
  auto rejected = Export({dir.File("rejects.log")}, &json);
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->turns, 1);
  auto parsed = data::ParseM4A1(json, "rejects");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->num_views, 2);
  // A rejects file that cannot be written fails the export: the records set
  // aside would otherwise be lost with exit 0.
  auto lost = Export({dir.File("r.log")}, &json, dir.File("missing/rejects.log"));
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kDataLoss) << lost.status();
  EXPECT_NE(lost.status().message().find("missing/rejects.log"), absl::string_view::npos);
}

TEST(ReportLogTest, TurnsPastAGapAreOrphanedNotExportedAsEpisodes) {
  test::TempDir dir;
  // "x" starts at turn 7 (its start is in no log); "a" skips turn 2.
  WriteLog(dir.File("r.log"), {Record("a", 0, false), Record("x", 7, true), Record("a", 1, true),
                               Record("a", 3, false)});
  std::string json;
  auto exported = Export({dir.File("r.log")}, &json, dir.File("rejects.log"));
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->episodes, 1);
  EXPECT_EQ(exported->turns, 2);
  EXPECT_EQ(exported->orphaned, 2);
  EXPECT_EQ(exported->rejected, 0);
  auto parsed = data::ParseM4A1(json, "export");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->episodes.size(), 1u);
  EXPECT_EQ(parsed->episodes[0].turns.size(), 2u);
  // Nothing vanishes: the orphans are in the rejects file, and counted
  // without one.
  auto rejects = ReadReportLog(dir.File("rejects.log"));
  ASSERT_TRUE(rejects.ok()) << rejects.status();
  ASSERT_EQ(rejects->records.size(), 2u);
  auto counted = Export({dir.File("r.log")}, &json);
  ASSERT_TRUE(counted.ok()) << counted.status();
  EXPECT_EQ(counted->orphaned, 2);
  // A log of nothing but orphans exports nothing, and says why.
  WriteLog(dir.File("late.log"), {Record("y", 4, false)});
  auto none = Export({dir.File("late.log")}, &json);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("orphaned"), absl::string_view::npos);
}

TEST(ReportLogTest, ExportWithABaseAppendsEpisodesNumberedAfterTheBase) {
  test::TempDir dir;
  WriteLog(dir.File("base.log"), {Record("a", 0, false), Record("b", 0, true)});
  std::string base_json;
  ASSERT_TRUE(Export({dir.File("base.log")}, &base_json).ok());
  auto base = data::ParseM4A1(base_json, "base");
  ASSERT_TRUE(base.ok()) << base.status();
  base->episodes[1].id = 41;  // ids need not be dense
  ReportRecord two_views = Record("d", 0, false);
  two_views.view_names = {"front", "back"};
  two_views.association = {0.5, 0.5};
  WriteLog(dir.File("r.log"), {Record("c", 0, true), Record("c", 1, false), two_views});
  ExportOptions options;
  options.base = &*base;
  options.rejects_path = dir.File("rejects.log");
  std::ostringstream out;
  auto merged = ExportReportLogs({dir.File("r.log")}, out, options);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->base_episodes, 2);
  EXPECT_EQ(merged->episodes, 1);
  EXPECT_EQ(merged->rejected, 1);  // the base's view count is the schema
  auto parsed = data::ParseM4A1(out.str(), "merged");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->episodes.size(), 3u);
  EXPECT_EQ(parsed->episodes[1].id, 41);
  EXPECT_EQ(parsed->episodes[2].id, 42);
  EXPECT_EQ(parsed->episodes[2].turns.size(), 2u);
  EXPECT_EQ(parsed->episodes[0].turns[0].question, base->episodes[0].turns[0].question);
}

// A record of `conversation` reported at `utc` ("" for a record without a
// time), its prompt naming the conversation so that an exported episode shows
// whose it is.
ReportRecord Dated(const std::string& conversation, int turn, const std::string& utc) {
  ReportRecord r = Record(conversation, turn, false);
  r.prompt = absl::StrCat(conversation, " turn ", turn);
  r.received_utc = utc;
  return r;
}

std::vector<std::string> Conversations(const std::string& json) {
  auto parsed = data::ParseM4A1(json, "export");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  std::vector<std::string> names;
  if (!parsed.ok()) return names;
  for (const data::Episode& e : parsed->episodes)
    names.push_back(absl::StrCat(e.id, ":", e.turns[0].question.substr(0, 2)));
  return names;
}

TEST(ReportLogTest, TheHoldOutIsTheNewestConversationsByFirstReportOverAllFiles) {
  test::TempDir dir;
  // Two pods' logs. In the export's order (file by file) the last three are
  // b2, b3, b4; by first report time over both pods the newest are a3, b2
  // and a2. b3 has no time (ordered oldest); b4 began at 09:00 and was
  // reported again at 15:00 (its first report counts); c began on pod a and
  // went on on pod b (one conversation).
  auto at = [](const std::string& hh) { return absl::StrCat("2026-12-04T", hh, ":00:00.000000Z"); };
  WriteLog(dir.File("a.log"),
           {Dated("c1", 0, at("08")), Dated("a1", 0, at("10")), Dated("a1", 1, at("10")),
            Dated("a2", 0, at("12")), Dated("a3", 0, at("14"))});
  WriteLog(dir.File("b.log"),
           {Dated("b1", 0, at("11")), Dated("c1", 1, at("16")), Dated("b2", 0, at("13")),
            Dated("b3", 0, ""), Dated("b4", 0, at("09")), Dated("b4", 1, at("15"))});
  ExportOptions options;
  std::ostringstream out, holdout;
  options.holdout = &holdout;
  options.holdout_share = 0.45;  // floor(0.45 * 8 conversations) = 3
  auto summary = ExportReportLogs({dir.File("a.log"), dir.File("b.log")}, out, options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->episodes, 8);
  EXPECT_EQ(summary->held_out, 3);
  EXPECT_EQ(summary->undated, 1);
  EXPECT_EQ(summary->held_out_since, at("12"));
  // Training keeps the export's order; the hold-out is oldest first; each
  // file numbers its episodes from 1.
  EXPECT_EQ(Conversations(out.str()),
            (std::vector<std::string>{"1:c1", "2:a1", "3:b1", "4:b3", "5:b4"}));
  EXPECT_EQ(Conversations(holdout.str()), (std::vector<std::string>{"1:a2", "2:b2", "3:a3"}));
  auto parsed = data::ParseM4A1(out.str(), "export");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->episodes[0].turns.size(), 2u);  // c1 over both pods
  EXPECT_EQ(parsed->episodes[4].turns.size(), 2u);  // b4 with its later turn

  // No share: an empty hold-out, everything trained on.
  std::ostringstream all, none;
  options.holdout = &none;
  options.holdout_share = 0;
  auto unsplit = ExportReportLogs({dir.File("a.log"), dir.File("b.log")}, all, options);
  ASSERT_TRUE(unsplit.ok()) << unsplit.status();
  EXPECT_EQ(unsplit->held_out, 0);
  EXPECT_EQ(unsplit->held_out_since, "");
  EXPECT_EQ(Conversations(all.str()).size(), 8u);
  EXPECT_EQ(none.str(), "[]");
  // A share outside [0, 1) is refused before anything is read.
  for (double bad : {-0.1, 1.0, std::numeric_limits<double>::quiet_NaN()}) {
    options.holdout_share = bad;
    std::ostringstream ignored;
    auto refused = ExportReportLogs({dir.File("a.log")}, ignored, options);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(refused.status().message().find("must be in [0, 1)"), absl::string_view::npos);
  }
}

TEST(ReportLogTest, ALogThatIsNotARegularFileIsRefusedUnopened) {
  test::TempDir dir;
  ASSERT_EQ(::mkfifo(dir.File("fifo.log").c_str(), 0600), 0);  // opening it would wait
  for (const std::string& path : {dir.File("fifo.log"), std::string("/dev/zero")}) {
    std::ostringstream out;
    auto exported = ExportReportLogs({path}, out, ExportOptions{});
    EXPECT_EQ(exported.status().code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_NE(exported.status().message().find("not a regular file"), absl::string_view::npos);
  }
  // One pass in order (lcio-join's) reads a pipe, but never a device.
  int skipped = 0;
  std::vector<std::string> problems;
  EXPECT_EQ(ScanReportLog("/dev/zero", &skipped, &problems, [](ReportRecord, int64_t) {}).code(),
            absl::StatusCode::kInvalidArgument);
}

// One export reads every pod's log: a turn reported again to another pod is
// the newer record, whichever file comes first; within one file the last
// appended wins, as it always has.
TEST(ReportLogTest, ATurnReportedToTwoPodsKeepsTheNewerRecord) {
  test::TempDir dir;
  auto at = [](const std::string& mm) { return absl::StrCat("2026-12-04T10:", mm, ":00.000000Z"); };
  ReportRecord newer = Dated("c", 0, at("30"));
  newer.score = 7;
  ReportRecord older = Dated("c", 0, at("10"));
  older.score = 3;
  ReportRecord again = Dated("c", 0, at("05"));  // same file, later line, clock stepped back
  again.score = 5;
  WriteLog(dir.File("a.log"), {newer});
  WriteLog(dir.File("b.log"), {older});
  WriteLog(dir.File("c.log"), {older, again});
  auto score_of = [&](const std::vector<std::string>& files) {
    std::ostringstream out;
    auto summary = ExportReportLogs(files, out, ExportOptions{});
    EXPECT_TRUE(summary.ok()) << summary.status();
    auto parsed = data::ParseM4A1(out.str(), "export");
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return parsed.ok() ? parsed->episodes.at(0).turns.at(0).score : -1.0;
  };
  EXPECT_EQ(score_of({dir.File("a.log"), dir.File("b.log")}), 7);
  EXPECT_EQ(score_of({dir.File("b.log"), dir.File("a.log")}), 7);
  EXPECT_EQ(score_of({dir.File("c.log")}), 5);
}

TEST(ReportLogTest, AnEmptyLogExportsAnEmptyArrayOnlyWhenAllowed) {
  test::TempDir dir;
  test::WriteFile(dir.File("idle.log"), "");  // a pod that served no Report
  std::ostringstream refused_out;
  auto refused = ExportReportLogs({dir.File("idle.log")}, refused_out, ExportOptions{});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  ExportOptions options;
  options.allow_empty = true;
  std::ostringstream out, holdout;
  options.holdout = &holdout;
  options.holdout_share = 0.2;
  auto empty = ExportReportLogs({dir.File("idle.log")}, out, options);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->episodes, 0);
  EXPECT_EQ(out.str(), "[]");
  EXPECT_EQ(holdout.str(), "[]");
}

TEST(ReportLogTest, RotationStartsNumberedFilesThatExportAsOneSeries) {
  test::TempDir dir;
  const std::string path = dir.File("reports.log");
  size_t line = 0;  // the longest of the six (their numbers differ by turn)
  for (int t = 0; t < 6; ++t) line = std::max(line, EncodeReportLine(Record("c", t, false)).size());
  ReportLogOptions options;
  options.rotate_bytes = static_cast<int64_t>(2 * line + 8);  // two records a file
  {
    auto writer = ReportLogWriter::Open(path, options);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (int t = 0; t < 5; ++t) ASSERT_TRUE((*writer)->Append(Record("c", t, false)).ok());
  }
  {  // a restart continues the numbering
    auto writer = ReportLogWriter::Open(path, options);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append(Record("c", 5, false)).ok());
  }
  const std::vector<std::string> series = ReportLogSeries(path);
  ASSERT_EQ(series, std::vector<std::string>(
                        {RotatedReportLogPath(path, 1), RotatedReportLogPath(path, 2), path}));
  EXPECT_EQ(series[0], path + ".000001");
  std::string json;
  auto exported = Export(series, &json);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->turns, 6);
  EXPECT_EQ(exported->skipped_lines, 0);
}

// The generic append log's retention (--decision_log_keep_files): only the
// newest rotated files stay, and the numbering goes on.
TEST(AppendLogTest, RetentionKeepsOnlyTheNewestRotatedFiles) {
  test::TempDir dir;
  const std::string path = dir.File("decisions.jsonl");
  const std::string line = "{\"a\":1}\n";
  AppendLogOptions options;
  options.rotate_bytes = static_cast<int64_t>(2 * line.size());  // two lines a file
  options.keep_rotated = 2;
  options.name = "decision log";
  auto writer = AppendLogWriter::Open(path, options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((*writer)->AppendLines({line}).ok());
  // 10 lines: files 1..4 rotated (two lines each), two in the live file;
  // only 3 and 4 are kept.
  EXPECT_EQ(LogSeries(path),
            std::vector<std::string>({RotatedLogPath(path, 3), RotatedLogPath(path, 4), path}));
  EXPECT_EQ(test::ReadFile(RotatedLogPath(path, 4)), line + line);
  EXPECT_EQ(test::ReadFile(path), line + line);
}

// Two writers of one log would cut back and rotate over each other's
// acknowledged records: the second is refused while the first lives, also
// when it is the same process's other log.
TEST(AppendLogTest, ASecondWriterOfTheSameLogIsRefusedWhileTheFirstLives) {
  test::TempDir dir;
  const std::string path = dir.File("reports.log");
  {
    auto first = ReportLogWriter::Open(path);
    ASSERT_TRUE(first.ok()) << first.status();
    AppendLogOptions decision_log;
    decision_log.name = "decision log";
    auto second = AppendLogWriter::Open(path, decision_log);
    ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
    EXPECT_NE(second.status().message().find("decision log " + path + " is already being written"),
              std::string::npos)
        << second.status();
    EXPECT_NE(second.status().message().find(LogLockPath(path)), std::string::npos);
    ASSERT_TRUE((*first)->Append(Record("c", 0, false)).ok());
  }
  auto again = ReportLogWriter::Open(path);  // the first is gone, and its lock with it
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE((*again)->Append(Record("c", 1, false)).ok());
  auto contents = ReadReportLog(path);
  ASSERT_TRUE(contents.ok());
  EXPECT_EQ(contents->records.size(), 2u);
  // The lock file is not part of the series.
  EXPECT_EQ(ReportLogSeries(path), std::vector<std::string>({path}));
}

// A rotated file holds acknowledged records: a rotation goes past the
// highest number on disk, even one that appeared after the writer opened.
TEST(AppendLogTest, RotationNeverRenamesOverAnExistingRotatedFile) {
  test::TempDir dir;
  const std::string path = dir.File("decisions.jsonl");
  const std::string line = "{\"a\":1}\n";
  AppendLogOptions options;
  options.rotate_bytes = static_cast<int64_t>(2 * line.size());
  auto writer = AppendLogWriter::Open(path, options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*writer)->AppendLines({line}).ok());
  test::WriteFile(RotatedLogPath(path, 1), "kept\n");
  ASSERT_TRUE((*writer)->AppendLines({line}).ok());  // rotates
  EXPECT_EQ(test::ReadFile(RotatedLogPath(path, 1)), "kept\n");
  EXPECT_EQ(test::ReadFile(RotatedLogPath(path, 2)), line + line);
  EXPECT_EQ(test::ReadFile(path), line);
}

// File 1000000 has seven digits: a restarted writer goes on past it, and
// the series (what the exporter and lcio-join read) keeps it, in order.
TEST(AppendLogTest, RotationGoesOnPastFileOneMillion) {
  test::TempDir dir;
  const std::string path = dir.File("decisions.jsonl");
  const std::string line = "{\"a\":1}\n";
  AppendLogOptions options;
  options.rotate_bytes = static_cast<int64_t>(2 * line.size());
  test::WriteFile(RotatedLogPath(path, 999999), line);
  test::WriteFile(path + ".0000007", "not ours\n");  // not a name RotatedLogPath writes
  for (int life = 0; life < 2; ++life) {             // the second life reopens after a restart
    auto writer = AppendLogWriter::Open(path, options);
    ASSERT_TRUE(writer.ok()) << writer.status();
    // Two lines a file: the last append of each life rotates.
    for (int i = 0; i < (life == 0 ? 3 : 2); ++i)
      ASSERT_TRUE((*writer)->AppendLines({line}).ok()) << life << i;
  }
  EXPECT_EQ(RotatedLogPath(path, 1000000), path + ".1000000");
  EXPECT_EQ(LogSeries(path),
            std::vector<std::string>({RotatedLogPath(path, 999999), RotatedLogPath(path, 1000000),
                                      RotatedLogPath(path, 1000001), path}));
  EXPECT_EQ(test::ReadFile(RotatedLogPath(path, 1000000)), line + line);
  // The second life's first batch starts with a newline (a file not empty at
  // open; readers skip the empty line).
  EXPECT_EQ(test::ReadFile(RotatedLogPath(path, 1000001)), line + "\n" + line);
  EXPECT_EQ(test::ReadFile(path), line);
}

// Dropping durable pages from the page cache changes nothing in the file:
// batches that end and begin inside a page read back whole, also after a
// rotation.
TEST(AppendLogTest, DroppingWrittenPagesKeepsEveryByte) {
  test::TempDir dir;
  const std::string path = dir.File("decisions.jsonl");
  AppendLogOptions options;
  options.drop_written_pages = true;
  options.rotate_bytes = 1 << 20;
  options.name = "decision log";
  auto writer = AppendLogWriter::Open(path, options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    std::vector<std::string> lines;
    for (int j = 0; j <= i % 7; ++j)
      lines.push_back(absl::StrCat("{\"batch\":", i, ",\"line\":", j, ",\"pad\":\"",
                                   std::string(static_cast<size_t>(97 * i % 3000), 'x'), "\"}\n"));
    ASSERT_TRUE((*writer)->AppendLines(lines).ok());
    for (const std::string& line : lines) expected += line;
  }
  std::string written;
  for (const std::string& file : LogSeries(path)) written += test::ReadFile(file);
  EXPECT_EQ(written, expected);
  EXPECT_GT(LogSeries(path).size(), 1u);  // it rotated
}

// With a commit interval the writer gathers what arrives after a batch
// into the next one, and Stop writes what it gathered at once rather than
// letting the interval run out. The interval (a century) is longer than any
// machine's uptime, so a first batch timed from the monotonic clock's epoch
// (often boot) rather than started at once would fail here on every machine.
TEST(AppendLogTest, ACommitIntervalGathersLinesAndStopWritesThemAtOnce) {
  test::TempDir dir;
  const std::string path = dir.File("decisions.jsonl");
  AppendLogOptions options;
  options.commit_interval = absl::Hours(24 * 365 * 100);
  options.name = "decision log";
  auto writer = AppendLogWriter::Open(path, options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::mutex mu;  // before the committer: its callbacks use them until it is gone
  std::condition_variable cv;
  std::vector<uint64_t> sequences;
  GroupCommitter committer(*std::move(writer), 1000);
  auto done = [&](absl::StatusOr<uint64_t> sequence) {
    ASSERT_TRUE(sequence.ok()) << sequence.status();
    std::lock_guard<std::mutex> lock(mu);
    sequences.push_back(*sequence);
    cv.notify_all();
  };
  // The first line starts a batch at once (no batch before it).
  ASSERT_TRUE(committer.Submit("{\"line\":0}\n", done).ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return sequences.size() == 1; }));
  }
  for (int i = 1; i < 50; ++i)
    ASSERT_TRUE(committer.Submit(absl::StrCat("{\"line\":", i, "}\n"), done).ok());
  EXPECT_EQ(committer.batches(), 1u);  // the rest waits for the interval
  // Were the interval waited for, the deadline would pass first and the
  // lines be answered UNAVAILABLE.
  committer.Stop(absl::Now() + absl::Seconds(60));
  ASSERT_EQ(sequences.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sequences[i], uint64_t(i + 1));
  EXPECT_EQ(committer.batches(), 2u);
  std::string expected;
  for (int i = 0; i < 50; ++i) absl::StrAppend(&expected, "{\"line\":", i, "}\n");
  EXPECT_EQ(test::ReadFile(path), expected);
}

// A callback handed its result runs to its end before Stop returns, even
// past Stop's deadline: the caller may free what the callbacks use once Stop
// has returned (the decision logger's use its metrics).
TEST(AppendLogTest, StopReturnsOnlyAfterARunningCallbackHasFinished) {
  test::TempDir dir;
  std::atomic<bool> started{false}, finished{false};
  auto writer = AppendLogWriter::Open(dir.File("decisions.jsonl"), AppendLogOptions{});
  ASSERT_TRUE(writer.ok()) << writer.status();
  GroupCommitter committer(*std::move(writer), 10);
  ASSERT_TRUE(committer
                  .Submit("{\"line\":0}\n",
                          [&](absl::StatusOr<uint64_t> sequence) {
                            EXPECT_TRUE(sequence.ok()) << sequence.status();
                            started = true;
                            std::this_thread::sleep_for(std::chrono::milliseconds(300));
                            finished = true;
                          })
                  .ok());
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (!started && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_TRUE(started);
  committer.Stop(absl::Now());  // the deadline has passed already
  EXPECT_TRUE(finished);
}

// The writer thread held the log (and its lock) until it let go of the
// committer's state, after Stop had returned: a writer opened at once on
// the same log (a restart in the same process) could be refused.
TEST(AppendLogTest, StopReleasesTheLogForTheNextWriter) {
  test::TempDir dir;
  const std::string path = dir.File("reports.log");
  for (int round = 0; round < 50; ++round) {
    auto writer = ReportLogWriter::Open(path);
    ASSERT_TRUE(writer.ok()) << "round " << round << ": " << writer.status();
    GroupCommitter committer(*std::move(writer), 10);
    std::atomic<bool> written{false};
    ASSERT_TRUE(committer
                    .Submit(EncodeReportLine(Record("c", round, false)),
                            [&](absl::StatusOr<uint64_t> s) { written = s.ok(); })
                    .ok());
    committer.Stop(absl::Now() + absl::Seconds(30));
    EXPECT_TRUE(written);
  }
  auto contents = ReadReportLog(path);
  ASSERT_TRUE(contents.ok());
  EXPECT_EQ(contents->records.size(), 50u);
}

TEST(ReportLogTest, ABatchBelowTheDiskFloorIsRefusedAndNothingIsWritten) {
  test::TempDir dir;
  const std::string path = dir.File("reports.log");
  ReportLogOptions options;
  options.min_free_bytes = int64_t{1} << 62;  // more than any disk has
  auto writer = ReportLogWriter::Open(path, options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  auto appended = (*writer)->Append(Record("c", 0, false));
  EXPECT_EQ(appended.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(test::ReadFile(path), "");
}

TEST(ReportLogTest, TheCommitterAcknowledgesEveryRecordInOrder) {
  test::TempDir dir;
  const std::string path = dir.File("reports.log");
  auto writer = ReportLogWriter::Open(path);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ReportCommitter committer(*std::move(writer), 1000);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint64_t> sequences;
  constexpr int kRecords = 200;
  for (int t = 0; t < kRecords; ++t)
    ASSERT_TRUE(committer
                    .Submit(EncodeReportLine(Record("c", t, false)),
                            [&](absl::StatusOr<uint64_t> sequence) {
                              ASSERT_TRUE(sequence.ok()) << sequence.status();
                              std::lock_guard<std::mutex> lock(mu);
                              sequences.push_back(*sequence);
                              cv.notify_all();
                            })
                    .ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(
        cv.wait_for(lock, std::chrono::seconds(60), [&] { return sequences.size() == kRecords; }));
  }
  for (int t = 0; t < kRecords; ++t) EXPECT_EQ(sequences[t], uint64_t(t + 1));
  auto contents = ReadReportLog(path);
  ASSERT_TRUE(contents.ok());
  ASSERT_EQ(contents->records.size(), size_t{kRecords});
  EXPECT_EQ(contents->records.back().turn_index, kRecords - 1);
}

}  // namespace
}  // namespace lcio::server
