import { withCheckDigit } from '../domain/isin.js';

/**
 * Static reference data for the market simulator: Indian Government dated securities (G-secs).
 *
 * ISINs follow the RBI pattern `IN` + `0020` (Government of India) + year of issue + serial, with a
 * valid ISO 6166 check digit computed by `withCheckDigit` (so the ids pass the ingest's ISIN check;
 * they look like real G-sec ISINs but are not guaranteed to be the actual ones).
 *
 * Units used throughout the simulator:
 * - prices: clean price per ₹100 face value, NDS-OM tick 0.0025;
 * - yields: percent, semi-annual compounding (e.g. 7.1834);
 * - sizes / quantities / amounts: ₹ crore of face value (NDS-OM market lot = 5 crore).
 */
export interface Instrument {
  isin: string;
  /** RBI naming, e.g. "7.18% GS 2033". */
  name: string;
  /** Annual coupon, percent, paid semi-annually. */
  coupon: number;
  /** Maturity date, ISO `YYYY-MM-DD`. */
  maturity: string;
  /** Yield (percent) the random walk mean-reverts to; together these form a plausible curve. */
  baseYield: number;
  /** Benchmarks trade tighter and more often. */
  benchmark: boolean;
}

interface InstrumentSpec {
  /** First 11 characters of the ISIN; the 12th is the check digit. */
  prefix: string;
  coupon: number;
  maturity: string;
  baseYield: number;
  benchmark?: boolean;
}

/** ~6.70% at the 1-2y end rising to ~7.30% at 40y: a gently upward-sloping G-sec curve. */
const SPECS: readonly InstrumentSpec[] = [
  { prefix: 'IN002022002', coupon: 7.38, maturity: '2027-06-20', baseYield: 6.7 },
  { prefix: 'IN002023001', coupon: 7.06, maturity: '2028-04-10', baseYield: 6.74 },
  { prefix: 'IN002022003', coupon: 7.1, maturity: '2029-04-18', baseYield: 6.78 },
  { prefix: 'IN002023002', coupon: 7.17, maturity: '2030-04-17', baseYield: 6.82 },
  { prefix: 'IN002024007', coupon: 7.32, maturity: '2030-11-13', baseYield: 6.84 },
  { prefix: 'IN002021003', coupon: 6.1, maturity: '2031-07-12', baseYield: 6.88 },
  { prefix: 'IN002024008', coupon: 6.79, maturity: '2031-10-07', baseYield: 6.89 },
  { prefix: 'IN002021009', coupon: 6.54, maturity: '2032-01-17', baseYield: 6.92 },
  { prefix: 'IN002022004', coupon: 7.26, maturity: '2032-08-22', baseYield: 6.93 },
  { prefix: 'IN002022015', coupon: 7.26, maturity: '2033-02-06', baseYield: 6.96 },
  { prefix: 'IN002023008', coupon: 7.18, maturity: '2033-08-14', baseYield: 6.98, benchmark: true },
  { prefix: 'IN002024001', coupon: 7.1, maturity: '2034-04-08', baseYield: 7.0, benchmark: true },
  { prefix: 'IN002024005', coupon: 6.79, maturity: '2034-10-07', baseYield: 7.02, benchmark: true },
  { prefix: 'IN002025001', coupon: 6.33, maturity: '2035-05-05', baseYield: 7.04, benchmark: true },
  { prefix: 'IN002022006', coupon: 7.41, maturity: '2036-12-19', baseYield: 7.08 },
  { prefix: 'IN002023007', coupon: 7.18, maturity: '2037-07-24', baseYield: 7.1 },
  { prefix: 'IN002021007', coupon: 6.99, maturity: '2051-12-15', baseYield: 7.22 },
  { prefix: 'IN002023006', coupon: 7.3, maturity: '2053-06-19', baseYield: 7.25 },
  { prefix: 'IN002024003', coupon: 7.09, maturity: '2054-08-05', baseYield: 7.26 },
  { prefix: 'IN002021010', coupon: 6.95, maturity: '2061-12-16', baseYield: 7.29 },
  { prefix: 'IN002023005', coupon: 7.25, maturity: '2063-06-12', baseYield: 7.3 },
];

/** "7.18% GS 2033" (coupon with two decimals, as RBI names securities). */
function gsName(coupon: number, maturity: string): string {
  return `${coupon.toFixed(2)}% GS ${maturity.slice(0, 4)}`;
}

export const INSTRUMENTS: readonly Instrument[] = SPECS.map((s) => ({
  isin: withCheckDigit(s.prefix),
  name: gsName(s.coupon, s.maturity),
  coupon: s.coupon,
  maturity: s.maturity,
  baseYield: s.baseYield,
  benchmark: s.benchmark ?? false,
}));

export const INSTRUMENTS_BY_ISIN: ReadonlyMap<string, Instrument> = new Map(INSTRUMENTS.map((i) => [i.isin, i]));

// ---------------------------------------------------------------------------------------------
// Bond arithmetic (street convention approximation: semi-annual coupons, fractional periods, no
// accrued interest — good enough for a simulator whose prices and yields must merely be consistent).
// ---------------------------------------------------------------------------------------------

const MS_PER_YEAR = 365.25 * 24 * 3600 * 1000;

/** Years from `asOf` to the instrument's maturity (never below one day). */
export function yearsToMaturity(inst: Instrument, asOf: Date): number {
  const t = (Date.parse(`${inst.maturity}T00:00:00Z`) - asOf.getTime()) / MS_PER_YEAR;
  return Math.max(t, 1 / 365);
}

/** Clean price per 100 face for a yield in percent. */
export function priceFromYield(coupon: number, years: number, yieldPct: number): number {
  const n = years * 2;
  const c = coupon / 2;
  const r = yieldPct / 200;
  if (Math.abs(r) < 1e-12) return c * n + 100;
  const disc = (1 + r) ** -n;
  return (c * (1 - disc)) / r + 100 * disc;
}

/** Yield in percent for a clean price per 100 face (bisection: price is monotone decreasing in yield). */
export function yieldFromPrice(coupon: number, years: number, price: number): number {
  let lo = -5;
  let hi = 40;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (priceFromYield(coupon, years, mid) > price) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Modified duration (years) by central difference; used for DV01. */
export function modifiedDuration(coupon: number, years: number, yieldPct: number): number {
  const h = 0.01; // 1 bp in percent
  const p = priceFromYield(coupon, years, yieldPct);
  const up = priceFromYield(coupon, years, yieldPct + h);
  const down = priceFromYield(coupon, years, yieldPct - h);
  return (down - up) / (2 * p * (h / 100));
}
