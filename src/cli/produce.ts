import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Config } from '../config/config.js';
import type { DomainEvent } from '../domain/events.js';
import { EventProducer } from '../ingest/kafka/event-producer.js';
import { createKafka, ensureTopics } from '../ingest/kafka/kafka-client.js';
import { validateEvent } from '../ingest/validate.js';
import type { Logger } from '../observability/logger.js';

/**
 * `bondx produce`: NDJSON lines to Kafka. Valid events go to their topic keyed by entity; a line that
 * is not a valid event is reported on stderr and still sent (to the market topic) so the projector
 * dead-letters it like any upstream mistake. Returns the exit code: 1 when any line was invalid.
 */
export async function produceNdjson(config: Config, log: Logger, file: string | undefined, batchSize: number): Promise<number> {
  if (!config.KAFKA_BROKERS) {
    process.stderr.write('bondx produce needs KAFKA_BROKERS\n');
    return 2;
  }
  const kafka = createKafka(config, log, '-producer');
  await ensureTopics(kafka, config);
  const producer = new EventProducer(kafka, config.KAFKA_TOPIC_PREFIX);
  await producer.connect();
  const input = file === undefined || file === '-' ? process.stdin : createReadStream(file);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let valid: DomainEvent[] = [];
  let sent = 0;
  let invalid = 0;
  let lineNo = 0;
  const started = Date.now();
  const flush = async () => {
    if (valid.length === 0) return;
    await producer.send(valid);
    sent += valid.length;
    valid = [];
    process.stderr.write(`\rproduced ${sent} events (${Math.round(sent / Math.max(0.001, (Date.now() - started) / 1000))}/s)`);
  };
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = undefined;
      }
      const validation = parsed === undefined ? { ok: false as const, reason: 'not JSON' } : validateEvent(parsed);
      if (validation.ok) {
        valid.push(validation.event);
        if (valid.length >= batchSize) await flush();
      } else {
        invalid++;
        process.stderr.write(`\nline ${lineNo}: invalid event (${validation.reason}); sent for dead-lettering\n`);
        await flush();
        await producer.sendRaw('market', [{ value: line }]);
      }
    }
    await flush();
  } finally {
    await producer.disconnect();
  }
  process.stderr.write(`\ndone: ${sent} events produced, ${invalid} invalid lines\n`);
  return invalid > 0 ? 1 : 0;
}
