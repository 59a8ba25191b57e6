# Per-target compile flags. Nothing here touches CMAKE_CXX_FLAGS: every flag is opt-in per target.

# waypoint_set_flags(<target>): warnings, -O3 in Release, -march=native when WAYPOINT_NATIVE_ARCH.
function(waypoint_set_flags target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter
                         $<$<CONFIG:Release>:-O3>)
  if(WAYPOINT_NATIVE_ARCH)
    target_compile_options(${target} PRIVATE -march=native)
  endif()
endfunction()
