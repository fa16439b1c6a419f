import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrameReader } from './frame-reader.js';

/** Frames of awkward sizes: empty, shorter than a header, across many reads, larger than staging. */
const SIZES = [0, 1, 3, 4, 5, 70_001, 0, 2, 200_003, 7];

describe('FrameReader', () => {
  it('parses frames from chunks split at every kind of boundary, as views when whole', async () => {
    for (const seed of [1, 2, 3]) {
      const frames = SIZES.map((size, i) => patterned(size, i + seed));
      const reader = new FrameReader();
      const received = Promise.all(frames.map(() => reader.queue.next()));
      const stream = encode(frames);
      const random = lcg(seed);
      for (let at = 0; at < stream.length; ) {
        const count = Math.min(stream.length - at, 1 + (random() % 9000));
        reader.chunk(stream.slice(at, at + count));
        at += count;
      }
      assert.deepEqual(await received, frames);
    }
  });

  it('reads straight into receivers’ buffers through nextBuffer/filled, whatever the read sizes', async () => {
    for (const seed of [4, 5, 6]) {
      const frames = SIZES.map((size, i) => patterned(size, i + seed));
      const reader = new FrameReader();
      // Odd frames go to a named destination, even ones are plain receives.
      const destinations = frames.map((frame, i) => (i % 2 === 1 ? new Uint8Array(frame.length) : undefined));
      const received = Promise.all(frames.map((_, i) => (destinations[i] ? reader.queue.nextInto(destinations[i]!).then(() => destinations[i]!) : reader.queue.next())));
      readThrough(reader, encode(frames), lcg(seed));
      const results = await received;
      assert.deepEqual(results, frames);
      // A destination is filled by the reads themselves, not swapped for another buffer.
      results.forEach((result, i) => destinations[i] && assert.equal(result, destinations[i]));
    }
  });

  it('copies frames that arrived before their receiver named a destination', async () => {
    const frames = [patterned(100_000, 1), patterned(10, 2)];
    const reader = new FrameReader();
    readThrough(reader, encode(frames), lcg(7));
    const into = [new Uint8Array(100_000), new Uint8Array(10)];
    await Promise.all(into.map((buffer) => reader.queue.nextInto(buffer)));
    assert.deepEqual(into, frames);
  });

  it('gives the stream up when a frame announces another length than its waiting receiver expects, before reading its payload', async () => {
    const reader = new FrameReader();
    const wrong = reader.queue.nextInto(new Uint8Array(8));
    const next = reader.queue.next();
    reader.chunk(encode([patterned(9, 1), patterned(3, 2)]));
    await assert.rejects(wrong, { code: 'TESSERA_ERR_PROTOCOL' });
    // The peer's length cannot be trusted any more: nothing after it is read.
    await assert.rejects(next, { code: 'TESSERA_ERR_PROTOCOL' });
  });
});

/** What a socket with `onread` does: each read fills part of the buffer the reader hands out. */
function readThrough(reader: FrameReader, stream: Uint8Array, random: () => number): void {
  for (let at = 0; at < stream.length; ) {
    const buffer = reader.nextBuffer();
    const count = Math.min(buffer.length, stream.length - at, 1 + (random() % 50_000));
    buffer.set(stream.subarray(at, at + count));
    at += count;
    reader.filled(count);
  }
}

function encode(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((total, frame) => total + 4 + frame.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const frame of frames) {
    view.setUint32(at, frame.length, true);
    out.set(frame, at + 4);
    at += 4 + frame.length;
  }
  return out;
}

function patterned(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed * 7) & 0xff;
  return out;
}

function lcg(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 1103515245 + 12345) >>> 0) >>> 8;
}
