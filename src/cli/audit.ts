import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Config } from '../config/config.js';
import { entryOfEnvelope } from '../gateway/envelope.js';
import { readKafkaCheckpoints } from '../ingest/kafka/audit-log.js';
import { createKafka } from '../ingest/kafka/kafka-client.js';
import { kafkaTopic } from '../ingest/kafka/routing.js';
import { createLogger } from '../observability/logger.js';
import type { Envelope } from '../protocol/messages.js';
import { verdictOk, verifyTopic, type HistorySource, type TopicVerdict } from '../store/audit-verify.js';
import { AuditKeyError, parsePublicKey, parseSigningKey, toSignedCheckpoint } from '../store/checkpoint.js';
import { RedisTopicStore } from '../store/redis/redis-store.js';
import type { HistoryEntry, HistoryRead, SignedCheckpoint } from '../store/topic-store.js';
import { DEV_AUDIT_KEY_FILE, readDevAuditKey } from './dev-key.js';

/**
 * `bondx audit verify <topic…> | --all`: recomputes each topic's hash chain over the history held in
 * Redis (REDIS_URL, REDIS_PREFIX) or served by a gateway's replay API (--server, --token), and checks it
 * against the signed checkpoints: from the Kafka audit topic when KAFKA_BROKERS is set, else from the
 * store (Redis, or the gateway's GET /api/v1/audit/checkpoints). Progress on stderr, one verdict line per
 * topic on stdout. Exit 0: intact; 1: a break or a failed checkpoint; 2: a bad request. Verifying a
 * rebuild from Kafka is not done here (the rebuild is replay's, phase 2).
 */

export interface AuditVerifyOptions {
  all?: boolean;
  fromSeq?: string;
  server?: string;
  token?: string;
}

class UsageError extends Error {}

/** The key checkpoints are checked with: AUDIT_PUBLIC_KEY, else derived from AUDIT_SIGNING_KEY, else from the development key. */
function publicKeyOf(cfg: Config): KeyObject {
  if (cfg.AUDIT_PUBLIC_KEY) return parsePublicKey(cfg.AUDIT_PUBLIC_KEY);
  if (cfg.AUDIT_SIGNING_KEY) return createPublicKey(parseSigningKey(cfg.AUDIT_SIGNING_KEY));
  const dev = readDevAuditKey();
  if (dev) {
    process.stderr.write(`Checking signatures with the development audit key ${DEV_AUDIT_KEY_FILE} (set AUDIT_PUBLIC_KEY for a deployment's checkpoints).\n`);
    return createPublicKey(parseSigningKey(dev));
  }
  throw new UsageError('No audit key: set AUDIT_PUBLIC_KEY (or AUDIT_SIGNING_KEY), or run npm start once to create the development key.');
}

/** Where history, topic names and (without Kafka) checkpoints come from. */
interface AuditSource {
  history: HistorySource;
  topics(): Promise<string[]>;
  checkpoints(topic: string): Promise<SignedCheckpoint[]>;
  close(): Promise<void>;
}

function redisSource(cfg: Config): AuditSource {
  if (!cfg.REDIS_URL) throw new UsageError('bondx audit verify reads Redis (set REDIS_URL) or a running gateway (--server URL --token T)');
  const store = new RedisTopicStore(cfg.REDIS_URL, { prefix: cfg.REDIS_PREFIX });
  return {
    history: store,
    topics: async () => (await store.topics()).map((t) => t.topic).sort(),
    checkpoints: (topic) => store.auditCheckpoints(topic),
    close: () => store.close(),
  };
}

