import type { JsonValue } from '../domain/json.js';
import type { TopicKind } from '../domain/topics.js';
import type { HistoryEntry } from '../store/topic-store.js';

/**
 * CSV of a topic's entries: one row per entry, a fixed header per topic kind, RFC 4180 (CRLF, fields
 * holding `"`, `,`, CR or LF quoted with `"` doubled). Columns: the entry's own fields, then each
 * payload kind's fields as `<kind>.<field>` (nested fixed-shape objects dotted, `order.order.price`;
 * arrays and open-keyed objects as JSON in one cell), filled on the rows of that kind; `other` holds
 * any payload field the table below does not name, as JSON, so a row never loses data.
 */

/** Payload fields by payload `kind`, per topic kind: the reducers' payloads (src/projector/reducers, observability/alerts.ts). */
export const CSV_PAYLOAD_COLUMNS: Record<TopicKind, Record<string, readonly string[]>> = {
  prices: {
    l1: ['bid', 'ask', 'bid_size', 'ask_size', 'bid_yield', 'ask_yield', 'mid', 'spread', 'ts'],
    l2: ['side', 'levels', 'ts', 'checksum'],
    trade: ['trade_id', 'price', 'size', 'yield', 'ts', 'day_volume', 'day_vwap'],
  },
  auctions: {
    auction_state: ['status', 'auction_id', 'isin', 'bid_basis', 'notified_amount', 'closes_at', 'bids.count', 'bids.amount', 'ts'],
    auction_bid: ['bid_basis', 'bucket.from', 'bucket.to', 'bucket.count', 'bucket.amount', 'bids.count', 'bids.amount', 'ts'],
    auction_allotted: ['status', 'cutoff_yield', 'cutoff_price', 'allotted_amount', 'ts'],
  },
  trading: {
    order: ['event', 'order.order_id', 'order.isin', 'order.side', 'order.price', 'order.quantity', 'order.filled_quantity', 'order.status', 'order.reason', 'order.updated_at'],
  },
  portfolio: { position: ['isin', 'quantity', 'avg_price', 'mtm', 'updated_at'] },
  risk: {
    metrics: ['exposure', 'dv01', 'limit_utilisation', 'ts'],
    breach: ['limit', 'value', 'threshold', 'severity', 'ts'],
  },
  risk_alerts: { breach_alert: ['alert_id', 'limit', 'value', 'threshold', 'severity', 'ts'] },
  system_alerts: { system_alert: ['name', 'state', 'value', 'threshold', 'message', 'since', 'instance', 'at'] },
  // A multiplexed stream, not a topic anything is committed to.
  mobile: {},
};

const ENTRY_COLUMNS = ['seq', 'ts', 'type', 'epoch', 'event_ts', 'event_id', 'kind'] as const;

export interface CsvLayout {
  header: string;
  row(entry: HistoryEntry): string;
}

export function csvLayout(topicKind: TopicKind): CsvLayout {
  const kinds = CSV_PAYLOAD_COLUMNS[topicKind];
  const payloadColumns = Object.entries(kinds).flatMap(([kind, fields]) => fields.map((field) => `${kind}.${field}`));
  const index = new Map(payloadColumns.map((column, i) => [column, ENTRY_COLUMNS.length + i]));
  const width = ENTRY_COLUMNS.length + payloadColumns.length + 1;
  return {
    header: csvLine([...ENTRY_COLUMNS, ...payloadColumns, 'other']),
    row(entry) {
      const cells: string[] = new Array<string>(width).fill('');
      const own = [entry.seq, entry.ts, entry.type, entry.epoch, entry.event_ts, entry.event_id, entry.payload.kind];
      own.forEach((value, i) => {
        cells[i] = cell(value);
      });
      const other: Record<string, JsonValue> = {};
      const walk = (value: JsonValue, path: string) => {
        const at = index.get(`${entry.payload.kind}.${path}`);
        if (at !== undefined) cells[at] = cell(value);
        else if (isObject(value) && Object.keys(value).length > 0) for (const [key, inner] of Object.entries(value)) walk(inner, `${path}.${key}`);
        else other[path] = value;
      };
      for (const [key, value] of Object.entries(entry.payload)) if (key !== 'kind') walk(value, key);
      if (Object.keys(other).length > 0) cells[width - 1] = JSON.stringify(other);
      return csvLine(cells);
    },
  };
}

function isObject(value: JsonValue): value is { [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A cell's text: empty for null, JSON for arrays and objects. */
function cell(value: JsonValue): string {
  if (value === null) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** One RFC 4180 record, CRLF-terminated. */
function csvLine(fields: readonly string[]): string {
  return `${fields.map((f) => (/[",\r\n]/.test(f) ? `"${f.replaceAll('"', '""')}"` : f)).join(',')}\r\n`;
}
