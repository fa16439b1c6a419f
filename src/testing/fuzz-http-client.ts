/**
 * An HTTP client for fuzzing a server the ways real clients misbehave: the
 * whole request at once, the body trickled in pieces, a body cut short
 * (Content-Length promises more than is sent, then the client half-closes),
 * or the client hanging up as soon as the response starts. Each ends in an
 * outcome the fuzzer checks; a server that never answers is a timeout.
 */
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';

export type Delivery = 'whole' | 'slow' | 'partial' | 'disconnect';

export interface FuzzRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly delivery: Delivery;
}

export interface FuzzResponse {
  /** Undefined when the server closed without a status line (a cut-short body may end that way). */
  readonly status?: number;
  readonly contentType?: string;
  readonly body: string;
  readonly outcome: 'answered' | 'client hung up' | 'closed without answer' | 'client refused';
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms: ${what}`)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function viaHttp(port: number, fuzz: FuzzRequest): Promise<FuzzResponse> {
  return new Promise((resolve, reject) => {
    let request;
    try {
      request = httpRequest({ host: '127.0.0.1', port, method: fuzz.method, path: fuzz.path, headers: fuzz.headers, agent: false });
    } catch {
      // Node's own client refuses some header or path values before sending anything.
      resolve({ body: '', outcome: 'client refused' });
      return;
    }
    const sent = request;
    sent.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? resolve({ body: '', outcome: 'closed without answer' }) : reject(error)));
    sent.on('response', (response) => {
      const chunks: Buffer[] = [];
      const done = (outcome: FuzzResponse['outcome']): void => resolve({ status: response.statusCode, contentType: response.headers['content-type'], body: Buffer.concat(chunks).toString('utf8'), outcome });
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if (fuzz.delivery === 'disconnect') {
          sent.destroy();
          done('client hung up');
        }
      });
      response.on('end', () => done('answered'));
      response.on('error', () => done('closed without answer'));
    });
    void send(sent, fuzz);
  });
}

async function send(request: ReturnType<typeof httpRequest>, fuzz: FuzzRequest): Promise<void> {
  if (fuzz.delivery !== 'slow' || fuzz.body.length < 2) {
    request.end(fuzz.body);
    return;
  }
  const pieces = 4;
  const size = Math.ceil(fuzz.body.length / pieces);
  for (let at = 0; at < fuzz.body.length; at += size) {
    if (request.destroyed) return;
    request.write(fuzz.body.subarray(at, at + size));
    await pause(15);
  }
  request.end();
}

/** Headers, then Content-Length promising more than half the body that follows, then a half-close. */
function cutShort(port: number, fuzz: FuzzRequest): Promise<FuzzResponse> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const lines = [`${fuzz.method} ${fuzz.path} HTTP/1.1`, 'host: 127.0.0.1', `content-length: ${fuzz.body.length + 16}`, 'connection: close'];
    for (const [name, value] of Object.entries(fuzz.headers)) if (name.toLowerCase() !== 'content-length') lines.push(`${name}: ${value}`);
    socket.on('connect', () => {
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      socket.write(fuzz.body.subarray(0, fuzz.body.length >> 1));
      setTimeout(() => socket.end(), 20);
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve(status ? { status: Number(status[1]), body: text, outcome: 'answered' } : { body: text, outcome: 'closed without answer' });
    });
  });
}

export function sendFuzzRequest(port: number, fuzz: FuzzRequest, timeoutMs: number): Promise<FuzzResponse> {
  const work = fuzz.delivery === 'partial' ? cutShort(port, fuzz) : viaHttp(port, fuzz);
  return withTimeout(work, timeoutMs, `${fuzz.method} ${fuzz.path} (${fuzz.delivery})`);
}
