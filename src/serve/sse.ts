/** Server-sent events as OpenAI streams them: `data: {json}` events, then `data: [DONE]`. */
import type { ServerResponse } from 'node:http';

export class SseStream {
  constructor(private readonly response: ServerResponse) {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    response.flushHeaders();
  }

  get open(): boolean {
    return !this.response.destroyed && !this.response.writableEnded;
  }

  send(event: unknown): void {
    if (this.open) this.response.write(`data: ${JSON.stringify(event)}\n\n`);
  }

  end(): void {
    if (!this.open) return;
    this.response.write('data: [DONE]\n\n');
    this.response.end();
  }
}
