import { MemoryTopicStore } from '../../src/store/memory-store.js';
import { topicStoreContract } from './topic-store.contract.js';

topicStoreContract('MemoryTopicStore', async ({ maxLen, dedupWindow }) => {
  const store = new MemoryTopicStore(maxLen, dedupWindow);
  return { store, feed: store, dispose: () => store.close() };
});
