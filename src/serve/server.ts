/**
 * The HTTP server: routing, API key, body limits, OpenAI-shaped errors,
 * health and metrics. It listens before the model has loaded (so /health
 * answers and /ready says 503 until then); generation requests go to the
 * engine worker through the ServingModel. Nothing a request sends can take
 * the server down: every handler's failure ends as an error response for
 * that request alone.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
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
import { DashboardFeed } from './dashboard-feed.js';
import { requestPath } from './request-target.js';
import { apiKey, DEFAULT_SCOPES, Keyring, type ApiKey } from './api-keys.js';
import { scopeOf } from './route-access.js';
import type { TlsFiles } from './tls-files.js';
import { isDashboardPath, serveDashboard } from './dashboard-routes.js';
import type { ServingModel } from './serving-model.js';

export interface ServerOptions {
  host: string;
  port: number;
  /** One key with the default scopes (inference, metrics); `keys` for several or other scopes. */
  apiKey?: string;
  keys?: readonly ApiKey[];
  /** A key with the admin scope alone (/admin routes); without any admin key they are off. */
  adminKey?: string;
  /** HTTPS with this certificate and key; plain HTTP without. */
  tls?: TlsFiles;
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
  /** What /dashboard shows; launchers register the topology they run. */
  readonly dashboard = new DashboardFeed({ registry: this.metrics.registry, model: () => this.model && { name: this.model.name, host: this.model.host } });
  private model: ServingModel | undefined;
  private readonly server: Server;
  private readonly closeHooks: (() => void)[] = [];
  private readonly keyring: Keyring;

  private constructor(private readonly options: ServerOptions) {
    this.keyring = new Keyring([
      ...(options.apiKey === undefined ? [] : [apiKey(options.apiKey, DEFAULT_SCOPES, 'the API key')]),
      ...(options.adminKey === undefined ? [] : [apiKey(options.adminKey, ['admin'], 'the admin key')]),
      ...(options.keys ?? []),
    ]);
    const handle = (request: IncomingMessage, response: ServerResponse): void => {
      this.route(request, response).catch((error: unknown) => this.sendError(response, toApiError(error)));
    };
    this.server = options.tls ? createTlsServer({ cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' }, handle) : createServer(handle);
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
    return `${this.options.tls ? 'https' : 'http'}://${host}:${address.port}`;
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
    this.dashboard.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.model?.host.close();
    for (const hook of this.closeHooks.splice(0)) hook();
  }

  private async route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = requestPath(request.url);
    const endpoint = endpointLabel(path);
    response.on('finish', () => this.metrics.requests.inc({ endpoint, status: String(response.statusCode) }));
    // A client that vanishes mid-write must not surface as an unhandled 'error' event (which would end the process).
    response.on('error', () => undefined);
    request.on('error', () => undefined);
    const method = request.method ?? 'GET';
    if (method === 'GET' && path === '/health') return sendJson(response, 200, { status: 'ok' });
    if (method === 'GET' && path === '/ready') return this.sendReady(response);
    this.keyring.authorize(request.headers.authorization, scopeOf(path));
    if (method === 'GET' && path === '/metrics') return this.sendMetrics(response);
    if (isDashboardPath(path)) return serveDashboard(this.dashboard, method, path, response);
    if (isAdminPath(path)) {
      const body = method === 'POST' ? await readJsonBody(request, this.options.maxBodyBytes) : undefined;
      const answer = await serveAdmin({ method, path, body }, this.model?.host);
      return sendJson(response, answer.status, answer.body);
    }
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
    if (error.status === 401) headers['www-authenticate'] = 'Bearer';
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
