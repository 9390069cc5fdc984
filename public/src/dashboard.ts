/*
 * BondX Stream live dashboard, on @bondx/client: the SDK keeps every topic's state (snapshot + every
 * delta applied with the server's own applyDelta), resumes across reconnects without a gap, verifies the
 * order-book checksum and re-syncs on a mismatch. This file only follows topics and draws them.
 * Bundled for the browser by scripts/build-dashboard.ts (npm run build:dashboard) into public/dashboard.js.
 */
import {
  type AuctionState,
  BondxClient,
  type Book,
  bookMatches,
  claimsOf,
  type ConnectionState,
  type DeltaEvent,
  type PortfolioState,
  type PricesState,
  type RiskAlertsState,
  type RiskState,
  type SnapshotEnvelope,
  type Subscription,
  type TopicKindOf,
  type TradingState,
  type TransportName,
} from '@bondx/client';
import type { JsonObject } from '../../src/domain/json.js';
import { INSTRUMENTS } from '../../src/simulator/instruments.js';
import { mountReplay } from './replay-view.js';
import { $, banner, type Cell, el, emptyRow, fact, flash, fmtCr, fmtInt, fmtPx, fmtRs, fmtTime, fmtYld, isNum, row, svg, tbody } from './dom.js';

type Kind = TopicKindOf<string>;

/** How many of the most recently updated auctions to follow. */
const MAX_AUCTIONS = 5;
const DISCOVERY_INTERVAL_MS = 3000;
const MAX_SYSTEM_ALERTS = 100;
/** How long the "re-sync" notice stays up. */
const RESYNC_NOTICE_MS = 6000;

const NAMES = new Map(INSTRUMENTS.map((i) => [i.isin, i.name]));
const nameOf = (isin: string) => NAMES.get(isin) ?? '';

// --- token, user, transport ----------------------------------------------------------------------

function readToken(): string | null {
  const fromUrl = new URLSearchParams(location.search).get('token');
  try {
    if (fromUrl) localStorage.setItem('bondx.token', fromUrl);
    return fromUrl || localStorage.getItem('bondx.token');
  } catch {
    return fromUrl; // storage may be disabled
  }
}

const token = readToken();
const claims = token ? claimsOf(token) : { roles: [] };
const user = claims.sub ?? null;
const transport: TransportName = new URLSearchParams(location.search).get('transport') === 'websocket' ? 'websocket' : 'socketio';

// --- followed topics -----------------------------------------------------------------------------

/** The order book's checksum status of a prices topic: the SDK re-syncs a mismatching book itself. */
type BookCheck = 'verified' | 'mismatch';

interface Followed {
  topic: string;
  kind: Kind;
  sub: Subscription<Kind>;
  status: string;
  /** Last seq delivered to the dashboard: each delta must be the next one (the SDK's guarantee, counted in stats.gaps). */
  last: number | null;
  book?: BookCheck;
}

/** Cumulative counters, on window.bondxDashboard for debugging and the browser test. */
const stats = { snapshots: 0, resyncs: 0, deltas: 0, gaps: 0, errors: 0, checksumVerified: 0, checksumMismatches: 0 };
const topics = new Map<string, Followed>();
/** System alerts as they arrive (they carry no state to fold: the SDK hands them on as they are). */
const systemAlerts: JsonObject[] = [];
let connection: ConnectionState = 'connecting';
/** Every connection state in order (on window.bondxDashboard: a test sees a reconnect however brief). */
const connectionLog: ConnectionState[] = [];
let received = 0;
let lastResync: { topic: string; why: string; at: number } | null = null;

const client = token ? new BondxClient({ url: location.origin, token, transport }) : null;

