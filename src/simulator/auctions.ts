import type { AuctionAllottedEvent, AuctionBidEvent, AuctionClosedEvent, AuctionOpenedEvent } from '../domain/events.js';
import { priceFromYield } from './instruments.js';
import { LOT, round, type Emit, type GenContext, type Market, type MarketState } from './market.js';

/**
 * RBI-style primary auctions, pure: one at a time, opened -> bids… -> closed -> allotted, then a pause;
 * bids scatter around where the street expects the cut-off, and the secondary market re-prices towards
 * the cut-off once allotted.
 */

interface AuctionState {
  id: string;
  market: MarketState;
  notified: number;
  /** Where the street expects the cut-off; bids scatter around it. */
  expectedCutoff: number;
  targetBids: number;
  bids: { yieldPct: number; amount: number }[];
  phase: 'open' | 'closed';
}

export class Auctions {
  private auction: AuctionState | null = null;
  /** Auction actions to skip before the next auction opens. */
  private cooldown = 0;
  private idBase = '';
  private idNo = 0;
  private bidSeq = 0;

  /**
   * `bidders`: who bids; `actionsPerSecond`: how often this generator is asked for an action, to
   * estimate when the bidding window closes.
   */
  constructor(
    private readonly ctx: GenContext,
    private readonly market: Market,
    private readonly bidders: readonly string[],
    private readonly actionsPerSecond: number,
  ) {}

  /** One step of the cycle, at `ts`. */
  action(ts: string, emit: Emit): void {
    const a = this.auction;
    if (a === null) {
      if (this.cooldown > 0) {
        this.cooldown--;
        this.market.quoteAction(emit); // keep the batch non-empty
        return;
      }
      this.open(ts, emit);
    } else if (a.phase === 'open' && a.bids.length < a.targetBids) {
      this.bid(a, emit);
    } else if (a.phase === 'open') {
      a.phase = 'closed';
      emit<AuctionClosedEvent>({ type: 'auction.closed', auction_id: a.id, isin: a.market.inst.isin });
    } else {
      this.allot(a, emit);
      this.auction = null;
      this.cooldown = 3 + this.ctx.rng.int(0, 3);
    }
  }

  private open(ts: string, emit: Emit): void {
    const { rng } = this.ctx;
    // RBI-style id from the opening date and time (`RBI-2026-11-26-143012`), so a restarted simulator
    // does not re-use the ids of auctions already in a persistent store (the projector would refuse a
    // second `auction.opened`). Two auctions opening in the same second get a `-2`, `-3`… suffix.
    const base = `RBI-${ts.slice(0, 10)}-${ts.slice(11, 13)}${ts.slice(14, 16)}${ts.slice(17, 19)}`;
    this.idNo = base === this.idBase ? this.idNo + 1 : 1;
    this.idBase = base;
    const id = this.idNo === 1 ? base : `${base}-${this.idNo}`;
    const market = this.market.pick();
    const notified = rng.pick([4000, 6000, 8000, 10000, 12000]);
    const targetBids = 20 + rng.int(0, 20);
    this.auction = { id, market, notified, expectedCutoff: market.yieldPct + rng.gauss() * 0.01, targetBids, bids: [], phase: 'open' };
    // Rough wall-clock estimate of when the bidding window ends.
    const closesAt = new Date(Date.parse(ts) + Math.round(((targetBids + 1) / this.actionsPerSecond) * 1000));
    emit<AuctionOpenedEvent>({
      type: 'auction.opened',
      auction_id: id,
      isin: market.inst.isin,
      notified_amount: notified,
      bid_basis: 'yield',
      closes_at: closesAt.toISOString(),
    });
  }

  private bid(a: AuctionState, emit: Emit): void {
    const { rng } = this.ctx;
    const yieldPct = round(a.expectedCutoff + rng.gauss() * 0.025, 4);
    // Bid-to-cover around 2x: amounts sum to ~2.2x notified over the whole auction.
    const mean = (a.notified * 2.2) / a.targetBids;
    const amount = Math.max(LOT, Math.round((mean * (0.2 + 1.6 * rng.random())) / LOT) * LOT);
    a.bids.push({ yieldPct, amount });
    emit<AuctionBidEvent>({
      type: 'auction.bid',
      auction_id: a.id,
      isin: a.market.inst.isin,
      bid_id: `${a.id}-B${(++this.bidSeq).toString().padStart(5, '0')}`,
      user_id: rng.pick(this.bidders),
      yield: yieldPct,
      amount,
    });
  }

  /** Uniform-yield style allotment: accept the lowest yields until the notified amount is covered. */
  private allot(a: AuctionState, emit: Emit): void {
    const sorted = [...a.bids].sort((x, y) => x.yieldPct - y.yieldPct);
    let covered = 0;
    let cutoff = a.expectedCutoff;
    for (const b of sorted) {
      covered += b.amount;
      cutoff = b.yieldPct;
      if (covered >= a.notified) break;
    }
    cutoff = round(cutoff, 4);
    const m = a.market;
    emit<AuctionAllottedEvent>({
      type: 'auction.allotted',
      auction_id: a.id,
      isin: m.inst.isin,
      cutoff_yield: cutoff,
      cutoff_price: round(priceFromYield(m.inst.coupon, this.market.years(m), cutoff), 4),
      allotted_amount: Math.min(a.notified, covered),
    });
    // The secondary market re-prices towards the cut-off.
    m.yieldPct += 0.5 * (cutoff - m.yieldPct);
  }
}
