# Bare-metal Xtensa LX106 (the ESP8266's core) with Debian's xtensa-lx106-elf-gcc
# and picolibc (picolibc-xtensa-lx106-elf). -mlongcalls: code in sysrom may call
# anywhere; -mtext-section-literals keeps each function's literal pool in .text
# right before it, so l32r always reaches backwards as the ISA requires.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR xtensa)
set(CMAKE_C_COMPILER xtensa-lx106-elf-gcc)
find_file(TINYML_LX106_PICOLIBC_SPECS picolibc.specs PATHS /usr/lib/xtensa-lx106-elf NO_DEFAULT_PATH)
if(NOT TINYML_LX106_PICOLIBC_SPECS)
  message(FATAL_ERROR "xtensa_lx106_sim: no picolibc.specs in /usr/lib/xtensa-lx106-elf (apt-get install picolibc-xtensa-lx106-elf)")
endif()
set(CMAKE_C_FLAGS_INIT "-mlongcalls -mtext-section-literals --specs=${TINYML_LX106_PICOLIBC_SPECS}")
# No OS to link a test program against: check the compiler with a library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
find_program(TINYML_SIZE_TOOL xtensa-lx106-elf-size)
