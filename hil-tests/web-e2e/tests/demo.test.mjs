// The technician page against a running `heatctl demo --web 127.0.0.1:PORT --web-token T`
// (the real server, controller and simulated plant): loads with no console error, follows the
// plant live, shows the limiter SCADA shows, switches language, writes only with the token.
// Element ids and data attributes: see page-mock.test.mjs.
//
// HEATCTL_BIN selects the binary (default target/release/heatctl). Screenshots and the measured
// page weight and paint times go to target/web-e2e/ (WEB_E2E_OUT); WEB_E2E_UPDATE_DOCS=1 copies
// the screenshots to docs/img/status-page-{en,zh}.png.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  HEATCTL, LIMITER_CODES, OUT, SCADA_ACTIVE_LIMITER, SCADA_CURVE_SHIFT, SCADA_CYCLE_COUNT, fieldValue, launch, measure, missingTool,
  newPage, publishScreenshot, readInputRegisters, requireTool, startDemo, until, writeHoldingRegister,
} from './lib.mjs';

const TOKEN = 'e2e-token';
const missing = missingTool() || (existsSync(HEATCTL) ? null : `${HEATCTL} is missing (cargo build --release -p heatctl --bins)`);

describe('page against heatctl demo', () => {
  let browser; let demo; let page;
  const api = async (p) => (await fetch(`${demo.url}${p}`)).json();

  before(async () => {
    if (missing) return;
    // At 120 simulated seconds per second (not the demo's 1440): values move at once, and the
    // pictures show a few hours of trends.
    demo = await startDemo({ token: TOKEN, extraArgs: ['--speed', '120'] });
    browser = await launch();
    page = await newPage(browser);
  });
  after(async () => {
    await browser?.close();
    if (demo) {
      await demo.stop();
      await writeFile(path.join(OUT, 'demo-output.txt'), demo.output());
    }
  });

  test('loads with no console error and goes live', async (t) => {
    if (requireTool(t, missing)) return;
    await page.goto(demo.url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    await until(() => page.$eval('#conn-state', (e) => e.dataset.state === 'open'), 10000, 'SSE open');
    await until(async () => (await fieldValue(page, 'setpoint_c')) !== '', 10000, 'a setpoint shown');
    const info = await api('api/info');
    assert.equal(info.write_enabled, true);
    assert.ok(await page.$('#settings-form'), 'the settings form is there with a token configured');
    assert.equal(await page.$eval('#read-only-notice', (e) => e.hidden), true);
    assert.ok(await page.$$eval('#rooms-table tbody tr[data-node-id]', (r) => r.length) > 0, 'room nodes listed');
    assert.ok(await page.$eval('#curve-plot', (e) => Number(e.dataset.points)) > 1, 'curve plotted');
    const m = await measure(page);
    console.log(`# page weight ${m.weight_bytes} B decoded (${m.transfer_bytes} B on the wire) over ${m.assets.join(', ')}`);
    console.log(`# first paint ${m.first_paint_ms?.toFixed(1)} ms, first contentful paint ${m.first_contentful_paint_ms?.toFixed(1)} ms, DOMContentLoaded ${m.dom_content_loaded_ms?.toFixed(1)} ms`);
    await writeFile(path.join(OUT, 'metrics.json'), JSON.stringify(m, null, 2));
    assert.deepEqual(page.errors, []);
  });

  test('values follow the plant within a few seconds', async (t) => {
    if (requireTool(t, missing)) return;
    const clock0 = Number(await page.$eval('#station-clock', (e) => e.dataset.clockUnixS));
    const t2 = await fieldValue(page, 't2_supply_c');
    const out = await fieldValue(page, 'outdoor_c');
    await until(async () => Number(await page.$eval('#station-clock', (e) => e.dataset.clockUnixS)) > clock0, 5000, 'a newer cycle');
    await until(async () => (await fieldValue(page, 't2_supply_c')) !== t2 || (await fieldValue(page, 'outdoor_c')) !== out, 5000, 'supply or outdoor to move');
    // The page shows what the API says at about the same cycle.
    const snap = await api('api/snapshot');
    const shown = Number(await page.$eval('#station-clock', (e) => e.dataset.clockUnixS));
    assert.ok(Math.abs(snap.clock.clock_unix_s - shown) < 3 * 3600, `page clock ${shown} near the API's ${snap.clock.clock_unix_s}`);
  });

  test('a curve shift written by SCADA shows on the page within a few seconds', async (t) => {
    if (requireTool(t, missing)) return;
    await writeHoldingRegister(demo.scadaPort, demo.scadaUnit, SCADA_CURVE_SHIFT, 15); // +1.5 K in tenths
    await until(async () => (await fieldValue(page, 'curve_shift_k')) === '1.5', 5000, 'curve_shift_k 1.5 on the page');
    await until(async () => Number(await fieldValue(page, 'base_shift_k')) === 1.5, 5000, 'the shift in force');
    await until(() => page.$('#audit-table tr[data-what*="curve_shift_k"][data-source="scada"]'), 5000, 'the SCADA write in the audit tail');
  });

  test('the limiter shown is the one on the SCADA register', async (t) => {
    if (requireTool(t, missing)) return;
    // A demo of its own in real time (one cycle a second, every cycle reaches the page): the page
    // and SCADA are compared only on the same cycle, told by the cycle count both faces carry.
    const rt = await startDemo({ token: TOKEN, extraArgs: ['--speed', '1'] });
    const rtPage = await newPage(browser);
    try {
      await rtPage.goto(rt.url);
      await until(() => rtPage.$eval('#active-limiter', (e) => e.dataset.cycle !== ''), 20000, 'a cycle on the page');
      const scada = async () => {
        // One request from active_limiter (15) to cycle_count (26): one snapshot.
        const r = await readInputRegisters(rt.scadaPort, rt.scadaUnit, SCADA_ACTIVE_LIMITER, SCADA_CYCLE_COUNT - SCADA_ACTIVE_LIMITER + 1);
        return { code: r[0], cycle: r[SCADA_CYCLE_COUNT - SCADA_ACTIVE_LIMITER] };
      };
      const compare = async (wanted) => {
        let same = 0; const seen = new Set();
        for (let i = 0; i < 200 && same < wanted; i++) {
          const shown = await rtPage.$eval('#active-limiter', (e) => ({ name: e.dataset.limiter, code: Number(e.dataset.code), cycle: Number(e.dataset.cycle) }));
          const r = await scada();
          if (shown.cycle % 65535 === r.cycle) {
            assert.equal(LIMITER_CODES[shown.name], r.code, `cycle ${shown.cycle}: page shows ${shown.name}, SCADA register reads ${r.code}`);
            assert.equal(shown.code, r.code);
            if (!seen.has(r.cycle)) { seen.add(r.cycle); same++; }
          }
          await new Promise((res) => setTimeout(res, 100));
        }
        assert.ok(same >= wanted, `compared on ${same} cycles, wanted ${wanted}`);
      };
      await compare(3);
      // A shift far above the curve (max 85 °C in the demo): some limiter must act (the rate limit
      // on the way up, the supply clamp, or the return or power limit the hotter supply brings on),
      // and both faces must name the same.
      await writeHoldingRegister(rt.scadaPort, rt.scadaUnit, SCADA_CURVE_SHIFT, 300); // +30 K
      await until(async () => (await scada()).code !== LIMITER_CODES.none, 30000, 'SCADA to show a limiter in force');
      await until(() => rtPage.$eval('#active-limiter', (e) => e.dataset.limiter !== 'none'), 10000, 'the page to show a limiter in force');
      await compare(3);
      const shown = await rtPage.$eval('#active-limiter', (e) => ({ name: e.dataset.limiter, delta: Number(e.dataset.deltaK) }));
      assert.notEqual(shown.name, 'none');
      assert.ok(shown.delta !== 0, `the ${shown.name} limiter moves the setpoint (${shown.delta} K)`);
      assert.deepEqual(rtPage.errors, []);
    } finally {
      await rtPage.context().close();
      await rt.stop();
    }
  });

  test('the language switch changes the labels', async (t) => {
    if (requireTool(t, missing)) return;
    await page.click('#lang-switch button[data-lang="en"]');
    await page.waitForTimeout(1500); // let the trends fill for the picture
    assert.equal(await page.$eval('#station h2', (e) => e.textContent), 'Station');
    const en = path.join(OUT, 'status-page-en.png');
    await page.screenshot({ path: en, fullPage: true });
    await page.click('#lang-switch button[data-lang="zh-CN"]');
    assert.equal(await page.$eval('html', (e) => e.lang), 'zh-CN');
    assert.equal(await page.$eval('#station h2', (e) => e.textContent), '换热站');
    assert.equal(await page.$eval('#why h2', (e) => e.textContent), '原因:哪些因素在改变供水设定值');
    assert.equal(await page.$eval('[data-i18n="f.setpoint_c"]', (e) => e.textContent), '二次供水设定值');
    const zh = path.join(OUT, 'status-page-zh.png');
    await page.screenshot({ path: zh, fullPage: true });
    publishScreenshot(en, 'status-page-en.png');
    publishScreenshot(zh, 'status-page-zh.png');
    await page.click('#lang-switch button[data-lang="en"]');
    assert.equal(await page.$eval('#station h2', (e) => e.textContent), 'Station');
    assert.deepEqual(page.errors, [], 'no console error while live');
  });

  test('a write with the token changes the setting and lands in the audit log', async (t) => {
    if (requireTool(t, missing)) return;
    const before = (await api('api/snapshot')).settings.room_target_c;
    const want = before === 20.5 ? 21 : 20.5;
    await page.fill('#token', TOKEN);
    await page.fill('#set-room_target_c', String(want));
    await page.click('button[data-apply="room_target_c"]');
    await until(() => page.$eval('#settings-result', (e) => e.dataset.outcome !== 'pending' && e.dataset.outcome), 5000, 'an answer');
    assert.equal(await page.$eval('#settings-result', (e) => e.dataset.outcome), 'accepted', await page.$eval('#settings-result', (e) => e.textContent));
    await until(async () => (await api('api/snapshot')).settings.room_target_c === want, 10000, `room_target_c ${want} in the snapshot`);
    await until(async () => (await fieldValue(page, 'room_target_c')) === String(want), 5000, 'the page to show it');
    const audit = await api('api/audit?n=50');
    const rec = audit.filter((a) => String(a.what).includes('room_target_c') && String(a.source).toLowerCase() === 'web').pop();
    assert.ok(rec, 'an audit record of the web write');
    assert.match(String(rec.result), /accept/i);
    await until(() => page.$('#audit-table tr[data-what*="room_target_c"][data-source="web"]'), 5000, 'the audit row on the page');
  });

  test('a write without the token is refused and changes nothing', async (t) => {
    if (requireTool(t, missing)) return;
    const before = (await api('api/snapshot')).settings.curve_shift_k;
    await page.fill('#token', '');
    await page.fill('#set-curve_shift_k', String(before + 2));
    await page.click('button[data-apply="curve_shift_k"]');
    await until(() => page.$eval('#settings-result', (e) => e.dataset.outcome !== 'pending' && e.dataset.outcome), 5000, 'an answer');
    assert.equal(await page.$eval('#settings-result', (e) => e.dataset.outcome), 'refused');
    assert.equal(await page.$eval('#settings-result', (e) => e.dataset.status), '401');
    const wrong = await fetch(`${demo.url}api/settings`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer not-the-token' },
      body: JSON.stringify({ name: 'curve_shift_k', value: before + 3 }),
    });
    assert.equal(wrong.status, 401);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await api('api/snapshot')).settings.curve_shift_k, before);
  });
});
