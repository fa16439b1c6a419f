/**
 * A TensorStore over one or several safetensors files (a sharded checkpoint
 * with `model.safetensors.index.json`). Opening reads only the headers; rows
 * are read on demand with positioned reads. Tensor names are exposed in
 * canonical GGUF style (see hf-names.ts).
 */
import { closeSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { byteSize } from '../core/dtype.js';
import { TesseraError, check } from '../core/errors.js';
import { matrixShape, type TensorInfo, type TensorStore } from './tensor-store.js';
import { readColumnSlice } from './column-read.js';
import { canonicalFromHf } from './hf-names.js';
import { openForReading, readExactly, readSafetensorsHeader, type SafetensorsEntry } from './safetensors-header.js';

export const SAFETENSORS_INDEX = 'model.safetensors.index.json';
export const SAFETENSORS_SINGLE = 'model.safetensors';

interface StoredTensor {
  readonly info: TensorInfo;
  /** Index into the store's files. */
  readonly file: number;
  readonly entry: SafetensorsEntry;
}

interface OpenFile {
  readonly path: string;
  readonly fd: number;
}

export class SafetensorsStore implements TensorStore {
  readonly format = 'safetensors' as const;
  /** `__metadata__` of all files merged (later files win on a clash). */
  readonly metadata: Readonly<Record<string, string>>;
  private readonly files: OpenFile[] = [];
  private readonly tensors = new Map<string, StoredTensor>();
  private bytesReadSoFar = 0;
  private closed = false;

  /**
   * Opens a model directory, a `*.index.json`, one `.safetensors` file or a
   * list of shard files.
   */
  static open(source: string | readonly string[]): SafetensorsStore {
    if (typeof source !== 'string') return new SafetensorsStore(source);
    if (!existsSync(source)) {
      throw new TesseraError('TESSERA_ERR_FILE_NOT_FOUND', `${source} does not exist; check the model path`);
    }
    if (statSync(source).isDirectory()) {
      const indexPath = join(source, SAFETENSORS_INDEX);
      return existsSync(indexPath) ? SafetensorsStore.fromIndex(indexPath) : new SafetensorsStore(findSafetensorsFiles(source));
    }
    if (source.endsWith('.index.json')) return SafetensorsStore.fromIndex(source);
    return new SafetensorsStore([source]);
  }

  private static fromIndex(indexPath: string): SafetensorsStore {
    const weightMap = readWeightMap(indexPath);
    const shards = [...new Set(weightMap.values())].map((shard) => join(dirname(indexPath), shard));
    const store = new SafetensorsStore(shards);
    for (const [hfName, shard] of weightMap) {
      const stored = store.tensors.get(canonicalFromHf(hfName));
      if (!stored || basename(store.files[stored.file].path) !== basename(shard)) {
        store.close();
        throw new TesseraError(
          'TESSERA_ERR_BAD_FORMAT',
          `${indexPath} places ${hfName} in ${shard}, but that shard does not hold it; download the checkpoint again`,
        );
      }
    }
    return store;
  }

  constructor(paths: readonly string[]) {
    check(paths.length > 0, 'TESSERA_ERR_INVALID_ARGUMENT', 'no safetensors files given');
    const metadata: Record<string, string> = {};
    try {
      for (const path of paths) this.addFile(path, metadata);
    } catch (error) {
      this.close();
      throw error;
    }
    this.metadata = metadata;
  }

  private addFile(path: string, metadata: Record<string, string>): void {
    const fd = openForReading(path);
    this.files.push({ path, fd });
    const header = readSafetensorsHeader(fd, path);
    Object.assign(metadata, header.metadata);
    for (const entry of header.entries) {
      const name = canonicalFromHf(entry.name);
      const previous = this.tensors.get(name);
      if (previous) {
        throw new TesseraError(
          'TESSERA_ERR_BAD_FORMAT',
          `tensor ${name} appears twice (${previous.entry.name} in ${this.files[previous.file].path} and ${entry.name} in ${path}); remove the duplicate file`,
        );
      }
      const info: TensorInfo = { name, dtype: entry.dtype, shape: entry.shape };
      this.tensors.set(name, { info, file: this.files.length - 1, entry });
    }
  }

  /** Paths of the files this store reads, in order. */
  get paths(): string[] {
    return this.files.map((f) => f.path);
  }

  get bytesRead(): number {
    return this.bytesReadSoFar;
  }

  list(): TensorInfo[] {
    return [...this.tensors.values()].map((t) => t.info);
  }

  get(name: string): TensorInfo | undefined {
    return this.tensors.get(name)?.info;
  }

  /** The name the file itself uses for a canonical tensor name. */
  sourceName(name: string): string | undefined {
    return this.tensors.get(name)?.entry.name;
  }

  readRows(name: string, rowStart: number, rowEnd: number): Uint8Array {
    check(!this.closed, 'TESSERA_ERR_INVALID_ARGUMENT', 'the safetensors store is closed');
    const stored = this.tensors.get(name);
    if (!stored) {
      throw new TesseraError('TESSERA_ERR_MISSING_TENSOR', `the model has no tensor ${name}; is the checkpoint complete and of a supported architecture?`);
    }
    const { rows, cols } = matrixShape(stored.info.shape);
    check(
      Number.isInteger(rowStart) && Number.isInteger(rowEnd) && 0 <= rowStart && rowStart <= rowEnd && rowEnd <= rows,
      'TESSERA_ERR_INVALID_ARGUMENT',
      `rows [${rowStart}, ${rowEnd}) are outside tensor ${name} with ${rows} rows`,
    );
    const rowBytes = byteSize(stored.info.dtype, cols);
    const length = (rowEnd - rowStart) * rowBytes;
    const file = this.files[stored.file];
    const bytes = readExactly(file.fd, file.path, stored.entry.offset + rowStart * rowBytes, length);
    this.bytesReadSoFar += length;
    return bytes;
  }

  readColumns(name: string, colStart: number, colEnd: number): Uint8Array {
    check(!this.closed, 'TESSERA_ERR_INVALID_ARGUMENT', 'the safetensors store is closed');
    const stored = this.tensors.get(name);
    if (!stored) {
      throw new TesseraError('TESSERA_ERR_MISSING_TENSOR', `the model has no tensor ${name}; is the checkpoint complete and of a supported architecture?`);
    }
    const file = this.files[stored.file];
    const bytes = readColumnSlice(file.fd, file.path, stored.entry.offset, stored.info, colStart, colEnd);
    this.bytesReadSoFar += bytes.byteLength;
    return bytes;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const file of this.files) closeSync(file.fd);
  }
}

