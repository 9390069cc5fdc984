import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../src/domain/events.js';
import type { JsonObject } from '../../src/domain/json.js';
import { buildDashboard } from '../../scripts/build-dashboard.js';
import { book, eventId, ladder, quote } from '../support/events.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { waitFor } from '../support/waits.js';

/**
 * The dashboard (public/, on @bondx/client) in a real headless Chromium: Debian's `chromium`, driven by
 * playwright-core (no downloaded browser build). scripts/browser.sh installs it when it is missing; a
 * browser that can not be had fails the test, it is never skipped. Against the embedded system: live L1
 * prices move, the order-book checksum shows verified, and after an operator cuts the user's connections
 * the dashboard reconnects and resumes with no gap (the SDK's seq, read from the page, reaches the server's
 * head without a re-sync, and the page's state equals the server's). Screenshots go to .services/artifacts/.
 */

const USER = 'browser-trader';
const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
const ARTIFACTS = new URL('../../.services/artifacts/', import.meta.url);

let system: TestSystem;
let browser: Browser;
let page: Page;

async function publish(events: DomainEvent[]): Promise<void> {
  for (const e of events) await system.ingest.submit(e, 'test');
}

/** Quotes, both sides of the book and trades; `n` varies prices and depth. */
function priceEvents(count: number, from: number): DomainEvent[] {
  return Array.from({ length: count }, (_, k): DomainEvent => {
    const n = from + k;
    const side = n % 2 ? 'bid' : 'ask';
    if (n % 3 === 0) return quote(ISIN, 99 + (n % 40) / 100, 99.5 + (n % 40) / 100) as DomainEvent;
    if (n % 3 === 1) return book(ISIN, side, ladder(side, 3 + (n % 12), n)) as DomainEvent;
    return { event_id: eventId('t'), type: 'trade', ts: new Date().toISOString(), isin: ISIN, trade_id: `T-${n}`, price: 99.5, size: 5 + (n % 9) } as DomainEvent;
  });
}

/** What the page's dashboard holds for the prices topic: the SDK's seq and state, and the dashboard's counters. */
function pageView(): Promise<{ seq: number | null; state: JsonObject | undefined; stats: Window['bondxDashboard']['stats']; connectionLog: string[] }> {
  return page.evaluate((topic) => {
    const d = window.bondxDashboard;
    const sub = d.topics.get(topic)?.sub;
    return { seq: sub?.seq ?? null, state: sub?.state as JsonObject | undefined, stats: { ...d.stats }, connectionLog: [...d.connectionLog] };
  }, TOPIC);
}

async function serverHead(): Promise<{ seq: number; state: JsonObject }> {
  const snap = await system.backends.store.snapshot(TOPIC);
  if (!snap) throw new Error(`no snapshot of ${TOPIC}`);
  return { seq: snap.seq, state: snap.state };
}

