# The firmware as a POSIX process serving the protocol on a pty (fast tests).
option(TINYML_SANITIZE "build with AddressSanitizer and UBSan" OFF)

function(tinyml_port_setup target)
  target_sources(${target} PRIVATE "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/tm_port_native.c")
  target_link_options(${target} PRIVATE -Wl,--gc-sections)
  if(TINYML_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer -g)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
