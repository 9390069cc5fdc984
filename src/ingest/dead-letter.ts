import { pruneNesting } from '../domain/json.js';

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

/** Embedded-mode dead-letter store: a bounded in-memory list (the total count is kept exactly). */
export class MemoryDeadLetterStore implements DeadLetterStore {
  private readonly letters: DeadLetter[] = [];
  private total = 0;

  constructor(private readonly maxLen = 10_000) {}

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
