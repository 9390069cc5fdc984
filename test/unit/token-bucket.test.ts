import { describe, expect, it } from 'vitest';
import { describeLimit, newBucket, take } from '../../src/flow/token-bucket.js';

describe('token bucket', () => {
  const limit = { burst: 3, perMinute: 60 }; // one token per second

  it('allows the burst, then refuses until tokens refill at the sustained rate', () => {
    const bucket = newBucket(limit, 0);
    expect([take(bucket, limit, 0), take(bucket, limit, 0), take(bucket, limit, 0), take(bucket, limit, 0)]).toEqual([true, true, true, false]);
    expect(take(bucket, limit, 500)).toBe(false);
    expect(take(bucket, limit, 1000)).toBe(true);
    expect(take(bucket, limit, 1000)).toBe(false);
  });

  it('never holds more than the burst, however long it idles', () => {
    const bucket = newBucket(limit, 0);
    for (let i = 0; i < 3; i++) take(bucket, limit, 0);
    const later = 3_600_000;
    const taken = Array.from({ length: 5 }, () => take(bucket, limit, later)).filter(Boolean).length;
    expect(taken).toBe(3);
  });

  it('tolerates a clock that goes backwards', () => {
    const bucket = newBucket(limit, 10_000);
    expect(take(bucket, limit, 5_000)).toBe(true);
    expect(bucket.tokens).toBe(2);
  });

  it('describes the limit the way the product documents it', () => {
    expect(describeLimit({ burst: 1000, perMinute: 100 })).toBe('100 per minute');
  });
});
