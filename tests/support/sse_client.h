#pragma once

// A server-sent-events client over a real HTTP connection (cpp-httplib), for tests.

#include <functional>
#include <string>
#include <vector>

namespace epmdx::testing {

struct SseEvent {
  std::string event;
  std::string id;
  std::string data;
};

/// GETs `path` on 127.0.0.1:`port` and calls `on_event` for each event until it returns
/// false or the server ends the stream. Returns the HTTP status (0 if no response).
int readSse(uint16_t port, const std::string& path,
            const std::vector<std::pair<std::string, std::string>>& headers,
            const std::function<bool(const SseEvent&)>& on_event);

}  // namespace epmdx::testing
