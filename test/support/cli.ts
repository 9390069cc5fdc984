import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * `bondx <args>` as a real child process (`node --import tsx src/cli/bondx.ts`), for tests of the
 * command line itself: exit codes, what it prints. Role processes with logs and kill: processes.ts.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CliRun {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (SIGKILL after `timeoutMs`: null). */
  exited(timeoutMs?: number): Promise<number | null>;
  /** Resolves once stdout matches `pattern` (rejects on exit or timeout), with the match. */
  printed(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** Runs bondx with this process's environment, minus `unset`, plus `env`. */
export function runBondx(args: string[], env: Record<string, string> = {}, unset: string[] = []): CliRun {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const name of unset) delete childEnv[name];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bondx.ts', ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
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
