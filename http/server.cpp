#include "http/server.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "http/gzip.h"
#include "http/plain_json.h"
#include "http/request_head.h"
#include "index/error.h"

namespace wp::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

/// A connection's socket and stream run on one thread's io_context, named by its own executor
/// type: Asio's type-erased default (any_io_executor) copied and destroyed its executor at every
/// operation (callgrind, a search request: 232.3k -> 228.7k instructions).
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using TcpStream = beast::basic_stream<tcp, Executor>;
using Clock = std::chrono::steady_clock;

/// What the server needs of a connection, plain or TLS.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  /// Begins serving (the TLS handshake, then the first request).
  virtual void start() = 0;
  /// Closes the connection if it is waiting for a request (called on shutdown).
  virtual void close_if_idle() = 0;
  /// Closes the connection if it has waited on its client (a request, the reading of an answer,
  /// a TLS handshake) for the idle timeout at `now` without a byte moving (called by the idle
  /// sweep, from its own thread).
  virtual void close_if_idle_too_long(Clock::time_point now) = 0;
  /// Sends the answer write_some held back (HeldAnswers), on the connection's thread.
  virtual void send_held() = 0;
};

/**
 * Answers a connection thread has written and not yet sent. Under load, a thread's wait for
 * events reports several requests at once; sending each answer as soon as it is written wakes
 * the client for each, and where the client shares the server's cores (or a busy machine runs
 * both) that wake-up preempts the thread in the middle of the next search: at 32 connections
 * on two shared cores, ~0.4 context switches a request, each flushing this virtual machine's
 * TLB. Held until the requests the thread has already read are answered, the answers go out
 * together, between searches: the client's wake-ups then fall on the sending, not inside a
 * search (+11% QPS there; docs/server.md, "Answers sent together").
 * An answer waits at most kHoldAtMost and one request's work: the held answers go out before
 * a request of a route other than the searches (which may take long) is handled, and before
 * any once the oldest has waited kHoldAtMost. A thread serving one connection holds nothing
 * (its answer would wait on one more poll of the sockets, for no other answer to join).
 */
struct HeldAnswers {
  std::vector<std::shared_ptr<SessionBase>> sessions;
  Clock::time_point since;  ///< when the first of them was held
};
thread_local HeldAnswers held_answers;
/// How long the oldest held answer may wait before the next request is handled: ~20 searches
/// of SIFT10K at ef 64, a 16-connection thread's batch. Against sending at once, at 32
/// connections on two shared cores (four alternated rounds each): 50 us +8.6%, 200 us +8.8%,
/// 500 us +11.4%, 1 ms +10.6% QPS.
constexpr std::chrono::microseconds kHoldAtMost{500};

/// Sends the answers this thread holds, in the order they were written.
void send_held_answers() {
  std::vector<std::shared_ptr<SessionBase>> sessions;
  sessions.swap(held_answers.sessions);
  for (auto& s : sessions) s->send_held();
  sessions.clear();
  if (held_answers.sessions.empty()) held_answers.sessions.swap(sessions);  // keeps its capacity
}

unsigned limit_malloc_arenas() {
#ifdef __GLIBC__
  if (std::getenv("MALLOC_ARENA_MAX")) return 0;  // the user's own choice
  const unsigned arenas = std::max(2u, std::thread::hardware_concurrency());
  return ::mallopt(M_ARENA_MAX, static_cast<int>(arenas)) == 1 ? arenas : 0;
#else
  return 0;
#endif
}

/**
 * glibc keeps what a large write freed (its body, its JSON tree, its records: megabytes a batch
 * of 500 points) in the arena of the pool thread that ran it, an arena a thread: after a million
 * points in batches of 500, 58 MB (60 B a point) stayed resident and free (malloc_stats and
 * malloc_trim called in the running server). malloc_trim hands it back, but takes 16 ms and
 * makes the next batches fault their pages in again: trimmed once a second during an ingest,
 * 200k points went in 10% slower. So it runs once writes pause: a second after the last large
 * write, on a thread of its own. The plain readers' kept tapes of large bodies are freed then too.
 */
class FreedMemory {
 public:
  FreedMemory() : thread_([this] { run(); }) {}
  ~FreedMemory() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  FreedMemory(const FreedMemory&) = delete;
  FreedMemory& operator=(const FreedMemory&) = delete;

  void after_large_write() {
    bool wake = false;
    {
      std::lock_guard<std::mutex> g(mu_);
      last_write_ = std::chrono::steady_clock::now();
      wake = !pending_;  // a pending trim already waits for a pause
      pending_ = true;
    }
    if (wake) cv_.notify_one();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (!pending_) {
        cv_.wait(lock);
        continue;
      }
      const auto due = last_write_ + std::chrono::seconds(1);
      if (std::chrono::steady_clock::now() < due) {
        cv_.wait_until(lock, due);
        continue;
      }
      pending_ = false;
      lock.unlock();
      plain::release_large_tapes();  // the plain readers' tapes of large bodies
#ifdef __GLIBC__
      ::malloc_trim(0);
#endif
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, pending_ = false;
  std::chrono::steady_clock::time_point last_write_;
  std::thread thread_;  ///< last: started once the members it reads exist
};

struct Server::Impl {
  Api& api;
  ServerOptions options;
  /// One io_context a thread, each run by its own thread: a connection lives on one of them
  /// (dealt in turn), so its handlers never pass between threads and no thread wakes another
  /// to run them. `ioc` (thread 0) also holds the acceptor, the signals and the accept timer.
  net::io_context ioc;
  std::vector<std::unique_ptr<net::io_context>> more;  ///< threads 1..threads-1
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  std::atomic<size_t> next_context{0};
  /// What each context ([0] ioc's, then more's) shares with the others, a cache line each (its
  /// thread writes `cpu` as it runs, the others only read it).
  struct alignas(64) ContextState {
    /// The connections it serves now: a thread that serves one holds no answer back
    /// (HeldAnswers).
    std::atomic<int> connections{0};
    /// The core its thread was on when it last began to read a request (-1: none yet): where
    /// steering finds the thread to hand a connection to (steer_target).
    std::atomic<int> cpu{-1};
    /// The context a connection of this one last wanted to move to and could not (that thread
    /// served no fewer connections), and when (Clock ticks): a connection moving the other way
    /// between equal shares makes room for it (steer_target).
    std::atomic<int> wished_to{-1};
    std::atomic<Clock::rep> wished_at{0};
  };
  std::unique_ptr<ContextState[]> context_state;
  /// Connections handed from one thread to another (ServerOptions::steer_connections).
  std::atomic<uint64_t> connections_moved{0};
  /// Times a thread serving one connection moved itself to that connection's core
  /// (follow_alone).
  std::atomic<uint64_t> threads_moved{0};
  /// The listening socket's protocol (IPv4 or IPv6), which a handed-over socket keeps.
  tcp listen_protocol = tcp::v4();
  tcp::acceptor acceptor;
  net::signal_set signals;
  std::atomic<bool> stopping{false};
  std::mutex sessions_mu;
  std::map<uint64_t, std::weak_ptr<SessionBase>> sessions;
  uint64_t next_session = 0;
  net::steady_timer accept_retry;  ///< backs accept off while it fails (no file descriptors)
  /// A thread that wakes every eighth of the idle timeout (10 ms .. 1 s) to close connections
  /// idle past it (sweep_idle). A deadline of each connection's own, restarted at every read and
  /// write as Beast's stream timer does, moved the earliest timer at each of them: at one
  /// connection, two timerfd_settime calls a request (strace), each a system call on this
  /// virtual machine. Its own thread, not a timer of the connections' threads, so that an idle
  /// server's polling threads (--poll-us) are not woken to poll again at every tick.
  std::thread sweeper;
  std::mutex sweep_mu;
  std::condition_variable sweep_cv;
  bool sweep_stop = false;
  /// Bytes of request bodies being read or handled now, by every session (reserved from the
  /// Content-Length once a request's header is read; the body limit for a chunked one).
  std::atomic<size_t> bodies_in_flight{0};
  std::chrono::milliseconds accept_backoff{0};
  /// Set when the server speaks TLS (--tls-cert and --tls-key): every connection is then TLS.
  std::optional<net::ssl::context> tls;
  /// Hands what large writes freed back to the system once writes pause (see after_write).
  FreedMemory freed_memory;

