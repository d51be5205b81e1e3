#pragma once

// One line per event that matters, with the context to act on (peer, request, reason).
// Plain `key=value` text by default, one JSON object per line with --log-format=json, and
// syslog when running as a daemon (as OTP's epmd does). Thread-safe.

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace epmdx::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };
enum class Format { Text, Json };
enum class Sink { Stderr, Syslog };

struct Field {
  std::string_view key;
  std::string value;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  template <class N, class = std::enable_if_t<std::is_arithmetic_v<N>>>
  Field(std::string_view k, N n) : key(k), value(std::to_string(n)) {}
};

/// Configures the process-wide logger. Call before any thread starts logging.
void configure(Level min_level, Format format, Sink sink);

/// True if messages at `level` are written; lets hot paths skip building fields.
bool enabled(Level level);

void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::Debug)) {
    write(Level::Debug, m, f);
  }
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Error, m, f);
}

/// Escapes arbitrary bytes for a log line: printable ASCII stays, the rest becomes \xNN
/// (names are peer-controlled and may hold anything).
std::string printable(std::string_view bytes);

}  // namespace epmdx::log
