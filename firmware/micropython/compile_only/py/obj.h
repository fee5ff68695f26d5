/* COMPILE-ONLY stand-in for MicroPython's py/obj.h: see mp_compile_only.h. */
#include "mp_compile_only.h"
