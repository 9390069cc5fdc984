import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Process control for tests and benchmarks: TypeScript entry points as real child processes — the
 * `bondx` command (`runBondx`), its roles (`bondx projector`, `bondx gateway`) for end-to-end tests,
 * and the benchmarks' client children (with an IPC channel, bench/lib/rpc.ts).
 *
 * Children run as `node [flags] --import tsx <file>`: one OS process each. (The `node_modules/.bin/tsx`
 * launcher would fork the real node process as its own child and only relay signals, so a SIGKILL would
 * hit the launcher and leave the actual process running: not a crash.)
 *
 * Every child is tracked: a process `exit` hook SIGKILLs what is still running if this process ends
 * first, and `stopAll()` (call it in afterAll) stops the role processes.
 */

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = 'src/cli/bondx.ts';
/** Lines of stdout/stderr kept per child, for failure messages. */
const KEEP_LINES = 400;

const children = new Set<ChildProcess>();

process.once('exit', () => {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

export interface SpawnOptions {
  /** The whole environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Flags for node itself, e.g. `--max-old-space-size=4096`. */
  nodeFlags?: string[];
  stdio?: StdioOptions;
}

/** Starts `file` (relative to the repository) under tsx, tracked until it exits. */
export function spawnTsx(file: string, args: string[] = [], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), '--import', 'tsx', file, ...args], { cwd: ROOT, env: options.env ?? process.env, stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

// ---------------------------------------------------------------------------------------------
// The bondx command

export interface CliRun {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (SIGKILL after `timeoutMs`: null). */
  exited(timeoutMs?: number): Promise<number | null>;
  /** Resolves once stdout matches `pattern` (rejects on exit or timeout), with the match. */
  printed(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** Runs `bondx <args>` with this process's environment, minus `unset`, plus `env`: for tests of the command line itself. */
export function runBondx(args: string[], env: Record<string, string> = {}, unset: string[] = []): CliRun {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const name of unset) delete childEnv[name];
  const child = spawnTsx(CLI, args, { env: childEnv });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async exited(timeoutMs = 15_000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exit;
      } finally {
        clearTimeout(timer);
      }
    },
    printed(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`timed out waiting for ${pattern} in stdout:\n${out}\n${err}`)), timeoutMs);
        const check = () => {
          const match = pattern.exec(out);
          if (match) finish(undefined, match);
        };
        const onExit = () => finish(new Error(`bondx exited before printing ${pattern}:\n${out}\n${err}`));
        function finish(error: Error | undefined, match?: RegExpMatchArray) {
          clearTimeout(timer);
          child.stdout?.off('data', check);
          child.off('exit', onExit);
          if (match) resolve(match);
          else reject(error);
        }
        child.stdout?.on('data', check);
        child.once('exit', onExit);
        check();
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Role processes

export type Role = 'projector' | 'gateway';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RoleProcess {
  readonly role: Role;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Resolves when the child has exited (never rejects). */
  readonly exited: Promise<Exit>;
  /** Undefined while running. */
  exit(): Exit | undefined;
  /** Sends `signal` (default SIGTERM) and resolves when the child has exited (SIGKILL after `timeoutMs`). */
  kill(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** Recent stdout lines (JSON logs). */
  stdout(): string[];
  /** Recent stderr lines. */
  stderr(): string[];
  /** Parsed JSON log lines of stdout, in order (non-JSON lines skipped). */
  logs(): Record<string, unknown>[];
  /** A readable tail of both streams, for assertion messages. */
  describe(lines?: number): string;
  /** Calls `listener` with every later stdout line; returns the unsubscribe. */
  onLine(listener: (line: string) => void): () => void;
}

export interface GatewayProcess extends RoleProcess {
  readonly role: 'gateway';
  /** `http://127.0.0.1:<port>` the child actually bound (PORT=0). */
  readonly url: string;
}

const running = new Set<RoleProcess>();

/**
 * Spawns `bondx <role>` with `env` on top of this process's environment plus test defaults
 * (HOST=127.0.0.1, PORT=0, LOG_LEVEL=info, and WS_WORKERS=1: a gateway is one process, whose pid is
 * the gateway, unless a test asks for workers). Resolves once the process is spawned.
 */
export function spawnRole(role: Role, env: Record<string, string>, nodeFlags: string[] = []): RoleProcess {
  const proc = spawnTsx(CLI, [role], { nodeFlags, env: { ...process.env, HOST: '127.0.0.1', PORT: '0', PROMETHEUS_PORT: '0', LOG_LEVEL: 'info', KAFKAJS_NO_PARTITIONER_WARNING: '1', WS_WORKERS: '1', ...env } });
  if (proc.pid === undefined) throw new Error(`could not spawn bondx ${role}`);
  const pid = proc.pid;
  const out = lineCollector();
  const err = lineCollector();
  const logs: Record<string, unknown>[] = [];
  const lineListeners = new Set<(line: string) => void>();
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) =>
    out.push(chunk, (line) => {
      if (line.startsWith('{')) {
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
          if (logs.length > KEEP_LINES * 4) logs.splice(0, logs.length - KEEP_LINES * 4);
        } catch {
          // a partial or non-JSON line: kept as text only
        }
      }
      for (const listener of lineListeners) listener(line);
    }),
  );
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => err.push(chunk));

  let exitInfo: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    proc.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      running.delete(child);
      resolve(exitInfo);
    });
  });

  const child: RoleProcess = {
    role,
    proc,
    pid,
    exited,
    exit: () => exitInfo,
    async kill(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (exitInfo) return exitInfo;
      proc.kill(signal);
      const timer = setTimeout(() => {
        if (!exitInfo) proc.kill('SIGKILL');
      }, timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    stdout: () => out.lines(),
    stderr: () => err.lines(),
    logs: () => [...logs],
    describe(lines = 40) {
      const status = exitInfo ? `exited code=${exitInfo.code} signal=${exitInfo.signal}` : 'running';
      return [
        `bondx ${role} (pid ${pid}, ${status})`,
        '--- stdout (tail) ---',
        ...out.lines().slice(-lines),
        '--- stderr (tail) ---',
        ...err.lines().slice(-lines),
      ].join('\n');
    },
    onLine(listener) {
      lineListeners.add(listener);
      return () => lineListeners.delete(listener);
    },
  };
  running.add(child);
  return child;
}

/** Starts `bondx gateway` and resolves once it logged `gateway listening` (its URL, PORT=0 resolved). */
export async function startGateway(env: Record<string, string>, timeoutMs = 30_000, nodeFlags: string[] = []): Promise<GatewayProcess> {
  const child = spawnRole('gateway', env, nodeFlags);
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no "gateway listening" within ${timeoutMs} ms`)), timeoutMs);
      const stop = child.onLine((line) => {
        const url = listeningUrl(line);
        if (url) finish(undefined, url);
      });
      void child.exited.then((e) => finish(new Error(`exited before listening (code=${e.code} signal=${e.signal})`)));
      // Lines that arrived before the listener was attached (none: same tick), to be safe.
      for (const line of child.stdout()) {
        const url = listeningUrl(line);
        if (url) finish(undefined, url);
      }
      function finish(error: Error | undefined, url?: string) {
        clearTimeout(timer);
        stop();
        if (error) reject(error);
        else resolve(url as string);
      }
    });
    return Object.assign(child, { role: 'gateway' as const, url });
  } catch (error) {
    const detail = child.describe();
    await child.kill('SIGKILL');
    throw new Error(`bondx gateway did not start: ${(error as Error).message}\n${detail}`);
  }
}

/**
 * Starts `bondx projector`. It logs nothing when its consumer is ready, so this resolves once the
 * process is up (spawned and still alive after a short grace period); tests then wait for its effect
 * (projected heads in Redis) rather than for a log line.
 */
export async function startProjector(env: Record<string, string>, graceMs = 300, nodeFlags: string[] = []): Promise<RoleProcess> {
  const child = spawnRole('projector', env, nodeFlags);
  const early = await Promise.race([child.exited, new Promise<undefined>((r) => setTimeout(r, graceMs))]);
  if (early) throw new Error(`bondx projector exited at once (code=${early.code} signal=${early.signal})\n${child.describe()}`);
  return child;
}

/** Resolves with the exit, or rejects after `timeoutMs` (the child keeps running). */
export async function waitForExit(child: RoleProcess, timeoutMs = 15_000): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bondx ${child.role} (pid ${child.pid}) did not exit within ${timeoutMs} ms\n${child.describe()}`)), timeoutMs);
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Stops every child still running: SIGTERM, then SIGKILL after `timeoutMs`. For afterAll. */
export async function stopAll(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
  await Promise.all([...running].map((child) => child.kill(signal, timeoutMs)));
}

function listeningUrl(line: string): string | undefined {
  if (!line.startsWith('{') || !line.includes('gateway listening')) return undefined;
  try {
    const log = JSON.parse(line) as { msg?: unknown; url?: unknown };
    return log.msg === 'gateway listening' && typeof log.url === 'string' ? log.url : undefined;
  } catch {
    return undefined;
  }
}

/** Splits a stream into lines, keeping the last KEEP_LINES. */
function lineCollector(): { push(chunk: string, onLine?: (line: string) => void): void; lines(): string[] } {
  const kept: string[] = [];
  let partial = '';
  return {
    push(chunk, onLine) {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        kept.push(line);
        onLine?.(line);
      }
      if (kept.length > KEEP_LINES) kept.splice(0, kept.length - KEEP_LINES);
    },
    lines: () => (partial ? [...kept, partial] : [...kept]),
  };
}
