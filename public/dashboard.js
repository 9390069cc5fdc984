/*
 * BondX Stream live dashboard. Plain browser JavaScript, no build step, no dependencies besides the
 * Socket.IO client the server itself serves at /socket.io/socket.io.js.
 *
 * Model: every subscribed topic keeps a local copy of its state. A `snapshot` envelope replaces it,
 * each `delta` / `alert` is applied to it by payload `kind` (mirroring src/projector/reducers/*), and
 * the last seq + epoch seen are remembered so that a reconnect resumes with `resume_from_seq`
 * instead of starting over. Rendering is batched per animation frame.
 *
 * All server data reaches the DOM through textContent / attributes, never innerHTML.
 */
'use strict';

(() => {
  // --- static reference data -------------------------------------------------------------------

  /** Names of the simulator's G-secs (src/simulator/instruments.ts; a unit test keeps them in sync). */
  const NAMES = {
    IN0020220029: '7.38% GS 2027',
    IN0020230010: '7.06% GS 2028',
    IN0020220037: '7.10% GS 2029',
    IN0020230028: '7.17% GS 2030',
    IN0020240076: '7.32% GS 2030',
    IN0020210038: '6.10% GS 2031',
    IN0020240084: '6.79% GS 2031',
    IN0020210095: '6.54% GS 2032',
    IN0020220045: '7.26% GS 2032',
    IN0020220151: '7.26% GS 2033',
    IN0020230085: '7.18% GS 2033',
    IN0020240019: '7.10% GS 2034',
    IN0020240050: '6.79% GS 2034',
    IN0020250018: '6.33% GS 2035',
    IN0020220060: '7.41% GS 2036',
    IN0020230077: '7.18% GS 2037',
    IN0020210079: '6.99% GS 2051',
    IN0020230069: '7.30% GS 2053',
    IN0020240035: '7.09% GS 2054',
    IN0020210103: '6.95% GS 2061',
    IN0020230051: '7.25% GS 2063',
  };

  const NAMESPACES = ['market', 'auction', 'trading', 'risk'];
  /** How many of the most recently updated auctions to follow. */
  const MAX_AUCTIONS = 5;
  const DISCOVERY_INTERVAL_MS = 3000;
  const MAX_LOCAL_TRADES = 50;
  const MAX_LOCAL_ALERTS = 100;
  const FINISHED = new Set(['filled', 'cancelled', 'rejected']);

  // --- token and user --------------------------------------------------------------------------

  function readToken() {
    const fromUrl = new URLSearchParams(location.search).get('token');
    try {
      if (fromUrl) localStorage.setItem('bondx.token', fromUrl);
      return fromUrl || localStorage.getItem('bondx.token');
    } catch {
      return fromUrl; // storage may be disabled
    }
  }

  /** JWT payload, decoded client-side for display and topic names only (the server verifies it). */
  function jwtClaims(token) {
    try {
      const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
      const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return null;
    }
  }

  const token = readToken();
  const claims = token ? jwtClaims(token) : null;
  const user = claims && typeof claims.sub === 'string' ? claims.sub : null;
  const roles = claims ? [].concat(claims.roles || claims.role || []) : [];

  // --- formatting --------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
  const fx = (x, dp) => (isNum(x) ? x.toFixed(dp) : '—');
  const fmtPx = (x) => fx(x, 4);
  const fmtYld = (x) => fx(x, 4);
  const fmtInt = (x) => (isNum(x) ? Math.round(x).toLocaleString('en-IN') : '—');
  const sign = (x) => (x < 0 ? '-' : '');
  const fmtRs = (x) => (isNum(x) ? `${sign(x)}₹${fmtInt(Math.abs(x))}` : '—');
  const fmtCr = (rupees) => (isNum(rupees) ? `${sign(rupees)}₹${(Math.abs(rupees) / 1e7).toLocaleString('en-IN', { maximumFractionDigits: 2 })} cr` : '—');
  const nameOf = (isin) => NAMES[isin] || '';
  const IST = new Intl.DateTimeFormat('en-IN', { timeZone: 'Asia/Kolkata', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  const fmtTime = (ts) => {
    const d = ts ? new Date(ts) : null;
    return d && !Number.isNaN(d.getTime()) ? IST.format(d) : '—';
  };

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  function row(cells) {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = el('td', c.text, c.cls);
      if (c.title) td.title = c.title;
      tr.appendChild(td);
    }
    return tr;
  }

  function emptyRow(tbody, cols, text) {
    const tr = el('tr', null, 'empty');
    const td = el('td', text);
    td.colSpan = cols;
    tr.appendChild(td);
    tbody.appendChild(tr);
  }

  /** Restarts a cell's flash animation (removing and re-adding the class needs a reflow in between). */
  function flash(cell, cls) {
    cell.classList.remove('f-up', 'f-down', 'f-chg');
    void cell.offsetWidth;
    cell.classList.add(cls);
  }

  // --- topic registry --------------------------------------------------------------------------

  /** topic -> { topic, ns, kind, state, seq, epoch, status, awaitingResume } */
  const topics = new Map();
  /** namespace -> Socket.IO socket */
  const sockets = {};
  /** namespace -> connection status text / class */
  const connState = {};

  function kindOf(topic) {
    if (topic === 'system.alerts') return 'system_alerts';
    const [domain, , suffix] = topic.split('.');
    return domain === 'risk' && suffix === 'alerts' ? 'risk_alerts' : domain;
  }

  function track(ns, topic) {
    if (topics.has(topic)) return;
    const t = { topic, ns, kind: kindOf(topic), state: null, seq: null, epoch: null, status: 'pending', awaitingResume: false };
    topics.set(topic, t);
    const s = sockets[ns];
    if (s && s.connected) subscribe(t);
    dirty('subs');
  }

  function untrack(topic) {
    const t = topics.get(topic);
    if (!t) return;
    topics.delete(topic);
    const s = sockets[t.ns];
    if (s && s.connected) s.emit('unsubscribe', { topic });
    dirty('subs');
  }

  let correlation = 0;

  /** Subscribes, resuming from the last seq (and epoch) we hold when we hold any. */
  function subscribe(t) {
    const msg = { topic: t.topic, correlation_id: `dash-${++correlation}` };
    if (t.seq !== null) {
      msg.resume_from_seq = t.seq;
      if (t.epoch) msg.epoch = t.epoch;
    }
    t.status = t.seq !== null ? 'resuming' : 'subscribing';
    sockets[t.ns].emit('subscribe', msg, (reply) => {
      if (!topics.has(t.topic)) return;
      if (reply && reply.type === 'error') t.status = `error ${reply.code || ''}`.trim();
      else if (t.status !== 'live') t.status = 'live';
      dirty('subs');
    });
    dirty('subs');
  }

  // --- envelopes ---------------------------------------------------------------------------------

  let received = 0;
  /** Cumulative counters, exposed on window.bondxDashboard for debugging and browser tests. */
  const stats = { snapshots: 0, resyncs: 0, entries: 0, duplicates: 0, gaps: 0, errors: 0, connects: 0 };

  function onEnvelope(ns, env) {
    if (!env || typeof env !== 'object') return;
    received++;
    switch (env.type) {
      case 'snapshot':
        return onSnapshot(env);
      case 'delta':
      case 'alert':
        return onEntry(env);
      case 'batch':
        return onBatch(ns, env);
      case 'heartbeat':
        connState[ns] = { text: `${ns} ♥ ${fmtTime(env.ts)}`, cls: 'ok' };
        return dirty('conn');
      case 'error':
        return onError(ns, env);
      default:
        return; // ack / pong: nothing to do (subscribe acks are handled by the callback)
    }
  }

  /** A batch is either an array of envelopes or an envelope whose payload is that array. */
  function onBatch(ns, data) {
    const list = Array.isArray(data) ? data : data && Array.isArray(data.payload) ? data.payload : [];
    for (const env of list) onEnvelope(ns, env);
  }

  function onSnapshot(env) {
    const t = topics.get(env.topic);
    if (!t) return; // unsubscribed meanwhile
    // A snapshot always replaces local state; with meta.resync the server tells us our seq was stale.
    t.state = env.payload && typeof env.payload === 'object' ? env.payload : {};
    t.seq = typeof env.seq === 'number' ? env.seq : t.seq;
    if (env.meta && typeof env.meta.epoch === 'string') t.epoch = env.meta.epoch;
    t.status = env.meta && env.meta.resync ? 'live (resynced)' : 'live';
    stats.snapshots++;
    if (env.meta && env.meta.resync) stats.resyncs++;
    t.awaitingResume = false;
    changed(t);
  }

  function onEntry(env) {
    const t = topics.get(env.topic);
    if (!t || t.state === null) return;
    const seq = env.seq;
    if (typeof seq === 'number' && t.seq !== null) {
      if (seq <= t.seq) {
        stats.duplicates++; // e.g. overlap between a resume and live delivery
        return;
      }
      if (seq > t.seq + 1) {
        stats.gaps++;
        // Gap: ask the server to resend from what we hold; ignore entries until the gap is filled.
        if (!t.awaitingResume) {
          t.awaitingResume = true;
          if (sockets[t.ns] && sockets[t.ns].connected) subscribe(t);
        }
        return;
      }
    }
    t.awaitingResume = false;
    stats.entries++;
    const payload = env.payload && typeof env.payload === 'object' ? env.payload : {};
    applyDelta(t, payload, env);
    if (typeof seq === 'number') t.seq = seq;
    changed(t);
  }

  function onError(ns, env) {
    const code = env.code || (env.payload && env.payload.code) || 'ERROR';
    const message = env.error || (env.payload && env.payload.error) || '';
    stats.errors++;
    console.warn(`[${ns}] server error`, code, message, env.details || env.payload);
    const t = env.topic ? topics.get(env.topic) : null;
    if (t) {
      t.status = `error ${code}`;
      dirty('subs');
    }
  }

  // --- applying deltas (mirrors src/projector/reducers/*) -----------------------------------------

  function without(obj, key) {
    const { [key]: _drop, ...rest } = obj;
    return rest;
  }

  function applyDelta(t, p, env) {
    const s = t.state;
    switch (p.kind) {
      // prices.{isin}
      case 'l1':
        s.l1 = without(p, 'kind');
        break;
      case 'l2': {
        const l2 = (s.l2 = s.l2 || { bids: [], asks: [] });
        const key = p.side === 'bid' ? 'bids' : 'asks';
        const sizes = new Map((l2[key] || []).map((l) => [l.price, l.size]));
        for (const l of p.levels || []) {
          if (l.size === 0) sizes.delete(l.price);
          else sizes.set(l.price, l.size);
        }
        const best = p.side === 'bid' ? (a, b) => b.price - a.price : (a, b) => a.price - b.price;
        l2[key] = [...sizes].map(([price, size]) => ({ price, size })).sort(best);
        break;
      }
      case 'trade': {
        const trade = { trade_id: p.trade_id, price: p.price, size: p.size, yield: p.yield ?? null, ts: p.ts || env.ts };
        s.trades = [trade, ...(s.trades || []).filter((x) => x.trade_id !== trade.trade_id)].slice(0, MAX_LOCAL_TRADES);
        s.last_trade = trade;
        const day = s.day || {};
        s.day = { ...day, volume: p.day_volume ?? day.volume, vwap: p.day_vwap ?? day.vwap };
        break;
      }
      // auctions.{auction_id}
      case 'auction_state':
        Object.assign(s, without(without(p, 'kind'), 'ts'));
        if (p.status === 'closed') s.closed_at = p.ts || env.ts;
        if (p.status === 'open' && !s.opened_at) s.opened_at = p.ts || env.ts;
        break;
      case 'auction_bid': {
        const b = p.bucket;
        if (b) s.histogram = [...(s.histogram || []).filter((x) => x.from !== b.from), b].sort((x, y) => x.from - y.from);
        if (p.bids) s.bids = p.bids;
        if (p.bid_basis) s.bid_basis = p.bid_basis;
        break;
      }
      case 'auction_allotted':
        s.status = 'allotted';
        s.allotment = { cutoff_yield: p.cutoff_yield, cutoff_price: p.cutoff_price, allotted_amount: p.allotted_amount, ts: p.ts || env.ts };
        break;
      // trading.{user}
      case 'order': {
        const o = p.order;
        if (!o) break;
        s.open = s.open || {};
        if (FINISHED.has(o.status)) {
          s.open = without(s.open, o.order_id);
          s.recent = [o, ...(s.recent || []).filter((x) => x.order_id !== o.order_id)].slice(0, 50);
        } else {
          s.open[o.order_id] = o;
        }
        break;
      }
      // portfolio.{user}
      case 'position': {
        s.positions = s.positions || {};
        const pos = without(p, 'kind');
        if (pos.quantity === 0) s.positions = without(s.positions, pos.isin);
        else s.positions[pos.isin] = pos;
        break;
      }
      // risk.{user}
      case 'metrics':
        s.metrics = without(p, 'kind');
        break;
      case 'breach':
        s.breaches = { ...(s.breaches || {}), [p.limit]: without(p, 'kind') };
        break;
      // risk.{user}.alerts and system.alerts
      default: {
        if (t.kind === 'risk_alerts' || t.kind === 'system_alerts' || env.type === 'alert') {
          const alert = { alert_id: p.alert_id || env.correlation_id || `${t.topic}#${env.seq}`, ...without(p, 'kind'), kind: p.kind, ts: p.ts || env.ts };
          s.alerts = [alert, ...(s.alerts || []).filter((a) => a.alert_id !== alert.alert_id)].slice(0, MAX_LOCAL_ALERTS);
        }
        break;
      }
    }
    s.updated_at = env.ts || s.updated_at;
  }

  // --- rendering (batched per animation frame) ----------------------------------------------------

  const dirtySet = new Set();
  const dirtyPrices = new Set();
  let frame = 0;

  function dirty(what) {
    dirtySet.add(what);
    if (!frame) frame = requestAnimationFrame(render);
  }

  function changed(t) {
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

  function render() {
    frame = 0;
    const what = new Set(dirtySet);
    dirtySet.clear();
    if (what.has('prices')) renderPrices();
    if (what.has('depth')) renderDepth();
    if (what.has('auction')) renderAuction();
    if (what.has('orders')) renderOrders();
    if (what.has('positions')) renderPositions();
    if (what.has('risk')) renderRisk();
    if (what.has('alerts')) renderAlerts();
    if (what.has('conn')) renderConn();
    if (what.has('subs')) renderSubs();
  }

  // L1 table ----------------------------------------------------------------------------------

  let selectedIsin = null;
  /** isin -> { tr, cells: {field: td}, values: {field: number|string} } */
  const l1Rows = new Map();
  const L1_FIELDS = [
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

  /** Maturity year from the name ("7.18% GS 2033"), for ordering the table along the curve. */
  const sortKey = (isin) => {
    const m = /(\d{4})$/.exec(nameOf(isin));
    return `${m ? m[1] : '9999'}|${nameOf(isin)}|${isin}`;
  };

  function l1Row(isin) {
    let r = l1Rows.get(isin);
    if (r) return r;
    const tr = document.createElement('tr');
    const cells = {};
    for (const [field, cls] of L1_FIELDS) {
      const td = el('td', '', cls);
      cells[field] = td;
      tr.appendChild(td);
    }
    cells.isin.textContent = isin;
    cells.name.textContent = nameOf(isin);
    tr.addEventListener('click', () => select(isin));
    r = { tr, cells, values: {} };
    l1Rows.set(isin, r);
    // Insert in curve order.
    const tbody = $('l1').tBodies[0];
    const key = sortKey(isin);
    const next = [...l1Rows.entries()].filter(([i]) => i !== isin && sortKey(i) > key).sort((a, b) => (sortKey(a[0]) < sortKey(b[0]) ? -1 : 1))[0];
    tbody.insertBefore(tr, next ? next[1].tr : null);
    if (!selectedIsin) select(isin);
    return r;
  }

  function renderPrices() {
    for (const isin of dirtyPrices) {
      const t = topics.get(`prices.${isin}`);
      if (!t || !t.state) continue;
      const s = t.state;
      const l1 = s.l1 || {};
      const last = s.last_trade || (s.trades && s.trades[0]) || {};
      const values = {
        bid_yield: l1.bid_yield,
        bid_size: l1.bid_size,
        bid: l1.bid,
        ask: l1.ask,
        ask_size: l1.ask_size,
        ask_yield: l1.ask_yield,
        last: last.price,
        last_yield: last.yield,
        day_volume: s.day ? s.day.volume : undefined,
        seq: t.seq,
      };
      const r = l1Row(isin);
      for (const [field, value] of Object.entries(values)) {
        const prev = r.values[field];
        if (prev === value) continue;
        r.values[field] = value;
        const cell = r.cells[field];
        const fmt = field.endsWith('yield') ? fmtYld : field.endsWith('size') || field === 'day_volume' || field === 'seq' ? fmtInt : fmtPx;
        cell.textContent = fmt(value);
        if (field === 'seq' || !isNum(prev) || !isNum(value)) continue;
        // Prices: green up / red down. Yields move opposite to prices, but traders read yield
        // direction literally, so they flash by their own direction too. Sizes just flash.
        flash(cell, field.endsWith('size') || field === 'day_volume' ? 'f-chg' : value > prev ? 'f-up' : 'f-down');
      }
    }
    dirtyPrices.clear();
  }

  function select(isin) {
    if (selectedIsin && l1Rows.get(selectedIsin)) l1Rows.get(selectedIsin).tr.classList.remove('selected');
    selectedIsin = isin;
    const r = l1Rows.get(isin);
    if (r) r.tr.classList.add('selected');
    dirty('depth');
  }

  // Depth + trades ------------------------------------------------------------------------------

  function renderDepth() {
    const t = selectedIsin ? topics.get(`prices.${selectedIsin}`) : null;
    $('depth-title').textContent = selectedIsin ? `${selectedIsin} ${nameOf(selectedIsin)}${t && t.seq !== null ? ` · seq ${t.seq}` : ''}` : 'select a security';
    const ladder = $('l2').tBodies[0];
    const trades = $('trades').tBodies[0];
    ladder.replaceChildren();
    trades.replaceChildren();
    const s = t && t.state;
    if (!s) {
      emptyRow(ladder, 4, 'no data');
      emptyRow(trades, 5, 'no data');
      return;
    }
    const bids = ((s.l2 && s.l2.bids) || []).slice(0, 10);
    const asks = ((s.l2 && s.l2.asks) || []).slice(0, 10);
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
      tr.cells[0].style.setProperty('--w', `${b ? (100 * b.size) / max : 0}%`);
      tr.cells[3].style.setProperty('--w', `${a ? (100 * a.size) / max : 0}%`);
      ladder.appendChild(tr);
    }
    const list = (s.trades || []).slice(0, 25);
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

  // Auctions --------------------------------------------------------------------------------------

  /** Auction topic the user picked; null follows the newest auction. */
  let pinnedAuction = null;

  function auctionTopics() {
    return [...topics.values()]
      .filter((t) => t.kind === 'auctions')
      .sort((a, b) => String((b.state && b.state.opened_at) || b.topic).localeCompare(String((a.state && a.state.opened_at) || a.topic)));
  }

  function renderAuction() {
    const list = auctionTopics();
    const pick = $('auction-pick');
    if (pinnedAuction && !topics.has(pinnedAuction)) pinnedAuction = null;
    const current = pinnedAuction ? topics.get(pinnedAuction) : list[0];
    // Rebuild the picker only when the set of auctions changed (keeps an open dropdown usable).
    const sig = list.map((t) => `${t.topic}:${t.state ? t.state.status : ''}`).join(',');
    if (pick.dataset.sig !== sig) {
      pick.dataset.sig = sig;
      pick.replaceChildren(
        ...list.map((t) => {
          const o = el('option', `${t.topic.slice('auctions.'.length)} · ${(t.state && t.state.status) || '…'}`);
          o.value = t.topic;
          return o;
        }),
      );
    }
    if (current) pick.value = current.topic;

    const s = current && current.state;
    const status = $('auction-status');
    const facts = $('auction-facts');
    facts.replaceChildren();
    if (!s || !s.auction_id) {
      status.textContent = 'none';
      status.className = 'pill';
      drawHistogram(null);
      return;
    }
    status.textContent = s.status || '—';
    status.className = `pill ${s.status || ''}`;
    const bids = s.bids || { count: 0, amount: 0 };
    const cover = isNum(s.notified_amount) && s.notified_amount > 0 ? (bids.amount / s.notified_amount).toFixed(2) : '—';
    const add = (label, value) => {
      const span = el('span', `${label} `);
      span.appendChild(el('b', value));
      facts.appendChild(span);
    };
    add('security', `${s.isin} ${nameOf(s.isin)}`);
    add('notified', isNum(s.notified_amount) ? `₹${fmtInt(s.notified_amount)} cr` : '—');
    add('bids', `${fmtInt(bids.count)} · ₹${fmtInt(bids.amount)} cr`);
    add('cover', cover === '—' ? cover : `${cover}x`);
    add('basis', s.bid_basis || 'yield');
    if (s.status === 'open' && s.closes_at) {
      const left = Math.max(0, Math.round((Date.parse(s.closes_at) - Date.now()) / 1000));
      add('closes', `${fmtTime(s.closes_at)} (${left}s)`);
    }
    if (s.allotment) {
      add('cut-off', `${fmtYld(s.allotment.cutoff_yield)}% / ${fmtPx(s.allotment.cutoff_price)}`);
      add('allotted', `₹${fmtInt(s.allotment.allotted_amount)} cr`);
    }
    drawHistogram(s);
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  /** Bid amount per yield (or price) bucket; after allotment bars are green (accepted) or grey. */
  function drawHistogram(s) {
    const root = $('histogram');
    root.replaceChildren();
    const W = 600;
    const H = 220;
    const pad = { l: 44, r: 10, t: 12, b: 26 };
    const buckets = (s && s.histogram) || [];
    if (buckets.length === 0) {
      root.appendChild(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, s ? 'waiting for bids…' : 'no auction'));
      return;
    }
    const width = buckets[0].to - buckets[0].from || 0.01;
    const lo = Math.min(...buckets.map((b) => b.from));
    const hi = Math.max(...buckets.map((b) => b.to));
    const n = Math.max(1, Math.round((hi - lo) / width));
    const maxAmount = Math.max(...buckets.map((b) => b.amount || 0), 1);
    const pw = W - pad.l - pad.r;
    const ph = H - pad.t - pad.b;
    const x = (v) => pad.l + ((v - lo) / (hi - lo || width)) * pw;
    const basis = s.bid_basis || 'yield';
    const cutoff = s.allotment ? (basis === 'price' ? s.allotment.cutoff_price : s.allotment.cutoff_yield) : null;

    root.appendChild(svg('line', { class: 'axis', x1: pad.l, y1: pad.t + ph, x2: W - pad.r, y2: pad.t + ph }));
    root.appendChild(svg('line', { class: 'axis', x1: pad.l, y1: pad.t, x2: pad.l, y2: pad.t + ph }));
    root.appendChild(svg('text', { x: pad.l - 4, y: pad.t + 8, 'text-anchor': 'end' }, fmtInt(maxAmount)));
    root.appendChild(svg('text', { x: pad.l - 4, y: pad.t + ph, 'text-anchor': 'end' }, '0'));
    root.appendChild(svg('text', { x: 4, y: pad.t + ph / 2, transform: `rotate(-90 8 ${pad.t + ph / 2})`, 'text-anchor': 'middle' }, '₹ cr'));

    const barW = Math.max(1, pw / n - 2);
    for (const b of buckets) {
      const h = ((b.amount || 0) / maxAmount) * ph;
      let cls = 'bar';
      if (isNum(cutoff)) {
        // Yield auctions accept the lowest yields, price auctions the highest prices.
        const accepted = basis === 'price' ? b.to > cutoff : b.from <= cutoff;
        cls += accepted ? ' in' : ' out';
      }
      const rect = svg('rect', { class: cls, x: x(b.from) + 1, y: pad.t + ph - h, width: barW, height: Math.max(h, 0.5) });
      rect.appendChild(svg('title', {}, `${b.from}–${b.to}: ${b.count} bids, ₹${fmtInt(b.amount)} cr`));
      root.appendChild(rect);
    }
    // X labels: about 6 evenly spaced bucket edges.
    const every = Math.max(1, Math.ceil(n / 6));
    for (let i = 0; i <= n; i += every) {
      const v = lo + i * width;
      const anchor = i === 0 ? 'start' : i + every > n ? 'end' : 'middle'; // keep edge labels inside
      root.appendChild(svg('text', { x: x(v), y: H - 8, 'text-anchor': anchor }, v.toFixed(2)));
    }
    if (isNum(cutoff)) {
      const cx = Math.min(W - pad.r, Math.max(pad.l, x(cutoff)));
      root.appendChild(svg('line', { class: 'cutoff', x1: cx, y1: pad.t, x2: cx, y2: pad.t + ph }));
      root.appendChild(svg('text', { class: 'cutoff-label', x: Math.min(cx + 4, W - 90), y: pad.t + 10 }, `cut-off ${cutoff.toFixed(4)}`));
    }
  }

  // Orders / positions / risk / alerts --------------------------------------------------------------

  const byUpdated = (a, b) => String(b.updated_at || '').localeCompare(String(a.updated_at || ''));

  function renderOrders() {
    const t = user ? topics.get(`trading.${user}`) : null;
    const s = (t && t.state) || {};
    const open = Object.values(s.open || {}).sort(byUpdated);
    const tbody = $('open-orders').tBodies[0];
    tbody.replaceChildren();
    if (open.length === 0) emptyRow(tbody, 7, 'no open orders');
    for (const o of open) {
      tbody.appendChild(
        row([
          { text: String(o.order_id).slice(-10), title: o.order_id, cls: 'dim' },
          { text: nameOf(o.isin) || o.isin, title: o.isin },
          { text: o.side, cls: o.side },
          { text: fmtPx(o.price), cls: 'num' },
          { text: fmtInt(o.quantity), cls: 'num' },
          { text: fmtInt(o.filled_quantity), cls: 'num' },
          { text: o.status === 'partially_filled' ? 'partial' : o.status },
        ]),
      );
    }
    const recent = $('recent-orders').tBodies[0];
    recent.replaceChildren();
    const done = (s.recent || []).slice(0, 12);
    if (done.length === 0) emptyRow(recent, 7, 'none yet');
    for (const o of done) {
      recent.appendChild(
        row([
          { text: fmtTime(o.updated_at) },
          { text: nameOf(o.isin) || o.isin, title: o.isin },
          { text: o.side, cls: o.side },
          { text: fmtPx(o.price), cls: 'num' },
          { text: fmtInt(o.quantity), cls: 'num' },
          { text: fmtInt(o.filled_quantity), cls: 'num' },
          { text: o.status, title: o.reason || '', cls: o.status === 'rejected' ? 'sell' : o.status === 'filled' ? 'buy' : 'dim' },
        ]),
      );
    }
  }

  function renderPositions() {
    const t = user ? topics.get(`portfolio.${user}`) : null;
    const positions = Object.values((t && t.state && t.state.positions) || {}).sort((a, b) => sortKey(a.isin).localeCompare(sortKey(b.isin)));
    const tbody = $('positions').tBodies[0];
    tbody.replaceChildren();
    if (positions.length === 0) emptyRow(tbody, 4, 'flat');
    for (const p of positions) {
      tbody.appendChild(
        row([
          { text: nameOf(p.isin) || p.isin, title: p.isin },
          { text: fmtInt(p.quantity), cls: `num ${p.quantity < 0 ? 'sell' : 'buy'}` },
          { text: fmtPx(p.avg_price), cls: 'num' },
          { text: fmtInt(p.mtm), cls: `num ${isNum(p.mtm) && p.mtm < 0 ? 'sell' : 'buy'}` },
        ]),
      );
    }
  }

  function renderRisk() {
    const t = user ? topics.get(`risk.${user}`) : null;
    const s = (t && t.state) || {};
    const m = s.metrics || {};
    const box = $('risk-metrics');
    box.replaceChildren();
    const add = (label, value) => {
      const span = el('span', `${label} `);
      span.appendChild(el('b', value));
      box.appendChild(span);
    };
    add('exposure', fmtCr(m.exposure));
    add('DV01', isNum(m.dv01) ? `${fmtRs(m.dv01)}/bp` : '—');
    add('limit used', isNum(m.limit_utilisation) ? `${(m.limit_utilisation * 100).toFixed(1)}%` : '—');
    const breaches = Object.values(s.breaches || {});
    if (breaches.length) add('breaches', breaches.map((b) => `${b.limit}:${b.severity}`).join(' '));
    const u = isNum(m.limit_utilisation) ? m.limit_utilisation : 0;
    const bar = $('util-bar');
    bar.style.width = `${Math.min(100, u * 100)}%`;
    bar.style.background = u >= 1 ? 'var(--crit)' : u >= 0.8 ? 'var(--warn)' : 'var(--up)';
  }

  const seenAlerts = new Set();

  function renderAlerts() {
    const all = [];
    for (const t of topics.values()) {
      if (t.kind !== 'risk_alerts' && t.kind !== 'system_alerts') continue;
      for (const a of (t.state && t.state.alerts) || []) all.push({ ...a, source: t.kind === 'system_alerts' ? 'system' : 'risk' });
    }
    all.sort((a, b) => String(b.ts || '').localeCompare(String(a.ts || '')));
    const ul = $('alerts');
    ul.replaceChildren();
    if (all.length === 0) {
      ul.appendChild(el('li', 'no alerts', 'dim'));
      return;
    }
    const first = seenAlerts.size === 0;
    for (const a of all.slice(0, 60)) {
      const li = el('li', null, a.severity || 'info');
      if (!first && a.alert_id && !seenAlerts.has(a.alert_id)) li.classList.add('new');
      if (a.alert_id) seenAlerts.add(a.alert_id);
      li.appendChild(el('span', a.severity || a.kind || 'alert', 'sev'));
      const text = a.limit !== undefined ? `${a.limit} ${fmtInt(a.value)} ≥ ${fmtInt(a.threshold)}` : a.message || a.error || a.kind || '';
      li.appendChild(el('span', a.source === 'system' ? `[system] ${text}` : text));
      li.appendChild(el('time', fmtTime(a.ts)));
      ul.appendChild(li);
    }
  }

  // Status -------------------------------------------------------------------------------------------

  function renderConn() {
    const box = $('conn');
    box.replaceChildren(
      ...NAMESPACES.map((ns) => {
        const c = connState[ns] || { text: `${ns} idle`, cls: '' };
        return el('span', c.text, `badge ${c.cls}`);
      }),
    );
  }

  function renderSubs() {
    const tbody = $('subs').tBodies[0];
    const list = [...topics.values()].sort((a, b) => (a.ns + a.topic).localeCompare(b.ns + b.topic));
    tbody.replaceChildren(
      ...list.map((t) =>
        row([
          { text: `/${t.ns}` },
          { text: t.topic },
          { text: t.seq === null ? '—' : fmtInt(t.seq), cls: 'num' },
          { text: t.epoch ? String(t.epoch).slice(0, 12) : '—', title: t.epoch || '', cls: 'dim' },
          { text: t.status, cls: t.status.startsWith('error') ? 'sell' : t.status.startsWith('live') ? 'buy' : 'dim' },
        ]),
      ),
    );
    $('orders-topic').textContent = user ? `trading.${user}` : 'trading.*';
    $('portfolio-topic').textContent = user ? `portfolio.${user}` : 'portfolio.*';
    $('risk-topic').textContent = user ? `risk.${user}` : 'risk.*';
    $('alerts-topic').textContent = user ? `risk.${user}.alerts` : 'risk.*.alerts';
  }

  // --- connections --------------------------------------------------------------------------------

  function banner(nodes) {
    const b = $('banner');
    if (!nodes) {
      b.hidden = true;
      return;
    }
    b.replaceChildren(...nodes);
    b.hidden = false;
  }

  function connect(ns) {
    // All namespaces share one underlying connection (Socket.IO multiplexes them over one Manager).
    const socket = io(`/${ns}`, { auth: { token }, transports: ['websocket', 'polling'] });
    sockets[ns] = socket;
    connState[ns] = { text: `${ns} connecting`, cls: 'wait' };
    dirty('conn');

    socket.on('connect', () => {
      stats.connects++;
      connState[ns] = { text: `${ns} live`, cls: 'ok' };
      dirty('conn');
      // (Re)subscribe everything this namespace follows, resuming from the last seq seen.
      for (const t of topics.values()) if (t.ns === ns) subscribe(t);
    });
    socket.on('disconnect', (reason) => {
      connState[ns] = { text: `${ns} ${reason === 'io client disconnect' ? 'closed' : 'reconnecting'}`, cls: 'wait' };
      for (const t of topics.values()) if (t.ns === ns) t.status = 'disconnected';
      dirty('conn');
      dirty('subs');
    });
    socket.on('connect_error', (err) => {
      const code = (err && err.data && err.data.code) || (err && err.message) || 'error';
      connState[ns] = { text: `${ns} ${code}`, cls: 'bad' };
      dirty('conn');
      if (code === 'AUTH_INVALID' || code === 'AUTH_REQUIRED') {
        banner([el('span', `Authentication failed (${code}): ${err.message}. Open this page with a fresh `), el('code', '?token=<JWT>'), el('span', '.')]);
        return;
      }
      // A refusal by the server's middleware (e.g. connection limit) stops Socket.IO's own retries.
      if (!socket.active) setTimeout(() => socket.connect(), 3000 + Math.random() * 2000);
    });

    for (const type of ['snapshot', 'delta', 'alert', 'heartbeat', 'error']) socket.on(type, (env) => onEnvelope(ns, env));
    socket.on('batch', (data) => onBatch(ns, data));
    return socket;
  }

  /** Follows every prices.* topic and the most recent auctions, from the topics endpoint. */
  async function discover() {
    try {
      const res = await fetch('/api/v1/ws/topics', { headers: token ? { authorization: `Bearer ${token}` } : {} });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = await res.json();
      const list = Array.isArray(body.topics) ? body.topics : [];
      for (const t of list) if (typeof t.topic === 'string' && t.topic.startsWith('prices.')) track('market', t.topic);
      const auctions = list
        .filter((t) => typeof t.topic === 'string' && t.topic.startsWith('auctions.'))
        .sort((a, b) => String(b.last_update || '').localeCompare(String(a.last_update || '')) || b.topic.localeCompare(a.topic))
        .slice(0, MAX_AUCTIONS)
        .map((t) => t.topic);
      const keep = new Set(auctions);
      if (pinnedAuction) keep.add(pinnedAuction);
      for (const topic of keep) track('auction', topic);
      for (const t of [...topics.values()]) if (t.kind === 'auctions' && !keep.has(t.topic)) untrack(t.topic);
      dirty('auction');
    } catch (err) {
      console.warn('topic discovery failed', err);
    } finally {
      setTimeout(discover, DISCOVERY_INTERVAL_MS);
    }
  }

  function start() {
    $('user').textContent = user ? `${user}${roles.length ? ` (${roles.join(',')})` : ''}` : 'no user';
    $('auction-pick').addEventListener('change', (e) => {
      const list = auctionTopics();
      pinnedAuction = list[0] && e.target.value === list[0].topic ? null : e.target.value;
      dirty('auction');
    });
    setInterval(() => {
      $('clock').textContent = `${fmtTime(new Date().toISOString())} IST`;
      $('rate').textContent = `${received} msg/s`;
      received = 0;
      dirty('auction'); // closing countdown
    }, 1000);
    renderConn();
    renderSubs();
    [renderOrders, renderPositions, renderRisk, renderAlerts, renderDepth, renderAuction].forEach((f) => f());

    if (typeof io !== 'function') {
      banner([el('span', 'Socket.IO client not loaded (/socket.io/socket.io.js). Is the BondX gateway serving this page?')]);
      return;
    }
    if (!token) {
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

    for (const ns of NAMESPACES) connect(ns);
    if (user) {
      track('trading', `trading.${user}`);
      track('trading', `portfolio.${user}`);
      track('risk', `risk.${user}`);
      track('risk', `risk.${user}.alerts`);
    }
    if (roles.includes('operator')) track('risk', 'system.alerts');
    discover();
  }

  window.bondxDashboard = { topics, sockets, stats };
  start();
})();
