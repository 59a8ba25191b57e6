// waypoint: the command-line entry point. The commands are whatever the linked modules
// registered in the command table (engine/command/command.h); main knows nothing else.
#include "engine/command/command.h"

int main(int argc, char** argv) {
  return wp::cli::run_main(argc, argv);
}
