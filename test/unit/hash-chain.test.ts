import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JsonValue } from '../../src/domain/json.js';
import { replayEnvelope } from '../../src/gateway/envelope.js';
import { deliveryFilter } from '../../src/gateway/subtopics.js';
import { ChainVerifier, chainEntries, entryHash, entryJcs, genesisHash, genesisHead, jcs } from '../../src/store/chain.js';
import { AuditKeyError, checkpointSigner, parsePublicKey, parseSigningKey, rawPublicKey, signatureValid } from '../../src/store/checkpoint.js';
import type { HistoryEntry } from '../../src/store/topic-store.js';
import { ROOT } from '../support/processes.js';

/** README "Audit: hash chain": its formula's test vectors and its verification snippet, taken from the README itself. */
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const SECTION = README.slice(README.indexOf('## Audit: hash chain'), README.indexOf('\n## ', README.indexOf('## Audit: hash chain') + 1));
const fence = (lang: string) => {
  const match = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(SECTION);
  if (!match?.[1]) throw new Error(`README "Audit: hash chain" has no ${lang} block`);
  return match[1];
};
const VECTORS = fence('json')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as HistoryEntry);
const HASH0 = /`hash\(0\)` = `([0-9a-f]{64})`/.exec(SECTION)?.[1];
const JCS_FORM = /The first entry's JCS form[\s\S]*?is\s+`(\{[^`]*\})`/.exec(SECTION)?.[1];
const SNIPPET = fence('js');

describe('hash chain: the README test vectors', () => {
  it('the README has the section, two entries of one topic and epoch, hash(0) and the JCS form', () => {
    expect(VECTORS).toHaveLength(2);
    expect(new Set(VECTORS.map((e) => `${e.topic}/${e.epoch}`)).size).toBe(1);
    expect(HASH0).toMatch(/^[0-9a-f]{64}$/);
    expect(JCS_FORM).toBeDefined();
  });

  it('hash(0), the JCS form and both hashes are what the formula gives', () => {
    const [first, second] = VECTORS as [HistoryEntry, HistoryEntry];
    expect(genesisHash(first.topic, first.epoch)).toBe(HASH0);
    const { hash: _hash, ...fields } = first;
    expect(canonicalize(fields)).toBe(JCS_FORM);
    expect(entryHash(HASH0 as string, first)).toBe(first.hash);
    expect(entryHash(first.hash, second)).toBe(second.hash);
  });

  it('chainEntries, which both stores commit, produces exactly those entries from the epoch start', () => {
    const [first, second] = VECTORS as [HistoryEntry, HistoryEntry];
    const change = (e: HistoryEntry) => ({ topic: e.topic, type: e.type, payload: e.payload, state: {} });
    const [one] = chainEntries({ eventId: first.event_id, eventTs: first.event_ts, committedAt: first.ts, changes: [change(first)] }, new Map([[first.topic, genesisHead(first.topic, first.epoch)]]), () => 'unused');
    expect(one).toEqual(first);
    const [two] = chainEntries({ eventId: second.event_id, eventTs: second.event_ts, committedAt: second.ts, changes: [change(second)] }, new Map([[first.topic, one as HistoryEntry]]), () => 'unused');
    expect(two).toEqual(second);
  });

  it("an entry's ts is never before its head's (a late source time is raised), and a new topic starts at a new epoch", () => {
    const [first] = VECTORS as [HistoryEntry];
    const late = { eventId: 'late', eventTs: first.event_ts, committedAt: '2026-03-02T09:14:00.000Z', changes: [{ topic: first.topic, type: 'delta' as const, payload: { kind: 'l1' }, state: {} }] };
    expect(chainEntries(late, new Map([[first.topic, first]]), () => 'unused')[0]).toMatchObject({ seq: 2, ts: first.ts, epoch: first.epoch });
    const [fresh] = chainEntries(late, new Map(), () => 'e-new');
    expect(fresh).toMatchObject({ seq: 1, epoch: 'e-new', ts: late.committedAt, hash: entryHash(genesisHash(first.topic, 'e-new'), fresh as HistoryEntry) });
  });

  it("the README's verification snippet passes the vectors and names the first bad seq of a rewritten one", () => {
    const run = (entries: HistoryEntry[]): { code: number; out: string } => {
      const input = `${[...entries.map((e) => JSON.stringify(replayEnvelope(e))), JSON.stringify({ type: 'replay_end' })].join('\n')}\n`;
      try {
        return { code: 0, out: execFileSync(process.execPath, ['--input-type=module', '-e', SNIPPET], { cwd: ROOT, input, encoding: 'utf8' }) };
      } catch (err) {
        const failed = err as { status: number; stdout: string };
        return { code: failed.status, out: failed.stdout };
      }
    };
    expect(run(VECTORS)).toEqual({ code: 0, out: 'chain intact\n' });
    const [first, second] = VECTORS as [HistoryEntry, HistoryEntry];
    const forged = { ...second, payload: { ...second.payload, price: 99.53 } };
    expect(run([first, forged])).toEqual({ code: 1, out: `broken at seq 2: expected ${entryHash(first.hash, forged)}, found ${second.hash}\n` });
  });
});

