// Binary upgrade and systemd notify; see upgrade.h. Plain POSIX calls: fork/exec, socketpair,
// sendmsg/recvmsg with SCM_RIGHTS (unix(7)), and a datagram to the notify socket.
#include "core/upgrade.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

extern char** environ;

namespace canary::core::upgrade {

namespace {

constexpr std::string_view header_magic = "canary-upgrade 1 ";
// One message carries every listener; SCM_RIGHTS takes at most SCM_MAX_FD (253) descriptors.
constexpr std::size_t max_fds = 253;

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

exec_target resolve_self(int argc, char** argv) {
  exec_target t;
  for (int i = 0; i < argc; ++i) t.argv.emplace_back(argv[i]);
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    t.path.assign(buf, static_cast<std::size_t>(n));
  } else if (argc > 0) {
    std::error_code ec;
    auto p = std::filesystem::absolute(argv[0], ec);
    t.path = ec ? std::string(argv[0]) : p.string();
  }
  return t;
}

std::optional<inherited> receive_listeners(std::chrono::milliseconds timeout) {
  const char* env = std::getenv(channel_env);
  if (env == nullptr) return std::nullopt;
  char* end = nullptr;
  const long fd = std::strtol(env, &end, 10);
  ::unsetenv(channel_env);
  if (end == env || *end != '\0' || fd < 3 || fd > INT_MAX)
    throw std::runtime_error(std::string("upgrade: bad ") + channel_env + " value");
  inherited in;
  in.channel = static_cast<int>(fd);
  ::fcntl(in.channel, F_SETFD, FD_CLOEXEC);

  pollfd p{in.channel, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready <= 0)
    throw std::runtime_error(ready == 0 ? "upgrade: no listeners from the old process in time"
                                        : errno_text("upgrade: poll"));
  char text[128];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds)];
  iovec iov{text, sizeof text - 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(in.channel, &msg, MSG_CMSG_CLOEXEC);
  if (n <= 0)
    throw std::runtime_error(n == 0 ? "upgrade: the old process closed the channel"
                                    : errno_text("upgrade: recvmsg"));
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int f;
      std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
      fds.push_back(f);
    }
  }
  const std::string_view body(text, static_cast<std::size_t>(n));
  auto fail = [&](const std::string& why) {
    for (int f : fds) ::close(f);
    throw std::runtime_error("upgrade: " + why);
  };
  if ((msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0) fail("hand-over message truncated");
  if (!body.starts_with(header_magic)) fail("unknown hand-over message");
  // "<data> <tls>\n"; a process without TLS support sent "<data>\n" (tls = 0).
  const std::string count_text(body.substr(header_magic.size()));
  char* rest = nullptr;
  const long data = std::strtol(count_text.c_str(), &rest, 10);
  const long tls = std::strtol(rest, nullptr, 10);
  if (data < 0 || tls < 0 || data + tls < 1 ||
      static_cast<std::size_t>(data + tls) + 1 != fds.size())
    fail("hand-over message names " + std::to_string(data) + " data and " + std::to_string(tls) +
         " TLS listeners but carries " + std::to_string(fds.size()) + " descriptors");
  in.data_fds.assign(fds.begin(), fds.begin() + data);
  in.tls_fds.assign(fds.begin() + data, fds.end() - 1);
  in.admin_fd = fds.back();
  return in;
}

std::string send_ready(int channel) {
  const std::string line = "ready " + std::to_string(::getpid()) + "\n";
  std::string err;
  if (::send(channel, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
    err = errno_text("upgrade: send ready");
  ::close(channel);
  return err;
}

child spawn(const exec_target& target) {
  child out;
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    out.error = errno_text("socketpair");
    return out;
  }
  // Everything the child uses is built before fork: between fork and exec only async-signal-safe
  // calls are allowed in a multi-threaded process.
  constexpr int child_fd = 3;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e)
    if (!std::string_view(*e).starts_with(std::string(channel_env) + "="))
      env_strings.emplace_back(*e);
  env_strings.push_back(std::string(channel_env) + "=" + std::to_string(child_fd));
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = target.argv;
  std::vector<char*> argvp;
  for (auto& s : args) argvp.push_back(s.data());
  argvp.push_back(nullptr);
  const long max_fd = std::max(1024L, ::sysconf(_SC_OPEN_MAX));

  const pid_t pid = ::fork();
  if (pid < 0) {
    out.error = errno_text("fork");
    ::close(pair[0]);
    ::close(pair[1]);
    return out;
  }
  if (pid == 0) {
    // The child: channel at fd 3 (dup2 clears close-on-exec), every other descriptor closed.
    if (pair[1] != child_fd) {
      if (::dup2(pair[1], child_fd) < 0) ::_exit(127);
    } else {
      ::fcntl(child_fd, F_SETFD, 0);
    }
    if (::syscall(SYS_close_range, child_fd + 1, ~0U, 0) != 0)
      for (long fd = child_fd + 1; fd < max_fd; ++fd) ::close(static_cast<int>(fd));
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(target.path.c_str(), argvp.data(), envp.data());
    ::_exit(127);
  }
  ::close(pair[1]);
  out.pid = pid;
  out.channel = pair[0];
  return out;
}

std::string send_listeners(int channel, const std::vector<int>& data_fds,
                           const std::vector<int>& tls_fds, int admin_fd) {
  std::vector<int> fds = data_fds;
  fds.insert(fds.end(), tls_fds.begin(), tls_fds.end());
  fds.push_back(admin_fd);
  if (fds.size() > max_fds) return "upgrade: too many listeners to hand over";
  const std::string text = std::string(header_magic) + std::to_string(data_fds.size()) + " " +
                           std::to_string(tls_fds.size()) + "\n";
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  if (::sendmsg(channel, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(text.size()))
    return errno_text("upgrade: sendmsg");
  return {};
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped (status " + std::to_string(status) + ")";
}

std::string notify_systemd(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return {};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) return "NOTIFY_SOCKET path too long";
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_text("notify socket");
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  std::string err;
  if (::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
               addr_len) < 0)
    err = errno_text("notify to NOTIFY_SOCKET");
  ::close(fd);
  return err;
}

}  // namespace canary::core::upgrade
