#pragma once

// YAML for `-o yaml`: the same fields and values as the canonical JSON the REST API prints
// (server/api/json.h), in the message's field order. A small block-style emitter over that
// JSON, so the two outputs cannot drift apart; no YAML library needed for writing.

#include <google/protobuf/message.h>

#include <string>

namespace epmdx::ctl {

/// One YAML document (no leading "---"), ending in a newline.
std::string toYaml(const google::protobuf::Message& message);

/// A YAML scalar for `text`: plain when it cannot be read as anything but that string,
/// else double-quoted with escapes. Exposed for tests.
std::string yamlString(const std::string& text);

}  // namespace epmdx::ctl
