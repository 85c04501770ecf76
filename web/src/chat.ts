// Chat & agent panel: the messages list (with a run card under each run's first shown message)
// and the prompt box. "@agent ..." goes to the server's prompt endpoint; the rest is chat.
//
// The list is incremental and windowed: appended messages are appended (the usual case), any
// other change re-renders the window, and only the last WINDOW messages are in the DOM ("Show
// earlier" widens it). A room with thousands of messages opens as fast as one with a few.
//
// The server keeps only the newest lines in the document (older ones go to its store): once the
// whole document is shown, "Show older messages" pages them in from GET /rooms/NAME/chat. An
// editor can clear the room's chat (POST /rooms/NAME/chat/clear); a line of ours the server
// removed at once was past this link's chat rate, and a notice says so.
import type * as Y from 'yjs'
import type { PageConfig } from './config'
import type { Message } from './types.gen'
import type { StrokeStore } from './store'
import { isMessage } from './schema'
import { messagesOf, postMessage } from './ops'
import { clearChat, olderChat, sendPrompt, type Refusal } from './api'
import { createRunCards } from './runCards'
import { initials } from './identity'
import { ROBOT } from './icons'

interface Deps {
  doc: Y.Doc
  cfg: PageConfig
  store: StrokeStore
  list: HTMLOListElement
  input: HTMLTextAreaElement
  form: HTMLFormElement
  /** "Clear chat", shown to editors. */
  clearBtn: HTMLButtonElement
  me: () => { name: string }
}

/** Messages kept in the DOM at first, and how many more each "Show earlier" adds. */
export const WINDOW = 300
const MORE = 300
/** Least time between two re-renders of the whole window. */
const REBUILD_MS = 50
/** Server refusals kept as lines at the end of the list. */
const NOTICES = 5
/** Older lines fetched per "Show older messages". */
const OLDER_PAGE = 50
/** A line of ours deleted within this long of being sent was refused by the server's chat rate. */
const REFUSED_MS = 5000

const AGENT_RE = /^@agent\b/i
const fmtTime = (t: number) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })

type Delta = Array<{ insert?: unknown[] | string; delete?: number; retain?: number }>

/** The inserted items if `delta` only appends to an array that had `before` items, else null. */
function appended(delta: Delta, before: number): unknown[] | null {
  const [a, b] = delta
  if (delta.length === 1 && before === 0 && Array.isArray(a?.insert)) return a.insert
  if (delta.length === 2 && a?.retain === before && Array.isArray(b?.insert)) return b.insert
  return null
}