function follow(topic: string): void {
  if (!client || topics.has(topic)) return;
  const sub = client.subscribe(topic, topic.startsWith('prices.') ? { batchSize: 50 } : {});
  const t: Followed = { topic, kind: sub.kind, sub, status: 'subscribing', last: null };
  topics.set(topic, t);
  sub.on('snapshot', (env) => onSnapshot(t, env, false));
  sub.on('resync', (env) => onSnapshot(t, env, true));
  sub.on('delta', (env) => onDelta(t, env));
  sub.on('error', (err) => {
    stats.errors++;
    t.status = `error ${err.code}`;
    console.warn(`[${topic}]`, err.code, err.message, err.details);
    dirty('subs');
  });
  dirty('subs');
}

function unfollow(topic: string): void {
  const t = topics.get(topic);
  if (!t) return;
  topics.delete(topic);
  t.sub.unsubscribe();
  dirty('subs');
}

function onSnapshot(t: Followed, env: SnapshotEnvelope, resync: boolean): void {
  received++;
  stats.snapshots++;
  t.last = env.seq;
  if (resync) {
    stats.resyncs++;
    // No mark from the server: the SDK asked for it, because the local book no longer matched its checksum.
    const why = env.meta.resync ? 're-synced' : env.meta.conflated ? 'conflated' : 'checksum re-sync';
    t.status = `live (${why})`;
    lastResync = { topic: t.topic, why, at: Date.now() };
    dirty('conn');
  } else {
    t.status = 'live';
  }
  checkBook(t);
  changed(t);
}

function onDelta(t: Followed, env: DeltaEvent<Kind>): void {
  received++;
  stats.deltas++;
  if (t.last !== null && env.seq !== t.last + 1) stats.gaps++;
  t.last = env.seq;
  if (t.kind === 'system_alerts') {
    systemAlerts.unshift(env.payload as JsonObject);
    systemAlerts.length = Math.min(systemAlerts.length, MAX_SYSTEM_ALERTS);
  }
  if (env.payload.kind === 'l2') checkBook(t);
  changed(t);
}

/** The book the SDK holds, against the checksum the server sent with it (the SDK re-syncs a mismatch). */
function checkBook(t: Followed): void {
  const book = t.kind === 'prices' ? (t.sub.state as PricesState | undefined)?.l2 : undefined;
  if (!book) return;
  t.book = bookMatches(book as Book) ? 'verified' : 'mismatch';
  if (t.book === 'verified') stats.checksumVerified++;
  else stats.checksumMismatches++;
}

const stateOf = <S>(topic: string | null): S | undefined => (topic ? (topics.get(topic)?.sub.state as S | undefined) : undefined);

// --- rendering (batched per animation frame) -----------------------------------------------------

type Part = 'prices' | 'depth' | 'auction' | 'orders' | 'positions' | 'risk' | 'alerts' | 'conn' | 'subs';
const dirtySet = new Set<Part>();
const dirtyPrices = new Set<string>();
let frame = 0;

function dirty(part: Part): void {
  dirtySet.add(part);
  if (!frame) frame = requestAnimationFrame(render);
}

function changed(t: Followed): void {
  switch (t.kind) {
    case 'prices': {
      const isin = t.topic.slice('prices.'.length);
      dirtyPrices.add(isin);
      dirty('prices');
      if (isin === selectedIsin) dirty('depth');
      break;
    }
    case 'auctions':
      dirty('auction');
      break;
    case 'trading':
      dirty('orders');
      break;
    case 'portfolio':
      dirty('positions');
      break;
    case 'risk':
      dirty('risk');
      break;
    default:
      dirty('alerts');
  }
  dirty('subs');
}

const PAINTERS: Record<Part, () => void> = {
  prices: renderPrices,
  depth: renderDepth,
  auction: renderAuction,
  orders: renderOrders,
  positions: renderPositions,
  risk: renderRisk,
  alerts: renderAlerts,
  conn: renderConn,
  subs: renderSubs,
};

function render(): void {
  frame = 0;
  const parts = [...dirtySet];
  dirtySet.clear();
  for (const part of parts) PAINTERS[part]();
}

// L1 table ------------------------------------------------------------------------------------------

