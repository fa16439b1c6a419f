/**
 * Device time per kernel, from timestamp queries (TESSERA_WEBGPU_PROFILE=1,
 * adapters with `timestamp-query`). Each dispatch of a profiled step gets a
 * compute pass of its own whose beginning and end write a timestamp; after
 * the step the pairs are resolved, read back and summed per kernel label
 * (matmul q8_0 ×1, attention f32, ...). A pass per dispatch costs a little
 * device time of its own, so the sum is a breakdown, not the unprofiled
 * step's length; tokens per second of a profiled run are not reported as a
 * result.
 */
import type { PipelineKey } from './gpu-pipelines.js';

/** Dispatches one step may time (a query set holds at most 4096 queries); later ones in the step run untimed. */
const CAPACITY = 2048;

export interface KernelTime {
  dispatches: number;
  ms: number;
}

export class KernelProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolved: GPUBuffer;
  private readonly readback: GPUBuffer;
  /** Label of each timed dispatch of the open step, in query-pair order. */
  private labels: string[] = [];

  private constructor(private readonly device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * CAPACITY });
    this.resolved = device.createBuffer({ size: 16 * CAPACITY, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readback = device.createBuffer({ size: 16 * CAPACITY, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** A profiler when asked for by the environment and the device can time passes. */
  static fromEnvironment(device: GPUDevice): KernelProfiler | undefined {
    if (process.env.TESSERA_WEBGPU_PROFILE !== '1') return undefined;
    if (!device.features.has('timestamp-query')) return undefined;
    return new KernelProfiler(device);
  }

  /** A pass for one dispatch of `key` over `groups` workgroups, timed while capacity lasts. */
  pass(encoder: GPUCommandEncoder, key: PipelineKey, groups: readonly number[]): GPUComputePassEncoder {
    if (this.labels.length >= CAPACITY) return encoder.beginComputePass();
    const pair = this.labels.length;
    // The grid tells one shape (and one batch) of a kernel from another.
    this.labels.push(`${kernelLabel(key)} [${groups.join('×')}]`);
    return encoder.beginComputePass({
      timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * pair, endOfPassWriteIndex: 2 * pair + 1 },
    });
  }

  /** Adds the step's resolve and copy to its command buffer (before it is finished). */
  resolve(encoder: GPUCommandEncoder): void {
    const count = this.labels.length;
    if (count === 0) return;
    encoder.resolveQuerySet(this.querySet, 0, 2 * count, this.resolved, 0);
    encoder.copyBufferToBuffer(this.resolved, 0, this.readback, 0, 16 * count);
  }

  /** After the step's submission: device milliseconds per label. */
  async collect(): Promise<Record<string, KernelTime>> {
    const labels = this.labels;
    this.labels = [];
    const times: Record<string, KernelTime> = {};
    if (labels.length === 0) return times;
    await this.readback.mapAsync(GPUMapMode.READ, 0, 16 * labels.length);
    const stamps = new BigUint64Array(this.readback.getMappedRange(0, 16 * labels.length).slice(0));
    this.readback.unmap();
    labels.forEach((label, i) => {
      const begin = stamps[2 * i];
      const end = stamps[2 * i + 1];
      const ms = end > begin ? Number(end - begin) / 1e6 : 0;
      const entry = (times[label] ??= { dispatches: 0, ms: 0 });
      entry.dispatches++;
      entry.ms += ms;
    });
    return times;
  }
}

/** A kernel's name in a profile: its kind and what selects its variant. */
export function kernelLabel(key: PipelineKey): string {
  switch (key.kind) {
    case 'matmul': return `matmul${key.gated ? ' gated' : ''} ${key.dtype} ×${key.tokens}`;
    case 'embed':
    case 'attention':
    case 'writeKv':
      return `${key.kind} ${key.dtype}`;
    default:
      return key.kind;
  }
}

/** `into` += `more`, per label. */
export function addKernelTimes(into: Record<string, KernelTime>, more: Record<string, KernelTime> | undefined): void {
  for (const [label, time] of Object.entries(more ?? {})) {
    const entry = (into[label] ??= { dispatches: 0, ms: 0 });
    entry.dispatches += time.dispatches;
    entry.ms += time.ms;
  }
}
