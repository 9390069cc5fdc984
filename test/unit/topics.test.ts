import { describe, expect, it } from 'vitest';
import { parseTopic, SYSTEM_ALERTS_TOPIC } from '../../src/domain/topics.js';
import { validateEvent } from '../../src/ingest/validate.js';

describe('parseTopic', () => {
  it.each([
    ['prices.IN0020230085', { kind: 'prices', id: 'IN0020230085' }],
    ['prices.US0378331005', { kind: 'prices', id: 'US0378331005' }],
    ['auctions.RBI-2026-11-26-01', { kind: 'auctions', id: 'RBI-2026-11-26-01' }],
    ['trading.alice', { kind: 'trading', id: 'alice', owner: 'alice' }],
    ['portfolio.u_1', { kind: 'portfolio', id: 'u_1', owner: 'u_1' }],
    ['risk.alice', { kind: 'risk', id: 'alice', owner: 'alice' }],
    ['risk.alice.alerts', { kind: 'risk_alerts', id: 'alice', owner: 'alice' }],
    ['mobile.alice', { kind: 'mobile', id: 'alice', owner: 'alice' }],
    [SYSTEM_ALERTS_TOPIC, { kind: 'system_alerts', id: 'system' }],
  ])('%s', (topic, parsed) => {
    expect(parseTopic(topic)).toEqual({ topic, ...parsed });
  });

  it.each([
    ['prices.NOTANISIN', 'not an ISIN'],
    ['prices.NOPE', 'not an ISIN'],
    ['prices.IN0020230086', 'wrong check digit'],
    ['prices.in0020230085', 'lower case ISIN'],
    ['prices.IN0020230085.alerts', 'alerts only exist for risk'],
    ['auctions.', 'empty id'],
    ['auctions.a b', 'space in the id'],
    [`trading.${'u'.repeat(65)}`, 'id over 64 characters'],
    ['risk.alice.alerts.x', 'too many parts'],
    ['risk.alice.other', 'unknown suffix'],
    ['news.alice', 'unknown domain'],
    ['constructor.alice', 'prototype key as domain'],
    ['prices', 'no id'],
    ['', 'empty'],
  ])('refuses %s (%s)', (topic) => {
    expect(parseTopic(topic)).toBeNull();
  });

  it('accepts exactly the ids an event could carry (the event schemas are the one home of the rules)', () => {
    const ts = new Date().toISOString();
    for (const id of ['alice', 'u-1_x', 'a'.repeat(64), 'a'.repeat(65), 'a.b', 'é', '']) {
      const event = { event_id: 'e', type: 'risk.metrics', ts, user_id: id, exposure: 1, dv01: 1, limit_utilisation: 0.5 };
      expect(parseTopic(`risk.${id}`) !== null, id).toBe(validateEvent(event).ok);
    }
    for (const isin of ['IN0020230085', 'IN0020230086', 'NOTANISIN', 'IN002023008A']) {
      const event = { event_id: 'e', type: 'quote', ts, isin, bid: 1, ask: 2, bid_size: 1, ask_size: 1 };
      expect(parseTopic(`prices.${isin}`) !== null, isin).toBe(validateEvent(event).ok);
    }
  });
});
