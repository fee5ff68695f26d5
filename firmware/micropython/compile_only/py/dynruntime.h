/* COMPILE-ONLY stand-in for MicroPython's py/dynruntime.h: see mp_compile_only.h. */
#include "mp_compile_only.h"
