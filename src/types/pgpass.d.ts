/** pgpass (by pg's author) has no types of its own: the one function pgwarden calls. */
declare module 'pgpass' {
  interface PgpassConnection {
    host?: string;
    port?: number | string;
    database?: string;
    user?: string;
  }
  /** Looks the connection up in PGPASSFILE or ~/.pgpass (ignored when group- or world-readable). */
  function pgpass(connection: PgpassConnection, done: (password: string | undefined) => void): void;
  export default pgpass;
}
