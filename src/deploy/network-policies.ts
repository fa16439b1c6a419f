/**
 * NetworkPolicies: a leader takes API traffic only from the router, and
 * the pods of one replica's group (its leader and its ranks) reach each
 * other on any port (joins, data links between ranks) but no other group's.
 * The router takes clients on its API port. Policies add up: a pod selected
 * by any policy takes only what some policy selecting it allows. Egress is
 * left open (DNS, the router's replica polls); see the README's security
 * model. The group policies follow --replicas: scaling the set by hand
 * leaves new groups isolated until deploy is run again with the new count.
 */
import type { IIoK8sApiNetworkingV1NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { DeploySpec } from './deploy-spec.js';
import { componentSelector, groupSelector, instanceLabels, type Labels } from './k8s-labels.js';

function policy(spec: DeploySpec, name: string, podSelector: Labels, ingress: NonNullable<IIoK8sApiNetworkingV1NetworkPolicy['spec']>['ingress']): IIoK8sApiNetworkingV1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: spec.namespace, labels: { ...instanceLabels(spec) } },
    spec: { podSelector: { matchLabels: { ...podSelector } }, policyTypes: ['Ingress'], ingress },
  };
}

export function networkPolicies(spec: DeploySpec): IIoK8sApiNetworkingV1NetworkPolicy[] {
  const api = [{ port: spec.apiPort, protocol: 'TCP' as const }];
  const groups = Array.from({ length: spec.replicas }, (_, group) =>
    policy(spec, `${spec.name}-group-${group}`, groupSelector(spec.name, group), [{ from: [{ podSelector: { matchLabels: { ...groupSelector(spec.name, group) } } }] }]),
  );
  return [
    policy(spec, `${spec.name}-leaders`, componentSelector(spec, 'leader'), [{ from: [{ podSelector: { matchLabels: { ...componentSelector(spec, 'router') } } }], ports: api }]),
    ...groups,
    policy(spec, `${spec.name}-router`, componentSelector(spec, 'router'), [{ ports: api }]),
  ];
}
