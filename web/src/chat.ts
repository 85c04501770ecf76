// Chat & agent panel: the messages list (with a run card under each run's first message)
// and the prompt box. "@agent ..." goes to the server's prompt endpoint; the rest is chat.
import type * as Y from 'yjs'
import type { PageConfig } from './config'
import type { Message } from './types.gen'
import type { StrokeStore } from './store'
import { isMessage } from './schema'
import { messagesOf, postMessage } from './ops'
import { sendPrompt } from './api'
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
  me: () => { name: string }
}

const AGENT_RE = /^@agent\b/i
const fmtTime = (t: number) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })

export function mountChat(d: Deps) {
  const { doc, list, form, input } = d
  const msgs = messagesOf(doc)
  let readOnly = false
  const runs = createRunCards({ cfg: d.cfg, store: d.store, readOnly: () => readOnly })

  // ---- messages ---------------------------------------------------------
  const render = () => {
    const seenRuns = new Set<string>()
    const items: HTMLElement[] = []
    for (const m of msgs.toArray()) {
      if (!isMessage(m)) continue
      items.push(messageEl(m, seenRuns))
    }
    if (items.length === 0) {
      const li = document.createElement('li')
      li.className = 'empty'
      li.innerHTML = `<p>No messages yet.</p><p>Say hi, or try <code>@agent draw a house</code>.</p>`
      items.push(li)
    }
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40
    list.replaceChildren(...items)
    if (atBottom) list.scrollTop = list.scrollHeight
  }

  const messageEl = (m: Message, seenRuns: Set<string>) => {
    const li = document.createElement('li')
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
    if (typeof m.t === 'number') { const t = document.createElement('time'); t.textContent = fmtTime(m.t); head.append(t) }
    const body = document.createElement('div')
    body.className = 'text'
    body.dataset.testid = 'message-text'
    body.textContent = m.text
    li.append(head, body)
    if (m.run && !seenRuns.has(m.run)) {
      seenRuns.add(m.run)
      li.append(runs.card(m.run))
    } else if (m.run && agent) {
      runs.refresh(m.run) // a later agent message about the run: its status changed
    }
    return li
  }

  msgs.observe(render)
  render()

  // ---- prompt box -------------------------------------------------------
  const submit = async () => {
    const text = input.value.trim()
    if (!text) return
    // Viewers may still ask the agent: the server grants such a run read-only access.
    if (readOnly && !AGENT_RE.test(text)) { input.placeholder = 'View only — only @agent questions can be sent'; return }
    input.value = ''
    const author = d.me().name
    if (!AGENT_RE.test(text)) { postMessage(doc, { author, kind: 'human', text }); return }
    form.classList.add('sending')
    const r = await sendPrompt(d.cfg, { text, author })
    form.classList.remove('sending')
    // On success the agent echoes the prompt into 'messages' (with its run id) itself.
    // Without an agent (or a server), the prompt is kept as a plain chat message.
    if (!r.ok && !readOnly) {
      if (![0, 404, 405].includes(r.status)) console.warn('inhabit: prompt endpoint answered', r.status)
      postMessage(doc, { author, kind: 'human', text })
    }
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); submit() })

  return {
    /** Send what is in the prompt box (Enter; see shortcuts.ts). */
    submit,
    setReadOnly(ro: boolean) {
      readOnly = ro
      input.placeholder = ro ? 'View only — ask @agent a question (it may read, not draw)' : 'Chat, or type @agent to ask the agent to draw…'
      runs.renderAll()
    },
  }
}
