// Page configuration from the URL: room and token.
export interface PageConfig {
  room: string
  token: string | null
  wsBase: string
}

export function readConfig(loc: Location = location): PageConfig {
  const q = new URLSearchParams(loc.search)
  const room = (q.get('room') || 'lobby').trim() || 'lobby'
  const token = q.get('token')
  return { room, token, wsBase: `${loc.origin.replace(/^http/, 'ws')}/rooms` }
}

/** URL of a room-scoped HTTP endpoint, with the token as query parameter. */
export function roomUrl(cfg: PageConfig, path: string): string {
  const u = new URL(`/rooms/${encodeURIComponent(cfg.room)}${path}`, location.origin)
  if (cfg.token) u.searchParams.set('token', cfg.token)
  return u.toString()
}
