/**
 * Test helper: a middleman on a TCP link. Each connection it accepts is
 * relayed to a fresh connection to `target`; the taps of that connection
 * (made per connection, so they may keep per-stream state) see every chunk on
 * its way and may record it or alter it in place. Either side closing closes
 * the other; errors end the pair quietly.
 */
import { connect, createServer, type Server } from 'node:net';

export interface RelayTaps {
  /** A chunk the dialer sent, before it goes on to the target. */
  fromDialer?(chunk: Buffer): void;
  /** A chunk the target sent, before it goes back to the dialer. */
  fromTarget?(chunk: Buffer): void;
}

export interface TcpRelay {
  server: Server;
  port: number;
}

export async function tcpRelay(target: { host: string; port: number }, tapsOf: () => RelayTaps = () => ({})): Promise<TcpRelay> {
  const server = createServer((client) => {
    const upstream = connect(target);
    const taps = tapsOf();
    client.on('data', (chunk: Buffer) => {
      taps.fromDialer?.(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      taps.fromTarget?.(chunk);
      client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}
