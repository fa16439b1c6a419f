/**
 * The link between a mesh's ranks, measured in `tessera profile`'s own run
 * (the issue's "link bandwidth and latency between the ranks"): two ranks
 * forked here over the mesh's transport run a short collective sweep
 * (src/parallel/comm-bench.ts) at 4 KiB and 1 MiB. What a token's
 * communication could cost at best, beside what the trace says it cost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommBench } from '../parallel/comm-bench.js';
import type { MeshTransportKind } from '../parallel/transport.js';

export interface LinkLimits {
  readonly transport: MeshTransportKind;
  /** 'shm', 'socket' or 'transport': where the native collectives ran. */
  readonly plane: string;
  /** One-way bandwidth of a 1 MiB message, GB/s. */
  readonly oneWayGBs: number;
  /** A 4 KiB all-reduce (a decode token's hidden state is about that size), µs. */
  readonly allReduceSmallMicros: number;
  /** Bus bandwidth of a 1 MiB all-reduce, GB/s (nccl-tests' convention). */
  readonly allReduceBusGBs: number;
}

const SMALL = 4096;
const LARGE = 1 << 20;

export async function measureLink(transport: MeshTransportKind): Promise<LinkLimits> {
  const scratch = mkdtempSync(join(tmpdir(), 'tessera-profile-link-'));
  try {
    const report = await runCommBench({ ranks: 2, transport, sizes: [SMALL, LARGE], budgetSeconds: 0.2, outDir: scratch });
    // The native path when the addon ran the collectives, else the TypeScript one: what the mesh itself uses.
    const allReduce = (bytes: number) =>
      report.collectives.find((c) => c.collective === 'all_reduce' && c.bytes === bytes && c.path === 'native') ??
      report.collectives.find((c) => c.collective === 'all_reduce' && c.bytes === bytes);
    return {
      transport,
      plane: report.plane,
      oneWayGBs: report.link.find((l) => l.bytes === LARGE)?.oneWayGBps ?? 0,
      allReduceSmallMicros: allReduce(SMALL)?.latencyUs ?? 0,
      allReduceBusGBs: allReduce(LARGE)?.busGBps ?? 0,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
