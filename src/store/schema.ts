/**
 * The database tables as Kysely sees them. Each feature adds its table interfaces here and a
 * migration in ./migrations; timestamps are ISO-8601 strings so both dialects store them alike.
 */

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Tables {}
