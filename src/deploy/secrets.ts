/**
 * The Secrets a deployment reads. Manifests never hold a secret's value:
 * every key, token and certificate reaches a container from a Secret (an
 * environment variable through secretKeyRef), so the
 * manifests can be committed and reviewed, and `ps` inside a pod shows no
 * secret on a command line.
 */
import type { IIoK8sApiCoreV1EnvVar } from 'kubernetes-models/v1/EnvVar';
import type { DeploySpec } from './deploy-spec.js';

export interface SecretNeed {
  readonly name: string;
  /** Keys the manifests read from it. */
  readonly keys: readonly string[];
  readonly type: 'Opaque';
  readonly purpose: string;
  /** A command that creates it with fresh random values (the operator runs it; nothing here stores values). */
  readonly create: string;
}

/** Key names inside the keys Secret. */
export const CLIENT_KEY = 'client-api-key';
export const REPLICA_KEY = 'replica-api-key';
export const JOIN_TOKEN_KEY = 'join-token';

export function secretNeeds(spec: DeploySpec): SecretNeed[] {
  const random = '"$(openssl rand -hex 32)"';
  const needs: SecretNeed[] = [
    {
      name: spec.keysSecret,
      keys: [CLIENT_KEY, REPLICA_KEY, JOIN_TOKEN_KEY],
      type: 'Opaque',
      purpose: 'the key clients give the router, the key the router gives the leaders, and the token workers join their leader with',
      create: `kubectl -n ${spec.namespace} create secret generic ${spec.keysSecret} --from-literal=${CLIENT_KEY}=${random} --from-literal=${REPLICA_KEY}=${random} --from-literal=${JOIN_TOKEN_KEY}=${random}`,
    },
  ];
  return needs;
}

/** An environment variable whose value comes from a key of a Secret. */
export function secretEnv(name: string, secret: string, key: string): IIoK8sApiCoreV1EnvVar {
  return { name, valueFrom: { secretKeyRef: { name: secret, key } } };
}
