#include "ctl/yaml.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <set>
#include <vector>

#include "server/api/json.h"

namespace epmdx::ctl {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

bool isPlainSafe(const std::string& s) {
  if (s.empty()) {
    return false;
  }
  const unsigned char first = static_cast<unsigned char>(s[0]);
  // A leading digit, sign or dot could read as a number; YAML indicators are excluded too.
  if (!(std::isalpha(first) || first == '_' || first == '/')) {
    return false;
  }
  for (const char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || c == '_' || c == '.' || c == '/' || c == '-' || c == '@')) {
      return false;
    }
  }
  // Words YAML 1.1 readers (PyYAML among them) turn into booleans or null.
  static const std::set<std::string> kReserved = {"true", "false", "null", "yes", "no",
                                                  "on",   "off",   "y",    "n",   "~"};
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return kReserved.count(lower) == 0;
}

std::string hexEscape(const char* form, unsigned value) {
  char buf[16];
  std::snprintf(buf, sizeof buf, form, value);
  return buf;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += hexEscape("\\x%02x", c);
    } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
      // C1 controls (U+0080..U+009F, NEL among them) are line breaks or forbidden in YAML.
      out += hexEscape("\\u%04x", static_cast<unsigned char>(s[i + 1]));
      ++i;
    } else if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(s[i + 2]) == 0xa8 ||
                static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
      // U+2028/U+2029 are line breaks to YAML.
      out += hexEscape("\\u%04x", 0x2000u + static_cast<unsigned char>(s[i + 2]) - 0x80u);
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string number(double d) {
  char buf[32];
  if (std::nearbyint(d) == d && std::fabs(d) < 9007199254740992.0) {
    std::snprintf(buf, sizeof buf, "%.0f", d);
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", d);
  }
  return buf;
}

bool isNonEmptyStruct(const Value& v) {
  return v.kind_case() == Value::kStructValue && v.struct_value().fields_size() > 0;
}

bool isNonEmptyList(const Value& v) {
  return v.kind_case() == Value::kListValue && v.list_value().values_size() > 0;
}

std::string scalar(const Value& v) {
  switch (v.kind_case()) {
    case Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case Value::kNumberValue:
      return number(v.number_value());
    case Value::kStringValue:
      return yamlString(v.string_value());
    case Value::kStructValue:
      return "{}";
    case Value::kListValue:
      return "[]";
    default:
      return "null";
  }
}

// The message type of a JSON key, to order the nested object's keys by its fields.
const Descriptor* fieldType(const Descriptor* d, const std::string& json_key) {
  if (d == nullptr) {
    return nullptr;
  }
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == json_key) {
      return d->field(i)->message_type();
    }
  }
  return nullptr;
}

// Keys in field order (what a reader of the .proto expects), unknown ones sorted after.
std::vector<std::string> orderedKeys(const Struct& s, const Descriptor* d) {
  std::vector<std::string> keys;
  if (d != nullptr) {
    for (int i = 0; i < d->field_count(); ++i) {
      if (s.fields().count(d->field(i)->json_name()) != 0) {
        keys.push_back(d->field(i)->json_name());
      }
    }
  }
  std::vector<std::string> rest;
  for (const auto& [k, unused] : s.fields()) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
      rest.push_back(k);
    }
  }
  std::sort(rest.begin(), rest.end());
  keys.insert(keys.end(), rest.begin(), rest.end());
  return keys;
}

void emitList(const ListValue& list, const Descriptor* d, int indent, std::string& out);

// `inline_first`: the caller already wrote "- " and the first key goes on that line.
void emitStruct(const Struct& s, const Descriptor* d, int indent, bool inline_first,
                std::string& out) {
  bool first = true;
  for (const auto& key : orderedKeys(s, d)) {
    const Value& v = s.fields().at(key);
    out += (first && inline_first) ? "" : std::string(static_cast<size_t>(indent), ' ');
    first = false;
    out += yamlString(key) + ":";
    if (isNonEmptyStruct(v)) {
      out += "\n";
      emitStruct(v.struct_value(), fieldType(d, key), indent + 2, false, out);
    } else if (isNonEmptyList(v)) {
      out += "\n";
      emitList(v.list_value(), fieldType(d, key), indent + 2, out);
    } else {
      out += " " + scalar(v) + "\n";
    }
  }
}

void emitList(const ListValue& list, const Descriptor* d, int indent, std::string& out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  for (const auto& item : list.values()) {
    if (isNonEmptyStruct(item)) {
      out += pad + "- ";
      emitStruct(item.struct_value(), d, indent + 2, true, out);
    } else if (isNonEmptyList(item)) {
      out += pad + "-\n";
      emitList(item.list_value(), d, indent + 2, out);
    } else {
      out += pad + "- " + scalar(item) + "\n";
    }
  }
}

}  // namespace

std::string yamlString(const std::string& text) {
  return isPlainSafe(text) ? text : quoted(text);
}

std::string toYaml(const google::protobuf::Message& message) {
  Value root;
  const auto parsed = google::protobuf::util::JsonStringToMessage(api::toJson(message), &root);
  if (!parsed.ok()) {
    // Cannot happen for JSON protobuf printed itself; say so rather than print nothing.
    return "# cannot convert to YAML: " + std::string(parsed.message()) + "\n";
  }
  std::string out;
  if (isNonEmptyStruct(root)) {
    emitStruct(root.struct_value(), message.GetDescriptor(), 0, false, out);
  } else if (isNonEmptyList(root)) {
    emitList(root.list_value(), nullptr, 0, out);
  } else {
    out = scalar(root) + "\n";
  }
  return out;
}

}  // namespace epmdx::ctl
