import type { JsonObject } from '../json.js';
import { parseTopic, type TopicKind } from '../topics.js';
import { applyAuctionDelta, type AuctionDelta, type AuctionState, type UnopenedAuction } from './auctions.js';
import { applyPortfolioDelta, freshPortfolio, type PortfolioState, type PositionDelta } from './portfolio.js';
import { applyPricesDelta, freshPrices, type PricesDelta, type PricesState } from './prices.js';
import { applyRiskAlertsDelta, applyRiskDelta, freshRisk, freshRiskAlerts, type BreachAlertDelta, type RiskAlertsState, type RiskDelta, type RiskState } from './risk.js';
import { applyTradingDelta, freshTrading, type OrderDelta, type TradingState } from './trading.js';

/**
 * Delta application: `applyDelta(state, payload)` is the next state of a topic, given the payload of its
 * next delta. It is the only way a topic's state changes: the projector's reducers decide *whether* an
 * event applies and compute its payload, then take the new state from `applyDelta` (projector/reducers/
 * shared.ts), and a client (@bondx/client) applies the deltas it receives with the very same function.
 * So a client folding deltas onto a snapshot holds exactly the server's state at every seq
 * (test/unit/deltas.test.ts). Pure, no Node APIs: it runs in browsers too.
 */

export * from './auctions.js';
export * from './portfolio.js';
export * from './prices.js';
export * from './risk.js';
export * from './trading.js';

/** Per topic kind with deltas: the state a snapshot carries and the payloads of its deltas. */
export interface TopicTypes {
  prices: { state: PricesState; delta: PricesDelta };
  auctions: { state: AuctionState | UnopenedAuction; delta: AuctionDelta };
  trading: { state: TradingState; delta: OrderDelta };
  portfolio: { state: PortfolioState; delta: PositionDelta };
  risk: { state: RiskState; delta: RiskDelta };
  risk_alerts: { state: RiskAlertsState; delta: BreachAlertDelta };
}

export type DeltaTopicKind = keyof TopicTypes;
export type DeltaPayload = TopicTypes[DeltaTopicKind]['delta'];
export type DeltaKind = DeltaPayload['kind'];

/** The state a payload applies to: that of the topic kind whose deltas include it. */
export type StateOf<D extends DeltaPayload> = {
  [K in DeltaTopicKind]: D extends TopicTypes[K]['delta'] ? TopicTypes[K]['state'] : never;
}[DeltaTopicKind];

/** Which topic kind each payload kind belongs to (total: a new payload kind must be placed here). */
const TOPIC_KIND_OF: { [K in DeltaKind]: DeltaTopicKind } = {
  l1: 'prices',
  l2: 'prices',
  trade: 'prices',
  auction_state: 'auctions',
  auction_bid: 'auctions',
  auction_allotted: 'auctions',
  order: 'trading',
  position: 'portfolio',
  metrics: 'risk',
  breach: 'risk',
  breach_alert: 'risk_alerts',
};

/** Whether a payload `kind` is one `applyDelta` knows (system alerts, for one, carry no replayable state). */
export function isDeltaKind(kind: string): kind is DeltaKind {
  return Object.hasOwn(TOPIC_KIND_OF, kind);
}

export function isDeltaTopicKind(kind: TopicKind): kind is DeltaTopicKind {
  return Object.values(TOPIC_KIND_OF).includes(kind as DeltaTopicKind);
}

/** The next state of a topic after the delta with `payload`. States of one topic kind only take its own payloads. */
export function applyDelta<D extends DeltaPayload>(state: StateOf<D>, payload: D): StateOf<D> {
  // Each case hands the state to its kind's applier; StateOf<D> guarantees it is that kind's state.
  const delta: DeltaPayload = payload;
  switch (delta.kind) {
    case 'l1':
    case 'l2':
    case 'trade':
      return applyPricesDelta(state as PricesState, delta) as StateOf<D>;
    case 'auction_state':
    case 'auction_bid':
    case 'auction_allotted':
      return applyAuctionDelta(state as AuctionState | UnopenedAuction, delta) as StateOf<D>;
    case 'order':
      return applyTradingDelta(state as TradingState, delta) as StateOf<D>;
    case 'position':
      return applyPortfolioDelta(state as PortfolioState, delta) as StateOf<D>;
    case 'metrics':
    case 'breach':
      return applyRiskDelta(state as RiskState, delta) as StateOf<D>;
    case 'breach_alert':
      return applyRiskAlertsDelta(state as RiskAlertsState, delta) as StateOf<D>;
  }
}

/**
 * A topic's state before its first entry (what the reducers fold the first event onto), or undefined for
 * a topic that can not exist. A seq-0 snapshot carries `{}`: clients start from this instead.
 */
export function initialState(topic: string): JsonObject | undefined {
  const parsed = parseTopic(topic);
  if (!parsed) return undefined;
  switch (parsed.kind) {
    case 'prices':
      return freshPrices(parsed.id);
    case 'trading':
      return freshTrading(parsed.id);
    case 'portfolio':
      return freshPortfolio(parsed.id);
    case 'risk':
      return freshRisk(parsed.id);
    case 'risk_alerts':
      return freshRiskAlerts(parsed.id);
    case 'auctions':
    case 'mobile':
    case 'system_alerts':
      return {};
  }
}
