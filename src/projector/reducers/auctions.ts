import type {
  AuctionAllottedEvent,
  AuctionBidEvent,
  AuctionClosedEvent,
  AuctionEvent,
  AuctionOpenedEvent,
} from '../../domain/events.js';
import { topicOf } from '../../domain/topics.js';
import { existing, finish, reject, type ProjectResult, type States, type Step } from './shared.js';

/**
 * auctions.{auction_id}: the state machine open -> closed -> allotted and an aggregated bid histogram.
 * The topic is public and primary-auction bids are sealed, so bidders and individual bids never appear in
 * state or deltas: only bucket counts and amounts.
 */

/** Histogram bucket widths in hundredths, so bucketing is integer arithmetic: 1 bp of yield (yields are in percent), 0.05 of price. */
const BUCKET_HUNDREDTHS = { yield: 1n, price: 5n } as const;

type Basis = keyof typeof BUCKET_HUNDREDTHS;

/** Bids whose yield (or price) falls in [from, to). */
type Bucket = { from: number; to: number; count: number; amount: number };

type Allotment = { cutoff_yield: number; cutoff_price: number; allotted_amount: number; ts: string };

export type AuctionState = {
  auction_id: string;
  isin: string;
  status: 'open' | 'closed' | 'allotted';
  bid_basis: Basis;
  notified_amount: number | null;
  closes_at: string | null;
  opened_at: string;
  closed_at: string | null;
  bids: { count: number; amount: number };
  /** Ascending by `from`. */
  histogram: Bucket[];
  allotment: Allotment | null;
  updated_at: string;
};

export function reduceAuction(event: AuctionEvent, states: States): ProjectResult {
  const topic = topicOf.auction(event.auction_id);
  const state = existing<AuctionState>(states, topic);
  return finish({ topic, step: stepFor(state, event) });
}

function stepFor(state: AuctionState | undefined, event: AuctionEvent): Step<AuctionState> {
  if (event.type === 'auction.opened') return state ? reject(`auction ${event.auction_id} already opened`) : open(event);
  if (!state) return reject(`auction ${event.auction_id} was never opened`);
  if (state.isin !== event.isin) return reject(`isin ${event.isin} does not match auction's ${state.isin}`);
  switch (event.type) {
    case 'auction.bid':
      return state.status === 'open' ? bid(state, event) : reject(`bid on ${state.status} auction ${state.auction_id}`);
    case 'auction.closed':
      return state.status === 'open' ? close(state, event) : reject(`close of ${state.status} auction ${state.auction_id}`);
    case 'auction.allotted':
      return state.status === 'closed' ? allot(state, event) : reject(`allotment of ${state.status} auction ${state.auction_id}`);
  }
}

function open(e: AuctionOpenedEvent): Step<AuctionState> {
  const state: AuctionState = {
    auction_id: e.auction_id,
    isin: e.isin,
    status: 'open',
    bid_basis: e.bid_basis ?? 'yield',
    notified_amount: e.notified_amount ?? null,
    closes_at: e.closes_at ?? null,
    opened_at: e.ts,
    closed_at: null,
    bids: { count: 0, amount: 0 },
    histogram: [],
    allotment: null,
    updated_at: e.ts,
  };
  const { status, isin, bid_basis, notified_amount, closes_at } = state;
  return { state, payload: { kind: 'auction_state', status, isin, bid_basis, notified_amount, closes_at, ts: e.ts } };
}

function bid(state: AuctionState, e: AuctionBidEvent): Step<AuctionState> {
  const basis = state.bid_basis;
  const value = e[basis];
  if (value === undefined) return reject(`auction ${state.auction_id} takes bids by ${basis}; bid ${e.bid_id} has none`);
  const bucket = bucketWith(state.histogram, value, BUCKET_HUNDREDTHS[basis], e.amount);
  const histogram = [...state.histogram.filter((b) => b.from !== bucket.from), bucket].sort((a, b) => a.from - b.from);
  const bids = { count: state.bids.count + 1, amount: state.bids.amount + e.amount };
  return {
    state: { ...state, bids, histogram, updated_at: e.ts },
    payload: { kind: 'auction_bid', bid_basis: basis, bucket, bids, ts: e.ts },
  };
}

/** The bucket holding `value` with one more bid of `amount`. */
function bucketWith(histogram: readonly Bucket[], value: number, widthHundredths: bigint, amount: number): Bucket {
  const [from, to] = bucketEdges(value, widthHundredths);
  const current = histogram.find((b) => b.from === from);
  return { from, to, count: (current?.count ?? 0) + 1, amount: (current?.amount ?? 0) + amount };
}

/**
 * [from, to) of the bucket holding `value`, decided on the decimal the upstream wrote (JSON's shortest
 * round-trip form), in integers: float division misplaces values near an edge (100.04999999999 / 0.05,
 * 1234567.89 / 0.01) and any epsilon that fixes some of them misplaces others.
 */
function bucketEdges(value: number, widthHundredths: bigint): [number, number] {
  const [digits = '', exponent = '0'] = String(value).split('e');
  const [whole = '', fraction = ''] = digits.split('.');
  // value = units × 10^-scale
  const units = BigInt(whole + fraction);
  const scale = fraction.length - Number(exponent);
  // Both in units of 10^-common (at least hundredths, the widths' unit).
  const common = Math.max(scale, 2);
  const scaled = units * 10n ** BigInt(common - scale);
  const width = widthHundredths * 10n ** BigInt(common - 2);
  // BigInt division truncates toward zero; buckets floor (a negative yield belongs below its edge).
  const index = scaled / width - (scaled % width < 0n ? 1n : 0n);
  const hundredths = (n: bigint) => Number(`${n * widthHundredths}e-2`);
  return [hundredths(index), hundredths(index + 1n)];
}

function close(state: AuctionState, e: AuctionClosedEvent): Step<AuctionState> {
  return {
    state: { ...state, status: 'closed', closed_at: e.ts, updated_at: e.ts },
    payload: { kind: 'auction_state', status: 'closed', bids: state.bids, ts: e.ts },
  };
}

function allot(state: AuctionState, e: AuctionAllottedEvent): Step<AuctionState> {
  const allotment: Allotment = {
    cutoff_yield: e.cutoff_yield,
    cutoff_price: e.cutoff_price,
    allotted_amount: e.allotted_amount,
    ts: e.ts,
  };
  return {
    state: { ...state, status: 'allotted', allotment, updated_at: e.ts },
    payload: { kind: 'auction_allotted', status: 'allotted', ...allotment },
  };
}
