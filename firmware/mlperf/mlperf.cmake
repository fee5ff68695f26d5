# Builds the image with the MLPerf Tiny protocol instead of the binary one:
#
#   cmake -S firmware -B build ... -DCMAKE_PROJECT_tinyml_firmware_INCLUDE=firmware/mlperf/mlperf.cmake
#         [-DTM_MLPERF_MODEL=ic01] [-DTM_MLPERF_INPUT_UINT8=ON]
#
# Included right after project(); once firmware/CMakeLists.txt has defined the
# target, the deferred call swaps core/tm_main.c for tm_mlperf_main.c and adds
# the handler. Everything else (port, backend, model) is the normal build.
set(TM_MLPERF_MODEL "tinyml" CACHE STRING "model name the MLPerf Tiny runner sees (ic01, kws01, vww01, ad01)")
option(TM_MLPERF_INPUT_UINT8 "db bytes are uint8 (runner data files): subtract 128" OFF)

function(tinyml_mlperf_setup)
  set(dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  get_target_property(sources tinyml_fw SOURCES)
  list(FILTER sources EXCLUDE REGEX "(^|/)tm_main\\.c$")
  set_property(TARGET tinyml_fw PROPERTY SOURCES ${sources} "${dir}/tm_mlperf.c" "${dir}/tm_mlperf_main.c")
  target_include_directories(tinyml_fw PRIVATE "${dir}")
  target_compile_definitions(tinyml_fw PRIVATE TM_MLPERF_MODEL="${TM_MLPERF_MODEL}")
  if(TM_MLPERF_INPUT_UINT8)
    target_compile_definitions(tinyml_fw PRIVATE TM_MLPERF_INPUT_UINT8)
  endif()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL tinyml_mlperf_setup)
