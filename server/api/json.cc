#include "server/api/json.h"

#include <google/protobuf/util/json_util.h>

namespace epmdx::api {

std::string toJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;  // Stable shape for dashboards.
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

std::string errorJson(const Error& error, int http_status) {
  v1::ErrorBody body;
  body.set_code(http_status != 0 ? http_status : httpStatus(error.code));
  body.set_status(std::string(toString(error.code)));
  body.set_message(error.message);
  if (error.window) {
    body.set_oldest_revision(error.window->oldest);
    body.set_current_revision(error.window->current);
  }
  return toJson(body);
}

}  // namespace epmdx::api
