#pragma once

// The wire helpers (tests/wire/wire.h) under the tests' namespace: real TCP on loopback,
// every wait bounded by a deadline.

#include "tests/wire/wire.h"

namespace epmdx::testing {

using wire::alive2Body;
using wire::bytes;
using wire::connectTo;
using wire::frame;
using wire::freePort;
using wire::Outcome;
using wire::readN;
using wire::readUntilClose;
using wire::sendAll;
using wire::setLingerZero;
using wire::waitForPort;

}  // namespace epmdx::testing
