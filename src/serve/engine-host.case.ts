/**
 * The EngineHost conformance suite: every host (the worker thread on one
 * process, the same on a mesh, a replica over HTTP, a router over replicas)
 * runs it against stories260K, whose greedy output from BOS is a golden
 * fixture. Ids, text, logprobs, the resume form, cancellation, coded errors
 * and stats behave the same whatever stands behind the interface.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { samplingParams } from '../engine/sampler.js';
import type { SequenceRequest } from '../engine/sequence.js';
import { fixture, SHARED_MODELS } from '../testing/fixtures.js';
import { isRetryableCode } from './api-error.js';
import type { EngineHost, SequenceUpdate } from './engine-host.js';

export interface HostFixture {
  host: EngineHost;
  close(): Promise<void>;
}

/** Starts the host under test on stories260K (`model`, tokenizer beside it). */
export type MakeHost = (model: string) => Promise<HostFixture>;

export interface Finished {
  outputs: SequenceUpdate[];
  ids: number[];
  text: string;
}

/** Submits one sequence and waits for its last output; rejects with the host's error. */
export function runSequence(host: EngineHost, request: SequenceRequest): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const outputs: SequenceUpdate[] = [];
    host.submit(request, {
      onOutput: (output) => {
        outputs.push(output);
        if (output.finish) resolve({ outputs, ids: outputs.flatMap((o) => o.ids), text: outputs.map((o) => o.text).join('') });
      },
      onError: reject,
    });
  });
}

export function greedy(promptIds: number[], maxTokens: number, extra: Partial<SequenceRequest> = {}): SequenceRequest {
  return { promptIds, maxTokens, sampling: samplingParams({ temperature: 0 }), stop: [], ignoreEos: true, ...extra };
}

export function runEngineHostSuite(name: string, makeHost: MakeHost): void {
  describe(`EngineHost conformance: ${name}`, () => {
    let fixtureOf: HostFixture | undefined;
    let golden: number[] = [];
    const host = (): EngineHost => fixtureOf!.host;

    before(async () => {
      const model = join(SHARED_MODELS, 'stories260K.bin');
      const goldenPath = join(SHARED_MODELS, 'stories260K.greedy.json');
      if (!existsSync(model) || !existsSync(goldenPath)) return;
      golden = (JSON.parse(readFileSync(goldenPath, 'utf8')) as { generated_ids: number[] }).generated_ids;
      fixtureOf = await makeHost(model);
    });
    /** False (the test skipped, or failed under TESSERA_REQUIRE_FIXTURES=1) without the fixture. */
    const ready = (t: TestContext): boolean => fixture(t, 'stories260K.bin') !== undefined && fixtureOf !== undefined;

    after(async () => fixtureOf?.close());

    test('limits and health say the host is ready', (t) => {
      if (!ready(t)) return;
      assert.ok(host().limits.blockSize > 0 && host().limits.maxModelLen >= 256, JSON.stringify(host().limits));
      assert.deepEqual(host().health(), { ready: true, status: 'ready' });
    });

    test('a greedy sequence from BOS gives the golden ids; stats follow the steps', async (t) => {
      if (!ready(t)) return;
      let stats = 0;
      host().onStats(() => stats++);
      const run = await runSequence(host(), greedy([1], 40));
      assert.deepEqual(run.ids, golden.slice(0, 40));
      assert.equal(run.outputs.at(-1)?.finish, 'length');
      assert.equal(run.outputs[0].promptTokens, 1);
      assert.equal(host().activeSequences, 0);
      await until(() => stats > 0);
      assert.ok(host().stats().prefixQueriedTokens >= 1);
    });

    test('the resume form continues a cut run with the same ids, text and logprobs', async (t) => {
      if (!ready(t)) return;
      const request: SequenceRequest = { ...greedy([1, 403, 407], 30), sampling: samplingParams({ temperature: 0.8, seed: 99, frequencyPenalty: 0.5 }), logprobs: 2, stop: ['zzz never'] };
      const whole = await runSequence(host(), request);
      for (const cut of [1, 12, 29]) {
        const delivered = cutOutputs(whole.outputs, cut);
        const rest = await runSequence(host(), { ...request, resumeIds: whole.ids.slice(0, cut) });
        assert.deepEqual([...delivered.flatMap((o) => o.ids), ...rest.ids], whole.ids, `ids, cut at ${cut}`);
        assert.equal(delivered.map((o) => o.text).join('') + rest.text, whole.text, `text, cut at ${cut}`);
        assert.deepEqual(rest.outputs.flatMap((o) => o.logprobs ?? []), whole.outputs.flatMap((o) => o.logprobs ?? []).slice(cut), `logprobs, cut at ${cut}`);
      }
    });

    test('concurrent seeded sequences each give what they give alone; ids are unique', async (t) => {
      if (!ready(t)) return;
      const requests = [7, 8, 9].map((seed) => ({ ...greedy([1, 261], 25), sampling: samplingParams({ temperature: 1, topP: 0.9, seed }) }));
      const together = await Promise.all(requests.map((request) => runSequence(host(), request)));
      for (let i = 0; i < requests.length; i++) assert.deepEqual(together[i].ids, (await runSequence(host(), requests[i])).ids, `sequence ${i}`);
      const listener = { onOutput: () => undefined, onError: () => undefined };
      const a = host().submit(greedy([1], 2), listener);
      const b = host().submit(greedy([1], 2), listener);
      assert.notEqual(a, b);
      await until(() => host().activeSequences === 0);
    });

    test('cancel stops the outputs at once', async (t) => {
      if (!ready(t)) return;
      let after = 0;
      let cancelled = false;
      await new Promise<void>((resolve) => {
        const id = host().submit(greedy([1], 250), {
          onOutput: () => {
            if (cancelled) after++;
            else {
              cancelled = true;
              host().cancel(id);
              resolve();
            }
          },
          onError: () => assert.fail('a cancelled sequence reports no error'),
        });
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(after, 0);
      assert.equal(host().activeSequences, 0);
    });

    test('a request the engine refuses fails with a coded, non-retryable error', async (t) => {
      if (!ready(t)) return;
      const vocab = 512;
      await assert.rejects(runSequence(host(), greedy([1, vocab + 5], 4)), (error: { code?: string }) => error.code === 'TESSERA_ERR_INVALID_ARGUMENT' && !isRetryableCode(error.code));
      await assert.rejects(runSequence(host(), greedy([1], 4, { resumeIds: [5, 6, 7, 8] })), { code: 'TESSERA_ERR_INVALID_ARGUMENT' });
    });
  });
}

/** The outputs up to the one that delivered the `count`-th id. */
function cutOutputs(outputs: readonly SequenceUpdate[], count: number): SequenceUpdate[] {
  let delivered = 0;
  const cut: SequenceUpdate[] = [];
  for (const output of outputs) {
    if (delivered === count) break;
    cut.push(output);
    delivered += output.ids.length;
  }
  return cut;
}

export async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
