#include "tests/support/sse_client.h"

#include <httplib.h>

namespace epmdx::testing {

int readSse(uint16_t port, const std::string& path,
            const std::vector<std::pair<std::string, std::string>>& headers,
            const std::function<bool(const SseEvent&)>& on_event) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(std::chrono::seconds(20));
  httplib::Headers h;
  for (const auto& [k, v] : headers) {
    h.emplace(k, v);
  }
  std::string buffer;
  SseEvent current;
  int status = 0;
  auto res = cli.Get(
      path, h,
      [&status](const httplib::Response& r) {
        status = r.status;
        return true;
      },
      [&](const char* data, size_t len) {
        buffer.append(data, len);
        size_t nl;
        while ((nl = buffer.find('\n')) != std::string::npos) {
          const std::string line = buffer.substr(0, nl);
          buffer.erase(0, nl + 1);
          if (line.empty()) {
            if (!current.event.empty() || !current.data.empty()) {
              if (!on_event(current)) {
                return false;
              }
            }
            current = {};
          } else if (line.rfind("event: ", 0) == 0) {
            current.event = line.substr(7);
          } else if (line.rfind("id: ", 0) == 0) {
            current.id = line.substr(4);
          } else if (line.rfind("data: ", 0) == 0) {
            current.data += line.substr(6);
          }
        }
        return true;
      });
  if (res && status == 0) {
    status = res->status;
  }
  return status;
}

}  // namespace epmdx::testing
