// Shared helpers of the technician page's end-to-end tests: Debian's Chromium through
// playwright-core (never a downloaded browser), the mock API server, the demo binary, a small
// Modbus TCP client for the SCADA slave, and the output directory.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, copyFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SUITE = path.resolve(HERE, '..');
export const REPO = path.resolve(SUITE, '..', '..');
export const OUT = process.env.WEB_E2E_OUT || path.join(REPO, 'target', 'web-e2e');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const IN_CI = !!process.env.CI;

// Flags that work on these machines (headless, as root, offline).
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

mkdirSync(OUT, { recursive: true });

/** Why a needed tool is missing (null: all there). In CI a missing tool is a failure, not a skip. */
export function missingTool(extra = []) {
  for (const f of [CHROMIUM, ...extra]) if (!existsSync(f)) return `${f} is missing`;
  return null;
}

/**
 * Skip (or fail in CI) when `why` is set. Returns true when the caller should return.
 * @param {import('node:test').TestContext} t
 */
export function requireTool(t, why) {
  if (!why) return false;
  if (IN_CI) throw new Error(`${why} (required when CI is set)`);
  t.skip(why);
  return true;
}

let pw = null;
/** Launch Debian's Chromium headless with a fresh profile (playwright-core's launch makes one). */
export async function launch() {
  pw = pw || (await import('playwright-core'));
  return pw.chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** A page that records console errors and page errors in `page.errors`. */
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, locale: opts.locale || 'en-US', ...opts.context });
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => page.errors.push(`pageerror: ${e.message}`));
  return page;
}

/** A free TCP port on loopback. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** Wait until `fn()` returns a truthy value (polling), or throw after `timeoutMs` with `what`. */
export async function until(fn, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Start a child process and resolve when a line of its stdout matches `ready` (returns {child, match, out}). */
export function startProcess(cmd, args, ready, timeoutMs, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let done = false;
    const timer = setTimeout(() => { if (!done) { done = true; child.kill('SIGKILL'); reject(new Error(`${cmd} did not get ready in ${timeoutMs} ms:\n${out}`)); } }, timeoutMs);
    const onData = (d) => {
      out += d.toString();
      const m = out.match(ready);
      if (m && !done) { done = true; clearTimeout(timer); resolve({ child, match: m, get out() { return out; } }); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => { out += d.toString(); });
    child.on('error', (e) => { if (!done) { done = true; clearTimeout(timer); reject(e); } });
    child.on('exit', (code, sig) => { if (!done) { done = true; clearTimeout(timer); reject(new Error(`${cmd} exited (${code ?? sig}) before it was ready:\n${out}`)); } });
  });
}

/** Stop a child: SIGTERM, then SIGKILL after `graceMs`. */
export function stopProcess(child, graceMs = 10000) {
  return new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    child.kill('SIGTERM');
  });
}

/** Start the mock API server (mock/server.py) on `port` (0: a free one). */
export async function startMock({ token = null, port = 0, platform = true } = {}) {
  const args = [path.join(SUITE, 'mock', 'server.py'), '--port', String(port)];
  if (token) args.push('--token', token);
  if (!platform) args.push('--no-platform');
  const p = await startProcess(process.env.PYTHON || 'python3', args, /listening on (http:\/\/127\.0\.0\.1:\d+\/)/, 15000);
  return { child: p.child, url: p.match[1], port: Number(new URL(p.match[1]).port), stop: () => stopProcess(p.child, 3000) };
}

/** The heatctl binary the demo tests run. */
export const HEATCTL = process.env.HEATCTL_BIN || path.join(REPO, 'target', 'release', 'heatctl');

/**
 * Start `heatctl demo --web 127.0.0.1:PORT --web-token TOKEN` on a free port; resolve when
 * /api/info answers. Returns { url, scadaPort, scadaUnit, child, output(), stop() }.
 */
