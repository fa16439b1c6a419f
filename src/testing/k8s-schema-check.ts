/**
 * Offline schema checks of manifests, three ways: the kubernetes-models
 * validators (Kubernetes' OpenAPI schemas compiled) for Deployments,
 * Services, NetworkPolicies and the LeaderWorkerSet's pod templates; the
 * LWS CRD's structural schema (ajv) around those templates; and the strict
 * unknown-key walk over every kind (k8s-type-walk.ts).
 */
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { Service } from 'kubernetes-models/v1/Service';
import type { Manifest } from '../deploy/k8s-manifests.js';
import { checkJsonSchema } from './json-schema-check.js';
import { typeWalkProblems } from './k8s-type-walk.js';
import { LWS_CRD_SCHEMA } from './lws-crd-schema.js';

function validated(label: string, validate: () => void): string[] {
  try {
    validate();
    return [];
  } catch (error) {
    return [`${label}: ${(error as Error).message}`];
  }
}

function modelProblems(manifest: Manifest): string[] {
  const label = `${manifest.kind}/${manifest.metadata?.name}`;
  switch (manifest.kind) {
    case 'Deployment':
      return validated(label, () => new Deployment(manifest).validate());
    case 'Service':
      return validated(label, () => new Service(manifest).validate());
    case 'NetworkPolicy':
      return validated(label, () => new NetworkPolicy(manifest).validate());
    case 'LeaderWorkerSet': {
      const template = manifest.spec.leaderWorkerTemplate;
      return [
        ...checkJsonSchema(manifest, LWS_CRD_SCHEMA).map((problem) => `${label}: ${problem}`),
        ...validated(`${label} leaderTemplate`, () => new PodTemplateSpec(template.leaderTemplate).validate()),
        ...validated(`${label} workerTemplate`, () => new PodTemplateSpec(template.workerTemplate).validate()),
      ];
    }
  }
}

/** Every schema problem of every manifest; empty when all validate. */
export function schemaProblems(manifests: readonly Manifest[]): string[] {
  return manifests.flatMap((manifest) => [...modelProblems(manifest), ...typeWalkProblems(manifest)]);
}
