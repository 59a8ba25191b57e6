#include "http/etcd_client.h"

#include "http/http_connection.h"

#include <openssl/evp.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace wp::http::etcd {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using nlohmann::json;
using tcp = net::ip::tcp;

namespace {

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string unbase64(const std::string& text) {
  if (text.empty()) return {};
  if (text.size() % 4 != 0) throw EtcdError(-1, "etcd answered a value that is not base64");
  std::string out(3 * text.size() / 4, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) throw EtcdError(-1, "etcd answered a value that is not base64");
  size_t pad = 0;  // EVP_DecodeBlock counts the bytes '=' stands for
  for (size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

/// An int64 field of an answer: absent is 0 (the gateway leaves out zero values), strings and
/// numbers both read.
int64_t number(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return 0;
  try {
    if (it->is_string()) return std::stoll(it->get<std::string>());
    if (it->is_number_integer()) return it->get<int64_t>();
  } catch (const std::exception&) {
  }
  throw EtcdError(-1, std::string("etcd answered a bad '") + key + "': " + it->dump());
}

std::string bytes(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string()) throw EtcdError(-1, std::string("etcd answered a bad '") + key + "'");
  return unbase64(it->get<std::string>());
}

KeyValue key_value(const json& j) {
  KeyValue kv;
  kv.key = bytes(j, "key");
  kv.value = bytes(j, "value");
  kv.create_revision = number(j, "create_revision");
  kv.mod_revision = number(j, "mod_revision");
  kv.version = number(j, "version");
  kv.lease = number(j, "lease");
  return kv;
}

Range range_of(const json& answer) {
  Range r;
  r.revision = number(answer.value("header", json::object()), "revision");
  if (const auto it = answer.find("kvs"); it != answer.end() && it->is_array()) {
    for (const json& kv : *it) r.kvs.push_back(key_value(kv));
  }
  return r;
}

/// The error etcd put in an answer ({"error", "code", "message"}), if any.
void throw_if_error(const json& answer, unsigned status) {
  if (status == 200 && !answer.contains("error")) return;
  const json& e =
      answer.contains("error") && answer["error"].is_object() ? answer["error"] : answer;
  const int code = e.value("code", -1);
  std::string message = e.value("message", std::string());
  if (message.empty() && e.contains("error") && e["error"].is_string()) message = e["error"];
  if (message.empty()) message = "HTTP " + std::to_string(status);
  throw EtcdError(code, "etcd: " + message);
}

json op_json(const Op& op) {
  switch (op.kind) {
    case Op::Kind::kPut: {
      json put{{"key", base64(op.key)}, {"value", base64(op.value)}};
      if (op.lease != 0) put["lease"] = std::to_string(op.lease);
      return {{"request_put", put}};
    }
    case Op::Kind::kDelete:
      return {{"request_delete_range", {{"key", base64(op.key)}}}};
    case Op::Kind::kGet:
      return {{"request_range", {{"key", base64(op.key)}}}};
  }
  return nullptr;
}

json compare_json(const Compare& c) {
  static const char* const kTargets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
  static const char* const kResults[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  static const char* const kFields[] = {"version", "create_revision", "mod_revision", "value",
                                        "lease"};
  const int t = static_cast<int>(c.target);
  json j{{"key", base64(c.key)},
         {"target", kTargets[t]},
         {"result", kResults[static_cast<int>(c.result)]}};
  if (c.target == Compare::Target::kValue) {
    j["value"] = base64(c.value);
  } else {
    j[kFields[t]] = std::to_string(c.number);
  }
  return j;
}

}  // namespace

std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

Compare Compare::missing(std::string key) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kVersion;
  c.number = 0;
  return c;
}

Compare Compare::mod_revision(std::string key, int64_t revision) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kMod;
  c.number = revision;
  return c;
}

Compare Compare::value_is(std::string key, std::string value) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kValue;
  c.value = std::move(value);
  return c;
}

