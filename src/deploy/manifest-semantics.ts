/**
 * Semantic checks of a deployment's manifests, the mistakes a schema cannot
 * see: selectors that match no pod, ports that disagree between a Service,
 * a probe, a flag and a container, a secret that does not come from a
 * Secret (or travels as a flag), a router pointed at the wrong leaders,
 * workers joining the wrong port, network policies that let the wrong pods
 * in or keep the right ones out. Each problem is one sentence; none is good.
 */
import type { IIoK8sApiCoreV1Container } from 'kubernetes-models/v1/Container';
import { argValue, argValues, containerPort, containersOf, deployedPods, type DeployedPod } from './deployed-pods.js';
import type { DeploySpec } from './deploy-spec.js';
import { selectorMatches } from './k8s-labels.js';
import type { Manifest } from './k8s-manifests.js';
import { accessProblems } from './network-access.js';
import { secretNeeds } from './secrets.js';

type Check = (manifests: readonly Manifest[], pods: readonly DeployedPod[], spec: DeploySpec) => string[];

/** Flags whose value is a secret: they would show in `ps` and in the manifest. */
const SECRET_FLAGS = ['--api-key', '--token', '--replica-api-key', '--admin-key', '--join-token'];
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD/i;

const selectorsMatch: Check = (manifests, pods) => {
  const problems: string[] = [];
  for (const manifest of manifests) {
    const name = `${manifest.kind}/${manifest.metadata?.name}`;
    if (manifest.kind === 'Deployment') {
      const selector = manifest.spec?.selector.matchLabels ?? {};
      if (!selectorMatches(selector, manifest.spec?.template.metadata?.labels ?? {})) problems.push(`${name}: its selector does not match its pod template's labels`);
    }
    if (manifest.kind === 'Service' && !pods.some((pod) => pod.namespace === manifest.metadata?.namespace && selectorMatches(manifest.spec?.selector ?? {}, pod.labels))) {
      problems.push(`${name}: its selector matches no pod`);
    }
    if (manifest.kind === 'NetworkPolicy' && !pods.some((pod) => selectorMatches(manifest.spec?.podSelector?.matchLabels ?? {}, pod.labels))) {
      problems.push(`${name}: its pod selector matches no pod`);
    }
  }
  return problems;
};

const servicePortsAgree: Check = (manifests, pods) =>
  manifests.flatMap((manifest) => {
    if (manifest.kind !== 'Service') return [];
    const selected = pods.filter((pod) => selectorMatches(manifest.spec?.selector ?? {}, pod.labels));
    return (manifest.spec?.ports ?? []).flatMap((port) =>
      selected
        .filter((pod) => !containersOf(pod).some((container) => containerPort(container, port.targetPort ?? port.port) !== undefined))
        .map((pod) => `Service/${manifest.metadata?.name}: target port ${port.targetPort ?? port.port} is no container port of pod ${pod.name}`),
    );
  });

function probeProblems(pod: DeployedPod, container: IIoK8sApiCoreV1Container): string[] {
  const probes = [container.livenessProbe, container.readinessProbe, container.startupProbe];
  return probes.flatMap((probe) => {
    const port = probe?.httpGet?.port;
    if (port === undefined || containerPort(container, port) !== undefined) return [];
    return [`pod ${pod.name} container ${container.name}: a probe checks port ${port}, which the container does not expose`];
  });
}

const probesAgree: Check = (_manifests, pods) => pods.flatMap((pod) => containersOf(pod).flatMap((container) => probeProblems(pod, container)));

