/** What the stepped fan-out benchmarks call passing, noisy and settled: one home for all of them. */

/** A step passes with p99 at most this (ms)… */
export const P99_LIMIT_MS = 50;
/** …and at least this share of the expected messages delivered (%). */
export const DELIVERY_LIMIT_PCT = 99;
/** Steps during which other processes used more than this (% of one core) are re-run, within a budget. */
export const NOISY_OTHER_PCT = 50;
/** Longest wait after a step for its backlog to clear before the next step starts (s). */
export const QUIESCE_S = 5;
