/**
 * Requests to a replica over node:http with keep-alive: a POST whose
 * response is read as a stream, and a small GET with a deadline. Cheaper
 * than fetch's web streams, which matters when a router forwards every
 * token of every sequence and polls every replica a few times a second.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

const httpAgent = new HttpAgent({ keepAlive: true });
const httpsAgent = new HttpsAgent({ keepAlive: true });

/** Sends `body` as JSON and resolves with the response once its head has arrived; rejects when the connection fails or `signal` aborts. */
export function postStream(url: string, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<IncomingMessage> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const send = secure ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(target, {
      method: 'POST',
      agent: secure ? httpsAgent : httpAgent,
      headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    // Not http's own `signal` option: an abort after the response has ended would destroy the socket the
    // keep-alive agent has already taken back, with nobody listening for its error.
    let received: IncomingMessage | undefined;
    const abort = (): void => {
      if (!received?.complete) request.destroy(new Error('the stream was aborted'));
    };
    if (signal.aborted) abort();
    signal.addEventListener('abort', abort, { once: true });
    request.once('close', () => signal.removeEventListener('abort', abort));
    request.setNoDelay(true);
    // Errors after the head (an abort, a reset) reach whoever reads the body, through its iterator; these
    // listeners only keep them from also being thrown as uncaught 'error' events.
    request.on('error', () => undefined);
    request.once('response', (response) => {
      received = response;
      response.on('error', () => undefined);
      resolve(response);
    });
    request.once('error', reject);
    request.end(body);
  });
}

/** GET `url`; resolves with the status and body once both have arrived, rejects on a failed connection or after `timeoutMs`. */
export function getText(url: string, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; text: string }> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const send = secure ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(target, { method: 'GET', agent: secure ? httpsAgent : httpAgent, headers });
    const timer = setTimeout(() => request.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    request.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.once('response', (response) => {
      response.on('error', () => undefined);
      readText(response).then((text) => {
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, text });
      }, reject);
    });
    request.end();
  });
}

/** The whole body as text (for error responses). */
export async function readText(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
