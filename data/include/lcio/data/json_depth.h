// The nesting limit every lcio JSON reader applies before parsing.
//
// nlohmann's parser is iterative, but copying, printing and comparing a
// parsed value recurse once per level: 100000 nested '[' overflow the stack.
// Refusing deep text before it is parsed bounds every later recursion.
// (The nlohmann-based ParseJson lives in json_parse.h, so that this header
// stays free of nlohmann.)
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace lcio::data {

// Deepest nesting of arrays and objects accepted anywhere; lcio's own files
// nest at most about 8 levels.
inline constexpr int kMaxJsonDepth = 64;

// OK when no array or object in `text` is nested more than `max_depth`
// levels deep (strings are skipped, so brackets inside them do not count);
// otherwise InvalidArgument naming `source`, the limit and the byte offset
// where it was passed. Malformed text passes: the parser reports that.
absl::Status CheckJsonDepth(std::string_view text, std::string_view source,
                            int max_depth = kMaxJsonDepth);

}  // namespace lcio::data