/** A gateway's HTTP API as the history source: readAfter over GET /api/v1/replay (NDJSON), whose lines carry meta.hash. */
function serverSource(server: string, token: string): AuditSource {
  const get = async (path: string, query: Record<string, string>): Promise<Response> => {
    const url = new URL(path, server);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`${url.pathname}: HTTP ${res.status} ${await res.text()}`);
    return res;
  };
  return {
    history: {
      async readAfter(topic, afterSeq, limit): Promise<HistoryRead> {
        const res = await get('/api/v1/replay', { topic, from_seq: String(afterSeq + 1), to_seq: String(afterSeq + Math.max(1, limit)) });
        const plan = JSON.parse(res.headers.get('x-replay-plan') ?? '{}') as { epoch?: string | null; first_seq?: number; head_seq?: number };
        const entries: HistoryEntry[] = [];
        for (const line of (await res.text()).split('\n')) {
          const entry = line === '' ? undefined : entryOfEnvelope(JSON.parse(line) as Envelope);
          if (entry) entries.push(entry);
        }
        return { epoch: plan.epoch ?? '', firstSeq: plan.first_seq ?? 1, headSeq: plan.head_seq ?? 0, entries: entries.slice(0, limit) };
      },
    },
    topics: async () => ((await (await get('/api/v1/ws/topics', {})).json()) as { topics: { topic: string }[] }).topics.map((t) => t.topic).sort(),
    checkpoints: async (topic) => ((await (await get('/api/v1/audit/checkpoints', { topic })).json()) as { checkpoints: unknown[] }).checkpoints.map(toSignedCheckpoint),
    close: async () => undefined,
  };
}

function verdictLine(v: TopicVerdict): string[] {
  const lines: string[] = [];
  const walked = v.headSeq === 0 ? 'no entries' : `${v.checked} entries recomputed up to seq ${v.headSeq}${v.anchor === null ? ' from seq 1' : ` from the entry at seq ${v.anchor} (taken as the anchor)`}`;
  const { confirmed, unchecked, failures } = v.checkpoints;
  if (v.break) {
    const b = v.break;
    lines.push(
      b.reason === 'hash'
        ? `${v.topic}: BROKEN at seq ${b.seq} (epoch ${b.epoch}): expected hash ${b.expected}, found ${b.found}`
        : `${v.topic}: BROKEN at seq ${b.seq} (epoch ${b.epoch}): seq ${b.expected} is missing before it`,
    );
  }
  for (const f of failures) lines.push(`${v.topic}: CHECKPOINT seq ${f.checkpoint.seq} (epoch ${f.checkpoint.epoch}, signed ${f.checkpoint.signed_at}) rejected: ${f.detail}`);
  const status = verdictOk(v) ? 'intact' : `NOT intact (${v.breaks} break${v.breaks === 1 ? '' : 's'}, ${failures.length} failed checkpoint${failures.length === 1 ? '' : 's'})`;
  lines.push(`${v.topic}: ${status}; ${walked}; checkpoints: ${confirmed} confirmed, ${unchecked} not held`);
  return lines;
}

export async function auditVerifyCommand(config: () => Config, topics: string[], opts: AuditVerifyOptions): Promise<number> {
  let source: AuditSource | undefined;
  try {
    if ((topics.length > 0) === (opts.all === true)) throw new UsageError('name the topics to verify, or --all (not both)');
    if (opts.server !== undefined && !opts.token) throw new UsageError('--server needs --token (a token with role auditor or operator)');
    const fromSeq = opts.fromSeq === undefined ? 1 : Number(opts.fromSeq);
    if (!Number.isSafeInteger(fromSeq) || fromSeq < 1) throw new UsageError('--from-seq must be a positive integer');
    const cfg = config();
    const publicKey = publicKeyOf(cfg);
    source = opts.server !== undefined ? serverSource(opts.server, opts.token as string) : redisSource(cfg);
    const names = opts.all ? await source.topics() : topics;
    // The checkpoints first: each then names a seq the history held by the time it is read.
    let checkpointsOf = (topic: string) => (source as AuditSource).checkpoints(topic);
    if (cfg.KAFKA_BROKERS) {
      const all = await readKafkaCheckpoints(createKafka(cfg, createLogger('silent'), '-audit'), kafkaTopic(cfg.KAFKA_TOPIC_PREFIX, 'audit'), new Set(names));
      checkpointsOf = async (topic) => all.get(topic) ?? [];
    }
    let intact = true;
    for (const topic of names) {
      const verdict = await verifyTopic(source.history, topic, await checkpointsOf(topic), publicKey, {
        fromSeq,
        onProgress: (t, seq, head) => process.stderr.write(`\r${t}: ${seq}/${head}`),
      });
      process.stderr.write('\n');
      for (const line of verdictLine(verdict)) process.stdout.write(`${line}\n`);
      intact &&= verdictOk(verdict);
    }
    return intact ? 0 : 1;
  } catch (err) {
    process.stderr.write(`bondx audit verify: ${(err as Error).message}\n`);
    return err instanceof UsageError || err instanceof AuditKeyError ? 2 : 1;
  } finally {
    await source?.close();
  }
}
