/**
 * The decode side of a KV transfer when the decode replica is a mesh
 * (`serve --tp/--pp --role decode`): the rows another replica computed go
 * to the ranks as kv-write messages (MeshCoordinator.writeKv), each rank
 * of the stage holding the layer writing the heads it holds, in order with
 * the steps, so the first step of the admitted sequence reads them. The
 * reservation's block accounting stays on the driver (kv-reservation.ts).
 *
 * Rows written to one plan generation are gone with it: a sink that saw
 * the mesh re-shard since its first write says so (`intact` false), and the
 * transfer fails rather than admit a sequence whose KV is not there (the
 * router prefills it again elsewhere).
 */
import type { KvRows } from '../engine/kv-messages.js';
import type { KvRowSink } from '../engine/kv-reservation.js';
import type { ControlMessage } from './control-message.js';
import type { KvLayout } from './rank-runner.js';

export type KvWrite = Omit<Extract<ControlMessage, { type: 'kv-write' }>, 'type' | 'generation'>;

/** What the importer needs of the mesh. */
export interface KvWriter {
  readonly generation: number;
  writeKv(write: KvWrite, body: Uint8Array, generation?: number): boolean;
}

export class MeshRowSink implements KvRowSink {
  /** The plan generation the first write went to. */
  private generation: number | undefined;
  private lost = false;

  constructor(
    private readonly mesh: KvWriter,
    /** The driver's KV pool layout, which the ranks mirror. */
    private readonly pool: KvLayout,
  ) {}

  write(rows: KvRows, blockTable: Int32Array): void {
    const generation = (this.generation ??= this.mesh.generation);
    const keys = new Uint8Array(rows.keys.buffer, rows.keys.byteOffset, rows.keys.byteLength);
    const values = new Uint8Array(rows.values.buffer, rows.values.byteOffset, rows.values.byteLength);
    const body = new Uint8Array(keys.byteLength + values.byteLength);
    body.set(keys);
    body.set(values, keys.byteLength);
    const dtype = rows.keys instanceof Uint16Array ? 'f16' : 'f32';
    const write: KvWrite = { pool: this.pool, blockTable: Array.from(blockTable), layer: rows.layer, from: rows.from, count: rows.count, heads: [rows.headStart, rows.headStart + rows.headCount], dtype };
    if (!this.mesh.writeKv(write, body, generation)) this.lost = true;
  }

  get intact(): boolean {
    return !this.lost && (this.generation === undefined || this.generation === this.mesh.generation);
  }
}
