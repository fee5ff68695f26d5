# Xtensa LX106 (the ESP8266's core) on `qemu-system-xtensa -M sim -cpu lx106
# -semihosting`: the engine's generic C on an Xtensa core, run in CI.
#
# The sim machine has no UART: its only I/O is semihosting (simcall), a
# synchronous call into QEMU's own stdio. So this image does not speak the
# serial protocol: a self-check main (tm_selfcheck_main.c) runs the model on
# inputs compiled in (tm_selfcheck_inputs.h in TINYML_SELFCHECK_DIR, written by
# tinyml.host.selfcheck) and prints every output; the host compares the bytes.
if(NOT CMAKE_TOOLCHAIN_FILE)
  set(CMAKE_TOOLCHAIN_FILE "${CMAKE_CURRENT_LIST_DIR}/toolchain-xtensa-lx106.cmake")
endif()
set(TINYML_SELFCHECK_DIR "${TINYML_MODEL_DIR}" CACHE PATH "directory with tm_selfcheck_inputs.h (xtensa_lx106_sim)")

function(tinyml_port_setup target)
  set(dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  if(NOT TINYML_PROTOCOL STREQUAL "binary")
    message(FATAL_ERROR "xtensa_lx106_sim runs a self-check, not the ${TINYML_PROTOCOL} protocol")
  endif()
  if(NOT EXISTS "${TINYML_SELFCHECK_DIR}/tm_selfcheck_inputs.h")
    message(FATAL_ERROR "xtensa_lx106_sim: no tm_selfcheck_inputs.h in TINYML_SELFCHECK_DIR='${TINYML_SELFCHECK_DIR}' "
      "(tinyml.host.selfcheck.write_selfcheck_inputs writes it)")
  endif()
  # The self-check main replaces the protocol loop's main.
  get_target_property(sources ${target} SOURCES)
  list(FILTER sources EXCLUDE REGEX "(^|/)tm_main\\.c$")
  set_property(TARGET ${target} PROPERTY SOURCES ${sources}
    "${dir}/tm_port_xtensa_lx106_sim.c" "${dir}/start.c" "${dir}/tm_selfcheck_main.c" "${dir}/tm_lx106_libgcc.c")
  target_include_directories(${target} PRIVATE "${dir}" "${TINYML_SELFCHECK_DIR}")
  target_link_options(${target} PRIVATE -nostartfiles -T "${dir}/xtensa_lx106_sim.ld"
    -Wl,--gc-sections -Wl,-Map=$<TARGET_FILE:${target}>.map)
  set_target_properties(${target} PROPERTIES SUFFIX ".elf" LINK_DEPENDS "${dir}/xtensa_lx106_sim.ld")
  if(TINYML_SIZE_TOOL)
    add_custom_command(TARGET ${target} POST_BUILD COMMAND ${TINYML_SIZE_TOOL} $<TARGET_FILE:${target}>)
  endif()
endfunction()
