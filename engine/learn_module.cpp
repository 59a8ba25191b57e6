#include "engine/learn_module.h"

#include <dlfcn.h>

#include <mutex>

#include "index/error.h"

namespace wp::engine {

namespace {

struct ModuleState {
  std::mutex mu;
  std::string path;
  void* handle = nullptr;  // never closed: its registrations stay in the tables
};

ModuleState& state() {
  static ModuleState s;
  return s;
}

}  // namespace

void set_learn_module(std::string path) {
  std::lock_guard<std::mutex> g(state().mu);
  state().path = std::move(path);
}

bool load_learn_module() {
  ModuleState& s = state();
  std::lock_guard<std::mutex> g(s.mu);
  if (s.handle) return true;
  if (s.path.empty()) return false;
  // RTLD_NOW: a symbol missing from the executable fails here, not in the middle of a job. The
  // module's static registrations run inside dlopen; they take the tables' own locks, never this.
  s.handle = ::dlopen(s.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!s.handle) {
    const char* why = ::dlerror();
    throw InternalError("cannot load the learn module " + s.path +
                        " (LibTorch): " + (why ? why : "unknown error"));
  }
  return true;
}

}  // namespace wp::engine
