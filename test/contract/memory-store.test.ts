import { MemoryTopicStore } from '../../src/store/memory-store.js';
import { topicStoreContract } from './topic-store.contract.js';

topicStoreContract('MemoryTopicStore', async ({ maxLen }) => {
  const store = new MemoryTopicStore(maxLen);
  return { store, feed: store, dispose: () => store.close() };
});
