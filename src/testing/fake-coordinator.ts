/**
 * The coordinator's end of the control protocol, driven by a test: it
 * listens with the join key (link-security.ts), takes a worker's join and
 * heartbeat connections, and lets the test send whatever frames it likes —
 * well-formed messages, or raw bytes — and read the replies. The wire fuzzer
 * and the penetration test use it to play a coordinator (honest or not)
 * against a live rank.
 */
import type { Server } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { decodeControl, encodeControl, PROTOCOL_VERSION, type ControlMessage, type Envelope } from '../cluster/control-message.js';
import { joinKey, secureServer } from '../cluster/link-security.js';
import { FramedSocket } from '../parallel/framed-socket.js';

/** One joined worker's control connection. */
export class JoinedWorker {
  constructor(
    readonly link: FramedSocket,
    /** The greeting, already read to tell this connection from a heartbeat one. */
    private greeting: Uint8Array | undefined,
  ) {}

  send(message: ControlMessage, body?: Uint8Array): Promise<void> {
    return this.link.send(encodeControl(message, body));
  }

  /** A frame of any bytes (the length prefix is added). */
  sendRaw(payload: Uint8Array): Promise<void> {
    return this.link.send(payload);
  }

  /** The next message; undefined once the worker hung up (or sent something undecodable). */
  async next(timeoutMs = 30_000): Promise<Envelope | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no message from the worker within ${timeoutMs} ms`)), timeoutMs)));
    try {
      const greeting = this.greeting;
      this.greeting = undefined;
      return decodeControl(greeting ?? (await Promise.race([this.link.receive(), timeout])));
    } catch (error) {
      if ((error as Error).message.startsWith('no message from the worker')) throw error;
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The next message of `type`, skipping others; undefined when the worker hung up first. */
  async expect<T extends ControlMessage['type']>(type: T, timeoutMs?: number): Promise<Extract<ControlMessage, { type: T }> | undefined> {
    for (;;) {
      const envelope = await this.next(timeoutMs);
      if (!envelope) return undefined;
      if (envelope.message.type === type) return envelope.message as Extract<ControlMessage, { type: T }>;
    }
  }

  close(): void {
    this.link.close();
  }
}

export class FakeCoordinator {
  private readonly joined: JoinedWorker[] = [];
  private waiting: ((worker: JoinedWorker) => void) | undefined;
  /** Every handshake the TLS layer refused, as `from: why`. */
  readonly refusals: string[] = [];

  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {}

  static async open(token: string): Promise<FakeCoordinator> {
    let self: FakeCoordinator | undefined;
    const server = secureServer(
      joinKey(token),
      (socket) => self?.accept(socket),
      (from, why) => self?.refusals.push(`${from}: ${why}`),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    self = new FakeCoordinator(server, `127.0.0.1:${port}`);
    return self;
  }

  /** The next worker to join (welcomed as `nodeId`); its heartbeat connection is taken and ignored. */
  async nextWorker(nodeId = 'n1'): Promise<JoinedWorker> {
    const worker = this.joined.shift() ?? (await new Promise<JoinedWorker>((resolve) => (this.waiting = resolve)));
    await worker.expect('hello');
    await worker.send({ type: 'welcome', protocol: PROTOCOL_VERSION, nodeId, heartbeat: { intervalMs: 250, timeoutMs: 60_000 } });
    return worker;
  }

  close(): void {
    this.server.close();
    for (const worker of this.joined) worker.close();
  }

  private accept(socket: TLSSocket): void {
    const link = new FramedSocket(socket, (why) => new Error(why));
    // Tell a control connection (hello) from a heartbeat one (beat-hello) by peeking at its first frame.
    link.receive().then(
      (frame) => {
        let type: string;
        try {
          type = decodeControl(frame).message.type;
        } catch {
          return link.close();
        }
        if (type !== 'hello') return void drain(link);
        const worker = new JoinedWorker(link, frame);
        if (this.waiting) {
          this.waiting(worker);
          this.waiting = undefined;
        } else this.joined.push(worker);
      },
      () => undefined,
    );
  }
}

/** A heartbeat connection: read and dropped until it closes. */
async function drain(link: FramedSocket): Promise<void> {
  for (;;) await link.receive().catch(() => new Promise<never>(() => undefined));
}

