/**
 * The router in front of the replicas: a Deployment running `tessera
 * router` with one --replica per group leader (by its stable DNS name) and
 * a Service clients reach it through. The router holds the client key and
 * the key it sends the leaders, both from the keys Secret.
 */
import type { IIoK8sApiAppsV1Deployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IIoK8sApiCoreV1Service } from 'kubernetes-models/v1/Service';
import { servedName, type DeploySpec } from './deploy-spec.js';
import { componentSelector, instanceLabels, podLabels } from './k8s-labels.js';
import { leaderAddress } from './leader-worker-set.js';
import { API_PORT_NAME, containerSecurity, httpProbe, podSecurity, podVolumes, TESSERA_COMMAND } from './pod-parts.js';
import { CLIENT_KEY, REPLICA_KEY, secretEnv } from './secrets.js';

export const ROUTER_MEMORY_MIB = 512;

export function routerName(spec: DeploySpec): string {
  return `${spec.name}-router`;
}

/** The URL the router reaches each replica's leader at. */
export function replicaUrls(spec: DeploySpec): string[] {
  return Array.from({ length: spec.replicas }, (_, group) => `http://${leaderAddress(spec, group)}:${spec.apiPort}`);
}

function routerArgs(spec: DeploySpec): string[] {
  const replicas = replicaUrls(spec).flatMap((url) => ['--replica', url]);
  return ['router', '--model', spec.model, '--served-model-name', servedName(spec), '--host', '0.0.0.0', '--port', String(spec.apiPort), ...replicas];
}

export function routerDeployment(spec: DeploySpec): IIoK8sApiAppsV1Deployment {
  const volumes = podVolumes(spec);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: routerName(spec), namespace: spec.namespace, labels: { ...podLabels(spec, 'router') } },
    spec: {
      replicas: spec.routerReplicas,
      selector: { matchLabels: { ...componentSelector(spec, 'router') } },
      template: {
        metadata: { labels: { ...podLabels(spec, 'router') } },
        spec: {
          automountServiceAccountToken: false,
          securityContext: podSecurity(),
          volumes: volumes.volumes,
          containers: [
            {
              name: 'router',
              image: spec.image,
              imagePullPolicy: spec.imagePullPolicy,
              command: TESSERA_COMMAND,
              args: routerArgs(spec),
              env: [secretEnv('TESSERA_API_KEY', spec.keysSecret, CLIENT_KEY), secretEnv('TESSERA_REPLICA_API_KEY', spec.keysSecret, REPLICA_KEY)],
              ports: [{ name: API_PORT_NAME, containerPort: spec.apiPort, protocol: 'TCP' }],
              livenessProbe: httpProbe('/health', 10, 3),
              readinessProbe: httpProbe('/ready', 5, 3),
              resources: { requests: { cpu: '1', memory: `${ROUTER_MEMORY_MIB}Mi` }, limits: { memory: `${ROUTER_MEMORY_MIB}Mi` } },
              securityContext: containerSecurity(),
              volumeMounts: volumes.mounts,
            },
          ],
        },
      },
    },
  };
}

export function routerService(spec: DeploySpec): IIoK8sApiCoreV1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: routerName(spec), namespace: spec.namespace, labels: { ...instanceLabels(spec) } },
    spec: {
      type: 'ClusterIP',
      selector: { ...componentSelector(spec, 'router') },
      ports: [{ name: API_PORT_NAME, port: spec.apiPort, targetPort: API_PORT_NAME, protocol: 'TCP' }],
    },
  };
}
