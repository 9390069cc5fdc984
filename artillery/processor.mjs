// Artillery processor for the BondX Stream load scenarios (artillery/*.yml).
//
// Why engine-less: every scenario runs on Artillery's default engine with only `function` and `think`
// steps, and the functions below open plain WebSockets with the `ws` package from the repository's
// node_modules. Artillery's built-in `ws` engine can read frames (through `context.ws` in a function
// step), but for this protocol it cannot count what matters:
//   - the gateway accepts the WebSocket upgrade *before* authentication/admission and refuses with an
//     `error` frame plus a 44xx close code, so "the engine connected" is not "the connection was
//     admitted"; success here means "got the subscribe ack or snapshot";
//   - the engine opens its socket before any processor function receives the event emitter, so a
//     failed open cannot be counted in our own connection counters;
//   - a listener attached in the first `function` step may miss the first frames (the snapshot);
//   - a reconnect with `?resume=` needs a new socket anyway, outside the engine.
// Opening the socket ourselves attaches the listeners before the handshake, so nothing is missed.
//
// Custom metrics (all emitted through Artillery's event emitter, aggregated in the JSON report):
//   bondx.connections.attempted / .succeeded / .failed   admission outcome of every (re)connection
//   bondx.refused.<code>                                 failed connections by close code / error code
//   bondx.deltas            deltas (and alerts) received in order or out of order
//   bondx.latency_ms        histogram: receipt time - meta.event_ts of each live delta (same clock)
//   bondx.replay_latency_ms histogram of deltas replayed by a resume (they are old by design)
//   bondx.gaps              seqs missing between consecutive deltas of a topic (sum of jump sizes)
//   bondx.gap_events        how many discontinuities
//   bondx.duplicates        deltas with seq <= the last seq already held
//   bondx.conflated         deltas skipped by a backpressure conflation snapshot (meta.conflated)
//   bondx.background_conflations  conflated snapshots after leaving mobile background mode (by design)
//   bondx.resyncs           snapshots with meta.resync (resume could not be exact)
//   bondx.errors            error frames, socket errors, unexpected closes
//   bondx.background_leaks  market deltas received while mobile background mode was acknowledged on
//   bondx.ping_rtt_ms       ping -> pong round trip
import { randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';

const DEMO_USERS = ['demo-trader', 'alice', 'bob'];
const BENCHMARKS = ['IN0020230085', 'IN0020240019', 'IN0020240050', 'IN0020250018'];
/** Every (re)connection must be admitted within this, or it counts as failed. */
const ADMIT_TIMEOUT_MS = 10_000;
/** Hard upper bound on any socket's life, whatever the flow does (all loops bounded in time). */
const MAX_SOCKET_LIFETIME_MS = 120_000;
/** Counters referenced by `ensure` expressions: emitted as 0 up front so the expressions always resolve. */
const ZEROED = [
  'bondx.connections.attempted',
  'bondx.connections.succeeded',
  'bondx.connections.failed',
  'bondx.deltas',
  'bondx.gaps',
  'bondx.duplicates',
  'bondx.conflated',
  'bondx.resyncs',
  'bondx.errors',
  'bondx.background_leaks',
];

let userCursor = 0;
const nextDemoUser = () => DEMO_USERS[userCursor++ % DEMO_USERS.length];

function secret() {
  const s = process.env.JWT_SECRET;
  if (!s) throw new Error('JWT_SECRET must be set (the stack under test and the processor must share it)');
  return s;
}

/** HS256 token as the gateway expects: `sub`, `exp` (required), optional `role`. */
export function signToken(sub, role) {
  return jwt.sign(role ? { role } : {}, secret(), { algorithm: 'HS256', subject: sub, expiresIn: 3600 });
}

function wsBase(context) {
  const target = String(context.vars.target ?? 'http://127.0.0.1:8000');
  return target.replace(/^http/, 'ws').replace(/\/$/, '');
}

function pickIsin(context) {
  const isin = context.vars.isin;
  if (typeof isin === 'string' && /^IN[0-9A-Z]{10}$/.test(isin)) return isin;
  return BENCHMARKS[Math.floor(Math.random() * BENCHMARKS.length)];
}

/** Per-VU state: survives reconnects, so seq continuity is checked across a drop + resume. */
function state(context, events) {
  if (!context._bx) {
    context._bx = {
      events,
      conn: undefined,
      /** topic -> last seq held */
      seqs: new Map(),
      /** topic -> epoch (from the snapshot or the subscribe ack) */
      epochs: new Map(),
      /** Mobile: background mode acknowledged on */
      background: false,
      /** Mobile: a conflated snapshot is expected (we just left background mode) */
      expectConflation: false,
    };
    for (const name of ZEROED) events.emit('counter', name, 0);
  }
  context._bx.events = events;
  return context._bx;
}

const count = (st, name, n = 1) => st.events.emit('counter', name, n);
const observe = (st, name, v) => st.events.emit('histogram', name, v);

/**
 * Opens one WebSocket and resolves once it is admitted (subscribe ack or snapshot received) or has
 * failed (refusal frame/close, socket error, timeout). Never rejects.
 */
function openSocket(st, { url, headers = {}, resumeTopics = [] }) {
  return new Promise((resolve) => {
    count(st, 'bondx.connections.attempted');
    const conn = {
      ws: new WebSocket(url, { headers, perMessageDeflate: true, handshakeTimeout: ADMIT_TIMEOUT_MS }),
      admitted: false,
      settled: false,
      closedByUs: false,
      dead: false,
      /** Topics being resumed: deltas before their subscribe ack are replayed history. */
      replaying: new Set(resumeTopics),
      pending: new Map(),
      refusal: undefined,
    };
    st.conn = conn;
    const settle = (ok, reason) => {
      if (conn.settled) return;
      conn.settled = true;
      clearTimeout(admitTimer);
      if (ok) count(st, 'bondx.connections.succeeded');
      else {
        count(st, 'bondx.connections.failed');
        count(st, `bondx.refused.${reason}`);
      }
      resolve(ok);
    };
    const admitTimer = setTimeout(() => {
      settle(false, 'timeout');
      conn.dead = true;
      conn.ws.terminate();
    }, ADMIT_TIMEOUT_MS);
    const lifetime = setTimeout(() => closeConn(conn, true), MAX_SOCKET_LIFETIME_MS);
    lifetime.unref();

    conn.ws.on('message', (data, isBinary) => {
      if (conn.dead) return;
      if (isBinary) {
        count(st, 'bondx.errors');
        return;
      }
      const received = Date.now();
      let env;
      try {
        env = JSON.parse(data.toString());
      } catch {
        count(st, 'bondx.errors');
        return;
      }
      handleEnvelope(st, conn, env, received);
      if (!conn.admitted && (env.type === 'ack' || env.type === 'snapshot')) {
        conn.admitted = true;
        settle(true);
      }
    });
    conn.ws.on('error', (err) => {
      if (conn.dead) return;
      count(st, 'bondx.errors');
      if (!conn.admitted) settle(false, err.code ?? 'socket_error');
    });
    conn.ws.on('close', (code) => {
      clearTimeout(lifetime);
      for (const waiter of conn.pending.values()) waiter(undefined);
      conn.pending.clear();
      if (conn.dead) return;
      conn.dead = true;
      if (!conn.admitted) settle(false, conn.refusal ?? `close_${code}`);
      else if (!conn.closedByUs) {
        count(st, 'bondx.errors');
        count(st, `bondx.unexpected_close.${code}`);
      }
    });
  });
}

function handleEnvelope(st, conn, env, received) {
  switch (env.type) {
    case 'delta':
    case 'alert':
      return onDelta(st, conn, env, received);
    case 'batch':
      if (Array.isArray(env.payload)) for (const inner of env.payload) onDelta(st, conn, inner, received);
      return;
    case 'snapshot': {
      const meta = env.meta ?? {};
      if (typeof meta.epoch === 'string') st.epochs.set(env.topic, meta.epoch);
      if (meta.resync) count(st, 'bondx.resyncs');
      if (meta.conflated) {
        const skipped = Math.max(0, Number(meta.conflated.to) - Number(meta.conflated.from) + 1);
        if (st.expectConflation && env.topic.startsWith('prices.')) count(st, 'bondx.background_conflations');
        else count(st, 'bondx.conflated', skipped);
      }
      if (typeof env.seq === 'number') st.seqs.set(env.topic, env.seq);
      count(st, 'bondx.snapshots');
      return;
    }
    case 'ack': {
      const p = env.payload ?? {};
      if (p.action === 'subscribe' && typeof env.topic === 'string') {
        if (typeof p.epoch === 'string') st.epochs.set(env.topic, p.epoch);
        conn.replaying.delete(env.topic);
      }
      if (p.action === 'background_mode') st.background = p.enabled === true;
      break;
    }
    case 'pong':
      break;
    case 'error':
      count(st, 'bondx.errors');
      count(st, `bondx.error.${env.code ?? 'unknown'}`);
      if (!conn.admitted) conn.refusal = env.code ?? 'error';
      break;
    default:
      return; // heartbeat, ping
  }
  // A reply to a request we are waiting for (ping, subscribe, background_mode).
  const waiter = env.correlation_id ? conn.pending.get(env.correlation_id) : undefined;
  if (waiter) {
    conn.pending.delete(env.correlation_id);
    waiter(env);
  }
}

function onDelta(st, conn, env, received) {
  if (typeof env.topic !== 'string' || typeof env.seq !== 'number') {
    count(st, 'bondx.errors');
    return;
  }
  count(st, 'bondx.deltas');
  const last = st.seqs.get(env.topic);
  if (last === undefined || env.seq === last + 1) st.seqs.set(env.topic, env.seq);
  else if (env.seq <= last) count(st, 'bondx.duplicates');
  else {
    count(st, 'bondx.gaps', env.seq - last - 1);
    count(st, 'bondx.gap_events');
    st.seqs.set(env.topic, env.seq);
  }
  if (st.background && env.topic.startsWith('prices.')) count(st, 'bondx.background_leaks');
  const eventTs = Date.parse(env.meta?.event_ts ?? '');
  if (!Number.isFinite(eventTs)) return;
  const latency = Math.max(0, received - eventTs);
  if (conn.replaying.has(env.topic)) {
    count(st, 'bondx.replayed');
    observe(st, 'bondx.replay_latency_ms', latency);
  } else observe(st, 'bondx.latency_ms', latency);
}

/** Sends a client message with a fresh correlation id; resolves with the reply (or undefined on timeout/close). */
function request(conn, message, timeoutMs = 5000) {
  if (!conn || conn.dead || conn.ws.readyState !== WebSocket.OPEN) return Promise.resolve(undefined);
  const correlationId = `load-${randomUUID()}`;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      conn.pending.delete(correlationId);
      resolve(undefined);
    }, timeoutMs);
    conn.pending.set(correlationId, (env) => {
      clearTimeout(timer);
      resolve(env);
    });
    conn.ws.send(JSON.stringify({ ...message, correlation_id: correlationId }));
  });
}

