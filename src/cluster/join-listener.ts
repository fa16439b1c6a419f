/**
 * Where workers join, open for the coordinator's whole life (a worker may
 * join a running mesh and grow it). A connection's first frame says what it
 * is: `hello` opens a node's control connection, `beat-hello` its heartbeat
 * connection. Either must carry the join token; a wrong one is refused and
 * logged.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { TesseraError } from '../core/errors.js';
import { FramedSocket } from '../parallel/framed-socket.js';
import { decodeControl, encodeControl, type ControlMessage } from './control-message.js';

export type Hello = Extract<ControlMessage, { type: 'hello' }>;

export interface JoinHandlers {
  /** A worker with the right token: its control connection and report. */
  control(link: FramedSocket, hello: Hello, from: string): void;
  heartbeat(link: FramedSocket, nodeId: string): void;
}

export class JoinListener {
  private constructor(
    private readonly server: Server,
    /** HOST:PORT workers join at. */
    readonly address: string,
  ) {}

  static async open(host: string, port: number, token: string, handlers: JoinHandlers, log: (line: string) => void): Promise<JoinListener> {
    const server = createServer({ noDelay: true });
    const address = await listen(server, host, port);
    server.on('connection', (socket: Socket) => greet(socket, token, handlers, log));
    return new JoinListener(server, address);
  }

  close(): void {
    this.server.close();
  }
}

function greet(socket: Socket, token: string, handlers: JoinHandlers, log: (line: string) => void): void {
  const from = socket.remoteAddress ?? 'unknown address';
  const link = new FramedSocket(socket, (why) => new TesseraError('TESSERA_ERR_RANK_LOST', `the worker from ${from} went away (${why}); check its log`));
  link.receive().then((frame) => {
    let first: ControlMessage | undefined;
    try {
      first = decodeControl(frame).message;
    } catch {
      first = undefined;
    }
    const right = (first?.type === 'hello' || first?.type === 'beat-hello') && first.token === token;
    if (!right) {
      log(`refused a worker join from ${from}: wrong token; pass the --token the coordinator printed`);
      link.send(encodeControl({ type: 'refused', message: 'wrong token; pass the --token the coordinator printed' })).finally(() => link.close());
    } else if (first?.type === 'hello') handlers.control(link, first, from);
    else if (first?.type === 'beat-hello') handlers.heartbeat(link, first.nodeId);
  }, () => undefined);
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
