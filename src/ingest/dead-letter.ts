import { DEFAULTS } from '../config/config.js';
import { pruneNesting } from '../domain/json.js';
import type { Metrics } from '../observability/metrics.js';

/** An upstream event that could not be applied, kept with the reason so nothing is lost silently. */
export interface DeadLetter {
  /** When it was dead-lettered (ISO-8601 UTC). */
  at: string;
  reason: string;
  /** Where it came from: `http`, `simulator`, `kafka:bondx.market/2@1234`, … */
  source: string;
  /** The raw event as received (parsed JSON when it parsed, else the raw text). */
  event: unknown;
}

/**
 * A dead letter for `raw`, now. The event is kept as received, except nesting beyond MAX_JSON_DEPTH
 * (then its reason says so): a letter must stay serialisable for the store, the DLQ and the HTTP API.
 */
export function deadLetter(raw: unknown, reason: string, source: string): DeadLetter {
  return { at: new Date().toISOString(), reason, source, event: pruneNesting(raw) };
}

export interface DeadLetterStore {
  add(letter: DeadLetter): Promise<void>;
  /** Newest first. */
  list(limit: number): Promise<DeadLetter[]>;
  count(): Promise<number>;
}

/** Embedded-mode dead-letter store: a bounded in-memory list (the total count is kept exactly). Redis: redis-dead-letter.ts. */
export class MemoryDeadLetterStore implements DeadLetterStore {
  private readonly letters: DeadLetter[] = [];
  private total = 0;

  /** `maxLen`: DEAD_LETTERS_MAX_LEN. */
  constructor(private readonly maxLen: number = DEFAULTS.DEAD_LETTERS_MAX_LEN) {}

  async add(letter: DeadLetter): Promise<void> {
    this.total++;
    this.letters.push(letter);
    if (this.letters.length > this.maxLen) this.letters.shift();
  }

  async list(limit: number): Promise<DeadLetter[]> {
    return this.letters.slice(-limit).reverse();
  }

  async count(): Promise<number> {
    return this.total;
  }
}

/** A dead-letter store that counts every letter kept (ingest and the Kafka publisher's pre-validation). */
export function countingDeadLetters(store: DeadLetterStore, metrics: Metrics): DeadLetterStore {
  return {
    add: async (letter) => {
      await store.add(letter);
      metrics.deadLettered(letter.source);
    },
    list: (limit) => store.list(limit),
    count: () => store.count(),
  };
}
