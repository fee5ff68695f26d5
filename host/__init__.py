"""The host side of the board link (installed as tinyml.host).

protocol   frames (COBS + CRC-32), messages; mirror of firmware/core/tm_protocol.h
transport  pyserial URLs (open_port) and FaultyTransport for fault-injection tests
link       BoardLink: hello, pipelined batched infer with retransmission, reset, profile
harness    run_bench (tinyml bench), run_emulated_bench (tinyml demo)
report     report.json, report.md and PNG plots of a bench
build      build_firmware / build_host_firmware: CMake images of firmware/
emulator   start_emulator (QEMU), start_host_board, find_running_emulator, resolve_port
"""
