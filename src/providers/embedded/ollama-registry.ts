import { BackendError } from '../types.js';
import { isSafeModelName, splitName } from './gguf-catalog.js';
import { connectionErrorText, guardedGet, readSmallBody, type GuardedResponse } from './guarded-get.js';
import type { PullPolicy } from './pull-policy.js';

/**
 * The Ollama registry as the embedded engine needs it: Ollama's model names and the manifest that
 * says which blob is the GGUF file. An Ollama model is an OCI-style manifest whose
 * `application/vnd.ollama.image.model` layer is the GGUF file itself, so pulling one is downloading
 * that one blob (template, parameters and licence layers are left out: the GGUF carries its own chat
 * template). Hugging Face serves `hf.co/owner/repo:quant` with the same protocol.
 */

/** Where names without a host come from; OLLAMA_REGISTRY may point at a mirror instead. */
export const DEFAULT_REGISTRY = 'https://registry.ollama.ai';
const DEFAULT_HOST = new URL(DEFAULT_REGISTRY).host;
const DEFAULT_NAMESPACE = 'library';
const MANIFEST_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
const MODEL_LAYER_MEDIA_TYPE = 'application/vnd.ollama.image.model';

/** Ollama's rules for name parts (types/model/name.go): a letter, digit or `_` first, at most 80 characters. */
const PART = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$/;
const NAMESPACE = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$/; // Ollama allows no dot in a namespace
const HOST = /^[A-Za-z0-9][A-Za-z0-9.-]{0,349}$/;

export interface RegistryName {
  /** An explicit registry host; absent for names served by the configured registry. */
  host?: string;
  namespace: string;
  model: string;
  tag: string;
  /** What the model is called here, as Ollama lists it: `llama3.2:1b`, `user/model:tag`, `hf.co/owner/repo:tag`. */
  localName: string;
}

export function malformed(name: string, why: string): BackendError {
  return new BackendError(
    `invalid model name '${name}': ${why}; give an Ollama name (model[:tag], namespace/model[:tag] or host/namespace/model[:tag]), an http(s) URL or an hf:owner/repo/file.gguf reference`,
    400,
  );
}

/**
 * Checks a name against Ollama's grammar (`[host[:port]/][namespace/]model[:tag]`) and splits it.
 * A port is only for names an Ollama server pulls: here it would put a `:` into the model's file name.
 */
export function splitRegistryName(name: string, allowPort = false): Omit<RegistryName, 'localName'> {
  if (name.includes('://')) throw malformed(name, 'only http(s) URLs can be downloaded');
  if (name.includes('..')) throw malformed(name, "'..' is not allowed");
  const [path, tag = 'latest'] = splitName(name);
  const parts = path.split('/');
  if (parts.length > 3) throw malformed(name, 'too many parts');
  const model = parts.pop()!;
  const namespace = parts.pop() ?? DEFAULT_NAMESPACE;
  const host = parts.pop();
  const colon = host?.indexOf(':') ?? -1;
  const hostName = colon >= 0 ? host!.slice(0, colon) : host;
  const port = colon >= 0 ? host!.slice(colon + 1) : undefined;
  if (port !== undefined && !allowPort) throw malformed(name, 'a registry host with a port is not supported');
  if (hostName !== undefined && !HOST.test(hostName)) throw malformed(name, `'${host}' is not a host name`);
  if (port !== undefined && !/^\d{1,5}$/.test(port)) throw malformed(name, `'${host}' is not a host name`);
  if (!NAMESPACE.test(namespace)) throw malformed(name, `'${namespace}' is not a namespace`);
  if (!PART.test(model)) throw malformed(name, `'${model}' is not a model name`);
  if (!PART.test(tag)) throw malformed(name, `'${tag}' is not a tag`);
  return { host, namespace, model, tag };
}

/** Parses a name the way Ollama does: `model` is `library/model:latest`, three parts start with a host. */
export function parseRegistryName(name: string): RegistryName {
  const { namespace, model, tag, ...rest } = splitRegistryName(name);
  // Ollama's own host is where names without one come from (the configured registry, maybe a mirror).
  const host = rest.host?.toLowerCase() === DEFAULT_HOST ? undefined : rest.host;
  const localName = host
    ? `${host}/${namespace}/${model}:${tag}`
    : namespace === DEFAULT_NAMESPACE
      ? `${model}:${tag}`
      : `${namespace}/${model}:${tag}`;
  if (!isSafeModelName(localName)) throw malformed(name, 'it cannot be stored as a file name here');
  return { host, namespace, model, tag, localName };
}

/** The model layer of a manifest: a GGUF file, identified by its sha256 digest. */
export interface ModelLayer {
  url: string;
  digest: string;
  size: number;
}

interface ManifestLayer {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
}

/** A manifest lists a handful of layers; anything far larger is not one. */
const MANIFEST_LIMIT = 1024 * 1024;

/** Reads the manifest of `name` from its registry and returns where its GGUF blob is. */
export async function fetchModelLayer(name: RegistryName, registry: string, signal: AbortSignal, policy: PullPolicy): Promise<ModelLayer> {
  const base = name.host ? `https://${name.host}` : registry.replace(/\/+$/, '');
  const repository = `${base}/v2/${name.namespace}/${name.model}`;
  let response: GuardedResponse;
  try {
    response = await guardedGet(`${repository}/manifests/${name.tag}`, policy, signal, { accept: MANIFEST_MEDIA_TYPE });
  } catch (error) {
    if (signal.aborted) throw error;
    const reason = error instanceof BackendError ? error.message : connectionErrorText(error);
    throw new BackendError(`pull model manifest: cannot reach ${base}: ${reason}`, 502);
  }
  if (response.status < 200 || response.status > 299) {
    response.body.destroy();
    // Ollama's words for an unknown name or tag, which is what a client will search for.
    if (response.status === 404) throw new BackendError('pull model manifest: file does not exist', 404);
    throw new BackendError(`pull model manifest: ${base} answered ${response.status}`, 502);
  }
  let manifest: { layers?: unknown };
  try {
    manifest = JSON.parse(await readSmallBody(response.body, MANIFEST_LIMIT)) as { layers?: unknown };
  } catch (error) {
    if (signal.aborted) throw error;
    throw new BackendError(`pull model manifest: ${base} did not answer with a manifest`, 502);
  }
  const layers = Array.isArray(manifest?.layers) ? (manifest.layers as ManifestLayer[]) : [];
  const layer = layers.find((l) => l.mediaType === MODEL_LAYER_MEDIA_TYPE);
  if (!layer) throw new BackendError(`pull model manifest: ${name.localName} has no model layer`, 422);
  if (typeof layer.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(layer.digest) || !Number.isSafeInteger(layer.size) || (layer.size as number) < 0) {
    throw new BackendError(`pull model manifest: the model layer of ${name.localName} has no valid digest and size`, 502);
  }
  return { url: `${repository}/blobs/${layer.digest}`, digest: layer.digest, size: layer.size as number };
}
