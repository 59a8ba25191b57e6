// tcp_floor: the loopback round trip with no HTTP and no search, the floor under every
// 1-connection latency waypoint_load measures (docs/server.md, "Polling server threads"). A
// child process echoes SIZE-byte messages back over one TCP connection on 127.0.0.1; the parent
// times each exchange.
//   build/bench/tcp_floor [--size 1000] [--count 50000] [--spin] [--echo-epoll] [--syscalls]
//                         [--cores 0,1]
// --spin: both sides read with MSG_DONTWAIT in a loop instead of sleeping in recv (neither
// process then needs a wake-up). --echo-epoll: the echo waits as a polling server does, with
// epoll_wait(0) calls until the socket is readable and a receive then (with --spin, the timer
// still spins in recv). --cores A,B pins the echoing child to core A, the timer to B.
// --syscalls: instead, the time of one system call that does nothing (getppid, epoll_wait(0)
// on an idle socket, a receive that finds nothing), on the first core of --cores.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void pin(int core) {
  if (core < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

/// Microseconds a call of `f`, over `count` calls.
template <class F>
double per_call_us(size_t count, F f) {
  const auto t = std::chrono::steady_clock::now();
  for (size_t i = 0; i < count; ++i) f();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count() /
         static_cast<double>(count);
}

/// --syscalls: what the kernel's entry and exit alone cost here (each request to a server pays
/// them a few times over on its critical path).
int null_syscalls(size_t count) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int ep = epoll_create1(0);
  int pair[2];
  if (fd < 0 || ep < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) != 0) {
    die("socket");
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, pair[0], &ev) != 0) die("epoll_ctl");
  char byte;
  const double getppid_us = per_call_us(count, [] { getppid(); });
  const double epoll_us = per_call_us(count, [&] { epoll_wait(ep, &ev, 1, 0); });
  const double recv_us = per_call_us(count, [&] { recv(fd, &byte, 1, MSG_DONTWAIT); });
  std::printf(
      "{\"calls\": %zu, \"getppid_us\": %.3f, \"epoll_wait_0_us\": %.3f, "
      "\"recv_eagain_us\": %.3f}\n",
      count, getppid_us, epoll_us, recv_us);
  return 0;
}

/// Reads exactly `n` bytes; false when the peer closed.
bool read_all(int fd, char* buf, size_t n, bool spin) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = recv(fd, buf + got, n - got, spin ? MSG_DONTWAIT : 0);
    if (r > 0) {
      got += static_cast<size_t>(r);
    } else if (r == 0) {
      return false;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      die("recv");
    }
  }
  return true;
}

void send_all(int fd, const char* buf, size_t n) {
  for (size_t sent = 0; sent < n;) {
    const ssize_t r = send(fd, buf + sent, n - sent, MSG_NOSIGNAL);
    if (r < 0) die("send");
    sent += static_cast<size_t>(r);
  }
}

}  // namespace

int main(int argc, char** argv) {
  size_t size = 1000, count = 50000;
  bool spin = false, echo_epoll = false, syscalls = false;
  int echo_core = -1, timer_core = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool more = i + 1 < argc;
    if (a == "--size" && more) {
      size = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--count" && more) {
      count = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--spin") {
      spin = true;
    } else if (a == "--echo-epoll") {
      echo_epoll = true;
    } else if (a == "--syscalls") {
      syscalls = true;
    } else if (a == "--cores" && more &&
               std::sscanf(argv[++i], "%d,%d", &echo_core, &timer_core) == 2) {
    } else {
      std::fprintf(stderr,
                   "usage: tcp_floor [--size 1000] [--count 50000] [--spin] [--echo-epoll] "
                   "[--syscalls] [--cores A,B]\n");
      return 2;
    }
  }
  if (size == 0 || size > (1u << 20) || count == 0) {
    std::fprintf(stderr, "tcp_floor: --size must be in 1..1048576 and --count at least 1\n");
    return 2;
  }
  if (syscalls) {
    pin(echo_core);
    return null_syscalls(count);
  }
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) die("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  if (listen(listener, 1) != 0) die("listen");
  if (getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) die("getsockname");
  std::vector<char> buf(size, 'x');
  const int one = 1;
  const pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {  // the echo
    pin(echo_core);
    const int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) die("accept");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int ep = echo_epoll ? epoll_create1(0) : -1;
    if (echo_epoll) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLET;
      if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll");
    }
    for (;;) {
      if (echo_epoll) {
        epoll_event ev;
        while (epoll_wait(ep, &ev, 1, 0) == 0) {
        }
      }
      if (!read_all(fd, buf.data(), size, spin || echo_epoll)) break;
      send_all(fd, buf.data(), size);
    }
    _exit(0);
  }
  close(listener);
  pin(timer_core);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("connect");
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::vector<double> us;
  us.reserve(count);
  for (size_t i = 0; i < count + count / 10; ++i) {  // the first tenth warms up
    const auto t = std::chrono::steady_clock::now();
    send_all(fd, buf.data(), size);
    if (!read_all(fd, buf.data(), size, spin)) die("the echo closed");
    if (i >= count / 10) {
      us.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count());
    }
  }
  close(fd);
  waitpid(child, nullptr, 0);
  std::sort(us.begin(), us.end());
  std::printf(
      "{\"size\": %zu, \"spin\": %s, \"round_trips\": %zu, \"p50_us\": %.1f, \"p99_us\": %.1f}\n",
      size, spin ? "true" : "false", us.size(), us[us.size() / 2], us[us.size() * 99 / 100]);
  return 0;
}