  /// Called on the pool after a write whose body held `body_bytes`.
  void after_write(size_t body_bytes) {
    if (body_bytes >= (size_t{64} << 10)) freed_memory.after_large_write();
  }
  /// Threads for a cluster node's requests, one pool per level (see on_read): [0] clients'
  /// requests (they wait on other nodes), [1] the writes a shard's primary orders and
  /// replicates, [2] every other internal call. Made on first use. Their threads mostly wait
  /// on other nodes: a pool holds more of them than there are cores.
  std::mutex pools_mu;
  std::unique_ptr<net::thread_pool> internal_pools[3];

  net::thread_pool& internal_pool(const Request& r) {
    const std::string path = r.target.substr(0, r.target.find('?'));
    const bool primary_write = path.rfind("/waypoint/cluster/", 0) == 0 && path.size() > 6 &&
                               path.compare(path.size() - 6, 6, "/write") == 0;
    const int level = !r.internal ? 0 : primary_write ? 1 : 2;
    std::lock_guard<std::mutex> lock(pools_mu);
    auto& pool = internal_pools[level];
    if (!pool) pool = std::make_unique<net::thread_pool>(std::max(16, 8 * options.threads));
    return *pool;
  }

  Impl(Api& a, ServerOptions o)
      : api(a),
        options(std::move(o)),
        ioc(1),
        acceptor(net::make_strand(ioc)),
        signals(ioc, SIGINT, SIGTERM),
        accept_retry(acceptor.get_executor()) {
    context_state.reset(new ContextState[std::max(1, options.threads)]);
    for (int i = 1; i < options.threads; ++i) {
      more.push_back(std::make_unique<net::io_context>(1));
      keep_running.push_back(net::make_work_guard(*more.back()));
    }
  }

  /// The context of the next connection, in turn (an index of context_state).
  size_t next_context_index() { return next_context++ % (more.size() + 1); }
  Executor executor_of(size_t i) {
    return i == 0 ? ioc.get_executor() : more[i - 1]->get_executor();
  }

  /// The context a connection of context `from` whose packets arrive on core `cpu` should move
  /// to, if any: the one whose thread is on that core now (and `from`'s is not), when it serves
  /// fewer connections than `from`'s; or when it serves as many, a connection of its own wanted
  /// to move to `from` within the last second, and the shares would stay within a quarter of
  /// each other (16/16 -> 17/15, not 4/4 -> 5/3): the two trade places, the other one then finds
  /// room. A client of one thread, whose connections all want the same core at any one time,
  /// parts the shares by one at most (at eight connections 5/3 cost 11% of the QPS).
  std::optional<size_t> steer_target(int cpu, size_t from) {
    constexpr auto relaxed = std::memory_order_relaxed;
    ContextState& f = context_state[from];
    if (cpu < 0 || f.cpu.load(relaxed) == cpu) return std::nullopt;
    const std::optional<size_t> to = context_on(cpu);  // not `from`: its thread is elsewhere
    if (!to) return std::nullopt;
    ContextState& t = context_state[*to];
    const int on_to = t.connections.load(relaxed), on_from = f.connections.load(relaxed);
    if (on_to < on_from) return to;
    const Clock::rep now = Clock::now().time_since_epoch().count();
    if (on_to == on_from && 4 * (on_to + 1) <= 5 * (on_from - 1) &&
        t.wished_to.load(relaxed) == int(from) &&
        now - t.wished_at.load(relaxed) < Clock::duration(std::chrono::seconds(1)).count()) {
      t.wished_to.store(-1, relaxed);  // room made for one
      return to;
    }
    f.wished_to.store(int(*to), relaxed);
    f.wished_at.store(now, relaxed);
    return std::nullopt;
  }
  /// The first context whose thread was last seen on core `cpu` (ContextState::cpu), if any.
  std::optional<size_t> context_on(int cpu) const {
    for (size_t i = 0; i <= more.size(); ++i) {
      if (context_state[i].cpu.load(std::memory_order_relaxed) == cpu) return i;
    }
    return std::nullopt;
  }
  /// When context `from`'s thread (the calling one) serves one connection alone, whose packets
  /// arrive on core `cpu` where no thread of the server was last seen: moves the thread there.
  /// At one connection the client is now and then woken on the other core;
  /// steering hands the connection to the thread last seen there, but when both threads last
  /// read on one core none is (an idle thread does not run, so its core stays where it was), and
  /// the connection stayed apart from its client, each request and answer a wake-up of the other
  /// core. Its affinity is narrowed to `cpu`, which moves it now, then set back to what it was:
  /// it stays on `cpu` until the scheduler moves it, and may run anywhere it could before. Not
  /// done when the thread may run on one core only, or not on `cpu`; nor by a server of one
  /// thread, which would chase a client woken on either core in turn (at one connection 5% fewer
  /// requests, a move at nearly every check; docs/server.md, "A thread serving one connection
  /// follows it").
  void follow_alone(int cpu, size_t from) {
    ContextState& f = context_state[from];
    if (cpu < 0 || cpu >= CPU_SETSIZE || f.connections.load(std::memory_order_relaxed) != 1 ||
        context_on(cpu)) {  // `from`'s own thread there included
      return;
    }
    cpu_set_t allowed, only;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || !CPU_ISSET(cpu, &allowed) ||
        CPU_COUNT(&allowed) < 2) {
      return;
    }
    CPU_ZERO(&only);
    CPU_SET(cpu, &only);
    if (sched_setaffinity(0, sizeof only, &only) != 0) return;
    sched_setaffinity(0, sizeof allowed, &allowed);  // fails only if the cores were taken away
    f.cpu.store(cpu, std::memory_order_relaxed);
    ++threads_moved;
  }
  /// Serves `socket` on `context` as session `id` (a new one, or one handed over: the map's
  /// entry then names the new session, and the old one's end leaves it).
  void start_session(Socket socket, size_t context, uint64_t id);
  /// The transport's lines of GET /metrics: connections a thread serves, those handed over,
  /// and the threads that followed their lone connection.
  std::string metrics_text() const;

