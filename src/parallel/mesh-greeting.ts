/**
 * The greeting on a TypeScript mesh link (socket-transport.ts): a
 * challenge-response over the generation's mesh token with a fresh nonce
 * from each side, as the addon's data sockets greet (mesh-hello.h), so the
 * token never crosses and a recorded greeting is worthless later, even
 * within the same plan generation.
 *
 *   dialer → listener  offer   {"rank": dialer, "nonce": 32 random bytes, hex, "sealed": bool}
 *   listener → dialer  answer  {"rank": listener, "nonce": hex, "proof": listener proof, "sealed": bool}
 *                      or      {"refused": why}   (the ranks disagree about sealing)
 *   dialer → listener  proof   {"proof": dialer proof}
 *
 * A proof is HMAC-SHA256(token, "tessera mesh hello: " + direction | mesh
 * size | dialer | listener | dialer nonce | listener nonce), hex, compared in
 * constant time. The direction keeps a listener's proof from being reflected
 * back as a dialer's. With `sealed` (both sides must agree: frame-seal.ts,
 * TESSERA_SEAL_DATA), every frame after the proof is sealed under keys
 * derived from the token and both nonces.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { TesseraError } from '../core/errors.js';
import type { FramedSocket } from './framed-socket.js';
import { frameKeys } from './frame-seal.js';

const NONCE_BYTES = 32;

/** One side's proof of the token, bound to the direction, the mesh size, both ranks and both nonces. */
export function greetingProof(token: string, direction: 'dialer' | 'listener', size: number, dialer: number, listener: number, dialerNonce: string, listenerNonce: string): string {
  return createHmac('sha256', token).update(`tessera mesh hello: ${direction}|${size}|${dialer}|${listener}|${dialerNonce}|${listenerNonce}`).digest('hex');
}

/** The dialing rank's side; throws TESSERA_ERR_JOIN_REFUSED when the listener cannot prove it is rank `peer` holding the token. */
export async function dialGreeting(framed: FramedSocket, token: string, size: number, rank: number, peer: number, sealed = false): Promise<void> {
  const nonce = randomBytes(NONCE_BYTES).toString('hex');
  await framed.send(encode({ rank, nonce, sealed }));
  const answer = parse(await framed.receive());
  if (typeof answer.refused === 'string') throw new TesseraError('TESSERA_ERR_JOIN_REFUSED', `rank ${peer} refused the mesh connection of rank ${rank}: ${answer.refused.slice(0, 200)}`);
  if ((answer.sealed === true) !== sealed) throw new TesseraError('TESSERA_ERR_JOIN_REFUSED', sealingMismatch(rank, sealed, peer, answer.sealed === true));
  const theirs = text(answer.nonce);
  if (answer.rank !== peer || theirs.length !== 2 * NONCE_BYTES || !same(text(answer.proof), greetingProof(token, 'listener', size, rank, peer, nonce, theirs))) {
    throw new TesseraError('TESSERA_ERR_JOIN_REFUSED', `the mesh socket of rank ${peer} did not prove this generation's mesh token (not a rank of this mesh, or another generation)`);
  }
  const keys = sealed ? frameKeys(token, size, rank, peer, nonce, theirs) : undefined;
  // Sealed reads before the proof leaves: the listener's first sealed frame may follow it at once.
  if (keys) framed.seal({ receiveKey: keys.fromListener });
  await framed.send(encode({ proof: greetingProof(token, 'dialer', size, rank, peer, nonce, theirs) }));
  if (keys) framed.seal({ sendKey: keys.fromDialer });
}

/** The listening rank's side: the dialer's rank once it has proven the token, or why it is refused. */
export async function acceptGreeting(framed: FramedSocket, token: string, size: number, rank: number, sealed = false): Promise<{ rank: number } | { refused: string }> {
  const offer = parse(await framed.receive());
  const dialer = offer.rank;
  const theirs = text(offer.nonce);
  if (typeof dialer !== 'number' || !Number.isInteger(dialer) || dialer === rank || dialer < 0 || dialer >= size || theirs.length !== 2 * NONCE_BYTES) {
    return { refused: 'not a greeting of a rank of this mesh (an old fixed-proof hello, or a stranger)' };
  }
  if ((offer.sealed === true) !== sealed) {
    const refused = sealingMismatch(rank, sealed, dialer, offer.sealed === true);
    await framed.send(encode({ refused }));
    return { refused };
  }
  const nonce = randomBytes(NONCE_BYTES).toString('hex');
  await framed.send(encode({ rank, nonce, sealed, proof: greetingProof(token, 'listener', size, dialer, rank, theirs, nonce) }));
  const proof = parse(await framed.receive());
  if (!same(text(proof.proof), greetingProof(token, 'dialer', size, dialer, rank, theirs, nonce))) {
    return { refused: `a wrong proof of the mesh token from a dialer claiming rank ${dialer} (a wrong token, another generation, or a replayed greeting)` };
  }
  if (sealed) {
    const keys = frameKeys(token, size, dialer, rank, theirs, nonce);
    framed.seal({ sendKey: keys.fromListener, receiveKey: keys.fromDialer });
  }
  return { rank: dialer };
}

function sealingMismatch(rank: number, sealed: boolean, peer: number, peerSealed: boolean): string {
  const says = (yes: boolean) => (yes ? 'sealed' : 'clear');
  return `rank ${rank}'s mesh frames are ${says(sealed)} but rank ${peer}'s are ${says(peerSealed)}; set TESSERA_SEAL_DATA alike on every rank`;
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
