import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../src/domain/events.js';
import { parseTopic } from '../../src/domain/topics.js';
import { replayLine } from '../../src/gateway/envelope.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Projector } from '../../src/projector/projector.js';
import { ClientError } from '../../src/protocol/errors.js';
import { CSV_PAYLOAD_COLUMNS, csvLayout } from '../../src/replay/csv.js';
import { resolveSeqRange, type MissingPart } from '../../src/replay/range.js';
import { planReplay, replayEncoder, replayHistory, replayPages, runReplay, type HistoryReader, type ReplaySink } from '../../src/replay/replay.js';
import { parseReplayRequest, type ReplayParams } from '../../src/replay/request.js';
import { stateAt } from '../../src/replay/state.js';
import { MarketGenerator } from '../../src/simulator/generator.js';
import { seededRandom } from '../../src/simulator/random.js';
import { MemoryTopicStore } from '../../src/store/memory-store.js';
import type { HistoryEntry } from '../../src/store/topic-store.js';

const TOPIC = 'prices.IN0020230085';
const T0 = Date.parse('2026-03-02T09:00:00.000Z');
/** Entry n's commit time: one second apart, except 70 and 71, committed in the same millisecond. */
const msOf = (seq: number) => T0 + (seq === 71 ? 70 : seq) * 1000;
const iso = (ms: number) => new Date(ms).toISOString();

/** A memory store whose topic has seqs 1..total at known times, history trimmed to about `maxLen`. */
async function storeWith(total: number, maxLen = 100): Promise<MemoryTopicStore> {
  const store = new MemoryTopicStore(maxLen);
  for (let seq = 1; seq <= total; seq++) await commit(store, seq);
  return store;
}

function commit(store: MemoryTopicStore, seq: number, topic = TOPIC) {
  return store.commit({
    eventId: `e-${topic}-${seq}`,
    eventTs: iso(msOf(seq)),
    source: { stream: `s/${topic}`, offset: String(seq), ts: iso(msOf(seq)) },
    changes: [{ topic, type: 'delta', payload: { kind: 'l1', bid: 99 + seq / 1000, ask: 99.5, bid_size: 1, ask_size: 1, bid_yield: null, ask_yield: null, mid: 99.25, spread: 0.5, ts: iso(msOf(seq)) }, state: { n: seq } }],
  });
}

/** Every line a replay writes, and its trailer. */
async function replay(reader: HistoryReader, params: ReplayParams) {
  const request = parseReplayRequest({ topic: TOPIC, ...params });
  const chunks: string[] = [];
  const sink: ReplaySink = { write: async (chunk) => void chunks.push(chunk) };
  const plan = await planReplay(reader, request);
  const end = await runReplay(replayHistory(reader), plan, replayEncoder('ndjson', TOPIC, replayLine), sink);
  const lines = chunks.join('').trimEnd().split('\n').map((line) => JSON.parse(line) as { seq: number; type: string });
  expect(lines.at(-1)).toEqual(end);
  return { seqs: lines.slice(0, -1).map((l) => l.seq), end };
}

const trimmed = (from: number, to: number): MissingPart => ({ from_seq: from, to_seq: to, reason: 'trimmed' });
const beyond = (from: number, to: number | null): MissingPart => ({ from_seq: from, to_seq: to, reason: 'beyond_head' });
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

describe('replay: seq ranges (pure)', () => {
  const held = { firstSeq: 11, headSeq: 40 };
  it.each([
    ['first..last', 11, 40, held, 11, 40, []],
    ['the first only', 11, 11, held, 11, 11, []],
    ['the last only', 40, 40, held, 40, 40, []],
    ['from seq 1: the trimmed part is reported', 1, 40, held, 11, 40, [trimmed(1, 10)]],
    ['all trimmed', 1, 5, held, 11, 5, [trimmed(1, 5)]],
    ['past the head', 35, 50, held, 35, 40, [beyond(41, 50)]],
    ['all beyond the head', 45, 50, held, 45, 40, [beyond(45, 50)]],
    ['open-ended beyond the head', 45, undefined, held, 45, 40, [beyond(45, null)]],
    ['open-ended from 1', 1, undefined, held, 11, 40, [trimmed(1, 10)]],
    ['trimmed and beyond', 1, 60, held, 11, 40, [trimmed(1, 10), beyond(41, 60)]],
    ['an empty topic', 1, 10, { firstSeq: 1, headSeq: 0 }, 1, 0, [beyond(1, 10)]],
    ['history all trimmed', 1, 30, { firstSeq: 21, headSeq: 20 }, 21, 20, [trimmed(1, 20), beyond(21, 30)]],
  ] as const)('%s', (_name, from, to, bounds, fromSeq, toSeq, missing) => {
    expect(resolveSeqRange(from, to, bounds)).toEqual({ fromSeq, toSeq, missing });
  });
});

