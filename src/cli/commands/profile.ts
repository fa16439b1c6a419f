/**
 * `tessera profile`: run a short workload with tracing on, measure this
 * machine's limits in the same run, and say where every token's time went
 * (src/profiler): a one-sentence bottleneck, a table, JSON, an HTML report,
 * and optionally this machine's hardware profile for `tessera plan`.
 */
import type { Command } from 'commander';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { epochMicros, type TraceEvent } from '../../core/trace-event.js';
import { DEV_MACHINE } from '../../planner/dev-machine.js';
import { hardwareFromProfile } from '../../profiler/hardware-from-profile.js';
import { profileHtml } from '../../profiler/html-report.js';
import { buildProfile, type Profile, type RunTimings } from '../../profiler/profile-report.js';
import type { GenerationRequest, GenerationTimings } from '../../engine/generation.js';
import { attributeTrace, TIME_CATEGORIES } from '../../profiler/trace-attribution.js';
import { addComputeOptions, addModelOptions, numberOption, type ModelOptions } from '../model-options.js';
import { addParallelOptions, openEngineFor, resolveTransport, type ParallelOptions } from '../parallel-options.js';
import { localProfilePath } from '../plan-sources.js';
import { bestLimits, measureLimits } from '../profile-limits.js';
import { measureLink, type LinkLimits } from '../profile-link.js';

interface ProfileOptions extends ModelOptions, ParallelOptions {
  promptLen: number;
  outputLen: number;
  concurrency: number;
  json?: boolean;
  html?: string;
  saveProfile?: string | true;
}

/** Deterministic prompt ids spread over the vocabulary (the content does not change the cost). */
function promptIds(length: number, vocabSize: number): number[] {
  return Array.from({ length }, (_, i) => 1 + ((i * 7919 + 17) % Math.max(1, vocabSize - 1)));
}

/** Apache ECharts' single-file build when the package is installed, to inline in the report. */
function chartLibrary(): string | undefined {
  try {
    return readFileSync(createRequire(import.meta.url).resolve('echarts/dist/echarts.min.js'), 'utf8');
  } catch {
    return undefined;
  }
}

function profileText(profile: Profile & { link?: LinkLimits }): string {
  const categories = [...TIME_CATEGORIES, 'driver'] as const;
  const lines = [profile.summary, '', `rank phase    tokens  ms/token  ${categories.join('  ')}  GB/s(triad)  bottleneck`];
  for (const p of profile.phases) {
    lines.push(
      `${String(p.rank).padStart(4)} ${p.phase.padEnd(8)} ${String(p.tokens).padStart(6)} ${p.msPerToken.toFixed(2).padStart(9)}  ${categories
        .map((c) => p.breakdown[c].toFixed(2).padStart(c.length))
        .join('  ')}  ${`${p.bandwidthGBs.toFixed(1)} (${(p.bandwidthFraction * 100).toFixed(0)}%)`.padStart(11)}  ${p.bottleneck} ${(p.share * 100).toFixed(0)}%`,
    );
  }
  const decode = profile.phases.find((p) => p.rank === 0 && p.phase === 'decode');
  if (decode) {
    lines.push('', 'rank 0 decode ops (ms per token, achieved, verdict):');
    for (const op of decode.ops.slice(0, 8)) {
      lines.push(`  ${op.key.padEnd(44)} ${(op.ms / decode.tokens).toFixed(2).padStart(7)} ms  ${op.achievedGBs.toFixed(1).padStart(6)} GB/s ${op.achievedGflops.toFixed(1).padStart(7)} GFLOP/s  ${(op.fraction * 100).toFixed(0).padStart(3)}% of ${op.limit}: ${op.verdict}`);
    }
  }
  const l = profile.limits;
  lines.push('', `limits measured in this run: ${l.memoryBandwidthGBs.toFixed(1)} GB/s triad, ${l.int8Gflops.toFixed(0)} GFLOP/s 8-bit matmul, ${l.f16Gflops.toFixed(0)} GFLOP/s f16 matmul`);
  const k = profile.link;
  if (k) lines.push(`link between ranks (${k.transport}, ${k.plane}): ${k.oneWayGBs.toFixed(2)} GB/s one way at 1 MiB, 4 KiB all-reduce ${k.allReduceSmallMicros.toFixed(1)} µs, 1 MiB all-reduce ${k.allReduceBusGBs.toFixed(2)} GB/s bus bandwidth`);
  return `${lines.join('\n')}\n`;
}

