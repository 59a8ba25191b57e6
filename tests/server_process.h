#pragma once
// The real `waypoint` binary in child processes, for the end-to-end tests (test_server,
// test_cluster): a server on an ephemeral port, a JSON client for it, and one-shot commands.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "http/client.h"

namespace wp::test {

/// `waypoint serve` in a child process; its port is read from the "listening on" line.
class ServerProcess {
 public:
  /// The whole argument line after `serve` (no --port 0 --data added).
  struct Args {
    std::string line;
  };
  /// `launcher` runs before the binary (e.g. "prlimit --nofile=64:64").
  explicit ServerProcess(const std::string& data, const std::string& extra = "",
                         const std::string& launcher = "") {
    start("--port 0 --data " + data + " " + extra, launcher);
  }
  explicit ServerProcess(const Args& args) { start(args.line, ""); }
  ~ServerProcess() {
    if (pid_ > 0) kill_and_wait(SIGKILL);
    if (out_) fclose(out_);
  }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  /// What the server printed up to and including its "listening on" line.
  const std::string& startup() const { return startup_; }
  /// Sends `sig` without waiting.
  void signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }
  /// Waits for the process to end and returns its exit status (or -signal).
  int wait() {
    if (pid_ <= 0) return 0;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
  /// Sends `sig` and returns the exit status (or -signal).
  int kill_and_wait(int sig) {
    signal(sig);
    return wait();
  }

 private:
  void start(const std::string& args, const std::string& launcher) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test (a crash, a timeout)
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      const std::string cmd = "exec " + launcher + " " + WAYPOINT_BIN + " serve " + args;
      execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      _exit(127);
    }
    close(fds[1]);
    out_ = fdopen(fds[0], "r");
    char line[512];
    while (fgets(line, sizeof line, out_)) {
      startup_ += line;
      // "listening on http://127.0.0.1:PORT" (https:// with TLS).
      const char* at = strstr(line, "://127.0.0.1:");
      if (strstr(line, "listening on ") && at) {
        port_ = static_cast<uint16_t>(atoi(at + strlen("://127.0.0.1:")));
        break;
      }
    }
    EXPECT_NE(port_, 0) << "server did not start";
  }

  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  uint16_t port_ = 0;
  std::string startup_;
};

/// A keep-alive client whose answers are parsed as JSON (a plain-text answer, such as a health
/// probe's, as a JSON string); throws on any transport error.
class Client {
 public:
  explicit Client(uint16_t port, std::string api_key = "") : c_(port, std::move(api_key)) {}
  std::pair<unsigned, nlohmann::json> call(boost::beast::http::verb method,
                                           const std::string& target,
                                           const nlohmann::json& body = nullptr,
                                           bool internal = false) {
    auto [status, text] = c_.call(
        method, target, body.is_null() ? "" : body.dump(),
        internal ? std::vector<std::pair<std::string, std::string>>{{"waypoint-internal", "1"}}
                 : std::vector<std::pair<std::string, std::string>>{});
    return {status,
            nlohmann::json::accept(text) ? nlohmann::json::parse(text) : nlohmann::json(text)};
  }

 private:
  wp::http::LoopbackClient c_;
};

inline  /// Runs `waypoint ARGS` to its end (killed after `seconds`: exit status 124) and returns
        /// its exit
    /// status and everything it printed on stdout and stderr.
    std::pair<int, std::string>
    run_waypoint(const std::string& args, int seconds = 20) {
  const std::string cmd =
      "timeout " + std::to_string(seconds) + " " + WAYPOINT_BIN + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace wp::test
