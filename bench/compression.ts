import { parseArgs } from 'node:util';
import { issueToken, jwtKeysFromConfig } from '../src/gateway/auth.js';
import { silentLogger } from '../src/observability/logger.js';
import { startSystem } from '../src/runtime/system.js';
import {
  clientGroup,
  fmtInt,
  fmtMs,
  fmtPct,
  fullGc,
  machine,
  measureStep,
  percentiles,
  quiesce,
  runMain,
  startChild,
  stopChild,
  table,
  waitForQuietMachine,
  writeResults,
  type StepMeasure,
} from './rig.js';
import { benchConfig, BENCH_ISIN, BENCH_TOPIC, eventId, quoteEvent, sleep } from './shared.js';
import type { WsConnectArgs, WsStepStats } from './ws-clients.js';

/**
 * `tsx bench/compression.ts`: the cost of permessage-deflate on the plain-WebSocket API. The real
 * system (ingest -> project -> in-memory store -> feed -> room broadcast) runs in this process; M `ws`
 * clients in a child process hold `/api/v1/ws/market/{isin}` (they offer permessage-deflate, as
 * browsers do; /market sends uncompressed by default). Same connections, same quote/book events,
 * first with compression off, then after `{"type":"subscribe", ..., "compression": true}`.
 * Reported: this process's CPU per delivered message, bytes read by the clients per message, latency
 * (publish -> receipt), and memory per connection once compressed frames have flowed (zlib contexts).
 */

const { values: opts } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    rates: { type: 'string', default: '20,50,100' },
    warmup: { type: 'string', default: '1' },
    step: { type: 'string', default: '4' },
    drain: { type: 'string', default: '3' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opts.help) {
  console.log('tsx bench/compression.ts [--clients 200] [--rates 20,50,100] [--warmup 1] [--step 4] [--drain 3]');
  process.exit(0);
}
const CLIENTS = Number(opts.clients);
const RATES = (opts.rates ?? '').split(',').map(Number);
const TIMING = { warmupS: Number(opts.warmup), stepS: Number(opts.step), drainS: Number(opts.drain) };
if (!Number.isInteger(CLIENTS) || CLIENTS < 1 || RATES.some((r) => !Number.isFinite(r) || r <= 0) || Object.values(TIMING).some((s) => !(s > 0))) {
  console.error('--clients must be a positive integer, --rates positive numbers, --warmup/--step/--drain positive seconds');
  process.exit(2);
}

const log = (line: string) => console.log(`[compression] ${line}`);

/** Even n: a quote (L1 delta, ~360 B); odd n: a 3-level book update on alternating sides (L2 delta). */
function marketEvent(step: number, n: number): Record<string, unknown> {
  if (n % 2 === 0) return { ...quoteEvent(step, n) };
  const base = n % 4 === 1 ? 99.5 : 99.6;
  const dir = n % 4 === 1 ? -1 : 1;
  return {
    event_id: eventId(step, n),
    type: 'book',
    ts: new Date().toISOString(),
    isin: BENCH_ISIN,
    side: n % 4 === 1 ? 'bid' : 'ask',
    levels: [0, 1, 2].map((i) => ({ price: Math.round((base + dir * i * 0.01) * 1000) / 1000, size: 1_000_000 * (1 + ((n + i) % 7)) })),
  };
}

interface Row {
  compression: boolean;
  rate: number;
  clients: number;
  deliveredMsgsPerSec: number;
  deliveredPct: number;
  serverCpuPct: number;
  /** This process's CPU (whole system: ingest, projection, broadcast, deflate) per delivered message. */
  cpuUsPerMsg: number;
  bytesPerMsg: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  clientCpuPct: number;
  otherCpuPct: number;
}

interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
}

