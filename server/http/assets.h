#pragma once

// The web page and the OpenAPI document, compiled into the binary (cmake/embed.cmake).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace epmdx::http {

/// {path relative to the repository, bytes}: "web/index.html", "docs/openapi.json", ...
const std::vector<std::pair<std::string_view, std::string_view>>& embeddedAssets();

}  // namespace epmdx::http
