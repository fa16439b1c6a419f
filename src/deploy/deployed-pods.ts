/**
 * The pods the controllers would create from a set of manifests: for a
 * LeaderWorkerSet, `replicas` groups of a leader (worker index 0) and
 * size − 1 workers, each with the labels and environment the LWS controller
 * adds; for a Deployment, `replicas` copies of its template. Semantic checks
 * run against these, as a cluster would.
 */
import type { IIoK8sApiCoreV1Container } from 'kubernetes-models/v1/Container';
import type { IIoK8sApiCoreV1PodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { lwsPodLabels, type Labels } from './k8s-labels.js';
import type { Manifest } from './k8s-manifests.js';
import type { LeaderWorkerSet } from './leader-worker-set.js';

export interface DeployedPod {
  readonly name: string;
  readonly namespace: string;
  /** The object it comes from: `LeaderWorkerSet/NAME` or `Deployment/NAME`. */
  readonly owner: string;
  readonly role: 'leader' | 'worker' | 'pod';
  /** LWS groups only. */
  readonly group?: number;
  readonly labels: Labels;
  readonly template: IIoK8sApiCoreV1PodTemplateSpec;
  /** Variables the controller sets (LWS_LEADER_ADDRESS, LWS_GROUP_SIZE, LWS_WORKER_INDEX). */
  readonly controllerEnv: Readonly<Record<string, string>>;
}

function lwsPods(set: LeaderWorkerSet): DeployedPod[] {
  const name = set.metadata.name ?? '';
  const namespace = set.metadata.namespace ?? 'default';
  const template = set.spec.leaderWorkerTemplate;
  const size = template.size ?? 1;
  const pods: DeployedPod[] = [];
  for (let group = 0; group < (set.spec.replicas ?? 1); group++) {
    for (let worker = 0; worker < size; worker++) {
      const podTemplate = worker === 0 ? template.leaderTemplate ?? template.workerTemplate : template.workerTemplate;
      const labels = { ...podTemplate.metadata?.labels, ...lwsPodLabels(name, group, worker) };
      pods.push({
        name: worker === 0 ? `${name}-${group}` : `${name}-${group}-${worker}`,
        namespace,
        owner: `LeaderWorkerSet/${name}`,
        role: worker === 0 ? 'leader' : 'worker',
        group,
        labels,
        template: podTemplate,
        controllerEnv: { LWS_LEADER_ADDRESS: `${name}-${group}.${name}.${namespace}`, LWS_GROUP_SIZE: String(size), LWS_WORKER_INDEX: String(worker) },
      });
    }
  }
  return pods;
}

export function deployedPods(manifests: readonly Manifest[]): DeployedPod[] {
  return manifests.flatMap((manifest): DeployedPod[] => {
    if (manifest.kind === 'LeaderWorkerSet') return lwsPods(manifest);
    if (manifest.kind !== 'Deployment') return [];
    const name = manifest.metadata?.name ?? '';
    const template = manifest.spec?.template ?? {};
    return Array.from({ length: manifest.spec?.replicas ?? 1 }, (_, index) => ({
      name: `${name}-${index}`,
      namespace: manifest.metadata?.namespace ?? 'default',
      owner: `Deployment/${name}`,
      role: 'pod' as const,
      labels: { ...template.metadata?.labels },
      template,
      controllerEnv: {},
    }));
  });
}

export function containersOf(pod: DeployedPod): IIoK8sApiCoreV1Container[] {
  return pod.template.spec?.containers ?? [];
}

/** A container's port by name or number, or undefined. */
export function containerPort(container: IIoK8sApiCoreV1Container, port: string | number): number | undefined {
  const found = container.ports?.find((entry) => (typeof port === 'number' ? entry.containerPort === port : entry.name === port));
  return found?.containerPort;
}

/** The value after `flag` in a container's args. */
export function argValue(container: IIoK8sApiCoreV1Container, flag: string): string | undefined {
  const args = container.args ?? [];
  const at = args.indexOf(flag);
  return at < 0 ? undefined : args[at + 1];
}

export function argValues(container: IIoK8sApiCoreV1Container, flag: string): string[] {
  const args = container.args ?? [];
  return args.flatMap((arg, index) => (arg === flag && index + 1 < args.length ? [args[index + 1]!] : []));
}
