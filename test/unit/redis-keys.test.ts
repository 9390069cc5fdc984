import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { redisKeys, tag } from '../../src/store/redis/keys.js';

/**
 * The Redis key layout (src/store/redis/keys.ts) is the one place key names are built: this is its
 * documented layout (the store contract checks the store's keys in a real Redis), and a guard that no
 * other module builds one.
 */

const SRC = new URL('../../src/', import.meta.url).pathname;

/** What Redis Cluster hashes of a key: the text inside its first braces. */
function tagOf(key: string): string | undefined {
  return /\{([^}]+)\}/.exec(key)?.[1];
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('Redis key layout', () => {
  it('names every key, channel and stream under the prefix', () => {
    const keys = redisKeys('p');
    expect({
      registry: keys.registry('isin:X'),
      offsets: keys.offsets('isin:X'),
      dedup: keys.dedup('isin:X'),
      everyRegistry: keys.everyRegistry,
      everyOffsets: keys.everyOffsets,
      meta: keys.meta('prices.X'),
      history: keys.history('prices.X'),
      live: keys.live('prices.X'),
      deadLetters: keys.deadLetters,
      deadLetterCount: keys.deadLetterCount,
      rateLimitIp: keys.rateLimit('ip'),
      rateLimitUser: keys.rateLimit('user'),
      userConnections: keys.userConnections('alice'),
      gatewayAlive: keys.gatewayAlive('g1'),
      deliveries: keys.deliveries('alice'),
      socketIo: keys.socketIoAdapter('plain'),
      socketIoDeflate: keys.socketIoAdapter('deflate'),
    }).toEqual({
      registry: 'p:{isin:X}:topics',
      offsets: 'p:{isin:X}:offsets',
      dedup: 'p:{isin:X}:dedup',
      everyRegistry: 'p:{*}:topics',
      everyOffsets: 'p:{*}:offsets',
      meta: 'p:{prices.X}:prices.X:meta',
      history: 'p:{prices.X}:prices.X:h',
      live: 'p:live:{prices.X}:prices.X',
      deadLetters: 'p:{dlq}',
      deadLetterCount: 'p:{dlq}:count',
      rateLimitIp: 'p:rl:ip',
      rateLimitUser: 'p:rl:user',
      userConnections: 'p:uc:{user:alice}',
      gatewayAlive: 'p:{gw}:g1',
      deliveries: 'p:dl:{user:alice}',
      socketIo: 'p:sio',
      socketIoDeflate: 'p:sioz',
    });
  });

  it("a topic's keys and channel carry its hash tag, chosen by tag()", () => {
    const keys = redisKeys('p');
    for (const key of [keys.meta('t'), keys.history('t'), keys.live('t')]) expect(key).toContain(tag('t'));
    expect(tag('t')).toBe('{t}');
  });

  it('the hash tag is the entity: every topic one event touches (project.ts) is in one slot, with its user', () => {
    const isin = 'US0378331005';
    expect(tag(`prices.${isin}`)).toBe(`{isin:${isin}}`);
    expect(tag('auctions.A-1')).toBe('{auction:A-1}');
    for (const topic of ['trading.u1', 'portfolio.u1', 'risk.u1', 'risk.u1.alerts', 'mobile.u1']) expect(tag(topic)).toBe('{user:u1}');
    expect(redisKeys('p').userConnections('u1')).toContain('{user:u1}');
    // ...and each of those topics keeps keys and a channel of its own in that slot.
    const perTopic = (topic: string) => [redisKeys('p').meta(topic), redisKeys('p').history(topic), redisKeys('p').live(topic)];
    const userTopics = ['trading.u1', 'portfolio.u1', 'risk.u1', 'risk.u1.alerts', 'mobile.u1'].flatMap(perTopic);
    expect(new Set(userTopics).size).toBe(userTopics.length);
    // The entity's registry, offsets and dedup window share the slot of its topics.
    expect(new Set(['trading.u1', 'risk.u1.alerts'].map((t) => tagOf(redisKeys('p').meta(t))).concat(['registry', 'offsets', 'dedup'].map((k) => tagOf(redisKeys('p')[k as 'registry' | 'offsets' | 'dedup']('user:u1')))))).toEqual(new Set(['user:u1']));
    expect(tag('system.alerts')).toBe('{system.alerts}');
    // Names outside the topic grammar (an invalid ISIN, a test's own names) are their own entity.
    expect(tag('prices.X')).toBe('{prices.X}');
    // Keys that one command or MULTI reads together share a tag.
    expect(new Set([redisKeys('p').deadLetters, redisKeys('p').deadLetterCount].map(tagOf))).toEqual(new Set(['dlq']));
    expect(new Set(['g1', 'g2'].map((g) => tagOf(redisKeys('p').gatewayAlive(g))))).toEqual(new Set(['gw']));
  });

  it('SCAN patterns take the prefix literally', () => {
    expect(redisKeys('a*b?[c]').everyOffsets).toBe('a\\*b\\?\\[c\\]:{*}:offsets');
  });

  it('no other module under src/ builds a Redis key from the prefix', () => {
    const layout = join(SRC, 'store/redis/keys.ts');
    // A template that puts something after a prefix and a colon: `${prefix}:…`, `${config.REDIS_PREFIX}:…`.
    const builds = /\$\{[^}]*prefix[^}]*\}:/i;
    const offenders = sources(SRC)
      .filter((file) => file !== layout)
      .flatMap((file) =>
        readFileSync(file, 'utf8')
          .split('\n')
          .map((line, i) => ({ line, at: `${relative(SRC, file)}:${i + 1}` }))
          .filter(({ line }) => builds.test(line) || /['`]:\{?dlq|:sio['`]/.test(line)),
      )
      .map(({ at, line }) => `${at}: ${line.trim()}`);
    expect(offenders).toEqual([]);
  });
});
