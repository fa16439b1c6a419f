/** The EngineHost suite on the engine worker thread of this process. */
import { runEngineHostSuite } from './engine-host.case.js';
import { LocalEngineHost } from './local-engine-host.js';

runEngineHostSuite('local worker thread', async (model) => {
  const host = await LocalEngineHost.start(model, { backend: 'reference', core: { kvCacheMib: 4, maxNumSeqs: 16, maxBatchTokens: 128 } });
  return { host, close: () => host.close() };
});
