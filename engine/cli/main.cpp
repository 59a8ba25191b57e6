// waypoint: the command-line entry point. The commands are whatever the linked modules
// registered in the command table (engine/command/command.h), and, built with LibTorch, those of
// the learn module beside the executable, loaded when first needed (engine/learn_module.h).
#include "engine/command/command.h"

#ifdef WAYPOINT_LEARN_MODULE
#include <unistd.h>

#include <string>

#include "engine/learn_module.h"

namespace {

/// The learn module's file: beside the executable.
std::string learn_module_path() {
  std::string exe(4096, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", exe.data(), exe.size());
  exe.resize(n > 0 ? static_cast<size_t>(n) : 0);
  const size_t slash = exe.rfind('/');
  return (slash == std::string::npos ? std::string(".") : exe.substr(0, slash)) + "/" +
         WAYPOINT_LEARN_MODULE;
}

}  // namespace
#endif

int main(int argc, char** argv) {
#ifdef WAYPOINT_LEARN_MODULE
  wp::engine::set_learn_module(learn_module_path());
  return wp::cli::run_main(argc, argv, &wp::engine::load_learn_module);
#else
  return wp::cli::run_main(argc, argv);
#endif
}
