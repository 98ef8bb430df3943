// Values from outside the process (flags, files, artifacts) inside error and
// log messages: cut so that one cannot flood a message.
#pragma once

#include <string>
#include <string_view>

namespace lcio::data {

// `text` itself when at most `max_bytes` long, else its first bytes up to a
// UTF-8 character boundary followed by "...(N bytes)".
std::string Shorten(std::string_view text, size_t max_bytes = 128);

}  // namespace lcio::data
