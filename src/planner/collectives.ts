/**
 * Collective times in the α–β model with nccl-tests' bus-bandwidth
 * convention: a collective of S bytes over n ranks puts S × factor bytes on
 * each rank's link (all-reduce 2(n−1)/n; all-gather, reduce-scatter and
 * all-to-all (n−1)/n; a point-to-point send 1), at the link's bus bandwidth,
 * after a fixed latency α. S is the full buffer (all-gather: the gathered one).
 */
import type { HardwareSpec, LinkSpec } from './hardware.js';

export type Collective = 'all-reduce' | 'all-gather' | 'all-to-all' | 'send';

export function busFactor(collective: Collective, ranks: number): number {
  switch (collective) {
    case 'all-reduce':
      return (2 * (ranks - 1)) / ranks;
    case 'all-gather':
    case 'all-to-all':
      return (ranks - 1) / ranks;
    case 'send':
      return 1;
  }
}

/** Milliseconds for one collective of `bytes` over `ranks` ranks on `link`; 0 for a group of one. */
export function collectiveMs(link: LinkSpec, collective: Collective, bytes: number, ranks: number): number {
  if (ranks <= 1 && collective !== 'send') return 0;
  const bytesPerMs = link.busBandwidthGBs * 1e6;
  return link.latencyUs / 1000 + (bytes * busFactor(collective, Math.max(ranks, 2))) / bytesPerMs;
}

/**
 * The link a group of `groupSize` consecutive ranks talks over: the device's
 * own (CPU ranks sharing a host talk over its local transport, which is the
 * interconnect entry), the node's interconnect when the group fits in a node,
 * else the network between nodes.
 */
export function groupLink(hardware: HardwareSpec, groupSize: number, ranksPerDevice: number): LinkSpec {
  const ranksPerNode = hardware.devicesPerNode * ranksPerDevice;
  return groupSize <= ranksPerNode ? hardware.interconnect : hardware.network;
}