  void accept();
  /// After a failed accept: try again later, waiting longer each time (10 ms .. 1 s).
  void retry_accept();
  /// A connection beyond max_connections: a 503 and close, without a session.
  void refuse(Socket socket);
  /// The connections open now, collected under sessions_mu; the caller acts on them outside it
  /// (dropping the last reference to a session runs ~Session, which takes the same lock).
  std::vector<std::shared_ptr<SessionBase>> live_sessions();
  /// The sweeper's loop: every tick, asks each connection whether it has been idle past the
  /// timeout, until shutdown.
  void sweep_idle();
  void shutdown();
};

namespace {

/// A complete HTTP/1.1 answer that closes the connection, for the few written without a session.
std::string raw_answer(unsigned status, const std::string& message) {
  const std::string body = nlohmann::json{{"status", {{"error", message}}}, {"time", 0}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  append_head(out, status, 11, "application/json", body.size(), false, {});
  return out + body;
}

/// Why a request is refused before it reaches the API: its status and message.
struct Refusal {
  unsigned status;
  std::string message;
};

/// The answer to a request the parser refused, or nothing for a transport error (the peer
/// left, the idle timeout), which only closes the connection.
std::optional<Refusal> malformed_answer(beast::error_code ec, const beast::flat_buffer& buffer,
                                        uint32_t header_limit) {
  if (ec.category() != bhttp::make_error_code(bhttp::error::bad_method).category()) {
    return std::nullopt;
  }
  if (ec == bhttp::error::header_limit) {
    // The parser consumes the request line and each field as soon as they are whole, so what
    // is left unread is the piece over the limit: still the request line ("GET /aaa...") means a
    // long URL, 414; a field, 431.
    const auto data = buffer.data();
    const std::string_view rest(static_cast<const char*>(data.data()), data.size());
    const size_t space = rest.find(' ');
    const bool request_line = space > 0 && space < 16 && space + 1 < rest.size() &&
                              (rest[space + 1] == '/' || rest.compare(space + 1, 4, "http") == 0);
    if (request_line) return Refusal{414, "URI too long"};
    return Refusal{431, "Request header fields too large (at most " + std::to_string(header_limit) +
                            " bytes)"};
  }
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) {
    return std::nullopt;
  }
  return Refusal{400, "Malformed HTTP request: " + ec.message()};
}

}  // namespace

