import type { OrderEvent, OrderEventType, PositionEvent, RiskBreachEvent, RiskMetricsEvent } from '../domain/events.js';
import { modifiedDuration } from './instruments.js';
import { CRORE, LOT, round, ticksToPrice, type Emit, type GenContext, type Level, type Market, type MarketState } from './market.js';

/**
 * The demo users' trading, pure: orders through their lifecycle (accepted, partially filled, filled,
 * cancelled, rejected), the positions their fills build, and risk metrics with limit breaches.
 * Position `mtm`, risk `exposure` and `dv01` (₹ per basis point, net, signed) in ₹.
 */

/** Gross exposure limit per demo user, ₹ (₹ 250 crore). */
const EXPOSURE_LIMIT = 250 * CRORE;
/** Net DV01 limit per demo user, ₹ per bp. */
const DV01_LIMIT = 1_500_000;
const WARN_AT = 0.8;
const MAX_OPEN_ORDERS = 3;

const REJECT_REASONS: readonly string[] = [
  'price outside the dynamic price band',
  'exposure limit exceeded',
  'security not open for trading',
  'insufficient funds in settlement account',
];

interface SimOrder {
  id: string;
  isin: string;
  side: 'buy' | 'sell';
  price: number;
  quantity: number;
  filled: number;
}

interface Holding {
  quantity: number;
  avgPrice: number;
}

interface UserState {
  id: string;
  favourites: MarketState[];
  /** Orders accepted and not yet filled/cancelled. */
  open: SimOrder[];
  positions: Map<string, Holding>;
  /** Highest breach severity already reported per limit: 0 none, 1 warning, 2 critical. */
  breachLevel: Map<string, number>;
  maxLots: number;
}

export class Trading {
  private readonly users: UserState[];
  private orderSeq = 0;

  constructor(
    private readonly ctx: GenContext,
    private readonly market: Market,
    userIds: readonly string[],
  ) {
    this.users = userIds.map((id, i) => ({
      id,
      // Each user trades a handful of bonds, so positions build up meaningfully.
      favourites: ctx.rng.sample(market.states, 4),
      open: [],
      positions: new Map(),
      breachLevel: new Map(),
      // The first (demo) user trades larger tickets, so limit warnings actually show up in demos.
      maxLots: i === 0 ? 20 : 10,
    }));
  }

  /** An order of a random user: a fill or cancel of an open one, or a new order. */
  orderAction(emit: Emit): void {
    const { rng } = this.ctx;
    const u = rng.pick(this.users);
    if (u.open.length > 0 && (u.open.length >= MAX_OPEN_ORDERS || rng.chance(0.6))) {
      const o = rng.pick(u.open);
      const remaining = o.quantity - o.filled;
      const r = rng.random();
      if (r < 0.5 && remaining > LOT) {
        this.fill(u, o, LOT * rng.int(1, remaining / LOT - 1), emit);
      } else if (r < 0.85) {
        this.fill(u, o, remaining, emit);
      } else {
        this.closeOrder(u, o);
        emit<OrderEvent>({ ...this.orderFields(u, o, 'order.cancelled'), reason: 'cancelled by user' });
      }
      return;
    }
    // A new order, biased to reduce large positions so exposure wanders rather than drifts.
    const m = rng.pick(u.favourites);
    const pos = u.positions.get(m.inst.isin)?.quantity ?? 0;
    const pBuy = 0.5 - Math.max(-0.35, Math.min(0.35, pos / 300));
    const side = rng.chance(pBuy) ? 'buy' : 'sell';
    const bestBid = (m.desired.bid[0] as Level).ticks;
    const bestAsk = (m.desired.ask[0] as Level).ticks;
    // Passive (join/improve) or aggressive (cross) limit prices.
    const ticks = side === 'buy' ? (rng.chance(0.5) ? bestBid + rng.int(0, 1) : bestAsk) : rng.chance(0.5) ? bestAsk - rng.int(0, 1) : bestBid;
    const o: SimOrder = {
      id: `ORD-${this.ctx.tag}-${(++this.orderSeq).toString().padStart(6, '0')}`,
      isin: m.inst.isin,
      side,
      price: ticksToPrice(ticks),
      quantity: LOT * rng.int(1, u.maxLots),
      filled: 0,
    };
    if (rng.chance(0.08)) {
      emit<OrderEvent>({ ...this.orderFields(u, o, 'order.rejected'), reason: rng.pick(REJECT_REASONS) });
      return;
    }
    u.open.push(o);
    emit<OrderEvent>(this.orderFields(u, o, 'order.accepted'));
  }

