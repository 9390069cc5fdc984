// Summary table and target check over the Artillery JSON reports written by scripts/load.sh.
//
//   node artillery/summary.mjs REPORT_DIR scenario...
//
// Per scenario it reads REPORT_DIR/{scenario}.json (artillery --output), {scenario}.samples (one
// "queue connections" line per second, sampled from /metrics and /api/v1/ws/health during the run)
// and {scenario}.rc (artillery's exit code, non-zero when an `ensure` check failed). Exit code 1
// when any scenario misses a target.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const TARGETS = { successPct: 95, p95Ms: 100, dropPct: 1, queue: 1000 };

const [dir, ...scenarios] = process.argv.slice(2);
if (!dir || scenarios.length === 0) {
  process.stderr.write('usage: node artillery/summary.mjs REPORT_DIR scenario...\n');
  process.exit(2);
}

const rows = [];
const problems = [];
for (const name of scenarios) {
  const file = join(dir, `${name}.json`);
  const rc = existsSync(join(dir, `${name}.rc`)) ? Number(readFileSync(join(dir, `${name}.rc`), 'utf8').trim()) : NaN;
  if (!existsSync(file)) {
    rows.push({ name, missing: true });
    problems.push(`${name}: no report (artillery exit ${rc})`);
    continue;
  }
  const agg = JSON.parse(readFileSync(file, 'utf8')).aggregate ?? {};
  const c = agg.counters ?? {};
  const lat = agg.summaries?.['bondx.latency_ms'] ?? {};
  const samples = existsSync(join(dir, `${name}.samples`))
    ? readFileSync(join(dir, `${name}.samples`), 'utf8')
        .split('\n')
        .map((l) => l.trim().split(/\s+/).map(Number))
        .filter((p) => p.length === 2 && p.every(Number.isFinite))
    : [];
  const attempted = c['bondx.connections.attempted'] ?? 0;
  const succeeded = c['bondx.connections.succeeded'] ?? 0;
  const deltas = c['bondx.deltas'] ?? 0;
  const gaps = c['bondx.gaps'] ?? 0;
  const conflated = c['bondx.conflated'] ?? 0;
  const row = {
    name,
    attempted,
    succeeded,
    peak: samples.length ? Math.max(...samples.map((s) => s[1])) : NaN,
    successPct: attempted ? (100 * succeeded) / attempted : 0,
    deltas,
    p50: lat.p50 ?? lat.median,
    p95: lat.p95,
    p99: lat.p99,
    gaps,
    duplicates: c['bondx.duplicates'] ?? 0,
    resyncs: c['bondx.resyncs'] ?? 0,
    dropPct: deltas ? (100 * (gaps + conflated)) / deltas : 100,
    queue: samples.length ? Math.max(...samples.map((s) => s[0])) : NaN,
    errors: c['bondx.errors'] ?? 0,
    rc,
  };
  const fails = [];
  if (!(row.successPct > TARGETS.successPct)) fails.push(`connection success ${row.successPct.toFixed(2)}% (target > ${TARGETS.successPct}%)`);
  if (!(row.p95 < TARGETS.p95Ms)) fails.push(`p95 latency ${row.p95 ?? 'n/a'} ms (target < ${TARGETS.p95Ms} ms)`);
  if (!(row.dropPct < TARGETS.dropPct)) fails.push(`drop rate ${row.dropPct.toFixed(3)}% = (gaps ${gaps} + conflated ${conflated}) / deltas ${deltas} (target < ${TARGETS.dropPct}%)`);
  if (!(row.queue < TARGETS.queue)) fails.push(`max outbound queue ${Number.isNaN(row.queue) ? 'not sampled' : row.queue} (target < ${TARGETS.queue})`);
  if (rc !== 0) fails.push(`artillery exited ${rc} (an ensure check in artillery/${name}.yml failed, or the run itself failed)`);
  row.pass = fails.length === 0;
  for (const f of fails) problems.push(`${name}: ${f}`);
  rows.push(row);
}

const fmt = (v, d = 0) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : 'n/a');
const header = ['scenario', 'conns', 'peak', 'success%', 'deltas', 'p50 ms', 'p95 ms', 'p99 ms', 'gaps', 'dups', 'resyncs', 'drop%', 'max queue', 'errors', 'result'];
const table = rows.map((r) =>
  r.missing
    ? [r.name, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', 'FAIL']
    : [r.name, fmt(r.attempted), fmt(r.peak), fmt(r.successPct, 2), fmt(r.deltas), fmt(r.p50, 1), fmt(r.p95, 1), fmt(r.p99, 1), fmt(r.gaps), fmt(r.duplicates), fmt(r.resyncs), fmt(r.dropPct, 3), fmt(r.queue), fmt(r.errors), r.pass ? 'PASS' : 'FAIL'],
);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
const line = (cells) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
const out = [
  '',
  `targets: connection success > ${TARGETS.successPct}%, p95 latency < ${TARGETS.p95Ms} ms, drop rate (gaps+conflated)/deltas < ${TARGETS.dropPct}%, outbound queue < ${TARGETS.queue}`,
  line(header),
  line(widths.map((w) => '-'.repeat(w))),
  ...table.map(line),
  '',
  ...(problems.length ? ['FAILED:', ...problems.map((p) => `  - ${p}`)] : [`load: all ${rows.length} scenario(s) passed`]),
];
process.stdout.write(`${out.join('\n')}\n`);
process.exit(problems.length ? 1 : 0);
