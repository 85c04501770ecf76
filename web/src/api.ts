// HTTP calls to the server (whoami, prompts, runs), typed by ./types.gen.
import { roomUrl, type PageConfig } from './config'
import type { AgentRun, PromptAccepted, PromptRequest, UndoResult, WhoAmI } from './types.gen'

/** A call's outcome: the parsed body, or the HTTP status (0: no answer at all). */
export type Result<T> = { ok: true; value: T } | { ok: false; status: number }

async function call<T>(cfg: PageConfig, path: string, init?: RequestInit): Promise<Result<T>> {
  try {
    const r = await fetch(roomUrl(cfg, path), init)
    if (!r.ok) return { ok: false, status: r.status }
    return { ok: true, value: (await r.json()) as T }
  } catch {
    return { ok: false, status: 0 }
  }
}

const postJson = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
})

/** This link's role in the room; 'none' when the server refuses the token. */
export type Access = WhoAmI['role'] | 'none'

export async function whoami(cfg: PageConfig): Promise<Access | null> {
  const r = await call<WhoAmI>(cfg, '/whoami')
  if (r.ok) return r.value.role
  return r.status === 401 || r.status === 403 ? 'none' : null
}

/** Ask the agent. 404/405: this server has no agent. */
export const sendPrompt = (cfg: PageConfig, req: PromptRequest) =>
  call<PromptAccepted>(cfg, '/prompts', postJson(req))

export async function getRun(cfg: PageConfig, id: string): Promise<AgentRun | null> {
  const r = await call<AgentRun>(cfg, `/runs/${encodeURIComponent(id)}`)
  return r.ok ? r.value : null
}

/** Erase a run's strokes on the server, which marks the run undone. 403: view-only link; 404: no such run. */
export const undoRun = (cfg: PageConfig, id: string) =>
  call<UndoResult>(cfg, `/runs/${encodeURIComponent(id)}/undo`, { method: 'POST' })
