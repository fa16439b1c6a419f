/**
 * The manifests of `tessera deploy k8s`, checked offline three ways
 * (kubernetes-models schemas, the LWS CRD's structure, a strict unknown-key
 * walk) and semantically (selectors, ports, secrets, wiring, network
 * access) for several layouts; and each check shown to catch the mistake
 * it is for, by breaking a manifest on purpose.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DeploySpec } from './deploy-spec.js';
import { k8sDeployment, k8sYaml, type Manifest } from './k8s-manifests.js';
import type { LeaderWorkerSet } from './leader-worker-set.js';
import { semanticProblems } from './manifest-semantics.js';
import { rankMemory } from './rank-memory.js';
import { catalogHardware } from '../planner/hardware-catalog.js';
import { catalogModel } from '../planner/model-catalog.js';
import { planDeployment } from '../planner/plan.js';
import { schemaProblems } from '../testing/k8s-schema-check.js';
import { parseAllDocuments } from 'yaml';

const BASE: DeploySpec = {
  name: 'tessera',
  namespace: 'llm',
  image: 'registry.example/tessera:0.1',
  imagePullPolicy: 'IfNotPresent',
  model: '/models/llama-3.1-8b-q8_0.gguf',
  replicas: 2,
  tp: 2,
  pp: 1,
  apiPort: 8000,
  meshPort: 7070,
  routerReplicas: 1,
  rankCpus: 4,
  kvCacheMib: 512,
  kvCacheDtype: 'f32',
  overheadMib: 512,
  modelClaim: 'models',
  modelMount: '/models',
  keysSecret: 'tessera-keys',
};

const PLAN = { shape: catalogModel('llama-3.1-8b'), hardware: catalogHardware('dev-epyc-2core'), weights: 'q8_0' as const };

function build(changes: Partial<DeploySpec> = {}): { spec: DeploySpec; manifests: Manifest[] } {
  const spec = { ...BASE, ...changes };
  return { spec, manifests: structuredClone([...k8sDeployment(spec, rankMemory(spec, PLAN)).manifests]) };
}

function find<K extends Manifest['kind']>(manifests: Manifest[], kind: K, name?: string): Extract<Manifest, { kind: K }> {
  const found = manifests.find((manifest) => manifest.kind === kind && (name === undefined || manifest.metadata?.name === name));
  assert.ok(found, `${kind} ${name ?? ''}`);
  return found as Extract<Manifest, { kind: K }>;
}

const LAYOUTS: Partial<DeploySpec>[] = [
  { replicas: 1, tp: 1, pp: 1, modelClaim: undefined },
  { replicas: 2, tp: 2, pp: 1 },
  { replicas: 3, tp: 2, pp: 2, kvCacheDtype: 'f16', routerReplicas: 2, name: 'big-mesh', namespace: 'default', apiPort: 9000, meshPort: 9100 },
];

for (const layout of LAYOUTS) {
  test(`deploy k8s ${layout.replicas} × tp ${layout.tp} pp ${layout.pp}: schemas, the strict key walk and the semantic checks all pass`, () => {
    const { spec, manifests } = build(layout);
    assert.deepEqual(schemaProblems(manifests), []);
    assert.deepEqual(semanticProblems(manifests, spec), []);
    const lws = find(manifests, 'LeaderWorkerSet');
    assert.equal(lws.spec.replicas, spec.replicas);
    assert.equal(lws.spec.leaderWorkerTemplate.size, 1 + spec.tp * spec.pp);
    assert.equal(manifests.filter((manifest) => manifest.kind === 'NetworkPolicy').length, spec.replicas + 2);
  });
}

test('the YAML written parses back (an independent YAML 1.2 parser) to exactly the manifests built', () => {
  const { spec } = build({ replicas: 2 });
  const deployment = k8sDeployment(spec, rankMemory(spec, PLAN));
  const documents = parseAllDocuments(k8sYaml(deployment));
  assert.deepEqual(documents.map((document) => document.errors), documents.map(() => []));
  assert.deepEqual(documents.map((document) => document.toJS() as unknown), JSON.parse(JSON.stringify(deployment.manifests)));
});

test("a rank pod requests tessera plan's memory per rank plus the runtime's, and its threads as CPUs", () => {
  const { spec, manifests } = build();
  const planned = planDeployment({
    shape: PLAN.shape, hardware: PLAN.hardware, layout: { tp: 2, pp: 1, ep: 1, dp: 2 }, devices: 4, weights: 'q8_0', kv: 'f32',
    workload: { inputLength: 512, outputLength: 128, arrival: { kind: 'closed', concurrency: 1 }, burst: false }, frontend: 'http', kvCacheGiB: 0.5,
  });
  const expected = Math.ceil(planned.memoryPerDeviceGiB * 1024 + spec.overheadMib);
  const worker = find(manifests, 'LeaderWorkerSet').spec.leaderWorkerTemplate.workerTemplate.spec!.containers[0]!;
  assert.equal(worker.resources?.requests?.memory, `${expected}Mi`);
  assert.equal(worker.resources?.limits?.memory, `${expected}Mi`);
  assert.equal(worker.resources?.requests?.cpu, '4');
  assert.ok(planned.weightsPerDeviceGiB > 3.5 && planned.weightsPerDeviceGiB < 4.5, `8B q8_0 over tp 2: ${planned.weightsPerDeviceGiB} GiB`);
});

/** Breaks one thing and expects a problem matching `pattern` from schema or semantic checks. */
function expectCaught(label: string, pattern: RegExp, breakIt: (manifests: Manifest[]) => void): void {
  test(`a broken manifest is caught: ${label}`, () => {
    const { spec, manifests } = build();
    breakIt(manifests);
    const problems = [...schemaProblems(manifests), ...semanticProblems(manifests, spec)];
    assert.ok(problems.some((problem) => pattern.test(problem)), `expected ${pattern} in:\n${problems.join('\n')}`);
  });
}

