/**
 * The greeting on a TypeScript mesh link (socket-transport.ts): a
 * challenge-response over the generation's mesh token with a fresh nonce
 * from each side, as the addon's data sockets greet (mesh-hello.h), so the
 * token never crosses and a recorded greeting is worthless later, even
 * within the same plan generation.
 *
 *   dialer → listener  offer   {"rank": dialer, "nonce": 32 random bytes, hex}
 *   listener → dialer  answer  {"rank": listener, "nonce": hex, "proof": listener proof}
 *   dialer → listener  proof   {"proof": dialer proof}
 *
 * A proof is HMAC-SHA256(token, "tessera mesh hello: " + direction | mesh
 * size | dialer | listener | dialer nonce | listener nonce), hex, compared in
 * constant time. The direction keeps a listener's proof from being reflected
 * back as a dialer's.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { TesseraError } from '../core/errors.js';
import type { FramedSocket } from './framed-socket.js';

const NONCE_BYTES = 32;

/** One side's proof of the token, bound to the direction, the mesh size, both ranks and both nonces. */
export function greetingProof(token: string, direction: 'dialer' | 'listener', size: number, dialer: number, listener: number, dialerNonce: string, listenerNonce: string): string {
  return createHmac('sha256', token).update(`tessera mesh hello: ${direction}|${size}|${dialer}|${listener}|${dialerNonce}|${listenerNonce}`).digest('hex');
}

/** The dialing rank's side; throws TESSERA_ERR_JOIN_REFUSED when the listener cannot prove it is rank `peer` holding the token. */
export async function dialGreeting(framed: FramedSocket, token: string, size: number, rank: number, peer: number): Promise<void> {
  const nonce = randomBytes(NONCE_BYTES).toString('hex');
  await framed.send(encode({ rank, nonce }));
  const answer = parse(await framed.receive());
  const theirs = text(answer.nonce);
  if (answer.rank !== peer || theirs.length !== 2 * NONCE_BYTES || !same(text(answer.proof), greetingProof(token, 'listener', size, rank, peer, nonce, theirs))) {
    throw new TesseraError('TESSERA_ERR_JOIN_REFUSED', `the mesh socket of rank ${peer} did not prove this generation's mesh token (not a rank of this mesh, or another generation)`);
  }
  await framed.send(encode({ proof: greetingProof(token, 'dialer', size, rank, peer, nonce, theirs) }));
}

/** The listening rank's side: the dialer's rank once it has proven the token, or why it is refused. */
export async function acceptGreeting(framed: FramedSocket, token: string, size: number, rank: number): Promise<{ rank: number } | { refused: string }> {
  const offer = parse(await framed.receive());
  const dialer = offer.rank;
  const theirs = text(offer.nonce);
  if (typeof dialer !== 'number' || !Number.isInteger(dialer) || dialer === rank || dialer < 0 || dialer >= size || theirs.length !== 2 * NONCE_BYTES) {
    return { refused: 'not a greeting of a rank of this mesh (an old fixed-proof hello, or a stranger)' };
  }
  const nonce = randomBytes(NONCE_BYTES).toString('hex');
  await framed.send(encode({ rank, nonce, proof: greetingProof(token, 'listener', size, dialer, rank, theirs, nonce) }));
  const proof = parse(await framed.receive());
  if (!same(text(proof.proof), greetingProof(token, 'dialer', size, dialer, rank, theirs, nonce))) {
    return { refused: `a wrong proof of the mesh token from a dialer claiming rank ${dialer} (a wrong token, another generation, or a replayed greeting)` };
  }
  return { rank: dialer };
}

function encode(value: object): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** A greeting frame's fields; anything that is not a JSON object reads as no fields (refused). */
function parse(bytes: Uint8Array): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through: not a greeting
  }
  return {};
}

function text(value: unknown): string {
  return typeof value === 'string' ? value.slice(0, 128) : '';
}

function same(given: string, wanted: string): boolean {
  // Byte lengths, not string lengths: a peer's field may hold characters of several UTF-8 bytes.
  const [a, b] = [Buffer.from(given), Buffer.from(wanted)];
  return a.length === b.length && timingSafeEqual(a, b);
}
