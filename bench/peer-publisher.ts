import { Agent, request } from 'node:http';
import { serveRpc } from './lib/rpc.js';
import { ownCpuMs } from './lib/stats.js';
import { pace, type PaceResult } from './lib/steps.js';
import { benchQuote, quoteEnvelope } from './lib/system.js';

/**
 * Publisher child of `bench/peers.ts`: the same cadence for every peer, over each one's HTTP API.
 * Every 1 ms tick, what fell due goes out as ONE request (ours: `POST /api/v1/events` with an array of
 * quote events; Centrifugo: `POST /api/batch` of `publish` commands whose data is the envelope our
 * gateway sends for that quote), sent without waiting for the reply so a slow server does not slow
 * the cadence. Requests still unanswered and failures are reported.
 */

export type PublishTarget = { kind: 'ours'; url: string; token: string } | { kind: 'centrifugo'; url: string; apiKey: string; channel: string };

export interface PublishRunArgs {
  target: PublishTarget;
  step: number;
  rate: number;
  durationMs: number;
}

export type PublishRunResult = PaceResult & { requests: number; failed: number; firstError: string | null; maxInFlight: number };

const agent = new Agent({ keepAlive: true, maxSockets: 16 });
let inFlight = 0;
let maxInFlight = 0;
let failed = 0;
let firstError: string | null = null;
let seq = 0;
let requests = 0;

function fail(message: string): void {
  failed++;
  firstError ??= message;
}

function post(url: string, headers: Record<string, string>, body: string): void {
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (text += chunk));
    res.on('end', () => {
      inFlight--;
      // Centrifugo answers a batch 200 with per-command errors in the body.
      if (res.statusCode !== 200 || text.includes('"error"')) fail(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
    });
  });
  req.on('error', (err) => {
    inFlight--;
    fail(err.message);
  });
  req.end(body);
}

function sender(target: PublishTarget, step: number): { add(n: number): void; flush(): Promise<void> } {
  const due: number[] = [];
  return {
    add: (n) => void due.push(n),
    async flush() {
      if (due.length === 0) return;
      const ns = due.splice(0);
      if (target.kind === 'ours') {
        post(`${target.url}/api/v1/events`, { authorization: `Bearer ${target.token}` }, JSON.stringify(ns.map((n) => benchQuote(step, n))));
      } else {
        const commands = ns.map((n) => ({ publish: { channel: target.channel, data: quoteEnvelope(benchQuote(step, n), ++seq, 'centrifugo') } }));
        post(`${target.url}/api/batch`, { 'x-api-key': target.apiKey }, JSON.stringify({ commands }));
      }
      requests++;
    },
  };
}

async function run(args: PublishRunArgs): Promise<PublishRunResult> {
  requests = 0;
  failed = 0;
  firstError = null;
  maxInFlight = inFlight;
  const batch = sender(args.target, args.step);
  const result = await pace(args.rate, args.durationMs, batch.add, batch.flush);
  return { ...result, requests, failed, firstError, maxInFlight };
}

serveRpc({
  run: (a: PublishRunArgs) => run(a),
  cpu: () => ownCpuMs(),
  inFlight: () => ({ inFlight, failed, firstError }),
});
