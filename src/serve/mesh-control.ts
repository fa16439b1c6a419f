/**
 * The admin side of a mesh behind a local engine host: describe it, move it
 * to another shape (answered once the new plan serves), and hear of each
 * re-shard. Calls cross to the engine worker thread, where the coordinator
 * lives, as messages (engine-messages.ts).
 */
import { TesseraError, type ErrorCode } from '../core/errors.js';
import type { ClusterView } from '../cluster/cluster-view.js';
import type { ReshardRecord } from '../cluster/reshard-log.js';
import type { AdminAction, HostMessage, WorkerMessage } from './engine-messages.js';

type MeshMessage = Extract<WorkerMessage, { type: 'admin-reply' | 'reshard' }>;

export class MeshControl {
  private readonly calls = new Map<number, { resolve: (view: ClusterView) => void; reject: (error: TesseraError) => void }>();
  private readonly reshardListeners: ((record: ReshardRecord) => void)[] = [];
  private nextCall = 1;

  constructor(
    private readonly send: (message: HostMessage) => void,
    /** Whether the engine worker still runs. */
    private readonly running: () => boolean,
  ) {}

  /** The mesh as GET /admin/cluster shows it, after `action`. */
  admin(action: AdminAction): Promise<ClusterView> {
    if (!this.running()) return Promise.reject(new TesseraError('TESSERA_ERR_INTERNAL', 'the engine worker is not running; restart the server'));
    const requestId = this.nextCall++;
    return new Promise((resolve, reject) => {
      this.calls.set(requestId, { resolve, reject });
      this.send({ type: 'admin', requestId, action });
    });
  }

  /** Each re-shard's record as it fills in. */
  onReshard(listener: (record: ReshardRecord) => void): void {
    this.reshardListeners.push(listener);
  }

  receive(message: MeshMessage): void {
    if (message.type === 'reshard') {
      for (const listener of this.reshardListeners) listener(message.record);
      return;
    }
    const call = this.calls.get(message.requestId);
    this.calls.delete(message.requestId);
    if (message.error) call?.reject(new TesseraError(message.error.code as ErrorCode, message.error.message));
    else if (message.view) call?.resolve(message.view);
  }

  /** The engine worker is gone: calls in flight fail. */
  fail(error: TesseraError): void {
    for (const call of this.calls.values()) call.reject(error);
    this.calls.clear();
  }
}
