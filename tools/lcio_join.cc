// lcio-join: the decision log joined with the Report log into M4A1-schema
// data with per-turn propensities (ope/joined_log.h), the input of lcio-ope.
// docs/ope.md, "Joining".
//
// Memory is bounded whatever the logs' size (a grace hash join): one pass
// over each log writes every valid record to one of K partition files by a
// hash of its conversation id, K chosen so that a partition's records fit in
// --memory_mb; then each partition is joined in memory on its own and its
// conversations written.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli_help.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/decision_log.h"
#include "lcio/data/message.h"
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
ABSL_FLAG(int64_t, memory_mb, 512,
          "memory for one partition's records; the logs are split into as many partitions as "
          "this needs");
ABSL_FLAG(std::string, first_reported_since, "",
          "RFC 3339 time: join only conversations whose first Report (earliest received_utc over "
          "all --reports) is at or after it; lcio-report-export's held_out_since, so that the "
          "join holds the hold-out alone");
ABSL_FLAG(std::string, now_utc, "",
          "RFC 3339 time the join treats as now (default: the clock), for pending decisions");

namespace lcio {
namespace {

struct Summary {
  int64_t decisions = 0, decision_skipped_lines = 0;
  int64_t reports = 0, report_skipped_lines = 0;
  int64_t conversations = 0, turns = 0;
  int64_t late = 0;        // joined, Report after the window
  int64_t pending = 0;     // no Report yet, decision inside the window
  int64_t unrewarded = 0;  // no Report, decision older than the window
  int64_t after_gap = 0;   // decisions after a missing or unusable turn
  int64_t deviated = 0;    // the Report's action is not the decision's: cut there
  // The decision observed another history than the turns joined before it
  // (a conversation restarted under the same id): cut there.
  int64_t other_history = 0;
  // Decisions of a joined turn besides the one joined: a retried Decide, or
  // the other life of a restarted conversation.
  int64_t not_joined = 0;
  // The same of a turn that cut its conversation (deviated, other history,
  // unusable), besides the one that turn counter counts.
  int64_t not_joined_of_cut_turns = 0;
  int64_t unusable =
      0;  // the Report's action had probability < kMinPropensity, or other views/tasks
  int64_t unmatched_reports = 0;  // no decision for them (a repeated Report counts once)
  // Decisions of conversations first reported before --first_reported_since
  // (or never reported) when it is given.
  int64_t before_first_reported_since = 0;
  int64_t partitions = 0;  // scratch files the logs were split into (--memory_mb)
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

// A scratch directory next to the output, removed with everything in it.
class ScratchDir {
 public:
  static absl::StatusOr<ScratchDir> Create(const std::string& near) {
    std::string pattern = near + ".join-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      return absl::PermissionDeniedError(
          absl::StrCat("cannot create a scratch directory ", pattern));
    return ScratchDir(pattern);
  }
  ScratchDir(ScratchDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ~ScratchDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// What an interrupted join (SIGINT, SIGTERM, SIGHUP) removes before it dies
// of the signal: the scratch files (the unpublished output among them) and
// directory. Filled while those signals are blocked, before any of the files
// exists, and not changed while the handler is installed, so the handler
// only reads it; unlink and rmdir are async-signal-safe. A SIGKILL cannot be
// caught: the next join into the same --out names what it left
// (WarnAboutStaleScratch).
struct InterruptCleanup {
  std::vector<std::string> files;
  std::string directory;
};
const InterruptCleanup* interrupt_cleanup = nullptr;

extern "C" void RemoveScratchAndDie(int signal_number) {
  if (const InterruptCleanup* c = interrupt_cleanup) {
    for (const std::string& f : c->files) ::unlink(f.c_str());
    ::rmdir(c->directory.c_str());
  }
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

constexpr int kInterruptSignals[] = {SIGINT, SIGTERM, SIGHUP};

// Blocks the interrupting signals for its lifetime (the previous mask back
// on destruction).
class SignalBlock {
 public:
  SignalBlock() {
    sigset_t block;
    sigemptyset(&block);
    for (int sig : kInterruptSignals) sigaddset(&block, sig);
    sigprocmask(SIG_BLOCK, &block, &previous_);
  }
  ~SignalBlock() { sigprocmask(SIG_SETMASK, &previous_, nullptr); }

 private:
  sigset_t previous_;
};

// The cleanup handler for as long as it lives: Arm (with the signals
// blocked) installs it for `cleanup`, except on a signal the caller ignores
// (nohup, a background job), which stays ignored; the destructor puts the
// previous handlers back before `cleanup` can go away.
class InterruptHandlers {
 public:
  InterruptHandlers() = default;
  InterruptHandlers(const InterruptHandlers&) = delete;
  InterruptHandlers& operator=(const InterruptHandlers&) = delete;
  void Arm(const InterruptCleanup* cleanup) {
    interrupt_cleanup = cleanup;
    struct sigaction action = {};
    action.sa_handler = RemoveScratchAndDie;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < std::size(kInterruptSignals); ++i) {
      sigaction(kInterruptSignals[i], nullptr, &previous_[i]);
      installed_[i] = previous_[i].sa_handler != SIG_IGN;
      if (installed_[i]) sigaction(kInterruptSignals[i], &action, nullptr);
    }
  }
  ~InterruptHandlers() {
    SignalBlock block;
    for (size_t i = 0; i < std::size(kInterruptSignals); ++i)
      if (installed_[i]) sigaction(kInterruptSignals[i], &previous_[i], nullptr);
    interrupt_cleanup = nullptr;
  }

 private:
  struct sigaction previous_[std::size(kInterruptSignals)] = {};
  bool installed_[std::size(kInterruptSignals)] = {};
};

// Scratch directories an earlier join into the same --out left (killed, or
// still running): named on stderr, not removed, since a join may still be
// using its own.
void WarnAboutStaleScratch(const std::string& out_path) {
  const std::filesystem::path out(out_path);
  const std::string prefix = out.filename().string() + ".join-";
  std::error_code ec;
  const std::filesystem::path parent = out.has_parent_path() ? out.parent_path() : ".";
  for (auto it = std::filesystem::directory_iterator(parent, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    if (it->path().filename().string().rfind(prefix, 0) == 0 && it->is_directory(ec))
      std::cerr << "lcio-join: " << it->path().string()
                << " is the scratch directory of another join into this --out, killed or still "
                   "running; remove it once none runs\n";
}

// Joins the conversations of one partition and writes them. The partition's
// Report lines are "<file index>\t<record JSON>", in log order.
// The vocabulary of the first joined turn: every later one must have it.
struct Vocabulary {
  bool set = false;
  std::vector<std::string> views, tasks;
};

absl::Status JoinPartition(const std::string& decisions_path, const std::string& reports_path,
                           absl::Time now, double window_s, absl::Time first_reported_since,
                           ope::JoinedLogWriter* writer, Vocabulary* vocabulary, int64_t* next_id,
                           Summary* s) {
  std::vector<std::string>* const views = &vocabulary->views;
  std::vector<std::string>* const tasks = &vocabulary->tasks;
  // One Report per (conversation, turn): the one that stands as in the
  // exporter (server::LaterReportStands), whether or not it quotes its
  // decision's id.
  struct Report {
    server::ReportRecord record;
    int file = 0;
    absl::Time received;
  };
  std::unordered_map<std::string, Report> reports;
  // Per conversation, its earliest Report (over every record, standing or
  // not, as the exporter orders its hold-out).
  std::unordered_map<std::string, absl::Time> first_reported;
  {
    std::ifstream in(reports_path, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      const size_t tab = line.find('\t');
      int file = 0;
      if (tab == std::string::npos || !absl::SimpleAtoi(line.substr(0, tab), &file))
        return absl::InternalError(absl::StrCat("join scratch file ", reports_path, " is corrupt"));
      auto r = server::ReportRecordFromJson(absl::string_view(line).substr(tab + 1));
      if (!r.ok()) return r.status();  // we wrote it from a checked record
      const absl::Time received = server::ReceivedTime(*r);
      // As the exporter orders its hold-out: undated records do not count,
      // and a conversation with none dated is never held out.
      auto first = first_reported.try_emplace(r->conversation_id, absl::InfiniteFuture()).first;
      if (received != absl::InfinitePast()) first->second = std::min(first->second, received);
      std::string key = TurnKey(r->conversation_id, r->turn_index);
      auto [it, fresh] = reports.try_emplace(std::move(key));
      if (fresh ||
          server::LaterReportStands(it->second.file == file, received, it->second.received))
        it->second = Report{*std::move(r), file, received};
    }
    if (in.bad()) return absl::DataLossError(absl::StrCat("reading ", reports_path, " failed"));
  }
  // Decisions per conversation in order of first appearance, turns by index;
  // a turn may have several (a retried Decide logs each call), in log order.
  std::unordered_map<std::string, size_t> conversation_index;
  std::vector<std::map<int, std::vector<data::DecisionRecord>>> conversations;
  {
    std::ifstream in(decisions_path, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      auto d = data::ParseDecisionLine(line);
      if (!d.ok()) return d.status();  // we wrote it: a parse failure is our bug or the disk's
      auto [it, inserted] = conversation_index.emplace(d->conversation_id, conversations.size());
      if (inserted) conversations.emplace_back();
      const int turn = d->turn_index;
      conversations[it->second][turn].push_back(*std::move(d));
    }
    if (in.bad()) return absl::DataLossError(absl::StrCat("reading ", decisions_path, " failed"));
  }
  auto decided_at = [](const data::DecisionRecord& d) {
    absl::Time t;
    std::string err;
    return absl::ParseTime(absl::RFC3339_full, d.time_utc, &t, &err) ? t : absl::InfinitePast();
  };

  // A conversation is cut at its first turn that cannot be joined (the
  // context of later turns would be wrong).
  for (auto& conversation : conversations) {
    if (first_reported_since != absl::InfinitePast()) {
      const auto first = first_reported.find(conversation.begin()->second.front().conversation_id);
      if (first == first_reported.end() || first->second == absl::InfiniteFuture() ||
          first->second < first_reported_since) {
        for (const auto& [turn_index, decisions] : conversation)
          s->before_first_reported_since += static_cast<int64_t>(decisions.size());
        continue;
      }
    }
    data::Episode episode;
    episode.id = ++*next_id;
    std::vector<double> propensity;
    std::vector<int> joined_actions;  // per joined turn, what was taken
    ope::ConversationBudget budget;
    ope::ServedProfile profile;  // turn 0's: the replay prices every turn under it
    absl::Time previous_decided = absl::InfinitePast();  // of the last joined turn
    int expected_turn = 0;
    bool cut = false;
    for (const auto& [turn_index, decisions] : conversation) {
      const auto n = static_cast<int64_t>(decisions.size());
      if (cut) {
        s->after_gap += n;
        continue;
      }
      // Counters of decisions take the turn's every decision; counters of
      // turns take one, and the turn's other decisions are counted apart, so
      // that every logged decision is counted once.
      auto stop_decisions = [&](int64_t* counter) {
        *counter += n;
        cut = true;
      };
      auto stop = [&](int64_t* turn_counter) {
        ++*turn_counter;
        s->not_joined_of_cut_turns += n - 1;
        cut = true;
      };
      if (turn_index != expected_turn) {  // an earlier turn was never logged
        stop_decisions(&s->after_gap);
        continue;
      }
      // The newest decision of the turn made no later than `by` (the later
      // logged among equals); the newest of all when none was.
      auto newest = [&](absl::Time by) {
        const data::DecisionRecord *pick = nullptr, *any = nullptr;
        for (const data::DecisionRecord& other : decisions) {
          if (any == nullptr || decided_at(other) >= decided_at(*any)) any = &other;
          if (decided_at(other) <= by &&
              (pick == nullptr || decided_at(other) >= decided_at(*pick)))
            pick = &other;
        }
        return pick != nullptr ? pick : any;
      };
      const data::DecisionRecord* d = newest(absl::InfiniteFuture());
      auto found = reports.find(TurnKey(d->conversation_id, turn_index));
      if (found != reports.end()) {
        const server::ReportRecord& r = found->second.record;
        if (data::DecisionIdIsOfTurn(r.decision_id, r.conversation_id, turn_index)) {
          // A Report quoting one of this turn's ids is about that decision;
          // one quoting an id that was never logged cannot be weighed.
          const auto named = std::find_if(decisions.begin(), decisions.end(), [&](const auto& x) {
            return x.decision_id == r.decision_id;
          });
          if (named == decisions.end())
            found = reports.end();
          else
            d = &*named;
        } else if (found->second.received != absl::InfinitePast()) {
          // Without an id: the decision the client can have run, made before
          // its Report arrived (a later one is of a restarted conversation).
          d = newest(found->second.received);
        }
      }
      const absl::Time decided = decided_at(*d);
      const bool timed = decided != absl::InfinitePast();
      if (found == reports.end()) {
        stop_decisions(timed && now - decided < absl::Seconds(window_s) ? &s->pending
                                                                        : &s->unrewarded);
        continue;
      }
      const server::ReportRecord& r = found->second.record;
      // A vocabulary without views would make every episode one lcio-ope
      // refuses; such a decision cannot be replayed.
      if (d->context.view_names.empty()) {
        stop(&s->unusable);
        continue;
      }
      if (!vocabulary->set) {
        vocabulary->set = true;
        *views = d->context.view_names;
        *tasks = r.tasks;
      }
      const auto task = std::find(tasks->begin(), tasks->end(), d->context.task);
      if (d->context.view_names != *views || r.view_names != *views || r.tasks != *tasks ||
          task == tasks->end()) {
        stop(&s->unusable);
        continue;
      }
      // The window the decision observed must be the turns joined before it:
      // a conversation restarted under the same id (after the server forgot
      // it) has a turn 0 of another life, and its later turns' contexts would
      // be replayed wrong.
      const std::vector<data::DecisionHistoryTurn>& history = d->context.history;
      bool same_history = history.size() <= joined_actions.size();
      for (size_t i = 0; same_history && i < history.size(); ++i) {
        const size_t at = joined_actions.size() - history.size() + i;
        same_history =
            history[i].action == joined_actions[at] && history[i].task == episode.turns[at].task;
      }
      // Nor may it be older than the turn joined before it: the turns of two
      // lives whose windows happen to agree.
      if (!same_history || (timed && decided < previous_decided)) {
        stop(&s->other_history);
        continue;
      }
      const absl::Time reported = found->second.received;
      const bool late =
          timed && reported != absl::InfinitePast() && reported - decided > absl::Seconds(window_s);
      auto actions = env::ActionTable::Create(static_cast<int>(views->size()));
      if (!actions.ok()) return actions.status();
      auto executed = actions->IndexOf(r.cloud, r.cloud ? r.uploaded_views : std::vector<int>{});
      if (!executed.ok() || *executed >= static_cast<int>(d->actions.size())) {
        stop(&s->unusable);
        continue;
      }
      // The client ran something other than the decision: that action was
      // not drawn from the logged distribution (an offline client going
      // local has probability near 1, not the policy's 0.02), so no
      // propensity is known for it, and later turns' contexts follow it.
      if (*executed != d->taken_action) {
        stop(&s->deviated);
        continue;
      }
      // A probability whose weight overflows (lcio-ope refuses it): IPS
      // cannot weigh it.
      if (!(d->actions[*executed].probability >= ope::kMinPropensity)) {
        stop(&s->unusable);
        continue;
      }
      if (turn_index == 0) {
        budget.latency_s = d->context.latency_budget_s;
        budget.money_usd = d->context.money_budget_usd;
        profile = {d->context.device, d->context.network};
        if (profile.device.empty() || profile.network.empty()) profile = {};
      } else if (d->context.device != profile.device || d->context.network != profile.network) {
        stop(&s->unusable);  // one conversation, one profile to price it under
        continue;
      }
      // The task the serving policy decided with (given or inferred): what a
      // candidate replayed on this turn would see.
      data::Turn turn = server::ReportTurn(r, *tasks);
      turn.task = *task;
      turn.task_index = static_cast<int>(task - tasks->begin());
      episode.turns.push_back(std::move(turn));
      episode.association.push_back(d->context.association);
      propensity.push_back(d->actions[*executed].probability);
      joined_actions.push_back(*executed);
      s->not_joined += static_cast<int64_t>(decisions.size()) - 1;
      s->late += late;  // only a turn joined counts as a late Report joined
      if (timed) previous_decided = decided;
      budget.remaining_latency_s.push_back(d->context.latency_budget_s);
      budget.remaining_money_usd.push_back(d->context.money_budget_usd);
      budget.remaining_request_money_usd.push_back(d->context.request_money_budget_usd);
      ++expected_turn;
    }
    if (episode.turns.empty()) {
      --*next_id;
      continue;
    }
    episode.image_paths = *views;
    s->turns += static_cast<int64_t>(episode.turns.size());
    ++s->conversations;
    if (auto st = writer->Add(episode, *tasks, propensity, budget, profile); !st.ok()) return st;
  }
  // A Report is matched when its turn was logged, and the decision it quotes
  // (if it quotes one of its turn) among that turn's, whether or not the
  // conversation was cut before it.
  for (const auto& [key, report] : reports) {
    const server::ReportRecord& r = report.record;
    auto c = conversation_index.find(r.conversation_id);
    const std::vector<data::DecisionRecord>* decisions = nullptr;
    if (c != conversation_index.end())
      if (auto t = conversations[c->second].find(r.turn_index); t != conversations[c->second].end())
        decisions = &t->second;
    bool matched = decisions != nullptr;
    if (matched && data::DecisionIdIsOfTurn(r.decision_id, r.conversation_id, r.turn_index))
      matched = std::any_of(
          decisions->begin(), decisions->end(),
          [&](const data::DecisionRecord& d) { return d.decision_id == r.decision_id; });
    s->unmatched_reports += !matched;
  }
  return absl::OkStatus();
}

absl::Status Run(Summary* s) {
  const std::vector<std::string> decision_files = Series(absl::GetFlag(FLAGS_decisions));
  const std::vector<std::string> report_files = Series(absl::GetFlag(FLAGS_reports));
  if (decision_files.empty())
    return absl::InvalidArgumentError("--decisions: no decision log file found");
  if (report_files.empty()) return absl::InvalidArgumentError("--reports: no Report log found");
  // A device (/dev/zero) would be read without end. Pipes stay welcome
  // (--decisions=<(zcat log.gz)): the logs are read once, in order.
  for (const auto& [flag, files] :
       {std::pair{"--decisions", &decision_files}, std::pair{"--reports", &report_files}})
    for (const std::string& f : *files)
      if (absl::Status s =
              data::CheckStreamableInput(f, absl::StrCat(flag, ": ", data::Shorten(f, 256)));
          !s.ok())
        return s;
  const std::string out_path = absl::GetFlag(FLAGS_out);
  if (out_path.empty()) return absl::InvalidArgumentError("--out is required");
  const double window_s = absl::GetFlag(FLAGS_reward_window_s);
  // absl::Seconds(inf) is an infinite duration, which no lateness exceeds: a
  // window that large is no window; a year is plenty.
  if (!(window_s >= 0 && window_s <= 366 * 86400.0))
    return absl::InvalidArgumentError(
        absl::StrCat("--reward_window_s = ", window_s, ": must be in [0, 31622400] (a year)"));
  absl::Time first_reported_since = absl::InfinitePast();
  if (const std::string since = absl::GetFlag(FLAGS_first_reported_since); !since.empty()) {
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, since, &first_reported_since, &err))
      return absl::InvalidArgumentError(
          absl::StrCat("--first_reported_since = \"", data::Shorten(since, 64), "\": ", err));
  }
  absl::Time now = absl::Now();
  if (!absl::GetFlag(FLAGS_now_utc).empty()) {
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, absl::GetFlag(FLAGS_now_utc), &now, &err))
      return absl::InvalidArgumentError(absl::StrCat(
          "--now_utc = \"", data::Shorten(absl::GetFlag(FLAGS_now_utc), 64), "\": ", err));
  }

