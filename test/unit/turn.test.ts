import { describe, expect, it } from 'vitest';
import { TurnEnd } from '../../src/gateway/turn.js';

const turnOver = () => new Promise((resolve) => setImmediate(resolve));

describe('TurnEnd', () => {
  it('runs each deferred task once, at the end of the turn, batches before writes', async () => {
    const turn = new TurnEnd();
    const ran: string[] = [];
    const write = { turnEnded: () => ran.push('write') };
    // A batch flush writes: its socket is uncorked in the same run, after it.
    const batch = {
      turnEnded: () => {
        ran.push('batch');
        turn.defer('writes', write);
      },
    };
    turn.defer('writes', write);
    turn.defer('batches', batch);
    turn.defer('batches', batch);
    // Promise callbacks of the same turn run first: still nothing.
    await Promise.resolve();
    expect(ran).toEqual([]);
    await turnOver();
    expect(ran).toEqual(['batch', 'write']);
    // The next turn starts afresh.
    turn.defer('writes', write);
    await turnOver();
    expect(ran).toEqual(['batch', 'write', 'write']);
  });

  it('keeps what a failing task left for the next turn', async () => {
    const turn = new TurnEnd();
    const ran: string[] = [];
    const failing = {
      turnEnded: () => {
        throw new Error('boom');
      },
    };
    turn.defer('batches', failing);
    turn.defer('writes', { turnEnded: () => ran.push('write') });
    const errors: unknown[] = [];
    const onError = (err: unknown) => errors.push(err);
    process.prependListener('uncaughtException', onError);
    try {
      await turnOver();
      await turnOver();
    } finally {
      process.off('uncaughtException', onError);
    }
    expect(errors).toHaveLength(1);
    expect(ran).toEqual(['write']);
  });
});
