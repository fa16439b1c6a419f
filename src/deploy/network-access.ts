/**
 * The access the NetworkPolicies must give and must refuse, checked pod by
 * pod against the deployed pods: the router reaches every leader's API
 * and nothing else of the mesh; a group's members reach each other on any
 * port; no pod of one group reaches another group; a pod with none of
 * Tessera's labels (anything else in the namespace) reaches only the
 * router.
 */
import { containerPort, containersOf, type DeployedPod } from './deployed-pods.js';
import type { Manifest } from './k8s-manifests.js';
import { ingressAllowed } from './network-reachability.js';
import type { IIoK8sApiNetworkingV1NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';

/** A port no container names: what a rank's data link listener might take. */
const SOME_RANK_PORT = 41234;

function portOf(pod: DeployedPod, name: string): number {
  return containerPort(containersOf(pod)[0]!, name) ?? -1;
}

export function accessProblems(manifests: readonly Manifest[], pods: readonly DeployedPod[]): string[] {
  const policies = manifests.filter((manifest): manifest is IIoK8sApiNetworkingV1NetworkPolicy => manifest.kind === 'NetworkPolicy');
  const problems: string[] = [];
  const expect = (from: DeployedPod | undefined, to: DeployedPod, port: number, allowed: boolean): void => {
    const source = from ?? { labels: {}, namespace: to.namespace, name: 'an unlabelled pod' };
    if (ingressAllowed(policies, source, to, port) !== allowed) problems.push(`${source.name} ${allowed ? 'cannot' : 'can'} reach ${to.name} on port ${port}`);
  };
  const routers = pods.filter((pod) => pod.role === 'pod');
  const members = pods.filter((pod) => pod.group !== undefined);
  for (const router of routers) {
    expect(undefined, router, portOf(router, 'http'), true);
    for (const member of members) {
      if (member.role === 'leader') expect(router, member, portOf(member, 'http'), true);
      if (member.role === 'leader') expect(router, member, portOf(member, 'mesh'), false);
      if (member.role === 'worker') expect(router, member, SOME_RANK_PORT, false);
    }
  }
  for (const to of members) {
    expect(undefined, to, to.role === 'leader' ? portOf(to, 'http') : SOME_RANK_PORT, false);
    for (const from of members) {
      if (from === to) continue;
      const port = to.role === 'leader' ? portOf(to, 'mesh') : SOME_RANK_PORT;
      expect(from, to, port, from.group === to.group);
    }
  }
  return problems;
}
