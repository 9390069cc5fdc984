/**
 * Token bucket (pure): `burst` tokens at most, refilled at `perMinute` per minute. Time is passed in,
 * so tests need no clock. The product's limits read "1000 burst, 100 sustained per minute".
 */
export interface BucketLimit {
  burst: number;
  perMinute: number;
}

export interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  at: number;
}

export function newBucket(limit: BucketLimit, now: number): Bucket {
  return { tokens: limit.burst, at: now };
}

/** Takes one token if there is one; mutates the bucket. */
export function take(bucket: Bucket, limit: BucketLimit, now: number): boolean {
  const elapsed = Math.max(0, now - bucket.at);
  bucket.tokens = Math.min(limit.burst, bucket.tokens + (elapsed * limit.perMinute) / 60_000);
  bucket.at = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

export function describeLimit(limit: BucketLimit): string {
  return `${limit.perMinute} per minute`;
}
