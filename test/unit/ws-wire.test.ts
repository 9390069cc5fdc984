import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { textFrame } from '../../src/transports/websocket/wire.js';

describe('textFrame', () => {
  let http: Server;
  let url: string;
  /** The server side's raw socket of each accepted connection, as the transport holds it. */
  const sockets: Duplex[] = [];

  beforeAll(async () => {
    http = createServer();
    const wss = new WebSocketServer({ noServer: true });
    http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, () => sockets.push(socket)));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

  // Lengths at each header form's edges (7-bit, 16-bit, 64-bit), and multi-byte UTF-8.
  const texts = ['', 'x', 'a'.repeat(125), 'b'.repeat(126), 'c'.repeat(65_535), 'd'.repeat(65_536), 'e'.repeat(70_001), '₹ 101.25 é 😀'.repeat(20)];

  it('is read by a real WebSocket client as the same text, written straight to the upgraded socket', async () => {
    const client = new WebSocket(url);
    const received: string[] = [];
    const all = new Promise<void>((resolve, reject) => {
      client.on('message', (data, isBinary) => {
        if (isBinary) reject(new Error('binary frame'));
        received.push(data.toString());
        if (received.length === texts.length) resolve();
      });
      client.on('error', reject);
    });
    await new Promise((resolve) => client.once('open', resolve));
    const socket = sockets.at(-1) as Duplex;
    for (const text of texts) socket.write(textFrame(text));
    await all;
    expect(received).toEqual(texts);
    client.close();
  });
});