describe('replay: ranges against the memory store', async () => {
  const store = await storeWith(130);
  const { firstSeq } = await store.readAfter(TOPIC, 0, 0);
  it('holds a trimmed history (the cases below need one)', () => {
    expect(firstSeq).toBeGreaterThan(1);
    expect(firstSeq).toBeLessThan(60);
  });

  it.each<[string, ReplayParams, () => number[], () => MissingPart[]]>([
    ['by seq: first held..head', { from_seq: String(firstSeq) }, () => range(firstSeq, 130), () => []],
    ['by seq: 1..20 of a trimmed history', { from_seq: '1', to_seq: String(firstSeq + 2) }, () => range(firstSeq, firstSeq + 2), () => [trimmed(1, firstSeq - 1)]],
    ['by seq: beyond head', { from_seq: '125', to_seq: '140' }, () => range(125, 130), () => [beyond(131, 140)]],
    ['by seq: the last', { from_seq: '130', to_seq: '130' }, () => [130], () => []],
    ['by time: everything', { since: iso(0) }, () => range(firstSeq, 130), () => [trimmed(1, firstSeq - 1)]],
    ['by time: since the first held entry, inclusive (trimmed ones may be in range)', { since: iso(msOf(firstSeq)) }, () => range(firstSeq, 130), () => [trimmed(1, firstSeq - 1)]],
    ['by time: a millisecond after the first held entry', { since: iso(msOf(firstSeq) + 1) }, () => range(firstSeq + 1, 130), () => []],
    ['by time: until is exclusive', { since: iso(msOf(60)), until: iso(msOf(65)) }, () => range(60, 64), () => []],
    ['by time: entries of one millisecond are both in', { since: iso(msOf(70)), until: iso(msOf(70) + 1) }, () => [70, 71], () => []],
    ['by time: until at an instant two entries share leaves both out', { since: iso(msOf(65)), until: iso(msOf(70)) }, () => range(65, 69), () => []],
    ['by time: until the last entry, exclusive', { since: iso(msOf(128)), until: iso(msOf(130)) }, () => [128, 129], () => []],
    ['by time: the last entry', { since: iso(msOf(130)) }, () => [130], () => []],
    ['by time: after the last entry', { since: iso(msOf(130) + 1) }, () => [], () => []],
    ['by time: before the first held entry', { until: iso(msOf(firstSeq)) }, () => [], () => [trimmed(1, firstSeq - 1)]],
    ['by time: between two entries', { since: iso(msOf(80) + 1), until: iso(msOf(81)) }, () => [], () => []],
  ])('%s', async (_name, params, seqs, missing) => {
    const got = await replay(store, params);
    expect(got.seqs).toEqual(seqs());
    expect(got.end.missing).toEqual(missing());
    expect(got.end.count).toBe(seqs().length);
    expect([got.end.from_seq, got.end.to_seq]).toEqual(seqs().length > 0 ? [seqs()[0], seqs().at(-1)] : [null, null]);
    expect([got.end.first_seq, got.end.head_seq]).toEqual([firstSeq, 130]);
  });

  it('an unknown topic: nothing, epoch null, the asked seqs beyond its head', async () => {
    const got = await replay(new MemoryTopicStore(), { from_seq: '1', to_seq: '5' });
    expect(got.seqs).toEqual([]);
    expect(got.end).toMatchObject({ epoch: null, count: 0, first_seq: 1, head_seq: 0, missing: [beyond(1, 5)] });
  });

  it('time edges are found by binary search, not a scan', async () => {
    let reads = 0;
    const counting: HistoryReader = {
      readAfter: (...args) => {
        reads++;
        return store.readAfter(...args);
      },
    };
    await planReplay(counting, parseReplayRequest({ topic: TOPIC, since: iso(msOf(61)), until: iso(msOf(90)) }));
    expect(reads).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(130 - firstSeq + 2)));
  });
});

