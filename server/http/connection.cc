#include "server/http/connection.h"

#include "server/common/endpoint_text.h"

namespace epmdx::http {

Connection::Connection(tcp::socket socket, ConnectionHost& host)
    : stream_(std::move(socket)), host_(host) {
  beast::error_code ec;
  const auto ep = stream_.socket().remote_endpoint(ec);
  peer_ = ec ? "unknown" : formatEndpoint(ep);
  // Replies are small and answered at once: no Nagle delay behind a delayed ACK.
  stream_.socket().set_option(tcp::no_delay(true), ec);
}

Connection::~Connection() {
  if (!handed_over_) {
    host_.connectionClosed(listed_);
  }
}

void Connection::start() {
  listed_ = host_.connectionOpened(this);
  readHeader();
}

void Connection::shed() {
  handed_over_ = true;  // Unlisted by the server already.
  beast::error_code ignored;
  stream_.socket().close(ignored);
}

void Connection::readHeader() {
  const auto& limits = host_.limits();
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(limits.header_bytes));
  parser_->body_limit(limits.body_bytes);
  stream_.expires_after(limits.idle);
  idle_ = buffer_.size() == 0;  // Pipelined bytes already here: not idle.
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->onHeader(ec); });
}

void Connection::onHeader(beast::error_code ec) {
  idle_ = false;
  if (ec == bhttp::error::body_limit) {
    return onBody(ec);  // A Content-Length over the limit is refused from the header: 413.
  }
  if (ec == bhttp::error::header_limit) {
    reject(HttpError::HeadersTooLarge,
           "request headers are larger than " + sizeText(host_.limits().header_bytes));
    return;
  }
  if (ec) {
    if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout &&
        ec != asio::error::operation_aborted && ec != asio::error::connection_reset) {
      reject(HttpError::BadRequest, "malformed request: " + ec.message());
      return;
    }
    stream_.socket().close(ec);
    return;
  }
  const auto& fields = parser_->get().base();
  size_t count = 0;
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    ++count;
  }
  if (count > host_.limits().header_count) {
    reject(HttpError::HeadersTooLarge,
           "more than " + std::to_string(host_.limits().header_count) + " request headers");
    return;
  }
  // Framing that two parsers could read differently is refused, so nothing behind us (a
  // proxy) and nothing in us can be made to see a different request than the other.
  const auto& req = parser_->get();
  if (req.count(bhttp::field::host) > 1) {
    reject(HttpError::BadRequest, "more than one Host header");
    return;
  }
  if (req.count(bhttp::field::transfer_encoding) > 0) {
    if (!parser_->chunked()) {
      reject(HttpError::BadRequest, "a Transfer-Encoding must end in chunked");
      return;
    }
    if (req.count(bhttp::field::content_length) > 0) {
      reject(HttpError::BadRequest, "Content-Length and Transfer-Encoding together");
      return;
    }
  }
  bhttp::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->onBody(ec); });
}

void Connection::onBody(beast::error_code ec) {
  if (ec == bhttp::error::body_limit) {
    reject(HttpError::BodyTooLarge,
           "request body is larger than " + sizeText(host_.limits().body_bytes));
    return;
  }
  if (ec) {
    if (ec != beast::error::timeout && ec != bhttp::error::end_of_stream &&
        ec != asio::error::operation_aborted && ec != asio::error::connection_reset) {
      reject(HttpError::BadRequest, "malformed request body: " + ec.message());
      return;
    }
    stream_.socket().close(ec);
    return;
  }
  const auto& req = parser_->get();
  HttpRequest r;
  r.method = std::string_view(req.method_string().data(), req.method_string().size());
  r.target = std::string_view(req.target().data(), req.target().size());
  auto field = [&req](bhttp::field f) {
    auto it = req.find(f);
    return it == req.end() ? std::string_view()
                           : std::string_view(it->value().data(), it->value().size());
  };
  r.host = field(bhttp::field::host);
  r.has_host = req.find(bhttp::field::host) != req.end();
  r.authorization = field(bhttp::field::authorization);
  auto last = req.find("Last-Event-ID");
  if (last != req.end()) {
    r.last_event_id = std::string_view(last->value().data(), last->value().size());
  }
  r.body = req.body();
  r.peer = peer_;
  request_ = std::move(r);
  // Nothing more is read from the socket until the answer is written: the parser (and the
  // views into it) stays as it is while a worker may be routing the request.
  host_.route(request_, [self = shared_from_this()](Answer a) { self->answer(std::move(a)); });
}

void Connection::answer(Answer answer) {
  const auto& req = parser_->get();
  if (auto* sse = std::get_if<SseStart>(&answer.result)) {
    handed_over_ = true;
    host_.connectionHandedOver(listed_);  // Counted as a stream from now on.
    host_.startSse(std::move(stream_), std::move(*sse), std::move(answer.initial));
    return;
  }
  auto& res = std::get<HttpResponse>(answer.result);
  const bool sse_body = res.content_type == "text/event-stream";  // A resync: then close.
  send(std::move(res), req.keep_alive() && !sse_body, req.method() == bhttp::verb::head);
}

void Connection::reject(HttpError kind, std::string message) {
  send(errorResponse(kind, std::move(message)), false, false);
}

void Connection::send(HttpResponse res, bool keep_alive, bool head) {
  auto msg = std::make_shared<bhttp::response<bhttp::string_body>>();
  msg->version(11);
  msg->result(static_cast<unsigned>(res.status));
  msg->set(bhttp::field::server, "epmdx");
  if (!res.content_type.empty()) {
    msg->set(bhttp::field::content_type, res.content_type);
  }
  for (auto& [k, v] : res.headers) {
    msg->set(k, v);
  }
  msg->keep_alive(keep_alive);
  const size_t length = res.body.size();
  msg->body() = std::move(res.body);
  msg->prepare_payload();
  if (head) {
    msg->body().clear();
    msg->content_length(length);
  }
  stream_.expires_after(host_.limits().idle);
  bhttp::async_write(stream_, *msg,
                     [self = shared_from_this(), msg, keep_alive](beast::error_code ec, size_t) {
                       if (ec || !keep_alive) {
                         beast::error_code ignored;
                         self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                         self->stream_.socket().close(ignored);
                         return;
                       }
                       self->readHeader();
                     });
}

}  // namespace epmdx::http
