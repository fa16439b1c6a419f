/**
 * One rank of `tessera bench comm`, forked with an IPC channel: it opens its
 * mesh listener, learns every rank's address from the parent, connects, and
 * runs the same sequence of timed collectives as every other rank (SPMD).
 * Rank 0 sends the results back over IPC.
 */
import { Communicator } from './collectives.js';
import { MeshListener, connectMesh, type MeshAddress, type SocketKind } from './socket-transport.js';
import { runCommSweep, type SweepSettings } from './comm-sweep.js';

interface Setup {
  rank: number;
  addresses: MeshAddress[];
  token: string;
  settings: SweepSettings;
}

const send = (message: unknown): void => void process.send?.(message);
const kind = process.env.TESSERA_BENCH_TRANSPORT as SocketKind;
const listener = await MeshListener.open(kind);
send({ type: 'listening', address: listener.address });
const setup = await new Promise<Setup>((resolve) => process.once('message', (message) => resolve(message as Setup)));
const transport = await connectMesh(setup.rank, setup.addresses, listener, setup.token);
const results = await runCommSweep(new Communicator(transport), setup.settings);
if (setup.rank === 0) send({ type: 'results', results });
await transport.close();
process.disconnect?.();
