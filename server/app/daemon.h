#pragma once

namespace epmdx::app {

/// OTP's run_daemon: fork, setsid, ignore SIGHUP, fork again, chdir("/"), umask(0),
/// close inherited descriptors, reopen /dev/null on 0, 1 and 2. Returns in the grandchild
/// only; the parents exit 0 (so `erl`'s system() call returns at once).
void daemonize();

/// Tells systemd we are ready (sd_notify "READY=1") if NOTIFY_SOCKET is set.
void notifySystemdReady();

}  // namespace epmdx::app