let selectedIsin: string | null = null;
type L1Field = 'bid_yield' | 'bid_size' | 'bid' | 'ask' | 'ask_size' | 'ask_yield' | 'last' | 'last_yield' | 'day_volume' | 'seq';
const L1_FIELDS: [L1Field | 'isin' | 'name', string][] = [
  ['isin', ''],
  ['name', 'name'],
  ['bid_yield', 'num'],
  ['bid_size', 'num bid'],
  ['bid', 'num bid'],
  ['ask', 'num ask'],
  ['ask_size', 'num ask'],
  ['ask_yield', 'num'],
  ['last', 'num'],
  ['last_yield', 'num'],
  ['day_volume', 'num dim'],
  ['seq', 'num dim'],
];
interface L1Row {
  tr: HTMLTableRowElement;
  cells: Map<string, HTMLElement>;
  values: Map<L1Field, number | null | undefined>;
}
const l1Rows = new Map<string, L1Row>();

/** Maturity year from the name ("7.18% GS 2033"), for ordering the table along the curve. */
const sortKey = (isin: string) => `${/(\d{4})$/.exec(nameOf(isin))?.[1] ?? '9999'}|${nameOf(isin)}|${isin}`;

function l1Row(isin: string): L1Row {
  const existing = l1Rows.get(isin);
  if (existing) return existing;
  const tr = document.createElement('tr');
  const cells = new Map<string, HTMLElement>();
  for (const [field, cls] of L1_FIELDS) {
    const td = el('td', field === 'isin' ? isin : field === 'name' ? nameOf(isin) : '', cls);
    cells.set(field, td);
    tr.appendChild(td);
  }
  tr.addEventListener('click', () => select(isin));
  const r: L1Row = { tr, cells, values: new Map() };
  l1Rows.set(isin, r);
  const key = sortKey(isin);
  const next = [...l1Rows.keys()].filter((i) => i !== isin && sortKey(i) > key).sort((a, b) => sortKey(a).localeCompare(sortKey(b)))[0];
  tbody('l1').insertBefore(tr, next ? (l1Rows.get(next)?.tr ?? null) : null);
  if (!selectedIsin) select(isin);
  return r;
}

function renderPrices(): void {
  for (const isin of dirtyPrices) {
    const t = topics.get(`prices.${isin}`);
    const s = t?.sub.state as PricesState | undefined;
    if (!t || !s) continue;
    const last = s.last_trade ?? s.trades[0];
    const values: Record<L1Field, number | null | undefined> = {
      bid_yield: s.l1?.bid_yield,
      bid_size: s.l1?.bid_size,
      bid: s.l1?.bid,
      ask: s.l1?.ask,
      ask_size: s.l1?.ask_size,
      ask_yield: s.l1?.ask_yield,
      last: last?.price,
      last_yield: last?.yield,
      day_volume: s.day?.volume,
      seq: t.sub.seq,
    };
    const r = l1Row(isin);
    for (const [field, value] of Object.entries(values) as [L1Field, number | null | undefined][]) {
      const prev = r.values.get(field);
      if (prev === value) continue;
      r.values.set(field, value);
      const cell = r.cells.get(field);
      if (!cell) continue;
      const fmt = field.endsWith('yield') ? fmtYld : field.endsWith('size') || field === 'day_volume' || field === 'seq' ? fmtInt : fmtPx;
      cell.textContent = fmt(value);
      if (field === 'seq' || !isNum(prev) || !isNum(value)) continue;
      // Prices: green up / red down; yields flash by their own direction too (traders read them literally).
      flash(cell, field.endsWith('size') || field === 'day_volume' ? 'f-chg' : value > prev ? 'f-up' : 'f-down');
    }
  }
  dirtyPrices.clear();
}

function select(isin: string): void {
  if (selectedIsin) l1Rows.get(selectedIsin)?.tr.classList.remove('selected');
  selectedIsin = isin;
  l1Rows.get(isin)?.tr.classList.add('selected');
  dirty('depth');
}

// Depth + trades ------------------------------------------------------------------------------------