  const int64_t memory_mb = absl::GetFlag(FLAGS_memory_mb);
  if (memory_mb < 1)
    return absl::InvalidArgumentError(absl::StrCat("--memory_mb = ", memory_mb, ": must be >= 1"));
  // A parsed record takes a few times its text; a partition's text gets a
  // quarter of the budget.
  uintmax_t bytes = 0;
  for (const auto* files : {&decision_files, &report_files})
    for (const std::string& f : *files) {
      std::error_code ec;
      bytes += std::filesystem::file_size(f, ec);
    }
  const uintmax_t per_partition = static_cast<uintmax_t>(memory_mb) * (1 << 20) / 4;
  // At most 512 partition files are open at once (below the usual limit of
  // 1024 descriptors); beyond 512 x memory_mb / 4 of logs a partition
  // outgrows the budget: raise --memory_mb.
  const size_t partitions = static_cast<size_t>(std::min<uintmax_t>(
      512, std::max<uintmax_t>(1, (bytes + per_partition - 1) / per_partition)));
  // The output is written under a temporary name (in the scratch directory,
  // on the same file system) and renamed over --out when complete: a failed
  // join, or one interrupted before the rename, leaves --out as it was.
  if (absl::Status replaceable = data::CheckReplaceableOutput(out_path); !replaceable.ok())
    return absl::InvalidArgumentError(absl::StrCat("--out: ", replaceable.message()));
  {
    std::vector<std::string> inputs = decision_files;
    inputs.insert(inputs.end(), report_files.begin(), report_files.end());
    if (absl::Status s = data::CheckOutputIsNoInput("--out", out_path, inputs); !s.ok()) return s;
  }
  WarnAboutStaleScratch(out_path);
  // Declared in this order so that the scratch directory goes first, then
  // the handlers, then what they read.
  InterruptCleanup cleanup;
  InterruptHandlers handlers;
  std::optional<ScratchDir> scratch;
  std::string temp_out;  // in the scratch directory: a SIGKILL leaves it there, named
  {
    SignalBlock block;
    auto made = ScratchDir::Create(out_path);
    if (!made.ok()) return made.status();
    scratch.emplace(*std::move(made));
    for (size_t p = 0; p < partitions; ++p)
      for (const char* kind : {"r", "d"})
        cleanup.files.push_back(scratch->File(absl::StrCat(kind, p)));
    temp_out = scratch->File("joined.tmp");
    cleanup.files.push_back(temp_out);
    cleanup.directory = scratch->path();
    handlers.Arm(&cleanup);
  }
  auto part = [&](const char* kind, size_t p) { return scratch->File(absl::StrCat(kind, p)); };
  const std::hash<std::string> hash;