export async function startDemo({ token, extraArgs = [] } = {}) {
  const port = await freePort();
  const args = ['demo', '--web', `127.0.0.1:${port}`, ...(token ? ['--web-token', token] : []), ...extraArgs];
  const p = await startProcess(HEATCTL, args, /SCADA\s+127\.0\.0\.1:(\d+), unit (\d+)/, 60000);
  const url = `http://127.0.0.1:${port}/`;
  // Ready once the first control cycle has run (/api/snapshot answers 503 before).
  await until(async () => (await fetch(`${url}api/info`)).ok && (await fetch(`${url}api/snapshot`)).ok, 30000, `${url}api/snapshot`).catch(async (e) => {
    await stopProcess(p.child);
    throw new Error(`${e.message}\n--- demo output ---\n${p.out}`);
  });
  return {
    url, child: p.child, scadaPort: Number(p.match[1]), scadaUnit: Number(p.match[2]),
    output: () => p.out, stop: () => stopProcess(p.child, 15000),
  };
}

// ---------------------------------------------------------------- Modbus TCP (SCADA slave)
let tid = 1;
/** One Modbus TCP request; resolves with the response PDU (function code first). */
export function modbusRequest(port, unit, pdu, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const id = tid++ & 0xffff;
    const head = Buffer.alloc(7);
    head.writeUInt16BE(id, 0); head.writeUInt16BE(0, 2); head.writeUInt16BE(pdu.length + 1, 4); head.writeUInt8(unit, 6);
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('modbus timeout')); }, timeoutMs);
    sock.on('connect', () => sock.write(Buffer.concat([head, pdu])));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 7) return;
      const len = buf.readUInt16BE(4);
      if (buf.length < 6 + len) return;
      clearTimeout(timer); sock.end();
      if (buf.readUInt16BE(0) !== id) { reject(new Error('modbus transaction id mismatch')); return; }
      const out = buf.subarray(7, 6 + len);
      if (out[0] & 0x80) reject(new Error(`modbus exception ${out[1]} to function ${out[0] & 0x7f}`)); else resolve(out);
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/** Read `count` input registers (function 04) from `addr` (0-based). */
export async function readInputRegisters(port, unit, addr, count) {
  const pdu = Buffer.alloc(5);
  pdu.writeUInt8(4, 0); pdu.writeUInt16BE(addr, 1); pdu.writeUInt16BE(count, 3);
  const r = await modbusRequest(port, unit, pdu);
  const out = [];
  for (let i = 0; i < count; i++) out.push(r.readUInt16BE(2 + 2 * i));
  return out;
}

/** Write one holding register (function 06). */
export async function writeHoldingRegister(port, unit, addr, raw) {
  const pdu = Buffer.alloc(5);
  pdu.writeUInt8(6, 0); pdu.writeUInt16BE(addr, 1); pdu.writeUInt16BE(raw & 0xffff, 3);
  await modbusRequest(port, unit, pdu);
}

/** The SCADA code of each limiter (input register 15, `heatctl scada-map`). */
export const LIMITER_CODES = { none: 0, return1: 1, return_difference: 2, power: 3, setback: 4, boost: 5, rate: 6, clamp: 7, summer: 8 };
/** SCADA input registers of the active limiter and the cycle count, holding register of the curve shift. */
export const SCADA_ACTIVE_LIMITER = 15;
export const SCADA_CYCLE_COUNT = 26;
export const SCADA_CURVE_SHIFT = 0;

/** Copy a screenshot to docs/img/ when WEB_E2E_UPDATE_DOCS is set (the run script's --update-docs). */
export function publishScreenshot(file, name) {
  if (!process.env.WEB_E2E_UPDATE_DOCS) return;
  const dir = path.join(REPO, 'docs', 'img');
  mkdirSync(dir, { recursive: true });
  copyFileSync(file, path.join(dir, name));
}

/** Page weight and paint timings, measured in the page (printed, never asserted). */
export async function measure(page) {
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const assets = performance.getEntriesByType('resource').filter((r) => !r.name.includes('/api/'));
    const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
    const bytes = (nav ? nav.decodedBodySize : 0) + assets.reduce((a, r) => a + r.decodedBodySize, 0);
    const wire = (nav ? nav.transferSize : 0) + assets.reduce((a, r) => a + r.transferSize, 0);
    return {
      assets: [nav ? nav.name : '', ...assets.map((r) => r.name)].map((n) => new URL(n).pathname),
      weight_bytes: bytes, transfer_bytes: wire,
      first_paint_ms: paint['first-paint'] ?? null, first_contentful_paint_ms: paint['first-contentful-paint'] ?? null,
      dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
    };
  });
}

/** The raw data-value of a page field (first element with that data-field). */
export async function fieldValue(page, name) {
  return page.$eval(`[data-field="${name}"]`, (e) => e.dataset.value);
}
