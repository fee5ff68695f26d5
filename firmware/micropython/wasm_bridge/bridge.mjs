// Runs the official MicroPython WebAssembly build (npm @micropython/micropython-webassembly-pyscript)
// and bridges its REPL to this process's stdin/stdout, byte for byte, so the host can treat it as a
// board on a serial line: started with a pty's master as stdin/stdout (host/micropython_wasm.py does
// that), the pty's slave is the "serial port" pyserial and mpremote open.
//
// What the bridge adds, because the wasm port has no board around it:
//  - soft reset: Ctrl-D at an empty raw-REPL (or friendly) prompt makes the REPL ask for an exit; a
//    board reboots its VM then. We re-initialise the VM (fresh heap, no imported modules, no globals),
//    print "MPY: soft reboot" as MicroPython's ports do, and go back to the REPL mode we were in.
//  - raw-paste: the wasm REPL is driven one character at a time and its raw-paste mode reads stdin
//    itself, which would block; the bridge answers the raw-paste request (Ctrl-E 'A' Ctrl-A) with
//    "R\x00", the documented "understood, not supported" reply, so hosts fall back to the raw REPL.
// Usage: node bridge.mjs [--heap BYTES]
import { writeSync } from "node:fs";

import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const RAW_PASTE_REQUEST = [0x05, 0x41, 0x01];
const RAW_REPL_BANNER = "raw REPL; CTRL-B to exit";

function parseHeap(argv) {
    const i = argv.indexOf("--heap");
    if (i < 0) return 256 * 1024;
    const value = Number.parseInt(argv[i + 1], 10);
    if (!Number.isFinite(value) || value < 16 * 1024) {
        process.stderr.write(`error: --heap needs a byte count >= 16384, got '${argv[i + 1]}'\n`);
        process.exit(2);
    }
    return value;
}

const heapBytes = parseHeap(process.argv);
let pending = [];          // output bytes not yet written
let recentOutput = "";     // tail of the output, to see the REPL's mode banners
let rawMode = false;       // the REPL last announced raw mode (not the friendly ">>> " prompt)
let mp = null;

let muted = false;         // drop output (the friendly banner replInit prints in a soft reset from raw mode)

function emit(bytes) {
    if (muted) return;
    for (const b of bytes) pending.push(b);
    recentOutput = (recentOutput + Buffer.from(bytes).toString("latin1")).slice(-64);
    if (recentOutput.endsWith(">>> ")) rawMode = false;
    if (recentOutput.includes(RAW_REPL_BANNER)) {
        rawMode = true;
        recentOutput = "";
    }
    flush();
}

// Written at once and synchronously: the REPL runs code inside replProcessChar, so output left
// for the event loop would only leave when the code has finished (a board's "OK" comes first).
function flush() {
    if (pending.length) {
        const bytes = Buffer.from(pending);
        pending = [];
        let done = 0;
        while (done < bytes.length) {
            try {
                done += writeSync(1, bytes, done);
            } catch (error) {
                if (error.code !== "EAGAIN") throw error;
            }
        }
    }
}

async function boot() {
    mp = await loadMicroPython({ heapsize: heapBytes, linebuffer: false, stdout: emit, stderr: emit });
}

function softReset() {
    const wasRaw = rawMode;
    // mp_js_init runs gc_init + mp_init again: the same as a port's soft reset (the old heap is
    // simply not used any more).
    mp._module.ccall("mp_js_init", "null", ["number", "number"], [2048, heapBytes]);
    mp._module.ccall("proxy_c_init", "null", [], []);
    emit(Buffer.from("MPY: soft reboot\r\n", "latin1"));
    if (wasRaw) {
        muted = true;
        mp.replInit();
        muted = false;
        mp.replProcessChar(0x01); // back to the raw REPL, as a board does after a reset from raw mode
    } else {
        mp.replInit();
    }
}

await boot();
mp.replInit();
flush();

let matched = 0;           // bytes of RAW_PASTE_REQUEST held back so far

function feed(byte) {
    if (mp.replProcessChar(byte)) softReset();
    flush();
}

process.stdin.on("data", (chunk) => {
    for (const byte of chunk) {
        if (byte === RAW_PASTE_REQUEST[matched]) {
            matched += 1;
            if (matched === RAW_PASTE_REQUEST.length) {
                matched = 0;
                emit([0x52, 0x00]);
            }
            continue;
        }
        // The held bytes were not a raw-paste request after all: they go to the REPL.
        for (const held of RAW_PASTE_REQUEST.slice(0, matched)) feed(held);
        matched = 0;
        if (byte === RAW_PASTE_REQUEST[0]) {
            matched = 1;
        } else {
            feed(byte);
        }
    }
    flush();
});
process.stdin.on("end", () => process.exit(0));
// The pty master stays open in this process, so no end-of-file comes when the host dies: leave
// with the parent instead of running on as an orphan.
const parentPid = process.ppid;
setInterval(() => {
    if (process.ppid !== parentPid) process.exit(0);
}, 1000).unref();
process.on("SIGTERM", () => process.exit(0));
