import { startTestSystem } from '../test/support/system.js';
import { sleep } from '../test/support/waits.js';
import { int, list, parseOptions, positive, timingOf, timingOptions } from './lib/options.js';
import { fmtInt, fmtMs, fmtPct, machine, table, writeResults } from './lib/report.js';
import { runMain, startChild, stopChild } from './lib/rpc.js';
import { fullGc, waitForQuietMachine } from './lib/stats.js';
import { clientGroup, figures, localPublisher, measureStep, quiesce, type ConnectResult, type StepFigures, type StepMeasure } from './lib/steps.js';
import { BENCH_ISIN, benchBook, benchQuote, BENCH_TOPIC, submitter } from './lib/system.js';
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

const opts = parseOptions('tsx bench/compression.ts', 'The cost of permessage-deflate on the plain-WebSocket API: CPU and bytes per message, latency, memory per connection.', {
  clients: { help: 'ws clients', default: 200, parse: int(1) },
  rates: { help: 'events/s steps', default: [20, 50, 100], parse: list(positive) },
  ...timingOptions({ warmup: 1, step: 4, drain: 3 }),
});
const CLIENTS = opts.clients;
const RATES = opts.rates;
const TIMING = timingOf(opts);

const log = (line: string) => console.log(`[compression] ${line}`);

/** Even n: a quote (L1 delta, ~360 B); odd n: a 3-level book update on alternating sides (L2 delta). */
const marketEvent = (step: number, n: number) => (n % 2 === 0 ? benchQuote(step, n) : benchBook(step, n, 3));

interface Row extends StepFigures {
  compression: boolean;
  rate: number;
  /** This process's CPU (whole system: ingest, projection, broadcast, deflate) per delivered message. */
  cpuUsPerMsg: number;
  bytesPerMsg: number;
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
  const system = await startTestSystem({
    WS_MAX_CONNECTIONS: String(CLIENTS + 100),
    // Smallest history: memory measured below is connections, not stored entries.
    HISTORY_MAX_LEN: '100',
    // Measure the compression cost, not flow control: no conflation during the steps.
    WS_MAX_QUEUE_SIZE: '1000000',
  });
  const { ingest, server } = system;
  const child = startChild('ws-clients', 'ws-clients.ts');
  try {
    // The topic must exist before clients subscribe (a snapshot to start from).
    await ingest.submit(benchQuote(0, 0), 'bench');
    const token = system.token('bench-trader');
    const memBase = await mem();
    const url = `${server.url.replace('http://', 'ws://')}/api/v1/ws/market/${BENCH_ISIN}?token=${encodeURIComponent(token)}`;
    const conn = await child.rpc.call<ConnectResult>('connect', { url, count: CLIENTS, topic: BENCH_TOPIC, stall: false } satisfies WsConnectArgs, 300_000);
    log(`${conn.connected} connected and subscribed in ${(conn.ms / 1000).toFixed(1)} s${conn.failed ? ` (${conn.failed} failed: ${conn.firstError})` : ''}`);
    if (conn.connected === 0) throw new Error(`no client connected: ${conn.firstError}`);
    const group = await clientGroup(child);
    const events = submitter(ingest);
    const publisher = localPublisher((step, n) => events.submit(marketEvent(step, n)));

    const rows: Row[] = [];
    const memory: { state: string; mem: Mem }[] = [{ state: 'before connecting', mem: memBase }];
    for (const compression of [false, true]) {
      const set = await child.rpc.call<{ acked: number; refused: number }>('setCompression', { topic: BENCH_TOPIC, on: compression });
      log(`compression ${compression ? 'on' : 'off'}: ${set.acked} re-subscribed${set.refused ? `, ${set.refused} refused` : ''}`);
      for (const rate of RATES) {
        await quiesce([group]);
        const m: StepMeasure = await measureStep([group], rate, TIMING, publisher);
        const st = m.perGroup[0] as WsStepStats;
        const row: Row = {
          ...figures(m),
          compression,
          rate,
          cpuUsPerMsg: (m.serverCpuMs * 1000) / Math.max(1, st.received),
          bytesPerMsg: st.bytesRead / Math.max(1, st.frames),
        };
        const p = row.latency;
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
    if (events.errors() > 0) log(`WARNING: ${events.errors()} events not applied`);

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
        rows.map((r) => [r.compression ? 'on' : 'off', fmtInt(r.rate), fmtInt(r.clients), fmtInt(r.deliveredMsgsPerSec), fmtPct(r.deliveredPct, 2), `${fmtPct(r.serverCpuPct)} / ${fmtPct(r.clientCpuPct)} / ${fmtPct(r.otherCpuPct)}`, `${r.cpuUsPerMsg.toFixed(2)} µs`, `${r.bytesPerMsg.toFixed(0)} B`, fmtMs(r.latency.p50), fmtMs(r.latency.p95), fmtMs(r.latency.p99), fmtMs(r.latency.max)]),
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
