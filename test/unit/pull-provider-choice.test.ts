import { describe, expect, it } from 'vitest';
import type { ModelProvider, PullCapability, PullProgress } from '../../src/providers/provider.js';
import { PullPolicy } from '../../src/providers/embedded/pull-policy.js';
import { PullJobs } from '../../src/access/pull-jobs.js';
import type { ModelRouter } from '../../src/gateway/router.js';

/** A provider that pulls instantly and records what it was asked. */
function puller(id: string, pulls: PullCapability, extra: Partial<ModelProvider> = {}) {
  const asked: { source: string; name: string | undefined }[] = [];
  const provider = {
    id,
    capabilities: { pulls },
    asked,
    async *pull(source: string, name: string | undefined): AsyncIterable<PullProgress> {
      asked.push({ source, name });
      yield { status: 'downloading', total: 2, completed: 2 };
    },
    ...extra,
  } as unknown as ModelProvider & { asked: typeof asked };
  return provider;
}

const LOCAL: PullCapability = { registryNames: true, files: true, storesLocally: true };
const SERVER: PullCapability = { registryNames: true, files: false, storesLocally: false };

/** Only what PullJobs asks of the router: the providers, which are down, and a listing. */
function routerOf(providers: ModelProvider[], down: ModelProvider[] = []): ModelRouter {
  return { backends: providers, isDown: (p: ModelProvider) => down.includes(p), models: async () => [], invalidate: () => undefined } as unknown as ModelRouter;
}

describe('PullJobs: which provider pulls', () => {
  it('sends a registry name to a model server with its own store, and a file to the local models directory', async () => {
    const local = puller('embedded', LOCAL, { pullName: (source) => `${source.split('/').pop()!.replace('.gguf', '')}:latest` });
    const server = puller('ollama:http://a', SERVER);
    const jobs = new PullJobs(routerOf([local, server]), new PullPolicy());
    const registry = await jobs.start('llama3.2:1b');
    expect(registry).toMatchObject({ backend: 'ollama:http://a', model: 'llama3.2:1b' });
    const file = await jobs.start('https://example.com/files/tiny.gguf');
    expect(file).toMatchObject({ backend: 'embedded', model: 'tiny:latest' });
  });

  it('falls back to the local directory when the server is absent or down', async () => {
    const local = puller('embedded', LOCAL, { pullName: () => 'stories:latest' });
    const absent = puller('ollama:http://a', SERVER, { absent: true } as Partial<ModelProvider>);
    const down = puller('ollama:http://b', SERVER);
    const jobs = new PullJobs(routerOf([local, absent, down], [down]), new PullPolicy());
    expect(await jobs.start('stories')).toMatchObject({ backend: 'embedded', model: 'stories:latest' });
  });

  it('names the model from the source without its query string, and passes the name to the pull', async () => {
    const local = puller('embedded', LOCAL, { pullName: (source) => (source.includes('?') ? 'with-query:latest' : 'clean:latest') });
    const jobs = new PullJobs(routerOf([local]), new PullPolicy());
    const job = await jobs.start('https://example.com/x/clean.gguf?token=secret');
    expect(job.model).toBe('clean:latest');
    await expect.poll(() => jobs.get(job.id)?.state).toBe('success');
    expect(local.asked).toEqual([{ source: 'https://example.com/x/clean.gguf?token=secret', name: 'clean:latest' }]);
  });

  it('refuses a source no provider can pull', async () => {
    const server = puller('ollama:http://a', SERVER);
    const jobs = new PullJobs(routerOf([server]), new PullPolicy());
    await expect(jobs.start('hf:owner/repo/file.gguf')).rejects.toMatchObject({ status: 400, message: "cannot pull 'hf:owner/repo/file.gguf': no backend can download models" });
  });
});