const CHECKSUM_TEXT: Record<BookCheck, string> = { verified: 'checksum ✓ verified', mismatch: 'checksum ✗ mismatch → re-sync' };

function renderDepth(): void {
  const t = selectedIsin ? topics.get(`prices.${selectedIsin}`) : undefined;
  $('depth-title').textContent = selectedIsin ? `${selectedIsin} ${nameOf(selectedIsin)}${t?.sub.seq != null ? ` · seq ${t.sub.seq}` : ''}` : 'select a security';
  const check = $('checksum');
  check.textContent = t?.book ? CHECKSUM_TEXT[t.book] : 'checksum —';
  check.className = `pill ${t?.book ?? ''}`;
  check.dataset.status = t?.book ?? '';
  const ladder = tbody('l2');
  const trades = tbody('trades');
  ladder.replaceChildren();
  trades.replaceChildren();
  const s = t?.sub.state as PricesState | undefined;
  if (!s) {
    emptyRow(ladder, 4, 'no data');
    emptyRow(trades, 5, 'no data');
    return;
  }
  const bids = s.l2.bids.slice(0, 10);
  const asks = s.l2.asks.slice(0, 10);
  const max = Math.max(1, ...bids.map((l) => l.size), ...asks.map((l) => l.size));
  const n = Math.max(bids.length, asks.length);
  if (n === 0) emptyRow(ladder, 4, 'empty book');
  for (let i = 0; i < n; i++) {
    const b = bids[i];
    const a = asks[i];
    const tr = row([
      { text: b ? fmtInt(b.size) : '', cls: 'num bar-bid' },
      { text: b ? fmtPx(b.price) : '', cls: 'num bid' },
      { text: a ? fmtPx(a.price) : '', cls: 'num ask' },
      { text: a ? fmtInt(a.size) : '', cls: 'num bar-ask' },
    ]);
    tr.cells[0]?.style.setProperty('--w', `${b ? (100 * b.size) / max : 0}%`);
    tr.cells[3]?.style.setProperty('--w', `${a ? (100 * a.size) / max : 0}%`);
    ladder.appendChild(tr);
  }
  const list = s.trades.slice(0, 25);
  if (list.length === 0) emptyRow(trades, 5, 'no trades yet');
  for (const tr of list) {
    trades.appendChild(
      row([
        { text: fmtTime(tr.ts) },
        { text: fmtPx(tr.price), cls: 'num' },
        { text: fmtInt(tr.size), cls: 'num' },
        { text: fmtYld(tr.yield), cls: 'num' },
        { text: tr.trade_id, cls: 'dim' },
      ]),
    );
  }
}

// Auctions ------------------------------------------------------------------------------------------

/** Auction topic the user picked; null follows the newest auction. */
let pinnedAuction: string | null = null;

const opened = (t: Followed) => (t.sub.state as Partial<AuctionState> | undefined)?.opened_at;

function auctionTopics(): Followed[] {
  return [...topics.values()].filter((t) => t.kind === 'auctions').sort((a, b) => String(opened(b) ?? b.topic).localeCompare(String(opened(a) ?? a.topic)));
}

