# Cortex-M0 (armv6-m, Thumb-1) firmware on QEMU's mps2-an385. The image is built
# -mcpu=cortex-m0 exactly as for an RP2040; the machine's Cortex-M3 executes that
# Thumb-1 code instruction for instruction (armv6-m is a subset of armv7-m).
set(TINYML_PORT_TOOLCHAIN arm-none-eabi)

function(tinyml_port_setup target)
  set(dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  set(cpu -mcpu=cortex-m0 -mthumb -mfloat-abi=soft)
  target_sources(${target} PRIVATE "${dir}/tm_port_mps2_an385.c" "${dir}/startup_mps2_an385.c"
    "${dir}/../cortex_m/tm_cortex_m.c")
  target_include_directories(${target} PRIVATE "${dir}/../cortex_m")
  target_compile_options(${target} PRIVATE ${cpu})
  target_link_options(${target} PRIVATE ${cpu} -nostartfiles --specs=nano.specs --specs=nosys.specs
    -T "${dir}/mps2_an385_m0.ld" -Wl,--gc-sections -Wl,-Map=$<TARGET_FILE:${target}>.map)
  set_target_properties(${target} PROPERTIES SUFFIX ".elf" LINK_DEPENDS "${dir}/mps2_an385_m0.ld")
  if(TINYML_SIZE_TOOL)
    add_custom_command(TARGET ${target} POST_BUILD COMMAND ${TINYML_SIZE_TOOL} $<TARGET_FILE:${target}>)
  endif()
endfunction()