  /** Periodic mark-to-market: a position refresh and the user's risk metrics. */
  riskAction(emit: Emit): void {
    const { rng } = this.ctx;
    const u = rng.pick(this.users);
    const held = [...u.positions.entries()].filter(([, h]) => h.quantity !== 0);
    if (held.length > 0) {
      const [isin, h] = rng.pick(held);
      this.emitPosition(u, this.market.of(isin), h, emit);
    }
    this.emitRisk(u, emit);
  }

  private orderFields(u: UserState, o: SimOrder, type: OrderEventType): Omit<OrderEvent, 'event_id' | 'ts'> {
    return { type, user_id: u.id, order_id: o.id, isin: o.isin, side: o.side, price: o.price, quantity: o.quantity, filled_quantity: o.filled };
  }

  private closeOrder(u: UserState, o: SimOrder): void {
    u.open = u.open.filter((x) => x !== o);
  }

  /** A fill: the order update, the public trade print, the new position and the user's risk. */
  private fill(u: UserState, o: SimOrder, qty: number, emit: Emit): void {
    o.filled += qty;
    const done = o.filled >= o.quantity;
    if (done) this.closeOrder(u, o);
    emit<OrderEvent>(this.orderFields(u, o, done ? 'order.filled' : 'order.partially_filled'));
    const m = this.market.of(o.isin);
    this.market.emitTrade(m, o.price, qty, emit);

    const h = u.positions.get(o.isin) ?? { quantity: 0, avgPrice: o.price };
    const delta = o.side === 'buy' ? qty : -qty;
    const next = h.quantity + delta;
    if (h.quantity === 0 || Math.sign(h.quantity) === Math.sign(delta)) {
      // Adding to the position: volume-weighted average price.
      h.avgPrice = (h.avgPrice * Math.abs(h.quantity) + o.price * qty) / (Math.abs(h.quantity) + qty);
    } else if (next === 0 || Math.sign(next) !== Math.sign(h.quantity)) {
      // Closed or flipped: the remainder was opened at this fill's price.
      h.avgPrice = o.price;
    } // else reduced: the average price of what is left is unchanged
    h.quantity = next;
    u.positions.set(o.isin, h);
    this.emitPosition(u, m, h, emit);
    this.emitRisk(u, emit);
  }

  private emitPosition(u: UserState, m: MarketState, h: Holding, emit: Emit): void {
    const mark = this.market.midPrice(m);
    emit<PositionEvent>({
      type: 'position',
      user_id: u.id,
      isin: m.inst.isin,
      quantity: h.quantity,
      avg_price: round(h.avgPrice, 4),
      // Unrealised P&L in ₹: quantity is crore of face, prices per 100.
      mtm: round(((mark - h.avgPrice) * h.quantity * CRORE) / 100, 2),
    });
  }

  private emitRisk(u: UserState, emit: Emit): void {
    let exposure = 0;
    let dv01 = 0;
    for (const [isin, h] of u.positions) {
      if (h.quantity === 0) continue;
      const m = this.market.of(isin);
      const value = (h.quantity * CRORE * this.market.midPrice(m)) / 100;
      exposure += Math.abs(value);
      dv01 += value * modifiedDuration(m.inst.coupon, this.market.years(m), m.yieldPct) * 1e-4;
    }
    emit<RiskMetricsEvent>({
      type: 'risk.metrics',
      user_id: u.id,
      exposure: round(exposure, 2),
      dv01: round(dv01, 2),
      limit_utilisation: round(exposure / EXPOSURE_LIMIT, 4),
    });
    this.checkLimit(u, 'gross_exposure', exposure, EXPOSURE_LIMIT, emit);
    this.checkLimit(u, 'dv01', Math.abs(dv01), DV01_LIMIT, emit);
  }

  /** Emits a breach when a limit's level rises (80% -> warning, 100% -> critical); re-arms when back under. */
  private checkLimit(u: UserState, limit: string, value: number, max: number, emit: Emit): void {
    const level = value >= max ? 2 : value >= WARN_AT * max ? 1 : 0;
    const prev = u.breachLevel.get(limit) ?? 0;
    if (level < prev) {
      // Hysteresis: re-arm only once clearly (5%) back under the breached threshold, so a value
      // hovering around a threshold does not produce a stream of alerts.
      const breached = prev === 2 ? max : WARN_AT * max;
      if (value < 0.95 * breached) u.breachLevel.set(limit, level);
      return;
    }
    if (level === prev) return;
    u.breachLevel.set(limit, level);
    emit<RiskBreachEvent>({
      type: 'risk.breach',
      user_id: u.id,
      limit,
      value: round(value, 2),
      threshold: level === 2 ? max : WARN_AT * max,
      severity: level === 2 ? 'critical' : 'warning',
    });
  }
}