function renderAuction(): void {
  const list = auctionTopics();
  const pick = $('auction-pick') as HTMLSelectElement;
  if (pinnedAuction && !topics.has(pinnedAuction)) pinnedAuction = null;
  const current = pinnedAuction ? topics.get(pinnedAuction) : list[0];
  const statusOf = (t: Followed) => (t.sub.state as Partial<AuctionState> | undefined)?.status;
  // Rebuild the picker only when the set of auctions changed (keeps an open dropdown usable).
  const sig = list.map((t) => `${t.topic}:${statusOf(t) ?? ''}`).join(',');
  if (pick.dataset.sig !== sig) {
    pick.dataset.sig = sig;
    pick.replaceChildren(
      ...list.map((t) => {
        const o = el('option', `${t.topic.slice('auctions.'.length)} · ${statusOf(t) ?? '…'}`) as HTMLOptionElement;
        o.value = t.topic;
        return o;
      }),
    );
  }
  if (current) pick.value = current.topic;
  const s = current?.sub.state as Partial<AuctionState> | undefined;
  const status = $('auction-status');
  const facts = $('auction-facts');
  facts.replaceChildren();
  if (!s?.auction_id) {
    status.textContent = 'none';
    status.className = 'pill';
    drawHistogram(null);
    return;
  }
  const a = s as AuctionState;
  status.textContent = a.status;
  status.className = `pill ${a.status}`;
  const cover = isNum(a.notified_amount) && a.notified_amount > 0 ? `${(a.bids.amount / a.notified_amount).toFixed(2)}x` : '—';
  fact(facts, 'security', `${a.isin} ${nameOf(a.isin)}`);
  fact(facts, 'notified', isNum(a.notified_amount) ? `₹${fmtInt(a.notified_amount)} cr` : '—');
  fact(facts, 'bids', `${fmtInt(a.bids.count)} · ₹${fmtInt(a.bids.amount)} cr`);
  fact(facts, 'cover', cover);
  fact(facts, 'basis', a.bid_basis);
  if (a.status === 'open' && a.closes_at) fact(facts, 'closes', `${fmtTime(a.closes_at)} (${Math.max(0, Math.round((Date.parse(a.closes_at) - Date.now()) / 1000))}s)`);
  if (a.allotment) {
    fact(facts, 'cut-off', `${fmtYld(a.allotment.cutoff_yield)}% / ${fmtPx(a.allotment.cutoff_price)}`);
    fact(facts, 'allotted', `₹${fmtInt(a.allotment.allotted_amount)} cr`);
  }
  drawHistogram(a);
}

/** Bid amount per yield (or price) bucket; after allotment bars are green (accepted) or grey. */
function drawHistogram(s: AuctionState | null): void {
  const root = $('histogram');
  root.replaceChildren();
  const W = 600;
  const H = 220;
  const pad = { l: 44, r: 10, t: 12, b: 26 };
  const buckets = s?.histogram ?? [];
  const first = buckets[0];
  if (!s || !first) {
    root.appendChild(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, s ? 'waiting for bids…' : 'no auction'));
    return;
  }
  const width = first.to - first.from || 0.01;
  const lo = Math.min(...buckets.map((b) => b.from));
  const hi = Math.max(...buckets.map((b) => b.to));
  const n = Math.max(1, Math.round((hi - lo) / width));
  const maxAmount = Math.max(...buckets.map((b) => b.amount), 1);
  const pw = W - pad.l - pad.r;
  const ph = H - pad.t - pad.b;
  const x = (v: number) => pad.l + ((v - lo) / (hi - lo || width)) * pw;
  const cutoff = s.allotment ? (s.bid_basis === 'price' ? s.allotment.cutoff_price : s.allotment.cutoff_yield) : null;

  root.appendChild(svg('line', { class: 'axis', x1: pad.l, y1: pad.t + ph, x2: W - pad.r, y2: pad.t + ph }));
  root.appendChild(svg('line', { class: 'axis', x1: pad.l, y1: pad.t, x2: pad.l, y2: pad.t + ph }));
  root.appendChild(svg('text', { x: pad.l - 4, y: pad.t + 8, 'text-anchor': 'end' }, fmtInt(maxAmount)));
  root.appendChild(svg('text', { x: pad.l - 4, y: pad.t + ph, 'text-anchor': 'end' }, '0'));
  root.appendChild(svg('text', { x: 4, y: pad.t + ph / 2, transform: `rotate(-90 8 ${pad.t + ph / 2})`, 'text-anchor': 'middle' }, '₹ cr'));

  const barW = Math.max(1, pw / n - 2);
  for (const b of buckets) {
    const h = (b.amount / maxAmount) * ph;
    // Yield auctions accept the lowest yields, price auctions the highest prices.
    const accepted = cutoff === null ? null : s.bid_basis === 'price' ? b.to > cutoff : b.from <= cutoff;
    const rect = svg('rect', { class: accepted === null ? 'bar' : accepted ? 'bar in' : 'bar out', x: x(b.from) + 1, y: pad.t + ph - h, width: barW, height: Math.max(h, 0.5) });
    rect.appendChild(svg('title', {}, `${b.from}–${b.to}: ${b.count} bids, ₹${fmtInt(b.amount)} cr`));
    root.appendChild(rect);
  }
  // X labels: about 6 evenly spaced bucket edges, the edge ones kept inside.
  const every = Math.max(1, Math.ceil(n / 6));
  for (let i = 0; i <= n; i += every) {
    const anchor = i === 0 ? 'start' : i + every > n ? 'end' : 'middle';
    root.appendChild(svg('text', { x: x(lo + i * width), y: H - 8, 'text-anchor': anchor }, (lo + i * width).toFixed(2)));
  }
  if (cutoff !== null) {
    const cx = Math.min(W - pad.r, Math.max(pad.l, x(cutoff)));
    root.appendChild(svg('line', { class: 'cutoff', x1: cx, y1: pad.t, x2: cx, y2: pad.t + ph }));
    root.appendChild(svg('text', { class: 'cutoff-label', x: Math.min(cx + 4, W - 90), y: pad.t + 10 }, `cut-off ${cutoff.toFixed(4)}`));
  }
}

