// Values from outside the process (flags, files, artifacts) inside error and
// log messages: cut so that one cannot flood a message.
#pragma once

#include <string>
#include <string_view>

namespace lcio::data {

// `text` for a message, at most `max_bytes` long before the "...(N bytes)"
// that marks a cut (made on a character boundary; N is text's length).
// Control characters and bytes that are not UTF-8 become \xNN: a file name
// or a value from a file cannot send a terminal escape sequence or make the
// message invalid UTF-8.
std::string Shorten(std::string_view text, size_t max_bytes = 128);

// A number for a message: the shortest text that reads back as exactly
// `value` (absl::StrCat keeps 6 digits, so 1.0000001 would print as 1 and
// seem to meet the rule it broke); nan, inf and -inf as such.
std::string ExactNumber(double value);

}  // namespace lcio::data
