#include "lcio/data/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace lcio::data {
namespace {

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/lcio-atomic-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string File(const std::string& name) const { return dir_ + "/" + name; }
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  std::string dir_;
};

TEST_F(AtomicFileTest, OnlyARegularFileIsReadWhole) {
  std::ofstream(File("in.json")) << "{\"a\": 1}";
  auto text = ReadRegularFile(File("in.json"), "in", "a JSON file");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "{\"a\": 1}");
  EXPECT_EQ(ReadRegularFile(File("absent"), "in", "a JSON file").status().code(),
            absl::StatusCode::kNotFound);
  const auto device = ReadRegularFile("/dev/zero", "log = \"/dev/zero\"", "a JSON file");
  EXPECT_EQ(device.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(device.status().message(), "log = \"/dev/zero\": not a regular file (a JSON file)");
  EXPECT_EQ(ReadRegularFile(dir_, "in", "a JSON file").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(AtomicFileTest, OnlyARegularFileOrNothingMayBeReplaced) {
  EXPECT_TRUE(CheckReplaceableOutput(File("absent.json")).ok());
  std::ofstream(File("regular.json")) << "old";
  EXPECT_TRUE(CheckReplaceableOutput(File("regular.json")).ok());
  ASSERT_EQ(::mkfifo(File("fifo").c_str(), 0600), 0);
  const absl::Status fifo = CheckReplaceableOutput(File("fifo"));
  EXPECT_EQ(fifo.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(fifo.message().find("is a FIFO"), std::string::npos) << fifo;
  const absl::Status device = CheckReplaceableOutput("/dev/null");
  EXPECT_EQ(device.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(device.message().find("/dev/null is a character device"), std::string::npos) << device;
  EXPECT_EQ(CheckReplaceableOutput(dir_).code(), absl::StatusCode::kFailedPrecondition);
  // A link to a regular file may be replaced (the link itself is).
  ASSERT_EQ(::symlink(File("regular.json").c_str(), File("link.json").c_str()), 0);
  EXPECT_TRUE(CheckReplaceableOutput(File("link.json")).ok());
}

TEST_F(AtomicFileTest, APublishedFileReplacesTheTargetWhole) {
  std::ofstream(File("out.json")) << "old";
  const std::string temp = TemporaryPathFor(File("out.json"));
  EXPECT_EQ(temp.rfind(dir_ + "/.out.json.tmp-", 0), 0u) << temp;
  EXPECT_NE(TemporaryPathFor(File("out.json")), temp);
  std::ofstream(temp) << "new";
  ASSERT_TRUE(PublishTemporaryFile(temp, File("out.json")).ok());
  EXPECT_EQ(Read(File("out.json")), "new");
  EXPECT_NE(::access(temp.c_str(), F_OK), 0);  // renamed away
  // A rename that cannot happen (into a missing directory) removes the
  // temporary file and names the step.
  const std::string orphan = TemporaryPathFor(File("x.json"));
  std::ofstream(orphan) << "data";
  const absl::Status failed = PublishTemporaryFile(orphan, File("missing/x.json"));
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(failed.message().find("rename failed"), std::string::npos) << failed;
  EXPECT_NE(::access(orphan.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace lcio::data
