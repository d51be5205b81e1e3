#pragma once

#include <chrono>
#include <cstdint>

namespace epmdx::registry {

/// The registry's only view of time, injected so tests are deterministic.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Wall-clock time, Unix epoch nanoseconds (event and registration timestamps).
  virtual int64_t nowNanos() const = 0;
  /// Wall-clock seconds, as OTP's time(NULL): the seed of new creation counters.
  virtual uint32_t nowSeconds() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t nowNanos() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  uint32_t nowSeconds() const override { return static_cast<uint32_t>(nowNanos() / 1000000000); }
};

}  // namespace epmdx::registry
