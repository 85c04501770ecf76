// GENERATED from the pydantic models by `python -m inhabit.typegen` — do not edit.

export const STROKES = 'strokes'
export const MESSAGES = 'messages'
export const WIDGETS = 'widgets'
export const MAX_POINTS = 10000
export const MAX_TEXT = 8000
export const COORD_LIMIT = 1000000.0
export const MAX_WIDGET_TEXT = 2000
export const MAX_LABEL = 80
export const MAX_WIDGETS = 500
export const Close = {NORMAL: 1000, TEXT_FRAME: 1003, MALFORMED: 1007, POLICY: 1008, TOO_BIG: 1009, INTERNAL: 1011, TOO_SLOW: 1013, BAD_ROOM: 4400, BAD_TOKEN: 4401, WRONG_ROOM: 4403, ROOM_FULL: 4413, UNAVAILABLE: 4503} as const
export const NO_RETRY: readonly number[] = [1003, 1007, 1008, 1009]

/** One pen stroke: a polyline of (x, y, pressure) triplets in canvas units. */
export interface Stroke {
  /** same as its key in `strokes`: 1-80 chars of [A-Za-z0-9_.:-] */
  id: string
  /** flat [x0, y0, p0, x1, y1, p1, ...]: canvas units within ±1,000,000, y grows downwards, p = pressure 0..1; at most 10,000 points */
  points: number[]
  /** #rrggbb */
  color: string
  /** base stroke width in canvas units, 0 < w <= 200 */
  width: number
  /** display name of the peer that drew it */
  author: string
  /** who drew it */
  kind: "human" | "agent"
  /** the agent run that drew it (agents only); undoing the run erases it */
  run?: string
  /** the behaviour whose program drew it (then `run` is its firing, or the run that installed it); a behaviour never fires on its own strokes */
  behaviour?: string
  /** ms since the Unix epoch when it was committed */
  t: number
}

/**
 * Text or a button placed in the room: a multi-line label, or a caption that fires the
 * behaviour that made it when pressed (`POST /rooms/NAME/widgets/ID/press`).
 */
export interface Widget {
  /** same as its key in `widgets`: 1-80 chars of [A-Za-z0-9_.:-] */
  id: string
  /** "text": a label (lines split on \n); "button": a caption people press */
  type: "text" | "button"
  /** left edge in canvas units (y grows downwards) */
  x: number
  /** top edge in canvas units */
  y: number
  /** the text (at most 2,000 characters), or a button's label (at most 80) */
  text: string
  /** font size in canvas units, 0 < size <= 1000 */
  size: number
  /** #rrggbb */
  color: string
  /** display name of the peer that placed it */
  author: string
  /** who placed it */
  kind: "human" | "agent"
  /** the agent run that placed it (agents only); undoing the run removes it */
  run?: string
  /** the behaviour whose program placed it; a button's press fires this behaviour */
  behaviour?: string
  /** buttons: whether a view link may press it (then the firing acts with its installer's grant); otherwise only edit links may */
  anyone: boolean
  /** ms since the Unix epoch when it was placed or last changed */
  t: number
}

/** A chat entry: people's prompts, agents' status lines and replies. */
export interface Message {
  /** unique id */
  id: string
  /** display name of who wrote it */
  author: string
  /** a person's line, or an agent's status or reply; "agent" only from the server's own peers (its hosted agent, an MCP session): a line anyone else inserts with "agent" is rewritten to "human" before anybody sees it */
  kind: "human" | "agent"
  /** the line; prompts to agents start with @agent (or the agent's name) */
  text: string
  /** ms since the Unix epoch */
  t: number
  /** the agent run it belongs to, if any (its card shows the server's record of that run; on a `human` line it is not the agent's word) */
  run?: string
  /** the behaviour that said it, if any; only from the server's own peers (dropped from anyone else's line) */
  behaviour?: string
}

/** `POST /rooms/{name}/prompts`. */
export interface PromptRequest {
  text: string
  /** a display name the caller gives (not verified) */
  author?: string | null
}

/** `GET /rooms/{name}/whoami`: the caller's role in the room. */
export interface WhoAmI {
  room: string
  role: "view" | "edit"
}

/** One older chat line, as the room's document held it, and its place in the room's log. */
export interface ChatLine {
  /** its place in the room's chat log: pass it as `before` for the lines older than it */
  seq: number
  message: Message
}

