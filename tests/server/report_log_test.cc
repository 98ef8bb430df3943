#include "lcio/server/report_log.h"

#include <gtest/gtest.h>

#include "lcio/data/m4a1.h"
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
  r.association = {0.1, 0.5, 0.9};
  r.answer = "an answer";
  r.score = 0.75;
  r.interaction_time_s = 1.5;
  r.usage_cost_usd = cloud ? 0.009 : 0.0001;
  r.tasks = {"Assistive System", "Message Editing", "Query", "Recommendation"};
  r.policy_version = "v1";
  return r;
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
  EXPECT_EQ(contents->records[1].prompt, Record("c1", 1, true).prompt);
  EXPECT_EQ(contents->records[1].uploaded_views, std::vector<int>({0, 2}));
  EXPECT_TRUE(contents->records[1].cloud);
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
    ASSERT_TRUE((*writer)->Append(Record("c1", 1, true)).ok());
  }
  auto repaired = ReadReportLog(path);
  ASSERT_TRUE(repaired.ok());
  ASSERT_EQ(repaired->records.size(), 2u);
  EXPECT_EQ(repaired->records[1].turn_index, 1);
  EXPECT_EQ(repaired->skipped_lines, 1);  // the torn half-line, now terminated
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

TEST(ReportLogTest, ExportIsM4A1DataTheLoaderAccepts) {
  std::vector<ReportRecord> records = {Record("a", 1, true), Record("b", 0, false),
                                       Record("a", 0, false), Record("a", 1, false)};
  auto exported = ReportsToDataset(records);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->conversation_ids, std::vector<std::string>({"a", "b"}));
  const std::string json = data::ToM4A1Json(exported->dataset);
  auto parsed = data::ParseM4A1(json, "export");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->episodes.size(), 2u);
  ASSERT_EQ(parsed->episodes[0].turns.size(), 2u);
  // Turn order by index, and the later record of a repeated turn wins.
  EXPECT_EQ(parsed->episodes[0].turns[1].target, data::Target::kLocal);
  EXPECT_EQ(parsed->episodes[0].turns[0].question, Record("a", 0, false).prompt);
  EXPECT_DOUBLE_EQ(parsed->episodes[0].association[0][2], 0.9);
  EXPECT_EQ(parsed->num_views, 3);
}

}  // namespace
}  // namespace lcio::server
