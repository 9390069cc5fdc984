/**
 * The delivery record (README "Audit: delivery record"): what each gateway sent each connection of each
 * user, per topic, as ranges of seqs — never one record per message. This module is the record's shape,
 * the pure reading of it (a range is written again at every flush while it grows: the latest write of a
 * range is the range) and its in-memory log; Redis keeps it in `redis/redis-deliveries.ts`, Kafka in
 * `ingest/kafka/delivery-log.ts`.
 */

/** How a range was delivered. */
export const DELIVERY_KINDS = ['snapshot', 'live', 'resume', 'resync', 'conflated', 'replay'] as const;
export type DeliveryKind = (typeof DELIVERY_KINDS)[number];

/**
 * Why a range closed. `pause`: market data paused (slow client, background mode); `resync`: the topic's
 * history was reset under it; `gap`: the next delivery did not continue it; `done`: complete by itself
 * (a snapshot once sent, a resume's catch-up once live follows, a replay that ended).
 */
export const DELIVERY_ENDS = ['unsubscribe', 'disconnect', 'pause', 'slow_consumer', 'shutdown', 'resync', 'gap', 'done'] as const;
export type DeliveryEnd = (typeof DELIVERY_ENDS)[number];

/** Who a range went to: one connection of one gateway. */
export interface DeliveryTarget {
  gateway: string;
  conn: string;
  user: string;
  transport: string;
  stream: string;
  device_type: string;
}

/** One range as of one write (schemas/kafka/delivery.json). */
export interface DeliveryRecord extends DeliveryTarget {
  /** When `from_seq` was sent: the range opened. */
  ts: string;
  /** When everything up to `to_seq` had been sent: the flush that wrote this record, or the range's close. */
  last_ts: string;
  topic: string;
  epoch: string;
  kind: DeliveryKind;
  /** Both inclusive; a snapshot kind (snapshot, resync, conflated) is the one seq whose state was sent. */
  from_seq: number;
  to_seq: number;
  /** null while the range is open (a later write of it may extend it). */
  end: DeliveryEnd | null;
}

export interface DeliveryQuery {
  user: string;
  topic?: string;
  /** Ranges still open at or after `since` (ISO-8601). */
  since?: string;
  /** Ranges opened before `until` (ISO-8601). */
  until?: string;
}

/** Where a gateway's ranges go and where they are read back from (per user). */
export interface DeliveryLog {
  append(records: readonly DeliveryRecord[]): Promise<void>;
  /** Every record written for `user`, in write order (a range may appear several times). */
  read(user: string): Promise<DeliveryRecord[]>;
  close(): Promise<void>;
}

const rangeKey = (r: DeliveryRecord): string => `${r.gateway}\n${r.conn}\n${r.topic}\n${r.epoch}\n${r.kind}\n${r.from_seq}\n${r.ts}`;

/** One record per range, its latest write (the furthest `to_seq`; a closed one over an open one), ordered by opening. */
export function latestRanges(records: readonly DeliveryRecord[]): DeliveryRecord[] {
  const byRange = new Map<string, DeliveryRecord>();
  for (const record of records) {
    const key = rangeKey(record);
    const seen = byRange.get(key);
    if (!seen || record.to_seq > seen.to_seq || (record.to_seq === seen.to_seq && seen.end === null)) byRange.set(key, record);
  }
  return [...byRange.values()].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
}

export function matchesQuery(record: DeliveryRecord, query: DeliveryQuery): boolean {
  return (
    record.user === query.user &&
    (query.topic === undefined || record.topic === query.topic) &&
    (query.until === undefined || record.ts < query.until) &&
    (query.since === undefined || record.end === null || record.last_ts >= query.since)
  );
}

/** The user's ranges that match `query`, each once, ordered by opening. */
export async function queryDeliveries(log: Pick<DeliveryLog, 'read'>, query: DeliveryQuery): Promise<DeliveryRecord[]> {
  return latestRanges(await log.read(query.user)).filter((r) => matchesQuery(r, query));
}

/** `records` grouped by `keyOf` (users, partitions), each group in write order: what one write of a log sends together. */
export function groupRecords<K>(records: readonly DeliveryRecord[], keyOf: (record: DeliveryRecord) => K): Map<K, DeliveryRecord[]> {
  const groups = new Map<K, DeliveryRecord[]>();
  for (const record of records) {
    const key = keyOf(record);
    const group = groups.get(key);
    if (group) group.push(record);
    else groups.set(key, [record]);
  }
  return groups;
}

/** Embedded mode's log: the newest `maxPerUser` records of each user, in this process. */
export class MemoryDeliveryLog implements DeliveryLog {
  private readonly byUser = new Map<string, DeliveryRecord[]>();

  constructor(private readonly maxPerUser: number) {}

  async append(records: readonly DeliveryRecord[]): Promise<void> {
    for (const record of records) {
      let list = this.byUser.get(record.user);
      if (!list) this.byUser.set(record.user, (list = []));
      list.push(record);
      if (list.length > this.maxPerUser) list.splice(0, list.length - this.maxPerUser);
    }
  }

  async read(user: string): Promise<DeliveryRecord[]> {
    return [...(this.byUser.get(user) ?? [])];
  }

  async close(): Promise<void> {}
}
