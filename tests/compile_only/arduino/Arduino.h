/*
 * COMPILE-ONLY stand-in for Arduino-ESP32's <Arduino.h>, used by
 * tests/test_xtensa.py to compile firmware/ports/esp32/tm_port_esp32.cpp for
 * Xtensa (ESP32, ESP32-S3) and rv32imc (ESP32-C3) where neither ESP-IDF nor
 * Arduino-ESP32 is installed. Never part of a firmware image.
 *
 * Declarations only, no definitions: an object compiled against this header
 * leaves every Arduino/FreeRTOS symbol undefined, and the test checks that the
 * undefined symbols are exactly the API below, so the port cannot start using
 * something unchecked. Written for this project from the signatures Arduino-ESP32
 * 2.0.x documents (the core of PlatformIO's espressif32@6.9.0) in
 * cores/esp32/HardwareSerial.h, HWCDC.h, Esp.h, esp32-hal-cpu.h, and ESP-IDF
 * 4.4's FreeRTOS portmacro.h and task.h. Only what the port uses is declared.
 */
#ifndef TINYML_COMPILE_ONLY_ARDUINO_H
#define TINYML_COMPILE_ONLY_ARDUINO_H

#include <stddef.h>
#include <stdint.h>

extern "C" {
/* FreeRTOS (ESP-IDF): ticks, the spinlock-based critical section, task delay. */
typedef uint32_t TickType_t;
typedef struct {
    uint32_t owner;
    uint32_t count;
} portMUX_TYPE; /* spinlock_t */
#define portMUX_FREE_VAL 0xB33FFFFFu
#define portMUX_INITIALIZER_UNLOCKED {portMUX_FREE_VAL, 0u}
void vPortEnterCritical(portMUX_TYPE *mux);
void vPortExitCritical(portMUX_TYPE *mux);
#define portENTER_CRITICAL(mux) vPortEnterCritical(mux)
#define portEXIT_CRITICAL(mux) vPortExitCritical(mux)
void vTaskDelay(const TickType_t xTicksToDelay);

/* esp32-hal-cpu.h */
uint32_t getCpuFrequencyMhz();
}

/* HardwareSerial.h: the UART driver behind Serial on boards without native USB. */
#define SERIAL_8N1 0x800001cu
class HardwareSerial {
public:
    void begin(unsigned long baud, uint32_t config = SERIAL_8N1, int8_t rxPin = -1, int8_t txPin = -1,
               bool invert = false, unsigned long timeout_ms = 20000UL, uint8_t rxfifo_full_thrhd = 112);
    int available(void);
    size_t read(uint8_t *buffer, size_t size);
    size_t write(const uint8_t *buffer, size_t size);
    void flush(void);
    size_t setRxBufferSize(size_t new_size);
};

/* HWCDC.h: the USB-Serial/JTAG port of the S3 and C3, Serial when built with
 * ARDUINO_USB_MODE=1 and ARDUINO_USB_CDC_ON_BOOT=1. */
class HWCDC {
public:
    size_t setRxBufferSize(size_t);
    void begin(unsigned long baud = 0);
    int available(void);
    size_t read(uint8_t *buffer, size_t size);
    size_t write(const uint8_t *buffer, size_t size);
    void flush(void);
};

#if defined(ARDUINO_USB_MODE) && defined(ARDUINO_USB_CDC_ON_BOOT) && ARDUINO_USB_MODE && ARDUINO_USB_CDC_ON_BOOT
extern HWCDC Serial;
#else
extern HardwareSerial Serial;
#endif

/* Esp.h */
class EspClass {
public:
    void restart();
    uint32_t getCycleCount();
};
extern EspClass ESP;

/* The sketch's entry points, called by the core's loop task. */
void setup(void);
void loop(void);

#endif /* TINYML_COMPILE_ONLY_ARDUINO_H */
