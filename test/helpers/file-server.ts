import fs from 'node:fs';
import http from 'node:http';
import { listenOnLoopback } from './listen.js';

export interface FileServer {
  url: string;
  close(): Promise<void>;
}

export interface FileServerOptions {
  /** Bytes per chunk and the pause between chunks: slow enough to watch progress. */
  chunkSize?: number;
  delayMs?: number;
  /** Cut the connection after this many bytes, having promised the whole file (a dropped download). */
  dropAfter?: number;
}

/**
 * A plain HTTP file server on loopback standing in for a model host (Hugging Face, a CDN): it serves
 * one file with a Content-Length, optionally slowly, optionally dropping the connection mid-file.
 */
export async function serveFile(filePath: string, options: FileServerOptions = {}): Promise<FileServer> {
  const { chunkSize = 64 * 1024, delayMs = 0, dropAfter } = options;
  const server = http.createServer(async (request, response) => {
    if (!new URL(request.url ?? '/', 'http://x').pathname.endsWith('.gguf')) {
      response.writeHead(404).end('not found');
      return;
    }
    const data = fs.readFileSync(filePath);
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length });
    for (let offset = 0; offset < data.length; offset += chunkSize) {
      if (dropAfter !== undefined && offset >= dropAfter) {
        request.socket.destroy();
        return;
      }
      response.write(data.subarray(offset, offset + chunkSize));
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
    response.end();
  });
  return listenOnLoopback(server);
}