Op Op::put(std::string key, std::string value, int64_t lease) {
  Op op;
  op.kind = Kind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

Op Op::erase(std::string key) {
  Op op;
  op.kind = Kind::kDelete;
  op.key = std::move(key);
  return op;
}

Op Op::get(std::string key) {
  Op op;
  op.kind = Kind::kGet;
  op.key = std::move(key);
  return op;
}

// ---------------------------------------------------------------------------------------------

struct Client::Impl {
  Impl(const std::string& endpoint, std::chrono::milliseconds t)
      : endpoint(endpoint),
        timeout(t),
        connection(parse_endpoint(endpoint).first, parse_endpoint(endpoint).second) {}

  json call(const std::string& target, const json& body) {
    std::lock_guard<std::mutex> lock(mu);
    for (int attempt = 0;; ++attempt) {
      const bool reused = connection.open();
      try {
        if (!connection.open()) connection.connect(timeout);
        Connection::Parser parser;
        parser.body_limit(size_t{256} << 20);
        connection.send(bhttp::verb::post, target, body.dump(), parser, timeout);
        connection.read_body(parser, timeout);
        const auto& res = parser.get();
        if (!res.keep_alive()) connection.close();
        // A streamed answer (lease keep-alive) is one {"result": ...} object per line.
        std::string text = res.body();
        if (const size_t nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
        json answer = json::parse(text, nullptr, false);
        if (answer.is_discarded()) {
          throw EtcdError(-1, "etcd: " + target + " answered HTTP " +
                                  std::to_string(res.result_int()) + " that is not JSON");
        }
        throw_if_error(answer, res.result_int());
        if (answer.contains("result") && answer["result"].is_object()) {
          json r = std::move(answer["result"]);
          return r;
        }
        return answer;
      } catch (const TransportError& e) {
        connection.close();
        if (!reused || attempt > 0) throw EtcdError(-1, std::string("etcd: ") + e.what());
      } catch (const EtcdError&) {
        connection.close();  // its answer may have been cut short
        throw;
      }
    }
  }

  std::string endpoint;
  std::chrono::milliseconds timeout;
  std::mutex mu;
  Connection connection;
};

Client::Client(const std::string& endpoint, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(endpoint, timeout)) {}

Client::~Client() = default;

const std::string& Client::endpoint() const {
  return impl_->endpoint;
}

Range Client::get(const std::string& key) {
  return range_of(impl_->call("/v3/kv/range", {{"key", base64(key)}}));
}

Range Client::get_prefix(const std::string& prefix) {
  return range_of(impl_->call(
      "/v3/kv/range", {{"key", base64(prefix)}, {"range_end", base64(prefix_end(prefix))}}));
}

int64_t Client::put(const std::string& key, const std::string& value, int64_t lease) {
  json body{{"key", base64(key)}, {"value", base64(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  return number(impl_->call("/v3/kv/put", body).value("header", json::object()), "revision");
}

int64_t Client::erase(const std::string& key) {
  return number(impl_->call("/v3/kv/deleterange", {{"key", base64(key)}}), "deleted");
}

int64_t Client::erase_prefix(const std::string& prefix) {
  return number(impl_->call("/v3/kv/deleterange",
                            {{"key", base64(prefix)}, {"range_end", base64(prefix_end(prefix))}}),
                "deleted");
}

TxnResult Client::txn(const std::vector<Compare>& compare, const std::vector<Op>& success,
                      const std::vector<Op>& failure) {
  json body{{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const Compare& c : compare) body["compare"].push_back(compare_json(c));
  for (const Op& op : success) body["success"].push_back(op_json(op));
  for (const Op& op : failure) body["failure"].push_back(op_json(op));
  const json answer = impl_->call("/v3/kv/txn", body);
  TxnResult r;
  r.succeeded = answer.value("succeeded", false);
  r.revision = number(answer.value("header", json::object()), "revision");
  if (const auto it = answer.find("responses"); it != answer.end() && it->is_array()) {
    for (const json& one : *it) {
      if (one.contains("response_range")) r.gets.push_back(range_of(one["response_range"]));
    }
  }
  return r;
}

int64_t Client::grant(int64_t ttl_seconds) {
  const json answer = impl_->call("/v3/lease/grant", {{"TTL", std::to_string(ttl_seconds)}});
  const int64_t id = number(answer, "ID");
  if (id == 0) throw EtcdError(-1, "etcd: lease grant answered no id: " + answer.dump());
  return id;
}

int64_t Client::keep_alive(int64_t lease) {
  return number(impl_->call("/v3/lease/keepalive", {{"ID", std::to_string(lease)}}), "TTL");
}

void Client::revoke(int64_t lease) {
  try {
    impl_->call("/v3/lease/revoke", {{"ID", std::to_string(lease)}});
  } catch (const EtcdError& e) {
    if (e.code() != 5) throw;  // NotFound: already expired
  }
}

void Client::compact(int64_t revision) {
  impl_->call("/v3/kv/compaction", {{"revision", std::to_string(revision)}, {"physical", true}});
}

// ---------------------------------------------------------------------------------------------

struct Watch::Impl {
  Impl(Watch& owner, const std::string& endpoint, std::string prefix, ListFn list, EventsFn events)
      : owner(owner),
        endpoint(endpoint),
        prefix(std::move(prefix)),
        on_list(std::move(list)),
        on_events(std::move(events)),
        lister(endpoint),
        thread([this] { loop(); }) {}

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    cv.notify_all();
    thread.join();
  }

  bool stopped() const { return stopping.load(); }

  void loop() {
    auto backoff = std::chrono::milliseconds(100);
    bool need_list = true;
    int64_t next = 0;  // the revision to watch from
    while (!stopped()) {
      try {
        if (need_list) {
          const Range r = lister.get_prefix(prefix);
          on_list(r);
          owner.revision_ = r.revision;
          ++owner.lists_;
          next = r.revision + 1;
          need_list = false;
        }
        need_list = stream(next, backoff);
      } catch (const EtcdError&) {
        // etcd answered an error, or the stream broke: try again from `next` after a pause.
      } catch (const TransportError&) {
        // etcd unreachable: likewise
      }
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, backoff, [&] { return stopping.load(); });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
  }

  /// Watches from `next` until the stream ends; returns true when the keys must be listed
  /// again (etcd compacted past `next`). Moves `next` past every event handed on.
  bool stream(int64_t& next, std::chrono::milliseconds& backoff) {
    const auto [host, port] = parse_endpoint(endpoint);
    Connection c(host, port);
    const auto stop = [this] { return stopped(); };
    c.connect(std::chrono::seconds(5), stop);
    json create{{"key", base64(prefix)},
                {"range_end", base64(prefix_end(prefix))},
                {"start_revision", std::to_string(next)},
                {"progress_notify", true}};
    Connection::Parser parser;
    parser.body_limit(boost::none);
    c.send(bhttp::verb::post, "/v3/watch", json{{"create_request", create}}.dump(), parser,
           std::chrono::seconds(5), stop);
    if (parser.get().result_int() != 200) {
      throw EtcdError(-1, "etcd: watch answered HTTP " + std::to_string(parser.get().result_int()));
    }
    // The answer streams one JSON object per line for as long as the watch lasts; etcd sends a
    // progress notification every few minutes when nothing changes.
    size_t scanned = 0;
    while (!stopped()) {
      std::string& body = parser.get().body();
      size_t nl;
      while ((nl = body.find('\n', scanned)) != std::string::npos) {
        const json message = json::parse(body.begin(), body.begin() + nl, nullptr, false);
        body.erase(0, nl + 1);
        scanned = 0;
        if (message.is_discarded()) continue;
        if (message.contains("error")) throw_if_error(message, 200);
        const json result = message.value("result", json::object());
        if (number(result, "compact_revision") > 0) return true;  // history gone: list again
        if (result.value("canceled", false)) return false;        // canceled otherwise: resume
        backoff = std::chrono::milliseconds(100);
        const auto it = result.find("events");
        if (it == result.end() || !it->is_array() || it->empty()) continue;
        std::vector<Event> events;
        for (const json& e : *it) {
          Event ev;
          ev.type =
              e.value("type", std::string()) == "DELETE" ? Event::Type::kDelete : Event::Type::kPut;
          ev.kv = key_value(e.value("kv", json::object()));
          events.push_back(std::move(ev));
        }
        const int64_t revision = events.back().kv.mod_revision;
        on_events(events, revision);
        owner.revision_ = revision;
        next = revision + 1;
      }
      scanned = body.size();
      if (parser.is_done()) return false;
      c.read_some(parser, std::chrono::minutes(15), stop);
    }
    return false;
  }

  Watch& owner;
  std::string endpoint, prefix;
  ListFn on_list;
  EventsFn on_events;
  Client lister;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> stopping{false};
  std::thread thread;  // last: starts once the rest is in place
};

Watch::Watch(const std::string& endpoint, std::string prefix, ListFn on_list, EventsFn on_events)
    : impl_(std::make_unique<Impl>(*this, endpoint, std::move(prefix), std::move(on_list),
                                   std::move(on_events))) {}

Watch::~Watch() {
  impl_.reset();
}

}  // namespace wp::http::etcd