function secretProblems(pod: DeployedPod, container: IIoK8sApiCoreV1Container, spec: DeploySpec): string[] {
  const needs = secretNeeds(spec);
  const where = `pod ${pod.name} container ${container.name}`;
  const problems: string[] = [];
  for (const env of container.env ?? []) {
    const ref = env.valueFrom?.secretKeyRef;
    if (SECRET_NAME.test(env.name) && (env.value !== undefined || !ref)) problems.push(`${where}: ${env.name} is not read from a Secret`);
    if (ref && !needs.some((need) => need.name === ref.name && need.keys.includes(ref.key))) problems.push(`${where}: ${env.name} reads ${ref.name}/${ref.key}, which is no Secret key the deployment declares`);
  }
  for (const flag of SECRET_FLAGS) if (container.args?.includes(flag)) problems.push(`${where}: ${flag} puts a secret on the command line`);
  return problems;
}

const secretsFromSecrets: Check = (_manifests, pods, spec) => pods.flatMap((pod) => containersOf(pod).flatMap((container) => secretProblems(pod, container, spec)));

function leaderOf(pods: readonly DeployedPod[], group: number): DeployedPod | undefined {
  return pods.find((pod) => pod.role === 'leader' && pod.group === group);
}

/** The router names every leader at its stable address and API port; workers join their leader's mesh port. */
const wiringAgrees: Check = (_manifests, pods, spec) => {
  const problems: string[] = [];
  const leaders = pods.filter((pod) => pod.role === 'leader');
  for (const router of pods.filter((pod) => pod.role === 'pod')) {
    const urls = containersOf(router).flatMap((container) => argValues(container, '--replica'));
    const expected = leaders.map((leader) => `http://${leader.controllerEnv.LWS_LEADER_ADDRESS}:${containerPort(containersOf(leader)[0]!, 'http')}`);
    if (urls.length !== expected.length || expected.some((url) => !urls.includes(url))) problems.push(`pod ${router.name}: --replica ${urls.join(', ')} is not every leader (${expected.join(', ')})`);
  }
  for (const leader of leaders) {
    const container = containersOf(leader)[0]!;
    const ranks = Number(argValue(container, '--tp')) * Number(argValue(container, '--pp'));
    const size = Number(leader.controllerEnv.LWS_GROUP_SIZE);
    if (ranks + 1 !== size) problems.push(`pod ${leader.name}: --tp × --pp is ${ranks} ranks but its group has ${size - 1} workers`);
    if (Number(argValue(container, '--port')) !== containerPort(container, 'http')) problems.push(`pod ${leader.name}: --port is not its http container port`);
    const listen = argValue(container, '--listen')?.split(':').pop();
    if (Number(listen) !== containerPort(container, 'mesh')) problems.push(`pod ${leader.name}: --listen port ${listen} is not its mesh container port`);
  }
  for (const worker of pods.filter((pod) => pod.role === 'worker')) {
    const join = argValue(containersOf(worker)[0]!, '--join') ?? '';
    const leader = leaderOf(pods, worker.group!);
    const meshPort = leader && containerPort(containersOf(leader)[0]!, 'mesh');
    if (join !== `$(LWS_LEADER_ADDRESS):${meshPort}`) problems.push(`pod ${worker.name}: --join ${join} is not its leader's mesh port ${meshPort}`);
  }
  if (leaders.length !== spec.replicas) problems.push(`${leaders.length} leaders for ${spec.replicas} replicas`);
  return problems;
};

const resourcesSet: Check = (_manifests, pods) =>
  pods.flatMap((pod) =>
    containersOf(pod).flatMap((container) => {
      const requests = container.resources?.requests ?? {};
      return requests.cpu === undefined || requests.memory === undefined ? [`pod ${pod.name} container ${container.name}: no cpu and memory request`] : [];
    }),
  );

const networkAccess: Check = (manifests, pods) => accessProblems(manifests, pods);

const CHECKS: readonly Check[] = [selectorsMatch, servicePortsAgree, probesAgree, secretsFromSecrets, wiringAgrees, resourcesSet, networkAccess];

/** Every problem every check finds; empty when the manifests hold together. */
export function semanticProblems(manifests: readonly Manifest[], spec: DeploySpec): string[] {
  const pods = deployedPods(manifests);
  return CHECKS.flatMap((check) => check(manifests, pods, spec));
}
