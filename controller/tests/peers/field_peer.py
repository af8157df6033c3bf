#!/usr/bin/env python3
"""A Modbus slave for heatctl's field tests, served by pymodbus (pinned 3.16.1), an
implementation nobody on this project wrote.

    field_peer.py --port PORT [--framer tcp|rtu] DEVICES_JSON

DEVICES_JSON is a list of devices: [{"id": 1, "ir": [..], "hr": [..]}, ...]; registers start
at address 0. With --framer rtu the server speaks Modbus RTU frames over TCP (a transparent
serial gateway). Prints "ready" once listening. Writes from the master are kept, so a read-back
sees them.
"""

import argparse
import asyncio
import json
import sys

from pymodbus import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


def device(spec):
    def block(values, datatype=DataType.REGISTERS):
        values = values or [0]
        return [SimData(address=0, values=list(values), datatype=datatype)]

    bits = [False] * 16
    return SimDevice(
        id=spec["id"],
        simdata=(
            block(bits, DataType.BITS),
            block(bits, DataType.BITS),
            block(spec.get("hr")),
            block(spec.get("ir")),
        ),
    )


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--framer", choices=["tcp", "rtu"], default="tcp")
    parser.add_argument("devices")
    args = parser.parse_args()
    devices = [device(d) for d in json.loads(args.devices)]
    framer = FramerType.RTU if args.framer == "rtu" else FramerType.SOCKET
    server = ModbusTcpServer(devices, address=("127.0.0.1", args.port), framer=framer)
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.2)
    print("ready", flush=True)
    await task


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
