/** Where REST API v1 lives. Its own module so a browser bundle can import it without the wire schemas (zod). */
export const API_PREFIX = '/api/v1';

/**
 * The file name, in a coordinator's data dir, of the Unix socket where it also serves the API to clients on the same
 * machine (coordinator `http/local-socket.ts`, client `@dsg/client/local`).
 */
export const LOCAL_API_SOCKET = 'api.sock';
