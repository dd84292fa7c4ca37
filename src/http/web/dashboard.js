// The dashboard's script: reads /api/server, /api/streams and /api/history
// every second and shows them; kicks players and switches inputs with the
// API token once it is given; plays a stream in the page through Media
// Source Extensions from /live/{app}/{name}.mp4. Everything shown from the
// server is set as text, never as HTML.
'use strict';

const REFRESH_MS = 1000;
const REQUEST_TIMEOUT_MS = 4000;
const ENDED_SHOWN_MS = 60000;
const TOKEN_KEY = 'rtmp-server-api-token';

const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  cpu: null, // { seconds, at }: the last CPU reading
  cards: new Map(), // stream key -> its card's elements
  player: null, // the Watch view's player, while one plays
};

// --- Small helpers ---------------------------------------------------------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (name === 'text') node.textContent = value;
    else if (name === 'class') node.className = value;
    else if (name.startsWith('data-')) node.setAttribute(name, value);
    else node[name] = value;
  }
  for (const child of children) {
    if (child != null) node.append(child);
  }
  return node;
}

function bytes(n) {
  if (n == null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
}

function duration(ms) {
  if (ms == null) return '–';
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s %= 86400;
  const h = Math.floor(s / 3600); s %= 3600;
  const m = Math.floor(s / 60); s %= 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

function kbps(k) {
  if (k == null) return '–';
  return k >= 1000 ? (k / 1000).toFixed(2) + ' Mbps' : Math.round(k) + ' kbps';
}

function since(iso) {
  return iso ? duration(Date.now() - Date.parse(iso)) : '–';
}

// A stream key as a URL path: each part encoded.
function keyPath(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}

function notice(text) {
  const box = $('notice');
  box.textContent = text || '';
  box.hidden = !text;
}

// --- The API ---------------------------------------------------------------

async function api(path, options) {
  const headers = {};
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
  try {
    return await fetch(path, { cache: 'no-store', ...options, headers, signal: abort.signal });
  } finally {
    clearTimeout(timer);
  }
}

// Reads a JSON document; null if the server wants the token for it.
async function read(path) {
  const res = await api(path);
  if (res.status === 401 || res.status === 403) return null;
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

// Sends an action; says what came of it.
async function act(method, path, done) {
  try {
    const res = await api(path, { method });
    const body = await res.json().catch(() => ({}));
    if (res.status === 401 || res.status === 403) {
      forgetToken();
      notice('The API token was refused: ' + (body.error || res.status));
    } else if (!res.ok) {
      notice(body.error || `The server answered ${res.status}`);
    } else {
      notice(done);
      refreshSoon();
    }
  } catch (e) {
    notice('The server did not answer.');
  }
}

// --- The token -------------------------------------------------------------

function unlocked() {
  return Boolean(state.token);
}

function showUnlock() {
  $('unlock').textContent = unlocked() ? 'Lock actions' : 'Unlock actions';
  document.body.classList.toggle('unlocked', unlocked());
}

function forgetToken() {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  showUnlock();
}

$('unlock').addEventListener('click', () => {
  if (unlocked()) {
    forgetToken();
    refreshSoon();
    return;
  }
  $('token-form').hidden = false;
  $('unlock').hidden = true;
  $('token-input').focus();
});

$('token-cancel').addEventListener('click', () => {
  $('token-form').hidden = true;
  $('unlock').hidden = false;
});

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token-input').value.trim();
  $('token-input').value = '';
  $('token-form').hidden = true;
  $('unlock').hidden = false;
  if (token) {
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
  }
  showUnlock();
  refreshSoon();
});

// --- Server figures --------------------------------------------------------

function showServer(server, streams) {
  $('version').textContent = 'v' + server.version;
  $('uptime').textContent = duration(server.uptime_ms);
  const process = server.process || {};
  const now = performance.now();
  const cpu = process.cpu_seconds;
  if (state.cpu && cpu >= state.cpu.seconds && now > state.cpu.at) {
    const share = (cpu - state.cpu.seconds) / ((now - state.cpu.at) / 1000);
    $('cpu').textContent = (share * 100).toFixed(1) + ' %';
  }
  state.cpu = cpu == null ? null : { seconds: cpu, at: now };
  $('rss').textContent = bytes(process.rss_bytes);
  const c = server.connections || {};
  $('connections').textContent = c.active ?? '–';
  $('players').textContent = c.subscribers ?? '–';
  const sum = (field) => streams.reduce((total, s) => total + (s[field] || 0), 0);
  $('bandwidth-in').textContent = kbps(sum('bitrate_in_kbps'));
  $('bandwidth-out').textContent = kbps(sum('bitrate_out_kbps'));
  const rtmp = (server.listen || [])[0] || ':1935';
  const port = rtmp.slice(rtmp.lastIndexOf(':') + 1);
  $('publish-url').textContent = `rtmp://${location.hostname}:${port}/live/NAME`;
}

// --- Streams ---------------------------------------------------------------

function videoText(v) {
  if (!v) return 'none';
  const size = v.width && v.height ? ` ${v.width}×${v.height}` : '';
  const fps = v.fps ? ` ${Math.round(v.fps * 100) / 100} fps` : '';
  const profile = v.profile_name ? ` ${v.profile_name}` : '';
  return v.codec.name + profile + size + fps;
}

function audioText(a) {
  if (!a) return 'none';
  const rate = a.sample_rate ? ` ${a.sample_rate / 1000} kHz` : '';
  const channels = a.channels ? (a.channels === 1 ? ' mono' : a.channels === 2 ? ' stereo' : ` ${a.channels} ch`) : '';
  return a.codec.name + rate + channels;
}

function fact(label, value) {
  value.classList.add('value');
  return el('div', {}, el('span', { class: 'label', text: label }), value);
}

function newCard(key) {
  const c = {};
  c.title = el('h3', { class: 'key', text: key });
  c.state = el('span', { class: 'state badge' });
  c.watch = el('button', { type: 'button', text: 'Watch', class: 'watch' });
  c.watch.addEventListener('click', () => { location.hash = 'watch/' + key; });
  c.video = el('span');
  c.audio = el('span');
  c.bitrate = el('span');
  c.uptime = el('span');
  c.count = el('span');
  c.relays = el('span');
  c.recording = el('span');
  c.chart = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  c.chart.setAttribute('class', 'chart');
  c.chart.setAttribute('viewBox', '0 0 100 40');
  c.chart.setAttribute('preserveAspectRatio', 'none');
  c.line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  c.chart.append(c.line);
  c.inputs = el('div', { class: 'inputs' });
  const base = `${location.protocol}//${location.host}`;
  const link = (href) => el('div', {}, el('a', { href, text: href }));
  c.urls = el('details', { class: 'urls' },
    el('summary', { text: 'Play it elsewhere' }),
    link(`${base}/${keyPath(key)}.flv`),
    link(`${base}/live/${keyPath(key)}.mp4`));
  c.players = el('tbody');
  const head = el('tr', {}, ...['Player', 'Address', 'Connected', 'Sent', 'Queue', 'Lag', 'Dropped', '']
    .map((t) => el('th', { text: t })));
  c.root = el('article', { class: 'stream', 'data-key': key },
    el('div', { class: 'row' }, c.title, c.state, el('span', { class: 'spacer' }), c.watch),
    el('div', { class: 'facts' },
      fact('Video', c.video), fact('Audio', c.audio), fact('Bitrate in', c.bitrate),
      fact('Uptime', c.uptime), fact('Players', c.count), fact('Relays', c.relays),
      fact('Recording', c.recording)),
    c.chart, c.inputs, c.urls,
    el('div', { class: 'scroll' }, el('table', { class: 'players' }, el('thead', {}, head), c.players)));
  c.playersShown = '';
  return c;
}

function drawChart(c, history) {
  const points = (history && history.kbps) || [];
  if (points.length < 2) {
    c.line.setAttribute('points', '');
    return;
  }
  const top = Math.max(...points, 1);
  const step = 100 / (points.length - 1);
  c.line.setAttribute('points', points
    .map((k, i) => `${(i * step).toFixed(2)},${(38 - (k / top) * 36).toFixed(2)}`).join(' '));
  c.chart.setAttribute('aria-label', `bitrate of the last ${points.length * history.interval_s} s, up to ${kbps(top)}`);
}

function drawInputs(c, s) {
  c.inputs.replaceChildren();
  if (!s.inputs) return;
  for (const input of s.inputs) {
    const active = input.priority === s.active_input;
    const box = el('span', { class: 'input' + (active ? ' active' : '') },
      `${input.priority}: ${input.source} · ${input.status}${active ? ' · on air' : ''}`);
    if (unlocked() && !active && input.status !== 'idle') {
      const button = el('button', { type: 'button', text: 'Switch' });
      button.addEventListener('click', () =>
        act('POST', `/api/streams/${keyPath(s.key)}/switch?input=${input.priority}`, `Switching ${s.key} to input ${input.priority}.`));
      box.append(' ', button);
    }
    c.inputs.append(box);
  }
  if (unlocked() && s.override_input != null) {
    const auto = el('button', { type: 'button', text: 'Back to automatic' });
    auto.addEventListener('click', () =>
      act('POST', `/api/streams/${keyPath(s.key)}/switch?input=auto`, `${s.key} chooses its input again.`));
    c.inputs.append(auto);
  }
}

function drawPlayers(c, s) {
  const players = s.subscribers || [];
  const shown = JSON.stringify([unlocked(), players.map((p) => [p.id, p.bytes_sent, p.queue_depth, p.lag_ms, p.dropped_messages])]);
  if (shown === c.playersShown) return;
  c.playersShown = shown;
  if (!players.length) {
    c.players.replaceChildren(el('tr', {}, el('td', { class: 'empty', colSpan: 8, text: 'No one is watching.' })));
    return;
  }
  c.players.replaceChildren(...players.map((p) => {
    const kick = unlocked() ? el('button', { type: 'button', text: 'Kick', class: 'danger' }) : null;
    if (kick) kick.addEventListener('click', () => act('DELETE', `/api/clients/${p.id}`, `Player #${p.id} kicked.`));
    return el('tr', {},
      el('td', { text: `#${p.id} ${p.protocol || ''}` }),
      el('td', { text: p.remote_addr || '–' }),
      el('td', { text: since(p.connected_at) }),
      el('td', { text: bytes(p.bytes_sent) }),
      el('td', { text: String(p.queue_depth) }),
      el('td', { text: `${p.lag_ms} ms` }),
      el('td', { text: String(p.dropped_messages) }),
      el('td', {}, kick));
  }));
}

function streamState(s) {
  if (s.publisher) return ['live', 'live'];
  if (s.exhausted) return ['no input', 'waiting'];
  return ['waiting for a publisher', 'waiting'];
}

function showStreams(streams) {
  const seen = new Set();
  for (const s of streams) {
    seen.add(s.key);
    let c = state.cards.get(s.key);
    if (!c) {
      c = newCard(s.key);
      state.cards.set(s.key, c);
      $('streams').append(c.root);
    }
    c.endedAt = null;
    c.root.classList.remove('ended');
    const [text, kind] = streamState(s);
    c.state.textContent = text;
    c.state.className = 'state badge ' + kind;
    c.video.textContent = videoText(s.video);
    c.audio.textContent = audioText(s.audio);
    c.bitrate.textContent = kbps(s.bitrate_in_kbps);
    c.uptime.textContent = s.publisher ? duration(s.publisher.uptime_ms) : '–';
    c.count.textContent = String((s.subscribers || []).length);
    c.relays.textContent = (s.relays || []).length
      ? s.relays.map((r) => `${r.destination} (${r.state})`).join(', ') : 'none';
    c.recording.textContent = s.recording ? `${s.recording.file} (${bytes(s.recording.bytes)})` : 'no';
    drawChart(c, s.bitrate_in_history);
    drawInputs(c, s);
    drawPlayers(c, s);
  }
  // Streams gone since the last reading: shown as ended for a while.
  const now = Date.now();
  for (const [key, c] of state.cards) {
    if (seen.has(key)) continue;
    if (!c.endedAt) {
      c.endedAt = now;
      c.root.classList.add('ended');
      c.state.textContent = 'ended';
      c.state.className = 'state badge ended';
      c.players.replaceChildren();
      c.playersShown = '';
    } else if (now - c.endedAt > ENDED_SHOWN_MS) {
      c.root.remove();
      state.cards.delete(key);
    }
  }
  $('no-streams').hidden = state.cards.size > 0;
}

function showHistory(history) {
  if (!history.length) {
    $('history').tBodies[0].replaceChildren(el('tr', {}, el('td', { class: 'empty', colSpan: 6, text: 'No session has ended yet.' })));
    return;
  }
  $('history').tBodies[0].replaceChildren(...history.map((h) => el('tr', {},
    el('td', { text: h.key }),
    el('td', { text: new Date(h.closed_at).toLocaleTimeString() }),
    el('td', { text: duration(h.duration_ms) }),
    el('td', { text: h.reason.replace(/_/g, ' ') }),
    el('td', { text: String(h.peak_subscribers) }),
    el('td', { text: bytes(h.bytes_in) }))));
}

// --- Refreshing ------------------------------------------------------------

let refreshTimer = null;

function reachable(yes) {
  $('banner').hidden = yes;
  $('reachability').textContent = yes ? 'connected' : 'unreachable';
  $('reachability').className = 'badge ' + (yes ? 'ok' : 'bad');
  document.body.classList.toggle('disconnected', !yes);
}

async function refresh() {
  clearTimeout(refreshTimer);
  try {
    const [server, streams, history] = await Promise.all([
      read('/api/server'), read('/api/streams'), read('/api/history?per_page=10')]);
    reachable(true);
    if (!server || !streams || !history) {
      notice('This server wants its API token to show anything: Unlock actions and give it.');
    } else {
      if ($('notice').textContent.startsWith('This server wants')) notice('');
      showServer(server, streams.streams);
      showStreams(streams.streams);
      showHistory(history.sessions);
    }
  } catch (e) {
    reachable(false);
  }
  refreshTimer = setTimeout(refresh, REFRESH_MS);
}

function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 50);
}

