// Unit tests of the binary upgrade's pieces (proxy/core/upgrade.cpp) on real descriptors in this
// process: the listeners message over a socket pair (what the new process receives is the same
// socket the old one sent), its refusals, the ready answer, and the systemd notify datagram.
#include "core/upgrade.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace canary::core::upgrade {
namespace {

using namespace std::chrono_literals;

ino_t inode(int fd) {
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  return st.st_ino;
}

// A socket pair whose second end is announced as the channel, as spawn() does for a child.
struct channel_pair {
  int old_end = -1;
  int new_end = -1;
  channel_pair() {
    int p[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
    old_end = p[0];
    new_end = p[1];
    ::setenv(channel_env, std::to_string(new_end).c_str(), 1);
  }
  ~channel_pair() {
    ::close(old_end);
    ::unsetenv(channel_env);
  }
};

TEST(upgrade, without_the_variable_a_start_is_normal) {
  ::unsetenv(channel_env);
  EXPECT_FALSE(receive_listeners(10ms).has_value());
}

TEST(upgrade, listeners_arrive_as_the_same_sockets) {
  channel_pair ch;
  int a[2], b[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
  const int admin = a[1];
  ASSERT_EQ(send_listeners(ch.old_end, {a[0], b[0]}, {}, admin), "");

  const auto in = receive_listeners(1s);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(std::getenv(channel_env), nullptr);  // a later upgrade starts clean
  EXPECT_EQ(in->channel, ch.new_end);
  ASSERT_EQ(in->data_fds.size(), 2u);
  EXPECT_EQ(inode(in->data_fds[0]), inode(a[0]));
  EXPECT_EQ(inode(in->data_fds[1]), inode(b[0]));
  EXPECT_EQ(inode(in->admin_fd), inode(admin));
  EXPECT_NE(in->data_fds[0], a[0]);  // new descriptors for the same sockets

  ASSERT_EQ(send_ready(in->channel), "");
  char buf[64] = {};
  const auto n = ::recv(ch.old_end, buf, sizeof buf - 1, 0);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0),
            "ready " + std::to_string(::getpid()) + "\n");
  for (int fd : {a[0], a[1], b[0], b[1], in->data_fds[0], in->data_fds[1], in->admin_fd})
    ::close(fd);
}

// TLS listeners travel in the same message, after the data ones; a TLS-only proxy has none of
// the latter.
TEST(upgrade, tls_listeners_arrive_apart_from_the_data_ones) {
  for (const bool plain : {true, false}) {
    channel_pair ch;
    int a[2], t[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, t), 0);
    std::vector<int> data;
    if (plain) data.push_back(a[0]);
    ASSERT_EQ(send_listeners(ch.old_end, data, {t[0]}, a[1]), "");
    const auto in = receive_listeners(1s);
    ASSERT_TRUE(in.has_value());
    ASSERT_EQ(in->data_fds.size(), plain ? 1u : 0u);
    if (plain) {
      EXPECT_EQ(inode(in->data_fds[0]), inode(a[0]));
    }
    ASSERT_EQ(in->tls_fds.size(), 1u);
    EXPECT_EQ(inode(in->tls_fds[0]), inode(t[0]));
    EXPECT_EQ(inode(in->admin_fd), inode(a[1]));
    for (int fd : in->data_fds) ::close(fd);
    for (int fd : {a[0], a[1], t[0], t[1], in->tls_fds[0], in->admin_fd, in->channel}) ::close(fd);
  }
}

TEST(upgrade, a_closed_channel_or_a_bad_message_is_an_error) {
  {
    channel_pair ch;
    ::close(ch.old_end);
    ch.old_end = ::dup(0);
    EXPECT_THROW(receive_listeners(1s), std::runtime_error);
    ::close(ch.new_end);
  }
  {
    channel_pair ch;
    const std::string junk = "hello\n";
    ASSERT_EQ(::send(ch.old_end, junk.data(), junk.size(), 0), static_cast<ssize_t>(junk.size()));
    try {
      receive_listeners(1s);
      FAIL() << "accepted a message without listeners";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("unknown hand-over message"), std::string::npos)
          << e.what();
    }
    ::close(ch.new_end);
  }
  {
    channel_pair ch;  // nothing sent: the wait is bounded
    EXPECT_THROW(receive_listeners(50ms), std::runtime_error);
    ::close(ch.new_end);
  }
}

TEST(upgrade, notify_sends_one_datagram_to_the_socket_path) {
  const auto path =
      std::filesystem::temp_directory_path() / ("canary-notify-" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_EQ(notify_systemd("READY=1"), "");  // no socket: nothing to do, no error
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  EXPECT_EQ(notify_systemd("MAINPID=42\nREADY=1"), "");
  char buf[64] = {};
  const auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "MAINPID=42\nREADY=1");
  ::unsetenv("NOTIFY_SOCKET");
  ::close(fd);
  std::filesystem::remove(path);
}

TEST(upgrade, notify_to_an_abstract_socket) {
  const std::string name = "canary-notify-test-" + std::to_string(::getpid());
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())),
            0);
  ::setenv("NOTIFY_SOCKET", ("@" + name).c_str(), 1);
  EXPECT_EQ(notify_systemd("READY=1"), "");
  char buf[16] = {};
  const auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "READY=1");
  ::unsetenv("NOTIFY_SOCKET");
  ::close(fd);
}

TEST(upgrade, wait_status_text) {
  EXPECT_EQ(describe_wait_status(1 << 8), "exited with status 1");
  EXPECT_EQ(describe_wait_status(SIGKILL), "was killed by signal 9");
}

TEST(upgrade, resolve_self_keeps_the_arguments_and_finds_this_binary) {
  char a0[] = "unit_tests", a1[] = "--config", a2[] = "x.yaml";
  char* argv[] = {a0, a1, a2};
  const auto t = resolve_self(3, argv);
  EXPECT_EQ(t.argv, (std::vector<std::string>{"unit_tests", "--config", "x.yaml"}));
  EXPECT_TRUE(std::filesystem::path(t.path).is_absolute()) << t.path;
  EXPECT_TRUE(std::filesystem::exists(t.path)) << t.path;
}

}  // namespace
}  // namespace canary::core::upgrade
