/**
 * Whether a NetworkPolicy set lets one pod reach another on a port, by
 * Kubernetes' ingress rules: a pod no policy selects takes anything; a pod
 * some policy selects takes only what one of those policies' rules allows
 * (a rule with no `from` admits every source, a rule with no `ports` every
 * port). Only what Tessera writes is understood (same-namespace
 * podSelector.matchLabels peers, numeric ports); anything else is refused,
 * so a check cannot pass by not understanding a policy.
 */
import type { IIoK8sApiNetworkingV1NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { selectorMatches, type Labels } from './k8s-labels.js';

type Policy = IIoK8sApiNetworkingV1NetworkPolicy;
type Rule = NonNullable<NonNullable<Policy['spec']>['ingress']>[number];

export interface PodAddress {
  readonly labels: Labels;
  readonly namespace: string;
}

function unsupported(policy: Policy, what: string): Error {
  return new Error(`NetworkPolicy ${policy.metadata?.name ?? '?'} uses ${what}, which this check does not evaluate`);
}

function matchLabelsOf(policy: Policy, selector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } | undefined): Labels {
  if (selector?.matchExpressions?.length) throw unsupported(policy, 'matchExpressions');
  return selector?.matchLabels ?? {};
}

function selects(policy: Policy, pod: PodAddress): boolean {
  return policy.metadata?.namespace === pod.namespace && selectorMatches(matchLabelsOf(policy, policy.spec?.podSelector), pod.labels);
}

function ruleAdmits(policy: Policy, rule: Rule, from: PodAddress, to: PodAddress, port: number): boolean {
  const portOk = !rule.ports?.length || rule.ports.some((entry) => {
    if (typeof entry.port !== 'number' && entry.port !== undefined) throw unsupported(policy, 'a named port');
    return entry.port === undefined || (entry.port <= port && port <= (entry.endPort ?? entry.port));
  });
  if (!portOk) return false;
  if (!rule.from?.length) return true;
  return rule.from.some((peer) => {
    if (peer.ipBlock || peer.namespaceSelector) throw unsupported(policy, 'ipBlock or namespaceSelector peers');
    return from.namespace === to.namespace && selectorMatches(matchLabelsOf(policy, peer.podSelector), from.labels);
  });
}

/** Whether `from` may open a TCP connection to `to` on `port` under `policies`. */
export function ingressAllowed(policies: readonly Policy[], from: PodAddress, to: PodAddress, port: number): boolean {
  const governing = policies.filter((policy) => (policy.spec?.policyTypes ?? ['Ingress']).includes('Ingress') && selects(policy, to));
  if (governing.length === 0) return true;
  return governing.some((policy) => (policy.spec?.ingress ?? []).some((rule) => ruleAdmits(policy, rule, from, to, port)));
}
