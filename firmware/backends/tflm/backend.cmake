# TFLite-Micro: the interpreter with the artifacts `tinyml emit` writes
# (model_data.cc/.h, model_ops.h, model_io.h in TINYML_MODEL_DIR), over a
# TFLite-Micro tree the user brings (this project ships none):
#
#   TINYML_TFLM_DIR  the tree (default: $ENV{TINYML_TFLM_DIR}): a tflite-micro
#                    checkout whose tools/make/downloads hold the third-party
#                    headers, or create_tflm_tree.py output (third_party/ inside)
#   TINYML_TFLM_LIB  a static library built from that tree for this port's core
#                    (e.g. gen/.../lib/libtensorflow-microlite.a of TFLM's make);
#                    empty: the tree's sources are compiled here, which needs an
#                    exported tree (create_tflm_tree.py: one target, no tests)
#
# The library must be built with the same TINYML_TFLM_DEFINES (default
# $ENV{TINYML_TFLM_DEFINES}, else TF_LITE_STATIC_MEMORY; they change struct
# layouts and which functions exist). With CMSIS-NN in the tree the build
# defines CMSIS_NN, so model_ops.h's Register_*_INT8() name CMSIS-NN's kernels.
set(TINYML_TFLM_DIR "$ENV{TINYML_TFLM_DIR}" CACHE PATH "TFLite-Micro tree (tflm backend)")
set(TINYML_TFLM_LIB "$ENV{TINYML_TFLM_LIB}" CACHE FILEPATH "prebuilt TFLite-Micro static library (empty: compile the tree)")
# TFLM's make adds TF_LITE_STRIP_ERROR_STRINGS and NDEBUG to BUILD_TYPE=release
# (then MicroPrintf is not in the library): name them here, or in the environment.
if(DEFINED ENV{TINYML_TFLM_DEFINES})
  set(tinyml_tflm_default_defines "$ENV{TINYML_TFLM_DEFINES}")
else()
  set(tinyml_tflm_default_defines "TF_LITE_STATIC_MEMORY")
endif()
set(TINYML_TFLM_DEFINES "${tinyml_tflm_default_defines}" CACHE STRING "defines TFLite-Micro was (or is) built with")

foreach(name model_data.cc model_data.h model_ops.h model_io.h)
  if(NOT EXISTS "${TINYML_MODEL_DIR}/${name}")
    message(FATAL_ERROR "TINYML_MODEL_DIR='${TINYML_MODEL_DIR}' holds no ${name} for the tflm backend (run tinyml emit)")
  endif()
endforeach()
if(NOT TINYML_TFLM_DIR OR NOT EXISTS "${TINYML_TFLM_DIR}/tensorflow/lite/micro/micro_interpreter.h")
  message(FATAL_ERROR "TINYML_TFLM_DIR='${TINYML_TFLM_DIR}' is not a TFLite-Micro tree "
    "(no tensorflow/lite/micro/micro_interpreter.h): set TINYML_TFLM_DIR")
endif()
if(TINYML_TFLM_LIB AND NOT EXISTS "${TINYML_TFLM_LIB}")
  message(FATAL_ERROR "TINYML_TFLM_LIB='${TINYML_TFLM_LIB}' does not exist")
endif()

# Third-party headers: third_party/ of an exported tree, tools/make/downloads/ of a checkout.
set(tinyml_tflm_includes "${TINYML_TFLM_DIR}")
set(tinyml_tflm_cmsis_nn "")
foreach(root "${TINYML_TFLM_DIR}/third_party" "${TINYML_TFLM_DIR}/tensorflow/lite/micro/tools/make/downloads")
  foreach(sub flatbuffers/include gemmlowp ruy kissfft cmsis_nn cmsis_nn/Include cmsis/CMSIS/Core/Include)
    if(IS_DIRECTORY "${root}/${sub}")
      list(APPEND tinyml_tflm_includes "${root}/${sub}")
    endif()
  endforeach()
  if(NOT tinyml_tflm_cmsis_nn AND IS_DIRECTORY "${root}/cmsis_nn/Source")
    set(tinyml_tflm_cmsis_nn "${root}/cmsis_nn")
  endif()
