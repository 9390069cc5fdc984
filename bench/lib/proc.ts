import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Another process's CPU and memory from /proc (Linux): servers the benchmark did not write (Centrifugo),
 * or ours as an OS process (with its cluster workers), measured the same way.
 */

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on Linux). */
const TICKS_PER_S = 100;

interface ProcStat {
  ppid: number;
  /** utime + stime, clock ticks. */
  ticks: number;
}

function stat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may itself contain spaces.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}

/** `pid` and every process below it (cluster workers, a launcher's child). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const child = Number(name);
    if (!Number.isInteger(child)) continue;
    const s = stat(child);
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(child);
    children.set(s.ppid, list);
  }
  const tree: number[] = [];
  for (const queue = [pid]; queue.length > 0; ) {
    const p = queue.pop() as number;
    tree.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return tree;
}

/** CPU time (user + system) the processes have used so far, ms (10 ms resolution). */
export function cpuMsOf(pids: number[]): number {
  return pids.reduce((ms, pid) => ms + ((stat(pid)?.ticks ?? 0) * 1000) / TICKS_PER_S, 0);
}

/** Resident memory of the processes, bytes (VmRSS). */
export function rssOf(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      total += Number(kb ?? 0) * 1024;
    } catch {
      // gone
    }
  }
  return total;
}

/** A loopback TCP port free right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
