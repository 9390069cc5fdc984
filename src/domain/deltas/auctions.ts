/**
 * auctions.{auction_id}: the state machine open -> closed -> allotted and an aggregated bid histogram.
 * The topic is public and primary-auction bids are sealed, so bidders and individual bids never appear in
 * state or deltas: only bucket counts and amounts.
 */

export type BidBasis = 'yield' | 'price';

/** Bids whose yield (or price) falls in [from, to). */
export type Bucket = { from: number; to: number; count: number; amount: number };

export type BidTotals = { count: number; amount: number };

export type Allotment = { cutoff_yield: number; cutoff_price: number; allotted_amount: number; ts: string };

export type AuctionState = {
  auction_id: string;
  isin: string;
  status: 'open' | 'closed' | 'allotted';
  bid_basis: BidBasis;
  notified_amount: number | null;
  closes_at: string | null;
  opened_at: string;
  closed_at: string | null;
  bids: BidTotals;
  /** Ascending by `from`. */
  histogram: Bucket[];
  allotment: Allotment | null;
  updated_at: string;
};

/** An auction topic before its `auction.opened`: no state at all (a seq-0 snapshot's `{}`). */
export type UnopenedAuction = Record<string, never>;

export type AuctionOpenedDelta = {
  kind: 'auction_state';
  status: 'open';
  auction_id: string;
  isin: string;
  bid_basis: BidBasis;
  notified_amount: number | null;
  closes_at: string | null;
  ts: string;
};
export type AuctionClosedDelta = { kind: 'auction_state'; status: 'closed'; bids: BidTotals; ts: string };
/** `bucket`: the whole bucket the bid landed in, after it; `bids`: the auction's totals after it. */
export type AuctionBidDelta = { kind: 'auction_bid'; bid_basis: BidBasis; bucket: Bucket; bids: BidTotals; ts: string };
export type AuctionAllottedDelta = { kind: 'auction_allotted'; status: 'allotted' } & Allotment;
export type AuctionDelta = AuctionOpenedDelta | AuctionClosedDelta | AuctionBidDelta | AuctionAllottedDelta;

/**
 * The reducer only emits a delta the auction's status allows (open first, bids while open, …), so each
 * delta here finds the state it needs: an opened auction for everything but the opening.
 */
export function applyAuctionDelta(state: AuctionState | UnopenedAuction, delta: AuctionDelta): AuctionState {
  if (delta.kind === 'auction_state' && delta.status === 'open') {
    const { auction_id, isin, bid_basis, notified_amount, closes_at, ts } = delta;
    return { auction_id, isin, status: 'open', bid_basis, notified_amount, closes_at, opened_at: ts, closed_at: null, bids: { count: 0, amount: 0 }, histogram: [], allotment: null, updated_at: ts };
  }
  const opened = state as AuctionState;
  switch (delta.kind) {
    case 'auction_state':
      return { ...opened, status: 'closed', closed_at: delta.ts, updated_at: delta.ts };
    case 'auction_bid': {
      const { bucket } = delta;
      const histogram = [...opened.histogram.filter((b) => b.from !== bucket.from), bucket].sort((a, b) => a.from - b.from);
      return { ...opened, bids: delta.bids, histogram, updated_at: delta.ts };
    }
    case 'auction_allotted': {
      const { kind: _kind, status, ...allotment } = delta;
      return { ...opened, status, allotment, updated_at: delta.ts };
    }
  }
}
