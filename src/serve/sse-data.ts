/**
 * The `data:` payloads of a server-sent-events body, parsed as JSON, in
 * order, up to `data: [DONE]` (which is not yielded): what the benchmark
 * clients read from a streamed completion.
 */
export async function* sseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<unknown> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const bytes of body) {
    buffered += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      yield JSON.parse(event.slice(6));
    }
  }
}
