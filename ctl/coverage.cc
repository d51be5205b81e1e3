#include "ctl/coverage.h"

#include <algorithm>
#include <cstdio>

namespace epmdx::ctl {

std::vector<std::string> coverageWarnings(const v1::Coverage& coverage) {
  std::vector<std::string> lines(coverage.warnings().begin(), coverage.warnings().end());
  for (const auto& name : coverage.unreachable()) {
    // The relay's warnings name their source ("source pod-2 (...) is STALE ..."); one that
    // has none still gets a line: the answer misses it either way.
    const bool told = std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.find("source " + name + " ") != std::string::npos;
    });
    if (!told) {
      lines.push_back("source " + name + " cannot be reached now; its nodes are the last known");
    }
  }
  return lines;
}

void printWarnings(const std::vector<std::string>& lines) {
  for (const auto& l : lines) {
    std::fprintf(stderr, "epmdxctl: warning: %s\n", l.c_str());
  }
}

void printNotes(const std::vector<std::string>& lines) {
  for (const auto& l : lines) {
    std::fprintf(stderr, "epmdxctl: %s\n", l.c_str());
  }
}

namespace {

bool contains(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

}  // namespace

CoverageNotes::CoverageNotes(const v1::Coverage& printed)
    : warned_(coverageWarnings(printed)),
      unreachable_(printed.unreachable().begin(), printed.unreachable().end()) {}

std::vector<std::string> CoverageNotes::update(const v1::Coverage& coverage) {
  auto warned = coverageWarnings(coverage);
  std::vector<std::string> unreachable(coverage.unreachable().begin(),
                                       coverage.unreachable().end());
  const std::vector<std::string> live(coverage.live().begin(), coverage.live().end());
  std::vector<std::string> out;
  for (const auto& name : unreachable_) {
    if (!contains(unreachable, name)) {
      out.push_back("source " + name +
                    (contains(live, name) ? " is live again" : " is no longer covered"));
    }
  }
  for (const auto& l : warned) {
    if (!contains(warned_, l)) {
      out.push_back("warning: " + l);
    }
  }
  warned_ = std::move(warned);
  unreachable_ = std::move(unreachable);
  return out;
}

}  // namespace epmdx::ctl
