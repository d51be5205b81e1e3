#pragma once

#include <google/protobuf/message.h>

#include <string>

#include "epmdx/v1/registry.pb.h"

namespace epmdx::api {

/// Canonical Protobuf JSON (lowerCamelCase names, 64-bit integers as strings), one line.
std::string toJson(const google::protobuf::Message& message);

/// An ErrorBody as JSON.
std::string errorJson(int http_code, const std::string& status, const std::string& message,
                      uint64_t oldest_revision = 0, uint64_t current_revision = 0);

}  // namespace epmdx::api
