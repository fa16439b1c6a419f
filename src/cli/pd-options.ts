/** The flags of a replica's part in disaggregated prefill and decode (`tessera serve --role`), shared by serve and serve --replicas. */
import { Option, type Command } from 'commander';
import { KV_TRANSPORT_CHOICES, type KvTransportChoice } from '../disagg/kv-endpoint.js';
import { PROMPT_ORDERS, REPLICA_ROLES, type PromptOrder, type ReplicaRole } from '../serve/pd-protocol.js';
import type { LaunchOptions } from '../serve/launch.js';
import { numberOption } from './model-options.js';

export interface PdFlags {
  role: ReplicaRole;
  kvHost?: string;
  kvPort: number;
  kvAdvertiseHost?: string;
  kvTransport: KvTransportChoice;
  kvTransferTimeout: number;
  kvDirect: 'on' | 'off';
  engineNice?: number;
  promptOrder?: PromptOrder;
}

export function addPdOptions(command: Command): Command {
  return command
    .addOption(new Option('--role <role>', 'what a --pd router sends this replica: prompts to prefill and hand off (prefill), sequences to decode after a KV transfer (decode), or either and whole sequences (both)').choices([...REPLICA_ROLES]).default('both'))
    .option('--kv-host <host>', 'address the KV listener (decode and both roles) listens on (default: --host)')
    .option('--kv-port <port>', 'TCP port of the KV listener (0 = any free port)', numberOption('--kv-port', 0, 65535, true), 0)
    .option('--kv-advertise-host <host>', 'name prefill replicas dial when --kv-host is a wildcard (default: this host name)')
    .addOption(new Option('--kv-transport <kind>', 'link for KV sent from here: auto (a Unix socket to a replica on this host, else TCP), tcp or unix').choices([...KV_TRANSPORT_CHOICES]).default('auto'))
    .addOption(
      new Option(
        '--kv-direct <on|off>',
        'decode and both roles: let a prefill replica on this host write the KV rows straight into this replica\'s KV blocks (one copy, process_vm_writev; needs the native addon and the right to write the other process\'s memory: the same user, or root), off: every row through the shared-memory ring (two copies)',
      )
        .choices(['on', 'off'])
        .default('on'),
    )
    .option('--kv-transfer-timeout <seconds>', 'a reserved KV transfer not complete after this long is given up', numberOption('--kv-transfer-timeout', 1, 86400), 120)
    .option(
      '--engine-nice <n>',
      'CPU priority of the engine thread and its compute threads, 0 (normal) to 19 (lowest): where replicas share more threads than cores, a prefill replica\'s long prompts then wait for a decode replica\'s steps (default 0)',
      numberOption('--engine-nice', 0, 19, true),
    )
    .addOption(
      new Option(
        '--prompt-order <order>',
        'which prompts the engine prefills first: shortest (fewest tokens left, waiting ones included; a step that finishes a prompt takes no partial chunk of a longer one) or arrival (default shortest for --role prefill, else arrival)',
      ).choices([...PROMPT_ORDERS]),
    );
}

export function pdOf(flags: PdFlags): NonNullable<LaunchOptions['pd']> {
  return { role: flags.role, kvHost: flags.kvHost, kvPort: flags.kvPort, kvAdvertiseHost: flags.kvAdvertiseHost, transport: flags.kvTransport, transferTimeoutMs: flags.kvTransferTimeout * 1000, direct: flags.kvDirect === 'on', engineNice: flags.engineNice, promptOrder: flags.promptOrder };
}

/** The same flags for a child `tessera serve` (serve --replicas). */
export function pdArgs(flags: PdFlags, role: ReplicaRole = flags.role): string[] {
  const args = ['--role', role, '--kv-port', '0', '--kv-transport', flags.kvTransport, '--kv-transfer-timeout', String(flags.kvTransferTimeout), '--kv-direct', flags.kvDirect];
  if (flags.engineNice !== undefined) args.push('--engine-nice', String(flags.engineNice));
  if (flags.promptOrder !== undefined) args.push('--prompt-order', flags.promptOrder);
  return args;
}
