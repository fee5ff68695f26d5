// C++ objects with dynamic initializers (their constructors store to volatile
// memory, so the compiler cannot fold them into constant data): they only take
// effect if the startup code runs .init_array. Two translation-unit-level
// objects in declaration order show the constructors run in order, once each.
#include <stdint.h>

extern "C" {
volatile uint32_t tm_ctor_probe_stamp[4];
}

namespace {

class StampWriter {
  public:
    StampWriter(uint32_t first, uint32_t value) {
        for (uint32_t k = first; k < first + 2u; k++) {
            tm_ctor_probe_stamp[k] = tm_ctor_probe_stamp[k] * 2u + value;
        }
    }
};

StampWriter first_half(0u, 0x21u);
StampWriter second_half(2u, 0x35u);
StampWriter again(1u, 0x01u);  // runs after first_half and second_half: stamps 1 and 2 doubled plus 1

}  // namespace
