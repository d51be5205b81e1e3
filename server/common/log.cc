#include "server/common/log.h"

#include <syslog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace epmdx::log {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::Info)};
Format g_format = Format::Text;
Sink g_sink = Sink::Stderr;
std::mutex g_mu;  // Serialises whole lines on stderr.

const char* levelName(Level l) {
  switch (l) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warn:
      return "warn";
    case Level::Error:
      return "error";
  }
  return "info";
}

std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

bool needsQuotes(std::string_view v) {
  if (v.empty()) {
    return true;
  }
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=') {
      return true;
    }
  }
  return false;
}

}  // namespace

void configure(Level min_level, Format format, Sink sink) {
  g_min_level = static_cast<int>(min_level);
  g_format = format;
  g_sink = sink;
  if (sink == Sink::Syslog) {
    openlog("epmdx", LOG_PID, LOG_DAEMON);
  }
}

bool enabled(Level level) {
  return static_cast<int>(level) >= g_min_level.load();
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(level)) {
    return;
  }
  std::string line;
  line.reserve(128);
  if (g_format == Format::Json) {
    line += "{\"ts\":";
    appendJsonString(line, timestamp());
    line += ",\"level\":";
    appendJsonString(line, levelName(level));
    line += ",\"msg\":";
    appendJsonString(line, message);
    for (const auto& f : fields) {
      line += ',';
      appendJsonString(line, f.key);
      line += ':';
      appendJsonString(line, f.value);
    }
    line += '}';
  } else {
    if (g_sink == Sink::Stderr) {
      line += timestamp();
      line += ' ';
      line += levelName(level);
      line += ' ';
    }
    line += message;
    for (const auto& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      if (needsQuotes(f.value)) {
        appendJsonString(line, f.value);
      } else {
        line += f.value;
      }
    }
  }
  if (g_sink == Sink::Syslog) {
    const int prio = level == Level::Error  ? LOG_ERR
                     : level == Level::Warn ? LOG_WARNING
                     : level == Level::Info ? LOG_INFO
                                            : LOG_DEBUG;
    syslog(prio, "%s", line.c_str());
    return;
  }
  line += '\n';
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

std::string printable(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else if (c >= 0x80) {
      out += static_cast<char>(c);  // UTF-8 passes through; JSON/quotes handle it.
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

}  // namespace epmdx::log
