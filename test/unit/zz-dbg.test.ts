import { it } from 'vitest';
import { connect, request, startTestSystem } from '../support/harness.js';
it('dbg', async () => {
  const s = await startTestSystem({ ALERT_THRESHOLDS_JSON: JSON.stringify({ max_error_rate: 0, max_connection_failure_rate: 1 }), ALERT_EVAL_INTERVAL_MS: '100', ALERT_WINDOW_MS: '1000' });
  const t = await connect(s.server.url, '/market', s.token('erin'));
  console.log(await request(t, 'subscribe', { type: 'subscribe', topic: 'prices.!!' }));
  await new Promise((r) => setTimeout(r, 500)); await s.alerts.tick().catch((e) => console.log('TICKERR', e));
  console.log(JSON.stringify(await s.metrics.sample()), s.alerts.health());
  await s.alerts.flushed();
  console.log(await s.backends.store.readAfter('system.alerts', 0, 10));
  t.close();
  await s.close();
});
