// Command-line parsing shared by every lcio binary: --help lists the
// binary's own flags (not abseil's) with their help text and defaults,
// --version prints the version, and an unknown flag is a usage error that
// points to --help.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace lcio::cli {

// The project version (CMake's project(VERSION)).
std::string Version();

// Parses argv with abseil and returns the positional arguments (argv[0]
// first). `usage` is the usage line after the program name, e.g.
// "[flags] ARTIFACT"; `about` what the program does (may span lines).
// Handles --help (-h, -help, --helpshort) and --version itself: prints to
// stdout and exits 0. An unknown flag, a value its type cannot hold, or more
// than `max_positional` positional arguments (`--fixed false` leaves "false"
// behind: a bool flag takes its value after '='): message on stderr, exit 2.
// It also makes a failed allocation (std::bad_alloc uncaught) end the run
// with one line, "out of memory: ...", and exit 1 instead of an abort.
std::vector<char*> ParseCommandLine(int argc, char** argv, const std::string& usage,
                                    const std::string& about, int max_positional = 0);
// Whether the command line that ParseCommandLine read (flag files included)
// names flag `name`, whatever its value (--noexplain names "explain").
bool GivenOnCommandLine(const std::string& name);
// Restores the runtime's own handling of uncaught exceptions (an abort, with
// its core dump), for a program whose failures are not a setting's (the
// server: its stderr is JSON lines, and a crash must leave its evidence).
void AbortOnUncaughtExceptions();

// A shipped data file by its source-tree path ("policy/default_policy.pt",
// "data/M4A1.json"): under the working directory; else, for an installed
// binary (BIN/lcio-x), PREFIX/share/lcio/<file name>; else in the source tree
// the binary was built from. The first that exists, else the source-tree
// path (so that the error names a path).
std::string DefaultDataFile(const std::string& relative);

// The exit status of a tool that ended with `status`: 0; 2 when what was
// asked is refused as invalid or missing (INVALID_ARGUMENT, NOT_FOUND: a
// flag, a configuration, an input file); 1 when the run could not do it (a
// disk, an allocation, a target no setting reaches, ...).
// Shared by lcio-train, lcio-eval, lcio-join, lcio-ope and lcio-calibrate.
int ExitStatus(const absl::Status& status);

// The --help text (what ParseCommandLine prints).
std::string HelpText(const std::string& program, const std::string& usage,
                     const std::string& about);

}  // namespace lcio::cli