/// One connection: read a request, answer it, repeat while keep-alive. `Stream` is
/// TcpStream, or beast::ssl_stream over one (a TLS handshake first, a TLS close last).
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, TcpStream>;
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

 public:
  template <class... StreamArgs>
  Session(Server::Impl& server, uint64_t id, size_t context, StreamArgs&&... stream_args)
      : stream_(std::forward<StreamArgs>(stream_args)...),
        server_(server),
        id_(id),
        context_(context) {
    ++on_thread();
    // Beast reads max(512, free capacity) bytes a time, and its parser consumes all it is given:
    // a buffer left to grow by itself stays at 512 bytes, and a 1.4 KB search took three
    // recvmsg calls. Reserved once, a request up to this size is one call.
    buffer_.reserve(kReadChunk);
    if constexpr (!kTls) {
      beast::error_code ec;
      lowest().socket().non_blocking(true, ec);  // for send_now; asynchronous operations alike
      send_now_ok_ = !ec;
    }
  }

  ~Session() {
    --on_thread();
    release_body();
    std::lock_guard<std::mutex> g(server_.sessions_mu);
    // A session handed to another thread left its entry to its successor (not expired).
    const auto it = server_.sessions.find(id_);
    if (it != server_.sessions.end() && it->second.expired()) server_.sessions.erase(it);
  }

  void start() override {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if constexpr (kTls) {
        // The handshake counts as idleness: a client that starts none is closed in time.
        self->wait_on_client();
        self->stream_.async_handshake(net::ssl::stream_base::server, [self](beast::error_code ec) {
          self->done_waiting();
          if (ec) return self->lowest().close();
          self->read();
        });
      } else {
        self->read();
      }
    });
  }

  void close_if_idle() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) self->close_now();
    });
  }

  void close_if_idle_too_long(Clock::time_point now) override {
    if (!idle_past_timeout(now)) return;  // most of the time: nothing posted, no thread woken
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      // Again on the connection's thread: an operation may have completed meanwhile.
      if (self->idle_past_timeout(Clock::now())) self->close_now();  // its operation fails
    });
  }

 private:
  /// Reads the next request: its head here when it is of the simple form clients send most
  /// (request_head.h), else with Beast's parser from the same bytes.
  void read() {
    busy_ = false;
    body_reserved_ = false;
    cors_.origin.clear();
    gzip_ = false;
    if (server_.stopping) return close();
    parser_.reset();
    // Until the head names the route, the largest body any route takes (Beast checks a
    // Content-Length against the limit as the head completes); then the route's own.
    body_limit_ =
        std::max(server_.api.options().max_body_bytes, server_.api.options().max_upload_bytes);
    if (buffer_.size() > 0) return on_bytes();  // pipelined: the request is here already
    if (!server_.more.empty()) {
      // Written only when it changed: the line stays shared with the threads that read it.
      std::atomic<int>& cpu = server_.context_state[context_].cpu;
      const int now_on = sched_getcpu();
      if (cpu.load(std::memory_order_relaxed) != now_on)
        cpu.store(now_on, std::memory_order_relaxed);
      if (server_.options.steer_connections && ++reads_ % kSteerEvery == 0 && steer()) return;
    }
    wait_on_client();
    auto done = [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->done_waiting();
      self->buffer_.commit(n);
      if (ec) return self->close();  // the peer left, or the idle timeout: nothing to answer
      self->on_bytes();
    };
    reader().async_read_some(buffer_.prepare(kReadChunk), std::move(done));
  }

  /// Between two requests, nothing read of the next, no operation under way: hands the
  /// connection to the thread on the core its packets arrive on (Server::Impl::steer_target),
  /// or, its thread's only one, may move the thread there (Server::Impl::follow_alone; the only
  /// way for a TLS connection, whose TLS state would move with it). True when it was handed
  /// over: a new session on that thread goes on with the socket, this one ends.
  bool steer() {
    Socket& socket = lowest().socket();
    int cpu = -1;
    socklen_t size = sizeof cpu;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_INCOMING_CPU, &cpu, &size) != 0) {
      return false;
    }
    // A TLS connection stays (its TLS state would move with it); its thread may follow it.
    const std::optional<size_t> to = kTls ? std::nullopt : server_.steer_target(cpu, context_);
    if (!to) {
      server_.follow_alone(cpu, context_);  // the connection stays; its thread may move
      return false;
    }
    if constexpr (!kTls) {
      beast::error_code ec;
      const Socket::native_handle_type fd = socket.release(ec);  // leaves the reactor, not closed
      if (ec) return false;
      Socket moved(server_.executor_of(*to));
      moved.assign(server_.listen_protocol, fd, ec);
      if (ec) {
        ::close(fd);
        return true;  // the connection is lost (out of memory in the reactor): as a reset
      }
      ++server_.connections_moved;
      server_.start_session(std::move(moved), *to, id_);
      return true;
    }
    return false;
  }

  /// A request's first bytes are in buffer_.
  void on_bytes() {
    busy_ = true;  // a request has begun: shutdown lets it finish
    const auto data = buffer_.data();
    const std::string_view bytes(static_cast<const char*>(data.data()), data.size());
    RequestHead head;
    if (read_simple_head(bytes, head)) return on_simple_head(bytes, head);
    // Anything else (a head not whole in one read, a chunked body, a malformed request...):
    // Beast's parser, which reads what buffer_ holds before it reads the socket.
    parser_.emplace();
    parser_->body_limit(body_limit_);
    parser_->header_limit(kHeaderLimit);
    read_some();
  }

  /// A simple head read from `bytes` (buffer_'s): its body, what came with the head and then
  /// reads straight into the request, and the request answered.
  void on_simple_head(std::string_view bytes, const RequestHead& head) {
    take_cors(head.origin, head.cors_method, head.cors_headers);
    gzip_ = accepts_gzip(head.accept_encoding);
    if (!admit_body(head.method, head.target, head.content_length)) return;
    Pending p;
    p.request.method = std::string(head.method);
    p.request.target = std::string(head.target);
    p.request.api_key = std::string(head.api_key);
    p.request.authorization = std::string(head.authorization);
    p.request.content_type = std::string(head.content_type);
    p.request.internal = head.internal;
    p.keep_alive = head.keep_alive;
    p.version = head.version;
    p.head = head.method == "HEAD";
    const size_t have =
        static_cast<size_t>(std::min<uint64_t>(bytes.size() - head.size, head.content_length));
    p.request.body.assign(bytes.data() + head.size, have);
    buffer_.consume(head.size + have);  // what is left is the next request's
    if (have == head.content_length) {
      return dispatch(std::move(p.request), p.keep_alive, p.version, p.head);
    }
    p.request.body.resize(static_cast<size_t>(head.content_length));
    p.body_read = have;
    pending_.emplace(std::move(p));
    if (have == 0 && head.expect_continue && head.version == 11) {
      return send_continue(&Session::read_body);
    }
    read_body();
  }

  /// A 100 (Continue) to a client that waits for one before it sends its body (`Expect:
  /// 100-continue` in HTTP/1.1; curl asks so of bodies over 1 MiB and waits a second without
  /// it), then `then`, the read of that body. No other write is under way: the last answer is
  /// sent before the next request is read.
  void send_continue(void (Session::*then)()) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    wait_on_client();
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this(), then](beast::error_code ec, std::size_t) {
                       self->done_waiting();
                       if (ec) return self->close();
                       ((*self).*then)();
                     });
  }

  /// Reads the rest of a simple request's body into it a piece at a time, the idle timeout
  /// restarting with each piece (as read_some), then answers the request.
  void read_body() {
    wait_on_client();
    std::string& body = pending_->request.body;
    const size_t have = pending_->body_read;
    auto done = [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->done_waiting();
      if (ec) return self->close();  // the peer left within the body, or the idle timeout
      Pending& pending = *self->pending_;
      pending.body_read += n;
      if (pending.body_read < pending.request.body.size()) return self->read_body();
      Pending p = std::move(*self->pending_);
      self->pending_.reset();
      self->dispatch(std::move(p.request), p.keep_alive, p.version, p.head);
    };
    reader().async_read_some(net::buffer(body.data() + have, body.size() - have), std::move(done));
  }

  /// Once a request's head is read: the body limit of its route (a snapshot upload may be a whole
  /// collection; every other body max_body_bytes), then the body's place in the server's budget
  /// of bodies in flight. False when the request is refused for either (a 413 or a 503, on its
  /// way to the client).
  bool admit_body(std::string_view method, std::string_view target,
                  std::optional<uint64_t> length) {
    const bool upload = is_snapshot_upload(method, target);
    body_limit_ =
        upload ? server_.api.options().max_upload_bytes : server_.api.options().max_body_bytes;
    if (parser_) parser_->body_limit(body_limit_);
    if (length && *length > body_limit_) {
      on_read(bhttp::error::body_limit, 0);
      return false;
    }
    if (reserve_body(length)) return true;
    write(refusal(503, "Service unavailable: the server holds its maximum of " +
                           std::to_string(server_.options.max_bodies_in_flight >> 20) +
                           " MiB of request bodies; retry later"),
          false, 11);
    return false;
  }

  /// Keeps the request's CORS fields for its answer (the server's options allowing).
  void take_cors(std::string_view origin, std::string_view method, std::string_view headers) {
    if (origin.empty() || !server_.options.cors) return;
    cors_.origin.assign(origin.data(), origin.size());
    cors_.method.assign(method.data(), method.size());
    cors_.headers.assign(headers.data(), headers.size());
  }

  /// The TCP stream under the connection (the stream itself when it is not TLS).
  TcpStream& lowest() { return beast::get_lowest_layer(stream_); }

  /// What requests are read from: the TLS stream, or a plain connection's socket itself
  /// (basic_stream wraps each receive in an operation of its own, its timer and rate limit,
  /// neither used on a read: the sweeper closes idle connections; code that every request ran
  /// between two system calls).
  auto& reader() {
    if constexpr (kTls) {
      return stream_;
    } else {
      return lowest().socket();
    }
  }

  /// An operation that waits on the client begins: the idle time counts from now.
  void wait_on_client() {
    waiting_since_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    waiting_.store(true, std::memory_order_relaxed);
  }
  void done_waiting() { waiting_.store(false, std::memory_order_relaxed); }

  bool idle_past_timeout(Clock::time_point now) const {
    const Clock::time_point since{Clock::duration(waiting_since_.load(std::memory_order_relaxed))};
    return waiting_.load(std::memory_order_relaxed) && now - since >= server_.options.idle_timeout;
  }

  void close_now() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

  /// Reads the request a piece at a time, the idle timeout restarting with each piece: a client
  /// that keeps sending a large body is never cut; one that sends nothing for the idle timeout
  /// (before or within a request) is.
  void read_some() {
    wait_on_client();
    auto done = beast::bind_front_handler(&Session::on_read_some, shared_from_this());
    bhttp::async_read_some(reader(), buffer_, *parser_, std::move(done));
  }

  void on_read_some(beast::error_code ec, std::size_t bytes) {
    done_waiting();
    if (bytes > 0) busy_ = true;  // a request has begun: shutdown lets it finish
    if (!ec && parser_->is_header_done() && !body_reserved_) {
      const auto& req = parser_->get();
      const auto field = [&req](bhttp::field f) {
        const auto v = req[f];
        return std::string_view(v.data(), v.size());
      };
      take_cors(field(bhttp::field::origin), field(bhttp::field::access_control_request_method),
                field(bhttp::field::access_control_request_headers));
      gzip_ = accepts_gzip(field(bhttp::field::accept_encoding));
      const auto method = parser_->get().method_string();
      const auto target = parser_->get().target();
      const auto length = parser_->content_length();
      if (!admit_body(std::string_view(method.data(), method.size()),
                      std::string_view(target.data(), target.size()),
                      length ? std::optional<uint64_t>(*length) : std::nullopt)) {
        return;
      }
      if (!parser_->is_done() && parser_->get().version() == 11 &&
          beast::iequals(parser_->get()[bhttp::field::expect], "100-continue")) {
        return send_continue(&Session::read_some);
      }
    }
    if (!ec && !parser_->is_done()) return read_some();
    on_read(ec, bytes);
  }

  /// Counts this request's body against the server's in-flight budget; false when it would
  /// pass it (the request is then refused before its body is read).
  bool reserve_body(std::optional<uint64_t> length) {
    const size_t want = length ? static_cast<size_t>(*length) : body_limit_;
    body_reserved_ = true;
    const size_t before = server_.bodies_in_flight.fetch_add(want);
    reserved_bytes_ = want;
    if (before + want <= server_.options.max_bodies_in_flight || before == 0) return true;
    release_body();
    drain_after_write_ = true;
    return false;
  }

  void release_body() {
    if (reserved_bytes_) server_.bodies_in_flight.fetch_sub(reserved_bytes_);
    reserved_bytes_ = 0;
  }

  /// An answer the server gives itself (413, 503, a malformed request), as JSON.
  static Response refusal(unsigned status, const std::string& message) {
    return {status, nlohmann::json{{"status", {{"error", message}}}, {"time", 0}}.dump(
                        -1, ' ', false, nlohmann::json::error_handler_t::replace)};
  }

  void on_read(beast::error_code ec, std::size_t) {
    busy_ = true;
    if (ec == bhttp::error::end_of_stream) return close();
    if (ec == bhttp::error::body_limit) {
      drain_after_write_ = true;
      return write(refusal(413, "Payload too large: the body exceeds " +
                                    std::to_string(body_limit_) + " bytes"),
                   false, 11);
    }
    if (ec) {
      // A request the parser refused gets its status (400, 414, 431) before the connection
      // closes; a transport error (timeout, reset) only closes it.
      const std::optional<Refusal> bad = malformed_answer(ec, buffer_, kHeaderLimit);
      if (!bad) return close();
      drain_after_write_ = true;
      return write(refusal(bad->status, bad->message), false, 11);
    }
    bhttp::request<bhttp::string_body> req = parser_->release();
    Request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.body = std::move(req.body());
    if (auto it = req.find("api-key"); it != req.end()) r.api_key = std::string(it->value());
    r.internal = req.find("waypoint-internal") != req.end();
    if (auto it = req.find(bhttp::field::authorization); it != req.end()) {
      r.authorization = std::string(it->value());
    }
    if (auto it = req.find(bhttp::field::content_type); it != req.end()) {
      r.content_type = std::string(it->value());
    }
    dispatch(std::move(r), req.keep_alive(), req.version(), req.method() == bhttp::verb::head);
  }

  /// Answers a request whose head and body are read, here or on a pool (see below).
  void dispatch(Request r, bool keep_alive, unsigned version, bool head) {
    // A CORS preflight is the server's to answer, as Qdrant's middleware does, before the API
    // and its key check: the page's request itself is checked when it comes.
    if (is_cors_preflight(r.method, cors_.origin, cors_.method)) {
      release_body();
      std::string extra;
      append_cors_preflight(extra, cors_.origin, cors_.headers);
      cors_.origin.clear();  // the preflight's own headers, not an answer's
      begin_answer(200, version, {}, 0, keep_alive, extra);
      return write_some();
    }
    // The route found once, here, for where the request runs and for handle() (null for want
    // of memory: handle() tries again, and the request runs on the pool).
    std::optional<Api::Resolved> resolved;
    try {
      resolved = Api::resolve(r.method, r.target);
    } catch (...) {
    }
    // A write may wait on the disk (wait=true) or the index: on the pool, it holds up no
    // connection of this thread (each thread runs its own connections).
    if (r.internal || server_.api.clustered() || !resolved ||
        Api::access_of(*resolved) == Api::Access::kWrite) {
      // On a cluster node (http/cluster_router.h) a request may wait on calls to other nodes:
      // run it off the connection threads, on the pool of its level, so that no node's threads
      // can all wait on each other (a client's request waits on primaries' writes, a primary's
      // write on replicas' applies, which wait on nothing). On a single node, writes.
      net::thread_pool& pool = server_.internal_pool(r);
      // The work guard keeps run() going until the answer is written.
      net::post(pool, [self = shared_from_this(), r = std::move(r), resolved = std::move(resolved),
                       keep_alive, version, head,
                       work = net::make_work_guard(stream_.get_executor())]() mutable {
        Response answer = self->server_.api.handle(r, resolved ? &*resolved : nullptr);
        const size_t body_bytes = r.body.size();
        r.body = std::string();  // freed before the trim
        self->server_.after_write(body_bytes);
        net::post(self->stream_.get_executor(),
                  [self, answer = std::move(answer), keep_alive, version, head]() mutable {
                    self->release_body();
                    self->write(std::move(answer), keep_alive, version, head);
                  });
      });
      return;
    }
    // Held answers go out before a request that may take long, and once the oldest has waited
    // long enough (HeldAnswers).
    if (!held_answers.sessions.empty() && (!resolved->route || !resolved->route->plain ||
                                           Clock::now() - held_answers.since >= kHoldAtMost)) {
      send_held_answers();
    }
    Response answer = server_.api.handle(r, &*resolved);
    r.body.clear();
    r.body.shrink_to_fit();
    release_body();  // the body is gone: its bytes no longer count
    write(std::move(answer), keep_alive, version, head);
  }

  /// Sends an answer; to a HEAD request, its headers only (with the Content-Length of the body).
  /// The status line and headers are written as text (`append_head`) and go out with the body in
  /// one gathered write: Beast's serializer walked its buffer sequences a piece at a time, 4% of
  /// a pinned server's time at 32 connections.
  void write(Response r, bool keep_alive, unsigned version, bool head = false) {
    if (!r.file.empty()) return write_file(std::move(r), keep_alive, version, head);
    // An answer large enough to be compressed varies by Accept-Encoding, sent compressed or not
    // (a cache must not hand the one a client without gzip got to a client with it, nor the
    // reverse); a smaller one is the same for every client.
    const size_t least = server_.options.compress_min_bytes;
    if (least > 0 && r.body.size() >= least) {
      if (gzip_) {
        r.body = gzip_compress(r.body);
        begin_answer(r.status, version, r.content_type, r.body.size(), keep_alive,
                     "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
      } else {
        begin_answer(r.status, version, r.content_type, r.body.size(), keep_alive,
                     "Vary: Accept-Encoding\r\n");
      }
    } else {
      begin_answer(r.status, version, r.content_type, r.body.size(), keep_alive, {});
    }
    if (!head) answer_body_ = std::move(r.body);
    write_some();
  }

  /// An answer written as text: its head in head_, no body yet, nothing sent.
  void begin_answer(unsigned status, unsigned version, std::string_view content_type,
                    uint64_t content_length, bool keep_alive, std::string_view extra) {
    answer_keep_alive_ = keep_alive && !server_.stopping;
    head_.clear();
    std::string with_cors;
    if (!cors_.origin.empty()) {
      with_cors.assign(extra.data(), extra.size());
      append_cors(with_cors, cors_.origin);
      extra = with_cors;
    }
    append_head(head_, status, version, content_type, content_length, answer_keep_alive_, extra);
    answer_body_.clear();
    answer_sent_ = 0;
  }

  /// Sends a file (a snapshot download) from disk a piece at a time: its size in memory is the
  /// serializer's buffer, not the file. A file gone since the route answered is a 404.
  void write_file(Response r, bool keep_alive, unsigned version, bool head) {
    bhttp::file_body::value_type body;
    beast::error_code ec;
    body.open(r.file.c_str(), beast::file_mode::scan, ec);
    if (ec) return write(refusal(404, "Not found: the file is gone"), keep_alive, version, head);
    const uint64_t size = body.size();
    const std::string disposition =
        "attachment; filename=\"" + std::filesystem::path(r.file).filename().string() + "\"";
    if (head) {
      // Headers only: those of the download, with the file's Content-Length.
      begin_answer(r.status, version, r.content_type, size, keep_alive,
                   "Content-Disposition: " + disposition + "\r\n");
      return write_some();
    }
    file_res_.emplace(std::piecewise_construct, std::make_tuple(std::move(body)),
                      std::make_tuple(static_cast<bhttp::status>(r.status), version));
    file_res_->set(bhttp::field::server, "waypoint");
    file_res_->set(bhttp::field::content_type, r.content_type);
    file_res_->set(bhttp::field::content_disposition, disposition);
    // Beast writes this head and checks nothing: what append_cors checks, checked here.
    if (!cors_.origin.empty() && plain_field_value(cors_.origin)) {
      file_res_->set(bhttp::field::access_control_allow_origin, cors_.origin);
      file_res_->set(bhttp::field::vary, "Origin");
    }
    file_res_->keep_alive(keep_alive && !server_.stopping);
    file_res_->content_length(size);
    file_serializer_.emplace(*file_res_);
    write_some();
  }

  /// Writes the answer a piece at a time, the idle timeout restarting with each piece: a long
  /// answer to a client that keeps reading is never cut; one that stops reading for the idle
  /// timeout is.
  void write_some() {
    wait_on_client();
    if (file_serializer_) {
      return bhttp::async_write_some(
          stream_, *file_serializer_,
          [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
    }
    if constexpr (!kTls) {
      if (answer_sent_ == 0 && send_now_ok_) {
        if (on_thread().load(std::memory_order_relaxed) > 1) return hold();
        if (send_now()) return;
      }
    }
    write_rest();
  }

  /// Holds the answer back until this thread's requests already read are answered (see
  /// HeldAnswers): the first held posts their sending, which runs after the handlers ready now.
  void hold() {
    if (held_answers.sessions.empty()) {
      held_answers.since = Clock::now();
      net::post(stream_.get_executor(), [] { send_held_answers(); });
    }
    held_answers.sessions.push_back(shared_from_this());
  }

  void send_held() override {
    if constexpr (!kTls) {
      if (send_now()) return;
    }
    write_rest();
  }

  /// Writes what is left of the answer with an asynchronous write.
  void write_rest() {
    stream_.async_write_some(unsent(),
                             [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                               self->answer_sent_ += n;
                               self->on_write(ec);
                             });
  }

  bool answer_sent_whole() const { return answer_sent_ == head_.size() + answer_body_.size(); }

  /// What is left of the answer: of its head, then of its body.
  std::array<net::const_buffer, 2> unsent() const {
    const size_t in_head = std::min(answer_sent_, head_.size());
    return {net::buffer(head_.data() + in_head, head_.size() - in_head),
            net::buffer(answer_body_.data() + (answer_sent_ - in_head),
                        answer_body_.size() - (answer_sent_ - in_head))};
  }

  /// Sends what the socket takes now (it never blocks: non_blocking is set), and goes on with the
  /// connection when that is the whole answer; false leaves the rest to an asynchronous write.
  /// Most answers fit the socket's buffer: the next request is then read without the write's
  /// completion passing through the event loop (an epoll_wait a request fewer at one connection).
  bool send_now() {
    beast::error_code ec;
    answer_sent_ += lowest().socket().send(unsent(), 0, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) ec = {};
    if (!ec && !answer_sent_whole()) return false;
    on_write(ec);
    return true;
  }

  void on_write(beast::error_code ec) {
    done_waiting();
    if (ec) return close();
    if (file_serializer_ ? !file_serializer_->is_done() : !answer_sent_whole()) {
      return write_some();
    }
    const bool keep_alive = file_res_ ? file_res_->keep_alive() : answer_keep_alive_;
    answer_body_ = std::string();  // a large answer's memory goes now, not at the next one
    file_serializer_.reset();
    file_res_.reset();
    if (drain_after_write_) return drain();
    if (!keep_alive) return close();
    // The next request is read once the handlers already ready have run: Asio begins a read
    // with a receive, which right after an answer finds nothing (the client sends once it has
    // read the answer), a system call for nothing (~1 us on this virtual machine; at 32
    // connections every other recvmsg). Behind the others, the receive mostly finds the next
    // request already there; alone (one connection), it runs at once, while the client reads.
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

  /// Lingering close after an early answer (413): stop sending, read and discard what the client
  /// is still sending for up to a second, then close. Closing at once with unread input would
  /// reset the connection and could destroy the answer before the client reads it.
  /// Under TLS the bytes drained are TLS records, read from the TCP stream and discarded alike.
  void drain() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().expires_after(std::chrono::seconds(1));
    lowest().async_read_some(net::buffer(scratch_),
                             [self = shared_from_this()](beast::error_code e, std::size_t) {
                               if (e) return self->lowest().close();
                               self->drain();
                             });
  }

  /// Ends the connection: a TLS close_notify first (bounded by a second), then the TCP send side.
  void close() {
    if constexpr (kTls) {
      lowest().expires_after(std::chrono::seconds(1));
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
        beast::error_code ec;
        self->lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
      });
    } else {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
  }

  /// Request line and headers together, at most (a longer request line is a 414, longer headers
  /// a 431).
  static constexpr uint32_t kHeaderLimit = 16 * 1024;
  /// Bytes a read asks the socket for (a search with a 1536-d vector fits).
  static constexpr size_t kReadChunk = 32 * 1024;

  Stream stream_;
  beast::flat_buffer buffer_;
  /// Beast's parser, for a request read_simple_head declined (none while a simple one is read).
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  /// A simple request whose body is being read (read_body), and how it is to be answered.
  struct Pending {
    Request request;
    bool keep_alive = true;
    unsigned version = 11;
    bool head = false;     ///< a HEAD request
    size_t body_read = 0;  ///< bytes of the body read
  };
  std::optional<Pending> pending_;
  size_t body_limit_ = 0;  ///< of the request being read
  /// Whether the request being answered accepts a gzipped answer (Accept-Encoding).
  bool gzip_ = false;
  /// The CORS fields of the request being answered (take_cors); an empty origin: none, or CORS
  /// is off.
  struct {
    std::string origin, method, headers;
  } cors_;
  std::string head_;         ///< the answer's status line and headers (write)
  std::string answer_body_;  ///< its body (empty for HEAD)
  size_t answer_sent_ = 0;   ///< bytes of head_ then answer_body_ written
  bool answer_keep_alive_ = false;
  std::optional<bhttp::response<bhttp::file_body>> file_res_;  ///< a file being sent
  std::optional<bhttp::response_serializer<bhttp::file_body>> file_serializer_;
  Server::Impl& server_;
  uint64_t id_;
  size_t context_;  ///< the context (thread) that runs it
  /// The connections its thread serves.
  std::atomic<int>& on_thread() { return server_.context_state[context_].connections; }
  /// Requests read; every kSteerEvery-th, a connection may be handed over (steer).
  uint64_t reads_ = 0;
  static constexpr uint64_t kSteerEvery = 64;
  bool busy_ = false;
  bool body_reserved_ = false;  ///< this request's body has been counted (reserve_body)
  size_t reserved_bytes_ = 0;
  bool drain_after_write_ = false;
  /// An operation waits on the client (see close_if_idle_too_long), since waiting_since_ (a
  /// steady_clock count). Written by the connection's thread, read by the sweeper's.
  std::atomic<bool> waiting_{false};
  std::atomic<Clock::rep> waiting_since_{0};
  bool send_now_ok_ = false;  ///< the socket never blocks (send_now may write to it)
  std::array<char, 16384> scratch_;
};

void Server::Impl::accept() {
  const size_t context = next_context_index();
  acceptor.async_accept(executor_of(context), [this, context](beast::error_code ec, Socket socket) {
    if (stopping) return;
    if (ec) return retry_accept();  // out of file descriptors, or a connection gone already
    accept_backoff = std::chrono::milliseconds(0);
    uint64_t id;
    {
      std::lock_guard<std::mutex> g(sessions_mu);
      if (sessions.size() >= options.max_connections) {
        refuse(std::move(socket));
        return accept();
      }
      id = next_session++;
    }
    // Small request/response pairs: without TCP_NODELAY, Nagle's algorithm and delayed ACKs add
    // tens of microseconds to every answer.
    beast::error_code nodelay_ec;
    socket.set_option(tcp::no_delay(true), nodelay_ec);
    start_session(std::move(socket), context, id);
    accept();
  });
}

void Server::Impl::start_session(Socket socket, size_t context, uint64_t id) {
  std::shared_ptr<SessionBase> session;
  if (tls) {
    session = std::make_shared<Session<beast::ssl_stream<TcpStream>>>(*this, id, context,
                                                                      std::move(socket), *tls);
  } else {
    session = std::make_shared<Session<TcpStream>>(*this, id, context, std::move(socket));
  }
  {
    std::lock_guard<std::mutex> g(sessions_mu);
    sessions[id] = session;
  }
  session->start();
}

std::string Server::Impl::metrics_text() const {
  std::string out =
      "# HELP waypoint_http_connections Connections a server thread serves now.\n"
      "# TYPE waypoint_http_connections gauge\n";
  for (size_t i = 0; i <= more.size(); ++i) {
    out += "waypoint_http_connections{thread=\"" + std::to_string(i) + "\"} " +
           std::to_string(context_state[i].connections.load(std::memory_order_relaxed)) + "\n";
  }
  out +=
      "# HELP waypoint_http_connections_moved_total Connections handed from one server thread "
      "to another (to the thread on the core their packets arrive on).\n"
      "# TYPE waypoint_http_connections_moved_total counter\n"
      "waypoint_http_connections_moved_total " +
      std::to_string(connections_moved.load(std::memory_order_relaxed)) + "\n" +
      "# HELP waypoint_http_threads_moved_total Times a server thread serving one connection "
      "moved itself to the core that connection's packets arrive on.\n"
      "# TYPE waypoint_http_threads_moved_total counter\n"
      "waypoint_http_threads_moved_total " +
      std::to_string(threads_moved.load(std::memory_order_relaxed)) + "\n";
  return out;
}

void Server::Impl::retry_accept() {
  accept_backoff = std::min(std::chrono::milliseconds(1000),
                            std::max(std::chrono::milliseconds(10), accept_backoff * 2));
  accept_retry.expires_after(accept_backoff);
  accept_retry.async_wait([this](beast::error_code ec) {
    if (!ec && !stopping) accept();
  });
}

void Server::Impl::refuse(Socket socket) {
  if (tls) {
    // A plain-text answer means nothing to a TLS client: close, as when the backlog is full.
    beast::error_code ignored;
    socket.close(ignored);
    return;
  }
  auto sock = std::make_shared<Socket>(std::move(socket));
  auto text = std::make_shared<std::string>(
      raw_answer(503, "Service unavailable: the server holds its maximum of " +
                          std::to_string(options.max_connections) + " connections; retry later"));
  net::async_write(*sock, net::buffer(*text), [sock, text](beast::error_code, std::size_t) {
    beast::error_code ignored;
    sock->shutdown(tcp::socket::shutdown_both, ignored);
  });
}

std::vector<std::shared_ptr<SessionBase>> Server::Impl::live_sessions() {
  std::vector<std::shared_ptr<SessionBase>> live;
  std::lock_guard<std::mutex> g(sessions_mu);
  for (auto& kv : sessions) {
    if (auto s = kv.second.lock()) live.push_back(std::move(s));
  }
  return live;
}

void Server::Impl::sweep_idle() {
  const auto tick = std::clamp<Clock::duration>(
      options.idle_timeout / 8, std::chrono::milliseconds(10), std::chrono::seconds(1));
  std::unique_lock<std::mutex> lock(sweep_mu);
  while (!sweep_cv.wait_for(lock, tick, [this] { return sweep_stop; })) {
    lock.unlock();
    const auto now = Clock::now();
    for (auto& s : live_sessions()) s->close_if_idle_too_long(now);
    lock.lock();
  }
}

void Server::Impl::shutdown() {
  if (stopping.exchange(true)) return;
  beast::error_code ec;
  signals.cancel(ec);
  net::post(acceptor.get_executor(), [this] {
    beast::error_code ignored;
    acceptor.close(ignored);
    accept_retry.cancel();
  });
  {
    std::lock_guard<std::mutex> g(sweep_mu);
    sweep_stop = true;
  }
  sweep_cv.notify_one();
  for (auto& s : live_sessions()) s->close_if_idle();
  // The other threads' run() returns once their connections are gone.
  for (auto& guard : keep_running) guard.reset();
}

Server::Server(Api& api, ServerOptions options)
    : impl_(std::make_unique<Impl>(api, std::move(options))) {
  const ServerOptions& o = impl_->options;
  WP_THROW_IF_NOT(o.threads >= 1 && o.threads <= 1024, "threads must be in 1..1024, got ",
                  o.threads);
  WP_THROW_IF_NOT(o.max_connections >= 1, "max_connections must be at least 1");
  WP_THROW_IF_NOT(o.tls_cert.empty() == o.tls_key.empty(),
                  "tls-cert and tls-key go together: give both or neither");
  if (!o.tls_cert.empty()) {
    // TLS 1.2 and 1.3 only, with OpenSSL's default cipher list.
    auto& ctx = impl_->tls.emplace(net::ssl::context::tls_server);
    ctx.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                    net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                    net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
    beast::error_code ec;
    ctx.use_certificate_chain_file(o.tls_cert, ec);
    WP_THROW_IF_NOT(!ec, "tls-cert: cannot load a PEM certificate chain from ", o.tls_cert, ": ",
                    ec.message());
    ctx.use_private_key_file(o.tls_key, net::ssl::context::pem, ec);
    WP_THROW_IF_NOT(!ec, "tls-key: cannot load a PEM private key from ", o.tls_key, ": ",
                    ec.message());
    WP_THROW_IF_NOT(SSL_CTX_check_private_key(ctx.native_handle()) == 1,
                    "tls-key: the private key does not match the certificate of tls-cert");
  }
  // Last: a constructor that throws leaves the Api nothing pointing into it.
  api.set_transport_metrics([impl = impl_.get()] { return impl->metrics_text(); });
}

Server::~Server() {
  impl_->api.set_transport_metrics(nullptr);
}

void Server::listen() {
  beast::error_code ec;
  const auto address = net::ip::make_address(impl_->options.host, ec);
  WP_THROW_IF_NOT(!ec, "host: '", impl_->options.host, "' is not an IP address");
  const tcp::endpoint endpoint(address, impl_->options.port);
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  impl_->listen_protocol = endpoint.protocol();
  WP_THROW_IF_NOT(!ec, "cannot listen on ", impl_->options.host, ":", impl_->options.port, ": ",
                  ec.message());
}

uint16_t Server::port() const {
  return impl_->acceptor.local_endpoint().port();
}

namespace {
/// Runs `ioc` until it stops. With `poll` > 0 the thread looks for ready handlers without
/// sleeping for that long after its last one, and only then sleeps in the kernel: a request that
/// arrives meanwhile is read without a wake-up of this thread (on this virtual machine the
/// wake-ups cost 12-23 us a round trip: bench/tcp_floor 8.5-11.4 us spinning, 20-34 us sleeping).
void run_context(net::io_context& ioc, std::chrono::microseconds poll) {
  if (poll.count() <= 0) {
    ioc.run();
  } else {
    auto last = Clock::now();
    while (!ioc.stopped()) {
      if (ioc.poll() > 0) {  // an epoll_wait that returns at once, and the handlers it readied
        last = Clock::now();
      } else if (!ioc.stopped() && Clock::now() - last >= poll) {
        ioc.run_one();  // sleeps until a handler is ready
        last = Clock::now();
      }
    }
  }
  // None is held once the context has run out of work; should one be, its session goes now,
  // while the server it belongs to still exists, not when the thread exits.
  held_answers.sessions.clear();
}
}  // namespace

void Server::run() {
  impl_->signals.async_wait([this](beast::error_code ec, int) {
    if (!ec) impl_->shutdown();
  });
  impl_->accept();
  impl_->sweeper = std::thread([this] { impl_->sweep_idle(); });
  const std::chrono::microseconds poll = impl_->options.poll;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < impl_->more.size(); ++i) {
    threads.emplace_back([c = impl_->more[i].get(), poll, i] {
      // "wp-http-1" ... in top -H and perf (the first context runs on the main thread).
      const std::string name = "wp-http-" + std::to_string(i + 1);
      pthread_setname_np(pthread_self(), name.c_str());
      run_context(*c, poll);
    });
  }
  run_context(impl_->ioc, poll);
  for (auto& t : threads) t.join();
  impl_->sweeper.join();
}

void Server::stop() {
  net::post(impl_->ioc, [this] { impl_->shutdown(); });
}

}  // namespace wp::http
