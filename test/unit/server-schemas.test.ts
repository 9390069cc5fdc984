import { readFileSync } from 'node:fs';
import type { PayloadFor, StateFor } from '@bondx/client';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type * as Domain from '../../src/domain/deltas/index.js';
import type { JsonObject } from '../../src/domain/json.js';
import { ERROR_CODES, type ErrorCode } from '../../src/protocol/errors.js';
import type { EnvelopeType, ErrorEnvelope } from '../../src/protocol/messages.js';
import type * as Events from '../../src/protocol/socketio-events.js';
import type * as Schema from '../../schemas/server/types.js';
import { generateServerTypes } from '../../scripts/server-types.js';
import { envelopeProblem, SERVER_ENVELOPE_TYPES } from '../support/server-schemas.js';

/**
 * schemas/server against the code's own types. The type-level part is checked by `npm run typecheck`
 * (which regenerates schemas/server/types.ts from the schemas first): each `Same`/`Accepts` below is a
 * compile error as soon as a schema and a type disagree, e.g. a field renamed in a schema but not in
 * src/domain/deltas, or a payload kind the Socket.IO types do not know.
 */

/** A and B accept the same values (mutual assignability). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Every value of `Wire` (what the schemas allow the server to send) is one of `Declared`. */
type Accepts<Declared, Wire> = [Wire] extends [Declared] ? true : false;
/** The generated interfaces as plain object types, which TypeScript lets meet index signatures (JsonObject). */
type Plain<T> = T extends readonly (infer I)[] ? Plain<I>[] : T extends object ? { [K in keyof T]: Plain<T[K]> } : T;

/** What a delta of topic kind K carries on the wire, per the schemas. */
type WireDelta = {
  prices: Schema.PricesDelta;
  auctions: Schema.AuctionDelta;
  trading: Schema.OrderDelta;
  portfolio: Schema.PositionDelta;
  risk: Schema.RiskDelta;
  risk_alerts: Schema.BreachAlertDelta;
};
/** The state a snapshot of topic kind K carries once the topic has an entry. */
type WireState = {
  prices: Schema.PricesState;
  auctions: Schema.AuctionState | Schema.EmptyState;
  trading: Schema.TradingState;
  portfolio: Schema.PortfolioState;
  risk: Schema.RiskState;
  risk_alerts: Schema.RiskAlertsState;
};

describe('schemas/server and the types of the code', () => {
  it('the payload types applyDelta and the SDK use are exactly the schemas’ (per topic kind)', () => {
    expectTypeOf<{ [K in Domain.DeltaTopicKind]: Same<Domain.TopicTypes[K]['delta'], WireDelta[K]> }>().toEqualTypeOf<{ [K in Domain.DeltaTopicKind]: true }>();
    expectTypeOf<{ [K in Domain.DeltaTopicKind]: Same<PayloadFor<K>, WireDelta[K]> }>().toEqualTypeOf<{ [K in Domain.DeltaTopicKind]: true }>();
  });

  it('every state the domain holds is a snapshot the schemas allow, and the same for the kinds that are not filtered', () => {
    expectTypeOf<{ [K in Domain.DeltaTopicKind]: Accepts<WireState[K], StateFor<K>> }>().toEqualTypeOf<{ [K in Domain.DeltaTopicKind]: true }>();
    // Prices states may lose parts to subtopics on the wire; the others are sent whole.
    expectTypeOf<{ [K in Exclude<Domain.DeltaTopicKind, 'prices'>]: Same<WireState[K], StateFor<K>> }>().toEqualTypeOf<{ [K in Exclude<Domain.DeltaTopicKind, 'prices'>]: true }>();
  });

  it('every envelope the schemas allow is accepted by the Socket.IO event types', () => {
    expectTypeOf<Accepts<Events.SnapshotEnvelope, Plain<Schema.SnapshotEnvelope>>>().toEqualTypeOf<true>();
    expectTypeOf<Accepts<Events.DeltaEnvelope, Plain<Schema.DeltaEnvelope>>>().toEqualTypeOf<true>();
    expectTypeOf<Accepts<Events.AlertEnvelope, Plain<Schema.AlertEnvelope>>>().toEqualTypeOf<true>();
    expectTypeOf<Accepts<Events.BatchEnvelope, Plain<Schema.BatchEnvelope>>>().toEqualTypeOf<true>();
    expectTypeOf<Accepts<Events.HeartbeatEnvelope, Plain<Schema.HeartbeatEnvelope>>>().toEqualTypeOf<true>();
    expectTypeOf<Accepts<Events.PongEnvelope, Plain<Schema.PongEnvelope>>>().toEqualTypeOf<true>();
    expectTypeOf<Accepts<ErrorEnvelope, Plain<Schema.ErrorEnvelope>>>().toEqualTypeOf<true>();
    expectTypeOf<{ [K in keyof Events.AckPayloads]: Accepts<Events.AckEnvelope<K>, Plain<Schema.AckEnvelope & { payload: { action: K } }>> }>().toEqualTypeOf<{ [K in keyof Events.AckPayloads]: true }>();
  });

  it('names the same kinds, actions, codes and envelope types', () => {
    expectTypeOf<Same<Events.PayloadKind, (Schema.DeltaPayload | Schema.AlertPayload)['kind']>>().toEqualTypeOf<true>();
    expectTypeOf<Same<keyof Events.AckPayloads, Schema.AckPayload['action']>>().toEqualTypeOf<true>();
    expectTypeOf<Same<ErrorCode, Schema.ErrorCode>>().toEqualTypeOf<true>();
    // `ping` is a type the envelope may have, but the server never sends one (clients ping, it pongs).
    expectTypeOf<Same<Exclude<EnvelopeType, 'ping'>, Schema.ServerEnvelope['type']>>().toEqualTypeOf<true>();
  });

  it('the error code enum is the catalogue (src/protocol/errors.ts), in its order', () => {
    const schema = JSON.parse(readFileSync(new URL('../../schemas/server/error.json', import.meta.url), 'utf8')) as { $defs: { code: { enum: string[] } } };
    expect(schema.$defs.code.enum).toEqual(ERROR_CODES);
  });

  it('schemas/server/types.ts is what the schemas generate (npm run typecheck regenerates it)', async () => {
    expect(readFileSync(new URL('../../schemas/server/types.ts', import.meta.url), 'utf8')).toBe(await generateServerTypes());
  });

  it('lists one envelope type per schema and rejects what is not in the contract', () => {
    expect([...SERVER_ENVELOPE_TYPES].sort()).toEqual(['ack', 'alert', 'batch', 'delta', 'error', 'heartbeat', 'pong', 'snapshot']);
    const pong: JsonObject = { type: 'pong', topic: null, seq: null, ts: new Date().toISOString(), payload: {}, meta: {}, correlation_id: 'c1' };
    expect(envelopeProblem(pong)).toBeUndefined();
    expect(envelopeProblem({ ...pong, extra: 1 })).toMatch(/additional property 'extra'/);
    expect(envelopeProblem({ ...pong, type: 'ping' })).toMatch(/unknown type 'ping'/);
  });
});
