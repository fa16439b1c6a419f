/**
 * The HTTP server: routing, API key, body limits, OpenAI-shaped errors,
 * health and metrics. It listens before the model has loaded (so /health
 * answers and /ready says 503 until then); generation requests go to the
 * engine worker through the ServingModel. Nothing a request sends can take
 * the server down: every handler's failure ends as an error response for
 * that request alone.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError, errorBody, toApiError } from './api-error.js';
import { serveChatCompletion } from './chat-completions.js';
import { serveCompletion } from './completions.js';
import { ServeMetrics } from './metrics.js';
import { isAdminPath, recordReshards, serveAdmin } from './admin-routes.js';
import { Admission } from './admission.js';
import { REPLICA_LOAD_PATH, REPLICA_SEQUENCES_PATH } from './replica-protocol.js';
import { replicaLoad, serveReplicaSequence } from './replica-routes.js';
import { REPLICA_KV_PROBE_PATH } from './pd-protocol.js';
import { serveKvProbe } from './pd-routes.js';
import { serveDetokenize, serveTokenize } from './tokenize-routes.js';
import type { ServingModel } from './serving-model.js';

export interface ServerOptions {
  host: string;
  port: number;
  apiKey?: string;
  /** Key of the /admin routes (admin-routes.ts); without one they are off. */
  adminKey?: string;
  /** Request bodies above this get 413. */
  maxBodyBytes: number;
}

export const DEFAULT_MAX_BODY_BYTES = 4 * 2 ** 20;

type Handler = (model: ServingModel, body: unknown, response: ServerResponse) => Promise<unknown>;

const GENERATION_ROUTES: Record<string, Handler> = {
  '/v1/completions': serveCompletion,
  '/v1/chat/completions': serveChatCompletion,
  '/tokenize': serveTokenize,
  '/detokenize': serveDetokenize,
  [REPLICA_SEQUENCES_PATH]: serveReplicaSequence,
  [REPLICA_KV_PROBE_PATH]: serveKvProbe,
};

export class TesseraServer {
  readonly metrics = new ServeMetrics();
  readonly admission = new Admission();
  private model: ServingModel | undefined;
  private readonly server: Server;
  private readonly closeHooks: (() => void)[] = [];

  private constructor(private readonly options: ServerOptions) {
    this.server = createServer((request, response) => {
      this.route(request, response).catch((error: unknown) => this.sendError(response, toApiError(error)));
    });
  }

