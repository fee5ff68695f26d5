# STM32F405 (Cortex-M4F) as QEMU's netduinoplus2 emulates it.
set(TINYML_PORT_TOOLCHAIN arm-none-eabi)

function(tinyml_port_setup target)
  set(dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  set(cpu -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16)
  target_sources(${target} PRIVATE "${dir}/tm_port_stm32f405.c" "${dir}/startup_stm32f405.c"
    "${dir}/../cortex_m/tm_cortex_m.c")
  target_include_directories(${target} PRIVATE "${dir}/../cortex_m")
  target_compile_options(${target} PRIVATE ${cpu})
  target_link_options(${target} PRIVATE ${cpu} -nostartfiles --specs=nano.specs --specs=nosys.specs
    -T "${dir}/stm32f405.ld" -Wl,--gc-sections -Wl,-Map=$<TARGET_FILE:${target}>.map)
  set_target_properties(${target} PROPERTIES SUFFIX ".elf" LINK_DEPENDS "${dir}/stm32f405.ld")
  if(TINYML_SIZE_TOOL)
    add_custom_command(TARGET ${target} POST_BUILD COMMAND ${TINYML_SIZE_TOOL} $<TARGET_FILE:${target}>)
  endif()
endfunction()
