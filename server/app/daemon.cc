#include "server/app/daemon.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace epmdx::app {

void daemonize() {
  pid_t pid = fork();
  if (pid < 0) {
    std::exit(1);
  }
  if (pid > 0) {
    std::_Exit(0);
  }
  if (setsid() < 0) {
    std::exit(1);
  }
  std::signal(SIGHUP, SIG_IGN);
  pid = fork();  // Not a session leader: can never acquire a controlling terminal.
  if (pid < 0) {
    std::exit(1);
  }
  if (pid > 0) {
    std::_Exit(0);
  }
  if (chdir("/") != 0) {
    // Nothing sensible to do; OTP ignores it too.
  }
  umask(0);
  // Close what we inherited (erl's pipes would otherwise keep its caller waiting).
  const long max_fd = sysconf(_SC_OPEN_MAX);
  for (long fd = 0; fd < (max_fd > 0 && max_fd < 65536 ? max_fd : 1024); ++fd) {
    close(static_cast<int>(fd));
  }
  open("/dev/null", O_RDONLY);
  open("/dev/null", O_WRONLY);
  open("/dev/null", O_WRONLY);
}

void notifySystemdReady() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') {
    return;
  }
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
  if (addr.sun_path[0] == '@') {
    addr.sun_path[0] = '\0';  // Abstract namespace.
  }
  const std::string msg =
      "READY=1\nSTATUS=Processing port mapping requests...\nMAINPID=" + std::to_string(getpid());
  sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&addr),
         static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + std::strlen(path)));
  close(fd);
}

}  // namespace epmdx::app
