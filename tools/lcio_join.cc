// lcio-join: the decision log joined with the Report log into M4A1-schema
// data with per-turn propensities (ope/joined_log.h), the input of lcio-ope.
// docs/ope.md, "Joining".
//
// Streamed like lcio-report-export: one pass over each log indexes where
// each record is (a few dozen bytes per record, never the records), then
// one conversation at a time is read back and written.
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lcio/data/decision_log.h"
#include "lcio/env/action_table.h"
#include "lcio/ope/joined_log.h"
#include "lcio/server/report_log.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::vector<std::string>, decisions, {},
          "decision logs (each read with its rotated predecessors FILE.NNNNNN)");
ABSL_FLAG(std::vector<std::string>, reports, {},
          "Report logs (each read with its rotated predecessors FILE.NNNNNN)");
ABSL_FLAG(std::string, out, "", "joined output (M4A1 JSON with propensities)");
ABSL_FLAG(double, reward_window_s, 3600,
          "a Report later than this after its decision is late: joined and counted; a decision "
          "younger than this without its Report is pending: its conversation stops there");
ABSL_FLAG(std::string, now_utc, "",
          "RFC 3339 time the join treats as now (default: the clock), for pending decisions");

namespace lcio {
namespace {

struct Location {
  int file = 0;
  int64_t offset = 0;
  bool has_decision = false;  // Reports only
};

struct Summary {
  int64_t decisions = 0, decision_skipped_lines = 0;
  int64_t reports = 0, report_skipped_lines = 0;
  int64_t conversations = 0, turns = 0;
  int64_t late = 0;               // joined, Report after the window
  int64_t pending = 0;            // no Report yet, decision inside the window
  int64_t unrewarded = 0;         // no Report, decision older than the window
  int64_t after_gap = 0;          // decisions after a missing or unusable turn
  int64_t deviated = 0;           // the Report's action is not the decision's
  int64_t unusable = 0;           // the Report's action had probability 0, or other views/tasks
  int64_t unmatched_reports = 0;  // no decision for them
  std::vector<std::string> problems;
};

std::vector<std::string> Series(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& p : paths)
    for (std::string f : server::ReportLogSeries(p)) files.push_back(std::move(f));
  return files;
}

std::string TurnKey(const std::string& conversation, int turn) {
  return absl::StrCat(conversation, "\x1f", turn);
}

absl::StatusOr<data::DecisionRecord> ReadDecisionAt(std::ifstream& in, int64_t offset,
                                                    const std::string& path) {
  std::string line;
  in.clear();
  in.seekg(offset);
  if (!std::getline(in, line))
    return absl::DataLossError(
        absl::StrCat("decision log ", path, " changed while being read (byte ", offset, ")"));
  return data::ParseDecisionLine(line);
}

absl::Status Run(Summary* s) {
  const std::vector<std::string> decision_files = Series(absl::GetFlag(FLAGS_decisions));
  const std::vector<std::string> report_files = Series(absl::GetFlag(FLAGS_reports));
  if (decision_files.empty())
    return absl::InvalidArgumentError("--decisions: no decision log file found");
  if (report_files.empty()) return absl::InvalidArgumentError("--reports: no Report log found");
  const std::string out_path = absl::GetFlag(FLAGS_out);
  if (out_path.empty()) return absl::InvalidArgumentError("--out is required");
  const double window_s = absl::GetFlag(FLAGS_reward_window_s);
  if (!(window_s >= 0))
    return absl::InvalidArgumentError(
        absl::StrCat("--reward_window_s = ", window_s, ": must be >= 0"));
  absl::Time now = absl::Now();
  if (!absl::GetFlag(FLAGS_now_utc).empty()) {
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, absl::GetFlag(FLAGS_now_utc), &now, &err))
      return absl::InvalidArgumentError(
          absl::StrCat("--now_utc = \"", absl::GetFlag(FLAGS_now_utc).substr(0, 64), "\": ", err));
  }

  // Pass 1: where each Report is; by decision id, else by (conversation, turn).
  // A repeated key keeps the last record, as in the exporter.
  std::unordered_map<std::string, Location> by_id, by_turn;
  for (size_t f = 0; f < report_files.size(); ++f) {
    int skipped = 0;
    if (auto st = server::ScanReportLog(report_files[f], &skipped, &s->problems,
                                        [&](server::ReportRecord r, int64_t offset) {
                                          ++s->reports;
                                          const Location at{static_cast<int>(f), offset};
                                          if (!r.decision_id.empty())
                                            by_id[r.decision_id] = at;
                                          else
                                            by_turn[TurnKey(r.conversation_id, r.turn_index)] = at;
                                        });
        !st.ok())
      return st;
    s->report_skipped_lines += skipped;
  }

  // Pass 2: where each decision is, per conversation in order of first
  // appearance, turns by index (a repeated turn keeps the last record).
  std::unordered_map<std::string, size_t> conversation_index;
  std::vector<std::map<int, Location>> conversations;
  for (size_t f = 0; f < decision_files.size(); ++f) {
    std::ifstream in(decision_files[f], std::ios::binary);
    if (!in)
      return absl::NotFoundError(absl::StrCat("cannot open decision log ", decision_files[f]));
    std::string line;
    int64_t offset = 0, number = 0;
    while (std::getline(in, line)) {
      ++number;
      const int64_t start = offset;
      offset += static_cast<int64_t>(line.size()) + 1;
      auto problem = [&](const std::string& why) {
        ++s->decision_skipped_lines;
        if (s->problems.size() < 20)
          s->problems.push_back(absl::StrCat(decision_files[f], " line ", number, ": ", why));
      };
      if (in.eof()) {  // no newline: the write of a crash
        problem("torn (no newline at the end of the file)");
        break;
      }
      if (line.empty()) continue;
      auto d = data::ParseDecisionLine(line);
      if (!d.ok()) {
        problem(std::string(d.status().message()));
        continue;
      }
      ++s->decisions;
      // Which Reports have a decision at all (the others are counted).
      if (auto r = by_id.find(d->decision_id); r != by_id.end())
        r->second.has_decision = true;
      else if (auto t = by_turn.find(TurnKey(d->conversation_id, d->turn_index));
               t != by_turn.end())
        t->second.has_decision = true;
      auto [it, inserted] = conversation_index.emplace(d->conversation_id, conversations.size());
      if (inserted) conversations.emplace_back();
      conversations[it->second][d->turn_index] = Location{static_cast<int>(f), start};
    }
    if (in.bad())
      return absl::DataLossError(
          absl::StrCat("reading decision log ", decision_files[f], " failed"));
  }

  // Pass 3: one conversation at a time. A conversation is cut at its first
  // turn that cannot be joined (the context of later turns would be wrong).
  std::vector<std::ifstream> decision_in, report_in;
  for (const std::string& f : decision_files) decision_in.emplace_back(f, std::ios::binary);
  for (const std::string& f : report_files) report_in.emplace_back(f, std::ios::binary);
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("--out ", out_path, ": cannot write"));
  ope::JoinedLogWriter writer(&out);
  std::vector<std::string> views, tasks;
  for (size_t c = 0; c < conversations.size(); ++c) {
    data::Episode episode;
    episode.id = static_cast<int64_t>(c) + 1;
    std::vector<double> propensity;
    ope::ConversationBudget budget;
    int expected_turn = 0;
    bool cut = false;
    for (const auto& [turn_index, where] : conversations[c]) {
      if (cut) {
        ++s->after_gap;
        continue;
      }
      auto d = ReadDecisionAt(decision_in[where.file], where.offset, decision_files[where.file]);
      if (!d.ok()) return d.status();
      auto stop = [&](int64_t* counter) {
        ++*counter;
        cut = true;
      };
      if (turn_index != expected_turn) {  // an earlier turn was never logged
        stop(&s->after_gap);
        continue;
      }
      auto found = by_id.find(d->decision_id);
      const bool by_decision = found != by_id.end();
      if (!by_decision) found = by_turn.find(TurnKey(d->conversation_id, d->turn_index));
      absl::Time decided;
      std::string err;
      const bool timed = absl::ParseTime(absl::RFC3339_full, d->time_utc, &decided, &err);
      if (found == (by_decision ? by_id.end() : by_turn.end())) {
        stop(timed && now - decided < absl::Seconds(window_s) ? &s->pending : &s->unrewarded);
        continue;
      }
      auto r = server::ReadReportRecordAt(report_in[found->second.file], found->second.offset,
                                          report_files[found->second.file]);
      if (!r.ok()) return r.status();
      if (views.empty()) {
        views = d->context.view_names;
        tasks = r->tasks;
      }
      if (d->context.view_names != views || r->view_names != views || r->tasks != tasks) {
        stop(&s->unusable);
        continue;
      }
      absl::Time reported;
      if (timed && absl::ParseTime(absl::RFC3339_full, r->received_utc, &reported, &err) &&
          reported - decided > absl::Seconds(window_s))
        ++s->late;
      auto actions = env::ActionTable::Create(static_cast<int>(views.size()));
      if (!actions.ok()) return actions.status();
      auto executed = actions->IndexOf(r->cloud, r->cloud ? r->uploaded_views : std::vector<int>{});
      if (!executed.ok() || *executed >= static_cast<int>(d->actions.size()) ||
          !(d->actions[*executed].probability > 0)) {
        stop(&s->unusable);  // no probability for what was done: IPS cannot weigh it
        continue;
      }
      if (*executed != d->taken_action) ++s->deviated;
      if (turn_index == 0) {
        budget.latency_s = d->context.latency_budget_s;
        budget.money_usd = d->context.money_budget_usd;
      }
      episode.turns.push_back(server::ReportTurn(*r, tasks));
      episode.association.push_back(d->context.association);
      propensity.push_back(d->actions[*executed].probability);
      ++expected_turn;
    }
    if (episode.turns.empty()) continue;
    episode.image_paths = views;
    s->turns += static_cast<int64_t>(episode.turns.size());
    ++s->conversations;
    if (auto st = writer.Add(episode, tasks, propensity, budget); !st.ok()) return st;
    conversations[c].clear();
  }
  if (auto st = writer.Finish(); !st.ok()) return st;
  for (const auto* index : {&by_id, &by_turn})
    for (const auto& [key, at] : *index) s->unmatched_reports += !at.has_decision;
  return absl::OkStatus();
}

}  // namespace
}  // namespace lcio

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Joins the decision log with the Report log for off-policy evaluation (docs/ope.md).\n"
      "  lcio-join --decisions=decisions.log --reports=reports.log --out=joined.json");
  absl::ParseCommandLine(argc, argv);
  lcio::Summary s;
  const absl::Status st = lcio::Run(&s);
  nlohmann::json j = {{"decisions", s.decisions},
                      {"decision_skipped_lines", s.decision_skipped_lines},
                      {"reports", s.reports},
                      {"report_skipped_lines", s.report_skipped_lines},
                      {"conversations", s.conversations},
                      {"turns", s.turns},
                      {"late_reports", s.late},
                      {"pending_decisions", s.pending},
                      {"unrewarded_decisions", s.unrewarded},
                      {"decisions_after_a_gap", s.after_gap},
                      {"deviated_turns", s.deviated},
                      {"unusable_turns", s.unusable},
                      {"unmatched_reports", s.unmatched_reports},
                      {"problems", s.problems}};
  std::cout << j.dump(2) << "\n";
  if (!st.ok()) {
    std::cerr << "lcio-join: " << st.message() << "\n";
    return st.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