describe('replay: history changing under a running replay', () => {
  /** A reader that commits `more` entries to the topic before every page read after the first. */
  const writingReader = (store: MemoryTopicStore, more: number): HistoryReader => {
    let reads = 0;
    let next = 0;
    return {
      async readAfter(topic, afterSeq, limit) {
        if (limit > 1 && reads++ > 0) {
          next ||= (await store.readAfter(topic, 0, 0)).headSeq + 1;
          for (let i = 0; i < more; i++) await commit(store, next++);
        }
        return store.readAfter(topic, afterSeq, limit);
      },
    };
  };

  it('a small-page replay that falls behind the trimming says which seqs went: served and missing cover the range once', async () => {
    const store = await storeWith(100, 100);
    const reader = writingReader(store, 30);
    const plan = await planReplay(reader, parseReplayRequest({ topic: TOPIC, from_seq: '1', to_seq: '100' }));
    const missing: MissingPart[] = [];
    const seen: number[] = [];
    for await (const page of replayPages(reader, plan, missing, 10)) seen.push(...page.map((e) => e.seq));
    expect(seen.slice(0, 10)).toEqual(range(1, 10));
    expect(missing.length).toBeGreaterThan(0);
    expect(missing.every((m) => m.reason === 'trimmed')).toBe(true);
    expect(missing[0]?.from_seq).toBe(11);
    const covered = [...seen, ...missing.flatMap((m) => range(m.from_seq, m.to_seq as number))].sort((a, b) => a - b);
    expect(covered).toEqual(range(1, 100));
  });

  it('a topic renewed while replaying stops at the epoch change', async () => {
    const store = await storeWith(30);
    const { epoch } = await store.readAfter(TOPIC, 0, 0);
    const plan = await planReplay(store, parseReplayRequest({ topic: TOPIC, from_seq: '1', to_seq: '30' }));
    const missing: MissingPart[] = [];
    const seen: number[] = [];
    for await (const page of replayPages(store, plan, missing, 10)) {
      seen.push(...page.map((e) => e.seq));
      if (seen.length === 10) await store.renewEpoch(TOPIC, epoch);
    }
    // Pages are read one ahead: 11..20 was read, under the plan's epoch, before the renewal.
    expect(seen).toEqual(range(1, 20));
    expect(missing).toEqual([{ from_seq: 21, to_seq: 30, reason: 'epoch_changed' }]);
  });
});

describe('replay: request parameters', () => {
  it.each<[ReplayParams, RegExp]>([
    [{}, /topic is required/],
    [{ topic: 'prices.NOTANISIN' }, /not a topic that can exist/],
    [{ topic: TOPIC, format: 'xml' }, /format must be one of ndjson, csv/],
    [{ topic: TOPIC, from_seq: '0' }, /from_seq must be an integer/],
    [{ topic: TOPIC, from_seq: '1.5' }, /from_seq must be an integer/],
    [{ topic: TOPIC, to_seq: '-1' }, /to_seq must be an integer/],
    [{ topic: TOPIC, from_seq: '9', to_seq: '3' }, /to_seq \(3\) is before from_seq \(9\)/],
    [{ topic: TOPIC, from_seq: '1', since: '2026-01-01' }, /not both/],
    [{ topic: TOPIC, epoch: 'Not-An-Epoch' }, /epoch must be an epoch id/],
    [{ topic: TOPIC, epoch: 'a1b2c3d4e5f6', source: 'redis' }, /source redis has none/],
    [{ topic: TOPIC, since: 'yesterday' }, /since must be an ISO-8601/],
    [{ topic: TOPIC, since: '2026-01-01T10:00' }, /since must be an ISO-8601 date, or time with a zone/],
    [{ topic: TOPIC, since: '2026-13-45T10:00:00Z' }, /since must be an ISO-8601/],
    [{ topic: TOPIC, since: '2026-01-02T00:00:00Z', until: '2026-01-01T00:00:00Z' }, /until .* must be after since/],
    [{ topic: TOPIC, since: '2026-01-01T00:00:00Z', until: '2026-01-01T00:00:00Z' }, /until .* must be after since/],
  ])('%j is refused', (params, reason) => {
    let caught: unknown;
    try {
      parseReplayRequest(params);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ClientError);
    expect((caught as ClientError).code).toBe('INVALID_MESSAGE');
    expect(String((caught as ClientError).details.reason)).toMatch(reason);
  });

  it('normalises times and defaults', () => {
    expect(parseReplayRequest({ topic: TOPIC })).toEqual({ topic: TOPIC, format: 'ndjson', source: 'auto', range: { by: 'seq', fromSeq: 1 } });
    expect(parseReplayRequest({ topic: TOPIC, since: '2026-01-01T05:30:00+05:30', until: '2026-01-02', format: 'csv' })).toEqual({
      topic: TOPIC,
      format: 'csv',
      source: 'auto',
      range: { by: 'time', since: '2026-01-01T00:00:00.000Z', until: '2026-01-02T00:00:00.000Z' },
    });
  });
});

