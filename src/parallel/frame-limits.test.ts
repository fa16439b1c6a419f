/**
 * Frame limits as the reader applies them: a frame announced larger than the
 * limit, faster than the rate, past the count, or of another size than the
 * waiting receiver's buffer fails the queue with its code before any payload
 * is stored, and nothing after it is read.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TesseraError } from '../core/errors.js';
import { FrameLimits } from './frame-limits.js';
import { FrameReader } from './frame-reader.js';

function header(length: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, length, true);
  return out;
}

function frame(length: number): Uint8Array {
  const out = new Uint8Array(4 + length);
  out.set(header(length));
  return out;
}

async function violation(reader: FrameReader, feed: () => void): Promise<string> {
  let seen: TesseraError | undefined;
  reader.onViolation = (error) => (seen = error);
  feed();
  assert.ok(seen, 'the reader reports the violation');
  for (;;) {
    try {
      await reader.queue.next();
    } catch (error) {
      assert.equal((error as TesseraError).code, seen.code);
      return seen.code;
    }
  }
}

describe('frame limits', () => {
  it('refuses an announced length over the limit from the header alone', async () => {
    const reader = new FrameReader();
    reader.limits = new FrameLimits({ maxFrameBytes: 1024 });
    assert.equal(await violation(reader, () => reader.chunk(header(0xffff_ffff))), 'TESSERA_ERR_FRAME_TOO_LARGE');
    // Later bytes are ignored rather than parsed as new frames.
    reader.chunk(frame(8));
  });

  it('follows a limit that changes with the connection state', async () => {
    let max = 16;
    const reader = new FrameReader();
    reader.limits = new FrameLimits({ maxFrameBytes: () => max });
    reader.chunk(frame(16));
    assert.equal((await reader.queue.next()).length, 16);
    max = 8;
    assert.equal(await violation(reader, () => reader.chunk(frame(16))), 'TESSERA_ERR_FRAME_TOO_LARGE');
  });

  it('refuses frames past the rate and past the count', async () => {
    const fast = new FrameReader();
    fast.limits = new FrameLimits({ maxFrameBytes: 64, perSecond: 1, burst: 3 });
    const flood = Array.from({ length: 10 }, () => frame(1));
    assert.equal(await violation(fast, () => fast.chunk(Buffer.concat(flood))), 'TESSERA_ERR_RATE_LIMITED');
    const once = new FrameReader();
    once.limits = new FrameLimits({ maxFrameBytes: 64, maxFrames: 1 });
    assert.equal(await violation(once, () => once.chunk(Buffer.concat([frame(2), frame(2)]))), 'TESSERA_ERR_PROTOCOL');
  });

  it('refuses a frame of another size than the buffer its receiver waits with', async () => {
    const reader = new FrameReader();
    const into = new Uint8Array(12);
    const waiting = reader.queue.nextInto(into);
    let seen = '';
    reader.onViolation = (error) => (seen = error.code);
    reader.chunk(frame(1 << 20).subarray(0, 4));
    assert.equal(seen, 'TESSERA_ERR_PROTOCOL');
    await assert.rejects(waiting, { code: 'TESSERA_ERR_PROTOCOL' });
  });
});
