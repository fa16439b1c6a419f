/**
 * A worker process: joins a coordinator with its token and a report of its
 * hardware, starts its heartbeat thread, then runs what the coordinator
 * sends (plans, steps) across plan generations until told to stop or until
 * the coordinator goes away. `tessera worker --join HOST:PORT --token T` and
 * the locally forked ranks of `--tp/--pp` both run this.
 */
import type { TLSSocket } from 'node:tls';
import { TesseraError, isTesseraError } from '../core/errors.js';
import { decodeControl, encodeControl, PROTOCOL_VERSION, type ControlMessage, type Envelope } from './control-message.js';
import { FramedSocket } from '../parallel/framed-socket.js';
import { dialSecure, isHandshakeFailure, joinKey } from './link-security.js';
import { measureHardware } from './node-hardware.js';
import { RankSession } from './rank-session.js';
import { startHeartbeat } from './worker-heartbeat.js';

export interface WorkerOptions {
  /** HOST:PORT of the coordinator. */
  join: string;
  token: string;
  /** Threads of this worker's backend; overrides the coordinator's plan. */
  threads?: number;
  /** Memory this worker offers for the model, MiB (default: the free memory at join). */
  memoryMib?: number;
  log?: (line: string) => void;
}

export async function runWorker(options: WorkerOptions): Promise<void> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { host, port } = joinAddress(options.join);
  const key = joinKey(options.token);
  const control = new FramedSocket(await dialCoordinator(host, port, key, options.join), (why) => new TesseraError('TESSERA_ERR_RANK_LOST', `the coordinator at ${options.join} went away or dropped this worker (${why}); start the worker again to rejoin`));
  const send = (message: ControlMessage, body?: Uint8Array): Promise<void> => control.send(encodeControl(message, body));
  const next = async (): Promise<Envelope> => decodeControl(await control.receive());
  control.limit(CONTROL_LIMITS);
  try {
    await send({ type: 'hello', protocol: PROTOCOL_VERSION, pid: process.pid, hardware: measureHardware({ memoryMib: options.memoryMib }) });
    const welcome = (await next()).message;
    if (welcome.type === 'refused') throw new TesseraError('TESSERA_ERR_JOIN_REFUSED', welcome.message);
    if (welcome.type === 'error') throw new TesseraError(welcome.code, `the coordinator refused this worker: ${welcome.message}`);
    if (welcome.type !== 'welcome') throw new TesseraError('TESSERA_ERR_PROTOCOL', `the coordinator answered the join with ${welcome.type}; are the coordinator and worker the same version?`);
    if (welcome.protocol !== PROTOCOL_VERSION) throw new TesseraError('TESSERA_ERR_PROTOCOL_VERSION', `the coordinator speaks protocol ${welcome.protocol}, this worker ${PROTOCOL_VERSION}; run the same tessera version on every node`);
    log(`tessera worker: joined ${options.join} as node ${welcome.nodeId}`);
    const session = new RankSession(send, control.socket.localAddress ?? '127.0.0.1', options.threads, log);
    const heartbeat = startHeartbeat({ host, port, key, nodeId: welcome.nodeId, intervalMs: welcome.heartbeat.intervalMs }, (notice) => {
      if (notice.type === 'abort') return session.abort(notice.generation);
      // The coordinator is gone: whatever the rank is doing (a step, a connect) ends now, and so does the worker.
      session.abortAll();
      control.close();
    });
    try {
      for (;;) {
        const { message, body } = await next();
        if (!(await session.handle(message, body))) break;
      }
    } finally {
      await heartbeat.stop();
      await session.close();
    }
  } catch (error) {
    if (!control.closed && isTesseraError(error)) await send({ type: 'error', code: error.code, message: error.message }).catch(() => undefined);
    throw error;
  } finally {
    control.close();
  }
}

function joinAddress(join: string): { host: string; port: number } {
  const at = join.lastIndexOf(':');
  const host = join.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  const port = Number(join.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--join ${join} is not HOST:PORT; give the address the coordinator printed, e.g. 10.0.0.1:7070`);
  }
  return { host, port };
}

/** How long a worker keeps trying to reach a coordinator that is not listening yet (started after it). */
const JOIN_RETRY_MS = 30_000;

/**
 * What the coordinator may send: plans and steps (a step's block tables and
 * ids as JSON; 256 MiB is far above any real batch), at a rate well above
 * any real step rate.
 */
const CONTROL_LIMITS = { maxFrameBytes: 256 * 2 ** 20, perSecond: 20_000 };

async function dialCoordinator(host: string, port: number, key: Buffer, join: string): Promise<TLSSocket> {
  const giveUp = performance.now() + JOIN_RETRY_MS;
  for (;;) {
    try {
      return await dialSecure(host, port, key);
    } catch (error) {
      if (isHandshakeFailure(error)) {
        throw new TesseraError('TESSERA_ERR_JOIN_REFUSED', `the coordinator at ${join} refused this worker: wrong --token (the TLS handshake failed: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); pass the token the coordinator printed`);
      }
      const refused = (error as NodeJS.ErrnoException).code === 'ECONNREFUSED';
      if (!refused || performance.now() > giveUp) {
        throw new TesseraError('TESSERA_ERR_RANK_LOST', `cannot reach the coordinator at ${join} (${(error as Error).message}); check the address and that it is running`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
