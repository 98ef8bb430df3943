// Values from outside the process (flags, files, artifacts) inside error and
// log messages: cut so that one cannot flood a message.
#pragma once

#include <string>
#include <string_view>

namespace lcio::data {

// `text` itself when at most `max_bytes` long, else its first bytes up to a
// UTF-8 character boundary followed by "...(N bytes)".
std::string Shorten(std::string_view text, size_t max_bytes = 128);

// A number for a message: the shortest text that reads back as exactly
// `value` (absl::StrCat keeps 6 digits, so 1.0000001 would print as 1 and
// seem to meet the rule it broke); nan, inf and -inf as such.
std::string ExactNumber(double value);

}  // namespace lcio::data
