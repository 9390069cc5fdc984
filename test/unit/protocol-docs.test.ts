import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { closeCodeOf, ERROR_CODES, ERRORS, type ErrorCode } from '../../src/protocol/errors.js';

/**
 * The README's protocol tables are documentation of src/protocol/errors.ts (ERRORS), not a second
 * home: they must list every code, with exactly the HTTP status, close code and Socket.IO forms of
 * its catalogue entry.
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

describe('README protocol tables', () => {
  it('the error-code table lists every code once, with its HTTP status, WebSocket close code and Socket.IO forms', () => {
    const rows = tableAfter('#### Error codes');
    expect(rows.flatMap(([code]) => codesIn(code ?? ''))).toEqual(ERROR_CODES);
    for (const [codeCell = '', when = '', http = '', close = '', socketIo = ''] of rows) {
      const code = codesIn(codeCell)[0] as ErrorCode;
      expect(when.length, code).toBeGreaterThan(0);
      const entry = ERRORS[code];
      expect(http, code).toBe(String(entry.http ?? '—'));
      expect(close, code).toBe(String(entry.close));
      expect(socketIo, code).toBe(entry.socketio.join(', ') || '—');
    }
  });

  it('the close-code table groups the codes exactly as the catalogue does, and 1011 is INTERNAL_ERROR alone', () => {
    const documented = Object.fromEntries(tableAfter('#### WebSocket close codes').map(([close = '', codes = '']) => [close, codesIn(codes).sort()]));
    const actual: Record<string, string[]> = {};
    for (const code of ERROR_CODES) (actual[String(closeCodeOf(code))] ??= []).push(code);
    for (const codes of Object.values(actual)) codes.sort();
    expect(documented).toEqual(actual);
    expect(actual['1011']).toEqual(['INTERNAL_ERROR']);
  });
});
