#include "lcio/server/report_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lcio/data/json_parse.h"
#include "nlohmann/json.hpp"

namespace lcio::server {
namespace {

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

absl::Status ErrnoStatus(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("write: ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

uint32_t Crc32(absl::string_view bytes) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string ReportRecordToJson(const ReportRecord& r) {
  nlohmann::json j;
  j["conversation_id"] = r.conversation_id;
  j["turn_index"] = r.turn_index;
  j["decision_id"] = r.decision_id;
  j["prompt"] = r.prompt;
  j["task"] = r.task;
  j["cloud"] = r.cloud;
  j["uploaded_views"] = r.uploaded_views;
  j["view_names"] = r.view_names;
  j["association"] = r.association;
  j["answer"] = r.answer;
  j["score"] = r.score;
  j["interaction_time_s"] = r.interaction_time_s;
  j["usage_cost_usd"] = r.usage_cost_usd;
  j["tasks"] = r.tasks;
  j["policy_version"] = r.policy_version;
  j["received_utc"] = r.received_utc;
  // Replace invalid UTF-8 instead of throwing: prompts come from the network.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<ReportRecord> ReportRecordFromJson(absl::string_view json) {
  nlohmann::json j = data::ParseJson(std::string_view(json.data(), json.size()), "record");
  if (j.is_discarded() || !j.is_object()) return absl::DataLossError("record is not a JSON object");
  ReportRecord r;
  try {
    r.conversation_id = j.at("conversation_id").get<std::string>();
    r.turn_index = j.at("turn_index").get<int>();
    r.decision_id = j.value("decision_id", "");
    r.prompt = j.at("prompt").get<std::string>();
    r.task = j.at("task").get<std::string>();
    r.cloud = j.at("cloud").get<bool>();
    r.uploaded_views = j.at("uploaded_views").get<std::vector<int>>();
    r.view_names = j.at("view_names").get<std::vector<std::string>>();
    r.association = j.at("association").get<std::vector<double>>();
    r.answer = j.value("answer", "");
    r.score = j.at("score").get<double>();
    r.interaction_time_s = j.at("interaction_time_s").get<double>();
    r.usage_cost_usd = j.at("usage_cost_usd").get<double>();
    r.tasks = j.at("tasks").get<std::vector<std::string>>();
    r.policy_version = j.value("policy_version", "");
    r.received_utc = j.value("received_utc", "");
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("record field: ", e.what()));
  }
  return r;
}

std::string EncodeReportLine(const ReportRecord& record) {
  const std::string json = ReportRecordToJson(record);
  return absl::StrCat(absl::StrFormat("%08x", Crc32(json)), " ", json, "\n");
}

absl::StatusOr<std::unique_ptr<ReportLogWriter>> ReportLogWriter::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot open report log", path);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    // Terminate a torn last line so the next record is readable.
    const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    char last = '\n';
    if (rfd >= 0) {
      if (::pread(rfd, &last, 1, st.st_size - 1) != 1) last = '\n';
      ::close(rfd);
    }
    if (last != '\n') {
      if (absl::Status s = WriteAll(fd, "\n"); !s.ok()) {
        ::close(fd);
        return s;
      }
      ::fsync(fd);
    }
  }
  // Make the file's directory entry durable too (a new file).
  const std::string dir =
      path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return std::unique_ptr<ReportLogWriter>(new ReportLogWriter(path, fd));
}

ReportLogWriter::~ReportLogWriter() {
  absl::MutexLock lock(&mu_);
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<uint64_t> ReportLogWriter::Append(const ReportRecord& record) {
  const std::string line = EncodeReportLine(record);
  absl::MutexLock lock(&mu_);
  if (absl::Status s = WriteAll(fd_, line); !s.ok()) return s;
  if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_);
  return ++appended_;
}

absl::StatusOr<ReportLogContents> ReadReportLog(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open report log ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  ReportLogContents contents;
  auto problem = [&contents](int line, const std::string& why) {
    ++contents.skipped_lines;
    if (contents.problems.size() < 20)
      contents.problems.push_back(absl::StrCat("line ", line, ": ", why));
  };
  size_t start = 0;
  int line_number = 0;
  while (start < text.size()) {
    ++line_number;
    const size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      problem(line_number, "torn (no newline at the end of the file)");
      break;
    }
    const absl::string_view line(text.data() + start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    uint32_t expected = 0;
    if (line.size() < 10 || line[8] != ' ' || !absl::SimpleHexAtoi(line.substr(0, 8), &expected)) {
      problem(line_number, "no checksum prefix");
      continue;
    }
    const absl::string_view json = line.substr(9);
    if (Crc32(json) != expected) {
      problem(line_number, "checksum mismatch");
      continue;
    }
    auto record = ReportRecordFromJson(json);
    if (!record.ok()) {
      problem(line_number, std::string(record.status().message()));
      continue;
    }
    contents.records.push_back(*std::move(record));
  }
  return contents;
}

absl::StatusOr<ExportResult> ReportsToDataset(const std::vector<ReportRecord>& records) {
  ExportResult result;
  if (records.empty()) return absl::InvalidArgumentError("no records to export");
  const ReportRecord& first = records.front();
  data::Dataset& dataset = result.dataset;
  dataset.tasks = first.tasks;
  dataset.num_views = static_cast<int>(first.view_names.size());
  dataset.source = "<report log>";
  std::map<std::string, int> episode_of;
  std::vector<std::map<int, const ReportRecord*>> turns;
  for (const ReportRecord& r : records) {
    const auto task = std::find(first.tasks.begin(), first.tasks.end(), r.task);
    if (r.view_names != first.view_names || r.tasks != first.tasks || task == first.tasks.end() ||
        static_cast<int>(r.association.size()) != dataset.num_views) {
      ++result.dropped;
      continue;
    }
    auto [it, inserted] = episode_of.emplace(r.conversation_id, static_cast<int>(turns.size()));
    if (inserted) {
      turns.emplace_back();
      result.conversation_ids.push_back(r.conversation_id);
    }
    turns[it->second][r.turn_index] = &r;
  }
  for (size_t e = 0; e < turns.size(); ++e) {
    data::Episode episode;
    episode.id = static_cast<int64_t>(e) + 1;
    episode.image_paths = first.view_names;
    for (const auto& [index, r] : turns[e]) {
      data::Turn turn;
      turn.question = r->prompt;
      turn.task = r->task;
      turn.task_index = static_cast<int>(
          std::find(first.tasks.begin(), first.tasks.end(), r->task) - first.tasks.begin());
      turn.target = r->cloud ? data::Target::kCloud : data::Target::kLocal;
      if (r->cloud) turn.uploaded_views = r->uploaded_views;
      turn.answer = r->answer;
      turn.score = r->score;
      turn.interaction_time_s = r->interaction_time_s;
      turn.usage_cost_usd = r->usage_cost_usd;
      episode.turns.push_back(std::move(turn));
      episode.association.push_back(r->association);
    }
    dataset.episodes.push_back(std::move(episode));
  }
  if (dataset.episodes.empty())
    return absl::InvalidArgumentError(absl::StrCat(
        "all ", result.dropped, " records disagree with the first one's views or tasks"));
  return result;
}

}  // namespace lcio::server
