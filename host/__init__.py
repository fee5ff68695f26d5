"""The host side of the board link (installed as tinyml.host).

protocol   frames (COBS + CRC-32), messages; mirror of firmware/core/tm_protocol.h
transport  pyserial URLs (open_port), FaultInjector, FaultyTransport; protocol_faulty: the faulty:// URL scheme
link       BoardLink: hello, pipelined batched infer with retransmission, reset, profile
session    BoardSession: build or find the image, boot or connect, check the model hash, always clean up
harness    run_bench (tinyml bench; resumes its JSONL log)
report     report.json, report.md and PNG plots of a bench
build      build_firmware / build_host_firmware: CMake images of firmware/
emulator   start_emulator (QEMU), start_host_board, records keyed by board and model dir, list/stop
"""