async function run(options: ProfileOptions): Promise<void> {
  const mesh = options.tp > 1 || options.pp > 1 || options.ep > 1;
  // The limits of the threads the run computes with: all cores for a mesh of ranks.
  const threads = mesh ? undefined : options.threads;
  // The link first, before the mesh's ranks take the cores.
  const link = mesh ? await measureLink(resolveTransport(options.transport, options.listen === undefined)) : undefined;
  const before = measureLimits(threads);
  const scratch = mkdtempSync(join(tmpdir(), 'tessera-profile-'));
  const tracePath = options.trace ?? join(scratch, 'trace.json');
  try {
    const { engine, close } = await openEngineFor({ ...options, trace: tracePath });
    const vocab = engine.config.vocabSize;
    await engine.complete({ promptIds: promptIds(8, vocab), maxTokens: 2, ignoreEos: true });
    const since = epochMicros();
    // Distinct prompts (shifted ids), so no sequence's prompt is another's prefix.
    const requests = Array.from({ length: options.concurrency }, (_, i) => ({ promptIds: promptIds(options.promptLen, vocab).map((id) => 1 + ((id + i * 31) % Math.max(1, vocab - 1))), maxTokens: options.outputLen, ignoreEos: true }));
    const results = options.concurrency === 1 ? [await engine.complete(requests[0])] : await engine.completeBatch(requests);
    await close();
    const trace = JSON.parse(readFileSync(tracePath, 'utf8')) as { traceEvents: TraceEvent[] };
    const limits = bestLimits(before, measureLimits(threads));
    const events = trace.traceEvents.filter((event) => (event.ts ?? 0) >= since);
    const traced = buildProfile(attributeTrace(events), limits, batchTimings(results.map((result) => result.timings)));
    const untraced = untracedRate(traced, await untracedTimings(options, requests));
    const profile = { ...traced, summary: `${traced.summary}${untraced ? untracedWords(untraced) : ''}`, ...(untraced ? { untraced } : {}), ...(link ? { link } : {}) };
    report(profile, options);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Decode without tracing: what a user gets (spans cost time), and the rate every rank's bytes are read at. */
interface UntracedDecode {
  readonly msPerToken: number;
  /** Weight and KV bytes a token reads, summed over ranks (on one host they share the memory). */
  readonly bytesPerToken: number;
  readonly bandwidthGBs: number;
  readonly bandwidthFraction: number;
}

/** The same requests on an engine opened without tracing. */
async function untracedTimings(options: ProfileOptions, requests: GenerationRequest[]): Promise<RunTimings> {
  const { engine, close } = await openEngineFor({ ...options, trace: undefined });
  try {
    await engine.complete({ promptIds: requests[0].promptIds.slice(0, 8), maxTokens: 2, ignoreEos: true });
    const results = requests.length === 1 ? [await engine.complete(requests[0])] : await engine.completeBatch(requests);
    return batchTimings(results.map((result) => result.timings));
  } finally {
    await close();
  }
}

function untracedRate(profile: Profile, timings: RunTimings): UntracedDecode | undefined {
  const decode = profile.phases.filter((phase) => phase.phase === 'decode');
  const tokens = decode.find((phase) => phase.rank === 0)?.tokens ?? 0;
  if (tokens === 0 || timings.decodeMs <= 0) return undefined;
  const msPerToken = timings.decodeMs / tokens;
  const bytesPerToken = decode.reduce((sum, phase) => sum + phase.bytesPerToken, 0);
  const bandwidthGBs = bytesPerToken / (msPerToken / 1000) / 1e9;
  return { msPerToken, bytesPerToken, bandwidthGBs, bandwidthFraction: bandwidthGBs / profile.limits.memoryBandwidthGBs };
}

function untracedWords(untraced: UntracedDecode): string {
  return ` Without tracing a decode token takes ${untraced.msPerToken.toFixed(1)} ms: ${(untraced.bytesPerToken / 1e9).toFixed(3)} GB at ${untraced.bandwidthGBs.toFixed(1)} GB/s, ${(untraced.bandwidthFraction * 100).toFixed(0)}% of the triad.`;
}

/** The batch's timings as the driver saw them: tokens summed, phases as long as the longest sequence's. */
function batchTimings(timings: readonly GenerationTimings[]): RunTimings {
  return {
    promptTokens: timings.reduce((sum, t) => sum + t.promptTokens, 0),
    generatedTokens: timings.reduce((sum, t) => sum + t.generatedTokens, 0),
    prefillMs: Math.max(...timings.map((t) => t.prefillMs)),
    decodeMs: Math.max(...timings.map((t) => t.decodeMs)),
  };
}

function report(profile: Profile & { link?: LinkLimits }, options: ProfileOptions): void {
  const title = `tessera profile: ${options.model}${options.tp > 1 || options.pp > 1 ? ` (tp ${options.tp}, pp ${options.pp})` : ''}`;
  if (options.html) {
    const library = chartLibrary();
    writeFileSync(options.html, profileHtml(profile, title, library));
    process.stderr.write(`wrote ${options.html}${library ? '' : ' (tables only: install the echarts package for charts)'}\n`);
  }
  if (options.saveProfile) {
    const path = options.saveProfile === true ? localProfilePath() : options.saveProfile;
    const host = { cores: availableParallelism(), memoryGiB: totalmem() / 2 ** 30, description: `${cpus()[0]?.model ?? 'this machine'}, ${availableParallelism()} cores, profiled` };
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(hardwareFromProfile(DEV_MACHINE, profile, host, new Date().toISOString()), null, 2)}\n`);
    process.stderr.write(`wrote this machine's hardware profile to ${path} (tessera plan --hardware this-machine reads it)\n`);
  }
  process.stdout.write(options.json ? `${JSON.stringify(profile, null, 2)}\n` : profileText(profile));
}

export function registerProfileCommand(program: Command): void {
  addParallelOptions(addComputeOptions(addModelOptions(program.command('profile').description('run a short workload traced, measure this machine\'s limits, and attribute each token\'s time'))))
    .option('--prompt-len <n>', 'prompt tokens', numberOption('--prompt-len', 1, 1e6, true), 128)
    .option('--output-len <n>', 'generated tokens', numberOption('--output-len', 1, 1e6, true), 32)
    .option('--concurrency <n>', 'sequences at once, batched as the server batches them (prompts prefilled together, then one decode step for all)', numberOption('--concurrency', 1, 4096, true), 1)
    .option('--json', 'print the whole profile as JSON')
    .option('--html <file>', 'write a self-contained HTML report')
    .option('--save-profile [file]', `write this machine's hardware profile for tessera plan (default ${'$'}TESSERA_HARDWARE_PROFILE or ~/.cache/tessera/hardware-profile.json)`)
    .action((options: ProfileOptions) => run(options));
}
