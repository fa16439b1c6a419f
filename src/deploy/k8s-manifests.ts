/**
 * Every manifest of one deployment, in the order `kubectl apply -f` should
 * meet them, with a header saying where the figures come from and which
 * Secrets to create first.
 */
import type { IIoK8sApiAppsV1Deployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IIoK8sApiCoreV1Service } from 'kubernetes-models/v1/Service';
import type { IIoK8sApiNetworkingV1NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { checkDeploySpec, ranksPerReplica, type DeploySpec } from './deploy-spec.js';
import { leaderWorkerSet, type LeaderWorkerSet } from './leader-worker-set.js';
import { networkPolicies } from './network-policies.js';
import type { RankMemory } from './rank-memory.js';
import { routerDeployment, routerService } from './router-manifests.js';
import { secretNeeds } from './secrets.js';
import { toYamlStream } from './yaml-writer.js';

export type Manifest = LeaderWorkerSet | IIoK8sApiAppsV1Deployment | IIoK8sApiCoreV1Service | IIoK8sApiNetworkingV1NetworkPolicy;

export interface K8sDeployment {
  readonly spec: DeploySpec;
  readonly memory: RankMemory;
  readonly manifests: readonly Manifest[];
}

export function k8sDeployment(spec: DeploySpec, memory: RankMemory): K8sDeployment {
  checkDeploySpec(spec);
  // Policies first: pods never run unprotected between two applies.
  const manifests: Manifest[] = [...networkPolicies(spec), leaderWorkerSet(spec, memory), routerDeployment(spec), routerService(spec)];
  return { spec, memory, manifests };
}

export function headerLines(deployment: K8sDeployment): string[] {
  const { spec, memory } = deployment;
  const lines = [
    `Tessera on Kubernetes: ${spec.replicas} replica(s) of tp ${spec.tp} x pp ${spec.pp} (${ranksPerReplica(spec)} rank pod(s) and a leader each), a router, network policies.`,
    'Needs the LeaderWorkerSet controller (leaderworkerset.x-k8s.io/v1) and a CNI that enforces NetworkPolicy.',
    memory.source,
    '',
    'Create these Secrets first (the manifests read them; they hold no values):',
  ];
  for (const need of secretNeeds(spec)) lines.push(`  ${need.name}: ${need.purpose}`, `    ${need.create}`);
  return lines;
}

export function k8sYaml(deployment: K8sDeployment): string {
  return toYamlStream(deployment.manifests, headerLines(deployment));
}
