# Bare-metal rv32imc (the ESP32-C3's ISA) with Debian's riscv64-unknown-elf-gcc
# and picolibc. -misa-spec=2.2 keeps Zicsr (CSR instructions) inside "i", so the
# plain rv32imc multilib of picolibc is selected.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR riscv32)
set(CMAKE_C_COMPILER riscv64-unknown-elf-gcc)
set(CMAKE_CXX_COMPILER riscv64-unknown-elf-g++)
set(CMAKE_C_FLAGS_INIT "-march=rv32imc -misa-spec=2.2 -mabi=ilp32 --specs=picolibc.specs")
set(CMAKE_CXX_FLAGS_INIT "${CMAKE_C_FLAGS_INIT}")
# CMake repeats the C flags on the link line, so the linker needs none of its own.
# No OS to link a test program against: check the compiler with a library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
find_program(TINYML_SIZE_TOOL riscv64-unknown-elf-size)
