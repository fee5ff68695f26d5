/* tm_mlperf_main.c - entry point of an image that speaks the MLPerf Tiny protocol
 * instead of the binary one (replaces core/tm_main.c; see mlperf.cmake). */
#include "tm_mlperf.h"

int main(void)
{
    tm_mlperf_run();
    return 0;
}
