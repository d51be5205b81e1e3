#include "server/epmd/descriptor_guard.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

namespace epmdx::epmd {
namespace {

size_t softLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
    return 1 << 20;
  }
  return static_cast<size_t>(rl.rlim_cur);
}

}  // namespace

DescriptorGuard::DescriptorGuard(size_t limit) : limit_(limit != 0 ? limit : softLimit()) {
  // Headroom above the mark: for the admin servers (watch streams, HTTP clients) and for
  // bursts of registrations, whose descriptors are never shed. An eighth of the table,
  // at least 32 and at most 4096 descriptors.
  const size_t headroom = std::clamp<size_t>(limit_ / 8, 32, 4096);
  high_water_ = limit_ > headroom ? limit_ - headroom : 0;
  takeReserve();
}

DescriptorGuard::~DescriptorGuard() {
  releaseReserve();
}

int DescriptorGuard::lowestFree() {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return static_cast<int>(limit_);
  }
  ::close(fd);
  return fd;
}

bool DescriptorGuard::releaseReserve() {
  if (reserve_ < 0) {
    return false;
  }
  ::close(reserve_);
  reserve_ = -1;
  return true;
}

bool DescriptorGuard::takeReserve() {
  if (reserve_ < 0) {
    reserve_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  return reserve_ >= 0;
}

}  // namespace epmdx::epmd