/** `GET /rooms/{name}/chat?before=SEQ&limit=N`: older chat lines the document let go, oldest first. */
export interface ChatPage {
  room: string
  messages: ChatLine[]
  /** `before` for the next (older) page; null when there is none */
  before: number | null
}

/** `POST /rooms/{name}/chat/clear` (edit token): how many lines the document held (saved). */
export interface ChatCleared {
  room: string
  cleared: number
}

/** The answer to a prompt (202): its run id and the grant it runs with. */
export interface PromptAccepted {
  run: string
  grant: "read" | "write"
}

export interface CallRecord {
  name: string
  args: any
  result: any
  ms: number
  error: string | null
}

export interface Tokens {
  input: number
  output: number
  turns: number
}

export interface AgentRun {
  id: string
  room: string
  status: "queued" | "running" | "done" | "failed"
  prompt: string
  author: string
  grant: "read" | "write"
  source: "chat" | "http" | "cli" | "mcp" | "behaviour"
  /** every JavaScript program executed, in order (long ones cut) */
  code: string[]
  /** a sample of the capability calls made by the executed code: the first and the last (`agent.contract.callsample`), each cut to a preview */
  calls: CallRecord[]
  /** every capability call made, counted by name */
  call_counts: Record<string, number>
  /** calls left out of `calls` (counted in `call_counts`) */
  calls_dropped: number
  /** ids of strokes the run added (undo erases these) */
  strokes: string[]
  erased: string[]
  /** ids of texts and buttons the run placed (undo removes these) */
  widgets: string[]
  /** stroke ids left out of `strokes`/`erased` to keep the record under its byte limit (undo still erases every stroke the run drew: it reads the run's tag in the room) */
  ids_dropped: number
  tokens: Tokens
  model: string | null
  reply: string | null
  errors: string[]
  undone: boolean
  created: number
  started: number | null
  finished: number | null
}

/** One entry of `GET /rooms/{name}/runs`: a run without its code and calls, its texts cut to previews. */
export interface RunSummary {
  id: string
  room: string
  status: "queued" | "running" | "done" | "failed"
  prompt: string
  author: string
  grant: "read" | "write"
  source: "chat" | "http" | "cli" | "mcp" | "behaviour"
  /** the first 50 ids of strokes the run added */
  strokes: string[]
  /** how many strokes the run added */
  drawn: number
  /** how many capability calls it made */
  calls: number
  tokens: Tokens
  /** its last 3 errors */
  errors: string[]
  undone: boolean
  created: number
  finished: number | null
  reply: string | null
}

/**
 * `GET /rooms/{name}/runs[?limit=N&before=RUN]`: the newest `limit` runs (older than run
 * `before`), oldest first.
 */
export interface RunList {
  runs: RunSummary[]
  /** more runs are older than these: pass this as `before` for them (absent: none) */
  next: string | null
}

/** `POST /rooms/{name}/runs/{id}/undo`: the strokes it erased. */
export interface UndoResult {
  run: string
  erased: string[]
}

/** A schedule: fire every `every` seconds, whether or not anyone is in the room. */
export interface Every {
  /** seconds between firings, at least 5 */
  every: number
}

/** A chat line as a firing sees it (`author` is the display name the line carries). */
export interface MessageView {
  /** the display name the line carries (its writer chose it); `event.actor` is who wrote it as the server knows */
  author: string
  kind: "human" | "agent"
  text: string
  t: number
}

/** The button a press was on, as the firing sees it. */
export interface PressedWidget {
  id: string
  type: "text" | "button"
  /** its label */
  text: string
  x: number
  y: number
}

/** An event as a firing record keeps it: stroke ids instead of stroke views. */
export interface FiredEvent {
  type: "install" | "stroke" | "erase" | "message" | "join" | "leave" | "press" | "every"
  t: number
  by: string | null
  /** who caused it, as the server knows them (the latest, when events were merged) */
  actor: { id?: string | null; name: string; kind?: "human" | "agent" | "behaviour" | "mcp"; role: "view" | "edit" } | null
  strokes: string[]
  erased: string[]
  message: MessageView | null
  /** press: the button pressed */
  widget: PressedWidget | null
  count: number
  dropped: number
}

export interface Writes {
  /** ids of strokes it drew (undo erases these) */
  drawn: string[]
  erased: string[]
  said: string[]
  /** ids of texts and buttons it placed (undo removes these) */
  placed: string[]
  /** ids of texts and buttons it erased */
  removed: string[]
}

