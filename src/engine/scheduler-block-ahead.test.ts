/**
 * The scheduler's blockAhead (for runners that compute the next decode step
 * ahead, src/cluster/run-ahead.ts): a sequence's decode step also holds the
 * block of the token after the one it writes when a block is free, and never
 * takes one another sequence's step needs; without the option it holds only
 * what the step writes.
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

/** A sequence of a prompt of `length` tokens. */
function sequenceOf(id: number, length: number): Sequence {
  return new Sequence(id, { promptIds: Array.from({ length }, (_, i) => id * 100 + i), maxTokens: 8, sampling: samplingParams({}), stop: [], ignoreEos: true }, tokenizer);
}

/** As the core does after a step: the chunk's tokens computed, and a sampled token appended when it reached the end. */
function computed(chunks: ReturnType<Scheduler['schedule']>): void {
  for (const { sequence, count } of chunks) {
    sequence.numComputed += count;
    if (sequence.pendingCount === 0) sequence.tokens.push(7);
  }
}

/** A prompt of `promptLength` tokens prefilled, then one decode step (which writes position promptLength). */
function blocksAfterDecode(blockAhead: number, numBlocks: number, promptLength: number): { blocks: number; free: number; decoded: boolean } {
  const manager = new BlockManager(config, numBlocks, 4);
  const scheduler = new Scheduler(manager, { maxNumSeqs: 4, maxBatchTokens: 64, blockAhead });
  const sequence = sequenceOf(1, promptLength);
  scheduler.add(sequence);
  computed(scheduler.schedule());
  const chunks = scheduler.schedule();
  computed(chunks);
  return { blocks: sequence.blocks.length, free: manager.freeCount, decoded: chunks.length === 1 && chunks[0].count === 1 };
}

test('blockAhead reserves the next token\'s block with a decode step, only from free blocks', () => {
  // The decode step writes position 7 (the second block of 4); the token after, position 8, needs a third.
  assert.deepEqual(blocksAfterDecode(0, 4, 7), { blocks: 2, free: 2, decoded: true });
  assert.deepEqual(blocksAfterDecode(1, 4, 7), { blocks: 3, free: 1, decoded: true });
  // No free block for it: the step still runs, without it.
  assert.deepEqual(blocksAfterDecode(1, 2, 7), { blocks: 2, free: 0, decoded: true });
  // Inside a block the next token needs nothing new.
  assert.deepEqual(blocksAfterDecode(1, 4, 5), { blocks: 2, free: 2, decoded: true });
});

test('blockAhead of a burst reserves the blocks of every later step, or none when the free blocks do not cover them', () => {
  // Position 7 and seven more (8..14): blocks 2 and 3 of 4 tokens after the two the step holds.
  assert.deepEqual(blocksAfterDecode(7, 6, 7), { blocks: 4, free: 2, decoded: true });
  // Position 5 and two more (6, 7): still the second block.
  assert.deepEqual(blocksAfterDecode(2, 6, 5), { blocks: 2, free: 4, decoded: true });
  // One block free where the burst needs two: the step runs with what it writes.
  assert.deepEqual(blocksAfterDecode(7, 3, 7), { blocks: 2, free: 1, decoded: true });
});

test('blockAhead never preempts: with one block left, the second sequence\'s decode gets it, not the first\'s look-ahead', () => {
  const manager = new BlockManager(config, 5, 4);
  const scheduler = new Scheduler(manager, { maxNumSeqs: 4, maxBatchTokens: 64, blockAhead: 1 });
  const first = sequenceOf(1, 7);
  const second = sequenceOf(2, 8);
  scheduler.add(first);
  scheduler.add(second);
  computed(scheduler.schedule());
  assert.equal(manager.freeCount, 1);
  // first writes position 7 (its two blocks) and would like a third for position 8; second writes position 8 and needs its third.
  const chunks = scheduler.schedule();
  assert.deepEqual(chunks.map((chunk) => [chunk.sequence.id, chunk.count]), [[1, 1], [2, 1]], 'both decode');
  assert.deepEqual(scheduler.running, [first, second], 'nobody was preempted');
  assert.equal(second.blocks.length, 3);
  assert.equal(first.blocks.length, 2, 'the look-ahead gave way');
});
