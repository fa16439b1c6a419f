/**
 * The LeaderWorkerSet (leaderworkerset.x-k8s.io/v1) running every replica:
 * one group per replica, each group a leader (coordinator + API) and
 * tp × pp workers (one rank each). The interface below spells the LWS API
 * fields Tessera writes, with the types and enums of the v1 CRD (checked
 * against kubernetes-sigs/lws config/crd/bases at commit 060ab4d); the pod
 * templates are Kubernetes' own PodTemplateSpec.
 */
import type { IIoK8sApiCoreV1PodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IIoK8sApiCoreV1Pod } from 'kubernetes-models/v1/Pod';
import { ranksPerReplica, type DeploySpec } from './deploy-spec.js';
import { instanceLabels } from './k8s-labels.js';
import { leaderTemplate, workerTemplate } from './mesh-pods.js';
import type { RankMemory } from './rank-memory.js';

export interface LeaderWorkerSet {
  apiVersion: 'leaderworkerset.x-k8s.io/v1';
  kind: 'LeaderWorkerSet';
  /** Kubernetes' ObjectMeta (kubernetes-models exports it only through the objects that hold it). */
  metadata: NonNullable<IIoK8sApiCoreV1Pod['metadata']>;
  spec: LeaderWorkerSetSpec;
}

export interface LeaderWorkerSetSpec {
  replicas?: number;
  leaderWorkerTemplate: LeaderWorkerTemplate;
  rolloutStrategy?: { type: 'RollingUpdate'; rollingUpdateConfiguration?: { partition?: number; maxUnavailable?: number | string; maxSurge?: number | string } };
  startupPolicy?: 'LeaderCreated' | 'LeaderReady';
  networkConfig?: { subdomainPolicy: 'Shared' | 'UniquePerReplica' };
}

export interface LeaderWorkerTemplate {
  leaderTemplate?: IIoK8sApiCoreV1PodTemplateSpec;
  workerTemplate: IIoK8sApiCoreV1PodTemplateSpec;
  size?: number;
  restartPolicy?: 'Default' | 'RecreateGroupOnPodRestart' | 'RecreateGroupAfterStart' | 'None';
  subGroupPolicy?: { subGroupPolicyType?: 'LeaderWorker' | 'LeaderExcluded'; subGroupSize?: number };
}

export function leaderWorkerSet(spec: DeploySpec, memory: RankMemory): LeaderWorkerSet {
  return {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name: spec.name, namespace: spec.namespace, labels: { ...instanceLabels(spec) } },
    spec: {
      replicas: spec.replicas,
      // The leader must exist before its workers can join it, and it turns ready only once they have: LeaderReady would wait forever.
      startupPolicy: 'LeaderCreated',
      rolloutStrategy: { type: 'RollingUpdate', rollingUpdateConfiguration: { maxUnavailable: 1, maxSurge: 0 } },
      // Shared: one headless Service named after the set, so a leader is NAME-GROUP.NAME.NAMESPACE (what LWS_LEADER_ADDRESS holds).
      networkConfig: { subdomainPolicy: 'Shared' },
      leaderWorkerTemplate: {
        size: 1 + ranksPerReplica(spec),
        // A mesh's plan names every rank: a lost rank's group starts over together.
        restartPolicy: 'RecreateGroupOnPodRestart',
        leaderTemplate: leaderTemplate(spec),
        workerTemplate: workerTemplate(spec, memory),
      },
    },
  };
}

/** The leader of `group` by its stable DNS name (the LWS headless Service, subdomain policy Shared). */
export function leaderAddress(spec: DeploySpec, group: number): string {
  return `${spec.name}-${group}.${spec.name}.${spec.namespace}`;
}
