#include "server/fleet/relay_options.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <fstream>

#include "server/common/host_port.h"

#ifndef EPMDX_VERSION
#define EPMDX_VERSION "0.0.0"
#endif

namespace epmdx::fleet {

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  uint64_t n = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc() || p == text.data() || n > 7ull * 24 * 3600 * 1000) {
    return std::nullopt;
  }
  const std::string_view unit(p, static_cast<size_t>(end - p));
  if (unit == "ms") {
    return std::chrono::milliseconds(n);
  }
  if (unit.empty() || unit == "s") {
    return std::chrono::milliseconds(n * 1000);
  }
  if (unit == "m") {
    return std::chrono::milliseconds(n * 60000);
  }
  return std::nullopt;
}

Result<std::string, std::string> readSourceToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return makeErr("cannot read the source token file " + path);
  }
  std::string line;
  while (std::getline(in, line)) {
    const auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) {
      continue;
    }
    const auto e = line.find_last_not_of(" \t\r");
    return line.substr(b, e - b + 1);
  }
  return makeErr("the source token file " + path + " holds no token");
}

namespace {

CLI::Validator durationValidator() {
  return CLI::Validator(
      [](std::string& s) {
        return parseDuration(s) ? std::string() : "a duration such as 500ms, 5s or 2m";
      },
      "DURATION");
}

CLI::Validator hostPortValidator() {
  return CLI::Validator(
      [](std::string& s) { return parseHostPort(s) ? std::string() : "HOST:PORT expected"; },
      "HOST:PORT");
}

void addSourceOptions(CLI::App& app, RelayOptions& o, std::vector<std::string>& dns,
                      std::string& dns_interval, std::string& gone_grace) {
  app.add_option("--source", o.fleet.sources, "a source: an epmdx's gRPC address (repeatable)")
      ->check(hostPortValidator())
      ->envname("EPMDX_FLEET_SOURCES")
      ->delimiter(',');
  app.add_option("--sources-dns", dns,
                 "NAME:PORT: every A/AAAA answer of NAME is a source at PORT (a headless "
                 "Service); _service._proto.NAME: SRV (repeatable)")
      ->envname("EPMDX_FLEET_SOURCES_DNS")
      ->delimiter(',');
  app.add_option("--dns-server", o.fleet.dns_server,
                 "HOST:PORT of the resolver to ask (default: /etc/resolv.conf's)")
      ->envname("EPMDX_FLEET_DNS_SERVER");
  app.add_option("--dns-interval", dns_interval, "how often DNS is asked again (default 5s)")
      ->check(durationValidator());
  app.add_option("--sources-file", o.fleet.sources_file,
                 "a file of sources, one HOST:PORT per line; re-read on SIGHUP")
      ->envname("EPMDX_FLEET_SOURCES_FILE");
  app.add_option("--source-token-file", o.source_token_file,
                 "the bearer token the relay presents to its sources (read scope; evict to "
                 "route evictions); re-read on SIGHUP")
      ->envname("EPMDX_FLEET_SOURCE_TOKEN_FILE");
  app.add_flag("--source-tls", o.fleet.stream.tls.enabled, "reach the sources over TLS");
  app.add_option("--source-ca", o.fleet.stream.tls.ca_file, "PEM roots for the sources' TLS");
  app.add_option("--source-cert", o.fleet.stream.tls.cert_file,
                 "the relay's client certificate (mutual TLS)");
  app.add_option("--source-key", o.fleet.stream.tls.key_file, "its key");
  app.add_option("--source-server-name", o.fleet.stream.tls.server_name,
                 "the name checked in the sources' certificates (default: the address's host)");
  app.add_option("--gone-grace", gone_grace,
                 "how long a source discovery dropped keeps its nodes, stale (default 60s)")
      ->check(durationValidator());
}

void addApiOptions(CLI::App& app, RelayOptions& o) {
  app.add_option("--grpc-listen", o.grpc_listen, "the relay's gRPC API (default 127.0.0.1:4372)")
      ->envname("EPMDX_FLEET_GRPC_LISTEN");
  app.add_option("--http-listen", o.http_listen,
                 "the relay's REST/SSE API and page (default 127.0.0.1:4373)")
      ->envname("EPMDX_FLEET_HTTP_LISTEN");
  app.add_option("--http-allowed-hosts", o.http_allowed_hosts,
                 "Host header names the HTTP port answers (as epmdx)");
  app.add_option("--tokens-file", o.tokens_file,
                 "the relay's own bearer tokens, \"TOKEN SCOPE...\" lines (as epmdx)")
      ->envname("EPMDX_FLEET_TOKENS_FILE");
  app.add_option("--token-out", o.token_out, "where a generated admin token is written")
      ->envname("EPMDX_TOKEN_FILE");  // As the daemon and epmdxctl: one image, one variable.
  app.add_option("--grpc-tls-cert", o.grpc_tls_cert, "serve gRPC over TLS (as epmdx)");
  app.add_option("--grpc-tls-key", o.grpc_tls_key, "its key");
  app.add_option("--grpc-tls-client-ca", o.grpc_tls_client_ca, "require client certificates");
  app.add_option("--http-anonymous-read", o.http_anonymous_read,
                 "HTTP reads without a token (default true)");
  app.add_option("--web-root", o.web_root, "serve the page from DIR");
  app.add_option("--log-format", o.log_format, "text|json")->check(CLI::IsMember({"text", "json"}));
  app.add_option("--max-watchers", o.max_watchers, "watch streams per protocol (default 1024)");
  app.add_option("--history-size", o.history_size, "changes kept to resume from (default 65536)");
  app.add_flag("-d,--debug", o.debug, "debug log lines");
}

}  // namespace

std::variant<RelayOptions, int> parseRelayOptions(int argc, char** argv) {
  RelayOptions o;
  CLI::App app{
      "epmdx-fleet: one API, watch and page over every epmdx of a fleet.\n"
      "It follows each source's gRPC API and serves the merged view with each node's source."};
  app.set_version_flag("--version", std::string("epmdx-fleet ") + EPMDX_VERSION);
  std::vector<std::string> dns;
  std::string dns_interval;
  std::string gone_grace;
  addSourceOptions(app, o, dns, dns_interval, gone_grace);
  addApiOptions(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (const auto& d : dns) {
    auto q = parseDnsQuery(d);
    if (!q.ok()) {
      std::fprintf(stderr, "epmdx-fleet: --sources-dns=%s: %s\n", d.c_str(), q.error().c_str());
      return 2;
    }
    o.fleet.dns.push_back(q.value());
  }
  if (!dns_interval.empty()) {
    o.fleet.dns_interval = *parseDuration(dns_interval);
  }
  if (!gone_grace.empty()) {
    o.fleet.gone_grace = *parseDuration(gone_grace);
  }
  if (o.fleet.sources.empty() && o.fleet.dns.empty() && o.fleet.sources_file.empty()) {
    std::fprintf(stderr,
                 "epmdx-fleet: no sources: give --source=HOST:PORT, --sources-dns=NAME:PORT or "
                 "--sources-file=PATH\n");
    return 2;
  }
  return o;
}

}  // namespace epmdx::fleet