  // Pass 1: every valid record to its conversation's partition, in log order
  // (so "the last record wins" still holds within a partition).
  {
    std::vector<std::ofstream> out(partitions);
    for (size_t p = 0; p < partitions; ++p) out[p].open(part("r", p), std::ios::binary);
    for (size_t file = 0; file < report_files.size(); ++file) {
      const std::string& f = report_files[file];
      int skipped = 0;
      if (auto st = server::ScanReportLog(f, &skipped, &s->problems,
                                          [&](server::ReportRecord r, int64_t) {
                                            ++s->reports;
                                            out[hash(r.conversation_id) % partitions]
                                                << file << '\t' << server::ReportRecordToJson(r)
                                                << '\n';
                                          });
          !st.ok())
        return st;
      s->report_skipped_lines += skipped;
    }
    for (auto& o : out)
      if (!o.flush()) return absl::DataLossError("writing the join's scratch files failed");
  }
  {
    std::vector<std::ofstream> out(partitions);
    for (size_t p = 0; p < partitions; ++p) out[p].open(part("d", p), std::ios::binary);
    for (const std::string& f : decision_files) {
      std::ifstream in(f, std::ios::binary);
      if (!in) return absl::NotFoundError(absl::StrCat("cannot open decision log ", f));
      std::string line;
      int64_t number = 0;
      while (std::getline(in, line)) {
        ++number;
        auto problem = [&](const std::string& why) {
          ++s->decision_skipped_lines;
          if (s->problems.size() < 20)
            s->problems.push_back(absl::StrCat(f, " line ", number, ": ", why));
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
        out[hash(d->conversation_id) % partitions] << line << "\n";
      }
      if (in.bad()) return absl::DataLossError(absl::StrCat("reading decision log ", f, " failed"));
    }
    for (auto& o : out)
      if (!o.flush()) return absl::DataLossError("writing the join's scratch files failed");
  }

  // Pass 2: one partition at a time.
  std::ofstream out(temp_out, std::ios::binary | std::ios::trunc);
  if (!out)
    return absl::PermissionDeniedError(
        absl::StrCat("--out ", out_path, ": cannot write ", temp_out));
  // Removed unless published (a failed join leaves no temporary file behind).
  struct RemoveUnlessPublished {
    const std::string& path;
    bool published = false;
    ~RemoveUnlessPublished() {
      if (!published) std::remove(path.c_str());
    }
  } temp_guard{temp_out};
  ope::JoinedLogWriter writer(&out);
  Vocabulary vocabulary;
  int64_t next_id = 0;
  for (size_t p = 0; p < partitions; ++p) {
    if (auto st = JoinPartition(part("d", p), part("r", p), now, window_s, first_reported_since,
                                &writer, &vocabulary, &next_id, s);
        !st.ok())
      return st;
    std::error_code ignored;
    std::filesystem::remove(part("d", p), ignored);
    std::filesystem::remove(part("r", p), ignored);
  }
  s->partitions = static_cast<int64_t>(partitions);
  if (absl::Status finished = writer.Finish(); !finished.ok()) return finished;
  out.close();
  if (!out)
    return absl::DataLossError(absl::StrCat("--out ", out_path, ": closing ", temp_out, " failed"));
  temp_guard.published = true;  // PublishTemporaryFile removes it on failure
  return data::PublishTemporaryFile(temp_out, out_path);
}

}  // namespace
}  // namespace lcio

int main(int argc, char** argv) {
  lcio::cli::ParseCommandLine(
      argc, argv, "[flags] --decisions=FILE --reports=FILE --out=FILE",
      "Joins the decision log with the Report log for off-policy evaluation (docs/ope.md).\n"
      "  lcio-join --decisions=decisions.log --reports=reports.log --out=joined.json");
  lcio::Summary s;
  const absl::Status st = lcio::Run(&s);
  if (!st.ok()) {
    // No summary on stdout: counts of a join that did not finish would read as a result.
    for (const std::string& problem : s.problems)
      std::cerr << "lcio-join: skipped " << problem << "\n";
    std::cerr << "lcio-join: " << st.message() << "\n";
    return lcio::cli::ExitStatus(st);
  }
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
                      {"other_history_turns", s.other_history},
                      {"other_decisions_of_joined_turns", s.not_joined},
                      {"other_decisions_of_cut_turns", s.not_joined_of_cut_turns},
                      {"unusable_turns", s.unusable},
                      {"unmatched_reports", s.unmatched_reports},
                      {"decisions_first_reported_before_since", s.before_first_reported_since},
                      {"partitions", s.partitions},
                      {"problems", s.problems}};
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}
