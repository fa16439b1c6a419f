/** A replica's Prometheus series for KV transfers (disaggregated prefill and decode), in the server's registry. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type KvDirection = 'sent' | 'received';

/** A rows frame's copy takes tens of µs (64 KiB-1 MiB at several GB/s); one over 1 ms lost its core meanwhile. */
export const FRAME_COPY_BUCKETS = [0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1];

export class KvMetrics {
  readonly bytes: Counter<'direction'>;
  readonly frames: Counter<'direction'>;
  readonly ringBytes: Counter<'direction'>;
  readonly directBytes: Counter<'direction'>;
  readonly transfers: Counter<'direction' | 'result'>;
  readonly seconds: Histogram<'direction'>;
  readonly wireSeconds: Histogram<'direction'>;
  readonly inFlight: Gauge<'direction'>;
  readonly frameCopySeconds: Histogram<'copy'>;
  /** Read at each scrape: given-up transfers whose blocks wait for their direct writer to stop, and transfers whose blocks a writer knows. */
  heldTransfers: () => number = () => 0;
  targetTransfers: () => number = () => 0;

  constructor(registry: Registry) {
    const registers = [registry];
    this.bytes = new Counter({ name: 'tessera_kv_transfer_bytes_total', help: 'Bytes of KV rows sent to decode replicas or received from prefill replicas', labelNames: ['direction'], registers });
    this.frames = new Counter({ name: 'tessera_kv_transfer_frames_total', help: 'KV rows frames received (bytes / frames: the frame size a bandwidth probe should use)', labelNames: ['direction'], registers });
    this.ringBytes = new Counter({ name: 'tessera_kv_transfer_ring_bytes_total', help: 'Bytes of KV rows received through a shared-memory ring (copied by the engine threads), the rest came inline on the link', labelNames: ['direction'], registers });
    this.directBytes = new Counter({ name: 'tessera_kv_transfer_direct_bytes_total', help: 'Bytes of KV rows the prefill engine wrote straight into this replica\'s KV blocks (one copy, same host)', labelNames: ['direction'], registers });
    this.transfers = new Counter({ name: 'tessera_kv_transfers_total', help: 'KV transfers by direction and result (done, failed)', labelNames: ['direction', 'result'], registers });
    this.seconds = new Histogram({ name: 'tessera_kv_transfer_seconds', help: 'Per transfer: first row sent/received to the decode replica holding everything (overlaps the prefill)', labelNames: ['direction'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 120], registers });
    this.wireSeconds = new Histogram({ name: 'tessera_kv_transfer_wire_seconds', help: 'Per transfer: time its rows were on the wire (summed over frames, measured by the receiver)', labelNames: ['direction'], buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1], registers });
    this.frameCopySeconds = new Histogram({
      name: 'tessera_kv_frame_copy_seconds',
      help: 'Per KV rows frame received: each copy (write: the prefill engine into the ring; read: this engine out of it; direct: the prefill engine straight into this engine\'s KV blocks; whole: a frame that came another way), its slow tail the time the scheduler took from a copying thread',
      labelNames: ['copy'],
      buckets: FRAME_COPY_BUCKETS,
      registers,
    });
    // Gauges read when scraped: their counts live with the ring bridge.
    const readAtScrape = (name: string, help: string, read: () => number): Gauge =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    readAtScrape('tessera_kv_direct_held_transfers', 'Given-up KV transfers whose blocks stay held until the prefill engine writing into them directly has stopped (answered the revoke, or its process is gone)', () => this.heldTransfers());
    readAtScrape('tessera_kv_direct_target_transfers', 'KV transfers whose reserved blocks a prefill engine was told (it writes into them directly), not yet admitted or given up', () => this.targetTransfers());
    this.inFlight = new Gauge({ name: 'tessera_kv_transfers_in_flight', help: 'KV transfers under way', labelNames: ['direction'], registers });
  }
}
