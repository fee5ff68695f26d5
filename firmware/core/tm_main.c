/* tm_main.c - the entry point of every port image built by firmware/CMakeLists.txt. */
#include "tm_core.h"

int main(void)
{
    tm_core_run();
    return 0;
}