endforeach()
set(tinyml_tflm_flatbuffers_found OFF)
foreach(dir ${tinyml_tflm_includes})
  if(EXISTS "${dir}/flatbuffers/flatbuffers.h")
    set(tinyml_tflm_flatbuffers_found ON)
  endif()
endforeach()
if(NOT tinyml_tflm_flatbuffers_found)
  message(FATAL_ERROR "no flatbuffers headers in ${TINYML_TFLM_DIR}/third_party or its tools/make/downloads")
endif()

# The sources of an exported tree, with each vendor kernel (kernels/cmsis_nn/X.cc)
# replacing the reference kernels/X.cc. TFLM's own micro_time.cc / debug_log.cc
# are left out (a tree exported for several targets holds one per target, and
# cortex_m_generic's needs a device header): tm_tflm_platform.cc stands in.
function(tinyml_tflm_tree_sources out)
  set(tree "${TINYML_TFLM_DIR}")
  file(GLOB_RECURSE sources RELATIVE "${tree}" "${tree}/tensorflow/*.cc" "${tree}/tensorflow/*.c")
  list(FILTER sources EXCLUDE REGEX "(_test\\.cc|/examples/|/benchmarks/|/tools/|/testing/|/python/|/integration_tests/)")
  list(FILTER sources EXCLUDE REGEX "(^|/)(micro_time|debug_log)\\.cc$")
  list(FILTER sources EXCLUDE REGEX "(^|/)(test_helpers|test_helper_custom_ops|fake_micro_context|mock_micro_graph)\\.cc$")
  set(kernels "tensorflow/lite/micro/kernels")
  file(GLOB vendor_kernels RELATIVE "${tree}/${kernels}" "${tree}/${kernels}/*/*.cc")
  foreach(vendor_kernel ${vendor_kernels})
    get_filename_component(name "${vendor_kernel}" NAME)
    list(REMOVE_ITEM sources "${kernels}/${name}")
  endforeach()
  list(TRANSFORM sources PREPEND "${tree}/")
  if(tinyml_tflm_cmsis_nn)
    file(GLOB_RECURSE nn_sources "${tinyml_tflm_cmsis_nn}/Source/*.c")
    list(FILTER nn_sources EXCLUDE REGEX "(_f16|_f32|arm_nntables_flt)\\.c$")
    list(APPEND sources ${nn_sources})
  endif()
  set(${out} ${sources} PARENT_SCOPE)
endfunction()

function(tinyml_backend_setup target)
  set(dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  target_sources(${target} PRIVATE "${dir}/tm_model_tflm.cc" "${TINYML_MODEL_DIR}/model_data.cc")
  target_include_directories(${target} PRIVATE "${TINYML_MODEL_DIR}")
  # SYSTEM: TFLite-Micro's headers are not held to this project's -Werror.
  target_include_directories(${target} SYSTEM PRIVATE ${tinyml_tflm_includes})
  target_compile_definitions(${target} PRIVATE ${TINYML_TFLM_DEFINES})
  if(tinyml_tflm_cmsis_nn)
    target_compile_definitions(${target} PRIVATE CMSIS_NN)
  endif()
  if(TINYML_TFLM_LIB)
    target_link_libraries(${target} PRIVATE "${TINYML_TFLM_LIB}" m)
    message(STATUS "tinyml: tflm backend, TFLite-Micro library ${TINYML_TFLM_LIB}, headers from ${TINYML_TFLM_DIR}")
  else()
    tinyml_tflm_tree_sources(sources)
    list(LENGTH sources count)
    # Compiled into the image with the port's flags; TFLite-Micro's own code
    # is not held to this project's warnings (-w), and CMSIS-NN wants GNU C.
    target_sources(${target} PRIVATE ${sources} "${dir}/tm_tflm_platform.cc")
    target_link_libraries(${target} PRIVATE m)
    set_source_files_properties(${sources} PROPERTIES COMPILE_OPTIONS "-w;$<$<COMPILE_LANGUAGE:C>:-std=gnu99>")
    message(STATUS "tinyml: tflm backend, ${count} TFLite-Micro sources from ${TINYML_TFLM_DIR}")
  endif()
endfunction()
