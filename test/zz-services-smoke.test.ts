import { describe, it, expect } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';

describe('services smoke (temporary)', () => {
  it('redis answers', async () => {
    const r = new Redis(process.env.REDIS_URL!);
    expect(await r.ping()).toBe('PONG');
    r.disconnect();
  });
  it('kafka round trip', async () => {
    const kafka = new Kafka({ clientId: 't', brokers: process.env.KAFKA_BROKERS!.split(','), logLevel: logLevel.NOTHING });
    const p = kafka.producer();
    await p.connect();
    await p.send({ topic: 'smoke-vitest', messages: [{ value: 'hi' }] });
    await p.disconnect();
    const c = kafka.consumer({ groupId: 'g-smoke' });
    await c.connect();
    await c.subscribe({ topic: 'smoke-vitest', fromBeginning: true });
    const v = await new Promise<string>((res) => void c.run({ eachMessage: async ({ message }) => res(message.value!.toString()) }));
    await c.disconnect();
    expect(v).toBe('hi');
  });
  it('fails on purpose when asked', () => {
    expect(process.env.SMOKE_FAIL ? 1 : 0).toBe(0);
  });
});
