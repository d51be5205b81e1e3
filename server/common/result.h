#pragma once

// A small value-or-error type for code paths that must not throw (the epmd codec, the
// registry, the sessions). std::expected is C++23 and Boost 1.74's outcome is heavier than
// what we need, so this is the minimum: construct from a value or an error, test, read.

#include <cassert>
#include <utility>
#include <variant>

namespace epmdx {

template <class E>
struct Err {
  E error;
};

template <class E>
Err<E> makeErr(E e) {
  return Err<E>{std::move(e)};
}

template <class T, class E>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Err<E> err) : v_(std::in_place_index<1>, std::move(err.error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const {
    assert(ok());
    return std::get<0>(v_);
  }
  const E& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, E> v_;
};

}  // namespace epmdx
