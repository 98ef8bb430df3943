#include "cli_help.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <set>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lcio/version.h"

namespace lcio::cli {
namespace {

std::string ProgramName(const char* argv0) {
  std::string name = argv0 == nullptr ? "lcio" : argv0;
  const size_t slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

// abseil's own flags (--flagfile, --undefok, --helpfull, ...) are defined in
// its sources; everything else linked into an lcio binary is the binary's.
bool IsAbseilFlag(const absl::CommandLineFlag& flag) {
  return absl::StrContains(flag.Filename(), "absl/");
}

// "--name", "-name", "--name=value" or "--noname" (a bool's negation): the
// flag name, or "" for a positional argument or "--".
std::string FlagName(absl::string_view arg) {
  if (arg.size() < 2 || arg[0] != '-' || arg == "--") return "";
  arg.remove_prefix(arg[1] == '-' ? 2 : 1);
  return std::string(arg.substr(0, arg.find('=')));
}

// The flags the command line (or a flag file in it) names, by their own
// names (--noexplain: "explain"). Written once, by ParseCommandLine.
std::set<std::string>& Given() {
  static std::set<std::string> given;
  return given;
}

bool Known(const std::string& name) {
  if (absl::FindCommandLineFlag(name) != nullptr) return true;
  if (absl::StartsWith(name, "no")) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name.substr(2));
    return flag != nullptr && flag->IsOfType<bool>();
  }
  return false;
}

}  // namespace

std::string Version() { return LCIO_VERSION; }

std::string DefaultDataFile(const std::string& relative) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::exists(relative, error)) return relative;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    const fs::path installed =
        exe.parent_path().parent_path() / "share" / "lcio" / fs::path(relative).filename();
    if (fs::exists(installed, error)) return installed.string();
  }
  return std::string(LCIO_SOURCE_DIR) + "/" + relative;
}

std::string HelpText(const std::string& program, const std::string& usage,
                     const std::string& about) {
  std::string text = absl::StrCat("usage: ", program, " ", usage, "\n");
  if (!about.empty()) absl::StrAppend(&text, about, "\n");
  std::map<std::string, const absl::CommandLineFlag*> own;
  for (const auto& [name, flag] : absl::GetAllFlags())
    if (!IsAbseilFlag(*flag)) own.emplace(std::string(name), flag);
  absl::StrAppend(&text, "\nflags:\n");
  for (const auto& [name, flag] : own) {
    const std::string value = flag->DefaultValue();
    absl::StrAppend(&text, "  --", name, "  (default: ", value.empty() ? "\"\"" : value, ")\n");
    for (absl::string_view line : absl::StrSplit(flag->Help(), '\n'))
      absl::StrAppend(&text, "      ", line, "\n");
  }
  absl::StrAppend(&text, "  --help     print this help and exit\n",
                  "  --version  print the version (", Version(), ") and exit\n");
  return text;
}

namespace {

// Checks command-line words (argv, or a flag file's lines) before Abseil
// parses them: Abseil exits 1 on an unknown flag, a value its type cannot
// hold or a flag file it cannot read, where every usage error here exits 2.
class ArgumentCheck {
 public:
  ArgumentCheck(std::string program, std::string usage, std::string about)
      : program_(std::move(program)), usage_(std::move(usage)), about_(std::move(about)) {}

  // `in_file`: the words are a flag file's lines (one whole flag each).
  void Check(const std::vector<std::string>& args, const std::string& in_file, int depth) const {
    for (size_t i = 0; i < args.size(); ++i) {
      const absl::string_view arg = args[i];
      if (arg == "--") break;
      const std::string name = FlagName(arg);
      if (name.empty()) {
        if (!in_file.empty())
          Fail(absl::StrCat("flag file ", in_file, ": '", arg.substr(0, 64),
                            "' is not a flag (one --name=value a line)"));
        continue;
      }
      if (name == "help" || name == "h" || name == "helpshort" || name == "?") {
        std::fputs(HelpText(program_, usage_, about_).c_str(), stdout);
        std::exit(0);
      }
      if (name == "version") {
        std::printf("%s %s\n", program_.c_str(), LCIO_VERSION);
        std::exit(0);
      }
      if (!Known(name)) {
        std::fprintf(stderr, "%s: unknown flag --%s%s; run '%s --help' for the flags\n",
                     program_.c_str(), name.substr(0, 64).c_str(),
                     in_file.empty() ? "" : absl::StrCat(" in flag file ", in_file).c_str(),
                     program_.c_str());
        std::exit(2);
      }
      const size_t equals = arg.find('=');
      if (name == "flagfile") {
        if (equals == absl::string_view::npos && i + 1 >= args.size())
          FailFlag(name, "needs a value");
        const std::string files(equals == absl::string_view::npos ? absl::string_view(args[++i])
                                                                  : arg.substr(equals + 1));
        for (absl::string_view file : absl::StrSplit(files, ',', absl::SkipEmpty()))
          CheckFile(std::string(file), depth + 1);
        continue;
      }
      // A value the flag's type cannot hold is a usage error too. Parsed
      // here only to check: Abseil's parse sets it again.
      if (name == "fromenv" || name == "tryfromenv" || name == "undefok") continue;
      absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
      if (flag == nullptr && equals != absl::string_view::npos)
        FailFlag(name, "a negated bool flag takes no value");  // --noexplain=x
      Given().insert(flag != nullptr ? name : name.substr(2));
      if (flag == nullptr) continue;
      const bool separate = equals == absl::string_view::npos && !flag->IsOfType<bool>();
      if (separate && (!in_file.empty() || i + 1 >= args.size()))
        FailFlag(name, in_file.empty() ? "needs a value"
                                       : absl::StrCat("needs a value in flag file ", in_file,
                                                      " (--name=value, one flag a line)"));
      if (equals != absl::string_view::npos || separate) {
        const absl::string_view value =
            separate ? absl::string_view(args[i + 1]) : arg.substr(equals + 1);
        std::string error;
        if (!flag->ParseFrom(value, &error)) {
          std::fprintf(stderr, "%s: --%s=%s: %s; run '%s --help' for the flags\n", program_.c_str(),
                       name.substr(0, 64).c_str(), std::string(value.substr(0, 64)).c_str(),
                       error.substr(0, 200).c_str(), program_.c_str());
          std::exit(2);
        }
      }
      if (separate) ++i;  // the value, even one that starts with '-'
    }
  }