// --- Watching --------------------------------------------------------------

// The codecs a Content-Type names: "avc1.64001f, mp4a.40.2".
function codecsOf(type) {
  const match = type.match(/codecs="?([^"]*)"?/);
  return match ? match[1].split(',').join(', ') : type;
}

// Plays one stream's live fragmented MP4 in the <video>: fetches it, checks
// that this browser can decode its codecs, and appends what comes to a
// SourceBuffer, keeping near the live edge and the buffer short.
class Player {
  constructor(key, video, status) {
    this.key = key;
    this.video = video;
    this.status = status;
    this.abort = new AbortController();
    this.queue = [];
    this.done = false;
    this.start().catch((e) => {
      if (!this.abort.signal.aborted) this.say(`Playback stopped: ${e.message || e}`);
    });
  }

  say(text) {
    this.status.textContent = text;
  }

  async start() {
    this.say('Connecting…');
    if (!window.MediaSource) {
      this.say('This browser has no Media Source Extensions. Open the .flv address in VLC instead.');
      return;
    }
    const res = await fetch(`/live/${keyPath(this.key)}.mp4`, { signal: this.abort.signal, cache: 'no-store' });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      const why = res.status === 404 ? 'the stream is not live' : (body.error || `the server answered ${res.status}`);
      this.say(`Cannot play: ${why}.`);
      return;
    }
    const type = res.headers.get('Content-Type') || '';
    if (!MediaSource.isTypeSupported(type)) {
      this.abort.abort();
      this.say(`This browser cannot play ${codecsOf(type)}. Open the .flv address in VLC instead.`);
      return;
    }
    this.source = new MediaSource();
    this.video.src = URL.createObjectURL(this.source);
    await new Promise((resolve) => this.source.addEventListener('sourceopen', resolve, { once: true }));
    this.buffer = this.source.addSourceBuffer(type);
    this.buffer.addEventListener('updateend', () => this.pump());
    this.video.play().catch(() => {});
    this.say(`Playing ${codecsOf(type)}`);
    const reader = res.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      this.queue.push(value);
      this.pump();
    }
    this.done = true;
    this.pump();
    this.say('The stream ended.');
  }

  pump() {
    const buffer = this.buffer;
    if (!buffer || buffer.updating || this.source.readyState !== 'open') return;
    const video = this.video;
    const ranges = buffer.buffered;
    if (ranges.length) {
      const start = ranges.start(0);
      const end = ranges.end(ranges.length - 1);
      if (video.currentTime < start || end - video.currentTime > 4) video.currentTime = Math.max(start, end - 1);
      if (video.currentTime - start > 30) {
        buffer.remove(start, video.currentTime - 10);
        return;
      }
    }
    if (this.queue.length) {
      const size = this.queue.reduce((n, chunk) => n + chunk.length, 0);
      const joined = new Uint8Array(size);
      let at = 0;
      for (const chunk of this.queue) { joined.set(chunk, at); at += chunk.length; }
      this.queue = [];
      try {
        buffer.appendBuffer(joined);
      } catch (e) {
        this.say(`Playback stopped: ${e.message}`);
        this.stop();
      }
    } else if (this.done) {
      this.source.endOfStream();
    }
  }

  stop() {
    this.abort.abort();
    this.buffer = null;
    this.video.removeAttribute('src');
    this.video.load();
  }
}

$('video').addEventListener('error', () => {
  const error = $('video').error;
  if (error && state.player) state.player.say(`The browser could not decode the stream: ${error.message || error.code}`);
});

function showWatch() {
  const match = location.hash.match(/^#watch\/(.+)$/);
  const key = match ? decodeURIComponent(match[1]) : null;
  if (state.player && state.player.key !== key) {
    state.player.stop();
    state.player = null;
  }
  $('watch').hidden = !key;
  if (key && !state.player) {
    $('watch-title').textContent = key;
    state.player = new Player(key, $('video'), $('watch-status'));
  }
}

$('watch-close').addEventListener('click', () => {
  history.replaceState(null, '', location.pathname);
  showWatch();
});

window.addEventListener('hashchange', showWatch);
showUnlock();
showWatch();
refresh();
