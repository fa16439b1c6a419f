/**
 * The LeaderWorkerSet v1 CRD's structural schema for the fields around the
 * pod templates (types, enums, bounds, required fields), written from the
 * CRD's openAPIV3Schema (kubernetes-sigs/lws, config/crd/bases at commit
 * 060ab4d). The pod templates inside are checked with Kubernetes' own
 * PodTemplateSpec schema (kubernetes-models), so they are left open here.
 * No npm package ships LWS models; this is the part of the CRD a
 * manifest's author can get wrong outside the pod templates.
 */
const intOrString = { type: ['integer', 'string'] };

export const LWS_CRD_SCHEMA = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  additionalProperties: false,
  properties: {
    apiVersion: { const: 'leaderworkerset.x-k8s.io/v1' },
    kind: { const: 'LeaderWorkerSet' },
    metadata: { type: 'object' },
    spec: {
      type: 'object',
      required: ['leaderWorkerTemplate'],
      additionalProperties: false,
      properties: {
        replicas: { type: 'integer', minimum: 0, maximum: 1000000 },
        startupPolicy: { enum: ['LeaderCreated', 'LeaderReady'] },
        rolloutStrategy: {
          type: 'object',
          required: ['type'],
          additionalProperties: false,
          properties: {
            type: { enum: ['RollingUpdate'] },
            rollingUpdateConfiguration: {
              type: 'object',
              additionalProperties: false,
              properties: { partition: { type: 'integer' }, maxUnavailable: intOrString, maxSurge: intOrString },
            },
          },
        },
        networkConfig: {
          type: 'object',
          required: ['subdomainPolicy'],
          additionalProperties: false,
          properties: { subdomainPolicy: { enum: ['Shared', 'UniquePerReplica'] } },
        },
        leaderWorkerTemplate: {
          type: 'object',
          required: ['workerTemplate'],
          additionalProperties: false,
          properties: {
            leaderTemplate: { type: 'object' },
            workerTemplate: { type: 'object' },
            size: { type: 'integer', minimum: 1, maximum: 2147483647 },
            restartPolicy: { enum: ['Default', 'RecreateGroupOnPodRestart', 'RecreateGroupAfterStart', 'None'] },
            subGroupPolicy: {
              type: 'object',
              additionalProperties: false,
              properties: { subGroupPolicyType: { enum: ['LeaderWorker', 'LeaderExcluded'] }, subGroupSize: { type: 'integer' } },
            },
            volumeClaimTemplates: { type: 'array' },
            persistentVolumeClaimRetentionPolicy: {
              type: 'object',
              additionalProperties: false,
              properties: { whenDeleted: { type: 'string' }, whenScaled: { type: 'string' } },
            },
          },
        },
      },
    },
  },
} as const;
