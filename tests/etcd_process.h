#pragma once
// A real etcd (Debian's etcd-server) in a child process on free loopback ports, its data in a
// folder of its own, killed at the end; and a TCP proxy in front of it that a test can cut, to
// break a client's connections while etcd goes on.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http/etcd_client.h"
#include "test_util.h"

namespace wp::test {

/// A loopback port no one listens on now (bound once and released), drawn below the kernel's
/// ephemeral range (32768 and up): a node restarted at its port must find it free, and a port of
/// that range may meanwhile be taken by any outgoing connection (a cluster test failed so).
inline uint16_t free_port() {
  static std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(20000, 32767);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(pick(rng)));
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    if (ok) return ntohs(a.sin_port);
  }
  return 0;
}

class EtcdProcess {
 public:
  EtcdProcess() : client_port_(free_port()), peer_port_(free_port()) { start(); }
  ~EtcdProcess() { stop(); }

  /// Whether etcd answers; `why()` says what went wrong when it does not.
  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(client_port_); }
  uint16_t port() const { return client_port_; }

  /// Freezes etcd (SIGSTOP): connections stay open and nothing answers; resume() thaws it.
  void pause() {
    kill(pid_, SIGSTOP);
    // kill() returns before the process has stopped: wait until /proc says it has ('T').
    const std::string stat = "/proc/" + std::to_string(pid_) + "/stat";
    for (int i = 0; i < 1000; ++i) {
      std::ifstream in(stat);
      std::string pid, comm, state;
      in >> pid >> comm >> state;
      if (state == "T" || state == "t") return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  void resume() { kill(pid_, SIGCONT); }

  /// Kills etcd (SIGKILL) and starts it again on the same ports and data.
  void restart() {
    stop();
    start();
  }

 private:
  void start() {
    const std::string data = dir_.file("etcd"), log = dir_.file("etcd.log");
    const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test (a crash, a timeout)
      FILE* out = freopen(log.c_str(), "a", stdout);
      (void)out;
      dup2(STDOUT_FILENO, STDERR_FILENO);
      execlp("etcd", "etcd", "--name", "test", "--data-dir", data.c_str(), "--listen-client-urls",
             client.c_str(), "--advertise-client-urls", client.c_str(), "--listen-peer-urls",
             peer.c_str(), "--initial-advertise-peer-urls", peer.c_str(), "--initial-cluster",
             ("test=" + peer).c_str(), nullptr);
      _exit(127);
    }
    // Ready once a read answers (etcd elects itself leader within about a second).
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        why_ =
            WIFEXITED(status) && WEXITSTATUS(status) == 127
                ? "etcd is not installed (apt-get install etcd-server; scripts/debian-packages.txt)"
                : "etcd exited at start; see " + log;
        return;
      }
      try {
        http::etcd::Client c(endpoint(), std::chrono::milliseconds(500));
        c.get("ready?");
        ok_ = true;
        return;
      } catch (const std::exception& e) {
        why_ = std::string("etcd did not answer within 20 s: ") + e.what();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGCONT);
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    ok_ = false;
  }

  TempDir dir_;
  uint16_t client_port_, peer_port_;
  pid_t pid_ = -1;
  bool ok_ = false;
  std::string why_;
};

/// Forwards connections to 127.0.0.1:`upstream`. cut() closes every connection and refuses new
/// ones (accepted and closed at once) until mend().
class TcpProxy {
 public:
  explicit TcpProxy(uint16_t upstream) : upstream_(upstream) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        listen(listen_fd_, 64) == 0 &&
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port_ = ntohs(a.sin_port);
    }
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TcpProxy() {
    stopping_ = true;
    cut();
    acceptor_.join();
    for (std::thread& t : pumps_) t.join();
    close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void cut() {
    std::lock_guard<std::mutex> lock(mu_);
    down_ = true;
    for (int fd : open_) shutdown(fd, SHUT_RDWR);
  }
  void mend() {
    std::lock_guard<std::mutex> lock(mu_);
    down_ = false;
  }

 private:
  static sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
  }

  void accept_loop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const int in = accept(listen_fd_, nullptr, nullptr);
      if (in < 0) continue;
      const int out = socket(AF_INET, SOCK_STREAM, 0);
      const sockaddr_in up = loopback(upstream_);
      std::lock_guard<std::mutex> lock(mu_);
      if (down_ || connect(out, reinterpret_cast<const sockaddr*>(&up), sizeof up) != 0) {
        close(in);
        close(out);
        continue;
      }
      open_.insert(in);
      open_.insert(out);
      pumps_.emplace_back([this, in, out] { pump(in, out); });
    }
  }

  /// Copies bytes both ways until either side closes or the proxy is cut.
  void pump(int a, int b) {
    char buf[16384];
    bool open = true;
    while (open && !stopping_) {
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (poll(p, 2, 100) <= 0) continue;
      for (int i = 0; i < 2 && open; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = read(p[i].fd, buf, sizeof buf);
        const int to = i == 0 ? b : a;
        open = n > 0 && write(to, buf, static_cast<size_t>(n)) == n;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    open_.erase(a);
    open_.erase(b);
    close(a);
    close(b);
  }

  uint16_t upstream_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  bool down_ = false;
  std::set<int> open_;
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

}  // namespace wp::test
