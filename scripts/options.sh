# Sourced by setup.sh, build.sh and test.sh: reads their common options from "$@" into
#   torch (ON|OFF), sanitize (a list, or empty), build_type, build (the build folder), extra (the
#   remaining arguments, passed on to cmake).
torch=ON
sanitize=""
extra=()
while (($#)); do
  case "$1" in
    --no-torch) torch=OFF ;;
    --sanitize)
      [[ $# -ge 2 ]] || { echo "--sanitize needs a list, e.g. address,undefined or thread" >&2; exit 2; }
      sanitize="$2"
      shift
      ;;
    --sanitize=*) sanitize="${1#*=}" ;;
    *) extra+=("$1") ;;
  esac
  shift
done
build_type=Release
build=${WAYPOINT_BUILD_DIR:-build}
if [[ -n "$sanitize" ]]; then
  torch=OFF
  build_type=RelWithDebInfo
  build=${WAYPOINT_BUILD_DIR:-build-sanitize-${sanitize//,/-}}
  # No bench executables: no test runs them, and they take about a minute to compile here.
  extra=(-DWAYPOINT_BUILD_BENCH=OFF ${extra[@]+"${extra[@]}"})
  if [[ "$sanitize" == address,undefined ]]; then
    # clang, with libFuzzer's coverage in every library: scripts/fuzz.sh links its targets in
    # this same build, so CI compiles the code once for the suite and the fuzzers (clang is also
    # the faster compiler here: http/server.cpp 113 s with g++, 84 s). A folder configured with
    # another compiler is configured afresh (CMake drops its cache).
    extra=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DWAYPOINT_FUZZ=ON
           ${extra[@]+"${extra[@]}"})
  elif [[ "$sanitize" == *thread* ]]; then
    # clang, whose OpenMP runtime (libomp) tells TSan of its barriers and handoffs through the
    # Archer tool (scripts/test.sh loads it): OpenMP loops then run on several threads under
    # TSan. With g++ and libgomp, which TSan cannot see, every parallel region read as a race,
    # and the suite ran one OpenMP thread.
    extra=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ ${extra[@]+"${extra[@]}"})
  fi
fi
# A build folder configured for the first time is a unity build (CMAKE_UNITY_BUILD: a library's
# sources compiled eight to a unit, so that their headers are parsed once for the eight): a whole
# Release build took 325 s here against 510 s file by file (2 cores). A folder configured already
# keeps its setting; pass -DCMAKE_UNITY_BUILD=OFF for one that you rebuild file by file as you
# edit (a change to one source recompiles its unit of eight).
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  extra=(-DCMAKE_UNITY_BUILD=ON ${extra[@]+"${extra[@]}"})
fi
