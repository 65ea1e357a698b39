/**
 * Reads newline-delimited JSON from a byte stream as it arrives, one parsed object per line. Pure
 * web-platform code, shared by the server's backends, the tests, the benchmarks and the browser app.
 */
export async function* readNdjson<T = unknown>(body: ReadableStream<Uint8Array>): AsyncGenerator<T> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) yield JSON.parse(line) as T;
      }
    }
    if (buffer.trim()) yield JSON.parse(buffer) as T;
  } finally {
    // A consumer that stops early (break, error) cancels the body, which closes the connection.
    await reader.cancel().catch(() => undefined);
  }
}
