# The interpreter-free engine: the compiled model.c and the kernels it calls
# (TINYML_ENGINE_DIR empty: a model that calls no kernels, e.g. a test fixture).
if(NOT EXISTS "${TINYML_MODEL_DIR}/model.h" OR NOT EXISTS "${TINYML_MODEL_DIR}/model.c")
  message(FATAL_ERROR "TINYML_MODEL_DIR='${TINYML_MODEL_DIR}' holds no model.c and model.h (run tinyml compile)")
endif()

function(tinyml_backend_setup target)
  set(engine_sources "")
  if(TINYML_ENGINE_DIR)
    file(GLOB engine_sources "${TINYML_ENGINE_DIR}/*.c")
    target_include_directories(${target} PRIVATE "${TINYML_ENGINE_DIR}")
  endif()
  target_sources(${target} PRIVATE
    "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/tm_model_engine.c"
    "${TINYML_MODEL_DIR}/model.c"
    ${engine_sources})
  target_include_directories(${target} PRIVATE "${TINYML_MODEL_DIR}")
endfunction()
