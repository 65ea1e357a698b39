import ReactMarkdown from 'react-markdown';

/**
 * Model output rendered as Markdown (headings, lists, code blocks). react-markdown builds React
 * elements from the Markdown tree and, without a raw-HTML plugin, shows HTML in the text as text, so
 * `<img onerror=...>` from a model cannot run; its default URL filter drops `javascript:` links.
 */
export function Markdown({ text }: { text: string }) {
  return (
    <div className="markdown">
      <ReactMarkdown>{text}</ReactMarkdown>
    </div>
  );
}
