import fs from 'node:fs/promises';
import path from 'node:path';
import type { GgufFileInfo, GgufFileType } from 'node-llama-cpp';
import { llamaCpp } from './llama-module.js';
import type { ModelInfo } from '../types.js';
import { fileDigest } from '../digests.js';

/**
 * The models directory as a catalog: which GGUF files are there, under which Ollama-style names,
 * with what metadata. A file `stem.gguf` is the model `stem:latest`; `stem@tag.gguf` is `stem:tag`
 * (`:` is avoided in file names so the directory also works on filesystems that forbid it). Namespaced
 * names from a registry (`user/model`, `hf.co/owner/repo`) keep their `/` as `+`, a character no
 * registry name may contain, so the mapping is reversible and every model stays one flat file.
 */

export const PARTIAL_SUFFIX = '.partial';

export interface GgufEntry {
  name: string;
  filePath: string;
  info: ModelInfo;
  hasChatTemplate: boolean;
}

const NAMESPACE_SEPARATOR = '+';

export function fileNameForModel(name: string): string {
  const [path, tag = 'latest'] = splitName(name);
  const base = path.replaceAll('/', NAMESPACE_SEPARATOR);
  return tag === 'latest' ? `${base}.gguf` : `${base}@${tag}.gguf`;
}

export function modelNameForFile(fileName: string): string {
  const stem = fileName.replace(/\.gguf$/i, '').replaceAll(NAMESPACE_SEPARATOR, '/');
  const at = stem.lastIndexOf('@');
  return at > 0 ? `${stem.slice(0, at)}:${stem.slice(at + 1)}` : `${stem}:latest`;
}

export function splitName(name: string): [string, string | undefined] {
  const colon = name.lastIndexOf(':');
  // `host:port/x` style names have a slash after the colon; those colons are not tags.
  if (colon <= 0 || name.indexOf('/', colon) !== -1) return [name, undefined];
  return [name.slice(0, colon), name.slice(colon + 1)];
}

const SAFE_PART = '[A-Za-z0-9][A-Za-z0-9._-]*';
const SAFE_NAME = new RegExp(`^${SAFE_PART}(/${SAFE_PART}){0,2}(:${SAFE_PART})?$`);

/**
 * Only names that map to one plain file reach the filesystem: up to three `/`-separated parts (host,
 * namespace, model, as registry names have), none empty or starting with a dot, so no part can be
 * `..` or a dot-file and nothing escapes the directory.
 */
export function isSafeModelName(name: string): boolean {
  return SAFE_NAME.test(name) && name.length <= 200;
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1).replace(/\.0$/, '')}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1).replace(/\.0$/, '')}M`;
  if (n >= 1e3) return `${Math.round(n / 1e3)}K`;
  return String(n);
}

function quantizationName(fileType: unknown, fileTypes: typeof GgufFileType): string | undefined {
  if (typeof fileType !== 'number') return undefined;
  const name = (fileTypes as unknown as Record<number, string>)[fileType];
  return name?.replace(/^(MOSTLY|ALL)_/, '');
}

function describe(name: string, filePath: string, stat: { size: number; mtime: Date }, gguf: GgufFileInfo, digest: string, fileTypes: typeof GgufFileType): GgufEntry {
  const metadata = gguf.metadata as unknown as Record<string, Record<string, unknown>>;
  const general = metadata.general ?? {};
  const architecture = String(general.architecture ?? 'unknown');
  const archMeta = metadata[architecture] ?? {};
  const tokenizer = (metadata.tokenizer ?? {}) as Record<string, unknown>;
  const template = typeof tokenizer.chat_template === 'string' ? tokenizer.chat_template : undefined;
  const parameterCount = (gguf.fullTensorInfo ?? gguf.tensorInfo ?? []).reduce(
    (sum, tensor) => sum + tensor.dimensions.reduce<number>((p, d) => p * Number(d), 1),
    0,
  );
  // Ollama's model_info: flattened GGUF keys, minus the huge token arrays.
  const modelInfo: Record<string, unknown> = { 'general.parameter_count': parameterCount };
  for (const [section, values] of Object.entries(metadata)) {
    if (typeof values !== 'object' || values === null) continue;
    for (const [key, value] of Object.entries(values)) {
      if (section === 'tokenizer' && typeof value === 'object') continue;
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        for (const [sub, v] of Object.entries(value as Record<string, unknown>)) {
          if (!Array.isArray(v) || v.length <= 16) modelInfo[`${section}.${key}.${sub}`] = v;
        }
      } else if (!Array.isArray(value) || value.length <= 16) {
        modelInfo[`${section}.${key}`] = value;
      }
    }
  }
  const contextSize = typeof archMeta.context_length === 'number' ? archMeta.context_length : undefined;
  const hasPooling = typeof archMeta.pooling_type === 'number' && archMeta.pooling_type !== 0;
  return {
    name,
    filePath,
    hasChatTemplate: template !== undefined,
    info: {
      name,
      family: architecture,
      families: [architecture],
      format: 'gguf',
      parameterSize: formatCount(parameterCount),
      quantization: quantizationName(general.file_type, fileTypes),
      sizeBytes: stat.size,
      contextSize,
      template,
      digest,
      modifiedAt: stat.mtime.toISOString(),
      modelInfo,
      // Ollama's vocabulary: an embedding model is `embedding` only; a generative one completes and
      // calls tools (node-llama-cpp's function calling works through any chat format). /api/embed
      // still serves both, as Ollama's does.
      capabilities: hasPooling ? ['embedding'] : ['completion', 'tools'],
    },
  };
}

/** Rescans the directory on every call but reads each file's header only once per (size, mtime). */
export class GgufCatalog {
  private readonly cache = new Map<string, { key: string; entry: GgufEntry }>();

  constructor(readonly dir: string) {}

  async list(): Promise<GgufEntry[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch {
      return [];
    }
    const entries: GgufEntry[] = [];
    for (const fileName of names.sort()) {
      if (!fileName.toLowerCase().endsWith('.gguf')) continue;
      const filePath = path.join(this.dir, fileName);
      try {
        const stat = await fs.stat(filePath);
        if (!stat.isFile()) continue;
        const key = `${stat.size}:${stat.mtimeMs}`;
        const cached = this.cache.get(filePath);
        if (cached?.key === key) {
          entries.push(cached.entry);
          continue;
        }
        const { readGgufFileInfo, GgufFileType } = await llamaCpp();
        const [gguf, digest] = await Promise.all([readGgufFileInfo(filePath, { readTensorInfo: true }), fileDigest(filePath, stat)]);
        const entry = describe(modelNameForFile(fileName), filePath, stat, gguf, digest, GgufFileType);
        this.cache.set(filePath, { key, entry });
        entries.push(entry);
      } catch {
        // Not a readable GGUF file (truncated, foreign): it is not a model, so it is not listed.
        continue;
      }
    }
    return entries;
  }
}
