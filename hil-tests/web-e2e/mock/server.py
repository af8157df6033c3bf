#!/usr/bin/env python3
"""A stand-in for heatctl's web API, to test the technician page in isolation.

Serves the page's assets from controller/src/web/assets/ and the JSON API of the web contract
(/api/info, /api/snapshot, /api/events, /api/trends, /api/curve, /api/audit, POST /api/settings)
from a synthetic station whose values move every half second. The snapshot has the shape serde
gives heatctl's StationSnapshot, with every case the page must show at once: an invalid signal,
rooms in every state, a lost device, an active alarm, a limiter and the platform link.

Only for tests: standard library only, loopback only.

    server.py --port 0 [--token T] [--no-platform]   (prints "listening on http://127.0.0.1:PORT/")

POST /mock/set with a JSON object overrides the synthetic explanation (e.g. {"active_limiter":
"power", "delta_k": -3.0} or {"supervisor": "frost"} or {"outdoor_c": -12.0}); its key
"clock_step_s" steps the station's wall clock instead (its monotonic clock runs on), and
"events_down" (true / false) closes the event streams and answers 503 to new ones until set false.
"""

import argparse
import json
import math
import mimetypes
import os
import queue
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASSETS = HERE.parent.parent.parent / "controller" / "src" / "web" / "assets"
SPEED = 60.0  # clock seconds per wall second
START_WALL = time.time()
START_CLOCK = 1_767_225_600.0  # 2026-01-01 00:00 UTC

RANGES = {
    "curve_shift_k": (-30.0, 30.0),
    "room_target_c": (12.0, 26.0),
    "valve1_manual_pct": (0.0, 100.0),
}
MODES = {"auto": "auto", "off": "off", "manual": "manual", 0: "auto", 1: "off", 2: "manual"}


