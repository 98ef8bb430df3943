#include "lcio/server/report_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/json_parse.h"
#include "lcio/data/message.h"
#include "lcio/server/request.h"
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

namespace {

absl::Status BadField(absl::string_view field, const std::string& value, absl::string_view rule) {
  return absl::DataLossError(
      absl::StrCat("record field '", field, "' = ", data::Shorten(value, 64), ": ", rule));
}

std::string Dump(const nlohmann::json& v) {
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A record's fields, each type-checked before it is read: a record written
// by hand or by another version is refused naming the field and its value,
// and no number out of an int's range is converted (1e30 to int is
// undefined behaviour).
class RecordFields {
 public:
  explicit RecordFields(const nlohmann::json& j) : j_(j) {}

  absl::Status String(const char* field, std::string* out, bool required = true) const {
    const nlohmann::json* v = Find(field, required);
    if (v == nullptr) return missing_;
    if (!v->is_string()) return BadField(field, Dump(*v), "must be a string");
    *out = v->get<std::string>();
    return absl::OkStatus();
  }
  absl::Status Bool(const char* field, bool* out) const {
    const nlohmann::json* v = Find(field, true);
    if (v == nullptr) return missing_;
    if (!v->is_boolean()) return BadField(field, Dump(*v), "must be true or false");
    *out = v->get<bool>();
    return absl::OkStatus();
  }
  absl::Status Number(const char* field, double* out) const {
    const nlohmann::json* v = Find(field, true);
    if (v == nullptr) return missing_;
    return NumberOf(field, *v, out);
  }
  absl::Status Index(const char* field, int* out, int64_t max) const {
    const nlohmann::json* v = Find(field, true);
    if (v == nullptr) return missing_;
    return IndexOf(field, *v, out, max);
  }
  absl::Status Strings(const char* field, std::vector<std::string>* out) const {
    return Each(field, [&](const nlohmann::json& v) -> absl::Status {
      if (!v.is_string()) return BadField(field, Dump(v), "must be a string");
      out->push_back(v.get<std::string>());
      return absl::OkStatus();
    });
  }
  absl::Status Numbers(const char* field, std::vector<double>* out) const {
    return Each(field, [&](const nlohmann::json& v) -> absl::Status {
      double x = 0;
      if (absl::Status s = NumberOf(field, v, &x); !s.ok()) return s;
      out->push_back(x);
      return absl::OkStatus();
    });
  }
  absl::Status Indices(const char* field, std::vector<int>* out) const {
    return Each(field, [&](const nlohmann::json& v) -> absl::Status {
      int x = 0;
      if (absl::Status s = IndexOf(field, v, &x, std::numeric_limits<int>::max()); !s.ok())
        return s;
      out->push_back(x);
      return absl::OkStatus();
    });
  }

 private:
  // Sets missing_ and returns null when a required field is absent; an
  // optional absent one leaves the output as it is.
  const nlohmann::json* Find(const char* field, bool required) const {
    auto it = j_.find(field);
    if (it != j_.end()) return &*it;
    missing_ = required ? absl::DataLossError(absl::StrCat("record field '", field, "' is missing"))
                        : absl::OkStatus();
    return nullptr;
  }
  template <typename F>
  absl::Status Each(const char* field, F&& read) const {
    const nlohmann::json* v = Find(field, true);
    if (v == nullptr) return missing_;
    if (!v->is_array()) return BadField(field, Dump(*v), "must be an array");
    for (const nlohmann::json& e : *v)
      if (absl::Status s = read(e); !s.ok()) return s;
    return absl::OkStatus();
  }
  static absl::Status NumberOf(const char* field, const nlohmann::json& v, double* out) {
    if (!v.is_number()) return BadField(field, Dump(v), "must be a number");
    *out = v.get<double>();
    return absl::OkStatus();
  }
  static absl::Status IndexOf(const char* field, const nlohmann::json& v, int* out, int64_t max) {
    const bool fits = v.is_number_unsigned()  ? v.get<uint64_t>() <= static_cast<uint64_t>(max)
                      : v.is_number_integer() ? v.get<int64_t>() >= 0 && v.get<int64_t>() <= max
                                              : false;
    if (!fits)
      return BadField(field, Dump(v), absl::StrCat("must be a whole number in [0, ", max, "]"));
    *out = static_cast<int>(v.get<int64_t>());
    return absl::OkStatus();
  }

  const nlohmann::json& j_;
  mutable absl::Status missing_;
};

// What Report validation admitted (request.cc), checked again on reading: a
// record outside it (written by hand, or by another version) would make an
// export that lcio-train and lcio-eval refuse, so it is skipped and counted.
absl::Status CheckRecordRanges(const ReportRecord& r) {
  const std::pair<const char*, std::pair<double, double>> amounts[] = {
      {"score", {r.score, RequestLimits::kMaxReportScore}},
      {"interaction_time_s", {r.interaction_time_s, RequestLimits::kMaxReportInteractionTimeS}},
      {"usage_cost_usd", {r.usage_cost_usd, RequestLimits::kMaxReportUsageCostUsd}}};
  for (const auto& [field, value_max] : amounts)
    if (!(value_max.first >= 0 && value_max.first <= value_max.second))
      return BadField(field, data::ExactNumber(value_max.first),
                      absl::StrCat("must be in [0, ", value_max.second, "]"));
  if (r.association.size() != r.view_names.size())
    return BadField("association", absl::StrCat(r.association.size(), " values"),
                    absl::StrCat("needs one per view (", r.view_names.size(), ")"));
  for (double a : r.association)
    if (!(a >= 0 && a <= 1))
      return BadField("association", data::ExactNumber(a), "must be in [0, 1]");
  if (!r.cloud && !r.uploaded_views.empty())
    return BadField("uploaded_views", absl::StrCat(r.uploaded_views.size(), " views"),
                    "must be empty for a local answer");
  std::vector<bool> seen(r.view_names.size(), false);
  for (int v : r.uploaded_views) {
    if (v >= static_cast<int>(r.view_names.size()))
      return BadField("uploaded_views", absl::StrCat(v),
                      absl::StrCat("must index view_names (", r.view_names.size(), " views)"));
    if (seen[v]) return BadField("uploaded_views", absl::StrCat(v), "names a view more than once");
    seen[v] = true;
  }
  // The server writes its policy's vocabulary and one of its tasks; a record
  // outside it made lcio-join's log one the policies it served refuse.
  if (r.tasks.empty()) return BadField("tasks", "[]", "must name the policy's tasks");
  if (std::find(r.tasks.begin(), r.tasks.end(), r.task) == r.tasks.end())
    return BadField("task", absl::StrCat("\"", r.task, "\""), "must be one of 'tasks'");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ReportRecord> ReportRecordFromJson(absl::string_view json) {
  nlohmann::json j = data::ParseJson(std::string_view(json.data(), json.size()), "record");
  if (j.is_discarded() || !j.is_object()) return absl::DataLossError("record is not a JSON object");
  ReportRecord r;
  const RecordFields f(j);
  for (absl::Status s :
       {f.String("conversation_id", &r.conversation_id),
        f.Index("turn_index", &r.turn_index, data::kMaxTurnIndex),
        f.String("decision_id", &r.decision_id, false), f.String("prompt", &r.prompt),
        f.String("task", &r.task), f.Bool("cloud", &r.cloud),
        f.Indices("uploaded_views", &r.uploaded_views), f.Strings("view_names", &r.view_names),
        f.Numbers("association", &r.association), f.String("answer", &r.answer, false),
        f.Number("score", &r.score), f.Number("interaction_time_s", &r.interaction_time_s),
        f.Number("usage_cost_usd", &r.usage_cost_usd), f.Strings("tasks", &r.tasks),
        f.String("policy_version", &r.policy_version, false),
        f.String("received_utc", &r.received_utc, false)})
    if (!s.ok()) return s;
  if (absl::Status s = CheckRecordRanges(r); !s.ok()) return s;
  return r;
}

std::string EncodeReportLine(const ReportRecord& record) {
  const std::string json = ReportRecordToJson(record);
  return absl::StrCat(absl::StrFormat("%08x", Crc32(json)), " ", json, "\n");
}

std::string RotatedReportLogPath(const std::string& path, int n) { return RotatedLogPath(path, n); }

std::vector<std::string> ReportLogSeries(const std::string& path) { return LogSeries(path); }

absl::StatusOr<std::unique_ptr<ReportLogWriter>> ReportLogWriter::Open(
    const std::string& path, const ReportLogOptions& options) {
  auto file = OpenFile(path, options);
  if (!file.ok()) return file.status();
  return std::unique_ptr<ReportLogWriter>(new ReportLogWriter(path, options, *file));
}

absl::StatusOr<uint64_t> ReportLogWriter::Append(const ReportRecord& record) {
  return AppendLines({EncodeReportLine(record)});
}

// ---------------------------------------------------------------------------
// Reading and export

namespace {

// Calls visit(record, line, offset) for each valid record of `in` (the
// file `path`, from its start), in order; counts and describes the others.
// Streams: one line in memory.
template <typename Visit>
absl::Status ScanStream(std::istream& in, const std::string& path, int* skipped,
                        std::vector<std::string>* problems, Visit&& visit) {
  auto problem = [&](int64_t line, const std::string& why) {
    ++*skipped;
    if (problems->size() < 20) problems->push_back(absl::StrCat(path, " line ", line, ": ", why));
  };
  std::string line;
  int64_t offset = 0, line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    const int64_t start = offset;
    offset += static_cast<int64_t>(line.size()) + 1;
    if (in.eof()) {  // no newline: the write of a crash
      problem(line_number, "torn (no newline at the end of the file)");
      break;
    }
    if (line.empty()) continue;
    uint32_t expected = 0;
    const absl::string_view view(line);
    if (view.size() < 10 || view[8] != ' ' || !absl::SimpleHexAtoi(view.substr(0, 8), &expected)) {
      problem(line_number, "no checksum prefix");
      continue;
    }
    const absl::string_view json = view.substr(9);
    if (Crc32(json) != expected) {
      problem(line_number, "checksum mismatch");
      continue;
    }
    auto record = ReportRecordFromJson(json);
    if (!record.ok()) {
      problem(line_number, std::string(record.status().message()));
      continue;
    }
    visit(*std::move(record), view, start);
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("reading report log ", path, " failed"));
  return absl::OkStatus();
}

// The line at `offset` of `in`, if it is still a whole line whose checksum
// holds: a log cut back after a failed batch and written anew holds other
// bytes at an offset a first pass saw.
bool ReadCheckedLine(std::istream& in, int64_t offset, std::string* line) {
  in.clear();
  in.seekg(offset);
  uint32_t expected = 0;
  return std::getline(in, *line) && !in.eof() && line->size() >= 10 && (*line)[8] == ' ' &&
         absl::SimpleHexAtoi(absl::string_view(*line).substr(0, 8), &expected) &&
         Crc32(absl::string_view(*line).substr(9)) == expected;
}

template <typename Visit>
absl::Status ScanFile(const std::string& path, int* skipped, std::vector<std::string>* problems,
                      Visit&& visit) {
  if (absl::Status streamable =
          data::CheckStreamableInput(path, absl::StrCat("report log ", data::Shorten(path, 256)));
      !streamable.ok())
    return streamable;
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open report log ", path));
  return ScanStream(in, path, skipped, problems, std::forward<Visit>(visit));
}

// One episode as an element of the M4A1 array, written by the one M4A1
// writer (a dataset of one episode, without the array's brackets).
std::string EpisodeJson(data::Episode episode, const std::vector<std::string>& tasks, bool pretty) {
  data::Dataset one;
  one.tasks = tasks;
  one.num_views = static_cast<int>(episode.image_paths.size());
  one.episodes.push_back(std::move(episode));
  const std::string text = data::ToM4A1Json(one, pretty);
  const size_t open = pretty ? 2 : 1, close = pretty ? 3 : 1;  // "[\n" ... "\n]\n"
  return text.substr(open, text.size() - open - close);
}

}  // namespace

absl::StatusOr<ReportLogContents> ReadReportLog(const std::string& path) {
  ReportLogContents contents;
  absl::Status s = ScanFile(path, &contents.skipped_lines, &contents.problems,
                            [&](ReportRecord record, absl::string_view, int64_t) {
                              contents.records.push_back(std::move(record));
                            });
  if (!s.ok()) return s;
  return contents;
}

absl::Status ScanReportLog(const std::string& path, int* skipped,
                           std::vector<std::string>* problems,
                           const std::function<void(ReportRecord, int64_t)>& visit) {
  return ScanFile(path, skipped, problems,
                  [&](ReportRecord record, absl::string_view, int64_t offset) {
                    visit(std::move(record), offset);
                  });
}

absl::StatusOr<ReportRecord> ReadReportRecordAt(std::istream& in, int64_t offset,
                                                const std::string& path) {
  std::string line;
  if (!ReadCheckedLine(in, offset, &line))
    return absl::DataLossError(
        absl::StrCat("report log ", path, " changed while being read (byte ", offset, ")"));
  return ReportRecordFromJson(absl::string_view(line).substr(9));
}

absl::Time ReceivedTime(const ReportRecord& record) {
  absl::Time received;
  std::string unparsed;
  return absl::ParseTime(absl::RFC3339_full, record.received_utc, &received, &unparsed)
             ? received
             : absl::InfinitePast();
}

bool LaterReportStands(bool same_file, absl::Time later_received, absl::Time earlier_received) {
  return same_file || later_received >= earlier_received;
}

data::Turn ReportTurn(const ReportRecord& r, const std::vector<std::string>& tasks) {
  data::Turn turn;
  turn.question = r.prompt;
  turn.task = r.task;
  turn.task_index = static_cast<int>(std::find(tasks.begin(), tasks.end(), r.task) - tasks.begin());
  turn.target = r.cloud ? data::Target::kCloud : data::Target::kLocal;
  if (r.cloud) turn.uploaded_views = r.uploaded_views;
  turn.answer = r.answer;
  turn.score = r.score;
  turn.interaction_time_s = r.interaction_time_s;
  turn.usage_cost_usd = r.usage_cost_usd;
  return turn;
}

absl::StatusOr<ExportSummary> ExportReportLogs(const std::vector<std::string>& files,
                                               std::ostream& out, bool pretty,
                                               const std::string& rejects_path) {
  ExportOptions options;
  options.pretty = pretty;
  options.rejects_path = rejects_path;
  return ExportReportLogs(files, out, options);
}

absl::StatusOr<ExportSummary> ExportReportLogs(const std::vector<std::string>& files,
                                               std::ostream& out, const ExportOptions& options) {
  const bool pretty = options.pretty;
  const std::string& rejects_path = options.rejects_path;
  const data::Dataset* base = options.base;
  if (!(options.holdout_share >= 0 && options.holdout_share < 1))
    return absl::InvalidArgumentError(
        absl::StrCat("holdout_share = ", options.holdout_share, ": must be in [0, 1)"));
  ExportSummary summary;
  struct Location {
    int file;
    int64_t offset;
    absl::Time received;  // InfinitePast: no valid received_utc
  };
  // Pass 1: where each (conversation, turn)'s standing record is
  // (LaterReportStands).
  std::unordered_map<std::string, size_t> episode_of;
  std::vector<std::map<int, Location>> turns;
  // Per conversation, its earliest received_utc; InfiniteFuture: none valid.
  std::vector<absl::Time> first_report;
  bool have_first = base != nullptr;
  std::vector<std::string> views, tasks;
  if (base != nullptr) tasks = base->tasks;
  std::ofstream rejects;
  bool rejects_opened = false;  // tried: a failed open is reported, not retried per line
  auto reject = [&](absl::string_view line) {
    if (rejects_path.empty()) return;
    if (!rejects_opened) {
      rejects_opened = true;
      rejects.open(rejects_path, std::ios::binary | std::ios::trunc);
    }
    rejects << line << '\n';
  };
  std::string first_rejected;
  // Each file is opened once, for both passes: a rotation renames the live
  // file while an export reads it, and the open stream follows the bytes
  // wherever they are renamed to.
  std::vector<std::ifstream> inputs;
  for (const std::string& file : files) {
    // A device would be read without end, a FIFO would wait for a writer.
    if (absl::Status regular = data::CheckRegularInput(
            file, absl::StrCat("report log ", data::Shorten(file, 256)), "a report log");
        !regular.ok())
      return regular;
    inputs.emplace_back(file, std::ios::binary);
    if (!inputs.back()) return absl::NotFoundError(absl::StrCat("cannot open report log ", file));
  }
  for (size_t f = 0; f < files.size(); ++f) {
    absl::Status s = ScanStream(
        inputs[f], files[f], &summary.skipped_lines, &summary.problems,
        [&](ReportRecord r, absl::string_view line, int64_t offset) {
          ++summary.records;
          if (!have_first) {
            have_first = true;
            views = r.view_names;
            tasks = r.tasks;
          }
          // With a base, its view count and task vocabulary are the schema
          // (a base's image_paths are files, not view names).
          const bool disagrees =
              base != nullptr ? static_cast<int>(r.view_names.size()) != base->num_views ||
                                    std::find(tasks.begin(), tasks.end(), r.task) == tasks.end() ||
                                    r.association.size() != r.view_names.size()
                              : r.view_names != views || r.tasks != tasks ||
                                    std::find(tasks.begin(), tasks.end(), r.task) == tasks.end() ||
                                    r.association.size() != views.size();
          if (disagrees) {
            if (summary.rejected++ == 0)
              first_rejected = absl::StrCat(files[f], " at byte ", offset, " (conversation ",
                                            data::Shorten(r.conversation_id, 128), ")");
            reject(line);
            return;
          }
          auto [it, inserted] = episode_of.emplace(r.conversation_id, turns.size());
          if (inserted) {
            turns.emplace_back();
            first_report.push_back(absl::InfiniteFuture());
          }
          const absl::Time received = ReceivedTime(r);
          if (received != absl::InfinitePast())
            first_report[it->second] = std::min(first_report[it->second], received);
          auto [place, fresh] = turns[it->second].try_emplace(
              r.turn_index, Location{static_cast<int>(f), offset, received});
          if (!fresh && LaterReportStands(place->second.file == static_cast<int>(f), received,
                                          place->second.received))
            place->second = Location{static_cast<int>(f), offset, received};
        });
    if (!s.ok()) return s;
  }
  if (summary.rejected > 0 && rejects_path.empty())
    return absl::FailedPreconditionError(absl::StrCat(
        summary.rejected, " records disagree with the ",
        base != nullptr ? "base data's view count or tasks" : "first record's views or tasks",
        " (the first ", first_rejected,
        "); pass --rejects=FILE to write them there and export the rest"));

  std::string line;
  // The line at `where`, checked when pass 1 read it.
  auto read_line = [&](const Location& where) -> absl::Status {
    if (!ReadCheckedLine(inputs[where.file], where.offset, &line))
      return absl::DataLossError(absl::StrCat("report log ", files[where.file],
                                              " changed during the export (byte ", where.offset,
                                              ")"));
    return absl::OkStatus();
  };

  // Only the gap-free run from turn 0 is an episode; the rest are orphans.
  std::vector<std::string> conversation_of(turns.size());
  for (const auto& [id, e] : episode_of) conversation_of[e] = id;
  episode_of.clear();
  std::string first_orphan;
  size_t kept = 0;
  for (size_t e = 0; e < turns.size(); ++e) {
    int expected = 0;
    for (auto it = turns[e].begin(); it != turns[e].end();) {
      if (it->first == expected) {
        ++expected, ++it;
        continue;
      }
      if (summary.orphaned++ == 0)
        first_orphan =
            absl::StrCat("conversation ", data::Shorten(conversation_of[e], 128), " turn ",
                         it->first, ": turn ", expected, " was never reported");
      if (!rejects_path.empty()) {
        if (absl::Status s = read_line(it->second); !s.ok()) return s;
        reject(line);
      }
      it = turns[e].erase(it);
    }
    if (turns[e].empty()) continue;
    if (kept != e) {  // never a self-move: it empties the map
      turns[kept] = std::move(turns[e]);
      conversation_of[kept] = std::move(conversation_of[e]);
      first_report[kept] = first_report[e];
    }
    ++kept;
  }
  turns.resize(kept);
  conversation_of.resize(kept);
  first_report.resize(kept);
  if (summary.orphaned > 0 && summary.problems.size() < 20)
    summary.problems.push_back(absl::StrCat(summary.orphaned,
                                            " records past a gap in their conversation's turns "
                                            "(not exported; the first: ",
                                            first_orphan, ")"));
  if (rejects_opened) {  // records were set aside: they must be in the file
    rejects.flush();
    if (!rejects.is_open() || !rejects)
      return absl::DataLossError(
          absl::StrCat("cannot write rejects ", rejects_path, ": ", std::strerror(errno)));
  }
  if (turns.empty() && (base == nullptr || base->episodes.empty()) && !options.allow_empty)
    return absl::InvalidArgumentError(summary.rejected + summary.orphaned > 0
                                          ? "no records to export: every record was rejected "
                                            "or orphaned"
                                          : "no records to export");

  // The hold-out: the newest conversations by first report time, undated
  // ones oldest, ties in export order.
  std::vector<bool> held_out(turns.size(), false);
  std::vector<size_t> holdout_order;
  if (options.holdout != nullptr) {
    for (size_t e = 0; e < turns.size(); ++e) {
      if (first_report[e] == absl::InfiniteFuture()) {
        first_report[e] = absl::InfinitePast();
        ++summary.undated;
      }
      holdout_order.push_back(e);
    }
    std::stable_sort(holdout_order.begin(), holdout_order.end(),
                     [&](size_t a, size_t b) { return first_report[a] < first_report[b]; });
    const auto count =
        static_cast<size_t>(std::floor(options.holdout_share * static_cast<double>(turns.size())));
    holdout_order.erase(holdout_order.begin(), holdout_order.end() - count);
    for (size_t e : holdout_order) held_out[e] = true;
    summary.held_out = static_cast<int64_t>(count);
    if (count > 0 && first_report[holdout_order.front()] != absl::InfinitePast())
      summary.held_out_since = absl::FormatTime(
          "%Y-%m-%dT%H:%M:%E6SZ", first_report[holdout_order.front()], absl::UTCTimeZone());
  }

  // Pass 2: the base's episodes, then one exported episode at a time, in
  // order of first appearance (the held-out ones to their own stream).
  out << (pretty ? "[\n" : "[");
  bool first_episode = true;
  int64_t next_id = 1;
  if (base != nullptr) {
    for (const data::Episode& episode : base->episodes) {
      if (!first_episode) out << (pretty ? ",\n" : ",");
      first_episode = false;
      out << EpisodeJson(episode, tasks, pretty);
      next_id = std::max(next_id, episode.id + 1);
      ++summary.base_episodes;
    }
  }
  // Writes conversation e as the episode `id` to `to`.
  auto write_episode = [&](size_t e, int64_t id, std::ostream& to,
                           bool* first_in_stream) -> absl::Status {
    data::Episode episode;
    episode.id = id;
    for (const auto& [index, where] : turns[e]) {
      auto r = ReadReportRecordAt(inputs[where.file], where.offset, files[where.file]);
      if (!r.ok()) return r.status();
      // A log cut back after a failed batch and written anew can hold another
      // whole, valid record where pass 1 read this one.
      if (r->conversation_id != conversation_of[e] || r->turn_index != index)
        return absl::DataLossError(absl::StrCat("report log ", files[where.file],
                                                " changed while being read (byte ", where.offset,
                                                "): another record is there now"));
      if (episode.image_paths.empty()) episode.image_paths = r->view_names;
      episode.turns.push_back(ReportTurn(*r, tasks));
      episode.association.push_back(std::move(r->association));
      ++summary.turns;
    }
    if (!*first_in_stream) to << (pretty ? ",\n" : ",");
    *first_in_stream = false;
    to << EpisodeJson(std::move(episode), tasks, pretty);
    ++summary.episodes;
    turns[e].clear();  // its index is no longer needed
    return absl::OkStatus();
  };
  for (size_t e = 0; e < turns.size(); ++e) {
    if (held_out[e]) continue;
    if (absl::Status s = write_episode(e, next_id++, out, &first_episode); !s.ok()) return s;
  }
  out << (pretty ? "\n]\n" : "]");
  out.flush();
  if (!out) return absl::DataLossError("writing the export failed");
  if (options.holdout != nullptr) {
    std::ostream& holdout = *options.holdout;
    holdout << (pretty ? "[\n" : "[");
    bool first_held_out = true;
    int64_t held_out_id = 1;
    for (size_t e : holdout_order)
      if (absl::Status s = write_episode(e, held_out_id++, holdout, &first_held_out); !s.ok())
        return s;
    holdout << (pretty ? "\n]\n" : "]");
    holdout.flush();
    if (!holdout) return absl::DataLossError("writing the hold-out failed");
  }
  return summary;
}

}  // namespace lcio::server