const lwsOf = (manifests: Manifest[]): LeaderWorkerSet => find(manifests, 'LeaderWorkerSet');
const routerOf = (manifests: Manifest[]) => find(manifests, 'Deployment').spec!.template.spec!.containers[0]!;
const leaderOf = (manifests: Manifest[]) => lwsOf(manifests).spec.leaderWorkerTemplate.leaderTemplate!.spec!.containers[0]!;

expectCaught('an unknown key deep in a pod template', /containers\/0\/readynessProbe: unknown key/, (m) => {
  Object.assign(routerOf(m), { readynessProbe: routerOf(m).readinessProbe });
});
expectCaught('an unknown key in the LWS spec', /sise|additional/, (m) => Object.assign(lwsOf(m).spec.leaderWorkerTemplate, { sise: 3 }));
expectCaught('an LWS enum value the CRD does not have', /restartPolicy/, (m) => Object.assign(lwsOf(m).spec.leaderWorkerTemplate, { restartPolicy: 'Sometimes' }));
expectCaught('a container port given as a string', /containerPort/, (m) => Object.assign(leaderOf(m).ports![0]!, { containerPort: '8000' }));
expectCaught('a Service selector that matches no pod', /Service\/tessera-router: its selector matches no pod/, (m) => {
  find(m, 'Service').spec!.selector = { 'app.kubernetes.io/component': 'routr' };
});
expectCaught('a Service target port no container has', /target port api/, (m) => Object.assign(find(m, 'Service').spec!.ports![0]!, { targetPort: 'api' }));
expectCaught('a probe on a port the container does not expose', /probe checks port metrics/, (m) => Object.assign(leaderOf(m).readinessProbe!.httpGet!, { port: 'metrics' }));
expectCaught('a key written into the manifest', /TESSERA_API_KEY is not read from a Secret/, (m) => {
  routerOf(m).env![0] = { name: 'TESSERA_API_KEY', value: 'sk-in-the-clear' };
});
expectCaught('a secret on the command line', /--api-key puts a secret on the command line/, (m) => routerOf(m).args!.push('--api-key', 'sk'));
expectCaught('a Secret key the deployment does not declare', /reads tessera-keys\/admin/, (m) => {
  leaderOf(m).env![0]!.valueFrom!.secretKeyRef!.key = 'admin';
});
expectCaught('a router that misses a replica', /--replica .* is not every leader/, (m) => {
  const args = routerOf(m).args!;
  args.splice(args.lastIndexOf('--replica'), 2);
});
expectCaught('workers joining the wrong port', /--join .* is not its leader's mesh port/, (m) => {
  const args = lwsOf(m).spec.leaderWorkerTemplate.workerTemplate.spec!.containers[0]!.args!;
  args[args.indexOf('--join') + 1] = '$(LWS_LEADER_ADDRESS):8000';
});
expectCaught('a group size that does not match tp × pp', /its group has/, (m) => {
  lwsOf(m).spec.leaderWorkerTemplate.size = 2;
});
expectCaught('a group policy that lets every pod in', /can reach tessera-0-1/, (m) => {
  const policy = find(m, 'NetworkPolicy', 'tessera-group-0');
  policy.spec!.ingress = [{}];
});
expectCaught('a leader policy on the wrong port', /tessera-router-0 cannot reach tessera-1 on port 8000/, (m) => {
  find(m, 'NetworkPolicy', 'tessera-leaders').spec!.ingress![0]!.ports = [{ port: 8080, protocol: 'TCP' }];
});
expectCaught('a missing memory request', /no cpu and memory request/, (m) => {
  delete routerOf(m).resources!.requests!.memory;
});
