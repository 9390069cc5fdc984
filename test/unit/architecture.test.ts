import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layers of README "Architecture", enforced on the imports of src/**.ts: a module may import its
 * own layer or one listed before it, never one after; and no module imports itself through others
 * (type-only imports count: a cycle of types is a tangle for the reader all the same). A small regex
 * over the sources is enough here: every import in src/ is a static `from '…'` or an `import('…')`.
 */
const LAYERS = [
  'domain', // event contract, topics, ids
  'config', // environment, defaults
  'protocol', // client messages and error codes
  'store', // TopicStore / LiveFeed, memory and Redis; the Redis key layout
  'observability', // logs, metrics, alerts, health
  'flow', // token bucket, connection admission
  'projector', // pure reducers, commits through the store
  'ingest', // validation, dead letters, Kafka, publishers: feeds the projector
  'simulator', // an upstream: publishes events
  'replay', // audit replay: a topic's history by seq or time, as NDJSON or CSV
  'gateway', // feeds, rooms, sessions, auth, HTTP API: reads the store
  'transports', // Socket.IO and WebSocket adapters over the gateway
  'runtime', // composes the roles
  'cli', // the bondx command
] as const;

const SRC = resolve(new URL('../../src/', import.meta.url).pathname);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Relative specifiers of every static import/export-from and dynamic import, resolved to .ts files. */
function importsOf(file: string, text: string): string[] {
  const specifiers = [...text.matchAll(/\b(?:import|export)\b[^;'"`]*?\bfrom\s*'([^']+)'|\bimport\s*\(\s*'([^']+)'\s*\)|^\s*import\s*'([^']+)'/gm)].map((m) => m[1] ?? m[2] ?? m[3] ?? '');
  return specifiers.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')));
}

const files = sources(SRC);
const graph = new Map(files.map((file) => [file, importsOf(file, readFileSync(file, 'utf8'))]));
const name = (file: string) => relative(SRC, file);
const layerOf = (file: string) => name(file).split('/')[0] ?? '';
const rank = (file: string) => (LAYERS as readonly string[]).indexOf(layerOf(file));

describe('architecture: layers point one way', () => {
  it('finds the imports (the check is not vacuous)', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(graph.get(join(SRC, 'runtime/system.ts'))).toContain(join(SRC, 'runtime/gateway-server.ts'));
    expect(graph.get(join(SRC, 'cli/bondx.ts'))).toContain(join(SRC, 'cli/produce.ts')); // a dynamic import
  });

  it('every folder of src/ has a layer, and every relative import resolves to a file', () => {
    expect(files.filter((f) => rank(f) < 0).map(name)).toEqual([]);
    const dangling = [...graph].flatMap(([from, tos]) => tos.filter((to) => !existsSync(to)).map((to) => `${name(from)} -> ${name(to)}`));
    expect(dangling).toEqual([]);
  });

  it('no module imports from a later layer', () => {
    const upward = [...graph].flatMap(([from, tos]) => tos.filter((to) => rank(to) > rank(from)).map((to) => `${name(from)} (${layerOf(from)}) -> ${name(to)} (${layerOf(to)})`));
    expect(upward).toEqual([]);
  });

  it("README's folder table lists the layers in this order", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const folders = [...readme.slice(readme.indexOf('## Architecture'), readme.indexOf('### Delivery guarantees')).matchAll(/^\| `src\/([a-z]+)` \|/gm)].map((m) => m[1]);
    expect(folders).toEqual([...LAYERS]);
  });

  it('no import cycles', () => {
    expect(cycles(graph).map((cycle) => cycle.map(name).join(' -> '))).toEqual([]);
  });
});

/** One cycle per strongly connected component with more than one module (or a self-import), via Tarjan. */
function cycles(g: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop() as string;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (g.get(v) ?? []).includes(v)) found.push(component.reverse());
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return found;
}
