/** `tessera deploy k8s` as a user runs it: a file of manifests that validate, the planner's figure, coded errors. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import type { Manifest } from '../../deploy/k8s-manifests.js';
import { semanticProblems } from '../../deploy/manifest-semantics.js';
import type { DeploySpec } from '../../deploy/deploy-spec.js';
import { synthesize } from '../../synth/synthesize.js';
import { projectRoot } from '../../testing/fixtures.js';
import { schemaProblems } from '../../testing/k8s-schema-check.js';

const bin = join(projectRoot, 'bin', 'tessera.js');
const scratch = mkdtempSync(join(tmpdir(), 'tessera-deploy-'));

function deploy(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bin, 'deploy', 'k8s', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function codedFailure(result: ReturnType<typeof deploy>, code: string, pattern: RegExp): void {
  assert.notEqual(result.status, 0, result.stdout);
  assert.match(result.stderr.trim(), new RegExp(`^error ${code}: `));
  assert.match(result.stderr, pattern);
}

test('deploy k8s --out writes manifests that validate, for a GGUF the planner reads here', async () => {
  const model = join(scratch, 'tiny-q8_0.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q8_0', out: model, format: 'gguf', seed: 5 });
  const out = join(scratch, 'tessera.yaml');
  const result = deploy('--model', model, '--image', 'tessera:test', '--replicas', '2', '--tp', '2', '--pp', '2', '--namespace', 'llm', '--out', out);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /wrote 7 manifests to .*tessera\.yaml \(tessera plan: .* q8_0 .* MiB per rank\)/);
  const text = readFileSync(out, 'utf8');
  assert.match(text, /^# Create these Secrets first/m);
  assert.match(text, /kubectl -n llm create secret generic tessera-keys/);
  const manifests = parseAllDocuments(text).map((document) => document.toJS() as Manifest);
  assert.deepEqual(manifests.map((manifest) => manifest.kind), ['NetworkPolicy', 'NetworkPolicy', 'NetworkPolicy', 'NetworkPolicy', 'LeaderWorkerSet', 'Deployment', 'Service']);
  assert.deepEqual(schemaProblems(manifests), []);
  const spec = { name: 'tessera', namespace: 'llm', keysSecret: 'tessera-keys', replicas: 2 } as DeploySpec;
  assert.deepEqual(semanticProblems(manifests, spec), []);
});

test('deploy k8s prints to stdout, with --plan-model for a model only the pods can read', () => {
  const result = deploy('--model', '/models/llama-3.1-8b.gguf', '--plan-model', 'llama-3.1-8b', '--image', 'tessera:test', '--tp', '2');
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /^kind: "LeaderWorkerSet"$/m);
  assert.match(result.stdout, /tessera plan: llama-3\.1-8b q8_0/);
});

test('deploy k8s refuses what cannot work, with coded errors', () => {
  codedFailure(deploy('--model', '/models/x.gguf', '--image', 'tessera:test'), 'TESSERA_ERR_INVALID_ARGUMENT', /--plan-model/);
  codedFailure(deploy('--model', 'synth:tiny', '--plan-model', 'tinyllama-1.1b', '--image', 'i'), 'TESSERA_ERR_INVALID_ARGUMENT', /tessera synth --out/);
  codedFailure(deploy('--model', '/m', '--plan-model', 'tinyllama-1.1b', '--image', 'i', '--name', 'Bad_Name'), 'TESSERA_ERR_INVALID_ARGUMENT', /--name "Bad_Name"/);
  codedFailure(deploy('--model', '/m', '--plan-model', 'tinyllama-1.1b', '--image', 'i', '--port', '7070'), 'TESSERA_ERR_INVALID_ARGUMENT', /own ports/);
  codedFailure(deploy('--model', '/m', '--plan-model', 'llama-3.1-405b', '--image', 'i', '--hardware', 'h100-sxm'), 'TESSERA_ERR_PLAN_DOES_NOT_FIT', /would fit with/);
});