class Station:
    """The synthetic station: settings, overrides, audit, SSE subscribers."""

    def __init__(self, token, writable, platform):
        self.lock = threading.Lock()
        self.token = token
        self.writable = writable
        self.platform = platform
        self.settings = {
            "mode": "auto",
            "curve_shift_k": 0.0,
            "room_target_c": 21.0,
            "demand_enabled": True,
            "valve1_manual_pct": 30.0,
        }
        self.overrides = {}
        self.clock_step_s = 0.0
        # POST /mock/set {"events_down": true} closes the event streams and answers 503 to new ones.
        self.events_down = False
        self.audit = []
        self.subscribers = []

    def mono(self):
        """The controller's monotonic clock: never steps."""
        return (time.time() - START_WALL) * SPEED

    def clock(self):
        """The controller's wall clock: steps by what POST /mock/set {"clock_step_s": ...} adds."""
        return START_CLOCK + self.mono() + self.clock_step_s

    def curve(self, outdoor_c):
        # Two points: -20 °C -> 70 °C, 15 °C -> 30 °C.
        return 70.0 + (outdoor_c + 20.0) * (30.0 - 70.0) / 35.0

    def snapshot(self):
        with self.lock:
            st = dict(self.settings)
            ov = dict(self.overrides)
        now = self.clock()
        phase = (now - START_CLOCK) / 86400.0 * 2 * math.pi
        outdoor = ov.get("outdoor_c", -8.0 + 4.0 * math.sin(phase))
        damped = outdoor + 1.2
        curve_c = self.curve(damped)
        demand = -0.8 + 0.1 * math.sin(phase * 3)
        valve_demand = 0.4
        before = curve_c + st["curve_shift_k"] + demand + valve_demand
        limiter = ov.get("active_limiter", "return1")
        delta = ov.get("delta_k", -1.5 if limiter else 0.0)
        limiters = [{"limiter": limiter, "delta_k": delta}] if limiter else []
        if limiter and limiter != "rate":
            limiters.insert(0, {"limiter": "rate", "delta_k": -0.2})
        heating_on = st["mode"] != "off"
        setpoint = min(75.0, max(25.0, before + delta)) if heating_on else None
        t2 = (setpoint if setpoint is not None else 25.0) + 0.6 * math.sin(phase * 40)
        valve_cmd = {"off": 0.0, "manual": st["valve1_manual_pct"]}.get(st["mode"], 42.0 + 5 * math.sin(phase * 7))

        def meas(value, valid=True, age=2.0, rejected=None):
            return {"value": value, "valid": valid, "age_s": age, "rejected": rejected}

        nodes = []
        states = ["used"] * 6 + ["stale", "stuck", "invalid", "outlier", "excluded", "vacant", "missing"]
        for i, state in enumerate(states):
            value = None if state == "missing" else round(20.5 + 0.3 * math.sin(i + phase) - (3.5 if state == "outlier" else 0), 2)
            nodes.append({
                "id": f"b{1 + i // 5}-{101 + i}",
                "building": f"B{1 + i // 5}",
                "position": ["top", "middle", "ground", "end", "top_end", "ground_end"][i % 6],
                "value_c": value,
                "age_s": None if value is None else (4000.0 if state == "stale" else 30.0 + i),
                "state": state,
                "valve_cmd_pct": 55.0 if i % 3 == 0 else None,
                "valve_pos_pct": 53.5 if i % 3 == 0 else None,
            })
        snap = {
            "site": "mock-site",
            "station": {
                "site_id": "mock-site", "station_id": "ss-01", "version": "0.0.0-mock", "config_hash": "abc123",
                "started_unix_s": START_CLOCK, "uptime_s": time.time() - START_WALL,
            },
            "clock": {"clock_unix_s": now, "mono_s": self.mono(), "wall_unix_s": time.time(), "scaled": True, "speed": SPEED, "synced": None},
            "measurements": {
                "t_out_c": meas(round(outdoor, 2)),
                "t1_supply_c": meas(95.0),
                "t1_return_c": meas(48.0),
                "t2_supply_c": meas(round(t2, 2)),
                "t2_return_c": meas(round(t2 - 12.0, 2)),
                "power1_kw": meas(812.0),
                "flow1_m3h": meas(14.2, valid=False, age=400.0, rejected="stale"),
                "valve1_pos_pct": meas(None, valid=False, age=None),
            },
            "commands": {
                "valve1_cmd_pct": round(valve_cmd, 2),
                "valve1_pos_pct": None,
                "valve1_three_point": None,
                "household_valves": [{"node_id": n["id"], "cmd_pct": 55.0, "pos_pct": 53.5} for n in nodes if n["valve_cmd_pct"] is not None],
            },
            "explanation": {
                "outdoor_c": round(outdoor, 2), "outdoor_source": ov.get("outdoor_source", "measured"),
                "damped_outdoor_c": round(damped, 2), "composite_outdoor_c": round((outdoor + damped) / 2, 2),
                "curve_c": round(curve_c, 3), "base_shift_k": st["curve_shift_k"], "demand_shift_k": round(demand, 3),
                "valve_demand_shift_k": valve_demand, "limiters": limiters, "active_limiter": limiter,
                "setpoint_c": None if setpoint is None else round(setpoint, 3), "heating_on": heating_on,
                "supervisor": ov.get("supervisor"), "fallbacks": [], "rejected": [{"signal": "flow1_m3h", "reason": "stale"}],
            },
            "rooms": {
                "expected": 11, "used": 7, "invalid": 2, "outliers": 1, "quorum": True,
                "percentile_c": 20.1, "median_c": 20.6, "trimmed_mean_c": 20.55,
                "sensed": 10, "min_c": 17.0, "comfort_floor_c": 18.0, "at_or_above_floor_pct": 90.0,
                "nodes": nodes,
            },
            "alarms": [
                {"code": 107, "text": "heat meter data stale or invalid", "since_s": START_CLOCK + 600.0},
                {"code": 501, "text": "field device not answering", "since_s": START_CLOCK + 1200.0},
            ],
            "devices": [
                {"name": "substation_io", "link": "plc", "connected": True, "comm_lost": False, "requests": 1200, "errors": 0,
                 "timeouts": 0, "exceptions": 0, "last_latency_ms": 3.2, "consecutive_failures": 0, "write_failed": False,
                 "answered": True, "last_ok_s": now - 1},
                {"name": "heat_meter", "link": "mbus_gw", "connected": False, "comm_lost": True, "requests": 300, "errors": 40,
                 "timeouts": 38, "exceptions": 2, "last_latency_ms": None, "consecutive_failures": 12, "write_failed": False,
                 "answered": True, "last_ok_s": now - 500},
                {"name": "room:b1-101", "link": "rooms_b1", "connected": True, "comm_lost": False, "requests": 100, "errors": 1,
                 "timeouts": 1, "exceptions": 0, "last_latency_ms": 12.0, "consecutive_failures": 0, "write_failed": False,
                 "answered": True, "last_ok_s": now - 20},
            ],
            "links": [
                {"name": "plc", "devices": 1, "devices_connected": 1, "connected": True, "last_ok_s": now - 1, "requests": 1200, "errors": 0},
                {"name": "mbus_gw", "devices": 1, "devices_connected": 0, "connected": False, "last_ok_s": now - 500, "requests": 300, "errors": 40},
                {"name": "rooms_b1", "devices": 1, "devices_connected": 1, "connected": True, "last_ok_s": now - 20, "requests": 100, "errors": 1},
            ],
            "settings": st,
            "platform": None,
            "saved_state": {"saved_at_s": now - 60, "demand_shift_k": demand, "valve_demand_shift_k": valve_demand, "damped_outdoor_c": damped},
        }
        if self.platform:
            snap["platform"] = {"broker": "mqtts://platform.example:8883", "last_error": None, "connected": True, "backlog_records": 3, "dropped_records": 0, "last_ack_unix_s": time.time() - 5}
        return snap

    def trends(self, since_s):
        now = self.clock()
        start = now - 48 * 3600
        cols = {k: [] for k in ["t_unix_s", "outdoor_c", "outdoor_damped_c", "setpoint_c", "t2_supply_c", "t2_return_c",
                                "t1_return_c", "valve1_cmd_pct", "rooms_p10_c", "rooms_median_c", "demand_shift_k"]}
        t = math.ceil(start / 60) * 60
        while t <= now:
            if since_s is None or t >= since_s:
                ph = (t - START_CLOCK) / 86400.0 * 2 * math.pi
                o = -8.0 + 4.0 * math.sin(ph)
                sp = self.curve(o + 1.2) - 2.0
                gap = 3 * 3600 < now - t < 3.5 * 3600  # a hole, as after a restart
                cols["t_unix_s"].append(t)
                for k, v in [("outdoor_c", o), ("outdoor_damped_c", o + 1.2), ("setpoint_c", sp), ("t2_supply_c", sp + 0.5 * math.sin(ph * 30)),
                             ("t2_return_c", sp - 12), ("t1_return_c", 48.0), ("valve1_cmd_pct", 42 + 5 * math.sin(ph * 7)),
                             ("rooms_p10_c", 20.1 + 0.2 * math.sin(ph)), ("rooms_median_c", 20.6 + 0.2 * math.sin(ph)),
                             ("demand_shift_k", -0.8 + 0.1 * math.sin(ph * 3))]:
                    cols[k].append(None if gap else round(v, 2))
            t += 60
        return cols

    def curve_json(self):
        with self.lock:
            shift = self.settings["curve_shift_k"]
        pts = []
        for o in range(-25, 21):
            c = self.curve(o)
            pts.append({"outdoor_c": float(o), "curve_c": round(c, 2), "shifted_c": round(min(75.0, max(25.0, c + shift)), 2)})
        s = self.snapshot()
        ex = s["explanation"]
        return {"points": pts, "t2_supply_min_c": 25.0, "t2_supply_max_c": 75.0,
                "operating_point": {"outdoor_c": ex["composite_outdoor_c"], "setpoint_c": ex["setpoint_c"],
                                    "t2_supply_c": s["measurements"]["t2_supply_c"]["value"]}}

    def balance_json(self):
        """Advice as /api/balance gives it (docs/web-api.md): two risers, one to open, one balanced."""
        def group(building, riser, ratio, verdict, kv):
            return {"building": building, "riser": riser, "flats": 6, "flat_hours": 5760,
                    "mean_deficit_k": round((ratio - 1.0) * 3.0, 2), "mean_valve_pct": None,
                    "flow_ratio": ratio, "flow_ratio_low": ratio - 0.05, "flow_ratio_high": ratio + 0.05,
                    "spread_ln": 0.05, "verdict": verdict, "confidence": "high", "kv": kv}
        return {"computed_unix_s": self.clock(),
                "summary": "Under-supplied (open their balancing valves): b2 / b2-r1.",
                "advice": {"refused": None, "hours_total": 960, "hours_usable": 960, "days_usable": 40,
                           "network_flow_ratio": 1.02, "network_mean_deficit_k": -0.2, "deadband_pct": 10.0,
                           "groups": [group("b2", "b2-r1", 1.41, "under_supplied", {"kind": "change", "ratio": 1.6}),
                                      group("b1", "b1-r1", 0.98, "balanced", {"kind": "no_change"})],
                           "flats": [], "garbled_lines": 0},
                "error": None}

    def publish(self, event, data):
        text = f"event: {event}\ndata: {json.dumps(data)}\n\n"
        with self.lock:
            subs = list(self.subscribers)
        for q in subs:
            q.put(text)

    def record(self, client, what, old, new, result, reason):
        rec = {"time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "source": "web", "client": client,
               "what": what, "old": old, "new": new, "result": result, "reason": reason}
        with self.lock:
            self.audit.append(rec)
            del self.audit[:-200]
        self.publish("audit", rec)

    def submit(self, client, name, value):
        """(status, body) of a settings request that passed the token check."""
        def refuse(reason):
            self.record(client, name, None, value, "refused", reason)
            return 422, {"accepted": False, "reason": reason, "problems": [], "old": None, "new": None}
        if name not in self.writable:
            return refuse(f"{name} is not writable from the web page")
        key = "mode" if name == "operating_mode" else name
        if name == "operating_mode":
            if value not in MODES:
                return refuse(f"operating_mode must be auto, off or manual, got {value!r}")
            value = MODES[value]
        elif name == "demand_enabled":
            if not isinstance(value, bool):
                return refuse("demand_enabled must be true or false")
        else:
            lo, hi = RANGES[name]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
                return refuse(f"{name} must be within {lo} .. {hi}, got {value!r}")
            value = float(value)
        with self.lock:
            old = self.settings[key]
            self.settings[key] = value
        self.record(client, name, old, value, "accepted", None)
        return 200, {"accepted": True, "reason": None, "problems": [], "old": old, "new": value}


