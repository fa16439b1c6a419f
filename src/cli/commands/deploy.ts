/** `tessera deploy k8s`: Kubernetes manifests for replicas of a mesh behind a router (src/deploy). */
import { writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { TesseraError } from '../../core/errors.js';
import { checkDeploySpec, DEFAULT_API_PORT, DEFAULT_MESH_PORT, type DeploySpec } from '../../deploy/deploy-spec.js';
import { k8sDeployment, k8sYaml } from '../../deploy/k8s-manifests.js';
import { semanticProblems } from '../../deploy/manifest-semantics.js';
import { rankMemory, type PlanSource } from '../../deploy/rank-memory.js';
import { parseWeightDtype, WEIGHT_DTYPES } from '../../planner/precision.js';
import { numberOption } from '../model-options.js';
import { resolveHardware, resolveModel } from '../plan-sources.js';

interface DeployK8sOptions {
  model: string;
  image: string;
  imagePullPolicy: DeploySpec['imagePullPolicy'];
  name: string;
  namespace: string;
  servedModelName?: string;
  replicas: number;
  tp: number;
  pp: number;
  port: number;
  meshPort: number;
  routerReplicas: number;
  rankCpus: number;
  kvCacheMib: number;
  kvCacheDtype: 'f32' | 'f16';
  overheadMib: number;
  modelClaim?: string;
  modelMount: string;
  keysSecret?: string;
  planModel?: string;
  hardware: string;
  weightsDtype?: string;
  out?: string;
}

const whole = (flag: string, max: number): ((value: string) => number) => numberOption(flag, 1, max, true);

/** What the planner reads: --plan-model, else --model when this machine can read it (or it names a catalog model). */
function planSource(options: DeployK8sOptions): PlanSource {
  const text = options.planModel ?? options.model;
  let model;
  try {
    model = resolveModel(text);
  } catch (error) {
    if (options.planModel !== undefined) throw error;
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `the planner cannot read --model ${options.model} on this machine; give --plan-model with a catalog name (tessera plan --model x lists them), a config.json or a local copy of the model`, { cause: error });
  }
  const hardware = resolveHardware(options.hardware).hardware;
  const weights = options.weightsDtype ? parseWeightDtype(options.weightsDtype) : model.weights ?? (hardware.kind === 'cpu' ? 'q8_0' : 'bf16');
  return { shape: model.shape, hardware, weights };
}

function specOf(options: DeployK8sOptions): DeploySpec {
  return checkDeploySpec({
    name: options.name,
    namespace: options.namespace,
    image: options.image,
    imagePullPolicy: options.imagePullPolicy,
    model: options.model,
    servedModelName: options.servedModelName,
    replicas: options.replicas,
    tp: options.tp,
    pp: options.pp,
    apiPort: options.port,
    meshPort: options.meshPort,
    routerReplicas: options.routerReplicas,
    rankCpus: options.rankCpus,
    kvCacheMib: options.kvCacheMib,
    kvCacheDtype: options.kvCacheDtype,
    overheadMib: options.overheadMib,
    modelClaim: options.modelClaim,
    modelMount: options.modelMount,
    keysSecret: options.keysSecret ?? `${options.name}-keys`,
  });
}

function run(options: DeployK8sOptions): void {
  const spec = specOf(options);
  const deployment = k8sDeployment(spec, rankMemory(spec, planSource(options)));
  // The manifests are built to hold together; a problem here is Tessera's bug, never the user's.
  const problems = semanticProblems(deployment.manifests, spec);
  if (problems.length > 0) throw new TesseraError('TESSERA_ERR_INTERNAL', `the manifests do not hold together: ${problems.join('; ')}`);
  const yaml = k8sYaml(deployment);
  if (options.out === undefined || options.out === '-') {
    process.stdout.write(yaml);
    return;
  }
  writeFileSync(options.out, yaml);
  process.stderr.write(`wrote ${deployment.manifests.length} manifests to ${options.out} (${deployment.memory.source})\n`);
}

export function registerDeployCommand(program: Command): void {
  const deploy = program.command('deploy').description('write deployment manifests');
  deploy
    .command('k8s')
    .description('Kubernetes manifests: a LeaderWorkerSet (one group per replica: a leader with the coordinator and API, one worker pod per rank), the router Deployment and Service, NetworkPolicies; resource requests from tessera plan')
    .requiredOption('--model <path>', 'the model as the containers see it (the same path in every pod)')
    .requiredOption('--image <ref>', 'container image with `tessera` on its PATH')
    .addOption(new Option('--image-pull-policy <policy>', 'when the kubelet pulls the image').choices(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'))
    .option('--name <name>', 'name of the LeaderWorkerSet and prefix of every object', 'tessera')
    .option('--namespace <ns>', 'namespace of every object', 'default')
    .option('--served-model-name <name>', 'model name clients use (default: the --model value)')
    .option('--replicas <n>', 'replicas (LWS groups) behind the router', whole('--replicas', 1000), 1)
    .option('--tp <n>', 'tensor-parallel degree of each replica', whole('--tp', 1024), 1)
    .option('--pp <n>', 'pipeline-parallel degree of each replica', whole('--pp', 1024), 1)
    .option('--port <port>', 'API port of the leaders and the router', whole('--port', 65535), DEFAULT_API_PORT)
    .option('--mesh-port <port>', "where a leader's coordinator takes its workers' joins", whole('--mesh-port', 65535), DEFAULT_MESH_PORT)
    .option('--router-replicas <n>', 'router pods', whole('--router-replicas', 100), 1)
    .option('--rank-cpus <n>', "each rank's CPU request and compute threads", whole('--rank-cpus', 1024), 2)
    .option('--kv-cache-mib <n>', "each rank's KV cache budget (serve --kv-cache-mib)", numberOption('--kv-cache-mib', 0.01, 1e7), 256)
    .addOption(new Option('--kv-cache-dtype <dtype>', 'KV cache element type').choices(['f32', 'f16']).default('f32'))
    .option('--overhead-mib <n>', 'memory a rank needs beyond weights and KV cache (the runtime)', numberOption('--overhead-mib', 0, 1e7, true), 512)
    .option('--model-claim <pvc>', 'a PersistentVolumeClaim holding the model, mounted read-only in every pod')
    .option('--model-mount <path>', 'where --model-claim is mounted', '/models')
    .option('--keys-secret <name>', 'Secret with the client key, the replica key and the join token (default: NAME-keys)')
    .option('--plan-model <name|path>', 'what tessera plan reads for the memory figure (default: --model, when readable here)')
    .option('--hardware <name|file>', "tessera plan's hardware for a rank", 'this-machine')
    .addOption(new Option('--weights-dtype <type>', "weight format for the plan (default: the file's)").choices([...WEIGHT_DTYPES]))
    .option('--out <file>', 'write the manifests here instead of stdout')
    .option('--verbose', 'print stack traces on errors')
    .action((options: DeployK8sOptions) => run(options));
}
