import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { listenOnLoopback } from './listen.js';

/** How one name behaves: like a good registry by default, or broken in one of the ways real ones break. */
interface RegistryModel {
  /** The manifest advertises a digest the served bytes do not have. */
  wrongDigest?: boolean;
  /** The CDN cuts the connection after this many bytes, having promised the whole blob. */
  dropAfter?: number;
  /** Pause between chunks for this name (overrides the server's). */
  delayMs?: number;
}

export interface RegistryServerOptions {
  /** `namespace/model:tag` → behaviour; every other name is unknown (404, as the real registry answers). */
  models: Record<string, RegistryModel>;
  chunkSize?: number;
  delayMs?: number;
}

export interface RegistryServer {
  url: string;
  /** The real sha256 of the served file, `sha256:<hex>`. */
  digest: string;
  size: number;
  /** Every request as it arrived: method, path and Accept header. */
  requests: { method: string; path: string; accept?: string }[];
  close(): Promise<void>;
}

const MANIFEST_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';

function sha256(data: Buffer | string): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

/**
 * A stand-in for registry.ollama.ai on loopback, speaking its wire format: `GET /v2/<ns>/<model>/
 * manifests/<tag>` answers an Ollama manifest (config, model and template layers) whose model layer is
 * `filePath` with its real digest, and `GET /v2/<ns>/<model>/blobs/<digest>` answers 307 to a second
 * path (the CDN) that serves the bytes, optionally slowly or dropping the connection mid-file.
 */
export async function serveRegistry(filePath: string, options: RegistryServerOptions): Promise<RegistryServer> {
  const { chunkSize = 64 * 1024, delayMs = 0 } = options;
  const data = fs.readFileSync(filePath);
  const digest = sha256(data);
  const requests: RegistryServer['requests'] = [];

  const manifestFor = (name: string, model: RegistryModel) => {
    const config = JSON.stringify({ model_format: 'gguf', model_family: 'llama', file_type: 'F32' });
    const template = '{{ .Prompt }}';
    return {
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha256(config), size: config.length },
      layers: [
        { mediaType: 'application/vnd.ollama.image.template', digest: sha256(template), size: template.length },
        { mediaType: 'application/vnd.ollama.image.model', digest: model.wrongDigest ? sha256(`not ${name}`) : digest, size: data.length },
      ],
    };
  };

  const serveBlob = async (request: http.IncomingMessage, response: http.ServerResponse, model: RegistryModel) => {
    const pause = model.delayMs ?? delayMs;
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length });
    for (let offset = 0; offset < data.length; offset += chunkSize) {
      if (model.dropAfter !== undefined && offset >= model.dropAfter) {
        request.socket.destroy();
        return;
      }
      if (!response.write(data.subarray(offset, offset + chunkSize))) await new Promise((resolve) => response.once('drain', resolve));
      if (pause) await new Promise((resolve) => setTimeout(resolve, pause));
      if (response.destroyed) return; // the client went away (a cancelled pull)
    }
    response.end();
  };

  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://registry');
    requests.push({ method: request.method ?? 'GET', path: url.pathname + url.search, accept: request.headers.accept });
    const notFound = (code: string) =>
      response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code, message: code.toLowerCase().replace('_', ' ') }] }));

    const manifest = /^\/v2\/([^/]+)\/([^/]+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (manifest) {
      const name = `${manifest[1]}/${manifest[2]}:${manifest[3]}`;
      const model = options.models[name];
      if (!model) return notFound('MANIFEST_UNKNOWN');
      // Without this Accept a Docker registry answers an older manifest schema.
      if (!request.headers.accept?.includes(MANIFEST_TYPE)) {
        return response.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID' }] }));
      }
      const body = JSON.stringify(manifestFor(name, model));
      return response.writeHead(200, { 'content-type': MANIFEST_TYPE, 'docker-content-digest': sha256(body) }).end(body);
    }

    const blob = /^\/v2\/([^/]+)\/([^/]+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (blob) {
      const [, namespace, repository, wanted] = blob;
      // Blobs belong to a repository, not a tag: give each behaviour a model name of its own.
      const entry = Object.entries(options.models).find(
        ([name, model]) => name.startsWith(`${namespace}/${repository}:`) && manifestFor(name, model).layers[1]!.digest === wanted,
      );
      if (!entry) return notFound('BLOB_UNKNOWN');
      // The real registry sends blobs from a CDN; the model's name travels along for its behaviour.
      return response.writeHead(307, { location: `/cdn/${wanted}?name=${encodeURIComponent(entry[0])}` }).end();
    }

    const cdn = /^\/cdn\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    const model = options.models[url.searchParams.get('name') ?? ''];
    if (cdn && model) return void serveBlob(request, response, model);
    notFound('NOT_FOUND');
  });
  const { url, close } = await listenOnLoopback(server);
  return { url, digest, size: data.length, requests, close };
}
