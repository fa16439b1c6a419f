/**
 * One rank of `tessera bench comm`, forked with an IPC channel and its rank
 * in the environment: it opens its endpoint (listener, or shared-memory
 * segment), learns every rank's address from the parent, connects, and runs
 * the same sequence of timed collectives as every other rank (SPMD). Rank 0
 * sends the results back over IPC.
 */
import { Communicator } from './collectives.js';
import { NativeCollectiveGroup } from './native-group.js';
import { RankEndpoint } from './rank-links.js';
import type { MeshAddress } from './socket-transport.js';
import { runCommSweep, type SweepSettings } from './comm-sweep.js';
import type { MeshTransportKind } from './transport.js';

interface Setup {
  addresses: MeshAddress[];
  token: string;
  settings: SweepSettings;
}

const send = (message: unknown): void => void process.send?.(message);
const kind = process.env.TESSERA_BENCH_TRANSPORT as MeshTransportKind;
const rank = Number(process.env.TESSERA_BENCH_RANK);
const size = Number(process.env.TESSERA_BENCH_RANKS);
const endpoint = await RankEndpoint.open(kind, rank, size);
send({ type: 'listening', address: endpoint.address });
const setup = await new Promise<Setup>((resolve) => process.once('message', (message) => resolve(message as Setup)));
const links = await endpoint.connect(setup.addresses, setup.token);
const communicator = new Communicator(links.transport);
const native = links.native;
const results = await runCommSweep(
  {
    communicator,
    native: native && NativeCollectiveGroup.open(native.comm, native.mesh, Array.from({ length: size }, (_, i) => i), rank, 0),
    stream: native && ((peer, frame, landing, count, sending, receiving) => native.comm.commStream(native.mesh, peer, frame, landing, count, sending, receiving)),
    plane: native?.kind ?? 'transport',
  },
  setup.settings,
);
if (rank === 0) send({ type: 'results', results });
await links.transport.close();
process.disconnect?.();
