#pragma once

// The node an in-process test registers: what a real OTP 23+ node sends in its ALIVE2
// (hidden-node type 77, distribution versions 6..5), so every test starts from one shape.

#include <cstdint>
#include <string>
#include <utility>

#include "server/registry/types.h"

namespace epmdx {

inline registry::NodeInfo testNode(std::string name, uint16_t port) {
  registry::NodeInfo n;
  n.name = std::move(name);
  n.port = port;
  n.node_type = 77;
  n.highest_version = 6;
  n.lowest_version = 5;
  return n;
}

}  // namespace epmdx
