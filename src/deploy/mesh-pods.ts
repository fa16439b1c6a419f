/**
 * The pods of one replica's group: the leader runs `tessera serve` as the
 * mesh's coordinator and the replica's API (it holds no weights), the
 * workers run `tessera worker`, one rank each, joining the leader at
 * LWS_LEADER_ADDRESS (which the LWS controller sets in every pod of a
 * group to its leader's stable DNS name). Keys and the join token come from
 * the keys Secret as environment variables, never as flags.
 */
import type { IIoK8sApiCoreV1Container } from 'kubernetes-models/v1/Container';
import type { IIoK8sApiCoreV1PodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { servedName, type DeploySpec } from './deploy-spec.js';
import { podLabels } from './k8s-labels.js';
import { API_PORT_NAME, containerSecurity, httpProbe, MESH_PORT_NAME, podSecurity, podVolumes, TESSERA_COMMAND } from './pod-parts.js';
import type { RankMemory } from './rank-memory.js';
import { JOIN_TOKEN_KEY, REPLICA_KEY, secretEnv } from './secrets.js';

/** The leader holds the tokenizer, the engine core and its block tables, not weights. */
export const LEADER_MEMORY_MIB = 1024;

function leaderContainer(spec: DeploySpec): IIoK8sApiCoreV1Container {
  return {
    name: 'leader',
    image: spec.image,
    imagePullPolicy: spec.imagePullPolicy,
    command: TESSERA_COMMAND,
    args: [
      'serve', '--model', spec.model, '--served-model-name', servedName(spec),
      '--host', '0.0.0.0', '--port', String(spec.apiPort),
      '--tp', String(spec.tp), '--pp', String(spec.pp), '--listen', `0.0.0.0:${spec.meshPort}`,
      '--kv-cache-mib', String(spec.kvCacheMib), '--kv-cache-dtype', spec.kvCacheDtype,
    ],
    env: [secretEnv('TESSERA_API_KEY', spec.keysSecret, REPLICA_KEY), secretEnv('TESSERA_JOIN_TOKEN', spec.keysSecret, JOIN_TOKEN_KEY)],
    ports: [
      { name: API_PORT_NAME, containerPort: spec.apiPort, protocol: 'TCP' },
      { name: MESH_PORT_NAME, containerPort: spec.meshPort, protocol: 'TCP' },
    ],
    // /health answers as soon as the server listens; /ready once every rank has loaded its shards.
    livenessProbe: httpProbe('/health', 10, 6),
    readinessProbe: httpProbe('/ready', 5, 3),
    resources: { requests: { cpu: '1', memory: `${LEADER_MEMORY_MIB}Mi` }, limits: { memory: `${LEADER_MEMORY_MIB}Mi` } },
    securityContext: containerSecurity(),
    volumeMounts: podVolumes(spec).mounts,
  };
}

function workerContainer(spec: DeploySpec, memory: RankMemory): IIoK8sApiCoreV1Container {
  return {
    name: 'rank',
    image: spec.image,
    imagePullPolicy: spec.imagePullPolicy,
    command: TESSERA_COMMAND,
    // $(VAR) is expanded by the kubelet from the container's environment, not by a shell.
    args: ['worker', '--join', `$(LWS_LEADER_ADDRESS):${spec.meshPort}`, '--threads', String(spec.rankCpus)],
    env: [secretEnv('TESSERA_JOIN_TOKEN', spec.keysSecret, JOIN_TOKEN_KEY)],
    resources: {
      requests: { cpu: String(spec.rankCpus), memory: `${memory.requestMib}Mi` },
      limits: { memory: `${memory.requestMib}Mi` },
    },
    securityContext: containerSecurity(),
    volumeMounts: podVolumes(spec).mounts,
  };
}

function template(spec: DeploySpec, component: 'leader' | 'worker', container: IIoK8sApiCoreV1Container): IIoK8sApiCoreV1PodTemplateSpec {
  return {
    metadata: { labels: { ...podLabels(spec, component) } },
    spec: { containers: [container], volumes: podVolumes(spec).volumes, automountServiceAccountToken: false, securityContext: podSecurity() },
  };
}

export function leaderTemplate(spec: DeploySpec): IIoK8sApiCoreV1PodTemplateSpec {
  return template(spec, 'leader', leaderContainer(spec));
}

export function workerTemplate(spec: DeploySpec, memory: RankMemory): IIoK8sApiCoreV1PodTemplateSpec {
  return template(spec, 'worker', workerContainer(spec, memory));
}
