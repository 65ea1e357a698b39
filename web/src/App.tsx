import { useEffect, useState, type MouseEvent } from 'react';
import { matchRoute, routes } from './routes.js';
import { navigate, usePath } from './navigation.js';
import { getToken, onUnauthorized, setToken } from './api.js';

function TokenPrompt({ onDone }: { onDone: () => void }) {
  const [value, setValue] = useState('');
  return (
    <form
      className="token-prompt"
      onSubmit={(event) => {
        event.preventDefault();
        setToken(value.trim() || null);
        onDone();
      }}
    >
      <label>
        This server needs a token (WEB_CHAT_TOKEN or an API key):
        <input type="password" value={value} onChange={(e) => setValue(e.target.value)} autoFocus aria-label="token" />
      </label>
      <button type="submit">Save</button>
    </form>
  );
}

export function App() {
  const path = usePath();
  const [askToken, setAskToken] = useState(false);
  // Whether the kept token was refused: a wrong one must not show as accepted.
  const [refused, setRefused] = useState(false);
  useEffect(
    () =>
      onUnauthorized(() => {
        setAskToken(true);
        if (getToken()) setRefused(true);
      }),
    [],
  );
  const match = matchRoute(path);
  const follow = (event: MouseEvent<HTMLAnchorElement>, to: string) => {
    event.preventDefault();
    navigate(to);
  };
  return (
    <div className="app">
      <nav className="nav">
        <span className="brand">ollama-arena</span>
        {routes
          .filter((route) => route.label)
          .map((route) => (
            <a
              key={route.pattern}
              href={route.pattern}
              className={path === route.pattern ? 'active' : undefined}
              onClick={(e) => follow(e, route.pattern)}
            >
              {route.label}
            </a>
          ))}
        <button className="token-button" onClick={() => setAskToken(true)} title="Set the access token" data-testid="token-button">
          {!getToken() ? 'Token' : refused ? 'Token refused' : 'Token set'}
        </button>
      </nav>
      {askToken && <TokenPrompt onDone={() => { setAskToken(false); window.location.reload(); }} />}
      <main>{match ? match.route.render(match.params) : <p className="empty">Page not found.</p>}</main>
    </div>
  );
}