def make_handler(station):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet
            pass

        def send_json(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path, _, query = self.path.partition("?")
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            if path == "/" or path.startswith("/assets/"):
                name = "index.html" if path == "/" else path[len("/assets/"):]
                f = (ASSETS / name).resolve()
                if ASSETS.resolve() not in f.parents or not f.is_file():
                    return self.send_json(404, {"error": "not found"})
                body = f.read_bytes()
                ctype = mimetypes.guess_type(f.name)[0] or "application/octet-stream"
                self.send_response(200)
                self.send_header("Content-Type", ctype + ("; charset=utf-8" if ctype.startswith("text/") or ctype.endswith("javascript") else ""))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif path == "/api/info":
                lang = self.headers.get("Accept-Language", "")
                self.send_json(200, {"version": "0.0.0-mock", "site_id": "mock-site", "station_id": "ss-01",
                                     "write_enabled": station.token is not None, "writable": station.writable,
                                     "read_only_reason": None if station.token else "no write token is configured",
                                     "languages": ["zh-CN", "en"],
                                     "default_language": "zh-CN" if lang.lower().startswith("zh") else "en",
                                     "cycle_period_s": 0.5})
            elif path == "/api/snapshot":
                self.send_json(200, station.snapshot())
            elif path == "/api/trends":
                since = params.get("since_s")
                self.send_json(200, station.trends(float(since) if since else None))
            elif path == "/api/curve":
                self.send_json(200, station.curve_json())
            elif path == "/api/balance":
                self.send_json(200, station.balance_json())
            elif path == "/api/audit":
                n = int(params.get("n", "50"))
                with station.lock:
                    self.send_json(200, station.audit[-n:])
            elif path == "/api/events":
                self.events()
            else:
                self.send_json(404, {"error": "not found"})

        def events(self):
            if station.events_down:
                return self.send_json(503, {"error": "event stream down (mock)"})
            q = queue.Queue()
            with station.lock:
                station.subscribers.append(q)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                next_snap = 0.0
                while not station.events_down:
                    now = time.time()
                    if now >= next_snap:
                        self.wfile.write(f"event: snapshot\ndata: {json.dumps(station.snapshot())}\n\n".encode())
                        self.wfile.flush()
                        next_snap = now + 0.5
                    try:
                        text = q.get(timeout=max(0.01, next_snap - time.time()))
                        self.wfile.write(text.encode())
                        self.wfile.flush()
                    except queue.Empty:
                        pass
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass
            finally:
                with station.lock:
                    station.subscribers.remove(q)
                self.close_connection = True

        def read_json(self):
            n = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(n) if n else b""
            try:
                return json.loads(raw or b"null")
            except json.JSONDecodeError:
                return None

        def do_POST(self):
            body = self.read_json()
            if self.path == "/mock/set":
                body = dict(body or {})
                with station.lock:
                    station.clock_step_s += float(body.pop("clock_step_s", 0.0))
                    station.events_down = bool(body.pop("events_down", station.events_down))
                    station.overrides.update(body)
                return self.send_json(200, station.overrides)
            if self.path != "/api/settings":
                return self.send_json(404, {"error": "not found"})
            client = self.client_address[0]
            if station.token is None:
                return self.send_json(403, {"accepted": False, "reason": "the web page is read-only (no token configured)"})
            auth = self.headers.get("Authorization", "")
            if auth != f"Bearer {station.token}":
                why = "missing bearer token" if not auth else "wrong token"
                station.record(client, (body or {}).get("name", "?") if isinstance(body, dict) else "?", None, None, "refused", why)
                return self.send_json(401, {"accepted": False, "reason": why})
            if not isinstance(body, dict) or "name" not in body or "value" not in body:
                return self.send_json(400, {"accepted": False, "reason": 'body must be {"name": ..., "value": ...}'})
            status, out = station.submit(client, body["name"], body["value"])
            self.send_json(status, out)

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", default=None)
    ap.add_argument("--no-platform", action="store_true")
    args = ap.parse_args()
    station = Station(args.token, ["curve_shift_k", "room_target_c", "operating_mode", "valve1_manual_pct"], not args.no_platform)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(station))
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
