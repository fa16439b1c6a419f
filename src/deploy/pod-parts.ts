/**
 * What every Tessera pod shares: the command, named ports, probes, a
 * hardened security context, a writable /tmp under a read-only root, and
 * the model volume (every pod reads the model at the same path: ranks their
 * shards, leaders and the router the config and tokenizer).
 */
import type { IIoK8sApiCoreV1PodSecurityContext } from 'kubernetes-models/v1/PodSecurityContext';
import type { IIoK8sApiCoreV1Probe } from 'kubernetes-models/v1/Probe';
import type { IIoK8sApiCoreV1SecurityContext } from 'kubernetes-models/v1/SecurityContext';
import type { IIoK8sApiCoreV1Volume } from 'kubernetes-models/v1/Volume';
import type { IIoK8sApiCoreV1VolumeMount } from 'kubernetes-models/v1/VolumeMount';
import type { DeploySpec } from './deploy-spec.js';

export const API_PORT_NAME = 'http';
export const MESH_PORT_NAME = 'mesh';

/** The image is expected to have `tessera` on its PATH (npm install -g). */
export const TESSERA_COMMAND = ['tessera'];

export function httpProbe(path: string, periodSeconds: number, failureThreshold: number): IIoK8sApiCoreV1Probe {
  return { httpGet: { path, port: API_PORT_NAME, scheme: 'HTTP' }, periodSeconds, failureThreshold, timeoutSeconds: 5 };
}

/** Containers run as a user, read-only at the root, with nothing extra granted. */
export function containerSecurity(): IIoK8sApiCoreV1SecurityContext {
  return { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } };
}

export function podSecurity(): IIoK8sApiCoreV1PodSecurityContext {
  return { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 };
}

export interface PodVolumes {
  readonly volumes: IIoK8sApiCoreV1Volume[];
  readonly mounts: IIoK8sApiCoreV1VolumeMount[];
}

/** /tmp (synth files, traces, the tile cache) and, with --model-claim, the model read-only. */
export function podVolumes(spec: DeploySpec): PodVolumes {
  const volumes: IIoK8sApiCoreV1Volume[] = [{ name: 'tmp', emptyDir: {} }];
  const mounts: IIoK8sApiCoreV1VolumeMount[] = [{ name: 'tmp', mountPath: '/tmp' }];
  if (spec.modelClaim !== undefined) {
    volumes.push({ name: 'model', persistentVolumeClaim: { claimName: spec.modelClaim, readOnly: true } });
    mounts.push({ name: 'model', mountPath: spec.modelMount, readOnly: true });
  }
  return { volumes, mounts };
}
