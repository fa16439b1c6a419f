/**
 * Compute pipelines, compiled once per kind (and dtype, token group) and
 * cached for the device's life. Compilation errors surface as
 * TESSERA_ERR_INTERNAL with the WGSL compiler's messages.
 */
import type { DType } from '../../core/dtype.js';
import type { KvDtype } from '../../core/kv-dtype.js';
import { TesseraError } from '../../core/errors.js';
import { attentionShader } from './kernels/attention.wgsl.js';
import { embedShader } from './kernels/embed.wgsl.js';
import { KV_WRITE_F16_SHADER, KV_WRITE_F32_SHADER } from './kernels/kv-write.wgsl.js';
import { matmulShader, type MatmulVariant } from './kernels/matmul.wgsl.js';
import { RMS_NORM_SHADER } from './kernels/norm.wgsl.js';
import { ADD_SHADER, BIAS_SHADER, COPY_SHADER, GATHER_SHADER, SILU_MUL_IN_PLACE_SHADER, SILU_MUL_SHADER } from './kernels/pointwise.wgsl.js';
import { ROPE_SHADER } from './kernels/rope.wgsl.js';
import { BANDWIDTH_SHADER } from './kernels/bandwidth.wgsl.js';

export type PipelineKey =
  | ({ kind: 'matmul' } & MatmulVariant)
  | { kind: 'embed'; dtype: DType }
  | { kind: 'attention'; dtype: KvDtype }
  | { kind: 'writeKv'; dtype: KvDtype }
  | { kind: 'rmsNorm' | 'siluMul' | 'siluMulInPlace' | 'add' | 'addBias' | 'gather' | 'copy' | 'rope' | 'bandwidth' };

function shaderSource(key: PipelineKey): string {
  switch (key.kind) {
    case 'matmul': return matmulShader(key);
    case 'embed': return embedShader(key.dtype);
    case 'attention': return attentionShader(key.dtype);
    case 'writeKv': return key.dtype === 'f16' ? KV_WRITE_F16_SHADER : KV_WRITE_F32_SHADER;
    case 'rmsNorm': return RMS_NORM_SHADER;
    case 'siluMul': return SILU_MUL_SHADER;
    case 'siluMulInPlace': return SILU_MUL_IN_PLACE_SHADER;
    case 'add': return ADD_SHADER;
    case 'addBias': return BIAS_SHADER;
    case 'gather': return GATHER_SHADER;
    case 'copy': return COPY_SHADER;
    case 'rope': return ROPE_SHADER;
    case 'bandwidth': return BANDWIDTH_SHADER;
  }
}

export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  constructor(private readonly device: GPUDevice) {}

  get(key: PipelineKey): GPUComputePipeline {
    const name = JSON.stringify(key);
    let pipeline = this.pipelines.get(name);
    if (!pipeline) {
      pipeline = this.compile(name, shaderSource(key));
      this.pipelines.set(name, pipeline);
    }
    return pipeline;
  }

  private compile(label: string, code: string): GPUComputePipeline {
    const module = this.device.createShaderModule({ label, code });
    try {
      return this.device.createComputePipeline({ label, layout: 'auto', compute: { module, entryPoint: 'main' } });
    } catch (error) {
      throw new TesseraError('TESSERA_ERR_INTERNAL', `the WGSL kernel ${label} did not compile: ${(error as Error).message}`);
    }
  }

  /** Compiler messages of every kernel (empty when all compile), for tests. */
  async check(key: PipelineKey): Promise<string[]> {
    const module = this.device.createShaderModule({ code: shaderSource(key) });
    const info = await module.getCompilationInfo();
    return info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
  }
}
