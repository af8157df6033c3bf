// The technician page in isolation, against the mock API (mock/server.py): every panel renders
// the snapshot's cases, sorting, zoom, language, read-only and write paths, SSE reconnection.
//
// Element ids and data attributes the tests (and scripts) rely on, all set by app.js:
//   [data-field="NAME"]          value cells; data-value = raw number/string ('' when unknown), text =
//                                formatted with unit. NAME: outdoor_c damped_outdoor_c composite_outdoor_c
//                                t_out_c curve_c setpoint_c t2_supply_c supply_deviation_k t2_return_c
//                                t1_supply_c t1_return_c valve1_cmd_pct valve1_pos_pct power1_kw flow1_m3h
//                                base_shift_k curve_shift_k demand_shift_k valve_demand_shift_k
//                                room_target_c valve1_manual_pct demand_enabled mode heating_on
//                                rooms_percentile_c rooms_median_c rooms_min_c rooms_used rooms_expected
//                                rooms_at_or_above_floor_pct devices_total devices_lost platform_* version
//   #active-limiter              data-limiter = limiter name or "none", data-code = SCADA code (0 none),
//                                data-delta-k = its effect on the setpoint, K
//   #supervisor                  data-value = supervisor state or "none"
//   #outdoor-source              data-value = measured | held | fallback
//   #invalid-signals li          data-signal = JSON key, data-reason = rejection (stale, stuck, ...)
//   #fallbacks li                data-code = alarm code of the fallback
//   #why-chain tr                data-step = curve | base_shift_k | demand_shift_k | valve_demand_shift_k |
//                                before | limiter (data-limiter, data-delta-k) | setpoint
//   #why-summary                 the influence overview in one sentence
//   #rooms-table                 th[data-sort-key] (click sorts; data-sort-dir asc|desc),
//                                tbody tr[data-node-id][data-state], reading td[data-value]
//   #alarms-active / #alarms-recent tr[data-code]
//   #links-table tr[data-link][data-connected], #devices-table tr[data-device][data-health]
//   #platform                    hidden when no platform link is reported
//   #audit-table tr[data-what][data-result][data-source]
//   #curve-plot                  svg; data-points; path[data-series=curve|shifted]; #curve-operating-point
//                                (data-outdoor-c, data-setpoint-c); line.limit[data-limit]
//   #trend-charts                data-rows, data-x0, data-x1 (visible window, unix s);
//                                svg[data-chart=temps|valve|shift] path[data-series=COLUMN]
//   #trend-ranges button[data-range-h], #trend-reset
//   #lang-switch button[data-lang=zh-CN|en] (aria-pressed), html[lang]
//   #conn-state                  data-state = connecting | open | closed
//   #last-update                 data-wall-unix-s; #station-clock data-clock-unix-s
//   #read-only-notice            shown when /api/info write_enabled is false; #settings-form absent then
//   #settings-form               #token, #set-NAME inputs, button[data-apply=NAME],
//                                #settings-result (data-outcome = pending|accepted|refused, data-status)
//   body[data-ready="true"]      once the first load finished; body[data-write-enabled]
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import path from 'node:path';
import { OUT, freePort, launch, measure, missingTool, newPage, requireTool, startMock, until, fieldValue } from './lib.mjs';

const missing = missingTool();
const TOKEN = 'mock-token';

