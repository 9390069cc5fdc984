import { ISIN_SHAPE } from './ids.js';

/**
 * ISO 6166 ISINs: 2-letter country code, 9 alphanumeric characters, 1 check digit.
 * The check digit is the Luhn (mod 10) digit over the string with letters expanded to numbers (A=10 … Z=35).
 */

/** The Luhn check digit for the first 11 characters (already shape-checked). */
function checkDigit(body: string): number {
  // Letters become two digits, so expand first; Luhn then doubles every second digit from the right.
  const digits = [...body].map((c) => Number.parseInt(c, 36).toString()).join('');
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    const d = Number(digits[digits.length - 1 - i]);
    const v = i % 2 === 0 ? d * 2 : d;
    sum += v > 9 ? v - 9 : v;
  }
  return (10 - (sum % 10)) % 10;
}

export function isValidIsin(s: string): boolean {
  return ISIN_SHAPE.test(s) && checkDigit(s.slice(0, 11)) === Number(s[11]);
}

/** Completes an 11-character ISIN body with its check digit, e.g. `IN002023008` -> `IN0020230085`. */
export function withCheckDigit(first11: string): string {
  // A body is an ISIN's shape without its final digit.
  if (!ISIN_SHAPE.test(`${first11}0`)) throw new RangeError(`not an ISIN body (2 letters + 9 alphanumerics): ${first11}`);
  return `${first11}${checkDigit(first11)}`;
}
