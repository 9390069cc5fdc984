import type { Socket } from 'socket.io-client';
import { describe, expectTypeOf, it } from 'vitest';
import type { Envelope, ErrorEnvelope } from '../../src/protocol/messages.js';
import type { AckEnvelope, ClientToServerEvents, DeltaEnvelope, PongEnvelope, ServerToClientEvents, SnapshotEnvelope } from '../../src/protocol/socketio-events.js';

/**
 * The typed Socket.IO contract as a dashboard author uses it: checked by the type checker (`npm run
 * typecheck` covers test/), so each `@ts-expect-error` below fails the build if the mistake it marks
 * ever compiles.
 */
type Client = Socket<ServerToClientEvents, ClientToServerEvents>;

describe('Socket.IO event maps', () => {
  it('types what the server sends, per event', () => {
    const on = (socket: Client) => {
      socket.on('snapshot', (env) => expectTypeOf(env).toEqualTypeOf<SnapshotEnvelope>());
      socket.on('delta', (env) => {
        expectTypeOf(env).toEqualTypeOf<DeltaEnvelope>();
        expectTypeOf(env.seq).toEqualTypeOf<number>();
        expectTypeOf(env.meta.event_ts).toEqualTypeOf<string>();
      });
      socket.on('error', (env) => expectTypeOf(env.code).toEqualTypeOf<ErrorEnvelope['code']>());
      // @ts-expect-error: no such event
      socket.on('deltas', () => {});
      // @ts-expect-error: a snapshot's meta has no `foo`
      socket.on('snapshot', (env) => env.meta.foo.length);
    };
    expectTypeOf(on).toBeFunction();
  });

  it('every event type refines the envelope the server builds', () => {
    expectTypeOf<Parameters<ServerToClientEvents[keyof ServerToClientEvents]>[0]>().toMatchTypeOf<Envelope>();
  });

  it('types what a client emits, and the reply it gets', () => {
    const emit = async (socket: Client) => {
      expectTypeOf(await socket.emitWithAck('subscribe', { topic: 'prices.IN0020230085', batch_size: 10 })).toEqualTypeOf<AckEnvelope<'subscribe'> | ErrorEnvelope>();
      expectTypeOf(await socket.emitWithAck('ping', {})).toEqualTypeOf<PongEnvelope | ErrorEnvelope>();
      // @ts-expect-error: no such message kind
      await socket.emitWithAck('subscribe_all', { topic: 'prices.IN0020230085' });
      // @ts-expect-error: `topic` is required
      await socket.emitWithAck('subscribe', { batch_size: 10 });
      // @ts-expect-error: `batch_size` is a number
      await socket.emitWithAck('subscribe', { topic: 'prices.IN0020230085', batch_size: '10' });
    };
    expectTypeOf(emit).toBeFunction();
  });
});
