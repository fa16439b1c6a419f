/**
 * What `tessera deploy k8s` is asked for, checked before any manifest is
 * built: names Kubernetes accepts, a layout Tessera can run, and the
 * defaults every manifest builder reads from one place.
 */
import { TesseraError } from '../core/errors.js';

export interface DeploySpec {
  /** The LeaderWorkerSet's name; also the prefix of every object's name. */
  readonly name: string;
  readonly namespace: string;
  readonly image: string;
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** The model as the containers see it: a path in the image or on the model volume, the same in every pod. */
  readonly model: string;
  readonly servedModelName?: string;
  /** Replicas (LWS groups): data parallelism behind the router. */
  readonly replicas: number;
  readonly tp: number;
  readonly pp: number;
  /** Ports: the OpenAI API on leaders and the router, and where a leader's coordinator takes joins. */
  readonly apiPort: number;
  readonly meshPort: number;
  readonly routerReplicas: number;
  /** Per rank: compute threads (the CPU request), KV cache budget and element type. */
  readonly rankCpus: number;
  readonly kvCacheMib: number;
  readonly kvCacheDtype: 'f32' | 'f16';
  /** Memory a rank needs beyond weights and KV cache (the Node.js runtime, buffers), MiB. */
  readonly overheadMib: number;
  /** A PersistentVolumeClaim holding the model, mounted read-only at `modelMount`. */
  readonly modelClaim?: string;
  readonly modelMount: string;
  /** The Secret holding the API keys and the join token (manifests reference it, never its values). */
  readonly keysSecret: string;
}

export const DEFAULT_API_PORT = 8000;
export const DEFAULT_MESH_PORT = 7070;

// RFC 1123 labels: what Kubernetes accepts as object names that also become DNS names.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function fail(message: string): never {
  throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', message);
}

function checkName(flag: string, value: string, maxLength: number): void {
  if (value.length > maxLength || !DNS_LABEL.test(value)) {
    fail(`${flag} "${value}" is not a Kubernetes name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most ${maxLength} characters`);
  }
}

function checkWhole(flag: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) fail(`${flag} must be a whole number from ${min} to ${max}, got ${value}`);
}

/** Refuses a spec Kubernetes or Tessera would refuse later, with the flag to change. */
export function checkDeploySpec(spec: DeploySpec): DeploySpec {
  // Pod names are NAME-GROUP-INDEX and must stay DNS labels (63): leave room for the indices.
  checkName('--name', spec.name, 40);
  checkName('--namespace', spec.namespace, 63);
  checkName('--keys-secret', spec.keysSecret, 253);
  if (spec.modelClaim !== undefined) checkName('--model-claim', spec.modelClaim, 253);
  if (spec.image.trim() === '' || /\s/.test(spec.image)) fail(`--image "${spec.image}" is not an image reference`);
  if (spec.model.trim() === '') fail('--model is empty; give the model path as the containers see it');
  // Every rank opens the model at the path its leader names: a synth: model lives in the leader's temp folder only.
  if (spec.model.startsWith('synth:')) fail(`--model ${spec.model}: every pod must read the same file; write it once with \`tessera synth --out\` onto the model volume and give that path`);
  if (!spec.modelMount.startsWith('/')) fail(`--model-mount "${spec.modelMount}" must be an absolute path`);
  checkWhole('--replicas', spec.replicas, 1, 1000);
  checkWhole('--tp', spec.tp, 1, 1024);
  checkWhole('--pp', spec.pp, 1, 1024);
  checkWhole('--router-replicas', spec.routerReplicas, 1, 100);
  checkWhole('--rank-cpus', spec.rankCpus, 1, 1024);
  checkWhole('--port', spec.apiPort, 1, 65535);
  checkWhole('--mesh-port', spec.meshPort, 1, 65535);
  if (spec.apiPort === spec.meshPort) fail(`--port and --mesh-port are both ${spec.apiPort}; the API and the mesh need their own ports`);
  if (!(spec.kvCacheMib > 0)) fail(`--kv-cache-mib must be above 0, got ${spec.kvCacheMib}`);
  if (!(spec.overheadMib >= 0)) fail(`--overhead-mib must be 0 or more, got ${spec.overheadMib}`);
  return spec;
}

/** Ranks per replica: every worker pod is one rank; the leader (coordinator + API) holds none. */
export function ranksPerReplica(spec: DeploySpec): number {
  return spec.tp * spec.pp;
}

/** The name clients put in `model`. */
export function servedName(spec: DeploySpec): string {
  return spec.servedModelName ?? spec.model;
}
