/**
 * The replica routes of disaggregated prefill and decode (pd-protocol.ts):
 * a routed sequence with `kv.receive` reserves KV blocks here and decodes
 * once the prefill replica's rows and first token arrived; one with
 * `kv.send` is prefilled here, its rows streamed to the decode replica, and
 * handed off after its first token (prefill-run.ts).
 */
import type { ServerResponse } from 'node:http';
import type { StepStats } from '../engine/engine-core.js';
import type { KvRole, TransferId } from '../engine/kv-messages.js';
import type { SequenceRequest } from '../engine/sequence.js';
import { ApiError } from './api-error.js';
import type { EngineHost, EngineLimits, HostHealth, SequenceId, SequenceListener } from './engine-host.js';
import type { LocalEngineHost } from './local-engine-host.js';
import { parseKvProbe, type KvPart } from './pd-protocol.js';
import type { PdReplica } from './pd-replica.js';
import { PrefillRun } from './prefill-run.js';
import { openNdjson, streamSequence } from './replica-routes.js';
import { checkServing, type ServingModel } from './serving-model.js';
import type { ProbeResult } from '../disagg/kv-sender.js';

export async function serveKvSequence(model: ServingModel, request: SequenceRequest, kv: KvPart, response: ServerResponse): Promise<undefined> {
  const pd = model.pd;
  if (!pd || !pd.load.kvTransfer) throw new ApiError(400, 'this server does not move KV between replicas (a router, or a replica whose KV is on a device); send it whole sequences', 'invalid_request_error', 'kv', 'kv_transfer_unsupported');
  if ('receive' in kv) return serveDecode(model, pd, request, kv.receive.transfer, response);
  if (pd.load.role === 'decode') throw new ApiError(400, 'this replica has --role decode: it does not prefill for others', 'invalid_request_error', 'kv.send', 'kv_transfer_unsupported');
  const write = openNdjson(response);
  const run = new PrefillRun(model, pd, model.host as LocalEngineHost, request, kv.send, write);
  response.on('close', () => run.cancel());
  // A drain waits for the prefill (or ends it with a retryable error) like any run.
  const release = model.admission.track(run);
  response.once('close', release);
  await run.done;
  if (!response.destroyed) response.end();
  return undefined;
}

/** POST /v1/tessera/kv/probe: this (prefill) replica's link to a decode replica, measured. */
export async function serveKvProbe(model: ServingModel, body: unknown): Promise<ProbeResult> {
  checkServing(model);
  const { endpoints, frames, frameBytes } = parseKvProbe(body);
  if (!model.pd) throw new ApiError(400, 'this server does not move KV between replicas', 'invalid_request_error', null, 'kv_transfer_unsupported');
  return model.pd.probe(endpoints, frames, frameBytes);
}

/** Reserves blocks (429 when there is no room), says so, then decodes once the transfer is in. */
async function serveDecode(model: ServingModel, pd: PdReplica, request: SequenceRequest, transfer: TransferId, response: ServerResponse): Promise<undefined> {
  const skipPositions = await pd.reserve(transfer, [...request.promptIds, ...(request.resumeIds ?? [])]);
  try {
    const host = new KvRoleHost(model.host as LocalEngineHost, { receive: { transfer } });
    return await streamSequence(model, host, request, response, (write) => {
      write({ type: 'kv-reserved', transfer, skipPositions, endpoints: pd.endpoints });
      pd.receive(transfer, write);
    });
  } finally {
    pd.endReceive(transfer);
  }
}

/** The local host, submitting with a KV role: lets a ChoiceRun run a sequence that takes part in a transfer. */
class KvRoleHost implements EngineHost {
  constructor(
    private readonly host: LocalEngineHost,
    private readonly role: KvRole,
  ) {}

  get limits(): EngineLimits {
    return this.host.limits;
  }

  get activeSequences(): number {
    return this.host.activeSequences;
  }

  submit(request: SequenceRequest, listener: SequenceListener): SequenceId {
    return this.host.submit(request, listener, this.role);
  }

  cancel(sequenceId: SequenceId): void {
    this.host.cancel(sequenceId);
  }

  stats(): StepStats {
    return this.host.stats();
  }

  onStats(listener: (stats: StepStats) => void): void {
    this.host.onStats(listener);
  }

  health(): HostHealth {
    return this.host.health();
  }

  close(): Promise<void> {
    return this.host.close();
  }
}
