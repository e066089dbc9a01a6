/** Where REST API v1 lives. Its own module so a browser bundle can import it without the wire schemas (zod). */
export const API_PREFIX = '/api/v1';
