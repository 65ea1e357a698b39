import { PullPanel } from './PullPanel.js';

/**
 * What the Compare page shows while the server has no model at all: where models come from, and a
 * pull by name or URL with its progress; the page reloads once a download has finished.
 */
export function FirstRun() {
  return (
    <div className="page first-run" data-testid="first-run">
      <h1>No models yet</h1>
      <p>
        The server reads GGUF model files from its models folder: the <code>MODELS_DIR</code> setting, by default <code>data/models</code> under
        its data folder (<code>DATA_DIR</code>). Models from Ollama hosts it is connected to appear here too. Put a <code>.gguf</code> file there and
        reload, or download one now:
      </p>
      <section className="panel">
        <h2>Pull a model</h2>
        <p className="hint">
          A direct link to a <code>.gguf</code> file, <code>hf:owner/repo/file.gguf</code> for Hugging Face, or an Ollama model name such as{' '}
          <code>qwen2.5:0.5b</code>. Pulling needs the admin token.
        </p>
        <PullPanel onFinished={(job) => job.state === 'success' && window.location.reload()} />
      </section>
    </div>
  );
}