describe('ChainVerifier', () => {
  const [first, second] = VECTORS as [HistoryEntry, HistoryEntry];
  const third = (() => {
    const fields = { ...second, seq: 3, event_id: 't-2' };
    return { ...fields, hash: entryHash(second.hash, fields) };
  })();

  it('passes the chain, and reports a rewritten payload at its seq with the expected and found hash', () => {
    const verifier = new ChainVerifier(first.topic);
    expect([first, second, third].map((e) => verifier.check(e))).toEqual([undefined, undefined, undefined]);
    const forged = { ...second, payload: { ...second.payload, size: 1 } };
    const again = new ChainVerifier(first.topic);
    expect([first, forged, third].map((e) => again.check(e))).toEqual([undefined, { topic: first.topic, epoch: first.epoch, seq: 2, reason: 'hash', expected: entryHash(first.hash, forged), found: second.hash }, undefined]);
  });

  it('takes a first entry after seq 1 as the anchor, and reports a missing seq as a gap', () => {
    const verifier = new ChainVerifier(first.topic);
    expect(verifier.check({ ...second, hash: 'f'.repeat(64) })).toBeUndefined();
    expect(new ChainVerifier(first.topic, first.hash).check(second)).toBeUndefined();
    const gapped = new ChainVerifier(first.topic);
    gapped.check(first);
    expect(gapped.check(third)).toMatchObject({ seq: 3, reason: 'gap', expected: '2', found: '3' });
  });

  it("opens a renewed epoch's chain at its hash(0), mid-history", () => {
    const fields = { ...third, epoch: 'renewed1', seq: 3 };
    const renewed = { ...fields, hash: entryHash(genesisHash(first.topic, 'renewed1'), fields) };
    const verifier = new ChainVerifier(first.topic);
    expect([first, second, renewed].map((e) => verifier.check(e))).toEqual([undefined, undefined, undefined]);
  });
});

describe('signed checkpoints', () => {
  const keys = generateKeyPairSync('ed25519');
  const [, head] = VECTORS as [HistoryEntry, HistoryEntry];

  it('verify with the signing key, not with another; a changed field breaks the signature', () => {
    const signed = checkpointSigner(keys.privateKey).sign(head);
    expect(signed).toMatchObject({ topic: head.topic, epoch: head.epoch, seq: 2, hash: head.hash, ts: head.ts });
    expect(signatureValid(signed, keys.publicKey)).toBe(true);
    expect(signatureValid(signed, generateKeyPairSync('ed25519').publicKey)).toBe(false);
    expect(signatureValid(checkpointSigner(generateKeyPairSync('ed25519').privateKey).sign(head), keys.publicKey)).toBe(false);
    expect(signatureValid({ ...signed, seq: 3 }, keys.publicKey)).toBe(false);
    expect(signatureValid({ ...signed, sig: 'not base64 of anything' }, keys.publicKey)).toBe(false);
  });

  it('keys in every documented form: PEM, base64 of the raw key, base64 of the DER', () => {
    const raw = rawPublicKey(keys.privateKey);
    const pkcs8 = keys.privateKey.export({ format: 'der', type: 'pkcs8' });
    const signedBy = (text: string) => checkpointSigner(parseSigningKey(text)).sign(head);
    for (const form of [keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), pkcs8.toString('base64'), pkcs8.subarray(pkcs8.length - 32).toString('base64')]) {
      expect(signatureValid(signedBy(form), keys.publicKey)).toBe(true);
    }
    for (const form of [keys.publicKey.export({ format: 'pem', type: 'spki' }).toString(), keys.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'), raw]) {
      expect(rawPublicKey(parsePublicKey(form))).toBe(raw);
    }
    expect(() => parseSigningKey('nonsense')).toThrow(AuditKeyError);
    expect(() => parsePublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString())).toThrow(/not an Ed25519/);
  });
});