async function mem(): Promise<Mem> {
  await fullGc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  log(`${CLIENTS} ws clients on /api/v1/ws/market/${BENCH_ISIN}, rates ${RATES.join(',')} ev/s (quote/book alternating), ${TIMING.warmupS}+${TIMING.stepS} s per step`);
  const idleBusy = await waitForQuietMachine(log);
  const config = benchConfig(CLIENTS + 100, {
    // Smallest history: memory measured below is connections, not stored entries.
    HISTORY_MAX_LEN: '100',
    // Measure the compression cost, not flow control: no conflation during the steps.
    WS_MAX_QUEUE_SIZE: '1000000',
  });
  const keys = jwtKeysFromConfig(config);
  const system = await startSystem(config, silentLogger, { projector: true, gateway: true, simulator: false }, keys);
  const { ingest, server } = system;
  if (!ingest || !server) throw new Error('needs the projector and gateway roles in this process');
  const child = startChild('ws-clients', 'ws-clients.ts');
  try {
    // The topic must exist before clients subscribe (a snapshot to start from).
    await ingest.submit(quoteEvent(0, 0), 'bench');
    const token = issueToken(keys, { sub: 'bench-trader', ttl: 3600 });
    const memBase = await mem();
    const url = `${server.url.replace('http://', 'ws://')}/api/v1/ws/market/${BENCH_ISIN}?token=${encodeURIComponent(token)}`;
    const conn = await child.rpc.call<{ connected: number; failed: number; firstError: string | null; ms: number }>('connect', { url, count: CLIENTS, topic: BENCH_TOPIC, stall: false } satisfies WsConnectArgs, 300_000);
    log(`${conn.connected} connected and subscribed in ${(conn.ms / 1000).toFixed(1)} s${conn.failed ? ` (${conn.failed} failed: ${conn.firstError})` : ''}`);
    if (conn.connected === 0) throw new Error(`no client connected: ${conn.firstError}`);
    const group = await clientGroup(child);
    let errors = 0;
    const emit = (step: number, n: number) => {
      ingest.submit(marketEvent(step, n), 'bench').then(
        (o) => {
          if (o.status !== 'applied') errors++;
        },
        () => errors++,
      );
    };

    const rows: Row[] = [];
    const memory: { state: string; mem: Mem }[] = [{ state: 'before connecting', mem: memBase }];
    for (const compression of [false, true]) {
      const set = await child.rpc.call<{ acked: number; refused: number }>('setCompression', { topic: BENCH_TOPIC, on: compression });
      log(`compression ${compression ? 'on' : 'off'}: ${set.acked} re-subscribed${set.refused ? `, ${set.refused} refused` : ''}`);
      for (const rate of RATES) {
        await quiesce([group]);
        const m: StepMeasure = await measureStep([group], rate, TIMING, emit);
        const st = m.perGroup[0] as WsStepStats;
        const p = percentiles(m.latency);
        const row: Row = {
          compression,
          rate,
          clients: m.clients,
          deliveredMsgsPerSec: m.deliveredMsgsPerSec,
          deliveredPct: m.deliveredPct,
          serverCpuPct: m.serverCpuPct,
          cpuUsPerMsg: (m.serverCpuMs * 1000) / Math.max(1, st.received),
          bytesPerMsg: st.bytesRead / Math.max(1, st.frames),
          ...p,
          clientCpuPct: m.clientCpuPct,
          otherCpuPct: m.otherCpuPct,
        };
        rows.push(row);
        log(
          `${compression ? 'on ' : 'off'} ${rate} ev/s: ${fmtInt(row.deliveredMsgsPerSec)} msg/s (${fmtPct(row.deliveredPct, 2)}), server CPU ${fmtPct(row.serverCpuPct)} = ${row.cpuUsPerMsg.toFixed(2)} us/msg, ` +
            `${row.bytesPerMsg.toFixed(0)} B/msg, p50 ${fmtMs(p.p50)} p99 ${fmtMs(p.p99)} ms, clients CPU ${fmtPct(row.clientCpuPct)}, other ${fmtPct(row.otherCpuPct)}`,
        );
      }
      await quiesce([group]);
      await sleep(500);
      memory.push({ state: `${CLIENTS} connections, after the ${compression ? 'compressed' : 'uncompressed'} steps`, mem: await mem() });
    }
    if (errors > 0) log(`WARNING: ${errors} events not applied`);

    const off = memory[1]?.mem as Mem;
    const on = memory[2]?.mem as Mem;
    const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
    const perConn = (a: Mem, b: Mem) => ({ rss: (b.rss - a.rss) / CLIENTS, heapUsed: (b.heapUsed - a.heapUsed) / CLIENTS, external: (b.external - a.external) / CLIENTS });
    const memRows = [
      { what: 'connection, uncompressed (vs before connecting)', ...perConn(memBase, off) },
      { what: 'connection, compressed (vs before connecting)', ...perConn(memBase, on) },
      { what: 'compression alone (compressed - uncompressed)', ...perConn(off, on) },
    ];
    const env = machine();
    const out: string[] = [];
    out.push(`### permessage-deflate on /api/v1/ws/market: ${CLIENTS} ws clients, quote/book deltas (${env.cpus} cores, Node ${env.node}, 127.0.0.1)`);
    out.push('');
    out.push(`CPU columns are % of one core (the box has ${env.cpus}); "other" is CPU used by anything but this process and the client process.`);
    out.push('');
    out.push(
      `Server CPU = the whole system process (ingest, projection, broadcast, deflate) over warm-up + ${TIMING.stepS} s + drain, per delivered message; bytes = read from the clients' TCP sockets per received frame (WebSocket framing included); latency = receipt - ingest.submit.`,
    );
    out.push('');
    out.push(
      table(
        ['compression', 'ev/s', 'clients', 'delivered msg/s', 'delivered', 'CPU server / clients / other', 'server CPU per msg', 'bytes per msg', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'],
        rows.map((r) => [r.compression ? 'on' : 'off', fmtInt(r.rate), fmtInt(r.clients), fmtInt(r.deliveredMsgsPerSec), fmtPct(r.deliveredPct, 2), `${fmtPct(r.serverCpuPct)} / ${fmtPct(r.clientCpuPct)} / ${fmtPct(r.otherCpuPct)}`, `${r.cpuUsPerMsg.toFixed(2)} µs`, `${r.bytesPerMsg.toFixed(0)} B`, fmtMs(r.p50), fmtMs(r.p95), fmtMs(r.p99), fmtMs(r.max)]),
      ),
    );
    out.push('');
    out.push(`Idle server memory (after a full GC, ${CLIENTS} connections that have received the steps above):`);
    out.push('');
    out.push(table(['per connection', 'RSS', 'heapUsed', 'external (zlib, buffers)'], memRows.map((r) => [r.what, kb(r.rss), kb(r.heapUsed), kb(r.external)])));
    const md = out.join('\n');
    console.log(`\n${md}\n`);
    const file = writeResults('compression', { durationS: (Date.now() - t0) / 1000, machineBusyBeforePct: idleBusy, config: { clients: CLIENTS, rates: RATES, ...TIMING }, rows, memory, memoryPerConnection: memRows, markdown: md });
    log(`results written to ${file} (total ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    await child.rpc.call('closeAll');
  } finally {
    await stopChild(child);
    await system.close();
  }
}

runMain(main);