/**
 * A firing's run record: with the behaviour's code of `version`, the room's strokes and
 * these inputs (event, state before, seed, clock), it replays to the same writes.
 */
export interface Firing {
  kind: "behaviour"
  id: string
  behaviour: string
  room: string
  version: number
  event: FiredEvent
  state_before: Record<string, any>
  seed: number
  clock_ms: number
  /** firings of behaviours in a row since a person (or a schedule) acted */
  depth: number
  /** what it could do to the room: write, or read (canvas.draw/erase/say unavailable) */
  grant: "read" | "write"
  /** why its grant was read, if it was (e.g. a viewer caused it) */
  read_only: string | null
  ok: boolean
  error: { kind: "syntax" | "js" | "timeout" | "memory" | "stack" | "output" | "capability" | "quota" | "internal"; message: string; stack?: string } | null
  result: any
  console: string[]
  /** a sample of its capability calls: the first and the last (`agent.contract.callsample`), each cut to a preview */
  calls: CallRecord[]
  /** every capability call it made, counted by name */
  call_counts: Record<string, number>
  /** calls left out of `calls` (counted in `call_counts`) */
  calls_dropped: number
  writes: Writes
  /** the reason it gave to behaviour.stop() */
  stopped: string | null
  /** what it asked the model with behaviour.ask() */
  asked: string | null
  /** wall time of the sandbox run */
  ms: number
  /** CPU time of the sandbox run: what the behaviour's and its link's CPU budgets were charged */
  cpu_ms: number
  /** ms since the Unix epoch when it started (its clock reads `clock_ms`, the event's time) */
  started: number
  undone: boolean
}

/** One firing, in a line: when, why, whether it worked, what it wrote. */
export interface FiringSummary {
  id: string
  type: "install" | "stroke" | "erase" | "message" | "join" | "leave" | "press" | "every"
  t: number
  ok: boolean
  grant: "read" | "write"
  error: string | null
  drawn: number
  erased: number
  said: number
  ms: number
  undone: boolean
}

/** One entry of `GET /rooms/{name}/behaviours`. */
export interface BehaviourSummary {
  id: string
  room: string
  name: string
  on: ("stroke" | "erase" | "message" | "join" | "leave" | "press" | Every)[]
  version: number
  status: "active" | "paused" | "stopped" | "failed"
  reason: string | null
  state: Record<string, any>
  /** who installed it (the link's label) */
  installer: string
  /** anyone may trigger it with write: a firing caused by a viewer acts with the installer's grant (without it, such a firing is read-only) */
  anyone: boolean
  run: string | null
  firings: number
  failures: number
  last: FiringSummary | null
  created: number
  updated: number
}

/** `GET /rooms/{name}/behaviours`, oldest first. */
export interface BehaviourList {
  behaviours: BehaviourSummary[]
}

/** `GET /rooms/{name}/behaviours/{id}`: the behaviour, its code and its recent firings (newest first). */
export interface BehaviourDetail {
  behaviour: BehaviourSummary
  code: string
  firings: Firing[]
}

/** `DELETE /rooms/{name}/behaviours/{id}`. */
export interface BehaviourRemoved {
  id: string
  removed: boolean
}

/** `POST /rooms/{name}/widgets/{id}/press`: the press was taken; the behaviour fires (its writes arrive in the room). */
export interface PressAccepted {
  ok: boolean
}

/** One kept version of a room. */
export interface VersionInfo {
  id: number
  saved_ms: number
  strokes: number
}

/** `GET /rooms/{name}/versions`: newest first. */
export interface VersionsResponse {
  room: string
  versions: VersionInfo[]
}

/** `POST /rooms/{name}/versions/{id}/restore`: how many strokes and widgets came back (saved). */
export interface RestoreResponse {
  room: string
  version: number
  restored: number
  /** widgets (text, buttons) that came back: fewer than were missing if the room's widget bound was reached */
  widgets: number
}

/** Every refusal (4xx/5xx): a message a person can act on; 429 and 503 may also say when to ask again. */
export interface ApiError {
  error: string
  /** seconds to wait before asking again (also the `Retry-After` header) */
  retry_after?: number
}

/**
 * `GET /rooms/{name}/strokes[?limit=N&after=CURSOR]`: the strokes oldest first (by `t`, then `id`).
 * Streamed from the room's strokes encoded once (`server.reads`).
 */
export interface StrokesResponse {
  room: string
  strokes: Stroke[]
  /** with `limit`, when more strokes follow: pass it as `after` for the next page */
  next?: string
}
