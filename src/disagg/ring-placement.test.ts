/** Where a KV ring's writer puts payloads: aligned, wrapping, full, and back to the start once the reader has all. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RingPlacement } from './ring-placement.js';

/** A 1,000-byte ring with `written` bytes placed so far, none skipped. */
function ringAt(written: number): RingPlacement {
  const ring = new RingPlacement(1000);
  ring.written = written;
  return ring;
}

test('payloads follow one another, 8-byte aligned, while the reader is behind', () => {
  const ring = ringAt(0);
  assert.deepEqual(ring.place(0, 100), { offset: 0, end: 104 });
  assert.deepEqual(ring.place(0, 200), { offset: 104, end: 304 });
  assert.deepEqual(ring.place(104, 8), { offset: 304, end: 312 });
  assert.equal(ring.written, 312);
});

test('a payload that would cross the end skips it, and waits while the bytes it would overwrite are unread', () => {
  assert.deepEqual(ringAt(800).place(500, 200), { offset: 800, end: 1000 }); // fits exactly before the end
  const wrapped = ringAt(800);
  assert.deepEqual(wrapped.place(500, 208), { offset: 0, end: 1208 }); // 208 bytes at 0 overwrite only read bytes
  assert.equal(wrapped.written, 1208);
  const full = ringAt(800);
  assert.equal(full.place(100, 208), undefined); // 700 unread + 200 skipped + 208 > 1000
  assert.equal(full.written, 800);
  assert.equal(ringAt(1200).place(400, 208), undefined); // 800 unread bytes: 208 more do not fit
  assert.equal(ringAt(0).place(0, 1001), undefined); // never more than the ring
});

test('once the reader has everything, the next payload starts again at the beginning', () => {
  const ring = ringAt(304);
  assert.deepEqual(ring.place(304, 100), { offset: 0, end: 1104 });
  assert.equal(ring.written, 1104);
  // The skipped end holds nothing to read: with the first payload unread, the rest of the ring is still free.
  assert.deepEqual(ring.place(304, 800), { offset: 104, end: 1904 });
  assert.equal(ring.place(304, 100), undefined); // 904 unread + 100 > 1000
  // Larger than the end that is left, or than the skipped part: the whole ring is free.
  const large = ringAt(2950);
  assert.deepEqual(large.place(2950, 992), { offset: 0, end: 3992 });
  assert.equal(large.written, 3992);
});

test('a wrap skip counts as unread until the reader has everything before it', () => {
  const ring = ringAt(900);
  assert.deepEqual(ring.place(500, 200), { offset: 0, end: 1200 }); // skips 900..1000, writes 1000..1200
  assert.deepEqual(ring.place(500, 296), { offset: 200, end: 1496 }); // 200..496 is free: unread 500..900 + skipped 900..1000 + 1000..1200 + 296 = 1000
  assert.equal(ring.place(500, 8), undefined); // and then the ring is full
  assert.deepEqual(ring.place(900, 496), { offset: 496, end: 1992 }); // the reader has 500..900, so the skipped stretch is free too: 496 + 496 < 1000
});
