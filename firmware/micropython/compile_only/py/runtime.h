/* COMPILE-ONLY stand-in for MicroPython's py/runtime.h: see mp_compile_only.h. */
#include "mp_compile_only.h"
