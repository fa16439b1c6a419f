/**
 * The scheduler's shortestPromptFirst (a prefill replica's order): prompts
 * by tokens left, waiting ones included, and a step that finishes a prompt
 * takes no partial chunk of a longer one; decode rows go first and never
 * hold a long prompt back. Without the option, the order of arrival.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ModelConfig } from '../core/model-config.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { BlockManager } from './block-manager.js';
import { samplingParams } from './sampler.js';
import { Scheduler } from './scheduler.js';
import { Sequence } from './sequence.js';

const config = { numLayers: 1, numKvHeads: 1, headDim: 2 } as ModelConfig;
const tokenizer = { stripsLeadingSpace: false } as Tokenizer;

function sequenceOf(id: number, length: number): Sequence {
  return new Sequence(id, { promptIds: Array.from({ length }, (_, i) => id * 1000 + i), maxTokens: 8, sampling: samplingParams({}), stop: [], ignoreEos: true }, tokenizer);
}

/** As the core does after a step: the chunk's tokens computed, and a sampled token appended when it reached the end. */
function step(scheduler: Scheduler): [number, number][] {
  const chunks = scheduler.schedule();
  for (const { sequence, count } of chunks) {
    sequence.numComputed += count;
    if (sequence.pendingCount === 0) sequence.tokens.push(7);
  }
  return chunks.map(({ sequence, count }) => [sequence.id, count]);
}

function schedulerOf(shortestPromptFirst: boolean): Scheduler {
  return new Scheduler(new BlockManager(config, 256, 16), { maxNumSeqs: 8, maxBatchTokens: 512, shortestPromptFirst });
}

test('a short prompt that arrives while a long one prefills gets a step of its own next; in arrival order it waits for the long one\'s chunks', () => {
  for (const shortest of [true, false]) {
    const scheduler = schedulerOf(shortest);
    scheduler.add(sequenceOf(1, 1500));
    assert.deepEqual(step(scheduler), [[1, 512]]);
    scheduler.add(sequenceOf(2, 32));
    scheduler.add(sequenceOf(3, 40));
    const next = step(scheduler);
    if (shortest) {
      // Both short prompts finish in this step; the long one's partial chunk waits for the next.
      assert.deepEqual(next, [[2, 32], [3, 40]]);
      assert.deepEqual(step(scheduler), [[2, 1], [3, 1], [1, 510]]);
    } else {
      assert.deepEqual(next, [[1, 512]]);
      assert.deepEqual(step(scheduler), [[1, 476], [2, 32], [3, 4]]);
    }
  }
});

test('shortest first: waiting prompts go by tokens left, and a long prompt finishing within the budget rides along', () => {
  const scheduler = schedulerOf(true);
  scheduler.add(sequenceOf(1, 300));
  scheduler.add(sequenceOf(2, 100));
  scheduler.add(sequenceOf(3, 50));
  // 50 + 100 + 300 fit in 512: every prompt finishes, nothing is cut.
  assert.deepEqual(step(scheduler), [[3, 50], [2, 100], [1, 300]]);
  scheduler.add(sequenceOf(4, 700));
  scheduler.add(sequenceOf(5, 600));
  // The three decode rows first, then the shorter prompt's chunk; nothing finishes a prompt, so both long ones advance.
  assert.deepEqual(step(scheduler), [[3, 1], [2, 1], [1, 1], [5, 509]]);
});
