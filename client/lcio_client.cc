// lcio-client: one call to lcio-server from the command line; prints JSON.
// Usage (the first is one command line, wrapped here):
//   lcio-client decide --target 127.0.0.1:50051 --conversation c1 --turn 0
//       --prompt "What is on the table?" --association 0.2,0.3,0.1
//       --latency_budget 30 --money_budget 0.05 [--task Query] [--explain]
//   lcio-client decide --json request.json      (proto3 JSON of DecideRequest)
//   lcio-client report --json report.json | --conversation ... (flags below)
//   lcio-client policy
//   lcio-client health [--service lcio.v1.Offloader]
// Exit status: 0 OK, 1 the call failed (status printed as JSON on stderr, so
// that stdout holds only answers), 2 usage.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli_help.h"
#include "lcio/client/client.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/message.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "server address");
ABSL_FLAG(double, timeout_s, 5, "per-attempt deadline");
ABSL_FLAG(int32_t, attempts, 3, "attempts for retried calls (decide, policy, health)");
ABSL_FLAG(std::string, tls_ca, "", "CA certificate (PEM): use TLS");
ABSL_FLAG(std::string, tls_cert, "", "client certificate (PEM) for mutual TLS");
ABSL_FLAG(std::string, tls_key, "", "client key (PEM) for mutual TLS");
ABSL_FLAG(std::string, tls_server_name, "", "expected server certificate name");
ABSL_FLAG(std::string, json, "", "request as proto3 JSON file (--json=- reads stdin)");
ABSL_FLAG(std::string, conversation, "", "conversation id");
ABSL_FLAG(int32_t, turn, 0, "turn index");
ABSL_FLAG(std::string, prompt, "", "the user's prompt");
ABSL_FLAG(std::string, task, "", "task name (decide: optional, inferred when empty)");
ABSL_FLAG(std::string, views, "",
          "comma-separated view names, in --association order (default: the policy's views)");
ABSL_FLAG(std::string, association, "", "comma-separated association per view, in [0, 1]");
ABSL_FLAG(double, latency_budget, 30, "remaining latency budget, seconds");
ABSL_FLAG(double, money_budget, 0.05, "remaining money budget, USD");
ABSL_FLAG(std::string, device, "", "device profile name");
ABSL_FLAG(std::string, network, "", "network profile name");
ABSL_FLAG(bool, explain, false, "decide: return every action's score");
ABSL_FLAG(
    std::string, history, "",
    "decide: stateless history as action:task pairs separated by ';' (e.g. \"0:Query;3:Query\")");
ABSL_FLAG(std::string, target_llm, "local", "report: local or cloud");
ABSL_FLAG(std::string, uploaded, "", "report: comma-separated uploaded view names");
ABSL_FLAG(std::string, decision_id, "", "report: the decision's id");
ABSL_FLAG(std::string, answer, "", "report: the answer text");
ABSL_FLAG(double, score, 0,
          "report: answer quality on M4A1's scale (0 to 9, mostly 0 to 2; the server accepts up "
          "to 1000)");
ABSL_FLAG(double, latency_s, 0, "report: measured latency");
ABSL_FLAG(double, cost_usd, 0, "report: measured money");
ABSL_FLAG(std::string, service, "", "health: service name (\"\" = whole server)");

namespace {

int Usage(const std::string& message) {
  std::fprintf(stderr, "lcio-client: %s\n%s\n", message.c_str(),
               "usage: lcio-client decide|report|policy|health [flags]; --help for flags");
  return 2;
}

// Far above any request a server accepts (its gRPC limit is 4 MiB by
// default): standard input is read up to it, never without end (/dev/zero).
constexpr size_t kMaxStdinBytes = size_t{16} << 20;

absl::StatusOr<std::string> ReadInput(const std::string& path) {
  if (path != "-") {
    // A regular file: /dev/zero would be read without end.
    return lcio::data::ReadRegularFile(
        path, absl::StrCat("json = \"", lcio::data::Shorten(path, 256), "\""), "a JSON request");
  }
  std::string text;
  char chunk[1 << 16];
  while (std::cin.read(chunk, sizeof chunk) || std::cin.gcount() > 0) {
    text.append(chunk, static_cast<size_t>(std::cin.gcount()));
    if (text.size() > kMaxStdinBytes)
      return absl::InvalidArgumentError(
          absl::StrCat("json = \"-\": standard input holds more than ", kMaxStdinBytes,
                       " bytes; a request is far smaller"));
  }
  if (std::cin.bad()) return absl::UnavailableError("json = \"-\": cannot read standard input");
  return text;
}

absl::StatusOr<std::vector<double>> ParseList(const std::string& flag, const std::string& text) {
  std::vector<double> values;
  if (text.empty()) return values;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    double value = 0;
    if (!absl::SimpleAtod(part, &value))
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": \"", std::string(part), "\" is not a number"));
    values.push_back(value);
  }
  return values;
}