beforeAll(async () => {
  // Installs Debian's chromium (apt-get update + install) when it is missing; exits non-zero if it can not.
  const executablePath = execFileSync('bash', [new URL('../../scripts/browser.sh', import.meta.url).pathname], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  await buildDashboard();
  system = await startTestSystem({ WS_HEARTBEAT_INTERVAL: '1' });
  await publish(priceEvents(30, 0));
  browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${system.server.url}/?token=${system.token(USER)}`);
  await page.waitForSelector('#conn-state[data-state="live"]', { timeout: 20_000 });
  expect(errors).toEqual([]);
  mkdirSync(ARTIFACTS, { recursive: true });
}, 900_000);

afterAll(async () => {
  await browser?.close();
  await system?.close();
});

describe('the dashboard in Chromium', () => {
  it('shows live L1 prices that move, and the order book’s checksum verified', async () => {
    const bid = page.locator('#l1 tbody tr', { hasText: ISIN }).locator('td').nth(4);
    await expect.poll(() => bid.textContent(), { timeout: 10_000 }).not.toBe('');
    const before = await bid.textContent();
    await publish([quote(ISIN, 98.1234, 98.5)]);
    await expect.poll(() => bid.textContent(), { timeout: 10_000 }).toBe('98.1234');
    expect(before).not.toBe('98.1234');

    await publish([book(ISIN, 'bid', ladder('bid', 8, 3)), book(ISIN, 'ask', ladder('ask', 8, 4))]);
    await page.waitForSelector('#checksum[data-status="verified"]', { timeout: 10_000 });
    const view = await pageView();
    expect(view.stats.checksumVerified).toBeGreaterThan(0);
    expect(view.stats.checksumMismatches).toBe(0);
    // The orders panel fits its column: no sideways scrolling.
    expect(await page.$eval('.orders', (panel) => [...panel.querySelectorAll('.scroll')].every((s) => s.scrollWidth <= s.clientWidth))).toBe(true);
    await page.screenshot({ path: new URL('dashboard-live.png', ARTIFACTS).pathname, fullPage: true });
  });

  it('after a server-side disconnect shows reconnecting, then resumes without a gap', async () => {
    const before = await pageView();
    expect(before.seq).toBe((await serverHead()).seq);
    const res = await fetch(`${system.server.url}/api/v1/admin/disconnect?user=${USER}`, { method: 'POST', headers: { authorization: `Bearer ${system.token('ops', 'operator')}` } });
    expect(((await res.json()) as { disconnected: number }).disconnected).toBeGreaterThan(0);
    // Published while the dashboard is cut off or reconnecting: they reach it by the resume.
    await publish(priceEvents(40, 100));
    const head = await serverHead();
    let seen: number | null = null;
    await waitFor(async () => (seen = (await pageView()).seq) === head.seq, 20_000, () => `page seq ${seen} of ${head.seq}`);
    // The resumed deltas can land before the resume's ack turns the state back to live: wait for that too.
    await page.waitForSelector('#conn-state[data-state="live"]');
    const after = await pageView();
    const log = after.connectionLog.slice(before.connectionLog.length);
    expect(log).toContain('reconnecting');
    expect(log[log.length - 1]).toBe('live');
    // Every seq once, in order (the dashboard counts any jump), resumed rather than re-synced, and the
    // page's state is the server's.
    expect(after.stats.gaps).toBe(0);
    expect(after.stats.resyncs).toBe(before.stats.resyncs);
    expect(after.stats.deltas - before.stats.deltas).toBe(head.seq - (before.seq as number));
    expect(after.state).toEqual(head.state);
    await page.waitForSelector('#conn-state[data-state="live"]');
    await page.screenshot({ path: new URL('dashboard-resumed.png', ARTIFACTS).pathname, fullPage: true });
  });

  it('the replay control plays a range of history into its own view, leaving the live panels alone', async () => {
    const before = await pageView();
    await page.fill('#replay-topic', TOPIC);
    await page.fill('#replay-from', '2');
    await page.fill('#replay-to', '11');
    await page.fill('#replay-speed', '0');
    await page.click('#replay-play');
    await page.waitForSelector('#replay-status[data-status="done"]', { timeout: 10_000 });
    expect(await page.textContent('#replay-status')).toBe('done: 10 entries (seq 2–11)');
    // Newest first.
    expect(await page.$$eval('#replay-entries tbody tr', (rows) => rows.map((r) => Number(r.querySelector('td')?.textContent)))).toEqual([11, 10, 9, 8, 7, 6, 5, 4, 3, 2]);
    expect(await page.textContent('#replay-l1')).toMatch(/^seq 11 · bid\/ask /);
    const after = await pageView();
    expect(after.seq).toBe(before.seq);
    expect(after.stats.deltas).toBe(before.stats.deltas);
    expect(after.state).toEqual(before.state);
    await page.screenshot({ path: new URL('dashboard-replay.png', ARTIFACTS).pathname, fullPage: true });
  });
});
