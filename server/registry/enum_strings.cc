// The snake_case names of the registry's enums: metric labels, log fields and the REST
// API's strings.

#include "server/registry/registry.h"

namespace epmdx::registry {

std::string_view toString(UnregisterReason reason) {
  switch (reason) {
    case UnregisterReason::Unspecified:
      return "unspecified";
    case UnregisterReason::ConnectionClosed:
      return "connection_closed";
    case UnregisterReason::Stopped:
      return "stopped";
    case UnregisterReason::Killed:
      return "killed";
    case UnregisterReason::Evicted:
      return "evicted";
    case UnregisterReason::Shutdown:
      return "shutdown";
    case UnregisterReason::TakenOver:
      return "taken_over";
    case UnregisterReason::AutoEvicted:
      return "auto_evicted";
    case UnregisterReason::SourceGone:
      return "source_gone";
    case UnregisterReason::SourceResynced:
      return "source_resynced";
  }
  return "unspecified";
}

std::string_view toString(HealthStatus status) {
  switch (status) {
    case HealthStatus::Unknown:
      return "unknown";
    case HealthStatus::Alive:
      return "alive";
    case HealthStatus::Unresponsive:
      return "unresponsive";
  }
  return "unknown";
}

std::string_view toString(EventType type) {
  switch (type) {
    case EventType::Registered:
      return "registered";
    case EventType::Unregistered:
      return "unregistered";
    case EventType::Held:
      return "held";
    case EventType::HoldLifted:
      return "hold_lifted";
    case EventType::HoldExpired:
      return "hold_expired";
    case EventType::HealthChanged:
      return "health_changed";
    case EventType::HolderChanged:
      return "holder_changed";
  }
  return "unknown";
}

std::string_view toString(RegisterError e) {
  switch (e) {
    case RegisterError::NameTooLong:
      return "name_too_long";
    case RegisterError::InvalidNameEncoding:
      return "invalid_name_encoding";
    case RegisterError::ExtraTooLong:
      return "extra_too_long";
    case RegisterError::NameInUse:
      return "name_in_use";
    case RegisterError::TooManyNodes:
      return "too_many_nodes";
    case RegisterError::NameHeld:
      return "name_held";
  }
  return "unknown";
}

}  // namespace epmdx::registry
