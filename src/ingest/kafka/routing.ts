import { Partitioners } from 'kafkajs';
import type { DomainEvent } from '../../domain/events.js';
import { parseTopic } from '../../domain/topics.js';

/** The Kafka topic families of the upstream contract; the full name is `{prefix}.{family}`. */
export const FAMILIES = ['market', 'auctions', 'trading', 'risk'] as const;
export type Family = (typeof FAMILIES)[number];

/**
 * `dlq`: dead letters; `audit`: signed hash-chain checkpoints (kept forever); `checkpoints`: replay
 * checkpoints (kept forever); `deliveries`: the gateways' delivery record, keyed by user (kept forever).
 */
export function kafkaTopic(prefix: string, family: Family | 'dlq' | 'audit' | 'checkpoints' | 'deliveries'): string {
  return `${prefix}.${family}`;
}

/**
 * Where an event goes and its key. Keys are the entity (isin / auction_id / user_id), so all events
 * of one entity land on one partition and keep their order.
 */
export function routeEvent(event: DomainEvent): { family: Family; key: string } {
  switch (event.type) {
    case 'quote':
    case 'book':
    case 'trade':
      return { family: 'market', key: event.isin };
    case 'auction.opened':
    case 'auction.bid':
    case 'auction.closed':
    case 'auction.allotted':
      return { family: 'auctions', key: event.auction_id };
    case 'order.accepted':
    case 'order.partially_filled':
    case 'order.filled':
    case 'order.cancelled':
    case 'order.rejected':
    case 'position':
      return { family: 'trading', key: event.user_id };
    case 'risk.metrics':
    case 'risk.breach':
      return { family: 'risk', key: event.user_id };
  }
}

/** The source stream name a partition's offsets are stored under with the projection. */
export function sourceStream(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}

/**
 * Where a projected topic's events are: the family and entity key `routeEvent` gives every event that
 * touches it (prices.<isin> -> market/<isin>, trading.<user> and portfolio.<user> -> trading/<user>, …).
 * Null for topics no Kafka event feeds (system alerts, mobile streams).
 */
export function topicSource(topic: string): { family: Family; key: string } | null {
  const parsed = parseTopic(topic);
  switch (parsed?.kind) {
    case 'prices':
      return { family: 'market', key: parsed.id };
    case 'auctions':
      return { family: 'auctions', key: parsed.id };
    case 'trading':
    case 'portfolio':
      return { family: 'trading', key: parsed.id };
    case 'risk':
    case 'risk_alerts':
      return { family: 'risk', key: parsed.id };
    default:
      return null;
  }
}

/** Per partition count, the producer's partitioner and the metadata it reads: made once (a partitioner draws random bytes when made). */
const partitioners = new Map<number, (key: string) => number>();

/** The partition a key lands on among `partitions`: the producer's own (murmur2) partitioner, asked directly. */
export function partitionOf(key: string, partitions: number): number {
  let partitioner = partitioners.get(partitions);
  if (!partitioner) {
    const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
    // A keyed message's partition depends on the key alone, so one partitioner serves every call.
    const partition = Partitioners.DefaultPartitioner();
    partitioner = (k) => partition({ topic: '', partitionMetadata, message: { key: k, value: null } });
    partitioners.set(partitions, partitioner);
  }
  return partitioner(key);
}

/**
 * The record's timestamp as the commit time: kept in Kafka with the record, so projecting it again (after
 * a Redis loss, or a rebuild) gives its entries the same `ts`. A record without one (-1) commits at the clock.
 */
export function recordTime(timestamp: string): { ts?: string } {
  const ms = Number(timestamp);
  return Number.isSafeInteger(ms) && ms >= 0 ? { ts: new Date(ms).toISOString() } : {};
}