// Orders / positions / risk / alerts ------------------------------------------------------------------

const userTopic = (prefix: string, suffix = '') => (user ? `${prefix}.${user}${suffix}` : null);

function orderCells(o: TradingState['recent'][number], first: Cell, status: Cell): Cell[] {
  return [
    first,
    { text: nameOf(o.isin) || o.isin, title: o.isin },
    { text: o.side, cls: o.side },
    { text: fmtPx(o.price), cls: 'num' },
    { text: fmtInt(o.quantity), cls: 'num' },
    { text: fmtInt(o.filled_quantity), cls: 'num' },
    status,
  ];
}

function renderOrders(): void {
  const s = stateOf<TradingState>(userTopic('trading'));
  const open = Object.values(s?.open ?? {}).sort((a, b) => b.updated_at.localeCompare(a.updated_at));
  const body = tbody('open-orders');
  body.replaceChildren();
  if (open.length === 0) emptyRow(body, 7, 'no open orders');
  for (const o of open) body.appendChild(row(orderCells(o, { text: o.order_id.slice(-10), title: o.order_id, cls: 'dim' }, { text: o.status === 'partially_filled' ? 'partial' : o.status })));
  const recent = tbody('recent-orders');
  recent.replaceChildren();
  const done = (s?.recent ?? []).slice(0, 12);
  if (done.length === 0) emptyRow(recent, 7, 'none yet');
  for (const o of done) {
    recent.appendChild(row(orderCells(o, { text: fmtTime(o.updated_at) }, { text: o.status, title: o.reason ?? '', cls: o.status === 'rejected' ? 'sell' : o.status === 'filled' ? 'buy' : 'dim' })));
  }
}

function renderPositions(): void {
  const positions = Object.values(stateOf<PortfolioState>(userTopic('portfolio'))?.positions ?? {}).sort((a, b) => sortKey(a.isin).localeCompare(sortKey(b.isin)));
  const body = tbody('positions');
  body.replaceChildren();
  if (positions.length === 0) emptyRow(body, 4, 'flat');
  for (const p of positions) {
    body.appendChild(
      row([
        { text: nameOf(p.isin) || p.isin, title: p.isin },
        { text: fmtInt(p.quantity), cls: `num ${p.quantity < 0 ? 'sell' : 'buy'}` },
        { text: fmtPx(p.avg_price), cls: 'num' },
        { text: fmtInt(p.mtm), cls: `num ${isNum(p.mtm) && p.mtm < 0 ? 'sell' : 'buy'}` },
      ]),
    );
  }
}