async function ping(st) {
  const sent = Date.now();
  const reply = await request(st.conn, { type: 'ping' });
  if (reply?.type === 'pong') observe(st, 'bondx.ping_rtt_ms', Date.now() - sent);
  else if (st.conn?.admitted) count(st, 'bondx.errors');
}

function closeConn(conn, byUs) {
  if (!conn || conn.dead) return;
  conn.closedByUs = byUs;
  conn.ws.close(1000, 'load test done');
  // A close handshake that does not complete is cut after 2 s.
  setTimeout(() => {
    conn.dead = true;
    conn.ws.terminate();
  }, 2000).unref();
}

// ---------------------------------------------------------------------------------------------
// Flow functions (async: Artillery awaits them)
// ---------------------------------------------------------------------------------------------

/** /api/v1/ws/market/{isin}: ISIN from the CSV payload; a fresh user per VU (per-user limits). */
export async function openMarket(context, events) {
  const st = state(context, events);
  const isin = pickIsin(context);
  st.isin = isin;
  const token = signToken(`load-mkt-${randomUUID().slice(0, 8)}`);
  if (await openSocket(st, { url: `${wsBase(context)}/api/v1/ws/market/${isin}?token=${token}` })) await ping(st);
}

/** /api/v1/ws/trading/{user}: the user's own token (trading.{user} + portfolio.{user}). */
export async function openTrading(context, events) {
  const st = state(context, events);
  const user = nextDemoUser();
  const token = signToken(user);
  if (await openSocket(st, { url: `${wsBase(context)}/api/v1/ws/trading/${user}?token=${token}` })) await ping(st);
}

