// The page: Microsoft Web Chat on this local Direct Line channel, and the "another system" panel.
// Each tab is one user (kept in sessionStorage, so a reload resumes the same conversation).
'use strict';

const DIRECT_LINE = `${location.origin}/v3/directline`;
const NAMES = ['Ada', 'Grace', 'Alan', 'Barbara', 'Dennis', 'Frances', 'Ken', 'Margaret', 'Linus', 'Radia'];

function tabUser() {
  const requested = new URLSearchParams(location.search).get('name');
  let user = JSON.parse(sessionStorage.getItem('user') || 'null');
  if (!user) {
    const suffix = Math.random().toString(16).slice(2, 10);
    // Not "dl_...": Direct Line reserves that prefix for ids it makes up itself.
    user = { id: `user-${suffix}`, name: NAMES[parseInt(suffix.slice(0, 4), 16) % NAMES.length] };
  }
  if (requested) user.name = requested;
  sessionStorage.setItem('user', JSON.stringify(user));
  return user;
}

async function post(url, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  let payload = null;
  try { payload = await response.json(); } catch (_) { /* empty or not JSON */ }
  return { ok: response.ok, status: response.status, payload };
}

// Resume this tab's conversation if the channel still knows it, else open a new one.
async function connect(user, timeZone, locale) {
  const saved = JSON.parse(sessionStorage.getItem('conversation') || 'null');
  if (saved) {
    const check = await fetch(`${DIRECT_LINE}/conversations/${encodeURIComponent(saved.conversationId)}`, {
      headers: { Authorization: `Bearer ${saved.token}` }
    });
    if (check.ok) return { ...saved, resume: true };
  }
  const generated = await post(`${DIRECT_LINE}/tokens/generate`, { user, locale, localTimezone: timeZone });
  if (!generated.ok) throw new Error(`tokens/generate answered ${generated.status}`);
  const conversation = { conversationId: generated.payload.conversationId, token: generated.payload.token };
  sessionStorage.setItem('conversation', JSON.stringify(conversation));
  return { ...conversation, resume: false };
}

function log(text, kind) {
  const item = document.createElement('li');
  const time = document.createElement('span');
  time.className = 'time';
  time.textContent = new Date().toLocaleTimeString();
  const body = document.createElement('span');
  body.textContent = text;
  if (kind) body.className = kind;
  item.append(time, body);
  const list = document.getElementById('log');
  list.prepend(item);
}

function describeReceipt(receipt) {
  if (receipt.via === 'queue') {
    return `queued on "${receipt.detail.queue}" as ${receipt.id}; no status from a queue, watch the chat`;
  }
  const detail = receipt.detail && typeof receipt.detail === 'object' ? JSON.stringify(receipt.detail) : receipt.detail;
  return `${receipt.status} from the front door for ${receipt.id}: ${detail || '(empty)'}`;
}

// The front door reports delivery per recipient: follow it until the notification is done.
function summarize(status) {
  if (!status || !status.counts) return JSON.stringify(status);
  const c = status.counts;
  const more = ['read', 'updated', 'recalled', 'cancelled', 'expired', 'unsupported']
    .filter(name => c[name]).map(name => `, ${c[name]} ${name}`).join('');
  return `${status.state}: ${c.sent} sent, ${c.failed} failed, ${c.gone} gone, ${c.skipped} skipped${more}, ` +
    `${c.pending} pending of ${c.recipients}` + (c.throttledRetries ? `, ${c.throttledRetries} throttled retries` : '') +
    (status.state === 'scheduled' ? ` (not before ${status.notBefore}; run the timer after that)` : '') +
    (c.unsupported ? ' (this channel cannot edit or delete sent messages)' : '') +
    (status.note ? ` (${status.note})` : '');
}

// One follower per notification; a newer call (after an edit or a recall) takes over.
const following = new Map();

async function followStatus(id) {
  const mine = (following.get(id) || 0) + 1;
  following.set(id, mine);
  let last = '';
  for (let attempt = 0; attempt < 60 && following.get(id) === mine; attempt += 1) {
    await new Promise(resolve => setTimeout(resolve, 500));
    const response = await fetch(`/panel/notifications/${encodeURIComponent(id)}`);
    if (response.status === 404) return;
    const receipt = await response.json();
    const line = summarize(receipt.detail);
    if (line !== last) log(`status of ${id}: ${line}`, receipt.accepted ? 'ok' : 'failed');
    last = line;
    const status = receipt.detail || {};
    const counts = status.counts || {};
    // Done, and read wherever it is shown (read receipts arrive once the page has shown it).
    const settled = ['done', 'cancelled'].includes(status.state) && !counts.pending;
    if (settled && (status.state === 'cancelled' || counts.read >= counts.sent)) return;
  }
}

