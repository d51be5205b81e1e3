#pragma once

// Boost.Beast through one header, after Asio's (see server/common/asio.h).

#include "server/common/asio.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace epmdx::http {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
}  // namespace epmdx::http
