import { connectRedis, serviceUrl } from '../support/services.js';
import { backboneSuite } from './backbone.suite.js';

// Never skip: without Redis these tests must fail. `npm test` (scripts/test.sh) starts it.
const REDIS_URL = serviceUrl('REDIS_URL', 'the e2e tests');

backboneSuite({ label: 'one node', env: { REDIS_URL, REDIS_CLUSTER_NODES: '' }, connect: () => connectRedis(REDIS_URL) });