export function mountChat(d: Deps) {
  const { doc, list, form, input } = d
  const msgs = messagesOf(doc)
  let readOnly = false
  const runs = createRunCards({ cfg: d.cfg, store: d.store, readOnly: () => readOnly })

  // ---- messages ---------------------------------------------------------
  let limit = WINDOW
  let shown: HTMLElement[] = [] // message elements in the DOM, oldest first
  let withCard = new Set<string>() // runs whose card is under a shown message
  const notices: HTMLElement[] = []
  const earlier = document.createElement('li')
  earlier.className = 'earlier'
  const earlierBtn = document.createElement('button')
  earlierBtn.dataset.testid = 'show-earlier'
  earlierBtn.onclick = () => { limit += MORE; rebuild() }
  earlier.append(earlierBtn)
  // older lines from the server's store, above the document's
  let olderEls: HTMLElement[] = []
  let olderBefore: number | null | undefined // the next page's cursor; undefined: none fetched, null: no more
  const older = document.createElement('li')
  older.className = 'earlier'
  const olderBtn = document.createElement('button')
  olderBtn.dataset.testid = 'show-older'
  olderBtn.textContent = 'Show older messages'
  older.append(olderBtn)
  const forgetOlder = () => { olderEls = []; olderBefore = undefined }
  olderBtn.onclick = async () => {
    olderBtn.disabled = true
    const r = await olderChat(d.cfg, olderBefore ?? null, OLDER_PAGE)
    olderBtn.disabled = false
    if (!r.ok) { notice(`Older messages not loaded: ${r.error || `HTTP ${r.status}`}`); return }
    const els = r.value.messages.map((line) => messageEl(line.message, false))
    els.forEach((li) => li.classList.add('older'))
    olderEls = [...els, ...olderEls]
    olderBefore = r.value.before
    const top = list.scrollHeight - list.scrollTop
    list.replaceChildren(...header(Math.max(0, msgs.length - limit)), ...shown, ...notices)
    list.scrollTop = list.scrollHeight - top // keep what was in view where it was
  }
  /** The list's head: "Show older" and the older lines (once the whole document is shown), or "Show earlier". */
  const header = (hidden: number): HTMLElement[] => {
    older.hidden = hidden > 0 || olderBefore === null
    if (hidden > 0) olderEls = []
    return [older, ...olderEls, earlier]
  }

  // A reader at the bottom of the chat stays there: across an append or a rebuild, and when
  // anything shown grows later (a run card filling in once its run is fetched, the behaviours
  // list above taking room from this one). Scrolling up unsticks it; scrolling back down sticks.
  const nearBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 40
  let stuck = true
  list.addEventListener('scroll', () => { stuck = nearBottom() }, { passive: true })
  const follow = () => { if (stuck) list.scrollTop = list.scrollHeight }
  new ResizeObserver(follow).observe(list)
  new MutationObserver(follow).observe(list, { childList: true, subtree: true, characterData: true, attributes: true })

  /** Keep the list scrolled to the bottom across a change if it was there before. */
  const keepingBottom = (change: () => void) => {
    const atBottom = stuck || nearBottom()
    change()
    if (atBottom) { stuck = true; list.scrollTop = list.scrollHeight }
  }

  const showEarlier = (hidden: number) => {
    earlier.hidden = hidden <= 0
    earlierBtn.textContent = `Show earlier messages (${hidden} more)`
  }

  /** Re-render the last `limit` messages (initial load, deletions, inserts in the middle). */
  const rebuild = () => keepingBottom(() => {
    const start = Math.max(0, msgs.length - limit)
    withCard = new Set()
    shown = []
    for (const m of msgs.slice(start)) if (isMessage(m)) shown.push(messageEl(m))
    showEarlier(start)
    const empty = shown.length === 0 && start === 0 && !olderEls.length ? [emptyEl()] : []
    list.replaceChildren(...header(start), ...empty, ...shown, ...notices)
    runs.retain(withCard)
    if (withCard.size) runs.refresh()
  })

  /** Append new messages, dropping the oldest shown ones past `limit`. */
  const append = (items: unknown[]) => keepingBottom(() => {
    list.querySelector(':scope > .empty')?.remove()
    const first = notices.find((n) => n.isConnected) ?? null
    for (const m of items) {
      if (!isMessage(m)) continue
      const li = messageEl(m)
      list.insertBefore(li, first)
      shown.push(li)
      if (m.run && !m.behaviour) runs.refresh()
    }
    const drop = shown.length - limit
    if (drop > 0) {
      for (const li of shown.splice(0, drop)) {
        li.remove()
        const card = li.querySelector<HTMLElement>(':scope > .run')
        if (card) withCard.delete(card.dataset.runId!)
      }
      runs.retain(withCard)
    }
    showEarlier(msgs.length - shown.length)
    if (msgs.length - shown.length > 0 && olderEls.length) { for (const li of olderEls) li.remove(); forgetOlder(); older.hidden = true }
  })

  const emptyEl = () => {
    const li = document.createElement('li')
    li.className = 'empty'
    li.innerHTML = `<p>No messages yet.</p><p>Say hi, or try <code>@agent draw a house</code>.</p>`
    return li
  }

  const messageEl = (m: Message, cards = true) => {
    const li = document.createElement('li')
    // The server rewrites a line claiming kind 'agent' (or a behaviour) unless one of its own peers
    // wrote it (SCHEMA.md, messages), so the badge below is the server's word, not the writer's.
    const agent = m.kind === 'agent'
    li.className = 'msg' + (agent ? ' agent' : '') + (m.author === d.me().name ? ' mine' : '')
    li.dataset.testid = 'message'
    li.dataset.kind = agent ? 'agent' : 'human'
    if (m.run) li.dataset.run = m.run
    const head = document.createElement('div')
    head.className = 'msg-head'
    const av = document.createElement('span')
    av.className = 'mini-avatar'
    if (agent) av.innerHTML = ROBOT; else av.textContent = initials(m.author)
    const name = document.createElement('span')
    name.className = 'author'
    name.textContent = m.author
    head.append(av, name)
    if (agent) { const b = document.createElement('span'); b.className = 'badge'; b.textContent = 'agent'; head.append(b) }
    if (typeof m.t === 'number' && Number.isFinite(m.t)) { const t = document.createElement('time'); t.textContent = fmtTime(m.t); head.append(t) }
    const body = document.createElement('div')
    body.className = 'text'
    body.dataset.testid = 'message-text'
    body.textContent = m.text
    li.append(head, body)
    if (m.behaviour) li.dataset.behaviour = m.behaviour // a behaviour's line: its card is in the Behaviours list
    else if (cards && m.run && !withCard.has(m.run)) {
      withCard.add(m.run)
      li.append(runs.card(m.run))
    }
    return li
  }

  /** A line from the page itself (not in the document): why the server refused something. */
  const notice = (text: string) => keepingBottom(() => {
    const li = document.createElement('li')
    li.className = 'notice'
    li.dataset.testid = 'chat-notice'
    li.setAttribute('role', 'status')
    li.textContent = text
    notices.push(li)
    if (notices.length > NOTICES) notices.shift()!.remove()
    list.append(li)
  })

  // Appends are applied at once; anything else re-renders the window, at most once per
  // REBUILD_MS (a peer deleting and inserting hundreds of times a second must not freeze us).
  let length = msgs.length
  let rebuildTimer = 0
  const sent = new Map<string, number>() // ids of our recent lines -> when sent
  msgs.observe((ev) => {
    const added = appended(ev.changes.delta as Delta, length)
    length = msgs.length
    if (!added && sent.size) noticeRefused(ev.changes.deleted)
    if (rebuildTimer) return // the queued rebuild will show this change too
    if (added && added.length < limit) append(added)
    else {
      forgetOlder() // lines left the document for the store (or were cleared): fetch them afresh
      rebuildTimer = window.setTimeout(() => { rebuildTimer = 0; rebuild() }, REBUILD_MS)
    }
  })
  /** A line we sent a moment ago, deleted: the server refused it (this link's chat rate). */
  const noticeRefused = (deleted: Set<Y.Item>) => {
    const now = Date.now()
    for (const [id, t] of sent) if (now - t > REFUSED_MS) sent.delete(id)
    let refused = 0
    for (const item of deleted) {
      for (const m of item.content.getContent()) {
        const id = isMessage(m) ? m.id : undefined
        if (id && sent.delete(id)) refused++
      }
    }
    if (refused) notice(`Message not sent: you are writing faster than this room allows. Wait a moment and try again.`)
  }
  rebuild()

  // ---- prompt box -------------------------------------------------------
  const submit = async () => {
    const text = input.value.trim()
    if (!text) return
    // Viewers may still ask the agent: the server grants such a run read-only access.
    if (readOnly && !AGENT_RE.test(text)) { input.placeholder = 'View only — only @agent questions can be sent'; return }
    input.value = ''
    const author = d.me().name
    if (!AGENT_RE.test(text)) { sent.set(postMessage(doc, { author, kind: 'human', text }).id, Date.now()); return }
    form.classList.add('sending')
    const r = await sendPrompt(d.cfg, { text, author })
    form.classList.remove('sending')
    if (r.ok) return // the agent echoes the prompt into 'messages' (with its run id) itself
    if ([0, 404, 405].includes(r.status)) {
      // Without an agent (or a server), the prompt is kept as a plain chat message.
      if (!readOnly) postMessage(doc, { author, kind: 'human', text })
      return
    }
    notice(refusalText(r))
    if (!input.value) input.value = text // nothing lost: send it again when allowed
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); submit() })

  // ---- clearing the chat (editors) --------------------------------------
  let editor = false
  const showClear = () => { d.clearBtn.hidden = readOnly || !editor }
  d.clearBtn.onclick = async () => {
    if (!window.confirm('Delete every chat line in this room, for everyone?')) return
    d.clearBtn.disabled = true
    const r = await clearChat(d.cfg)
    d.clearBtn.disabled = false
    if (!r.ok) notice(`Chat not cleared: ${r.error || `HTTP ${r.status}`}`)
  }

  return {
    /** Send what is in the prompt box (Enter; see shortcuts.ts). */
    submit,
    notice,
    setReadOnly(ro: boolean) {
      readOnly = ro
      input.placeholder = ro ? 'View only — ask @agent a question (it may read, not draw)' : 'Chat, or type @agent to ask the agent to draw…'
      runs.renderAll()
      showClear()
    },
    /** This link may edit the room (whoami said so): it may clear the chat. */
    setEditor(ok: boolean) { editor = ok; showClear() },
    /** Messages in the DOM (for the debug stats). */
    shownCount: () => shown.length,
  }
}

/** "Prompt not sent: too many prompts… Try again in 20 s." (429 carries Retry-After). */
function refusalText(r: Refusal): string {
  const why = r.error || (r.status === 429 ? 'too many prompts right now' : `the server answered HTTP ${r.status}`)
  const wait = r.retryAfter ? ` Try again in ${Math.ceil(r.retryAfter)} s.` : ''
  return `Prompt not sent: ${why.replace(/\.?$/, '.')}${wait}`
}
