import { it } from 'vitest';
import WebSocket from 'ws';
import { startTestSystem } from '../support/harness.js';

it('probe', async () => {
  const system = await startTestSystem({ WS_MAX_QUEUE_SIZE: '30' });
  const gw = system.server.gateway;
  const ws = new WebSocket(`${system.server.url.replace('http', 'ws')}/api/v1/ws/trading/u1?token=${system.token('u1')}`);
  let msgs = 0; let closeCode = 0; const errs: string[] = [];
  ws.on('message', (d) => { msgs++; const e = JSON.parse(d.toString()); if (e.type === 'error') errs.push(e.code); });
  ws.on('close', (c) => { closeCode = c; });
  await new Promise((r) => ws.once('open', r));
  await new Promise((r) => setTimeout(r, 200));
  ws.pause();
  const t0 = Date.now();
  let i = 0;
  for (; i < 40000 && closeCode === 0; i++) {
    await system.ingest.submit({ event_id: `o-${i}`, type: 'order.rejected', ts: new Date().toISOString(), user_id: 'u1', order_id: `ord-${i}`, isin: 'IN0020240019', side: 'buy', price: 100, quantity: 1000, reason: 'x'.repeat(500) }, 'test');
    if (i % 100 === 0) { await new Promise((r) => setImmediate(r)); }
    if (i % 1000 === 0) console.log(i, Date.now() - t0, gw.queueSizes());
  }
  console.log('published', i, Date.now() - t0, 'ms', gw.queueSizes());
  ws.resume();
  await new Promise((r) => setTimeout(r, 1000));
  console.log({ msgs, closeCode, errs });
  await system.close();
}, 60000);
