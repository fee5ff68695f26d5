# Builds the image with the MLPerf Tiny protocol instead of the binary one:
#
#   cmake -S firmware -B build ... -DTINYML_PROTOCOL=mlperf [-DTM_MLPERF_MODEL=ic01] [-DTM_MLPERF_INPUT_UINT8=ON]
#
# firmware/CMakeLists.txt includes this file and calls tinyml_mlperf_setup(target),
# which swaps core/tm_main.c for tm_mlperf_main.c and adds the handler.
# Everything else (port, backend, model) is the normal build.
set(TM_MLPERF_MODEL "tinyml" CACHE STRING "model name the MLPerf Tiny runner sees (ic01, kws01, vww01, ad01)")
option(TM_MLPERF_INPUT_UINT8 "db bytes are uint8 (runner data files): subtract 128" OFF)

function(tinyml_mlperf_setup target)
  set(dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  get_target_property(sources ${target} SOURCES)
  list(FILTER sources EXCLUDE REGEX "(^|/)tm_main\\.c$")
  set_property(TARGET ${target} PROPERTY SOURCES ${sources} "${dir}/tm_mlperf.c" "${dir}/tm_mlperf_main.c")
  target_include_directories(${target} PRIVATE "${dir}")
  target_compile_definitions(${target} PRIVATE TM_MLPERF_MODEL="${TM_MLPERF_MODEL}")
  if(TM_MLPERF_INPUT_UINT8)
    target_compile_definitions(${target} PRIVATE TM_MLPERF_INPUT_UINT8)
  endif()
endfunction()
