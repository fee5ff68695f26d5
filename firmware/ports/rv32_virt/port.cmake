# Bare-metal rv32imc on qemu-system-riscv32 -M virt -bios none: the ESP32-C3's
# RISC-V core path, checked in the emulator. The toolchain file lives here.
if(NOT CMAKE_TOOLCHAIN_FILE)
  set(CMAKE_TOOLCHAIN_FILE "${CMAKE_CURRENT_LIST_DIR}/toolchain-rv32imc.cmake")
endif()

function(tinyml_port_setup target)
  set(dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  target_sources(${target} PRIVATE "${dir}/tm_port_rv32_virt.c" "${dir}/start.c")
  target_link_options(${target} PRIVATE -nostartfiles -T "${dir}/rv32_virt.ld"
    -Wl,--gc-sections -Wl,--no-warn-rwx-segments -Wl,-Map=$<TARGET_FILE:${target}>.map)
  # Linked by the C driver: Debian's riscv64-unknown-elf toolchain has no
  # libstdc++ for picolibc, and the firmware's C++ needs none of it.
  set_target_properties(${target} PROPERTIES SUFFIX ".elf" LINK_DEPENDS "${dir}/rv32_virt.ld" LINKER_LANGUAGE C)
  if(TINYML_SIZE_TOOL)
    add_custom_command(TARGET ${target} POST_BUILD COMMAND ${TINYML_SIZE_TOOL} $<TARGET_FILE:${target}>)
  endif()
endfunction()
