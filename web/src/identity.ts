// A visitor's readable random name and colour, remembered in localStorage.
const ADJ = ['Teal', 'Amber', 'Coral', 'Indigo', 'Olive', 'Crimson', 'Saffron', 'Slate', 'Jade', 'Plum',
  'Cobalt', 'Russet', 'Mint', 'Ivory', 'Violet', 'Copper', 'Sky', 'Rose', 'Sage', 'Golden']
const NOUN = ['Otter', 'Heron', 'Fox', 'Lynx', 'Panda', 'Finch', 'Badger', 'Marten', 'Ibis', 'Koala',
  'Raven', 'Gecko', 'Puffin', 'Hare', 'Moth', 'Orca', 'Wren', 'Bison', 'Newt', 'Crane']
const USER_COLORS = ['#e03131', '#d6336c', '#ae3ec9', '#7048e8', '#4263eb', '#1c7ed6',
  '#1098ad', '#0ca678', '#37b24d', '#f59f00', '#f76707']

export interface Identity { name: string; color: string }

const KEY = 'inhabit.identity'
const pick = <T>(a: T[]): T => a[Math.floor(Math.random() * a.length)]!

export function loadIdentity(storage: Storage | null = safeStorage()): Identity {
  try {
    const raw = storage?.getItem(KEY)
    if (raw) {
      const v = JSON.parse(raw)
      if (typeof v?.name === 'string' && /^#[0-9a-f]{6}$/i.test(v?.color)) return v
    }
  } catch { /* fall through */ }
  const id = { name: `${pick(ADJ)} ${pick(NOUN)}`, color: pick(USER_COLORS) }
  try { storage?.setItem(KEY, JSON.stringify(id)) } catch { /* private mode */ }
  return id
}

function safeStorage(): Storage | null {
  try { return window.localStorage } catch { return null }
}

export function initials(name: string): string {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map(w => w[0]!.toUpperCase()).join('')
}
