import type http from 'node:http';
import type net from 'node:net';

/**
 * Starts a test's stand-in HTTP server on a free loopback port (of 127.0.0.1 unless `host` says
 * another of the 127/8 addresses, all of which are this machine's loopback on Linux). `close` cuts the connections still
 * open (a stalled or half-sent download would otherwise hold `server.close()` forever).
 */
export async function listenOnLoopback(server: http.Server, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
