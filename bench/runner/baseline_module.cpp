// Loads the hnswlib baseline module (bench/baselines/hnswlib_subject.cpp) on first use, so that
// the code compiled with -march=native stays out of the `waypoint` binary and is only mapped
// into a process that benchmarks against hnswlib.
#include <dlfcn.h>

#include <filesystem>
#include <mutex>
#include <string>

#include "bench/runner/bench_subject.h"
#include "index/error.h"

namespace wp::bench {

namespace {

using Factory = BenchSubject* (*)(const GraphBuildParams*);

/// The module's factory: the path the build wrote it to (WAYPOINT_HNSWLIB_MODULE), else beside
/// the running executable (a relocated build), else the loader's own search path.
Factory hnswlib_factory() {
  static std::once_flag once;
  static Factory factory = nullptr;
  static std::string error;
  std::call_once(once, [] {
    namespace fs = std::filesystem;
    const std::string name = fs::path(WAYPOINT_HNSWLIB_MODULE).filename().string();
    std::error_code ec;
    const fs::path exe_dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
    for (const std::string& path :
         {std::string(WAYPOINT_HNSWLIB_MODULE), (exe_dir / name).string(), name}) {
      void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);  // never closed
      if (!handle) {
        error += std::string("\n  ") + ::dlerror();
        continue;
      }
      factory = reinterpret_cast<Factory>(::dlsym(handle, "waypoint_make_hnswlib_subject"));
      if (factory) return;
      error += "\n  " + path + ": no symbol waypoint_make_hnswlib_subject";
    }
  });
  WP_THROW_IF_NOT(factory, "the hnswlib baseline module could not be loaded:", error);
  return factory;
}

}  // namespace

std::unique_ptr<BenchSubject> make_hnswlib_subject(const GraphBuildParams& p) {
  return std::unique_ptr<BenchSubject>(hnswlib_factory()(&p));
}

}  // namespace wp::bench
