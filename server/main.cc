// epmdx: a drop-in replacement for Erlang's epmd with an admin control plane.
// main() parses the command line, runs OTP's interactive commands, or starts the daemon.

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "server/app/app.h"
#include "server/app/daemon.h"
#include "server/app/options.h"
#include "server/common/file_limit.h"
#include "server/common/log.h"

#ifndef EPMDX_VERSION
#define EPMDX_VERSION "0.0.0"
#endif

namespace {

const char* getenvFn(const char* name) {
  return std::getenv(name);
}

}  // namespace

int main(int argc, char** argv) {
  using epmdx::app::ParseResult;
  const std::vector<std::string> args(argv + 1, argv + argc);
  const ParseResult parsed = epmdx::app::parseArgs(args, getenvFn);
  switch (parsed.kind) {
    case ParseResult::Kind::Usage:
      std::fputs(epmdx::app::usageText().c_str(), stderr);
      return 1;
    case ParseResult::Kind::HelpGnu:
      std::fputs(epmdx::app::usageText().c_str(), stdout);
      return 0;
    case ParseResult::Kind::Version:
      std::printf("epmdx %s\n", EPMDX_VERSION);
      return 0;
    case ParseResult::Kind::Error:
      std::fprintf(stderr, "epmdx: %s\n", parsed.error.c_str());
      return 1;
    case ParseResult::Kind::Run:
      break;
  }
  const epmdx::app::Options& o = parsed.options;
  if (o.command) {
    return epmdx::epmd::runClient(*o.command, o.port, o.stop_name);
  }

  namespace log = epmdx::log;
  if (o.daemon) {
    epmdx::app::daemonize();
  }
  log::configure(o.debug > 0 ? log::Level::Debug : log::Level::Info,
                 o.log_format == "json" ? log::Format::Json : log::Format::Text,
                 o.daemon ? log::Sink::Syslog : log::Sink::Stderr);
  std::signal(SIGPIPE, SIG_IGN);
  const unsigned long files = epmdx::raiseFileLimit();
  log::debug("open file limit", {{"limit", files}});

  int code = 0;
  try {
    // Not destroyed: at exit the process ends without waiting for idle HTTP keep-alive
    // connections to time out (the daemon exits within a second of SIGTERM). Everything
    // that matters (registrations, watch streams, listeners) was closed by run().
    auto* app = new epmdx::app::App(o);
    if (auto exit_now = app->bind()) {
      std::_Exit(*exit_now);
    }
    epmdx::app::notifySystemdReady();
    code = app->run(true);
  } catch (const std::exception& e) {
    log::error("fatal", {{"error", e.what()}});
    return 1;
  }
  log::info("exited", {{"status", code}});
  std::fflush(nullptr);
  std::_Exit(code);
}
