// Binary upgrade (SIGUSR2) and the systemd notify socket: the pieces that touch processes and
// descriptors. The old process spawns its own binary with one end of a Unix socket pair and sends
// every listening socket over it (SCM_RIGHTS); the new one receives them, starts, and answers
// "ready". Control thread (old side) or main thread before serving (new side); nothing here keeps
// state between calls except the exec_target, which lives for the whole process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace canary::core::upgrade {

// The environment variable that tells a new process which descriptor is its hand-over channel.
inline constexpr const char* channel_env = "CANARY_UPGRADE_FD";
// How long the old process waits for the new one's "ready" before it gives up on it.
inline constexpr std::chrono::seconds ready_timeout{20};

// What SIGUSR2 execs: this binary's path, resolved at start (/proc/self/exe, else argv[0] made
// absolute), so that a binary replaced on disk since (a package upgrade) is the one started; and
// the arguments the process was started with.
struct exec_target {
  std::string path;
  std::vector<std::string> argv;
};
exec_target resolve_self(int argc, char** argv);

// ---- the new process's side ----

struct inherited {
  int channel = -1;           // to answer "ready" on
  std::vector<int> data_fds;  // listening data sockets, one per worker of the old process
  std::vector<int> tls_fds;   // listening TLS sockets, one per worker (none without `tls:`)
  int admin_fd = -1;          // the admin listener
};

// With channel_env set (and then unset, so a later upgrade starts clean): waits up to
// `timeout` for the listeners; throws std::runtime_error when the message is missing or
// malformed. Without it: std::nullopt (a normal start).
std::optional<inherited> receive_listeners(std::chrono::milliseconds timeout);

// Tells the old process this one serves ("ready PID\n") and closes the channel. "" or the error.
std::string send_ready(int channel);

// ---- the old process's side ----

struct child {
  pid_t pid = -1;
  int channel = -1;   // our end of the socket pair (close-on-exec)
  std::string error;  // non-empty: nothing was started
};

// Forks and execs `target` with the other end of a fresh socket pair as channel_env; every other
// descriptor but 0-2 is closed in the child before exec (client connections must not outlive this
// process in the new one).
child spawn(const exec_target& target);

// Sends the listeners over `channel` (one message: a text header with the two counts, then the
// descriptors: data, TLS, admin). Either list may be empty (`listen: ""`, no `tls:`), not both.
// "" or the error.
std::string send_listeners(int channel, const std::vector<int>& data_fds,
                           const std::vector<int>& tls_fds, int admin_fd);

// "exited with status 1", "was killed by signal 9": a waitpid() status for a log line.
std::string describe_wait_status(int status);

// ---- systemd ----

// Sends `state` ("READY=1", "MAINPID=123\nREADY=1") as one datagram to $NOTIFY_SOCKET (a path,
// or an abstract socket when it starts with '@'); nothing without it (sd_notify(3)'s protocol,
// without libsystemd). Returns "" or the error.
std::string notify_systemd(std::string_view state);

}  // namespace canary::core::upgrade
