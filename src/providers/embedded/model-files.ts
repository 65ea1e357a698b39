import fs from 'node:fs/promises';
import path from 'node:path';
import { BackendError, type PullProgress } from '../provider.js';
import { downloadModelFile } from './download.js';
import { fileNameForModel, isSafeModelName, type GgufEntry } from './gguf-catalog.js';
import { DEFAULT_REGISTRY, fetchModelLayer, parseRegistryName } from './ollama-registry.js';
import type { PullPolicy } from './pull-policy.js';
import { isFileSource, pullTargetName, resolveSource } from './pull-source.js';

/**
 * The models directory as a store: a model is one GGUF file named after it (gguf-catalog.ts), so
 * pulling downloads a file, copying links one, deleting removes one.
 */
export class ModelFiles {
  constructor(
    private readonly modelsDir: string,
    private readonly pullPolicy: PullPolicy,
    /** The Ollama registry that names without a host are pulled from (OLLAMA_REGISTRY). */
    private readonly registryUrl = DEFAULT_REGISTRY,
  ) {}

  /** Downloads a URL, an hf: file or an Ollama registry name's model layer into the models directory. */
  async *pull(source: string, name: string | undefined, signal: AbortSignal): AsyncIterable<PullProgress> {
    const target = name ?? pullTargetName(source);
    if (!isSafeModelName(target)) throw new BackendError(`invalid model name '${target}'`, 400);
    await fs.mkdir(this.modelsDir, { recursive: true });
    const destination = path.join(this.modelsDir, fileNameForModel(target));
    yield { status: 'pulling manifest' };
    if (isFileSource(source)) {
      yield* downloadModelFile(resolveSource(source), destination, signal, this.pullPolicy);
    } else {
      const layer = await fetchModelLayer(parseRegistryName(source), this.registryUrl, signal, this.pullPolicy);
      yield* downloadModelFile(layer.url, destination, signal, this.pullPolicy, layer);
    }
  }

  /** Whether copying `entry` to `destination` is a copy onto itself (removing the target first would delete the model). */
  isSelf(entry: GgufEntry, destination: string): boolean {
    if (!isSafeModelName(destination)) throw new BackendError(`invalid model name '${destination}'`, 400);
    return path.resolve(path.join(this.modelsDir, fileNameForModel(destination))) === path.resolve(entry.filePath);
  }

  /** Makes a GGUF file (an uploaded blob, another model's file) the model `name`. */
  async adopt(filePath: string, name: string): Promise<void> {
    if (!isSafeModelName(name)) throw new BackendError(`invalid model name '${name}'`, 400);
    await fs.mkdir(this.modelsDir, { recursive: true });
    const target = path.join(this.modelsDir, fileNameForModel(name));
    // A hard link costs no space and survives the deletion of the source, as an Ollama copy does.
    await fs.rm(target, { force: true });
    await fs.link(filePath, target).catch(() => fs.copyFile(filePath, target));
  }

  async remove(entry: GgufEntry): Promise<void> {
    await fs.rm(entry.filePath);
  }
}
