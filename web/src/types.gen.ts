// GENERATED from the pydantic models by `python -m inhabit.typegen` — do not edit
// (Written by hand until that generator lands; it will overwrite this file.)
//
// Sources: canvas/schema.py (document), server/app.py (HTTP), agent/runs.py and
// agent/sandbox/models.py (agent runs), agent/plugin.py (agent HTTP).

/** Root `Y.Map` of the room document: stroke id -> Stroke. */
export const STROKES = 'strokes'
/** Root `Y.Array` of the room document: chat entries, oldest first. */
export const MESSAGES = 'messages'
/** Points in one stroke. Long pen strokes are split by the client well before this. */
export const MAX_POINTS = 10000

/** One pen stroke: a polyline of (x, y, pressure) triplets in canvas units. */
export interface Stroke {
  id: string
  /** flat [x0, y0, p0, x1, y1, p1, ...] */
  points: number[]
  color: string
  width: number
  author: string
  kind: 'human' | 'agent'
  run?: string
  t: number
}

/** A chat entry: people's prompts, agents' status lines and replies. */
export interface Message {
  id: string
  author: string
  kind: 'human' | 'agent'
  text: string
  t: number
  run?: string
}

/** GET /rooms/{name}/strokes */
export interface StrokesResponse {
  room: string
  strokes: Stroke[]
}

/** GET /rooms/{name}/whoami */
export interface WhoAmI {
  room: string
  role: 'view' | 'edit'
}

/** POST /rooms/{name}/prompts (body) */
export interface PromptRequest {
  text: string
  author?: string
}

/** POST /rooms/{name}/prompts (202 answer) */
export interface PromptAccepted {
  run: string
  grant: 'read' | 'write'
}

/** One capability call made by a run's code (args/result may be cut to a string preview). */
export interface CallRecord {
  name: string
  args: unknown
  result: unknown
  ms: number
  error: string | null
}

export interface Tokens {
  input: number
  output: number
  turns: number
}

/** GET /rooms/{name}/runs/{id}: everything one prompt made the agent do. */
export interface AgentRun {
  id: string
  room: string
  status: 'queued' | 'running' | 'done' | 'failed'
  prompt: string
  author: string
  grant: 'read' | 'write'
  source: 'chat' | 'http' | 'cli'
  /** every JavaScript program executed, in order */
  code: string[]
  /** capability calls made by the executed code */
  calls: CallRecord[]
  /** ids of strokes the run added (undo erases these) */
  strokes: string[]
  erased: string[]
  tokens: Tokens
  model: string | null
  reply: string | null
  errors: string[]
  undone: boolean
  created: number
  started: number | null
  finished: number | null
}

/** One entry of GET /rooms/{name}/runs: AgentRun without code, calls, erased, model, started. */
export interface RunSummary {
  id: string
  room: string
  status: 'queued' | 'running' | 'done' | 'failed'
  prompt: string
  author: string
  grant: 'read' | 'write'
  source: 'chat' | 'http' | 'cli'
  strokes: string[]
  tokens: Tokens
  errors: string[]
  undone: boolean
  created: number
  finished: number | null
  reply: string | null
}

/** GET /rooms/{name}/runs */
export interface RunList {
  runs: RunSummary[]
}

/** POST /rooms/{name}/runs/{id}/undo */
export interface UndoResult {
  run: string
  erased: string[]
}
