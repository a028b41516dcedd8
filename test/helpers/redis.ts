import { connect } from 'node:net';

export function redisUrl(): string {
  return process.env['MLOS_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
}

/** True when a Redis server answers PING at `url` within a second. */
export function probeRedis(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 6379) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}
