#include "cli_help.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
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

std::vector<char*> ParseCommandLine(int argc, char** argv, const std::string& usage,
                                    const std::string& about, int max_positional) {
  const std::string program = ProgramName(argc > 0 ? argv[0] : nullptr);
  absl::SetProgramUsageMessage(absl::StrCat(program, " ", usage));
  absl::FlagsUsageConfig config;
  config.version_string = [program] { return absl::StrCat(program, " ", LCIO_VERSION, "\n"); };
  absl::SetFlagsUsageConfig(config);
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") break;
    const std::string name = FlagName(arg);
    if (name.empty()) continue;
    if (name == "help" || name == "h" || name == "helpshort" || name == "?") {
      std::fputs(HelpText(program, usage, about).c_str(), stdout);
      std::exit(0);
    }
    if (name == "version") {
      std::printf("%s %s\n", program.c_str(), LCIO_VERSION);
      std::exit(0);
    }
    if (!Known(name)) {
      std::fprintf(stderr, "%s: unknown flag --%s; run '%s --help' for the flags\n",
                   program.c_str(), name.substr(0, 64).c_str(), program.c_str());
      std::exit(2);
    }
    // A value the flag's type cannot hold is a usage error too (Abseil's own
    // parse would exit 1 for it). Parsed here only to check: Abseil's parse
    // below sets it again.
    const bool special =
        name == "flagfile" || name == "fromenv" || name == "tryfromenv" || name == "undefok";
    const size_t equals = arg.find('=');
    auto usage_error = [&](const std::string& why) {
      std::fprintf(stderr, "%s: --%s: %s; run '%s --help' for the flags\n", program.c_str(),
                   name.substr(0, 64).c_str(), why.c_str(), program.c_str());
      std::exit(2);
    };
    absl::CommandLineFlag* flag = special ? nullptr : absl::FindCommandLineFlag(name);
    if (!special && flag == nullptr && equals != absl::string_view::npos)
      usage_error("a negated bool flag takes no value");  // --noexplain=x
    if (flag != nullptr) {
      const bool separate = equals == absl::string_view::npos && !flag->IsOfType<bool>();
      if (separate && i + 1 >= argc) usage_error("needs a value");
      if (equals != absl::string_view::npos || separate) {
        const absl::string_view value =
            separate ? absl::string_view(argv[i + 1]) : arg.substr(equals + 1);
        std::string error;
        if (!flag->ParseFrom(value, &error)) {
          std::fprintf(stderr, "%s: --%s=%s: %s; run '%s --help' for the flags\n", program.c_str(),
                       name.substr(0, 64).c_str(), std::string(value.substr(0, 64)).c_str(),
                       error.substr(0, 200).c_str(), program.c_str());
          std::exit(2);
        }
      }
      if (separate) ++i;  // the value, even one that starts with '-'
    }
  }
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
