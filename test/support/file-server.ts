import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { listenOnLoopback } from './listen.js';

export interface FileServer {
  url: string;
  /** The path and query of every request, in arrival order. */
  requests: string[];
  close(): Promise<void>;
}

export interface FileServerOptions {
  /** Bytes per chunk and the pause between chunks: slow enough to watch progress. */
  chunkSize?: number;
  delayMs?: number;
  /** Cut the connection after this many bytes, having promised the whole file (a dropped download). */
  dropAfter?: number;
  /** The loopback address to listen on (127.0.0.1 by default). */
  host?: string;
  /** Path → Location: answered with a 302 there, as a host moving a file to a CDN does. */
  redirects?: Record<string, string>;
  /** Announce the file's sha256 in `X-Linked-Etag`, as Hugging Face does for large files. */
  linkedEtag?: boolean;
}

/**
 * A plain HTTP file server on loopback standing in for a model host (Hugging Face, a CDN): it serves
 * one file with a Content-Length, optionally slowly, optionally dropping the connection mid-file,
 * and redirects where told to.
 */
export async function serveFile(filePath: string, options: FileServerOptions = {}): Promise<FileServer> {
  const { chunkSize = 64 * 1024, delayMs = 0, dropAfter, redirects = {}, linkedEtag = false } = options;
  const requests: string[] = [];
  const sha256 = crypto.createHash('sha256').update(fs.readFileSync(filePath)).digest('hex');
  const server = http.createServer(async (request, response) => {
    requests.push(request.url ?? '/');
    const pathname = new URL(request.url ?? '/', 'http://x').pathname;
    const location = redirects[pathname];
    if (location !== undefined) {
      response.writeHead(302, { location }).end();
      return;
    }
    if (!pathname.endsWith('.gguf')) {
      response.writeHead(404).end('not found');
      return;
    }
    const data = fs.readFileSync(filePath);
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length, ...(linkedEtag ? { 'x-linked-etag': `"${sha256}"` } : {}) });
    if (request.method === 'HEAD') return void response.end();
    for (let offset = 0; offset < data.length; offset += chunkSize) {
      if (dropAfter !== undefined && offset >= dropAfter) {
        request.socket.destroy();
        return;
      }
      response.write(data.subarray(offset, offset + chunkSize));
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (response.destroyed) return; // the client went away (a cancelled pull)
    }
    response.end();
  });
  return { ...(await listenOnLoopback(server, options.host)), requests };
}
