import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from '../../test/support/processes.js';

/** How the benchmarks print and keep their figures: number formats, markdown tables, bench/results/*.json. */

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 10) return ms.toFixed(2);
  if (ms < 100) return ms.toFixed(1);
  return ms.toFixed(0);
}

export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

export function fmtPct(n: number, digits = 0): string {
  return Number.isFinite(n) ? `${n.toFixed(digits)}%` : 'n/a';
}

export function fmtNum(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

/** A markdown table (first column left-aligned, the rest right-aligned). */
export function table(header: string[], rows: string[][]): string {
  const align = header.map((_, i) => (i === 0 ? '---' : '--:'));
  return [header, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** What the figures were measured on. */
export function machine(): { node: string; socketio: string; cpus: number; cpu: string; memGb: number } {
  const socketio = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'socket.io', 'package.json'), 'utf8')) as { version: string }).version;
  return { node: process.versions.node, socketio, cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memGb: Math.round(totalmem() / 2 ** 30) };
}

/** Writes `file` (default `bench/results/<name>.json`; NaN and Infinity become null) and returns its path. */
export function writeResults(name: string, data: Record<string, unknown>, file = join(ROOT, 'bench', 'results', `${name}.json`)): string {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ benchmark: name, at: new Date().toISOString(), env: machine(), ...data }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  return file;
}