describe('replay: per epoch', () => {
  it('a renewed epoch: each entry under the epoch it was served in, a boundary line in NDJSON, the epoch column in CSV', async () => {
    const store = await storeWith(5, 1000);
    const first = (await store.readAfter(TOPIC, 0, 0)).epoch;
    const second = await store.renewEpoch(TOPIC, first);
    for (let seq = 6; seq <= 8; seq++) await commit(store, seq);
    const out = async (format: 'ndjson' | 'csv') => {
      const chunks: string[] = [];
      const request = parseReplayRequest({ topic: TOPIC, format });
      await runReplay(replayHistory(store), await planReplay(store, request), replayEncoder(format, TOPIC, replayLine), { write: async (chunk) => void chunks.push(chunk) });
      return chunks.join('');
    };
    const lines = (await out('ndjson')).trimEnd().split('\n').map((line) => JSON.parse(line) as { type: string; seq?: number; meta?: { epoch?: string } });
    expect(lines.slice(0, -1).map((l) => (l.type === 'replay_epoch' ? l : `${l.seq}@${l.meta?.epoch}`))).toEqual([
      ...range(1, 5).map((seq) => `${seq}@${first}`),
      { type: 'replay_epoch', topic: TOPIC, epoch: second, previous_epoch: first, from_seq: 6 },
      ...range(6, 8).map((seq) => `${seq}@${second}`),
    ]);
    const rows = parse(await out('csv'), { columns: true }) as { seq: string; epoch: string }[];
    expect(rows.map((r) => `${r.seq}@${r.epoch}`)).toEqual([...range(1, 5).map((seq) => `${seq}@${first}`), ...range(6, 8).map((seq) => `${seq}@${second}`)]);
  });
});

describe('replay: CSV', () => {
  it('RFC 4180: a header, one record per entry, quoting parsed back by an independent parser', () => {
    const layout = csvLayout('system_alerts');
    const entry: HistoryEntry = {
      topic: 'system.alerts',
      epoch: 'ab12',
      seq: 7,
      type: 'alert',
      ts: '2026-03-02T09:00:00.000Z',
      event_ts: '2026-03-02T08:59:59.000Z',
      event_id: 'alert-1',
      payload: { kind: 'system_alert', name: 'p95', state: 'raised', value: 0.5, threshold: null, message: 'say "hi",\r\nthen, go', since: 's', instance: 'i', at: 'a', extra: { deep: [1, 2] } },
      hash: '0'.repeat(64),
    };
    const rows = parse(layout.header + layout.row(entry), { columns: true, record_delimiter: '\r\n' }) as Record<string, string>[];
    expect(rows).toEqual([
      {
        seq: '7',
        ts: entry.ts,
        type: 'alert',
        epoch: 'ab12',
        event_ts: entry.event_ts,
        event_id: 'alert-1',
        kind: 'system_alert',
        'system_alert.name': 'p95',
        'system_alert.state': 'raised',
        'system_alert.value': '0.5',
        'system_alert.threshold': '',
        'system_alert.message': 'say "hi",\r\nthen, go',
        'system_alert.since': 's',
        'system_alert.instance': 'i',
        'system_alert.at': 'a',
        other: '{"extra.deep":[1,2]}',
      },
    ]);
  });

  it('the column table names every field the reducers put in a payload, and no kind they never make', async () => {
    // What the simulator generates, through the real projector: every payload kind but system alerts.
    let t = Date.parse('2026-11-26T04:00:00.000Z');
    const events: DomainEvent[] = [];
    const generator = new MarketGenerator({ ratePerSecond: 50, random: seededRandom(7), now: () => new Date(t) });
    for (let i = 0; i < 20_000; i++) {
      events.push(...generator.next());
      t += 20;
    }
    const store = new MemoryTopicStore(100_000);
    const projector = new Projector(store, silentLogger);
    for (const event of events) await projector.apply(event);
    const kinds = new Set<string>();
    for (const { topic } of await store.topics()) {
      const topicKind = parseTopic(topic)?.kind ?? 'mobile';
      const layout = csvLayout(topicKind);
      const columns = layout.header.trimEnd().split(',');
      for (const entry of (await store.readAfter(topic, 0, 100_000)).entries) {
        kinds.add(`${topicKind}/${entry.payload.kind}`);
        const row = parse(layout.row(entry), { columns, record_delimiter: '\r\n' }) as Record<string, string>[];
        expect(row[0]?.other, `${topic} ${entry.payload.kind}: fields missing from CSV_PAYLOAD_COLUMNS`).toBe('');
      }
    }
    const tabled = Object.entries(CSV_PAYLOAD_COLUMNS).flatMap(([topicKind, byKind]) => Object.keys(byKind).map((kind) => `${topicKind}/${kind}`));
    expect([...kinds].sort()).toEqual(tabled.filter((k) => k !== 'system_alerts/system_alert').sort());
  });
});

