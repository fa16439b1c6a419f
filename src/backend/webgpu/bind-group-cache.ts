/**
 * Bind groups by what they bind (pipeline, buffers, offsets): creating one
 * costs tens of microseconds (144 µs on lavapipe), and a decode step binds
 * the same buffers at the same offsets as the step before it (activation
 * buffers cycle through the pool in a fixed order), so after two steps every
 * dispatch finds its group here. Cleared when it grows past a bound or when
 * a buffer it may hold is destroyed.
 */
const MAX_ENTRIES = 50_000;

export interface BindingSlice {
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}

export class BindGroupCache {
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;

  constructor(private readonly device: GPUDevice) {}

  get(pipeline: GPUComputePipeline, slices: readonly BindingSlice[]): GPUBindGroup {
    let key = `${this.id(pipeline)}`;
    for (const slice of slices) key += `|${this.id(slice.buffer)}:${slice.offset ?? ''}:${slice.size ?? ''}`;
    let group = this.groups.get(key);
    if (!group) {
      if (this.groups.size >= MAX_ENTRIES) this.groups.clear();
      group = this.device.createBindGroup({
        layout: this.layout(pipeline),
        entries: slices.map((resource, binding) => ({ binding, resource })),
      });
      this.groups.set(key, group);
    }
    return group;
  }

  /** Forget every group (before buffers they may bind are destroyed). */
  clear(): void {
    this.groups.clear();
  }

  private layout(pipeline: GPUComputePipeline): GPUBindGroupLayout {
    let layout = this.layouts.get(pipeline);
    if (!layout) {
      layout = pipeline.getBindGroupLayout(0);
      this.layouts.set(pipeline, layout);
    }
    return layout;
  }

  private id(object: object): number {
    let id = this.ids.get(object);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(object, id);
    }
    return id;
  }
}
