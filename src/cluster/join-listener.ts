/**
 * Where workers join, open for the coordinator's whole life (a worker may
 * join a running mesh and grow it). Every connection is TLS keyed by the join
 * token (link-security.ts): a peer without the token fails the handshake,
 * which is refused and logged, and the token itself never crosses. Inside,
 * the connection's first frame says what it is: `hello` opens a node's
 * control connection, `beat-hello` its heartbeat connection; either names the
 * protocol version, and a worker of another version is refused with
 * TESSERA_ERR_PROTOCOL_VERSION. Until that first frame, a connection may send
 * one small frame, slowly; a bad one is refused with its coded error.
 */
import type { Server } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { isTesseraError, TesseraError } from '../core/errors.js';
import { FramedSocket } from '../parallel/framed-socket.js';
import { decodeControl, encodeControl, PROTOCOL_VERSION, type ControlMessage } from './control-message.js';
import { joinKey, secureServer } from './link-security.js';

export type Hello = Extract<ControlMessage, { type: 'hello' }>;

export interface JoinHandlers {
  /** A worker with the right token: its control connection and report. */
  control(link: FramedSocket, hello: Hello, from: string): void;
  heartbeat(link: FramedSocket, nodeId: string): void;
}

/** A greeting is a hello with a hardware report: small. (A heartbeat thread's first beats may follow it at once.) */
const GREETING_LIMITS = { maxFrameBytes: 64 * 1024, perSecond: 50 };

export class JoinListener {
  private constructor(
    private readonly server: Server,
    /** HOST:PORT workers join at. */
    readonly address: string,
  ) {}

  static async open(host: string, port: number, token: string, handlers: JoinHandlers, log: (line: string) => void): Promise<JoinListener> {
    const refused = (from: string, why: string): void =>
      log(`refused a worker join from ${from}: wrong token or not a tessera worker (the TLS handshake failed: ${why}) [TESSERA_ERR_JOIN_REFUSED]; pass the --token the coordinator printed`);
    const server = secureServer(joinKey(token), (socket) => greet(socket, handlers, log), refused);
    const address = await listen(server, host, port);
    return new JoinListener(server, address);
  }

  close(): void {
    this.server.close();
  }
}

function greet(socket: TLSSocket, handlers: JoinHandlers, log: (line: string) => void): void {
  const from = socket.remoteAddress ?? 'unknown address';
  const link = new FramedSocket(socket, (why) => new TesseraError('TESSERA_ERR_RANK_LOST', `the worker from ${from} went away (${why}); check its log`));
  link.limit(GREETING_LIMITS);
  link.receive().then(
    (frame) => {
      let first: ControlMessage;
      try {
        first = decodeControl(frame).message;
        if (first.type !== 'hello' && first.type !== 'beat-hello') throw new TesseraError('TESSERA_ERR_PROTOCOL', `a worker's first message must be hello or beat-hello, not ${first.type}`);
        if (first.protocol !== PROTOCOL_VERSION) {
          throw new TesseraError('TESSERA_ERR_PROTOCOL_VERSION', `the worker speaks protocol ${first.protocol}, this coordinator ${PROTOCOL_VERSION}; run the same tessera version on every node`);
        }
      } catch (error) {
        return refuse(link, from, error, log);
      }
      if (first.type === 'hello') handlers.control(link, first, from);
      else handlers.heartbeat(link, first.nodeId);
    },
    (error: unknown) => log(`dropped a worker connection from ${from} before its greeting: ${describe(error)}`),
  );
}

function refuse(link: FramedSocket, from: string, error: unknown, log: (line: string) => void): void {
  const coded = isTesseraError(error) ? error : new TesseraError('TESSERA_ERR_PROTOCOL', String(error));
  log(`refused a worker join from ${from}: ${coded.code}: ${coded.message}`);
  link.send(encodeControl({ type: 'error', code: coded.code, message: coded.message })).finally(() => link.close()).catch(() => undefined);
}

function describe(error: unknown): string {
  return isTesseraError(error) ? `${error.code}: ${error.message}` : String(error);
}

function listen(server: Server, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', (error) =>
      reject(new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `cannot listen for workers on ${host}:${port} (${error.message}); pick another --listen address`)),
    );
    server.listen(port, host, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : port;
      resolve(`${host.includes(':') ? `[${host}]` : host}:${bound}`);
    });
  });
}
