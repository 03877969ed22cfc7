/**
 * The HTTP plumbing the test servers share: a node:http server on 127.0.0.1 that tracks its
 * connections, so it can be stopped at once (outage simulations, teardown) and listen again on the
 * same port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export class LocalHttpServer {
  readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private portNumber = 0;

  /** `accept` false destroys a new connection at once (a server that resets connections). */
  constructor(handler: (req: IncomingMessage, res: ServerResponse) => void, accept: () => boolean = () => true) {
    this.server = createServer(handler);
    this.server.keepAliveTimeout = 1000;
    this.server.on('connection', (socket) => {
      if (!accept()) {
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  get port(): number {
    return this.portNumber;
  }

  get url(): string {
    return `http://127.0.0.1:${this.portNumber}`;
  }

  get listening(): boolean {
    return this.server.listening;
  }

  /** Listens on `port` (0: a free one), or on the port it had before. */
  listen(port = this.portNumber): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        if (addr !== null && typeof addr === 'object') this.portNumber = addr.port;
        resolve();
      });
    });
  }

  /** Drops every connection and stops listening (new connections are refused). */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
