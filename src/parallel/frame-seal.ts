/**
 * Sealed frames of a TypeScript mesh link (socket-transport.ts), after its
 * greeting (mesh-greeting.ts): each direction has its own AES-256-GCM key,
 * derived with HKDF-SHA256 from the mesh token, salted with both greeting
 * nonces, under labels distinct from the addon's (sealed-link.h). A sealed
 * frame is the usual 4-byte little-endian length header, then the payload's
 * ciphertext and its 16-byte tag; the header is the AAD, and the 12-byte
 * nonce is the frame's counter in its direction (never reused: a fresh
 * greeting gives fresh keys). Whether a link seals follows TESSERA_SEAL_DATA,
 * as the addon's data sockets do: tcp by default, unix with `=1`, tcp clear
 * with `=0`.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { TesseraError } from '../core/errors.js';

/** Bytes a sealed frame adds to its payload (the GCM tag). */
export const SEAL_OVERHEAD = 16;

/** Whether links of `kind` seal their frames under TESSERA_SEAL_DATA (the addon's rule). */
export function sealsFrames(kind: 'tcp' | 'unix', setting = process.env.TESSERA_SEAL_DATA): boolean {
  return kind === 'tcp' ? setting !== '0' : setting === '1';
}

/** The two keys of a greeted link: dialer → listener and listener → dialer. */
export function frameKeys(token: string, size: number, dialer: number, listener: number, dialerNonce: string, listenerNonce: string): { fromDialer: Buffer; fromListener: Buffer } {
  const salt = Buffer.from(dialerNonce + listenerNonce, 'hex');
  const key = (direction: string) => Buffer.from(hkdfSync('sha256', token, salt, `tessera ts mesh frames: ${direction}|${size}|${dialer}|${listener}`, 32));
  return { fromDialer: key('dialer to listener'), fromListener: key('listener to dialer') };
}

/** A 12-byte GCM nonce: 4 zero bytes, then the frame's counter (little-endian). */
function counterNonce(counter: bigint): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(counter, 4);
  return nonce;
}

/** The sending half: seals each payload under the next counter. */
export class FrameSealer {
  private counter = 0n;

  constructor(private readonly key: Buffer) {}

  /** [ciphertext, tag] of `payload`, bound to `header` (the frame's length). */
  seal(header: Uint8Array, payload: Uint8Array): [Buffer, Buffer] {
    const cipher = createCipheriv('aes-256-gcm', this.key, counterNonce(this.counter++));
    cipher.setAAD(header);
    const body = Buffer.concat([cipher.update(payload), cipher.final()]);
    return [body, cipher.getAuthTag()];
  }
}

/** The receiving half: opens each frame under the next counter, or throws TESSERA_ERR_PROTOCOL. */
export class FrameOpener {
  private counter = 0n;

  constructor(private readonly key: Buffer) {}

  /** The payload of a sealed frame (`sealed`: ciphertext then tag) whose length header is `length`. */
  open(length: number, sealed: Uint8Array): Uint8Array {
    if (sealed.byteLength < SEAL_OVERHEAD) throw new TesseraError('TESSERA_ERR_PROTOCOL', `a sealed frame of ${sealed.byteLength} bytes is shorter than its tag`);
    const header = Buffer.alloc(4);
    header.writeUInt32LE(length, 0);
    const decipher = createDecipheriv('aes-256-gcm', this.key, counterNonce(this.counter++));
    decipher.setAAD(header);
    const cut = sealed.byteLength - SEAL_OVERHEAD;
    decipher.setAuthTag(sealed.subarray(cut));
    try {
      const body = decipher.update(sealed.subarray(0, cut));
      const tail = decipher.final();
      const payload = tail.length === 0 ? body : Buffer.concat([body, tail]);
      // A plain view, as clear links deliver (receivers compare and keep Uint8Arrays).
      return new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    } catch {
      throw new TesseraError('TESSERA_ERR_PROTOCOL', 'a sealed frame failed authentication (tampered in transit, or the peer seals under other keys)');
    }
  }
}
