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

/** Identifiers are conservative: letters, digits, `_`, `-`, up to 64 chars. No dots (they separate parts). */
const ID = '[A-Za-z0-9_-]{1,64}';
const TOPIC_RE = new RegExp(`^(prices|auctions|trading|portfolio|risk|mobile)\\.(${ID})(\\.alerts)?$`);

export const SYSTEM_ALERTS_TOPIC = 'system.alerts';

export function parseTopic(topic: string): ParsedTopic | null {
  if (topic === SYSTEM_ALERTS_TOPIC) return { topic, kind: 'system_alerts', id: 'system' };
  const m = TOPIC_RE.exec(topic);
  if (!m) return null;
  const domain = m[1] as 'prices' | 'auctions' | 'trading' | 'portfolio' | 'risk' | 'mobile';
  const id = m[2] as string;
  const alerts = m[3] !== undefined;
  if (alerts && domain !== 'risk') return null;
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
