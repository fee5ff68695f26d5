"""The host (PC) side of the board link (installed as tinyml.host).

protocol         frames (COBS + CRC-32), messages; mirror of firmware/core/tm_protocol.h
transport        pyserial URLs (open_port), FaultInjector, FaultyTransport; protocol_faulty: the faulty:// URL scheme
link             BoardLink: hello, pipelined batched infer with retransmission (one loop, LOAD chunks as requests)
session          BoardSession: build or find the image, boot or connect, check the model hash, always clean up
harness          run_bench (tinyml bench; resumes its JSONL log)
bench_report     report.json, report.md and PNG plots of a bench
profile          per-layer profile of a board (tinyml profile)
build            build_firmware / build_native_firmware: CMake images of firmware/
emulator         start_emulator (QEMU), start_native_board, records keyed by board and model dir, list/stop
flash            tinyml flash: real boards (PlatformIO, esptool, st-flash, OpenOCD) and emulated ones
mlperf           the MLPerf Tiny runner protocol (both directions)
micropython      the raw-REPL bench of a MicroPython module; micropython_wasm: the WebAssembly VM behind a pty
pio_envs         platformio.ini read as PlatformIO reads it
selfcheck        the LX106 self-check runner (semihosting, no UART)
"""
