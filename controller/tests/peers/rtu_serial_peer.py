#!/usr/bin/env python3
"""A Modbus RTU slave on a serial port for heatctl's serial-line tests, served by pymodbus
(pinned 3.16.1) through pyserial, an implementation nobody on this project wrote.

    rtu_serial_peer.py --port /path/to/tty [--baud 9600] [--parity E] [--stop-bits 1]
                       [--tap FILE] [--late UNIT:MS ...] DEVICES_JSON

DEVICES_JSON is a list of devices as for field_peer.py: [{"id": 1, "ir": [..], "hr": [..]}];
registers start at address 0, writes are kept. Requests for a unit id not in the list go
unanswered, as on a bus with nobody at that address (a unit that never answers).

--tap FILE logs every chunk the port reads or writes, one line each:
    <monotonic ns> rx|tx <hex bytes>
taken right after a read returned, and right before a write began, so the silence between
our answer and the master's next request, measured from this side of the line, can only come
out longer than it was, never shorter.

--late UNIT:MS holds the answers of UNIT for MS milliseconds before sending them (a slow unit
whose answer arrives after the master's timeout). The whole peer waits, as a single-threaded
slave would; the master's next request waits in the port's buffer meanwhile.

--line-baud BAUD gives the pseudo-terminal a line's timing from this side (11 bits a
character, 8E1): an answer is held until its last byte would have arrived on a real line, the
request's characters, 3.5 characters of silence and the answer's characters after the request
began to arrive. The master's own silences are its own.

Prints "ready" once the port is open.
"""

import argparse
import asyncio
import json
import logging
import sys
import termios
import time

import serial
from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer
from field_peer import device  # the same simulated devices as the TCP peer


def install_tap(tap_path, late_ms, units, line_baud):
    """Wrap pyserial's read and write: log each chunk with its time, delay late units, and
    keep quiet for units not on the bus (pymodbus's simulator answers them with an
    exception; a bus has nobody at that address to answer)."""
    tap = open(tap_path, "a", buffering=1) if tap_path else None
    # With --line-baud: when the request began to arrive and how long it is.
    request = {"first_ns": None, "len": 0}
    char_ns = 11 * 1_000_000_000 / line_baud if line_baud else 0
    original_read = serial.Serial.read
    original_write = serial.Serial.write

    def log(t_ns, direction, data):
        if tap and data:
            tap.write(f"{t_ns} {direction} {bytes(data).hex()}\n")

    def read(self, size=1):
        data = original_read(self, size)
        t_ns = time.monotonic_ns()
        if data:
            if request["first_ns"] is None:
                request["first_ns"], request["len"] = t_ns, 0
            request["len"] += len(data)
        log(t_ns, "rx", data)
        return data

    def write(self, data):
        if data and data[0] not in units:
            request["first_ns"] = None
            return len(data)
        delay = late_ms.get(data[0]) if data else None
        if delay:
            time.sleep(delay / 1000.0)
        if char_ns and request["first_ns"] is not None:
            # The line's own time: the request's characters, 3.5 characters of silence to
            # end it, then ours; the answer is written when its last byte would have arrived.
            chars = request["len"] + 3.5 + len(data)
            until_ns = request["first_ns"] + chars * char_ns
            wait_ns = until_ns - time.monotonic_ns()
            if wait_ns > 0:
                time.sleep(wait_ns / 1e9)
        request["first_ns"] = None
        t_ns = time.monotonic_ns()
        written = original_write(self, data)
        log(t_ns, "tx", data[: written or 0])
        return written

    serial.Serial.read = read
    serial.Serial.write = write


def parity_accepted(port, baud, parity):
    """Whether the port takes the parity (pyserial applies its settings twice on open here)."""
    try:
        probe = serial.Serial(port, baud, parity=parity)
        probe.timeout = 0
        probe.close()
        return True
    except (serial.SerialException, termios.error):
        return False


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", required=True)
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--parity", choices=["N", "E", "O"], default="E")
    parser.add_argument("--stop-bits", type=int, choices=[1, 2], default=1)
    parser.add_argument("--tap")
    parser.add_argument("--late", action="append", default=[])
    parser.add_argument("--line-baud", type=int, default=0)
    parser.add_argument("devices")
    args = parser.parse_args()
    late_ms = {}
    for item in args.late:
        unit, ms = item.split(":")
        late_ms[int(unit)] = int(ms)
    parity = args.parity
    if parity != "N" and not parity_accepted(args.port, args.baud, parity):
        # A pseudo-terminal has no parity bit to carry: Linux refuses PARENB on one. The line
        # stays 8N1 on this side; the master's timing still follows its own configuration.
        print(f"{args.port}: the port refuses parity {parity}; serving 8N1", file=sys.stderr)
        parity = "N"
    specs = json.loads(args.devices)
    install_tap(args.tap, late_ms, {d["id"] for d in specs}, args.line_baud)
    devices = [device(d) for d in specs]
    server = ModbusSerialServer(
        devices,
        framer=FramerType.RTU,
        port=args.port,
        baudrate=args.baud,
        parity=parity,
        stopbits=args.stop_bits,
        bytesize=8,
        ignore_missing_devices=True,
        reconnect_delay=0.1,
    )
    # pymodbus logs every frame (and, for a unit not on the bus, a traceback) at this level.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await task


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
