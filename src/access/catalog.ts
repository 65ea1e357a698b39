import { BackendError, type ChatRequest, type CompletionRequest } from '../providers/types.js';
import type { ChatMessage, GenerationOptions } from '../domain/chat.js';
import { CatalogStore, type CatalogRow } from '../store/catalog.js';
import type { Db } from '../store/database.js';
import { normaliseModelName } from '../shared/model-names.js';
import type { SharedEvents } from './shared-events.js';
import type { ModelParameters } from '../domain/models.js';

/**
 * What `/api/create` bakes into a model beside its parameters, as an Ollama Modelfile does: a system
 * prompt and messages put before every conversation that does not bring its own, and the template the
 * model was given (shown by /api/show; the embedded engine keeps the GGUF file's own chat template).
 */
export interface ModelfileSettings {
  system?: string;
  template?: string;
  messages?: ChatMessage[];
}

export interface CatalogEntry {
  name: string;
  description: string;
  is_active: boolean;
  parameters: ModelParameters;
  /** Settings a created model carries (kept in the parameters column, under `modelfile`). */
  modelfile?: ModelfileSettings;
  updated_at: string;
}

/** How often the catalog is re-read even without a change event (a replica that missed one). */
const RELOAD_MS = 30_000;

function key(name: string): string {
  return normaliseModelName(name).toLowerCase();
}

/**
 * The model catalog: admins' description, active flag and default parameters per model, held in
 * memory (read on every request) and reloaded on every replica when any replica changes it.
 * It is the one place that decides which models are listed and which may generate.
 */
export class Catalog {
  private entries = new Map<string, CatalogEntry>();
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly store: CatalogStore,
    private readonly shared: SharedEvents,
    private readonly onError: (error: unknown) => void,
  ) {
    this.timer = setInterval(() => void this.reload().catch(onError), RELOAD_MS);
    this.timer.unref();
  }

  static async open(db: Db, shared: SharedEvents, onError: (error: unknown) => void): Promise<Catalog> {
    const catalog = new Catalog(new CatalogStore(db), shared, onError);
    await catalog.reload();
    await shared.on('catalog', () => void catalog.reload().catch(onError));
    // A change made on another replica while Redis was away was announced to nobody.
    shared.onReconnect(() => void catalog.reload().catch(onError));
    return catalog;
  }

  private async reload(): Promise<void> {
    const rows = await this.store.all();
    this.entries = new Map(rows.map((row) => [key(row.name), Catalog.entry(row)]));
  }

  private static entry(row: CatalogRow): CatalogEntry {
    const { modelfile, ...parameters } = JSON.parse(row.parameters) as ModelParameters & { modelfile?: ModelfileSettings };
    return {
      name: row.name,
      description: row.description,
      is_active: row.is_active === 1,
      parameters,
      ...(modelfile ? { modelfile } : {}),
      updated_at: row.updated_at,
    };
  }

  get(name: string): CatalogEntry | undefined {
    return this.entries.get(key(name));
  }

  all(): CatalogEntry[] {
    return [...this.entries.values()];
  }

  /** Inactive models are hidden from lists and refused; a model the catalog does not know is active. */
  isActive(name: string): boolean {
    return this.entries.get(key(name))?.is_active ?? true;
  }

  /** Sets some fields of a model's entry (the others keep their value) on every replica. */
  async set(name: string, change: { description?: string; is_active?: boolean; parameters?: ModelParameters; modelfile?: ModelfileSettings }): Promise<CatalogEntry> {
    const current = this.get(name);
    const modelfile = change.modelfile ?? current?.modelfile;
    const entry: CatalogEntry = {
      name: current?.name ?? normaliseModelName(name),
      description: change.description ?? current?.description ?? '',
      is_active: change.is_active ?? current?.is_active ?? true,
      parameters: change.parameters ?? current?.parameters ?? {},
      ...(modelfile ? { modelfile } : {}),
      updated_at: new Date().toISOString(),
    };
    const { modelfile: _settings, ...row } = entry;
    await this.store.upsert({ ...row, is_active: entry.is_active ? 1 : 0, parameters: JSON.stringify({ ...entry.parameters, ...(modelfile ? { modelfile } : {}) }) });
    this.entries.set(key(entry.name), entry);
    await this.shared.publish('catalog', null);
    return entry;
  }

  async remove(name: string): Promise<boolean> {
    const current = this.get(name);
    if (!current) return false;
    await this.store.remove(current.name);
    this.entries.delete(key(name));
    await this.shared.publish('catalog', null);
    return true;
  }

  /** GenerationService's policy hook: whether `prepare` would refuse or change a request for this model. */
  changes(model: string): boolean {
    const entry = this.get(model);
    return entry !== undefined && (!entry.is_active || entry.modelfile !== undefined || Object.values(toOptions(entry.parameters)).some((value) => value !== undefined));
  }

  /**
   * GenerationService's policy hook: refuses an inactive model and fills every option the request
   * left out with the model's catalog default.
   */
  prepare<T extends ChatRequest | CompletionRequest>(request: T): T {
    const entry = this.get(request.model);
    if (!entry) return request;
    if (!entry.is_active) throw new BackendError(inactiveMessage(request.model), 403);
    const defaults = toOptions(entry.parameters);
    const options: GenerationOptions = { ...request.options };
    for (const [name, value] of Object.entries(defaults) as [keyof GenerationOptions, never][]) {
      if (options[name] === undefined) options[name] = value;
    }
    return withModelfile({ ...request, options }, entry.modelfile);
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/**
 * A created model's system prompt and messages, as Ollama applies a Modelfile's: the system prompt
 * when the request brings none, the messages before the conversation.
 */
function withModelfile<T extends ChatRequest | CompletionRequest>(request: T, modelfile: ModelfileSettings | undefined): T {
  if (!modelfile) return request;
  if ('messages' in request) {
    const own = request.messages;
    const hasSystem = own.some((m) => m.role === 'system');
    const system: ChatMessage[] = !hasSystem && modelfile.system ? [{ role: 'system', content: modelfile.system }] : [];
    // The messages go after the request's leading system messages, before its conversation.
    let first = own.findIndex((m) => m.role !== 'system');
    if (first === -1) first = own.length;
    return { ...request, messages: [...system, ...own.slice(0, first), ...(modelfile.messages ?? []), ...own.slice(first)] };
  }
  if (!request.raw && request.system === undefined && modelfile.system) return { ...request, system: modelfile.system };
  return request;
}

export function inactiveMessage(model: string): string {
  return `Model '${model}' is not active: an administrator has disabled it`;
}

function toOptions(parameters: ModelParameters): GenerationOptions {
  const { max_tokens, ...rest } = parameters;
  return { ...rest, ...(rest.num_predict === undefined && max_tokens !== undefined ? { num_predict: max_tokens } : {}) };
}