/** /api/v1/ws/risk/{user}: risk.{user} + risk.{user}.alerts. */
export async function openRisk(context, events) {
  const st = state(context, events);
  const user = nextDemoUser();
  const token = signToken(user);
  if (await openSocket(st, { url: `${wsBase(context)}/api/v1/ws/risk/${user}?token=${token}` })) await ping(st);
}

/** /api/v1/ws/mobile/{user} with the mobile headers, then a market subscription on top. */
export async function openMobile(context, events) {
  const st = state(context, events);
  const user = nextDemoUser();
  const token = signToken(user);
  const ios = Math.random() < 0.5;
  const headers = {
    'x-device-type': ios ? 'ios' : 'android',
    'x-client-version': ios ? '5.12.0' : '5.11.3',
    'x-background-mode': 'false',
    'user-agent': `BondX-Mobile/${ios ? 'iOS' : 'Android'} artillery`,
  };
  if (!(await openSocket(st, { url: `${wsBase(context)}/api/v1/ws/mobile/${user}?token=${token}`, headers }))) return;
  const isin = pickIsin(context);
  st.isin = isin;
  const ack = await request(st.conn, { type: 'subscribe', topic: `prices.${isin}` });
  if (ack?.type !== 'ack') count(st, 'bondx.errors');
  await ping(st);
}