/** The safetensors files of a model directory: index shards, model.safetensors, or every *.safetensors. */
export function findSafetensorsFiles(dir: string): string[] {
  const indexPath = join(dir, SAFETENSORS_INDEX);
  if (existsSync(indexPath)) return [...new Set(readWeightMap(indexPath).values())].map((s) => join(dir, s));
  const single = join(dir, SAFETENSORS_SINGLE);
  if (existsSync(single)) return [single];
  const all = readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort();
  if (all.length === 0) {
    throw new TesseraError(
      'TESSERA_ERR_FILE_NOT_FOUND',
      `${dir} has no ${SAFETENSORS_SINGLE}, ${SAFETENSORS_INDEX} or other .safetensors file; Tessera reads safetensors weights (convert PyTorch .bin checkpoints first)`,
    );
  }
  return all.map((f) => join(dir, f));
}

/** `weight_map` of a sharded checkpoint index: HF tensor name → shard file name. */
export function readWeightMap(indexPath: string): Map<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (error) {
    throw new TesseraError('TESSERA_ERR_BAD_FORMAT', `${indexPath} is not valid JSON; download the checkpoint again`, { cause: error });
  }
  const weightMap = (parsed as { weight_map?: unknown } | null)?.weight_map;
  check(
    typeof weightMap === 'object' && weightMap !== null && !Array.isArray(weightMap),
    'TESSERA_ERR_BAD_FORMAT',
    `${indexPath} has no weight_map object; download the checkpoint again`,
  );
  const map = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    check(
      typeof shard === 'string' && shard.length > 0 && basename(shard) === shard,
      'TESSERA_ERR_BAD_FORMAT',
      `${indexPath}: weight_map.${name} must name a shard file in the same folder`,
    );
    map.set(name, shard);
  }
  check(map.size > 0, 'TESSERA_ERR_BAD_FORMAT', `${indexPath} has an empty weight_map; download the checkpoint again`);
  return map;
}
