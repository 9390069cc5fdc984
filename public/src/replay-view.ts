/*
 * The dashboard's replay control: plays a topic's history (the live `replay` message, through the SDK's
 * client.replay) into its own view, beside the live panels, which it never touches: the replayed L1 and
 * last trade, each entry as it arrives, and the server's account when it ends.
 */
import type { BondxClient, Replay, ReplayedEnvelope } from '@bondx/client';
import { el, fmtPx, fmtTime, row, tbody } from './dom.js';

/** Entries shown (newest first). */
const MAX_ROWS = 20;

function input(id: string, label: string, value: string, size: number): HTMLInputElement {
  const field = document.createElement('input');
  Object.assign(field, { id, value, size });
  field.setAttribute('aria-label', label);
  field.placeholder = label;
  return field;
}

/** One entry's gist: the L1 quote or trade price, else its kind. */
function gist(env: ReplayedEnvelope): string {
  const p = env.payload;
  if (p.kind === 'l1') return `${fmtPx(p['bid'])} / ${fmtPx(p['ask'])}`;
  if (p.kind === 'trade') return `trade ${fmtPx(p['price'])} × ${String(p['size'])}`;
  return p.kind;
}

/** Adds the replay panel to the grid; `selected` is the topic to offer (the selected security's prices). */
export function mountReplay(client: BondxClient, selected: () => string | null): void {
  const panel = el('section', null, 'panel replay');
  panel.style.gridColumn = '1 / -1';
  const topic = input('replay-topic', 'topic', selected() ?? '', 24);
  const from = input('replay-from', 'from seq', '1', 6);
  const to = input('replay-to', 'to seq', '', 6);
  // A time range instead of seqs when either is given (ISO-8601 with a zone, e.g. 2026-11-26T10:00:00Z).
  const since = input('replay-since', 'since (time)', '', 20);
  const until = input('replay-until', 'until', '', 20);
  const speed = input('replay-speed', 'speed (0: max)', '10', 5);
  const play = el('button', 'Play');
  play.id = 'replay-play';
  const stop = el('button', 'Stop');
  stop.id = 'replay-stop';
  const status = el('span', 'idle', 'pill');
  status.id = 'replay-status';
  const l1 = el('span', '—', 'facts');
  l1.id = 'replay-l1';
  const table = document.createElement('table');
  table.id = 'replay-entries';
  table.className = 'tbl';
  table.append(document.createElement('thead'), document.createElement('tbody'));
  table.tHead?.append(row([{ text: 'Seq', cls: 'num' }, { text: 'Time' }, { text: 'Entry' }]));
  const scroll = el('div', null, 'scroll short');
  scroll.append(table);
  panel.append(el('h2', 'Replay'), topic, from, to, since, until, speed, play, stop, status, l1, scroll);
  document.querySelector('main.grid')?.append(panel);

  let current: Replay | null = null;
  const setStatus = (state: 'playing' | 'done' | 'error', text: string) => {
    status.dataset['status'] = state;
    status.textContent = text;
  };
  play.addEventListener('click', () => {
    if (!topic.value) topic.value = selected() ?? '';
    current?.stop();
    const body = tbody('replay-entries');
    body.replaceChildren();
    const range = since.value || until.value ? { ...(since.value ? { since: since.value } : {}), ...(until.value ? { until: until.value } : {}) } : { fromSeq: Number(from.value) || 1, ...(to.value ? { toSeq: Number(to.value) } : {}) };
    const replay = client.replay(topic.value, { ...range, speed: Number(speed.value) || 0 });
    current = replay;
    setStatus('playing', 'playing…');
    let bidAsk = '—';
    let last = '—';
    void (async () => {
      try {
        for await (const env of replay) {
          if (env.payload.kind === 'l1') bidAsk = gist(env);
          if (env.payload.kind === 'trade') last = fmtPx(env.payload['price']);
          l1.textContent = `seq ${env.seq} · bid/ask ${bidAsk} · last ${last}`;
          body.prepend(row([{ text: String(env.seq), cls: 'num' }, { text: fmtTime(env.ts) }, { text: gist(env) }]));
          while (body.rows.length > MAX_ROWS) body.lastElementChild?.remove();
        }
        const end = await replay.done;
        const missing = end.missing.map((m) => `${m.from_seq}–${m.to_seq ?? '…'} ${m.reason}`).join(', ');
        if (current === replay) setStatus('done', `${end.cancelled ? 'stopped' : 'done'}: ${end.count} entries${end.from_seq === null ? '' : ` (seq ${end.from_seq}–${end.to_seq})`}${missing ? `, missing ${missing}` : ''}`);
      } catch (err) {
        if (current === replay) setStatus('error', `error: ${err instanceof Error ? err.message : String(err)}`);
      }
    })();
  });
  stop.addEventListener('click', () => current?.stop());
}
