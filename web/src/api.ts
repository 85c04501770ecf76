// HTTP calls to the server (whoami, prompts, runs, behaviours, button presses), typed by ./types.gen.
import { roomUrl, type PageConfig } from './config'
import type {
  AgentRun, BehaviourDetail, BehaviourList, BehaviourRemoved, BehaviourSummary, ChatCleared, ChatPage, PressAccepted, PromptAccepted, PromptRequest,
  RunList, UndoResult, WhoAmI,
} from './types.gen'

/** Why the server said no: its status (0: no answer at all), its `{"error"}` text, Retry-After. */
export interface Refusal { ok: false; status: number; error: string; retryAfter: number | null }

/** A call's outcome: the parsed body, or the refusal. */
export type Result<T> = { ok: true; value: T } | Refusal

async function call<T>(cfg: PageConfig, path: string, init?: RequestInit): Promise<Result<T>> {
  try {
    const r = await fetch(roomUrl(cfg, path), init)
    if (!r.ok) return refusal(r)
    return { ok: true, value: (await r.json()) as T }
  } catch {
    return { ok: false, status: 0, error: '', retryAfter: null }
  }
}

async function refusal(r: Response): Promise<Refusal> {
  let error = ''
  try {
    const body = (await r.json()) as { error?: unknown }
    if (typeof body?.error === 'string') error = body.error.slice(0, 300)
  } catch { /* not JSON: the status says enough */ }
  const after = Number(r.headers.get('retry-after'))
  return { ok: false, status: r.status, error, retryAfter: Number.isFinite(after) && after > 0 ? after : null }
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

/** Ask the agent. 404/405: this server has no agent; 429: too many prompts (see Retry-After). */
export const sendPrompt = (cfg: PageConfig, req: PromptRequest) =>
  call<PromptAccepted>(cfg, '/prompts', postJson(req))

/** The room's newest runs (as many as a room keeps) as summaries (no code, no calls): one request for all the cards. */
export const listRuns = (cfg: PageConfig) => call<RunList>(cfg, '/runs?limit=200')

/** One run's full record, with its code and calls (fetched when its card is opened). */
export async function getRun(cfg: PageConfig, id: string): Promise<AgentRun | null> {
  const r = await call<AgentRun>(cfg, `/runs/${encodeURIComponent(id)}`)
  return r.ok ? r.value : null
}

/** Erase a run's strokes on the server, which marks the run undone. 403: view-only link; 404: no such run. */
export const undoRun = (cfg: PageConfig, id: string) =>
  call<UndoResult>(cfg, `/runs/${encodeURIComponent(id)}/undo`, { method: 'POST' })

// ---- chat: older lines the room's document let go, and clearing it -------------------------

/** Older chat lines kept by the server, oldest first; `before`: the `before` of the previous page (none: the newest). */
export const olderChat = (cfg: PageConfig, before: number | null, limit = 50) =>
  call<ChatPage>(cfg, `/chat?limit=${limit}${before === null ? '' : `&before=${before}`}`)

/** Delete every chat line of the room, for everyone (edit links; 403 for view links). */
export const clearChat = (cfg: PageConfig) => call<ChatCleared>(cfg, '/chat/clear', { method: 'POST' })

// ---- behaviours: programs the agent left running in the room ------------------------------

const behaviourPath = (id: string) => `/behaviours/${encodeURIComponent(id)}`

/** The room's behaviours (404: this server has no agent). */
export const listBehaviours = (cfg: PageConfig) => call<BehaviourList>(cfg, '/behaviours')

/** One behaviour with its code and recent firings (fetched when its firings are opened). */
export const getBehaviour = (cfg: PageConfig, id: string) => call<BehaviourDetail>(cfg, behaviourPath(id))

/** Pause or resume a behaviour. 403: view-only link; 409: it cannot be resumed (the answer says why). */
export const setBehaviour = (cfg: PageConfig, id: string, action: 'pause' | 'resume') =>
  call<BehaviourSummary>(cfg, `${behaviourPath(id)}/${action}`, { method: 'POST' })

/** Remove a behaviour for good. */
export const removeBehaviour = (cfg: PageConfig, id: string) =>
  call<BehaviourRemoved>(cfg, behaviourPath(id), { method: 'DELETE' })

/** Erase what one firing drew. */
export const undoFiring = (cfg: PageConfig, id: string, firing: string) =>
  call<UndoResult>(cfg, `${behaviourPath(id)}/firings/${encodeURIComponent(firing)}/undo`, { method: 'POST' })

// ---- widgets: a person's press on a button fires the behaviour that made it ----------------

/**
 * Press a button. 403: this link may not (a view link, on a button not made with `anyone`);
 * 409: its behaviour is paused or removed (the answer says which); 429: too many presses (Retry-After).
 */
export const pressWidget = (cfg: PageConfig, id: string) =>
  call<PressAccepted>(cfg, `/widgets/${encodeURIComponent(id)}/press`, { method: 'POST' })