function renderRisk(): void {
  const s = stateOf<RiskState>(userTopic('risk'));
  const m = s?.metrics;
  const box = $('risk-metrics');
  box.replaceChildren();
  fact(box, 'exposure', fmtCr(m?.exposure));
  fact(box, 'DV01', m ? `${fmtRs(m.dv01)}/bp` : '—');
  fact(box, 'limit used', m ? `${(m.limit_utilisation * 100).toFixed(1)}%` : '—');
  const breaches = Object.values(s?.breaches ?? {});
  if (breaches.length) fact(box, 'breaches', breaches.map((b) => `${b.limit}:${b.severity}`).join(' '));
  const u = m?.limit_utilisation ?? 0;
  const bar = $('util-bar');
  bar.style.width = `${Math.min(100, u * 100)}%`;
  bar.style.background = u >= 1 ? 'var(--crit)' : u >= 0.8 ? 'var(--warn)' : 'var(--up)';
}

const seenAlerts = new Set<string>();

interface AlertLine {
  id: string;
  severity: string;
  text: string;
  ts: string;
}

function renderAlerts(): void {
  const risk: AlertLine[] = (stateOf<RiskAlertsState>(userTopic('risk', '.alerts'))?.alerts ?? []).map((a) => ({
    id: a.alert_id,
    severity: a.severity,
    text: `${a.limit} ${fmtInt(a.value)} ≥ ${fmtInt(a.threshold)}`,
    ts: a.ts,
  }));
  const system: AlertLine[] = systemAlerts.map((a) => ({ id: `${String(a.name)}@${String(a.at)}`, severity: a.state === 'raised' ? 'warning' : 'info', text: `[system] ${String(a.state)}: ${String(a.message)}`, ts: String(a.at) }));
  const all = [...risk, ...system].sort((a, b) => b.ts.localeCompare(a.ts)).slice(0, 60);
  const ul = $('alerts');
  ul.replaceChildren();
  if (all.length === 0) {
    ul.appendChild(el('li', 'no alerts', 'dim'));
    return;
  }
  const first = seenAlerts.size === 0;
  for (const a of all) {
    const li = el('li', null, a.severity);
    if (!first && !seenAlerts.has(a.id)) li.classList.add('new');
    seenAlerts.add(a.id);
    li.appendChild(el('span', a.severity, 'sev'));
    li.appendChild(el('span', a.text));
    li.appendChild(el('time', fmtTime(a.ts)));
    ul.appendChild(li);
  }
}

// Status ------------------------------------------------------------------------------------------------

const CONN_CLASS: Record<ConnectionState, string> = { connecting: 'wait', live: 'ok', reconnecting: 'wait', closed: 'bad' };

function renderConn(): void {
  const badge = $('conn-state');
  badge.textContent = `${transport} ${connection}`;
  badge.className = `badge ${CONN_CLASS[connection]}`;
  badge.dataset.state = connection;
  const notice = $('resync');
  const fresh = lastResync !== null && Date.now() - lastResync.at < RESYNC_NOTICE_MS;
  notice.hidden = !fresh;
  if (lastResync && fresh) notice.textContent = `↻ ${lastResync.why}: ${lastResync.topic}`;
}

function renderSubs(): void {
  const list = [...topics.values()].sort((a, b) => a.topic.localeCompare(b.topic));
  const status = (t: Followed) => (connection === 'reconnecting' ? 'reconnecting' : t.status);
  tbody('subs').replaceChildren(
    ...list.map((t) =>
      row([
        { text: t.kind },
        { text: t.topic },
        { text: t.sub.seq === null ? '—' : fmtInt(t.sub.seq), cls: 'num' },
        { text: t.sub.epoch ? t.sub.epoch.slice(0, 12) : '—', title: t.sub.epoch ?? '', cls: 'dim' },
        { text: t.book ?? '', cls: t.book === 'mismatch' ? 'sell' : 'dim' },
        { text: status(t), cls: status(t).startsWith('error') ? 'sell' : status(t).startsWith('live') ? 'buy' : 'dim' },
      ]),
    ),
  );
  $('orders-topic').textContent = userTopic('trading') ?? 'trading.*';
  $('portfolio-topic').textContent = userTopic('portfolio') ?? 'portfolio.*';
  $('risk-topic').textContent = userTopic('risk') ?? 'risk.*';
  $('alerts-topic').textContent = userTopic('risk', '.alerts') ?? 'risk.*.alerts';
}