function setUpPanel(user) {
  const text = document.getElementById('notification-text');
  const buttons = {
    me: document.getElementById('send-me'),
    everyone: document.getElementById('send-everyone'),
    later: document.getElementById('send-later'),
    edit: document.getElementById('edit-last'),
    recall: document.getElementById('recall-last'),
    timer: document.getElementById('run-timer')
  };
  let lastId = null;
  async function send(button, audience, delaySeconds) {
    buttons[button].disabled = true;
    try {
      const body = { audience, userId: user.id, text: text.value };
      if (delaySeconds) body.delaySeconds = delaySeconds;
      const result = await post('/panel/notifications', body);
      if (!result.ok) {
        log(`notification to ${audience} not sent: ${(result.payload && result.payload.error) || result.status}`, 'failed');
        return;
      }
      log(`notification to ${audience}: ${describeReceipt(result.payload)}`, 'ok');
      if (result.payload.via !== 'queue') {
        lastId = result.payload.id;
        document.getElementById('last-notification').textContent = `Last notification: ${lastId}`;
        buttons.edit.disabled = buttons.recall.disabled = false;
        followStatus(result.payload.id);
      }
    } catch (error) {
      log(`notification to ${audience} not sent: ${error}`, 'failed');
    } finally {
      buttons[button].disabled = false;
    }
  }
  async function change(button, method, body) {
    if (!lastId) return;
    buttons[button].disabled = true;
    try {
      const response = await fetch(`/panel/notifications/${encodeURIComponent(lastId)}`, {
        method, headers: { 'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : undefined
      });
      let payload = null;
      try { payload = await response.json(); } catch (_) { /* empty */ }
      const what = method === 'PATCH' ? 'edit' : 'recall';
      if (!response.ok) {
        log(`${what} of ${lastId} not done: ${(payload && (payload.error || JSON.stringify(payload.detail))) || response.status}`, 'failed');
        return;
      }
      log(`${what} of ${lastId}: ${payload.status} from the front door`, 'ok');
      followStatus(lastId);
    } finally {
      buttons[button].disabled = false;
    }
  }
  buttons.me.addEventListener('click', () => send('me', 'me'));
  buttons.everyone.addEventListener('click', () => send('everyone', 'everyone'));
  buttons.later.addEventListener('click', () => send('later', 'me', 60));
  buttons.edit.addEventListener('click', () => change('edit', 'PATCH', { text: text.value }));
  buttons.recall.addEventListener('click', () => change('recall', 'DELETE'));
  buttons.timer.addEventListener('click', async () => {
    buttons.timer.disabled = true;
    try {
      const result = await post('/panel/timer', {});
      log(result.ok ? `timer run started (host answered ${result.payload.status})`
                    : `timer not run: ${(result.payload && result.payload.error) || result.status}`,
          result.ok ? 'ok' : 'failed');
    } finally {
      buttons.timer.disabled = false;
    }
  });
}

// What the page adds to Web Chat's store: a recalled message leaves the transcript (the channel
// sends a messageDelete of its id), and a shown message of the bot is acknowledged with a read
// receipt, the event Teams sends in personal chats.
const READ_RECEIPT = 'application/vnd.microsoft.readReceipt';

function storeMiddleware() {
  let pending = null;
  return ({ dispatch }) => next => action => {
    if (action.type === 'DIRECT_LINE/INCOMING_ACTIVITY') {
      const activity = action.payload.activity;
      if (activity.type === 'messageDelete') {
        return next({ type: 'DIRECT_LINE/DELETE_ACTIVITY', payload: { activityID: activity.id } });
      }
      if (activity.type === 'message' && activity.from && activity.from.role === 'bot') {
        const result = next(action);
        clearTimeout(pending);
        // Once it has been on screen a moment; the latest covers every earlier one.
        pending = setTimeout(() => {
          if (document.visibilityState !== 'visible') return;
          dispatch({ type: 'WEB_CHAT/SEND_EVENT', payload: { name: READ_RECEIPT, value: { lastReadMessageId: activity.id } } });
        }, 300);
        return result;
      }
    }
    return next(action);
  };
}

// The language the page speaks and tells the bot (every activity's `locale`): the one chosen in
// the header (kept for this tab), else the browser's. The bot answers in it from the next message.
function chosenLocale() {
  return sessionStorage.getItem('locale') || navigator.language || 'en-US';
}

async function main() {
  const user = tabUser();
  const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  let locale = chosenLocale();
  document.getElementById('who').textContent = `You are ${user.name} (${user.id}), time zone ${timeZone}`;
  setUpPanel(user);
  const session = await connect(user, timeZone, locale);
  const directLine = window.WebChat.createDirectLine({
    domain: DIRECT_LINE,
    token: session.token,
    ...(session.resume ? { conversationId: session.conversationId } : {})
  });
  const store = window.WebChat.createStore({}, storeMiddleware());
  const render = () => {
    document.documentElement.lang = locale;
    window.WebChat.renderWebChat(
      {
        directLine,
        store,
        userID: user.id,
        username: user.name,
        locale,
        styleOptions: {
          botAvatarInitials: 'PB',
          userAvatarInitials: user.name.slice(0, 2).toUpperCase(),
          hideUploadButton: true
        }
      },
      document.getElementById('webchat')
    );
  };
  const picker = document.getElementById('language');
  picker.value = sessionStorage.getItem('locale') || '';
  picker.addEventListener('change', () => {
    if (picker.value) sessionStorage.setItem('locale', picker.value);
    else sessionStorage.removeItem('locale');
    locale = chosenLocale();
    render();  // the same conversation: Web Chat's own texts and the next message's locale change
    log(`language: ${locale}`);
  });
  render();
  document.querySelector('#webchat [data-id="webchat-sendbox-input"]')?.focus();
}

main().catch(error => {
  document.getElementById('who').textContent = `Could not connect: ${error.message}`;
  log(`could not connect: ${error}`, 'failed');
});
