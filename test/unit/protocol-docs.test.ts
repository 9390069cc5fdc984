import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLOSE_CODES, ERROR_CODES, HTTP_STATUS, type ErrorCode } from '../../src/protocol/errors.js';

/**
 * The README's protocol tables are documentation of src/protocol/errors.ts, not a second home: they
 * must list every code, with exactly the HTTP status and close code the code uses.
 */

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The cells of each row of the first table after `heading` (header and rule rows skipped). */
function tableAfter(heading: string): string[][] {
  const start = README.indexOf(`\n${heading}\n`);
  expect(start, `README has no "${heading}"`).toBeGreaterThan(0);
  const lines = README.slice(start).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(1, -1).split(' | ').map((cell) => cell.trim()));
  }
  return rows;
}

const codesIn = (cell: string): string[] => [...cell.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1] as string);
const ALL = Object.keys(ERROR_CODES) as ErrorCode[];

describe('README protocol tables', () => {
  it('the error-code table lists every code once, with its HTTP status and WebSocket close code', () => {
    const rows = tableAfter('#### Error codes');
    expect(rows.map(([code]) => codesIn(code ?? '')).flat()).toEqual(ALL);
    for (const [codeCell = '', when = '', http = '', close = '', socketIo = ''] of rows) {
      const code = codesIn(codeCell)[0] as ErrorCode;
      expect(when.length, code).toBeGreaterThan(0);
      expect(http, code).toBe(String((HTTP_STATUS as Partial<Record<ErrorCode, number>>)[code] ?? '—'));
      expect(close, code).toBe(String(CLOSE_CODES[code]));
      expect(socketIo.length, code).toBeGreaterThan(0);
    }
  });

  it('the close-code table groups the codes exactly as CLOSE_CODES does, and 1011 is INTERNAL_ERROR alone', () => {
    const documented = Object.fromEntries(tableAfter('#### WebSocket close codes').map(([close = '', codes = '']) => [close, codesIn(codes).sort()]));
    const actual: Record<string, string[]> = {};
    for (const code of ALL) (actual[String(CLOSE_CODES[code])] ??= []).push(code);
    for (const codes of Object.values(actual)) codes.sort();
    expect(documented).toEqual(actual);
    expect(actual['1011']).toEqual(['INTERNAL_ERROR']);
  });
});