std::vector<std::string> SplitNames(const std::string& text) {
  if (text.empty()) return {};
  return absl::StrSplit(text, ',');
}

// The whole request from --json (a file, or - for stdin).
template <typename Request>
absl::Status RequestFromJsonFlag(Request* request) {
  absl::StatusOr<std::string> text = ReadInput(absl::GetFlag(FLAGS_json));
  if (!text.ok()) return text.status();
  return lcio::FromJson(*text, request);
}

// The fields Decide and Report share, from --conversation, --turn, --prompt
// and --task.
template <typename Request>
void SetTurnFromFlags(Request* request) {
  request->set_conversation_id(absl::GetFlag(FLAGS_conversation));
  request->set_turn_index(absl::GetFlag(FLAGS_turn));
  request->set_prompt(absl::GetFlag(FLAGS_prompt));
  request->set_task(absl::GetFlag(FLAGS_task));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args =
      lcio::cli::ParseCommandLine(argc, argv, "decide|report|policy|health [flags]",
                                  "One call to lcio-server; prints the answer as JSON on stdout "
                                  "(errors on stderr, exit status 1; usage errors 2).",
                                  /*max_positional=*/1);
  if (args.size() != 2) return Usage("exactly one subcommand is required");
  const std::string command = args[1];

  const double timeout_s = absl::GetFlag(FLAGS_timeout_s);
  if (!(timeout_s > 0 && timeout_s <= 3600))
    return Usage(absl::StrCat("--timeout_s=", timeout_s, ": must be in (0, 3600]"));
  // --json is the whole request: a request field given beside it would be
  // ignored in silence (also one given its default value, --turn=0).
  if (!absl::GetFlag(FLAGS_json).empty()) {
    std::vector<std::string> beside;
    for (const char* name :
         {"conversation", "turn", "prompt", "task", "views", "association", "latency_budget",
          "money_budget", "device", "network", "explain", "history", "target_llm", "uploaded",
          "decision_id", "answer", "score", "latency_s", "cost_usd"}) {
      if (lcio::cli::GivenOnCommandLine(name)) beside.push_back(absl::StrCat("--", name));
    }
    if (!beside.empty())
      return Usage(absl::StrCat("--json is the whole request; remove ", absl::StrJoin(beside, ", "),
                                " or put it in the JSON"));
  }

  lcio::ClientOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  options.timeout = absl::Seconds(timeout_s);
  options.max_attempts = absl::GetFlag(FLAGS_attempts);
  options.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  auto client = lcio::Client::Create(options);
  if (!client.ok()) return Usage(std::string(client.status().message()));
  auto fail = [](const absl::Status& status) {
    std::fprintf(stderr, "{\"code\": \"%s\", \"message\": %s}\n",
                 absl::StatusCodeToString(status.code()).c_str(),
                 lcio::JsonString(std::string(status.message())).c_str());
    return 1;
  };

  if (command == "policy") {
    lcio::v1::PolicyInfo info;
    if (absl::Status s = (*client)->GetPolicy(&info); !s.ok()) return fail(s);
    std::printf("%s\n", lcio::ToJson(info).c_str());
    return 0;
  }
  if (command == "health") {
    auto status = (*client)->Health(absl::GetFlag(FLAGS_service));
    if (!status.ok()) return fail(status.status());
    std::printf("{\"status\": \"%s\"}\n", status->c_str());
    return *status == "SERVING" ? 0 : 1;
  }
  if (command == "decide") {
    lcio::v1::DecideRequest request;
    if (!absl::GetFlag(FLAGS_json).empty()) {
      if (absl::Status s = RequestFromJsonFlag(&request); !s.ok())
        return Usage(std::string(s.message()));
    } else {
      SetTurnFromFlags(&request);
      auto association = ParseList("association", absl::GetFlag(FLAGS_association));
      if (!association.ok()) return Usage(std::string(association.status().message()));
      std::vector<std::string> names = SplitNames(absl::GetFlag(FLAGS_views));
      if (names.empty()) {
        lcio::v1::PolicyInfo info;
        if (absl::Status s = (*client)->GetPolicy(&info); !s.ok()) return fail(s);
        names.assign(info.view_names().begin(), info.view_names().end());
      }
      if (names.size() != association->size())
        return Usage(absl::StrCat("--association has ", association->size(), " values for ",
                                  names.size(), " views (", absl::StrJoin(names, ","), ")"));
      for (size_t v = 0; v < names.size(); ++v) {
        lcio::v1::View* view = request.add_views();
        view->set_name(names[v]);
        view->set_association((*association)[v]);
      }
      request.mutable_budget()->set_latency_s(absl::GetFlag(FLAGS_latency_budget));
      request.mutable_budget()->set_money_usd(absl::GetFlag(FLAGS_money_budget));
      request.set_device(absl::GetFlag(FLAGS_device));
      request.set_network(absl::GetFlag(FLAGS_network));
      request.set_explain(absl::GetFlag(FLAGS_explain));
      if (!absl::GetFlag(FLAGS_history).empty()) {
        lcio::v1::ConversationHistory* history = request.mutable_history();
        for (absl::string_view pair : absl::StrSplit(absl::GetFlag(FLAGS_history), ';')) {
          std::vector<std::string> parts = absl::StrSplit(pair, absl::MaxSplits(':', 1));
          int action = 0;
          if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &action))
            return Usage(absl::StrCat("--history: \"", std::string(pair), "\" is not action:task"));
          lcio::v1::HistoryTurn* turn = history->add_turns();
          turn->set_action(action);
          turn->set_task(parts[1]);
        }
      }
    }
    lcio::v1::DecideResponse response;
    if (absl::Status s = (*client)->Decide(request, &response); !s.ok()) return fail(s);
    std::printf("%s\n", lcio::ToJson(response).c_str());
    return 0;
  }
  if (command == "report") {
    lcio::v1::ReportRequest request;
    if (!absl::GetFlag(FLAGS_json).empty()) {
      if (absl::Status s = RequestFromJsonFlag(&request); !s.ok())
        return Usage(std::string(s.message()));
    } else {
      SetTurnFromFlags(&request);
      request.set_decision_id(absl::GetFlag(FLAGS_decision_id));
      const std::string target = absl::GetFlag(FLAGS_target_llm);
      if (target != "local" && target != "cloud")
        return Usage("--target_llm must be local or cloud");
      request.set_target(target == "cloud" ? lcio::v1::TARGET_CLOUD : lcio::v1::TARGET_LOCAL);
      for (const std::string& name : SplitNames(absl::GetFlag(FLAGS_uploaded)))
        request.add_uploaded_views(name);
      auto association = ParseList("association", absl::GetFlag(FLAGS_association));
      if (!association.ok()) return Usage(std::string(association.status().message()));
      for (double a : *association) request.add_association(a);
      request.set_answer(absl::GetFlag(FLAGS_answer));
      request.set_score(absl::GetFlag(FLAGS_score));
      request.set_interaction_time_s(absl::GetFlag(FLAGS_latency_s));
      request.set_usage_cost_usd(absl::GetFlag(FLAGS_cost_usd));
    }
    lcio::v1::ReportResponse response;
    if (absl::Status s = (*client)->Report(request, &response); !s.ok()) return fail(s);
    std::printf("%s\n", lcio::ToJson(response).c_str());
    return 0;
  }
  return Usage(absl::StrCat("unknown subcommand \"", command, "\""));
}