 private:
  // A flag file as Abseil reads it: one flag a line, blank lines and lines
  // starting with '#' skipped, surrounding whitespace trimmed.
  void CheckFile(const std::string& file, int depth) const {
    if (depth > kMaxFlagFileDepth)
      FailFlag("flagfile", absl::StrCat(file.substr(0, 200), ": flag files nested deeper than ",
                                        kMaxFlagFileDepth));
    std::ifstream in(file);
    if (!in) FailFlag("flagfile", absl::StrCat("cannot read ", file.substr(0, 200)));
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
      const absl::string_view trimmed = absl::StripAsciiWhitespace(line);
      if (trimmed.empty() || trimmed[0] == '#') continue;
      lines.emplace_back(trimmed);
    }
    Check(lines, file.substr(0, 200), depth);
  }
  [[noreturn]] void FailFlag(const std::string& name, const std::string& why) const {
    std::fprintf(stderr, "%s: --%s: %s; run '%s --help' for the flags\n", program_.c_str(),
                 name.substr(0, 64).c_str(), why.c_str(), program_.c_str());
    std::exit(2);
  }
  [[noreturn]] void Fail(const std::string& why) const {
    std::fprintf(stderr, "%s: %s; run '%s --help' for the flags\n", program_.c_str(), why.c_str(),
                 program_.c_str());
    std::exit(2);
  }

  static constexpr int kMaxFlagFileDepth = 8;
  const std::string program_, usage_, about_;
};

// A failed allocation anywhere (a setting that asks for more memory than the
// machine has) ends the run with one line and exit 1, not "terminate called
// ..." and a core dump. Anything else uncaught still aborts.
std::string g_program = "lcio";
std::terminate_handler g_previous_terminate = nullptr;
[[noreturn]] void OnTerminate() {
  if (std::exception_ptr current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr,
                   "%s: out of memory: the settings ask for more memory than this machine can "
                   "give (a buffer, batch, network or data size)\n",
                   g_program.c_str());
      std::_Exit(1);
    } catch (...) {
    }
  }
  std::abort();
}

}  // namespace

std::vector<char*> ParseCommandLine(int argc, char** argv, const std::string& usage,
                                    const std::string& about, int max_positional) {
  const std::string program = ProgramName(argc > 0 ? argv[0] : nullptr);
  g_program = program;
  g_previous_terminate = std::set_terminate(OnTerminate);
  absl::SetProgramUsageMessage(absl::StrCat(program, " ", usage));
  absl::FlagsUsageConfig config;
  config.version_string = [program] { return absl::StrCat(program, " ", LCIO_VERSION, "\n"); };
  absl::SetFlagsUsageConfig(config);
  ArgumentCheck(program, usage, about)
      .Check(std::vector<std::string>(argv + std::min(argc, 1), argv + argc), "", 0);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (static_cast<int>(positional.size()) - 1 > max_positional) {
    const std::string extra = std::string(positional[1 + max_positional]).substr(0, 64);
    const bool bool_word = extra == "true" || extra == "false" || extra == "yes" || extra == "no" ||
                           extra == "0" || extra == "1";
    std::fprintf(stderr, "%s: unexpected argument '%s'%s; run '%s --help' for the usage\n",
                 program.c_str(), extra.c_str(),
                 bool_word ? " (a bool flag takes its value after '=': --flag=false)" : "",
                 program.c_str());
    std::exit(2);
  }
  return positional;
}

bool GivenOnCommandLine(const std::string& name) { return Given().count(name) > 0; }

void AbortOnUncaughtExceptions() {
  if (g_previous_terminate != nullptr) std::set_terminate(g_previous_terminate);
}

int ExitStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
      return 2;
    default:
      return 1;
  }
}

}  // namespace lcio::cli