// --- topic discovery and start ------------------------------------------------------------------------

/** Follows every prices.* topic and the most recent auctions, from the topics endpoint. */
async function discover(): Promise<void> {
  try {
    const res = await fetch('/api/v1/ws/topics', { headers: token ? { authorization: `Bearer ${token}` } : {} });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = (await res.json()) as { topics?: { topic?: unknown; last_update?: unknown }[] };
    const list = (body.topics ?? []).filter((t): t is { topic: string; last_update?: unknown } => typeof t.topic === 'string');
    for (const t of list) if (t.topic.startsWith('prices.')) follow(t.topic);
    const auctions = list
      .filter((t) => t.topic.startsWith('auctions.'))
      .sort((a, b) => String(b.last_update ?? '').localeCompare(String(a.last_update ?? '')) || b.topic.localeCompare(a.topic))
      .slice(0, MAX_AUCTIONS)
      .map((t) => t.topic);
    const keep = new Set(auctions);
    if (pinnedAuction) keep.add(pinnedAuction);
    for (const topic of keep) follow(topic);
    for (const t of [...topics.values()]) if (t.kind === 'auctions' && !keep.has(t.topic)) unfollow(t.topic);
    dirty('auction');
  } catch (err) {
    console.warn('topic discovery failed', err);
  } finally {
    setTimeout(() => void discover(), DISCOVERY_INTERVAL_MS);
  }
}

function start(): void {
  banner(null);
  $('user').textContent = user ? `${user}${claims.roles.length ? ` (${claims.roles.join(',')})` : ''}` : 'no user';
  $('auction-pick').addEventListener('change', (e) => {
    const value = (e.target as HTMLSelectElement).value;
    pinnedAuction = auctionTopics()[0]?.topic === value ? null : value;
    dirty('auction');
  });
  setInterval(() => {
    $('clock').textContent = `${fmtTime(new Date().toISOString())} IST`;
    $('rate').textContent = `${received} msg/s`;
    received = 0;
    dirty('auction'); // closing countdown
    dirty('conn'); // the re-sync notice times out
  }, 1000);
  for (const paint of Object.values(PAINTERS)) paint();

  if (!client) {
    banner([
      el('span', 'No token. Open this page as '),
      el('code', '/?token=<JWT>'),
      el('span', ' — issue one with '),
      el('code', 'npx bondx token --sub demo-trader'),
      el('span', ' (same JWT_SECRET as the server).'),
    ]);
    return;
  }
  if (!user) banner([el('span', 'The token has no readable `sub` claim; per-user panels stay empty.')]);
  client.on('state', (s) => {
    connection = s;
    connectionLog.push(s);
    dirty('conn');
    dirty('subs');
  });
  client.on('error', (err) => {
    console.warn('connection', err.code, err.message);
    if (err.isAuth) banner([el('span', `Authentication failed (${err.code}): ${err.message}. Open this page with a fresh `), el('code', '?token=<JWT>'), el('span', '.')]);
  });
  for (const topic of [userTopic('trading'), userTopic('portfolio'), userTopic('risk'), userTopic('risk', '.alerts')]) if (topic) follow(topic);
  if (claims.roles.includes('operator')) follow('system.alerts');
  mountReplay(client, () => (selectedIsin ? `prices.${selectedIsin}` : null));
  void discover();
}

declare global {
  interface Window {
    bondxDashboard: { client: BondxClient | null; topics: Map<string, Followed>; stats: typeof stats; connectionLog: ConnectionState[] };
  }
}
window.bondxDashboard = { client, topics, stats, connectionLog };
start();
