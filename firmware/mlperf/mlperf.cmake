# Builds the image with the MLPerf Tiny protocol instead of the binary one:
#
#   cmake -S firmware -B build ... -DTINYML_PROTOCOL=mlperf [-DTM_MLPERF_MODEL=ic01]
#         [-DTM_MLPERF_INPUT=int8|uint8|float32] [-DTM_MLPERF_RESULTS=dequantized|softmax|anomaly-score]
#
# (`tinyml flash --protocol mlperf-tiny` sets these from the model.) firmware/CMakeLists.txt
# includes this file and calls tinyml_mlperf_setup(target), which swaps core/tm_main.c for
# tm_mlperf_main.c and adds the handler. Everything else (port, backend, model) is the normal build.
set(TM_MLPERF_MODEL "tinyml" CACHE STRING "model name the MLPerf Tiny runner sees (ic01, kws01, vww01, ad01)")
set(TM_MLPERF_INPUT "int8" CACHE STRING "what db bytes are: int8 (the model's input), uint8 (runner files, minus 128) or float32 (ad01)")
set(TM_MLPERF_RESULTS "dequantized" CACHE STRING "m-results: dequantized outputs, their softmax, or one anomaly-score (ad01)")
option(TM_MLPERF_INPUT_UINT8 "older spelling of TM_MLPERF_INPUT=uint8" OFF)

function(tinyml_mlperf_setup target)
  set(dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  set(input "${TM_MLPERF_INPUT}")
  if(TM_MLPERF_INPUT_UINT8)
    set(input "uint8")
  endif()
  # The db buffer holds one sample as the runner sends it: the model's input bytes, x4 for float32.
  file(STRINGS "${TINYML_MODEL_DIR}/model.h" input_define REGEX "^#define TINYML_MODEL_INPUT_BYTES +[0-9]+")
  if(NOT input_define)
    message(FATAL_ERROR "${TINYML_MODEL_DIR}/model.h has no TINYML_MODEL_INPUT_BYTES (run tinyml compile)")
  endif()
  string(REGEX REPLACE "^#define TINYML_MODEL_INPUT_BYTES +([0-9]+).*" "\\1" input_bytes "${input_define}")
  if(input STREQUAL "float32")
    math(EXPR db_bytes "${input_bytes} * 4")
  elseif(input STREQUAL "int8" OR input STREQUAL "uint8")
    set(db_bytes "${input_bytes}")
  else()
    message(FATAL_ERROR "TM_MLPERF_INPUT='${input}': choose int8, uint8 or float32")
  endif()

  get_target_property(sources ${target} SOURCES)
  list(FILTER sources EXCLUDE REGEX "(^|/)tm_main\\.c$")
  set_property(TARGET ${target} PROPERTY SOURCES ${sources} "${dir}/tm_mlperf.c" "${dir}/tm_mlperf_main.c")
  target_include_directories(${target} PRIVATE "${dir}")
  target_compile_definitions(${target} PRIVATE TM_MLPERF_MODEL="${TM_MLPERF_MODEL}" TM_MLPERF_DB_BYTES=${db_bytes}u)
  if(input STREQUAL "uint8")
    target_compile_definitions(${target} PRIVATE TM_MLPERF_INPUT_UINT8)
  elseif(input STREQUAL "float32")
    target_compile_definitions(${target} PRIVATE TM_MLPERF_INPUT_FLOAT32)
  endif()
  if(TM_MLPERF_RESULTS STREQUAL "softmax")
    target_compile_definitions(${target} PRIVATE TM_MLPERF_RESULTS_SOFTMAX)
  elseif(TM_MLPERF_RESULTS STREQUAL "anomaly-score")
    if(NOT input STREQUAL "float32")
      message(FATAL_ERROR "TM_MLPERF_RESULTS=anomaly-score needs TM_MLPERF_INPUT=float32 (the score compares with the float input)")
    endif()
    target_compile_definitions(${target} PRIVATE TM_MLPERF_RESULTS_ANOMALY)
  elseif(NOT TM_MLPERF_RESULTS STREQUAL "dequantized")
    message(FATAL_ERROR "TM_MLPERF_RESULTS='${TM_MLPERF_RESULTS}': choose dequantized, softmax or anomaly-score")
  endif()
  target_link_libraries(${target} PRIVATE m)  # expf of the softmax results
endfunction()
