# Test backend: the fixture model (TINYML_MODEL_DIR/model.c) behind an input
# buffer that every inference overwrites, as TFLite-Micro's arena reuses the
# input tensor's memory for later layers.
if(NOT EXISTS "${TINYML_MODEL_DIR}/model.h" OR NOT EXISTS "${TINYML_MODEL_DIR}/model.c")
  message(FATAL_ERROR "TINYML_MODEL_DIR='${TINYML_MODEL_DIR}' holds no model.c and model.h")
endif()

function(tinyml_backend_setup target)
  target_sources(${target} PRIVATE "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/tm_model_clobber.c"
    "${TINYML_MODEL_DIR}/model.c")
  target_include_directories(${target} PRIVATE "${TINYML_MODEL_DIR}")
endfunction()
