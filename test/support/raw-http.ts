import http from 'node:http';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface RawRequest {
  method: string;
  /** The request target exactly as it goes on the wire: `/%61pi/ps`, `//api/ps`, `http://x/api/ps`... */
  target: string;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * One request whose target is sent as given, unlike fetch, which normalises the path (`..`,
 * percent-encoding of some characters) and cannot send an absolute-form target. A streamed answer
 * (NDJSON, SSE) is cut after its headers: only its status matters here.
 */
export function rawRequest(base: string, request: RawRequest, agent?: http.Agent): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...request.headers };
    if (request.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = String(Buffer.byteLength(request.body));
    }
    const req = http.request({ host: hostname, port, method: request.method, path: request.target, headers, agent }, (res) => {
      const type = String(res.headers['content-type'] ?? '');
      if (type.includes('ndjson') || type.includes('event-stream')) {
        res.destroy();
        return resolve({ status: res.statusCode!, headers: res.headers, body: '' });
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(request.body);
  });
}

/** Runs `work` over `items` with at most `limit` at once, keeping the results in order. */
export async function pooled<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
