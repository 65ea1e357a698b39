/** node-llama-cpp's sampling and length settings, as every generation of the engine passes them. */
export interface SamplingSettings {
  signal: AbortSignal;
  maxTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  seed?: number;
  repeatPenalty?: { penalty?: number; presencePenalty?: number; frequencyPenalty?: number; lastTokens?: number };
  customStopTriggers?: string[];
}
