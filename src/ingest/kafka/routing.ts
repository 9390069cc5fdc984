import type { DomainEvent } from '../../domain/events.js';

/** The Kafka topic families of the upstream contract; the full name is `{prefix}.{family}`. */
export const FAMILIES = ['market', 'auctions', 'trading', 'risk'] as const;
export type Family = (typeof FAMILIES)[number];

export function kafkaTopic(prefix: string, family: Family | 'dlq'): string {
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