describe('integrity subscribers', () => {
  it('get their own room (the key) and meta.hash on each envelope; others neither', () => {
    const [entry] = VECTORS as [HistoryEntry];
    const plain = deliveryFilter('prices', { levels: 'L1' });
    const integrity = deliveryFilter('prices', { levels: 'L1' }, true);
    expect(integrity.key).not.toBe(plain.key);
    expect(integrity.envelope(entry).meta).toEqual({ event_ts: entry.event_ts, epoch: entry.epoch, hash: entry.hash });
    expect(plain.envelope(entry).meta).toEqual({ event_ts: entry.event_ts, epoch: entry.epoch });
  });
});

describe('jcs: the bytes of canonicalize (the RFC 8785 reference implementation)', () => {
  /** What a serialisation gives, or the error it throws. */
  const run = (f: () => string | undefined) => {
    try {
      return f();
    } catch (err) {
      return `throws ${(err as Error).message}`;
    }
  };
  const both = (value: JsonValue) => ({ ours: run(() => jcs(value)), reference: run(() => canonicalize(value)) });

  it.each<[string, JsonValue]>([
    ['numbers', [0, -0, 1, -1.5, 0.1, 1e21, 1e-7, 5e-324, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 123456789.12345679]],
    ['strings with escapes and unicode', ['', '"', '\\', '\n\r\t\b\f', '\u0000\u001f\u007f', '\u2028\u2029', 'Zürich ₹ 😀', '\ud83d\ude00']],
    ['keys sorted by UTF-16 code units, not code points', { '\ufb01': 1, '😀': 2, a: 3, B: 4, '': 5, '10': 6, '9': 7, 'é': 8 }],
    ['nested', { b: [{ z: null, a: [true, false, {}] }], a: { '': [] } }],
    ['members without a value are left out, array holes are null', { a: undefined, b: [undefined, 1] } as unknown as JsonValue],
    ['a lone high surrogate', ['x\ud800']],
    ['a lone low surrogate', { k: '\udc00y' }],
    ['a lone surrogate in a key', { '\ud800': 1 }],
    ['NaN', [Number.NaN]],
    ['Infinity', { x: Number.POSITIVE_INFINITY }],
  ])('%s', (_name, value) => {
    const { ours, reference } = both(value);
    expect(ours).toBe(reference);
  });

  it('any JSON value, any strings (lone surrogates included)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ depthSize: 'medium' }), fc.dictionary(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' })), (value, strings) => {
        const a = both(value as JsonValue);
        expect(a.ours).toBe(a.reference);
        const b = both(strings);
        expect(b.ours).toBe(b.reference);
      }),
      { numRuns: 3000 },
    );
  });

  it("an entry's hashed fields, in the order the chain writes them: canonicalize of the eight fields", () => {
    const text = fc.string({ unit: 'binary' });
    fc.assert(
      fc.property(
        fc.record({ topic: text, epoch: text, seq: fc.integer({ min: 0 }), type: fc.constantFrom('delta' as const, 'alert' as const), ts: text, event_ts: text, event_id: text, hash: text }),
        fc.dictionary(text, fc.jsonValue()),
        (fields, payload) => {
          const entry = { ...fields, payload: { ...(payload as Record<string, JsonValue>), kind: 'l1' } };
          const { topic, epoch, seq, type, ts, event_ts, event_id } = entry;
          expect(run(() => entryJcs(entry))).toBe(run(() => canonicalize({ topic, epoch, seq, type, ts, event_ts, event_id, payload: entry.payload })));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
