// lcio-report-export: turns lcio-server's report log (--report_log) into
// M4A1-schema JSON that lcio-train and lcio-eval read (--data); with
// --base, the base data set's episodes followed by the exported ones (the
// training data of a retraining run). Streams the logs: memory grows with
// the number of records (an index entry each), not with their size; the
// base is loaded (and validated) whole.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli_help.h"
#include "lcio/data/atomic_file.h"
#include "lcio/server/report_log.h"

ABSL_FLAG(std::string, log, "",
          "report log written by lcio-server --report_log; its rotated predecessors (LOG.000001, "
          "...) are read first. Several logs: comma-separated");
ABSL_FLAG(std::string, out, "",
          "M4A1 JSON output, a regular file or absent (written beside it, fsynced, renamed)");
ABSL_FLAG(std::string, rejects, "",
          "where records whose views or tasks differ from the first record's go (a report log "
          "of its own); without it such records make the export fail");
ABSL_FLAG(std::string, base, "",
          "M4A1 JSON whose episodes come first in the output, the exported ones numbered after "
          "its largest episode id; records must have its view count and tasks (others are "
          "rejects)");
ABSL_FLAG(double, holdout_share, 0,
          "share in [0, 1) of the exported conversations, the newest by first report time over "
          "all --log files, written to --holdout_out instead of --out (never with the base)");
ABSL_FLAG(std::string, holdout_out, "",
          "M4A1 JSON output of the held-out conversations (required with --holdout_share > 0)");
ABSL_FLAG(bool, allow_empty, false,
          "no record to export writes an empty array and exits 0 (default: exit 1)");
ABSL_FLAG(bool, pretty, false, "indent the JSON");