  static async listen(options: ServerOptions): Promise<TesseraServer> {
    const server = new TesseraServer(options);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(options.port, options.host, () => resolve());
    });
    return server;
  }

  /** The model is loaded: generation routes and /ready open. */
  setModel(model: ServingModel): void {
    this.model = model;
    model.host.onStats((stats) => this.metrics.recordStep(stats));
    recordReshards(this.metrics.registry, model.host);
  }

  /** The model being served, once loaded. */
  get servingModel(): ServingModel | undefined {
    return this.model;
  }

  get url(): string {
    const address = this.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  /** Runs after the server closes (removing a synthetic model's files). */
  onClose(hook: () => void): void {
    this.closeHooks.push(hook);
  }

  /**
   * Stops taking generation requests (503 TESSERA_ERR_DRAINING), waits up to
   * `graceMs` for those in flight, then ends the rest with that retryable
   * error (a router resumes them elsewhere). Close afterwards.
   */
  async drain(graceMs: number): Promise<number> {
    return this.admission.drain(graceMs);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.model?.host.close();
    for (const hook of this.closeHooks.splice(0)) hook();
  }

  private async route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const endpoint = endpointLabel(path);
    response.on('finish', () => this.metrics.requests.inc({ endpoint, status: String(response.statusCode) }));
    // A client that vanishes mid-write must not surface as an unhandled 'error' event (which would end the process).
    response.on('error', () => undefined);
    request.on('error', () => undefined);
    const method = request.method ?? 'GET';
    if (method === 'GET' && path === '/health') return sendJson(response, 200, { status: 'ok' });
    if (method === 'GET' && path === '/ready') return this.sendReady(response);
    if (method === 'GET' && path === '/metrics') return this.sendMetrics(response);
    if (isAdminPath(path)) {
      const body = method === 'POST' ? await readJsonBody(request, this.options.maxBodyBytes) : undefined;
      const answer = await serveAdmin({ method, path, authorization: request.headers.authorization, body }, this.model?.host, this.options.adminKey);
      return sendJson(response, answer.status, answer.body);
    }
    if (path.startsWith('/v1/') || path in GENERATION_ROUTES) this.checkApiKey(request);
    const model = this.model;
    if (method === 'GET' && (path === '/v1/models' || path.startsWith('/v1/models/'))) return sendJson(response, 200, this.models(path));
    if (method === 'GET' && path === REPLICA_LOAD_PATH) {
      if (!model) throw new ApiError(503, 'the model is still loading', 'service_unavailable', null, 'loading');
      return sendJson(response, 200, replicaLoad(model));
    }
    const handler = GENERATION_ROUTES[path];
    if (!handler) throw new ApiError(404, `no route ${method} ${path}; see the README for the endpoints`, 'invalid_request_error', null, 'not_found');
    if (method !== 'POST') throw new ApiError(405, `${path} takes POST`, 'invalid_request_error', null, 'method_not_allowed');
    if (!model) throw new ApiError(503, 'the model is still loading; retry when GET /ready says ready', 'service_unavailable', null, 'loading');
    const body = await readJsonBody(request, this.options.maxBodyBytes);
    const result = await handler(model, body, response);
    if (result !== undefined) sendJson(response, 200, result);
  }

  private checkApiKey(request: IncomingMessage): void {
    const key = this.options.apiKey;
    if (key === undefined) return;
    const header = request.headers.authorization ?? '';
    if (header !== `Bearer ${key}`) {
      const message = header === '' ? 'no API key given; send Authorization: Bearer KEY' : 'the API key is wrong; send the key the server was started with';
      throw new ApiError(401, message, 'authentication_error', null, 'invalid_api_key');
    }
  }

  private models(path: string): unknown {
    const model = this.model;
    const card = model && { id: model.name, object: 'model', created: model.created, owned_by: 'tessera', max_model_len: model.host.limits.maxModelLen };
    if (path === '/v1/models') return { object: 'list', data: card ? [card] : [] };
    const name = decodeURIComponent(path.slice('/v1/models/'.length));
    if (!card || name !== card.id) throw new ApiError(404, `the model "${name}" does not exist`, 'invalid_request_error', 'model', 'model_not_found');
    return card;
  }

  private sendReady(response: ServerResponse): void {
    if (!this.model) sendJson(response, 503, { status: 'loading' });
    else if (this.admission.draining) sendJson(response, 503, { status: 'draining', code: 'TESSERA_ERR_DRAINING' });
    else {
      const health = this.model.host.health();
      if (health.ready) sendJson(response, 200, { status: 'ready', model: this.model.name });
      else sendJson(response, 503, { status: health.status, code: health.code ?? null });
    }
  }

  private async sendMetrics(response: ServerResponse): Promise<void> {
    const text = await this.metrics.registry.metrics();
    response.writeHead(200, { 'content-type': this.metrics.registry.contentType });
    response.end(text);
  }

  private sendError(response: ServerResponse, error: ApiError): void {
    if (response.headersSent) {
      response.end();
      return;
    }
    const headers: Record<string, string> = {};
    if (error.status === 429) headers['retry-after'] = '1';
    if (error.status === 413) headers.connection = 'close';
    sendJson(response, error.status, errorBody(error), headers);
  }
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (response.destroyed) return;
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

/** A bounded label set for the requests counter. */
function endpointLabel(path: string): string {
  if (path in GENERATION_ROUTES || path === '/health' || path === '/ready' || path === '/metrics' || path === '/v1/models' || path === REPLICA_LOAD_PATH) return path;
  return path.startsWith('/v1/models/') ? '/v1/models/{id}' : 'other';
}

async function readJsonBody(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  const tooLarge = (): ApiError => new ApiError(413, `the request body is over ${maxBytes} bytes; send a smaller request`, 'invalid_request_error', null, 'request_too_large');
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ApiError(400, `the request body is not valid JSON (${(error as Error).message}); send a JSON object`, 'invalid_request_error', null, 'invalid_json');
  }
}
