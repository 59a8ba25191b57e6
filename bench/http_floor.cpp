// http_floor: waypoint's API (Api::handle, the engine, the plain search path) behind a bare
// epoll loop on one thread instead of Asio and Beast: the floor under `waypoint serve`'s own HTTP
// machinery, for measuring what a leaner HTTP/1.1 path could give (docs/server.md, "System calls
// at a microsecond"). It speaks only what waypoint_load sends: HTTP/1.1 keep-alive requests with
// a Content-Length (no chunked bodies, no TLS, no limits, no timeouts); it is a measuring
// instrument on 127.0.0.1, never a server. One thread, polling for 200 us after its last event
// (as `serve --poll-us 200`) and sleeping after; it runs until killed.
//   build/bench/http_floor --port 7660 --data DIR
//   build/bench/waypoint_load --port 7660 --compare-port 7640 ...   (7640: a `waypoint serve`)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>

#include "engine/engine.h"
#include "http/api.h"
#include "http/request_head.h"

namespace {

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

/// Answers every whole request in `in` (what the connection sent, not yet answered); false when
/// the connection should close.
bool serve(int fd, std::string& in, wp::http::Api& api) {
  for (;;) {
    // The server's own reader of simple heads; a head it declines closes the connection (the
    // floor speaks only what waypoint_load sends).
    wp::http::RequestHead head;
    if (!wp::http::read_simple_head(in, head)) return in.find("\r\n\r\n") == std::string::npos;
    if (in.size() < head.size + head.content_length) return true;
    wp::http::Request r;
    r.method = std::string(head.method);
    r.target = std::string(head.target);
    r.body = in.substr(head.size, head.content_length);
    r.content_type = std::string(head.content_type);
    in.erase(0, head.size + head.content_length);
    const wp::http::Response a = api.handle(r);
    std::string top;  // the server's own head of an answer
    wp::http::append_head(top, a.status, 11, a.content_type, a.body.size(), true, {});
    iovec parts[2] = {{top.data(), top.size()}, {const_cast<char*>(a.body.data()), a.body.size()}};
    size_t left = top.size() + a.body.size();
    msghdr m{};
    m.msg_iov = parts;
    m.msg_iovlen = 2;
    while (left > 0) {  // a large answer may take several calls (the socket blocks then)
      const ssize_t sent = sendmsg(fd, &m, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) continue;
        return false;
      }
      left -= static_cast<size_t>(sent);
      size_t s = static_cast<size_t>(sent);
      while (m.msg_iovlen > 0 && s >= m.msg_iov[0].iov_len) {
        s -= m.msg_iov[0].iov_len;
        ++m.msg_iov;
        --m.msg_iovlen;
      }
      if (m.msg_iovlen > 0) {
        m.msg_iov[0].iov_base = static_cast<char*>(m.msg_iov[0].iov_base) + s;
        m.msg_iov[0].iov_len -= s;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  std::string data;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0) port = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--data") == 0) data = argv[i + 1];
  }
  if (port <= 0 || port > 65535 || data.empty()) {
    std::fprintf(stderr, "usage: http_floor --port P --data DIR\n");
    return 2;
  }
  wp::engine::Engine engine(data);
  wp::http::Api api(engine, wp::http::ApiOptions{});
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 128) != 0) {
    die("listen");
  }
  const int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) != 0) die("epoll");
  std::printf("http_floor listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  std::map<int, std::string> connections;  ///< by socket: received, not yet answered
  std::string chunk(1 << 16, '\0');
  epoll_event events[64];
  auto last = std::chrono::steady_clock::now();
  for (;;) {
    // Polls for 200 us after the last event (as `serve --poll-us 200`), then sleeps: an idle
    // http_floor leaves its core to a server measured beside it.
    const bool poll = std::chrono::steady_clock::now() - last < std::chrono::microseconds(200);
    const int n = epoll_wait(ep, events, 64, poll ? 0 : -1);
    if (n > 0) last = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        for (int c; (c = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK)) >= 0;) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event cev{};
          cev.events = EPOLLIN;  // level-triggered: one receive an event, the rest reported again
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          connections[c];
        }
        continue;
      }
      std::string& in = connections.at(fd);
      const ssize_t got = recv(fd, chunk.data(), chunk.size(), 0);
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      bool keep = got > 0;
      if (keep) {
        in.append(chunk.data(), static_cast<size_t>(got));
        keep = serve(fd, in, api);
      }
      if (!keep) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        connections.erase(fd);
      }
    }
  }
}
