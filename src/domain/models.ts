import type { GenerationOptions } from './chat.js';

/** Models as the model pages show them: downloads in progress and their outcome. */

export interface PullJob {
  id: string;
  /**
   * What the client asked for: a URL, an `hf:` reference or an Ollama registry name. A URL is shown
   * without its query string (where download tokens travel); only the running download has it.
   */
  source: string;
  /** The model name it will have when done. */
  model: string;
  backend: string;
  status: string;
  /** The layer being downloaded (`sha256:…`), as Ollama's progress lines carry it. */
  digest?: string;
  total?: number;
  completed?: number;
  /** 0-100 when the size is known. */
  percent?: number;
  state: 'running' | 'success' | 'error' | 'cancelled';
  error?: string;
  startedAt: string;
  finishedAt?: string;
}

/** Default generation parameters an admin may set per model (the management API's `parameters`). */
export type ModelParameters = Pick<
  GenerationOptions,
  'temperature' | 'top_p' | 'top_k' | 'min_p' | 'repeat_penalty' | 'repeat_last_n' | 'presence_penalty' | 'frequency_penalty' | 'num_predict' | 'seed' | 'stop' | 'num_ctx'
> & {
  /** The management API's name for num_predict; kept as given so the catalog shows what the admin wrote. */
  max_tokens?: number;
};
