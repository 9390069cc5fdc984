import type { AuctionDelta, AuctionState, Bucket } from '../../domain/deltas/index.js';
import type { AuctionAllottedEvent, AuctionBidEvent, AuctionEvent, AuctionOpenedEvent } from '../../domain/events.js';
import { topicOf } from '../../domain/topics.js';
import { existing, finish, reject, type ProjectResult, type States, type Step } from './shared.js';

/** auctions.{auction_id}: which events the auction's status allows, and the bucket each bid lands in. */

/** Histogram bucket widths in hundredths, so bucketing is integer arithmetic: 1 bp of yield (yields are in percent), 0.05 of price. */
const BUCKET_HUNDREDTHS = { yield: 1n, price: 5n } as const;

export function reduceAuction(event: AuctionEvent, states: States): ProjectResult {
  const topic = topicOf.auction(event.auction_id);
  const state = existing<AuctionState>(states, topic);
  return finish({ topic, state: state ?? {}, step: stepFor(state, event) });
}

function stepFor(state: AuctionState | undefined, event: AuctionEvent): Step<AuctionDelta> {
  if (event.type === 'auction.opened') return state ? reject(`auction ${event.auction_id} already opened`) : open(event);
  if (!state) return reject(`auction ${event.auction_id} was never opened`);
  if (state.isin !== event.isin) return reject(`isin ${event.isin} does not match auction's ${state.isin}`);
  switch (event.type) {
    case 'auction.bid':
      return state.status === 'open' ? bid(state, event) : reject(`bid on ${state.status} auction ${state.auction_id}`);
    case 'auction.closed':
      return state.status === 'open' ? { kind: 'auction_state', status: 'closed', bids: state.bids, ts: event.ts } : reject(`close of ${state.status} auction ${state.auction_id}`);
    case 'auction.allotted':
      return state.status === 'closed' ? allot(event) : reject(`allotment of ${state.status} auction ${state.auction_id}`);
  }
}

function open(e: AuctionOpenedEvent): AuctionDelta {
  return {
    kind: 'auction_state',
    status: 'open',
    auction_id: e.auction_id,
    isin: e.isin,
    bid_basis: e.bid_basis ?? 'yield',
    notified_amount: e.notified_amount ?? null,
    closes_at: e.closes_at ?? null,
    ts: e.ts,
  };
}

function bid(state: AuctionState, e: AuctionBidEvent): Step<AuctionDelta> {
  const basis = state.bid_basis;
  const value = e[basis];
  if (value === undefined) return reject(`auction ${state.auction_id} takes bids by ${basis}; bid ${e.bid_id} has none`);
  const bucket = bucketWith(state.histogram, value, BUCKET_HUNDREDTHS[basis], e.amount);
  return { kind: 'auction_bid', bid_basis: basis, bucket, bids: { count: state.bids.count + 1, amount: state.bids.amount + e.amount }, ts: e.ts };
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

function allot(e: AuctionAllottedEvent): AuctionDelta {
  return { kind: 'auction_allotted', status: 'allotted', cutoff_yield: e.cutoff_yield, cutoff_price: e.cutoff_price, allotted_amount: e.allotted_amount, ts: e.ts };
}
