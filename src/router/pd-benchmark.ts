/**
 * `tessera bench pd`: disaggregated prefill and decode against one
 * colocated replica on the same cores, through the real processes: a
 * `tessera serve` with all the threads and chunked prefill, then a
 * `tessera serve --role prefill` and a `--role decode` with half each behind
 * a `tessera router --pd`; the same workload (pd-workload.ts) on both. For
 * the disaggregated run also: the KV bytes, frames and wire time the decode
 * replica received, the TTFT split the router measured, and the bandwidth
 * of the very link the transfers took, probed by the prefill replica over
 * the same path (the same threads and copies as the rows) right before and
 * right after the run, with frames of a whole prefill chunk's rows, and
 * after the run with frames of the transfers' mean size; the transfer rate
 * is set against the best of the three.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ModelConfig } from '../core/model-config.js';
import type { FrameCopy } from '../disagg/kv-listener.js';
import type { ProbeResult } from '../disagg/kv-sender.js';
import { REPLICA_KV_PROBE_PATH } from '../serve/pd-protocol.js';
import { REPLICA_LOAD_PATH, type ReplicaLoad } from '../serve/replica-protocol.js';
import { LocalReplicas } from './local-replicas.js';
import { runPdWorkload, type PdWorkload, type WorkloadResult } from './pd-workload.js';

export interface PdBenchContext {
  model: string;
  name: string;
  config: ModelConfig;
  backend: string;
  /** Cores of each deployment: the colocated replica gets all, prefill and decode half each. */
  threads: number;
  maxBatchTokens: number;
  /** The prefill replica's tokens per step, its prefill chunk (undefined: maxBatchTokens). */
  prefillMaxBatchTokens?: number;
  kvCacheMib: number;
  probeFrames: number;
  /** --engine-nice of the prefill replica (undefined: serve's default, 0). */
  prefillNice?: number;
  /** --kv-direct of the decode replica (undefined: serve's default, on). */
  kvDirect?: 'on' | 'off';
  /** The router's --pd-local-prefill (undefined: 0, every sequence disaggregated). */
  pdLocalPrefill?: number;
  log: (line: string) => void;
}

export interface ColocatedResult extends WorkloadResult {
  threads: number;
}

export interface KvTransferFigures {
  transfers: number;
  bytes: number;
  frames: number;
  /** Of bytes, those that went through the shared-memory ring. */
  ringBytes: number;
  /** Of bytes, those the prefill engine wrote straight into the decode replica's blocks (the rest inline on the socket). */
  directBytes: number;
  /** Summed wire time of the rows frames at the decode replica. */
  wireSeconds: number;
  /** bytes / wireSeconds. */
  rateMBps: number;
  /** The same link, probed after the run with frames of the transfers' mean size. */
  probe: LinkProbe;
  /** Probed right before and right after the run with frames of one layer's rows of a whole prefill chunk (--max-batch-tokens positions). */
  probeBefore: LinkProbe;
  probeAfter: LinkProbe;
  /** The best the link showed in the three probes. */
  linkMBps: number;
  /** rateMBps / linkMBps. */
  rateOverProbe: number;
  /** The decode replica's timed copies of the rows frames, by copy (write into the ring, read out of it, direct into its blocks, whole: another path). */
  frameCopies: Record<FrameCopy['copy'], FrameCopyFigures>;
}

export interface FrameCopyFigures {
  frames: number;
  seconds: number;
  /** Copies that took over 1 ms: a copying thread that lost its core (a frame's copy takes tens of µs). */
  slow: number;
}

export type LinkProbe = ProbeResult & { frameBytes: number; rateMBps: number };

export interface DisaggregatedResult extends WorkloadResult {
  prefillThreads: number;
  decodeThreads: number;
  /** Router: sequences that ran as a prefill/decode pair, and whole on one replica (should be 0). */
  sequences: { disaggregated: number; colocated: number };
  /** Router: mean of each phase of a disaggregated sequence's time to its first decoded token. */
  ttftSplitMeanMs: { prefill: number; transfer: number; firstDecode: number };
  kv: KvTransferFigures;
}

const KEY = 'bench-pd-replica-key';
const BIN = fileURLToPath(new URL('../../bin/tessera.js', import.meta.url));

function serveArgs(ctx: PdBenchContext, threads: number, extra: string[], maxBatchTokens = ctx.maxBatchTokens): string[] {
  const kvCacheMib = String(ctx.kvCacheMib);
  return ['--model', ctx.model, '--served-model-name', ctx.name, '--api-key', KEY, '--backend', ctx.backend, '--threads', String(threads), '--max-batch-tokens', String(maxBatchTokens), '--kv-cache-mib', kvCacheMib, ...extra];
}

