import type { ChildProcess } from 'node:child_process';
import { spawnTsx } from '../../test/support/processes.js';
import { hrNow } from './stats.js';

/**
 * The benchmarks' processes: a parent starts client (or server) children with an IPC channel and
 * calls into them with a tiny request/response protocol; `runMain` runs a benchmark's main with its
 * clean-up on success, error and Ctrl-C. Children are started and tracked by the kit's processes.ts.
 */

interface Request {
  rpc: 'req';
  id: number;
  cmd: string;
  args: unknown;
}

interface Response {
  rpc: 'res';
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

const isMessage = <M extends Request | Response>(m: unknown, rpc: M['rpc']): m is M => typeof m === 'object' && m !== null && (m as { rpc?: unknown }).rpc === rpc;

/** Parent side: typed calls into a child started with an IPC channel. */
export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (m: unknown) => {
      if (!isMessage<Response>(m, 'res')) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result ?? null);
      else p.reject(new Error(`${name}: ${m.error ?? 'failed'}`));
    });
    child.on('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (code ${code}, signal ${signal}) during a call`));
      this.pending.clear();
    });
  }

  /** Calls `cmd` of the child; `args` travel as JSON (structured clone), so plain data only. */
  call<T>(cmd: string, args: unknown = null, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: '${cmd}' timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ rpc: 'req', id, cmd, args } satisfies Request);
    });
  }
}

/** A handler receives the args its caller sent: the child declares their type. */
export type Handler = (args: never) => Promise<unknown> | unknown;

/** Child side: answers the parent's calls (and the clock probe); exits when the parent goes away. */
export function serveRpc(handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error('must be started by a benchmark, with an IPC channel (bench/lib/rpc.ts startChild)');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: unknown) => {
    if (!isMessage<Request>(m, 'req')) return;
    const handler = m.cmd === CLOCK ? () => hrNow() : handlers[m.cmd];
    const reply = (res: Response) => {
      if (process.connected) process.send?.(res);
    };
    if (!handler) {
      reply({ rpc: 'res', id: m.id, ok: false, error: `unknown command ${m.cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => (handler as (a: unknown) => unknown)(m.args))
      .then(
        (result) => reply({ rpc: 'res', id: m.id, ok: true, result: result ?? null }),
        (err: unknown) => reply({ rpc: 'res', id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
}

const CLOCK = '__clock';

/**
 * Offset of a child's hrNow() from ours (child − parent, ms), NTP style: the sample with the shortest
 * IPC round trip, assuming the reply was stamped half-way.
 */
export async function clockOffset(rpc: RpcClient, rounds = 25): Promise<{ offset: number; rtt: number }> {
  let best = { offset: 0, rtt: Number.POSITIVE_INFINITY };
  for (let i = 0; i < rounds; i++) {
    const t0 = hrNow();
    const child = await rpc.call<number>(CLOCK);
    const t1 = hrNow();
    if (t1 - t0 < best.rtt) best = { offset: child - (t0 + t1) / 2, rtt: t1 - t0 };
  }
  return best;
}

export interface Child {
  name: string;
  proc: ChildProcess;
  rpc: RpcClient;
}

/** Starts `bench/<file>` with an IPC channel (it answers through serveRpc); its output goes to ours. */
export function startChild(name: string, file: string, nodeFlags: string[] = []): Child {
  const proc = spawnTsx(`bench/${file}`, [], { nodeFlags, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return { name, proc, rpc: new RpcClient(name, proc) };
}

/** Disconnects the IPC channel (the child exits on it), then kills it if it is still alive after 5 s. */
export async function stopChild(child: Child): Promise<void> {
  const { proc } = child;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  if (proc.connected) proc.disconnect();
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Runs a benchmark: `main`, then `cleanup` (also on error and on SIGINT/SIGTERM); exits 0, 1 on an
 * error, 130 on a signal, open handles or not. Children still running die with this process.
 */
export function runMain(main: () => Promise<void>, cleanup: () => Promise<void> = async () => undefined): void {
  let cleaning: Promise<void> | undefined;
  const clean = () => (cleaning ??= cleanup().catch((err: unknown) => console.error('clean-up failed:', err)));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void clean().finally(() => process.exit(130)));
  main().then(
    () => clean().finally(() => process.exit(0)),
    (err: unknown) => {
      console.error(err);
      void clean().finally(() => process.exit(1));
    },
  );
}