describe('page against the mock API', () => {
  let browser; let rw; let ro;
  before(async () => {
    if (missing) return;
    browser = await launch();
    rw = await startMock({ token: TOKEN });
    ro = await startMock({ platform: false });
  });
  after(async () => {
    await browser?.close();
    await rw?.stop();
    await ro?.stop();
  });

  test('renders every panel with no console error', async (t) => {
    if (requireTool(t, missing)) return;
    const page = await newPage(browser);
    await page.goto(rw.url);
    await page.waitForSelector('body[data-ready="true"]');
    await until(() => page.$eval('#conn-state', (e) => e.dataset.state === 'open'), 5000, 'SSE open');
    assert.equal(await page.$eval('#active-limiter', (e) => e.dataset.limiter), 'return1');
    assert.equal(await page.$eval('#active-limiter', (e) => e.dataset.code), '1');
    assert.equal(await page.$eval('#active-limiter', (e) => Number(e.dataset.deltaK)), -1.5);
    assert.equal(await page.$eval('#why-chain tr[data-step="limiter"][data-limiter="return1"]', (e) => e.dataset.deltaK), '-1.5');
    const inv = await page.$$eval('#invalid-signals li[data-signal]', (ls) => ls.map((l) => `${l.dataset.signal}:${l.dataset.reason}`));
    assert.deepEqual(inv, ['flow1_m3h:stale']);
    assert.equal(await page.$eval('#outdoor-source', (e) => e.dataset.value), 'measured');
    assert.equal(await page.$$eval('#rooms-table tbody tr[data-node-id]', (r) => r.length), 13);
    const states = await page.$$eval('#rooms-table tbody tr', (r) => [...new Set(r.map((x) => x.dataset.state))].sort());
    assert.deepEqual(states, ['excluded', 'invalid', 'missing', 'outlier', 'stale', 'stuck', 'used', 'vacant']);
    assert.equal(await fieldValue(page, 'rooms_percentile_c'), '20.1');
    assert.equal(await page.$eval('#rooms-table tr[data-state="stuck"] .state', (e) => e.textContent), 'stuck');
    assert.equal(await fieldValue(page, 'platform_broker'), 'mqtts://platform.example:8883');
    assert.deepEqual(await page.$$eval('#alarms-active tr[data-code]', (r) => r.map((x) => x.dataset.code)), ['107', '501']);
    assert.equal(await page.$eval('#links-table tr[data-link="mbus_gw"]', (e) => e.dataset.connected), 'false');
    assert.equal(await page.$eval('#platform', (e) => e.hidden), false);
    assert.equal(await page.$eval('#curve-plot', (e) => Number(e.dataset.points)), 46);
    assert.ok(await page.$('#curve-operating-point'), 'operating point drawn');
    assert.equal(await page.$$eval('#curve-plot line.limit', (l) => l.length), 2);
    assert.ok(await page.$eval('#trend-charts', (e) => Number(e.dataset.rows)) > 2800, '48 h of minute rows');
    assert.equal(await page.$eval('#read-only-notice', (e) => e.hidden), true);
    assert.ok(await page.$('#settings-form'));
    // The balancing advice card: the summary and one row per riser, with its verdict.
    await until(async () => (await page.$$eval('#balance-table tbody tr', (r) => r.length)) === 2, 5000, 'two advice rows');
    assert.deepEqual(await page.$$eval('#balance-table tbody tr', (r) => r.map((x) => x.dataset.verdict)), ['under_supplied', 'balanced']);
    assert.match(await page.$eval('#balance-summary', (e) => e.textContent), /b2 \/ b2-r1/);
    await page.screenshot({ path: path.join(OUT, 'mock-en.png'), fullPage: true });
    console.log('# mock page metrics', JSON.stringify(await measure(page)));
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('the why panel follows a change of limiter and supervisor within seconds', async (t) => {
    if (requireTool(t, missing)) return;
    const page = await newPage(browser);
    await page.goto(rw.url);
    await page.waitForSelector('body[data-ready="true"]');
    await fetch(`${rw.url}mock/set`, { method: 'POST', body: JSON.stringify({ active_limiter: 'power', delta_k: -4.0, supervisor: 'frost', outdoor_source: 'held' }) });
    try {
      await until(() => page.$eval('#active-limiter', (e) => e.dataset.limiter === 'power' && e.dataset.code === '3'), 5000, 'limiter power');
      assert.equal(await page.$eval('#supervisor', (e) => e.dataset.value), 'frost');
      assert.equal(await page.$eval('#outdoor-source', (e) => e.dataset.value), 'held');
      assert.match(await page.$eval('#why-summary', (e) => e.textContent), /power\/flow limiter moves it by -4\.0 K/);
    } finally {
      await fetch(`${rw.url}mock/set`, { method: 'POST', body: JSON.stringify({ active_limiter: 'return1', delta_k: -1.5, supervisor: null, outdoor_source: 'measured' }) });
    }
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('rooms sort by a clicked header, both directions, unknown readings last', async (t) => {
    if (requireTool(t, missing)) return;
    const page = await newPage(browser);
    await page.goto(rw.url);
    await page.waitForSelector('#rooms-table tbody tr[data-node-id]');
    const readings = () => page.$$eval('#rooms-table tbody tr', (r) => r.map((x) => x.children[3].dataset.value));
    await page.click('#rooms-table th[data-sort-key="value_c"]');
    let v = await readings();
    const known = (a) => a.filter((x) => x !== '').map(Number);
    assert.deepEqual(known(v), [...known(v)].sort((a, b) => a - b));
    assert.equal(v[v.length - 1], '', 'no reading sorts last');
    assert.equal(await page.$eval('#rooms-table th[data-sort-key="value_c"]', (e) => e.dataset.sortDir), 'asc');
    await page.click('#rooms-table th[data-sort-key="value_c"]');
    v = await readings();
    assert.deepEqual(known(v), [...known(v)].sort((a, b) => b - a));
    assert.equal(v[v.length - 1], '');
    await page.click('#rooms-table th[data-sort-key="state"]');
    assert.equal(await page.$eval('#rooms-table tbody tr', (r) => r.dataset.state), 'used');
    await page.context().close();
  });

  test('trends zoom with range buttons, the wheel, a drag and reset', async (t) => {
    if (requireTool(t, missing)) return;
    const page = await newPage(browser);
    await page.goto(rw.url);
    await page.waitForSelector('body[data-ready="true"]');
    const span = () => page.$eval('#trend-charts', (e) => Number(e.dataset.x1) - Number(e.dataset.x0));
    assert.ok(Math.abs((await span()) - 48 * 3600) < 120, '48 h shown (from the first row)');
    await page.click('#trend-ranges button[data-range-h="1"]');
    assert.ok(Math.abs((await span()) - 3600) < 1);
    await page.click('#trend-ranges button[data-range-h="6"]');
    assert.ok(Math.abs((await span()) - 6 * 3600) < 1);
    await page.$eval('#trend-charts svg[data-chart="temps"]', (e) => e.scrollIntoView({ block: 'center' }));
    const box = await page.$eval('#trend-charts svg[data-chart="temps"]', (e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; });
    await page.mouse.move(box.x + box.w / 2, box.y + box.h / 2);
    await page.mouse.wheel(0, -200);
    await until(async () => (await span()) < 6 * 3600 - 60, 2000, 'wheel zoom in');
    await page.click('#trend-reset');
    assert.ok(Math.abs((await span()) - 48 * 3600) < 120, '48 h shown (from the first row)');
    await page.mouse.move(box.x + box.w * 0.4, box.y + box.h / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.w * 0.6, box.y + box.h / 2, { steps: 5 });
    await page.mouse.up();
    const s = await span();
    assert.ok(s > 3 * 3600 && s < 16 * 3600, `a fifth of 48 h selected, got ${s} s`);
    assert.ok(await page.$('#trend-charts svg[data-chart="temps"] path[data-series="setpoint_c"]'));
    await page.context().close();
  });

  test('trends follow a step of the wall clock: the series is taken again, dated anew', async (t) => {
    if (requireTool(t, missing)) return;
    const page = await newPage(browser);
    await page.goto(rw.url);
    await page.waitForSelector('body[data-ready="true"]');
    await until(() => page.$eval('#conn-state', (e) => e.dataset.state === 'open'), 5000, 'SSE open');
    const x1 = () => page.$eval('#trend-charts', (e) => Number(e.dataset.x1));
    const before = await x1();
    // The station's clock is stepped back a day (as NTP or a technician would); its monotonic
    // clock runs on. Rows appended by the old dates would stop the series a day ahead.
    await fetch(`${rw.url}mock/set`, { method: 'POST', body: JSON.stringify({ clock_step_s: -86400 }) });
    try {
      await until(async () => (await x1()) < before - 80000, 10000, 'the trends dated on the stepped clock');
      assert.ok(await page.$eval('#trend-charts', (e) => Number(e.dataset.rows)) > 2800, '48 h of minute rows again');
    } finally {
      await fetch(`${rw.url}mock/set`, { method: 'POST', body: JSON.stringify({ clock_step_s: 86400 }) });
    }
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('the language switch changes labels and numbers, and is remembered', async (t) => {
    if (requireTool(t, missing)) return;
    const page = await newPage(browser);
    await page.goto(rw.url);
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.$eval('#why h2', (e) => e.textContent), 'Why: what moves the setpoint');
    await page.click('#lang-switch button[data-lang="zh-CN"]');
    assert.equal(await page.$eval('html', (e) => e.lang), 'zh-CN');
    assert.equal(await page.$eval('#why h2', (e) => e.textContent), '原因:哪些因素在改变供水设定值');
    assert.equal(await page.$eval('#rooms-table th[data-sort-key="building"]', (e) => e.textContent), '楼栋');
    assert.match(await page.$eval('#active-limiter', (e) => e.textContent), /一次回水温度限制/);
    assert.equal(await page.$eval('#alarms-active tr[data-code="107"] td:nth-child(2)', (e) => e.textContent), '热量表数据过期或无效');
    await page.screenshot({ path: path.join(OUT, 'mock-zh.png'), fullPage: true });
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.$eval('html', (e) => e.lang), 'zh-CN', 'remembered across a reload');
    await page.click('#lang-switch button[data-lang="en"]');
    assert.equal(await page.$eval('#rooms-table th[data-sort-key="building"]', (e) => e.textContent), 'Building');
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('a Chinese browser gets Chinese first', async (t) => {
    if (requireTool(t, missing)) return;
    const page = await newPage(browser, { locale: 'zh-CN' });
    await page.goto(rw.url);
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.$eval('html', (e) => e.lang), 'zh-CN');
    assert.equal(await page.$eval('#station h2', (e) => e.textContent), '换热站');
    await page.context().close();
  });

  test('writes: accepted with the token, refused without it or out of range, all in the audit tail', async (t) => {
    if (requireTool(t, missing)) return;
    const page = await newPage(browser);
    await page.goto(rw.url);
    await page.waitForSelector('#settings-form');
    await page.fill('#token', TOKEN);
    await page.fill('#set-curve_shift_k', '2.5');
    await page.click('button[data-apply="curve_shift_k"]');
    await until(() => page.$eval('#settings-result', (e) => e.dataset.outcome === 'accepted'), 5000, 'accepted');
    assert.match(await page.$eval('#settings-result', (e) => e.textContent), /0 → 2\.5/);
    const snap = await (await fetch(`${rw.url}api/snapshot`)).json();
    assert.equal(snap.settings.curve_shift_k, 2.5);
    await until(() => page.$eval('[data-field="curve_shift_k"]', (e) => e.dataset.value === '2.5'), 5000, 'shown shift');
    await until(() => page.$('#audit-table tr[data-what*="curve_shift_k"][data-result="accepted"]'), 5000, 'audit row');

    await page.fill('#set-room_target_c', '40');
    await page.click('button[data-apply="room_target_c"]');
    await until(() => page.$eval('#settings-result', (e) => e.dataset.outcome === 'refused'), 5000, 'refused');
    assert.equal(await page.$eval('#settings-result', (e) => e.dataset.status), '422');
    assert.match(await page.$eval('#settings-result', (e) => e.textContent), /must be within 12(\.0)? \.\. 26/);

    await page.fill('#token', '');
    await page.fill('#set-curve_shift_k', '-1');
    await page.click('button[data-apply="curve_shift_k"]');
    await until(() => page.$eval('#settings-result', (e) => e.dataset.outcome === 'refused'), 5000, 'refused');
    assert.equal(await page.$eval('#settings-result', (e) => e.dataset.status), '401');
    const after = await (await fetch(`${rw.url}api/snapshot`)).json();
    assert.equal(after.settings.curve_shift_k, 2.5, 'a refused write changes nothing');
    await page.context().close();
  });

  test('mode off from the form: no setpoint, the why panel says heating is off', async (t) => {
    if (requireTool(t, missing)) return;
    const page = await newPage(browser);
    await page.goto(rw.url);
    await page.waitForSelector('#settings-form');
    await page.fill('#token', TOKEN);
    await page.selectOption('#set-operating_mode', 'off');
    await page.click('button[data-apply="operating_mode"]');
    try {
      await until(() => page.$eval('#settings-result', (e) => e.dataset.outcome === 'accepted'), 15000, 'accepted');
      await until(async () => (await fieldValue(page, 'mode')) === 'off', 15000, 'mode off shown').catch(async (e) => {
        // Say what the page was doing: its live connection, what it shows, its errors.
        const conn = await page.$eval('#conn-state', (x) => x.dataset.state).catch(() => '?');
        const shown = await fieldValue(page, 'mode').catch(() => '?');
        throw new Error(`${e.message}; SSE ${conn}, mode shown ${JSON.stringify(shown)}, page errors ${JSON.stringify(page.errors)}`);
      });
      assert.equal(await fieldValue(page, 'setpoint_c'), '', 'no setpoint while off');
      assert.equal(await page.$eval('[data-field="setpoint_c"]', (e) => e.textContent), '--');
      assert.match(await page.$eval('#why-summary', (e) => e.textContent), /Heating is off/);
      assert.equal(await page.$eval('#why-chain tr[data-step="setpoint"] td', (e) => e.textContent), '--');
    } finally {
      await page.selectOption('#set-operating_mode', 'auto');
      await page.click('button[data-apply="operating_mode"]');
      await until(async () => (await fieldValue(page, 'mode')) === 'auto', 15000, 'mode auto again');
    }
    await page.context().close();
  });

  test('read-only: the notice in both languages, no form, a write is refused', async (t) => {
    if (requireTool(t, missing)) return;
    const page = await newPage(browser);
    await page.goto(ro.url);
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.$eval('#read-only-notice', (e) => e.hidden), false);
    const text = await page.$eval('#read-only-notice', (e) => e.innerText);
    assert.match(text, /Read-only/);
    assert.match(text, /只读/);
    assert.equal(await page.$('#settings-form'), null);
    assert.equal(await page.$eval('#platform', (e) => e.hidden), true, 'no platform link reported');
    const r = await fetch(`${ro.url}api/settings`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"curve_shift_k","value":1}' });
    assert.equal(r.status, 403);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('a write made while the event stream is down shows in the audit tail after it comes back', async (t) => {
    if (requireTool(t, missing)) return;
    const m = await startMock({ token: TOKEN });
    const page = await newPage(browser);
    const post = (p, body, auth) => fetch(`${m.url}${p}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', ...(auth ? { Authorization: `Bearer ${TOKEN}` } : {}) }, body: JSON.stringify(body),
    });
    try {
      await page.goto(m.url);
      await until(() => page.$eval('#conn-state', (e) => e.dataset.state === 'open'), 5000, 'open');
      await post('mock/set', { events_down: true });
      await until(() => page.$eval('#conn-state', (e) => e.dataset.state !== 'open'), 10000, 'shown as lost');
      const res = await post('api/settings', { name: 'curve_shift_k', value: 1.5 }, true);
      assert.equal(res.status, 200);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await page.$('#audit-table tr[data-what*="curve_shift_k"]'), null, 'no row while the stream is down');
      await post('mock/set', { events_down: false });
      await until(() => page.$eval('#conn-state', (e) => e.dataset.state === 'open'), 30000, 'reconnected');
      await until(() => page.$('#audit-table tr[data-what*="curve_shift_k"][data-result="accepted"]'), 5000, 'the audit row of the write made while down');
      assert.deepEqual(page.errors, []);
    } finally {
      await page.context().close();
      await m.stop();
    }
  });

  test('SSE: shows the connection lost and reconnects by itself', async (t) => {
    if (requireTool(t, missing)) return;
    const port = await freePort();
    let m = await startMock({ port });
    const page = await newPage(browser);
    try {
      await page.goto(m.url);
      await until(() => page.$eval('#conn-state', (e) => e.dataset.state === 'open'), 5000, 'open');
      await m.stop();
      await until(() => page.$eval('#conn-state', (e) => e.dataset.state !== 'open'), 10000, 'shown as lost');
      const before = Number(await page.$eval('#last-update', (e) => e.dataset.wallUnixS));
      m = await startMock({ port });
      await until(() => page.$eval('#conn-state', (e) => e.dataset.state === 'open'), 20000, 'reconnected');
      await until(async () => Number(await page.$eval('#last-update', (e) => e.dataset.wallUnixS)) > before, 5000, 'fresh update');
    } finally {
      await page.context().close();
      await m.stop();
    }
  });
});
