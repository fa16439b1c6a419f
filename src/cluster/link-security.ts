/**
 * The coordinator↔worker links run inside TLS keyed by the join token
 * (TLS 1.2 ECDHE-PSK with ChaCha20-Poly1305): each side proves it holds the
 * token without sending it, the link is encrypted, and the ephemeral
 * Diffie-Hellman makes every handshake fresh, so recorded handshake bytes
 * replayed later fail, and a recorded session stays sealed even if the token
 * leaks afterwards. The key is derived from the token (HKDF-SHA256), so a
 * token of any length gives a full-size key. A weak token could still be
 * guessed offline by someone who makes a worker connect to them: tokens are
 * random by default; choose long ones.
 */
import { hkdfSync } from 'node:crypto';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';

/** The PSK identity names the key's derivation, so a future scheme is refused rather than misread. */
const IDENTITY = 'tessera-join-v2';
/** The one suite: AEAD and forward secrecy (OpenSSL offers PSK only up to TLS 1.2 through Node's callbacks). */
const CIPHERS = 'ECDHE-PSK-CHACHA20-POLY1305';
/** A peer that opens a connection and stalls its handshake is cut off after this. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** The key both sides derive from the join token. */
export function joinKey(token: string): Buffer {
  return Buffer.from(hkdfSync('sha256', token, 'tessera cluster links', IDENTITY, 32));
}

/** A TLS server that admits only peers holding `key`; `onRefused` hears every failed handshake. */
export function secureServer(key: Buffer, onConnection: (socket: TLSSocket) => void, onRefused: (from: string, why: string) => void): Server {
  const server = createServer({
    pskCallback: (_socket, identity) => (identity === IDENTITY ? key : null),
    ciphers: CIPHERS,
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.setNoDelay(true);
    onConnection(socket);
  });
  server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    onRefused(socket.remoteAddress ?? 'unknown address', error.code ?? error.message);
    socket.destroy();
  });
  return server;
}

/** A TLS connection to a coordinator holding `key`; rejects when the handshake fails (a wrong token on either side). */
export function dialSecure(host: string, port: number, key: Buffer): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port,
      pskCallback: () => ({ psk: key, identity: IDENTITY }),
      ciphers: CIPHERS,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      // PSK suites carry no certificate: the key is what identifies the coordinator.
      checkServerIdentity: () => undefined,
    });
    socket.setNoDelay(true);
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Whether a dial failed in the TLS handshake (a wrong token), rather than in reaching the address. */
export function isHandshakeFailure(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return code.startsWith('ERR_SSL') || code === 'ECONNRESET' || code === 'EPIPE';
}
