/**
 * Labels: the ones Tessera puts on what it deploys, and the ones the
 * LeaderWorkerSet controller adds to every pod it creates (their keys are
 * the LWS API's, leaderworkerset.x-k8s.io/v1). Selectors in Services and
 * NetworkPolicies are built here from the same constants, so they match by
 * construction; manifest-semantics.ts checks that they do.
 */
import type { DeploySpec } from './deploy-spec.js';

export type Labels = Readonly<Record<string, string>>;
export type Component = 'leader' | 'worker' | 'router';

export const LWS_NAME_LABEL = 'leaderworkerset.sigs.k8s.io/name';
export const LWS_GROUP_INDEX_LABEL = 'leaderworkerset.sigs.k8s.io/group-index';
export const LWS_WORKER_INDEX_LABEL = 'leaderworkerset.sigs.k8s.io/worker-index';

const NAME_LABEL = 'app.kubernetes.io/name';
const INSTANCE_LABEL = 'app.kubernetes.io/instance';
const COMPONENT_LABEL = 'app.kubernetes.io/component';
const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';

/** On every object of one deployment. */
export function instanceLabels(spec: DeploySpec): Labels {
  return { [NAME_LABEL]: 'tessera', [INSTANCE_LABEL]: spec.name, [MANAGED_BY_LABEL]: 'tessera-deploy' };
}

/** What selects one component's pods (a subset of its pods' labels). */
export function componentSelector(spec: DeploySpec, component: Component): Labels {
  return { [NAME_LABEL]: 'tessera', [INSTANCE_LABEL]: spec.name, [COMPONENT_LABEL]: component };
}

/** The labels a component's pod template carries. */
export function podLabels(spec: DeploySpec, component: Component): Labels {
  return { ...instanceLabels(spec), ...componentSelector(spec, component) };
}

/** The members of one replica's group: its leader and its workers (labels the LWS controller sets). */
export function groupSelector(setName: string, group: number): Labels {
  return { [LWS_NAME_LABEL]: setName, [LWS_GROUP_INDEX_LABEL]: String(group) };
}

/** The labels the LWS controller adds to the pod of `worker` (0 = the leader) in `group`. */
export function lwsPodLabels(setName: string, group: number, worker: number): Labels {
  return { ...groupSelector(setName, group), [LWS_WORKER_INDEX_LABEL]: String(worker) };
}

/** Every label of `selector` is on `labels` with the same value (Kubernetes' matchLabels rule). */
export function selectorMatches(selector: Labels, labels: Labels): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}
