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

std::string errorJson(int http_code, const std::string& status, const std::string& message,
                      uint64_t oldest_revision, uint64_t current_revision) {
  v1::ErrorBody body;
  body.set_code(http_code);
  body.set_status(status);
  body.set_message(message);
  body.set_oldest_revision(oldest_revision);
  body.set_current_revision(current_revision);
  return toJson(body);
}

}  // namespace epmdx::api