export async function backgroundOn(context, events) {
  const st = state(context, events);
  st.expectConflation = false;
  const ack = await request(st.conn, { type: 'background_mode', enabled: true });
  if (ack?.type === 'ack') count(st, 'bondx.background_toggles');
  else if (st.conn?.admitted) count(st, 'bondx.errors');
}

export async function backgroundOff(context, events) {
  const st = state(context, events);
  // The conflated snapshot of each market topic is sent before the ack: expect it from now on.
  st.expectConflation = true;
  st.background = false;
  const ack = await request(st.conn, { type: 'background_mode', enabled: false });
  if (ack?.type === 'ack') count(st, 'bondx.background_toggles');
  else if (st.conn?.admitted) count(st, 'bondx.errors');
  st.expectConflation = false;
}

/**
 * Network drop and exact resume: terminate the socket (no close handshake, frames in flight lost),
 * stay away 0.3-1.5 s while the market moves, reconnect with `?resume=prices.{isin}@{lastSeq}@{epoch}`
 * and keep checking continuity: the first delta after the resume must be lastSeq + 1.
 */
export async function dropAndResume(context, events) {
  const st = state(context, events);
  const old = st.conn;
  if (old && !old.dead) {
    old.dead = true; // nothing more is processed from this socket: the seqs held are what we resume from
    old.ws.terminate();
  }
  count(st, 'bondx.drops');
  await new Promise((r) => setTimeout(r, 300 + Math.random() * 1200));
  const topic = `prices.${st.isin}`;
  const last = st.seqs.get(topic);
  const epoch = st.epochs.get(topic);
  const resume = last === undefined ? '' : `&resume=${encodeURIComponent(`${topic}@${last}${epoch ? `@${epoch}` : ''}`)}`;
  const token = signToken(`load-rc-${randomUUID().slice(0, 8)}`);
  await openSocket(st, { url: `${wsBase(context)}/api/v1/ws/market/${st.isin}?token=${token}${resume}`, resumeTopics: last === undefined ? [] : [topic] });
}

/** End of the VU: graceful close; late frames are no longer counted. */
export async function finish(context, events) {
  const st = state(context, events);
  const conn = st.conn;
  if (conn && !conn.dead) {
    closeConn(conn, true);
    conn.dead = true;
  }
}