/** (1) One replica with every thread; its chunked prefill shares steps with the decodes. */
export async function colocatedRun(ctx: PdBenchContext, workload: PdWorkload): Promise<ColocatedResult> {
  const { replicas, urls } = await LocalReplicas.start(1, serveArgs(ctx, ctx.threads, []), () => undefined);
  try {
    const result = await runPdWorkload({ url: urls[0], apiKey: KEY, model: ctx.name, vocabSize: ctx.config.vocabSize }, workload);
    return { ...result, threads: ctx.threads };
  } finally {
    await replicas.stop();
  }
}

/** (2) A prefill replica and a decode replica with half the threads each, behind `tessera router --pd`. */
export async function disaggregatedRun(ctx: PdBenchContext, workload: PdWorkload): Promise<DisaggregatedResult> {
  const half = Math.max(1, Math.floor(ctx.threads / 2));
  const decodeThreads = Math.max(1, ctx.threads - half);
  const started: LocalReplicas[] = [];
  let router: RouterProcess | undefined;
  try {
    const nice = ctx.prefillNice === undefined ? [] : ['--engine-nice', String(ctx.prefillNice)];
    const prefill = await LocalReplicas.start(1, serveArgs(ctx, half, ['--role', 'prefill', ...nice], ctx.prefillMaxBatchTokens), () => undefined);
    started.push(prefill.replicas);
    const decode = await LocalReplicas.start(1, serveArgs(ctx, decodeThreads, ['--role', 'decode', ...(ctx.kvDirect ? ['--kv-direct', ctx.kvDirect] : [])]), () => undefined);
    started.push(decode.replicas);
    const [prefillUrl, decodeUrl] = [prefill.urls[0], decode.urls[0]];
    const local = ctx.pdLocalPrefill ? ['--pd-local-prefill', String(ctx.pdLocalPrefill)] : [];
    router = await startRouter(['--model', ctx.model, '--port', '0', '--pd', ...local, '--replica-api-key', KEY, '--replica', prefillUrl, '--replica', decodeUrl]);
    await waitForPools(router.url);
    const chunkBytes = chunkFrameBytes(ctx);
    ctx.log(`    probing the KV link before the run (${ctx.probeFrames} frames of ${chunkBytes} bytes)`);
    const probeBefore = await probeLink(ctx, prefillUrl, decodeUrl, chunkBytes);
    const result = await runPdWorkload({ url: router.url, model: ctx.name, vocabSize: ctx.config.vocabSize }, workload);
    const routerMetrics = await metricsOf(router.url);
    const kv = await kvFigures(ctx, prefillUrl, decodeUrl, probeBefore, chunkBytes);
    return { ...result, prefillThreads: half, decodeThreads, sequences: sequencesOf(routerMetrics), ttftSplitMeanMs: ttftSplit(routerMetrics), kv };
  } finally {
    router?.stop();
    await Promise.all(started.map((replicas) => replicas.stop()));
  }
}

/** One layer's keys and values for a whole prefill chunk of the prefill replica: the frames that carry most of a long prompt's bytes (f32 cache). */
function chunkFrameBytes(ctx: PdBenchContext): number {
  return (ctx.prefillMaxBatchTokens ?? ctx.maxBatchTokens) * ctx.config.numKvHeads * ctx.config.headDim * 4 * 2;
}

/** The decode replica's received KV, and its link probed by the prefill replica (before the run, and now at two frame sizes). */
async function kvFigures(ctx: PdBenchContext, prefillUrl: string, decodeUrl: string, probeBefore: LinkProbe, chunkBytes: number): Promise<KvTransferFigures> {
  const metrics = await metricsOf(decodeUrl, KEY);
  const received = 'direction="received"';
  const bytes = series(metrics, 'tessera_kv_transfer_bytes_total', received);
  const frames = series(metrics, 'tessera_kv_transfer_frames_total', received);
  const ringBytes = series(metrics, 'tessera_kv_transfer_ring_bytes_total', received);
  const directBytes = series(metrics, 'tessera_kv_transfer_direct_bytes_total', received);
  const wireSeconds = series(metrics, 'tessera_kv_transfer_wire_seconds_sum', received);
  const transfers = series(metrics, 'tessera_kv_transfers_total', `${received},result="done"`);
  const probeAfter = await probeLink(ctx, prefillUrl, decodeUrl, chunkBytes);
  // 8-byte multiple, as rows frames are (keys and values of whole f32 or f16 rows).
  const frameBytes = Math.max(8, Math.round(bytes / Math.max(1, frames) / 8) * 8);
  const probe = await probeLink(ctx, prefillUrl, decodeUrl, frameBytes);
  const rateMBps = bytes / 1e6 / wireSeconds;
  const linkMBps = Math.max(probe.rateMBps, probeBefore.rateMBps, probeAfter.rateMBps);
  const frameCopies = { write: frameCopiesOf(metrics, 'write'), read: frameCopiesOf(metrics, 'read'), direct: frameCopiesOf(metrics, 'direct'), whole: frameCopiesOf(metrics, 'whole') };
  return { transfers, bytes, frames, ringBytes, directBytes, wireSeconds, rateMBps, probe, probeBefore, probeAfter, linkMBps, rateOverProbe: rateMBps / linkMBps, frameCopies };
}

