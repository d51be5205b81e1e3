#pragma once

// The canonical Protobuf JSON of the epmdx.v1 messages: what REST serves, what SSE frames
// carry and what `epmdxctl -o json` prints, from one function so they cannot differ.

#include <google/protobuf/message.h>

#include <string>

#include "epmdx/v1/registry.pb.h"
#include "server/api/status.h"

namespace epmdx::api {

/// Canonical Protobuf JSON (lowerCamelCase names, 64-bit integers as strings), one line.
std::string toJson(const google::protobuf::Message& message);

/// The ErrorBody of `error` as JSON; its code is `http_status`, else httpStatus(error.code).
std::string errorJson(const Error& error, int http_status = 0);

}  // namespace epmdx::api
