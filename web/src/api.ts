// HTTP calls to the server: whoami, prompts, runs.
import { roomUrl, type PageConfig } from './config'

export interface RunRecord {
  id: string
  status: 'queued' | 'running' | 'done' | 'failed' | string
  prompt?: string
  code?: string[]
  calls?: unknown[]
  strokes?: string[]
  tokens?: unknown
  error?: unknown
  errors?: string[]
  reply?: string | null
  undone?: boolean
}

export async function whoami(cfg: PageConfig): Promise<{ room: string; role: string } | null> {
  try {
    const r = await fetch(roomUrl(cfg, '/whoami'))
    if (r.status === 401 || r.status === 403) return { room: cfg.room, role: 'none' }
    if (!r.ok) return null
    return await r.json()
  } catch { return null }
}

/** POST a prompt. Returns the run id, or null when the endpoint does not exist (404). */
export async function sendPrompt(cfg: PageConfig, text: string, author: string): Promise<{ run: string | null; status: number }> {
  const r = await fetch(roomUrl(cfg, '/prompts'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text, author }),
  })
  if (!r.ok) return { run: null, status: r.status }
  const j = await r.json().catch(() => ({}))
  return { run: typeof j?.run === 'string' ? j.run : j?.run != null ? String(j.run) : null, status: r.status }
}

export async function getRun(cfg: PageConfig, id: string): Promise<RunRecord | null> {
  try {
    const r = await fetch(roomUrl(cfg, `/runs/${encodeURIComponent(id)}`))
    if (!r.ok) return null
    return await r.json()
  } catch { return null }
}
