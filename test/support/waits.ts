/** Waiting, for tests and benchmarks alike: one sleep, one poll-until, one bounded wait. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `predicate` every `pollMs` until it holds; after `timeoutMs` rejects with `what` (a function is
 * read only then, so it can describe the state at the timeout, e.g. a child process's log tail).
 */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what: string | (() => string) = 'condition', pollMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(pollMs);
  }
}

/** The value of `promise`, or undefined if it has not settled within `ms`. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise, sleep(ms).then(() => undefined)]);
}