/** One copy's series of tessera_kv_frame_copy_seconds: its frames, seconds, and those over 1 ms. */
function frameCopiesOf(metrics: string, copy: FrameCopy['copy']): FrameCopyFigures {
  const name = 'tessera_kv_frame_copy_seconds';
  const label = `copy="${copy}"`;
  const frames = series(metrics, `${name}_count`, label);
  const underMs = series(metrics.split('\n').filter((line) => line.includes('le="0.001"')).join('\n'), `${name}_bucket`, label);
  return { frames, seconds: series(metrics, `${name}_sum`, label), slow: frames - underMs };
}

/** The prefill replica's link to the decode replica, probed with `frameBytes` frames (POST /v1/tessera/kv/probe). */
async function probeLink(ctx: PdBenchContext, prefillUrl: string, decodeUrl: string, frameBytes: number): Promise<LinkProbe> {
  const load = (await (await fetch(`${decodeUrl}${REPLICA_LOAD_PATH}`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as ReplicaLoad;
  ctx.log(`    probing the KV link with ${ctx.probeFrames} frames of ${frameBytes} bytes`);
  const response = await fetch(`${prefillUrl}${REPLICA_KV_PROBE_PATH}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ endpoints: load.pd?.endpoints ?? [], frames: ctx.probeFrames, frameBytes }),
  });
  if (!response.ok) throw new Error(`the KV probe failed: ${response.status} ${await response.text()}`);
  const probe = (await response.json()) as ProbeResult;
  return { ...probe, frameBytes, rateMBps: probe.bytes / 1e6 / (probe.activeMs / 1000) };
}

function sequencesOf(metrics: string): DisaggregatedResult['sequences'] {
  return { disaggregated: series(metrics, 'tessera_pd_sequences_total', 'path="disaggregated"'), colocated: series(metrics, 'tessera_pd_sequences_total', 'path="colocated"') };
}

function ttftSplit(metrics: string): DisaggregatedResult['ttftSplitMeanMs'] {
  const mean = (phase: string): number => {
    const label = `phase="${phase}"`;
    const count = series(metrics, 'tessera_pd_ttft_seconds_count', label);
    return count === 0 ? 0 : (1000 * series(metrics, 'tessera_pd_ttft_seconds_sum', label)) / count;
  };
  return { prefill: mean('prefill'), transfer: mean('transfer'), firstDecode: mean('first_decode') };
}

/** A server's /metrics; a replica's needs its key (the metrics scope), and a refusal is an error, not empty figures. */
async function metricsOf(url: string, key?: string): Promise<string> {
  const response = await fetch(`${url}/metrics`, key ? { headers: { authorization: `Bearer ${key}` } } : {});
  if (!response.ok) throw new Error(`GET ${url}/metrics answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
  return response.text();
}

/** The sum of a Prometheus series over the label sets containing `labels` (0 when absent). */
export function series(metrics: string, name: string, labels: string): number {
  return metrics
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && line.includes(labels))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** The router routes by its polls: until both replicas are up there, a sequence would run whole on the first. */
async function waitForPools(url: string): Promise<void> {
  const sleep = (ms: number): Promise<unknown> => new Promise((resolve) => setTimeout(resolve, ms));
  for (let tries = 0; tries < 100; tries++) {
    if (series(await metricsOf(url), 'tessera_router_replica_transitions_total', 'to="up"') >= 2) {
      await sleep(500); // a poll or two more: their load reports carry the roles
      return;
    }
    await sleep(100);
  }
  throw new Error('the router did not see both replicas up within 10 s');
}

interface RouterProcess {
  url: string;
  stop(): void;
}

/** `tessera router ARGS` in a child process (as a user starts it); resolves once it says where it serves. */
function startRouter(args: readonly string[]): Promise<RouterProcess> {
  const child: ChildProcess = spawn(process.execPath, [BIN, 'router', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      stderr += text;
      const match = /^serving "[^"]+" on (http:\/\/\S+) /m.exec(stderr);
      if (match) resolve({ url: match[1], stop: () => child.kill('SIGTERM') });
    });
    child.once('exit', (code) => reject(new Error(`tessera router exited (${code}) before it served:\n${stderr}`)));
  });
}
