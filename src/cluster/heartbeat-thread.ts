/**
 * A worker's heartbeat thread (a worker_thread of the rank process): it
 * holds its own connection to the coordinator, beats on a timer and takes
 * aborts. Its event loop stays free while the rank's main thread is blocked
 * in synchronous compute, so a busy rank is not mistaken for a hung one; a
 * stopped process (SIGSTOP) stops this thread too, so a hung rank is caught.
 * On an abort it first tells native collectives to give up (when the addon
 * has them), then the main thread, which closes the mesh transport.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeControl, encodeControl } from './control-message.js';
import { FramedSocket } from '../parallel/framed-socket.js';
import { dial } from '../parallel/socket-transport.js';
import { loadNativeAddon } from '../backend/native/native-addon.js';

export interface HeartbeatSetup {
  host: string;
  port: number;
  token: string;
  nodeId: string;
  intervalMs: number;
}

/** What the thread tells the rank's main thread. */
export type HeartbeatNotice = { type: 'abort'; generation: number } | { type: 'coordinator-lost'; why: string };

const port = parentPort;
if (!port) throw new Error('heartbeat-thread.js runs only as a worker thread');
const setup = workerData as HeartbeatSetup;

function tell(notice: HeartbeatNotice): void {
  port!.postMessage(notice);
}

/**
 * PLAN contract 3: native collectives poll a process-wide flag; an addon
 * without them has nothing to abort. Only the meshes of `generation` (and
 * older): an abort that comes late, after the rank set up the next plan,
 * must not end that plan's waits.
 */
function abortNativeCollectives(generation: number): void {
  try {
    const load = loadNativeAddon();
    const abort = load.ok ? (load.addon as unknown as { abortCollectives?: (generation?: number) => void }).abortCollectives : undefined;
    if (typeof abort === 'function') abort(generation);
  } catch (error) {
    // The main thread still closes the transports; a failed native abort must not take the beats down with it.
    process.stderr.write(`tessera worker: could not abort native collectives: ${(error as Error).message}\n`);
  }
}

async function main(): Promise<void> {
  const link = new FramedSocket(await dial({ kind: 'tcp', host: setup.host, port: setup.port }), (why) => new Error(why));
  const beat = encodeControl({ type: 'beat' });
  await link.send(encodeControl({ type: 'beat-hello', token: setup.token, nodeId: setup.nodeId }));
  const timer = setInterval(() => void link.send(beat).catch(() => undefined), setup.intervalMs);
  try {
    for (;;) {
      const { message } = decodeControl(await link.receive());
      if (message.type === 'abort') {
        abortNativeCollectives(message.generation);
        tell({ type: 'abort', generation: message.generation });
      }
    }
  } finally {
    clearInterval(timer);
    link.close();
  }
}

main().catch((error: Error) => tell({ type: 'coordinator-lost', why: error.message }));
