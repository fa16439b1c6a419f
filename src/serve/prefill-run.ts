/**
 * One sequence prefilled here for a decode replica: submitted with its KV
 * role, so the engine streams its rows out layer by layer; its first
 * token's output is written as it comes (the client's first token does not
 * wait for the transfer), and once the decode replica acknowledges the
 * rows and that token, a `handoff` event ends the stream. A sequence that
 * ends at its first token ends here with a normal finish. A broken transfer
 * or a failed step ends it with an error event (retryable: the router
 * prefills it again elsewhere).
 */
import { TesseraError } from '../core/errors.js';
import type { TransferId } from '../engine/kv-messages.js';
import type { SequenceRequest } from '../engine/sequence.js';
import type { Abortable } from './admission.js';
import type { SequenceId, SequenceUpdate } from './engine-host.js';
import type { LocalEngineHost } from './local-engine-host.js';
import type { KvPart } from './pd-protocol.js';
import type { PdReplica } from './pd-replica.js';
import type { ReplicaEvent } from './replica-protocol.js';
import type { ServingModel } from './serving-model.js';

type SendPart = Extract<KvPart, { send: unknown }>['send'];

export class PrefillRun implements Abortable {
  readonly done: Promise<void>;
  private settle!: () => void;
  private settled = false;
  private sequenceId: SequenceId | undefined;
  private readonly transfer: TransferId;
  private readonly startedAt = performance.now();

  constructor(
    private readonly model: ServingModel,
    private readonly pd: PdReplica,
    private readonly host: LocalEngineHost,
    request: SequenceRequest,
    part: SendPart,
    private readonly write: (event: ReplicaEvent) => void,
  ) {
    this.done = new Promise((resolve) => (this.settle = resolve));
    this.transfer = part.transfer;
    pd.send(part.transfer, part.endpoints, (event) => this.handedOff(event), (error) => this.abort(error));
    // No endpoint of the decode replica was usable: the error is written already, nothing to compute.
    if (this.settled) return;
    void this.submit(request, part);
  }

  /** Submits the sequence once its link is up, naming the link's shared-memory ring (the engine then writes the rows there itself). */
  private async submit(request: SequenceRequest, part: SendPart): Promise<void> {
    const ring = await this.pd.ringFor(part.endpoints);
    if (this.settled) return;
    const role = { send: { transfer: part.transfer, skipPositions: part.skipPositions, ...(ring !== undefined ? { ring } : {}) } };
    this.sequenceId = this.host.submit(request, { onOutput: (output) => this.output(output), onError: (error) => this.abort(error) }, role);
  }

  /** The client (the router) went away: stop computing and let the decode replica's blocks go. */
  cancel(): void {
    if (this.settled) return;
    this.abort(new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', 'the router cancelled the prefill'));
  }

  /** Ends the run with an error event (a drain's grace ran out, the transfer broke, the step failed). */
  abort(error: TesseraError): void {
    if (this.settled) return;
    this.end();
    if (this.sequenceId) this.host.cancel(this.sequenceId);
    this.pd.endSend(this.transfer, error);
    this.write({ type: 'error', code: error.code, message: error.message });
  }

  private output(output: SequenceUpdate): void {
    if (this.settled) return;
    if (output.ids.length > 0) {
      this.model.metrics.timeToFirstToken.observe((performance.now() - this.startedAt) / 1000);
      this.model.metrics.generationTokens.inc(output.ids.length);
    }
    this.write({ type: 'output', ...output });
    if (!output.finish) return;
    // Finished at its first token (a stop, an end token, max_tokens 1): nothing goes to the decode replica.
    this.end();
    this.pd.endSend(this.transfer);
  }

  private handedOff(event: Extract<ReplicaEvent, { type: 'handoff' }>): void {
    if (this.settled) return;
    this.end();
    // The engine let the sequence go at its handoff; this forgets it in the host too.
    if (this.sequenceId) this.host.cancel(this.sequenceId);
    this.write(event);
  }

  private end(): void {
    this.settled = true;
    this.settle();
  }
}
