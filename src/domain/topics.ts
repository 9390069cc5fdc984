import { TOPIC_ID } from './ids.js';
import { isValidIsin } from './isin.js';

/**
 * Topic naming, parsing and ownership. A topic is `{domain}.{id}` (plus `.alerts` for risk alerts);
 * each topic belongs to exactly one stream (Socket.IO namespace / WebSocket path).
 */

export const STREAMS = ['market', 'auction', 'trading', 'risk', 'mobile'] as const;
export type Stream = (typeof STREAMS)[number];

export type TopicKind = 'prices' | 'auctions' | 'trading' | 'portfolio' | 'risk' | 'risk_alerts' | 'mobile' | 'system_alerts';

export interface ParsedTopic {
  topic: string;
  kind: TopicKind;
  /** isin, auction_id or user_id */
  id: string;
  /** The user that owns the topic, for per-user topics; undefined for public ones. */
  owner?: string;
}

export const SYSTEM_ALERTS_TOPIC = 'system.alerts';

type Domain = 'prices' | 'auctions' | 'trading' | 'portfolio' | 'risk' | 'mobile';

/**
 * Whether an id can exist in a domain, by the rules the event schemas apply: prices are keyed by
 * ISIN (shape and ISO 6166 check digit), everything else by a topic id (user_id, auction_id). A topic
 * whose id no event could ever carry is refused, not served as an empty snapshot forever.
 */
const isTopicId = (id: string): boolean => TOPIC_ID.test(id);
const VALID_ID: Record<Domain, (id: string) => boolean> = {
  prices: isValidIsin,
  auctions: isTopicId,
  trading: isTopicId,
  portfolio: isTopicId,
  risk: isTopicId,
  mobile: isTopicId,
};

function isDomain(s: string): s is Domain {
  return Object.hasOwn(VALID_ID, s);
}

/** The topic's kind, id and owner; null for a topic that does not or can not exist. */
export function parseTopic(topic: string): ParsedTopic | null {
  if (topic === SYSTEM_ALERTS_TOPIC) return { topic, kind: 'system_alerts', id: 'system' };
  // Ids never contain dots (neither pattern allows one): a topic is `domain.id` or `risk.id.alerts`.
  const [domain = '', id = '', suffix, ...rest] = topic.split('.');
  const alerts = suffix === 'alerts' && domain === 'risk';
  if (rest.length > 0 || (suffix !== undefined && !alerts) || !isDomain(domain) || !VALID_ID[domain](id)) return null;
  switch (domain) {
    case 'prices':
    case 'auctions':
      return { topic, kind: domain, id };
    case 'risk':
      return { topic, kind: alerts ? 'risk_alerts' : 'risk', id, owner: id };
    default:
      return { topic, kind: domain, id, owner: id };
  }
}

/**
 * The entity a topic belongs to: `isin:<ISIN>` for prices, `auction:<id>`, `user:<id>` for a user's
 * trading, portfolio, risk, alerts and mobile topics; a name outside the grammar (system.alerts, a test's
 * own names) is its own entity. Every event touches the topics of one entity (projector's project.ts), so
 * the store keeps an entity's topics, dedup window and applied source offsets together (one Redis
 * Cluster hash slot, src/store/redis/keys.ts).
 */
export function entityOf(topic: string): string {
  const parsed = parseTopic(topic);
  if (parsed?.owner !== undefined) return userEntity(parsed.owner);
  if (parsed?.kind === 'prices') return `isin:${parsed.id}`;
  if (parsed?.kind === 'auctions') return `auction:${parsed.id}`;
  return topic;
}

/** The entity of a user's topics (and of the user's connection counts). */
export function userEntity(user: string): string {
  return `user:${user}`;
}

export const topicOf = {
  prices: (isin: string) => `prices.${isin}`,
  auction: (auctionId: string) => `auctions.${auctionId}`,
  trading: (userId: string) => `trading.${userId}`,
  portfolio: (userId: string) => `portfolio.${userId}`,
  risk: (userId: string) => `risk.${userId}`,
  riskAlerts: (userId: string) => `risk.${userId}.alerts`,
  mobile: (userId: string) => `mobile.${userId}`,
};

/** Which topic kinds a stream serves. `/mobile` multiplexes everything a user may see. */
const STREAM_KINDS: Record<Stream, readonly TopicKind[]> = {
  market: ['prices'],
  auction: ['auctions'],
  trading: ['trading', 'portfolio'],
  risk: ['risk', 'risk_alerts', 'system_alerts'],
  mobile: ['prices', 'auctions', 'trading', 'portfolio', 'risk', 'risk_alerts', 'mobile'],
};

export function streamServes(stream: Stream, kind: TopicKind): boolean {
  return STREAM_KINDS[stream].includes(kind);
}

/** The stream a client follows a topic kind on: the first that serves it (`/mobile`, which serves nearly all, is last). */
export function streamFor(kind: TopicKind): Stream {
  return STREAMS.find((stream) => streamServes(stream, kind)) ?? 'mobile';
}

/** The topics a plain-WebSocket connection to `/api/v1/ws/{stream}/{id}` subscribes to on connect. */
export function defaultTopics(stream: Stream, id: string): string[] {
  switch (stream) {
    case 'market':
      return [topicOf.prices(id)];
    case 'auction':
      return [topicOf.auction(id)];
    case 'trading':
      return [topicOf.trading(id), topicOf.portfolio(id)];
    case 'risk':
      return [topicOf.risk(id), topicOf.riskAlerts(id)];
    case 'mobile':
      return [topicOf.trading(id), topicOf.portfolio(id), topicOf.riskAlerts(id)];
  }
}

export function isStream(s: string): s is Stream {
  return (STREAMS as readonly string[]).includes(s);
}
