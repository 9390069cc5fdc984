import type { Logger } from '../observability/logger.js';
import type { CheckpointSigner } from '../store/checkpoint.js';
import type { Checkpoint, HistoryEntry, SignedCheckpoint } from '../store/topic-store.js';

/** Where signed checkpoints go: the Kafka audit topic, or the store (no Kafka). Declared here, where it is used. */
export interface CheckpointSink {
  append(checkpoints: SignedCheckpoint[]): Promise<void>;
}

/**
 * Signs, every interval, the head of each topic the projector committed to since the last round (its
 * newest entry: `{topic, epoch, seq, hash, ts}`) and appends the checkpoints to the sink. Quiet topics
 * cost nothing. A round that can not be appended is retried with the next one (the newer heads win).
 */
export class Checkpointer {
  private changed = new Map<string, Checkpoint>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();

  constructor(
    private readonly signer: CheckpointSigner,
    private readonly sink: CheckpointSink,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** The projector's commit hook: the newest entry per topic is the head to sign. */
  readonly committed = (entries: readonly HistoryEntry[]): void => {
    for (const { topic, epoch, seq, hash, ts } of entries) this.changed.set(topic, { topic, epoch, seq, hash, ts });
  };

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /** Signs and appends the heads changed since the last round; resolves when they are appended (or failed). */
  flush(): Promise<void> {
    this.round = this.round.then(async () => {
      if (this.changed.size === 0) return;
      const heads = this.changed;
      this.changed = new Map();
      try {
        await this.sink.append([...heads.values()].map((head) => this.signer.sign(head)));
      } catch (err) {
        this.log.warn({ err, topics: heads.size }, 'appending audit checkpoints failed; retrying with the next round');
        for (const [topic, head] of heads) if (!this.changed.has(topic)) this.changed.set(topic, head);
      }
    });
    return this.round;
  }

  /** Stops the timer and signs what changed since the last round, so a clean shutdown leaves its heads signed. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