describe('replay: state at an instant from the held history', () => {
  it('found by commit time and folded from seq 1: the reducers\' state after the last entry at or before the instant, for every topic kind', async () => {
    let t = Date.parse('2026-11-26T04:00:00.000Z');
    const generator = new MarketGenerator({ ratePerSecond: 50, random: seededRandom(11), now: () => new Date(t) });
    const store = new MemoryTopicStore(100_000);
    const projector = new Projector(store, silentLogger);
    // Per topic, the snapshot the store held after each of its entries (what a subscriber was sent then).
    const snapshots = new Map<string, { seq: number; ts: string; state: unknown }[]>();
    for (let i = 0, offset = 0; i < 1500; i++, t += 7) {
      for (const event of generator.next()) {
        const outcome = await projector.apply(event, { stream: 'sim/0', offset: String(offset++), ts: new Date(t).toISOString() });
        for (const { topic } of outcome.applied ? outcome.entries : []) {
          const snapshot = await store.snapshot(topic);
          if (snapshot) snapshots.set(topic, [...(snapshots.get(topic) ?? []), { seq: snapshot.seq, ts: snapshot.ts, state: snapshot.state }]);
        }
      }
    }
    const byKind = new Map<string, string>();
    for (const [topic, list] of snapshots) if (list.length >= 20) byKind.set(parseTopic(topic)?.kind ?? '', topic);
    expect([...byKind.keys()].sort()).toEqual(expect.arrayContaining(['auctions', 'portfolio', 'prices', 'risk', 'trading']));
    for (const topic of byKind.values()) {
      const list = snapshots.get(topic) ?? [];
      const ms = (i: number) => Date.parse(list[i]?.ts ?? '');
      const iso = (n: number) => new Date(n).toISOString();
      const middle = Math.floor(list.length / 2);
      for (const at of [iso(ms(0) - 1), iso(ms(0)), iso(ms(1) - 1), iso(ms(middle)), iso(ms(middle) + 1), iso(ms(list.length - 2))]) {
        const expected = list.filter((s) => s.ts <= at).at(-1) ?? { seq: 0, ts: at, state: {} };
        const got = await stateAt(store, undefined, topic, at);
        expect({ topic, at, seq: got.seq, ts: got.ts, state: got.state }).toEqual({ topic, at, ...expected });
      }
    }
  });

  it('without Kafka: a history held from seq 1 answers any instant; a trimmed one (no checkpoint to fold from) only at or after its last entry', async () => {
    const topic = 'prices.IN0020230085';
    const quotes = async (maxLen: number) => {
      const store = new MemoryTopicStore(maxLen);
      const projector = new Projector(store, silentLogger);
      for (let i = 1; i <= 30; i++) await projector.apply({ event_id: `q-${i}`, type: 'quote', ts: iso(msOf(i)), isin: 'IN0020230085', bid: 99 + i / 100, ask: 99.6, bid_size: 1, ask_size: 1 }, { stream: 's/0', offset: String(i), ts: iso(msOf(i)) });
      return store;
    };
    expect((await stateAt(await quotes(100), undefined, topic, iso(msOf(20)))).seq).toBe(20);
    const trimmed = await quotes(10);
    expect((await stateAt(trimmed, undefined, topic, iso(msOf(30)))).seq).toBe(30);
    for (const at of [25, 5]) await expect(stateAt(trimmed, undefined, topic, iso(msOf(at)))).rejects.toMatchObject({ code: 'NOT_IMPLEMENTED' });
  });
});
