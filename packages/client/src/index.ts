/**
 * @bondx/client: BondX Stream for browsers and Node. See README "Client SDK".
 *
 *   const client = new BondxClient({ url: 'http://localhost:8000', token, transport: 'socketio' });
 *   const sub = client.subscribe('prices.IN0020230085', { subtopics: { levels: 'L1,L2', trades: true }, batchSize: 50 });
 *   sub.on('delta', (env) => render(sub.state));
 */
export { BondxClient, type BondxClientOptions, type ClientEvents, type ConnectionState } from './client.js';
export { BondxError, ERRORS, type ErrorCode } from './errors.js';
export { Subscription, type DeltaEvent, type PayloadFor, type StateFor, type SubscribeOptions, type SubscriptionEvents, type TopicKindOf } from './subscription.js';
export { Replay, type ReplayedEnvelope, type ReplayOptions } from './replay.js';
export { claimsOf, type TokenClaims } from './token.js';
export type { TransportName } from './transport.js';
export { applyDelta, bookMatches, initialState } from '../../../src/domain/deltas/index.js';
export type * from '../../../src/domain/deltas/index.js';
export type { SnapshotEnvelope, DeltaEnvelope, AlertEnvelope, HeartbeatEnvelope, ReplayAck } from '../../../src/protocol/socketio-events.js';
