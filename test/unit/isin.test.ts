import { describe, expect, it } from 'vitest';
import { isValidIsin, withCheckDigit } from '../../src/domain/isin.js';

describe('isValidIsin', () => {
  it.each([
    'US0378331005', // Apple
    'US5949181045', // Microsoft
    'GB0002634946', // BAE Systems
    'AU0000XVGZA3', // letters in the body
    'DE000BAY0017', // Bayer
    'IN0020230085', // IN002023008 -> 1823002023008, Luhn sum 35 -> check digit 5
  ])('accepts %s', (isin) => {
    expect(isValidIsin(isin)).toBe(true);
  });

  it.each([
    ['US0378331004', 'wrong check digit'],
    ['IN0020230086', 'wrong check digit'],
    ['US0378331050', 'transposed digits'],
    ['us0378331005', 'lower case'],
    ['US037833100', 'too short'],
    ['US03783310055', 'too long'],
    ['1S0378331005', 'country code not letters'],
    ['US037833100A', 'check character not a digit'],
    ['', 'empty'],
  ])('rejects %s (%s)', (isin) => {
    expect(isValidIsin(isin)).toBe(false);
  });
});

describe('withCheckDigit', () => {
  it.each([
    ['US037833100', 'US0378331005'],
    ['AU0000XVGZA', 'AU0000XVGZA3'],
    ['IN002023008', 'IN0020230085'],
  ])('%s -> %s', (body, isin) => {
    expect(withCheckDigit(body)).toBe(isin);
  });

  it('produces valid ISINs for Indian government bond bodies', () => {
    for (const body of ['IN002023007', 'IN002021007', 'IN002024003', 'IN002021010']) {
      const isin = withCheckDigit(body);
      expect(isin).toHaveLength(12);
      expect(isValidIsin(isin)).toBe(true);
    }
  });

  it.each(['IN00202300', 'IN0020230085', 'in002023008', '12002023008'])('refuses the malformed body %s', (body) => {
    expect(() => withCheckDigit(body)).toThrow(RangeError);
  });
});
