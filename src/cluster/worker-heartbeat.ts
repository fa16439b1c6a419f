/**
 * The rank's main-thread side of its heartbeat thread (heartbeat-thread.ts):
 * starts it and hands its notices (abort a generation, the coordinator is
 * gone) to the worker's control loop.
 */
import { Worker } from 'node:worker_threads';
import type { HeartbeatNotice, HeartbeatSetup } from './heartbeat-thread.js';

export interface WorkerHeartbeat {
  stop(): Promise<void>;
}

export function startHeartbeat(setup: HeartbeatSetup, onNotice: (notice: HeartbeatNotice) => void): WorkerHeartbeat {
  const thread = new Worker(new URL('./heartbeat-thread.js', import.meta.url), { workerData: setup });
  thread.on('message', onNotice);
  thread.on('error', (error: Error) => onNotice({ type: 'coordinator-lost', why: `the heartbeat thread failed: ${error.message}` }));
  // The control loop decides when the process ends; the thread must not keep it alive.
  thread.unref();
  return {
    stop: async () => {
      thread.off('message', onNotice);
      await thread.terminate();
    },
  };
}
