/**
 * Network namespaces as separate "hosts" on this machine, for multi-host
 * tests and benchmarks: a bridge in the root namespace at SUBNET.1 and one
 * namespace per host at SUBNET.(10 + i), joined to the bridge by a veth pair.
 * Optional `tc netem` on each host's interface shapes every packet it sends.
 * Needs root (CI is root); `makeHosts` returns a reason string when the
 * namespaces cannot be made, so the caller can skip.
 */
import { execFileSync } from 'node:child_process';

export interface Hosts {
  /** Address of the root namespace on the bridge (where a coordinator listens). */
  bridgeAddress: string;
  namespaces: string[];
  addresses: string[];
  /** The root-namespace end of each host's veth pair: `ip link set LINK down` cuts that host off. */
  links: string[];
  /** The qdisc actually applied: netem, or tbf (rate only) where the kernel has no netem. */
  shaping: string;
  remove(): void;
}

export interface Shaping {
  /** e.g. '1gbit' */
  rate: string;
  /** e.g. '0.2ms' */
  delay: string;
}

export function makeHosts(count: number, shaping?: Shaping): Hosts | string {
  const tag = `ts${process.pid % 100000}`;
  const subnet = `10.213.${process.pid % 250}`;
  const bridge = `${tag}br`;
  const namespaces = Array.from({ length: count }, (_, i) => `${tag}n${i}`);
  const addresses = namespaces.map((_, i) => `${subnet}.${10 + i}`);
  const remove = (): void => {
    for (const ns of namespaces) quiet(['netns', 'del', ns]);
    namespaces.forEach((_, i) => quiet(['link', 'del', `${tag}h${i}`]));
    quiet(['link', 'del', bridge]);
  };
  let applied = 'none';
  try {
    ip(['link', 'add', bridge, 'type', 'bridge']);
    ip(['addr', 'add', `${subnet}.1/24`, 'dev', bridge]);
    ip(['link', 'set', bridge, 'up']);
    namespaces.forEach((ns, i) => {
      const [host, inside] = [`${tag}h${i}`, `${tag}v${i}`];
      ip(['netns', 'add', ns]);
      ip(['link', 'add', host, 'type', 'veth', 'peer', 'name', inside]);
      ip(['link', 'set', inside, 'netns', ns]);
      ip(['link', 'set', host, 'master', bridge]);
      ip(['link', 'set', host, 'up']);
      ip(['-n', ns, 'addr', 'add', `${addresses[i]}/24`, 'dev', inside]);
      ip(['-n', ns, 'link', 'set', inside, 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      if (shaping) applied = shape(ns, inside, shaping);
    });
    const links = namespaces.map((_, i) => `${tag}h${i}`);
    return { bridgeAddress: `${subnet}.1`, namespaces, addresses, links, shaping: applied, remove };
  } catch (error) {
    remove();
    return `network namespaces cannot be made here (${(error as Error).message.split('\n')[0]})`;
  }
}

/** netem delay + rate; where this kernel lacks sch_netem, a tbf rate limit alone. */
function shape(ns: string, device: string, shaping: Shaping): string {
  const tc = (args: string[]): void => void execFileSync('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', device, 'root', ...args], { stdio: 'pipe' });
  try {
    tc(['netem', 'delay', shaping.delay, 'rate', shaping.rate]);
    return `netem delay ${shaping.delay} rate ${shaping.rate}`;
  } catch {
    tc(['tbf', 'rate', shaping.rate, 'burst', '256kb', 'latency', '50ms']);
    return `tbf rate ${shaping.rate} (no delay: this kernel has no sch_netem)`;
  }
}

export function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

function quiet(args: string[]): void {
  try {
    ip(args);
  } catch {
    // already gone
  }
}
