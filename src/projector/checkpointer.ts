import type { Logger } from '../observability/logger.js';
import { genesisHash } from '../store/chain.js';
import type { CheckpointSigner } from '../store/checkpoint.js';
import type { Checkpoint, HistoryEntry, SignedCheckpoint, TopicHead } from '../store/topic-store.js';

/** Where signed checkpoints go: the Kafka audit topic, or the store (no Kafka). Declared here, where it is used. */
export interface CheckpointSink {
  append(checkpoints: SignedCheckpoint[]): Promise<void>;
}

/**
 * Topics other writers commit to (system.alerts: every process publishes its alerts there, most of them
 * without a signing key): each round reads their heads from the store, and signs those that moved.
 */
export interface WatchedTopics {
  topics: string[];
  heads(topics: string[]): Promise<Map<string, TopicHead>>;
}

/**
 * Signs, every interval, the head of each topic the projector committed to since the last round (its
 * newest entry: `{topic, epoch, seq, hash, ts}`), and of each watched topic whose head moved, and appends
 * the checkpoints to the sink. Quiet topics cost nothing. A round that can not be appended is retried
 * with the next one (the newer heads win).
 */
export class Checkpointer {
  private changed = new Map<string, Checkpoint>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();
  /** Per watched topic, the head last signed (`epoch/seq/hash`). */
  private readonly watchedSigned = new Map<string, string>();

  constructor(
    private readonly signer: CheckpointSigner,
    private readonly sink: CheckpointSink,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly watched?: WatchedTopics,
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
      const moved = await this.movedWatched();
      for (const [topic, head] of moved) if (!this.changed.has(topic)) this.changed.set(topic, head);
      if (this.changed.size === 0) return;
      const heads = this.changed;
      this.changed = new Map();
      try {
        await this.sink.append([...heads.values()].map((head) => this.signer.sign(head)));
        for (const [topic, head] of moved) this.watchedSigned.set(topic, headKey(head));
      } catch (err) {
        this.log.warn({ err, topics: heads.size }, 'appending audit checkpoints failed; retrying with the next round');
        for (const [topic, head] of heads) if (!this.changed.has(topic)) this.changed.set(topic, head);
      }
    });
    return this.round;
  }

  /** The watched topics whose head is not the one last signed; none when they can not be read (tried again next round). */
  private async movedWatched(): Promise<Map<string, Checkpoint>> {
    const moved = new Map<string, Checkpoint>();
    if (!this.watched) return moved;
    try {
      for (const [topic, { epoch, seq, hash, ts }] of await this.watched.heads(this.watched.topics)) {
        const head = { topic, epoch, seq, hash, ts };
        // A renewed epoch's head before its first entry is hash(0): there is no entry of that epoch to sign.
        if (seq > 0 && hash !== genesisHash(topic, epoch) && this.watchedSigned.get(topic) !== headKey(head)) moved.set(topic, head);
      }
    } catch (err) {
      this.log.warn({ err, topics: this.watched.topics }, 'reading the heads of watched topics failed; retrying with the next round');
    }
    return moved;
  }

  /** Stops the timer and signs what changed since the last round, so a clean shutdown leaves its heads signed. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}

function headKey(head: Checkpoint): string {
  return `${head.epoch}/${head.seq}/${head.hash}`;
}