int main(int argc, char** argv) {
  lcio::cli::ParseCommandLine(
      argc, argv,
      "--log reports.log[,more.log] --out traffic.json [--base base.json] [--rejects rejects.log]\n"
      "  [--holdout_share=0.2 --holdout_out=holdout.json] [--allow_empty]",
      "Turns the server's report log (and its rotated files) into M4A1-schema JSON; with --base, "
      "appended to a base data set (the training data of a retraining run).");
  const std::string log = absl::GetFlag(FLAGS_log), out = absl::GetFlag(FLAGS_out);
  if (log.empty() || out.empty()) {
    std::fprintf(stderr, "lcio-report-export: --log and --out are required\n");
    return 2;
  }
  std::vector<std::string> files;
  for (const std::string& path :
       std::vector<std::string>(absl::StrSplit(log, ',', absl::SkipEmpty()))) {
    const std::vector<std::string> series = lcio::server::ReportLogSeries(path);
    if (series.empty()) {
      std::fprintf(stderr, "lcio-report-export: --log: %s: no such file\n", path.c_str());
      return 1;
    }
    files.insert(files.end(), series.begin(), series.end());
  }
  lcio::server::ExportOptions options;
  options.pretty = absl::GetFlag(FLAGS_pretty);
  options.rejects_path = absl::GetFlag(FLAGS_rejects);
  absl::StatusOr<lcio::data::Dataset> base;
  if (const std::string path = absl::GetFlag(FLAGS_base); !path.empty()) {
    base = lcio::data::LoadM4A1File(path);
    if (!base.ok()) {
      std::fprintf(stderr, "lcio-report-export: --base: %s\n", base.status().ToString().c_str());
      return 1;
    }
    options.base = &*base;
  }
  const double holdout_share = absl::GetFlag(FLAGS_holdout_share);
  const std::string holdout_out = absl::GetFlag(FLAGS_holdout_out);
  if (!(holdout_share >= 0 && holdout_share < 1)) {
    std::fprintf(stderr, "lcio-report-export: --holdout_share=%g: must be in [0, 1)\n",
                 holdout_share);
    return 2;
  }
  if (holdout_share > 0 && holdout_out.empty()) {
    std::fprintf(stderr, "lcio-report-export: --holdout_share=%g needs --holdout_out\n",
                 holdout_share);
    return 2;
  }
  if (!holdout_out.empty() && lcio::data::SameFile(holdout_out, out)) {
    std::fprintf(stderr, "lcio-report-export: --holdout_out must differ from --out\n");
    return 2;
  }
  options.holdout_share = holdout_share;
  options.allow_empty = absl::GetFlag(FLAGS_allow_empty);
  // Both outputs are written beside their place and renamed there only when
  // the whole export succeeded.
  std::vector<std::pair<std::string, std::string>> outputs = {{"--out", out}};
  if (!holdout_out.empty()) outputs.emplace_back("--holdout_out", holdout_out);
  std::vector<std::string> temps;
  for (const auto& [flag, path] : outputs) {
    if (absl::Status replaceable = lcio::data::CheckReplaceableOutput(path); !replaceable.ok()) {
      std::fprintf(stderr, "lcio-report-export: %s: %s\n", flag.c_str(),
                   replaceable.ToString().c_str());
      return 1;
    }
    temps.push_back(lcio::data::TemporaryPathFor(path));
  }
  // No output may be an input (a log of the series, the base), nor the
  // rejects file another output: it would be replaced or truncated.
  {
    std::vector<std::string> inputs = files;
    inputs.push_back(absl::GetFlag(FLAGS_base));
    for (const auto& [flag, path] : outputs) {
      if (absl::Status s = lcio::data::CheckOutputIsNoInput(flag, path, inputs); !s.ok()) {
        std::fprintf(stderr, "lcio-report-export: %s\n", s.ToString().c_str());
        return 2;
      }
    }
    if (!options.rejects_path.empty()) {
      if (lcio::data::SameFile(options.rejects_path, out) ||
          (!holdout_out.empty() && lcio::data::SameFile(options.rejects_path, holdout_out))) {
        std::fprintf(stderr, "lcio-report-export: --rejects must differ from the outputs\n");
        return 2;
      }
      inputs.push_back(out);
      inputs.push_back(holdout_out);
      if (absl::Status s =
              lcio::data::CheckOutputIsNoInput("--rejects", options.rejects_path, inputs);
          !s.ok()) {
        std::fprintf(stderr, "lcio-report-export: %s\n", s.ToString().c_str());
        return 2;
      }
    }
  }
  auto remove_temps = [&temps] {
    for (const std::string& temp : temps) std::remove(temp.c_str());
  };
  absl::StatusOr<lcio::server::ExportSummary> summary;
  {
    std::vector<std::ofstream> files_out;
    for (const std::string& temp : temps) {
      files_out.emplace_back(temp, std::ios::binary | std::ios::trunc);
      if (!files_out.back()) {
        std::fprintf(stderr, "lcio-report-export: cannot write %s: %s\n", temp.c_str(),
                     std::strerror(errno));
        remove_temps();
        return 1;
      }
    }
    if (files_out.size() > 1) options.holdout = &files_out[1];
    summary = lcio::server::ExportReportLogs(files, files_out[0], options);
    for (size_t i = 0; i < files_out.size(); ++i) {
      files_out[i].flush();
      if (summary.ok() && !files_out[i])  // e.g. a full disk: never publish a truncated export
        summary = absl::UnavailableError(absl::StrCat("writing ", temps[i], " failed"));
    }
  }
  if (!summary.ok()) {
    remove_temps();
    std::fprintf(stderr, "lcio-report-export: %s\n", summary.status().ToString().c_str());
    return 1;
  }
  for (const std::string& problem : summary->problems)
    std::fprintf(stderr, "lcio-report-export: skipped %s\n", problem.c_str());
  for (size_t i = 0; i < temps.size(); ++i) {
    if (absl::Status published = lcio::data::PublishTemporaryFile(temps[i], outputs[i].second);
        !published.ok()) {
      remove_temps();
      std::fprintf(stderr, "lcio-report-export: %s\n", published.ToString().c_str());
      return 1;
    }
  }
  std::printf(
      "{\"files\": %zu, \"records\": %lld, \"skipped_lines\": %d, \"rejected\": %lld, "
      "\"orphaned\": %lld, \"base_episodes\": %lld, \"episodes\": %lld, \"turns\": %lld, "
      "\"held_out\": %lld, \"held_out_since\": \"%s\", \"undated\": %lld}\n",
      files.size(), static_cast<long long>(summary->records), summary->skipped_lines,
      static_cast<long long>(summary->rejected), static_cast<long long>(summary->orphaned),
      static_cast<long long>(summary->base_episodes), static_cast<long long>(summary->episodes),
      static_cast<long long>(summary->turns), static_cast<long long>(summary->held_out),
      summary->held_out_since.c_str(), static_cast<long long>(summary->undated));
  return 0;
}
