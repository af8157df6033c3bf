#!/usr/bin/env python3
"""Independent Modbus peer for the emulator test: pymodbus (pinned 3.16.1) as an RTU master
over a TCP byte stream (QEMU bridges the node's UART0 to TCP).

    modbus_peer.py --port PORT [--host H] [--unit N] [--timeout S] OP...

OPs, run in order on one connection:
    read-input:ADDR:COUNT      function 04
    read-holding:ADDR:COUNT    function 03
    write:ADDR:VALUE           function 06 (VALUE may be negative: sent as 16-bit two's complement)
    write-multiple:ADDR:V1,V2  function 16

Prints one JSON object per OP: {"op": ..., "registers": [...]} on success,
{"op": ..., "exception": CODE} for a Modbus exception. A transport failure (no reply, bad
frame) prints {"op": ..., "error": "..."} and exits with status 2.
"""

import argparse
import json
import sys

from pymodbus import FramerType
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException


def u16(text):
    value = int(text, 0)
    if not -0x8000 <= value <= 0xFFFF:
        raise ValueError(f"{value} does not fit 16 bits")
    return value & 0xFFFF


def run(client, unit, op):
    kind, _, rest = op.partition(":")
    if kind in ("read-input", "read-holding"):
        address, count = (int(x, 0) for x in rest.split(":"))
        call = client.read_input_registers if kind == "read-input" else client.read_holding_registers
        reply = call(address, count=count, device_id=unit)
    elif kind == "write":
        address, value = rest.split(":")
        reply = client.write_register(int(address, 0), u16(value), device_id=unit)
    elif kind == "write-multiple":
        address, values = rest.split(":")
        reply = client.write_registers(int(address, 0), [u16(v) for v in values.split(",")], device_id=unit)
    else:
        raise ValueError(f"unknown op {op!r}")
    if reply.isError():
        return {"op": op, "exception": getattr(reply, "exception_code", None)}
    return {"op": op, "registers": list(getattr(reply, "registers", []) or [])}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("ops", nargs="+")
    args = parser.parse_args()

    client = ModbusTcpClient(args.host, port=args.port, framer=FramerType.RTU, timeout=args.timeout, retries=1)
    if not client.connect():
        print(json.dumps({"error": f"cannot connect to {args.host}:{args.port}"}))
        return 2
    status = 0
    try:
        for op in args.ops:
            try:
                result = run(client, args.unit, op)
            except ModbusException as err:
                result = {"op": op, "error": str(err)}
                status = 2
            print(json.dumps(result), flush=True)
            if status:
                break
    finally:
        client.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
