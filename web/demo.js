// The demo website (GET /demo/{tenant}/{page}, or /demo/{page} for the default tenant): a
// business site drawn from its tenant's config, whose sections the voice agent can scroll to. It
// listens on its own /ws/page channel and, inside the console, to the commands the console
// forwards from the voice socket; both ack. Its calls and its channel carry the tenant's
// publicKey, so they are that business's (SPEC 16).
(function () {
  "use strict";
  const SB = window.Switchboard;
  const site = JSON.parse(document.getElementById("site").textContent);
  const company = site.company || {};
  const name = company.name || "Our company";
  const services = site.services || [];
  const DAYS = [["mon", "Monday"], ["tue", "Tuesday"], ["wed", "Wednesday"], ["thu", "Thursday"],
    ["fri", "Friday"], ["sat", "Saturday"], ["sun", "Sunday"]];
  const FLASH_MS = 1600;
  const inFrame = window.parent !== window;
  const query = new URLSearchParams(location.search);
  const sessionId = query.get("sessionId") || SB.tabSessionId();
  const base = site.base || "/demo/"; // where this tenant's pages are

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const title = (id) => id.replace(/[-_]+/g, " ").replace(/\b\w/g, (c) => c.toUpperCase());
  const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  const duration = (min) => (min >= 60 ? (min / 60).toString().replace(/\.5$/, "½") + (min === 60 ? " hour" : " hours") : min + " minutes");
  const serviceFor = (id) => services.find((s) => slug(s.name) === id) ||
    services.find((s) => slug(s.name).startsWith(id) || id.startsWith(slug(s.name).split("-")[0]));

  function section(id, heading, lead) {
    const s = el("section");
    s.id = id;
    const inner = el("div", "inner");
    if (heading) inner.append(el("h2", "", heading));
    if (lead) inner.append(el("p", "lead", lead));
    s.append(inner);
    return [s, inner];
  }

  function serviceCard(s) {
    const c = el("div", "card");
    c.append(el("h3", "", s.name), el("div", "meta", "About " + duration(s.duration_min)), el("div", "price", s.price));
    return c;
  }

  function hoursTable() {
    const t = el("table", "hours");
    for (const [k, label] of DAYS) {
      const h = site.hours && site.hours[k];
      const tr = el("tr");
      tr.append(el("td", "", label), el("td", "", h ? h[0] + " – " + h[1] : "Closed"));
      t.append(tr);
    }
    return t;
  }

  const RENDER = {
    hero() {
      const [s, inner] = section("hero");
      s.classList.add("hero");
      inner.append(el("h1", "", name + ": honest work, done right the first time."),
        el("p", "", "Book a visit, ask about prices or hours — our assistant answers around the clock, and a real team does the work."));
      const a = el("div", "actions");
      const b1 = el("a", "btn primary", "See services");
      b1.href = "#services";
      const b2 = el("a", "btn secondary", company.phone ? "Call " + company.phone : "Contact us");
      b2.href = company.phone ? "tel:" + company.phone.replace(/[^0-9+]/g, "") : "#contact";
      a.append(b1, b2);
      inner.append(a);
      return s;
    },
    services() {
      const [s, inner] = section("services", "Services", "Everything we do, with honest time estimates.");
      const cards = el("div", "cards");
      services.forEach((sv) => cards.append(serviceCard(sv)));
      inner.append(cards);
      return s;
    },
    "case-studies"() {
      const [s, inner] = section("case-studies", "Case studies", "A few recent visits, in our customers' words.");
      const cards = el("div", "cards");
      const stories = [
        ["In and out before my meeting.", "Dana, regular customer"],
        ["They explained every line of the estimate.", "Marco, first visit"],
        ["Booked by voice at 10 pm, fixed by noon.", "Priya, fleet manager"],
      ];
      stories.forEach(([q, who], i) => {
        const c = el("div", "card quote");
        const sv = services[i % Math.max(1, services.length)];
        c.append(el("h3", "", sv ? sv.name : "Visit"), el("div", "", "“" + q + "”"), el("div", "who", who));
        cards.append(c);
      });
      inner.append(cards);
      return s;
    },
    pricing() {
      const [s, inner] = section("pricing", "Pricing", "Typical price ranges. You get an exact quote before any work starts.");
      const t = el("table", "prices");
      const head = el("tr");
      head.append(el("th", "", "Service"), el("th", "", "Time"), el("th", "", ""));
      t.append(head);
      for (const sv of services) {
        const tr = el("tr");
        tr.append(el("td", "", sv.name), el("td", "", duration(sv.duration_min)), el("td", "p", sv.price));
        t.append(tr);
      }
      inner.append(t);
      return s;
    },
    contact() {
      const [s, inner] = section("contact", "Contact", "Call, write, or just talk to our assistant.");
      const g = el("div", "contact-grid");
      const left = el("div", "card");
      left.append(el("h3", "", "Reach us"));
      if (company.phone) left.append(el("div", "", "Phone: " + company.phone));
      if (company.email) left.append(el("div", "", "Email: " + company.email));
      if (company.timezone) left.append(el("div", "meta", "Times are " + company.timezone));
      const right = el("div", "card");
      right.append(el("h3", "", "Opening hours"), hoursTable());
      g.append(left, right);
      inner.append(g);
      return s;
    },
  };

  function generic(id) {
    const sv = serviceFor(id);
    if (sv) {
      const [s, inner] = section(id, sv.name, "Takes about " + duration(sv.duration_min) + ". Typical price " + sv.price + ".");
      const c = el("div", "cards");
      const a = el("div", "card");
      a.append(el("h3", "", "What's included"), el("div", "meta", "Inspection, the work itself, and a check-out walk-through with the technician."));
      const b = el("div", "card");
      b.append(el("h3", "", "Book it"), el("div", "meta", "Ask the assistant: “Is Monday available for " + sv.name.toLowerCase() + "?”"));
      c.append(a, b);
      inner.append(c);
      return s;
    }
    const [s, inner] = section(id, title(id));
    inner.append(el("p", "lead", "More about " + title(id).toLowerCase() + " at " + name + "."));
    return s;
  }

  // ---- Render ----
  document.title = name + " · " + title(site.page);
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  for (const id of site.sections || []) {
    main.append((RENDER[id] || generic)(id));
    const a = el("a", "", title(id));
    a.href = "#" + id;
    nav.append(a);
  }
  for (const p of Object.keys(site.pages || {})) {
    if (p === site.page) continue;
    const a = el("a", "page", title(p));
    a.href = base + encodeURIComponent(p) + "?sessionId=" + encodeURIComponent(sessionId);
    nav.append(a);
  }
  document.getElementById("foot").textContent = "© " + new Date().getFullYear() + " " + name + (company.phone ? " · " + company.phone : "");

  // ---- Navigation commands ----
  const navState = { last: null, count: 0 };
  window.sbDemo = { site, sessionId, nav: navState };

  function go(section, via) {
    const target = document.getElementById(section);
    if (!target) return false;
    target.scrollIntoView({ behavior: "smooth", block: "start" });
    target.classList.add("flash");
    setTimeout(() => target.classList.remove("flash"), FLASH_MS);
    for (const a of nav.querySelectorAll("a")) a.classList.toggle("active", a.getAttribute("href") === "#" + section);
    navState.last = { section, via, at: Math.round(performance.now()) };
    navState.count++;
    if (inFrame) window.parent.postMessage({ type: "switchboard.scrolled", section, page: site.page, via }, location.origin);
    return true;
  }

  function onCommand(cmd, via) {
    if (cmd.command !== "navigate") return false;
    if (cmd.page && cmd.page !== site.page) {
      location.href = base + encodeURIComponent(cmd.page) + "?sessionId=" + encodeURIComponent(sessionId) + "#" + cmd.section;
      return true;
    }
    return go(cmd.section, via);
  }

  // The page's own channel (SPEC 5.2); its ack answers the agent's navigate call.
  const client = SB.connect({ url: location.origin, key: site.publicKey || undefined });
  const channel = client.page({ sessionId, page: site.page, onCommand: (c) => onCommand(c, "page") });
  channel.connect();
  window.sbDemo.channel = channel;

  // Commands the console received on the voice socket (it acks them there).
  window.addEventListener("message", (e) => {
    if (e.origin !== location.origin || !e.data || e.data.type !== "switchboard.command") return;
    onCommand(e.data.command, "voice");
  });

  if (location.hash.length > 1) setTimeout(() => go(location.hash.slice(1), "link"), 50);
  if (inFrame) window.parent.postMessage({ type: "switchboard.site", site: { tenant: site.tenant, base, page: site.page, pages: site.pages, sections: site.sections } }, location.origin);

  // ---- Standalone: the voice widget a business would embed (see README) ----
  if (!inFrame) {
    const w = document.getElementById("widget");
    const msg = document.getElementById("widget-msg");
    const label = w.querySelector(".label");
    w.hidden = false;
    let call = null;
    document.getElementById("talk").onclick = async () => {
      if (call) { call.disconnect(); call = null; label.textContent = "Talk to us"; w.dataset.state = "disconnected"; msg.textContent = ""; return; }
      call = client.voice({
        sessionId,
        onStatus: (st, d) => {
          w.dataset.state = st;
          msg.textContent = st === "error" ? (d.code === "mic_denied" ? "Please allow the microphone." : d.message || "Connection problem") :
            st === "connecting" ? "Connecting…" : st === "disconnected" && call ? "Reconnecting…" : "";
        },
        onTranscript: (t) => { if (t.role === "assistant") msg.textContent = t.text.slice(-90); },
      });
      label.textContent = "End call";
      try { await call.connect(); } catch (e) { call = null; label.textContent = "Talk to us"; }
    };
  }
})();
